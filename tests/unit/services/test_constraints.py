"""The constraint matcher: agent fields, each operator, scale-down selection, properties."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.services.launch.constraints import (
    Placed,
    agent_fields,
    constraint_problem,
    describe,
    format_scalar,
    meets,
    select_kills,
    violations,
)
from meseta.services.model import Instance

_counter = iter(range(1_000_000))


def inst(host: str = "h1", state: str = "TASK_RUNNING", staged_at: float | None = None, **fields: str) -> Instance:
    n = next(_counter)
    return Instance(f"t{n}", "/app", "v1", "a1", host, state=state,
                    staged_at=float(n) if staged_at is None else staged_at,
                    agent_fields={"hostname": host, "@hostname": host, **fields})


def placed(constraint: list[str], *instances: Instance) -> Placed:
    return Placed.of([constraint], instances)


def ok(constraint: list[str], fields: dict[str, str], *instances: Instance) -> bool:
    return meets(constraint, fields, placed(constraint, *instances))


# --------------------------------------------------------------------- agent fields


def test_agent_fields_formats_hostname_domain_and_every_attribute_type() -> None:
    offer: dict[str, Any] = {
        "hostname": "node-1",
        "domain": {"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "eu-1a"}}},
        "attributes": [
            {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
            {"name": "level", "type": "SCALAR", "scalar": {"value": 2.0}},
            {"name": "weight", "type": "SCALAR", "scalar": {"value": 1.5}},
            {"name": "slots", "type": "RANGES", "ranges": {"range": [{"begin": 8, "end": 9}, {"begin": 1, "end": 5}]}},
            {"name": "disks", "type": "SET", "set": {"item": ["ssd", "hdd"]}},
        ],
    }
    assert agent_fields(offer) == {
        "hostname": "node-1", "@hostname": "node-1", "@region": "eu", "@zone": "eu-1a",
        "rack": "r1", "level": "2", "weight": "1.5", "slots": "[1-5,8-9]", "disks": "{hdd,ssd}",
    }


def test_agent_fields_without_domain_or_attributes() -> None:
    assert agent_fields({"hostname": "h"}) == {"hostname": "h", "@hostname": "h"}


@pytest.mark.parametrize(("value", "text"), [(2.0, "2"), (0.1 + 0.2, "0.3"), (1024.0, "1024"), (0.0015, "0.002")])
def test_scalars_format_like_mesos(value: float, text: str) -> None:
    assert format_scalar(value) == text


# --------------------------------------------------------------------- operators


def test_unique_refuses_a_value_already_used() -> None:
    c = ["hostname", "UNIQUE"]
    assert ok(c, {"hostname": "h2"}, inst("h1"))
    assert not ok(c, {"hostname": "h1"}, inst("h1"))
    assert ok(c, {"hostname": "h1"})


def test_hostname_falls_back_to_the_instance_host() -> None:
    legacy = Instance("t", "/app", "v1", "a1", "h1", state="TASK_RUNNING")  # no agent_fields recorded
    assert not ok(["hostname", "UNIQUE"], {"hostname": "h1"}, legacy)
    assert not ok(["@hostname", "UNIQUE"], {"@hostname": "h1"}, legacy)


def test_inactive_instances_do_not_count() -> None:
    assert ok(["hostname", "UNIQUE"], {"hostname": "h1"}, inst("h1", state="TASK_FAILED"))
    assert not ok(["hostname", "UNIQUE"], {"hostname": "h1"}, inst("h1", state="TASK_STAGING"))


def test_cluster_with_value() -> None:
    c = ["rack", "CLUSTER", "r1"]
    assert ok(c, {"rack": "r1"})
    assert not ok(c, {"rack": "r2"})


def test_cluster_without_value_is_fixed_by_the_first_placement() -> None:
    c = ["rack", "CLUSTER"]
    assert ok(c, {"rack": "r2"})  # nothing placed yet: anything goes
    first, later = inst(rack="r1", staged_at=1.0), inst(rack="r3", staged_at=5.0)
    assert ok(c, {"rack": "r1"}, later, first)
    assert not ok(c, {"rack": "r3"}, later, first)
    p = Placed.of([c], [])
    p.add({"rack": "r9"})
    assert meets(c, {"rack": "r9"}, p) and not meets(c, {"rack": "r1"}, p)


def test_group_by_without_count_fills_the_smallest_group() -> None:
    c = ["rack", "GROUP_BY"]
    on_a, on_b = inst(rack="a"), inst(rack="b")
    assert ok(c, {"rack": "c"}, on_a, on_a, on_b)  # a new value is always welcome
    assert ok(c, {"rack": "b"}, on_a, on_a, on_b)  # b is the smallest group
    assert not ok(c, {"rack": "a"}, on_a, on_a, on_b)
    assert ok(c, {"rack": "a"}, on_a)  # the only value in use is the smallest


def test_group_by_with_count_waits_for_that_many_values() -> None:
    c = ["rack", "GROUP_BY", "3"]
    a, b = inst(rack="a"), inst(rack="b")
    assert not ok(c, {"rack": "a"}, a, b)  # only 2 of 3 values seen: a third must go somewhere new
    assert ok(c, {"rack": "c"}, a, b)
    assert ok(c, {"rack": "a"}, a, b, inst(rack="c"))


def test_like_is_a_full_match() -> None:
    assert ok(["rack", "LIKE", "rack-[0-9]"], {"rack": "rack-1"})
    assert not ok(["rack", "LIKE", "rack-[0-9]"], {"rack": "rack-10"})
    assert not ok(["rack", "LIKE", "rack"], {"rack": "rack-1"})
    assert ok(["level", "LIKE", "2|3"], {"level": "3"})


def test_unlike_is_a_full_match_and_accepts_agents_lacking_the_field() -> None:
    assert ok(["rack", "UNLIKE", "rack-[0-9]"], {"rack": "rack-10"})
    assert not ok(["rack", "UNLIKE", "rack-[0-9]"], {"rack": "rack-1"})
    assert ok(["rack", "UNLIKE", "rack-1"], {"hostname": "h"})


def test_max_per() -> None:
    c = ["rack", "MAX_PER", "2"]
    assert ok(c, {"rack": "a"}, inst(rack="a"))
    assert not ok(c, {"rack": "a"}, inst(rack="a"), inst(rack="a"))
    assert ok(c, {"rack": "b"}, inst(rack="a"), inst(rack="a"))


def test_is_compares_text_exactly_and_scalars_as_numbers() -> None:
    assert ok(["rack", "IS", "r1"], {"rack": "r1"})
    assert not ok(["rack", "IS", "r1"], {"rack": "r10"})
    assert ok(["level", "IS", "2.0"], {"level": "2"})
    assert not ok(["level", "IS", "2.5"], {"level": "2"})


@pytest.mark.parametrize(
    "constraint",
    [["rack", "UNIQUE"], ["rack", "CLUSTER", "r1"], ["rack", "CLUSTER"], ["rack", "GROUP_BY"],
     ["rack", "GROUP_BY", "2"], ["rack", "LIKE", ".*"], ["rack", "MAX_PER", "5"], ["rack", "IS", "r1"]],
)
def test_agents_lacking_the_field_are_refused_by_every_operator_but_unlike(constraint: list[str]) -> None:
    assert not ok(constraint, {"hostname": "h1"})
    assert ok(constraint, {"hostname": "h1", "rack": "r1"})


@pytest.mark.parametrize(
    "constraint", [["rack", "LIKE", "("], ["rack", "UNLIKE", "("], ["rack", "MAX_PER", "x"], ["rack", "NEAR"], ["rack"]]
)
def test_malformed_constraints_refuse_everything(constraint: list[str]) -> None:
    assert not ok(constraint, {"rack": "r1"})


def test_violations_names_the_constraints_that_refused() -> None:
    app = {"constraints": [["hostname", "UNIQUE"], ["rack", "IS", "r1"], ["rack", "LIKE", "r.*"]]}
    fields = {"hostname": "h1", "rack": "r2"}
    assert violations(app, fields, [inst("h1", rack="r1")]) == [["hostname", "UNIQUE"], ["rack", "IS", "r1"]]
    assert violations(app, {"hostname": "h2", "rack": "r1"}, []) == []
    assert violations({"constraints": []}, fields, []) == []
    assert describe(["rack", "GROUP_BY", "3"]) == "rack:GROUP_BY:3"


@pytest.mark.parametrize(
    ("constraint", "problem"),
    [
        (["hostname", "UNIQUE"], None),
        (["rack", "GROUP_BY"], None),
        (["rack", "GROUP_BY", "3"], None),
        (["rack", "CLUSTER"], None),
        (["rack", "LIKE", "r[0-9]+"], None),
        (["hostname"], "Each constraint must have either 2 or 3 fields"),
        (["rack", "NEAR"], "Constraint operator must be one of"),
        (["rack", "LIKE"], "Value is required for operator LIKE"),
        (["rack", "LIKE", "("], "is not a valid regular expression"),
        (["rack", "MAX_PER", "x"], "Value for MAX_PER must be a non-negative integer"),
        (["rack", "GROUP_BY", "-1"], "Value for GROUP_BY must be a non-negative integer"),
        (["hostname", "UNIQUE", "x"], "Value specified but not used"),
        ("hostname:UNIQUE", "Each constraint must have either 2 or 3 fields"),
    ],
)
def test_constraint_problem(constraint: Any, problem: str | None) -> None:
    found = constraint_problem(constraint)
    assert (found is None) if problem is None else (found is not None and problem in found)


# --------------------------------------------------------------------- scale-down


def test_select_kills_without_constraints_follows_kill_selection() -> None:
    old, mid, new = inst(staged_at=1), inst(staged_at=2), inst(staged_at=3)
    assert select_kills({}, [old, mid, new], 2) == [new, mid]
    assert select_kills({"killSelection": "OLDEST_FIRST"}, [new, old, mid], 1) == [old]
    assert select_kills({}, [old], 5) == [old]
    assert select_kills({}, [old], 0) == []


def test_select_kills_evens_out_group_by() -> None:
    app = {"constraints": [["rack", "GROUP_BY"]]}
    rack_a = [inst(rack="a", staged_at=t) for t in (1, 2, 3, 4)]
    rack_b = [inst(rack="b", staged_at=t) for t in (10, 11)]
    kills = select_kills(app, rack_a + rack_b, 3)
    assert [k.agent_fields["rack"] for k in kills] == ["a", "a", "b"]  # b's youngest goes once a is level
    assert kills[0] is rack_a[3]  # youngest first within the fullest group


# --------------------------------------------------------------------- properties

_values = st.sampled_from(["a", "b", "c", "d"])


def _place_greedily(constraint: list[str], offers: list[str]) -> list[tuple[Counter[str], str, bool]]:
    p = Placed.of([constraint], [])
    steps = []
    for value in offers:
        before = Counter(p.counts["rack"])
        accepted = meets(constraint, {"rack": value}, p)
        if accepted:
            p.add({"rack": value})
        steps.append((before, value, accepted))
    return steps


@given(st.integers(min_value=0, max_value=4), st.lists(_values, max_size=60))
def test_max_per_is_never_exceeded(limit: int, offers: list[str]) -> None:
    steps = _place_greedily(["rack", "MAX_PER", str(limit)], offers)
    final = Counter(v for _, v, accepted in steps if accepted)
    assert all(n <= limit for n in final.values())
    assert all(accepted == (before[v] < limit) for before, v, accepted in steps)


@given(st.lists(_values, max_size=60))
def test_unique_never_places_two_on_one_value(offers: list[str]) -> None:
    steps = _place_greedily(["rack", "UNIQUE"], offers)
    placed_on = [v for _, v, accepted in steps if accepted]
    assert len(placed_on) == len(set(placed_on)) == len(set(offers))


@given(st.integers(min_value=0, max_value=4), st.lists(_values, max_size=60))
@settings(max_examples=200)
def test_group_by_only_adds_to_a_smallest_group(expected: int, offers: list[str]) -> None:
    for before, value, accepted in _place_greedily(["rack", "GROUP_BY", str(expected)], offers):
        in_use = {v: n for v, n in before.items() if n}
        if value in in_use and accepted:
            assert in_use[value] == min(in_use.values()) and len(in_use) >= expected
        if value not in in_use:
            assert accepted


@given(st.lists(st.tuples(_values, st.integers(0, 5)), min_size=1, max_size=30), st.integers(0, 35))
def test_select_kills_returns_distinct_instances_and_keeps_group_by_balanced(
    layout: list[tuple[str, int]], count: int
) -> None:
    instances = [inst(rack=v, staged_at=float(t)) for v, t in layout]
    kills = select_kills({"constraints": [["rack", "GROUP_BY"]]}, instances, count)
    assert len(kills) == min(count, len(instances))
    assert len({k.task_id for k in kills}) == len(kills)
    left = Counter(i.agent_fields["rack"] for i in instances if i not in kills)
    before = Counter(i.agent_fields["rack"] for i in instances)
    # Always from the fullest group: a trimmed group ends within one of the largest.
    ceiling = max(left.values(), default=0)
    assert all(left[v] >= ceiling - 1 for v in before if left[v] < before[v])
