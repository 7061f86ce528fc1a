"""Offer arithmetic: what a task may take from an offer, and agent attributes as text."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meseta.framework.offers import OfferPool, attribute_text


def scalar(name: str, value: float, role: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}
    if role:
        out["reservations"] = [{"type": "STATIC", "role": role}]
    return out


OFFER = {"id": {"value": "o"}, "agent_id": {"value": "a"}, "hostname": "h1",
         "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
                        {"name": "size", "type": "SCALAR", "scalar": {"value": 2.0}}],
         "resources": [scalar("cpus", 1.0), scalar("mem", 256.0), scalar("cpus", 2.0, role="batch"),
                       scalar("disk", 100.0, disk={"persistence": {"id": "v"}}),
                       scalar("cpus", 4.0, revocable={})]}


def test_ten_tenths_of_a_cpu_fit_one_cpu() -> None:
    pool = OfferPool(OFFER)
    taken = [pool.take({"cpus": 0.1}) for _ in range(11)]
    assert all(t is not None for t in taken[:10]) and taken[10] is None


def test_reserved_resources_go_to_their_role_first_and_keep_their_reservation() -> None:
    pool = OfferPool(OFFER, ("batch",))
    first = pool.take({"cpus": 2.0})
    assert first == [scalar("cpus", 2.0, role="batch")]
    assert pool.take({"cpus": 1.5}) is None and pool.left("cpus") == 1.0


def test_a_task_that_does_not_fit_takes_nothing() -> None:
    pool = OfferPool(OFFER)
    assert pool.take({"cpus": 0.5, "mem": 512}) is None
    assert pool.left("cpus") == 1.0 and pool.left("mem") == 256.0


def test_volumes_and_revocable_resources_are_left_alone() -> None:
    pool = OfferPool(OFFER, ("batch",))
    assert pool.left("disk") == 0.0 and pool.left("cpus") == 3.0


def test_attributes_as_text() -> None:
    assert attribute_text(OFFER, "hostname") == "h1"
    assert attribute_text(OFFER, "rack") == "r1"
    assert attribute_text(OFFER, "size") == "2"
    assert attribute_text(OFFER, "zone") is None


@given(st.lists(st.floats(min_value=0.001, max_value=2.0), max_size=30))
def test_what_is_taken_never_exceeds_the_offer(asks: list[float]) -> None:
    pool = OfferPool(OFFER)
    total = 0.0
    for ask in asks:
        got = pool.take({"cpus": ask})
        if got is not None:
            total += sum(r["scalar"]["value"] for r in got)
    assert total <= 1.0 + 1e-9
