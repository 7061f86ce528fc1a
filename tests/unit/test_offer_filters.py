"""Decline filters against a plain list model: the grouped index must answer as the list does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meseta.alloc.filters import OfferFilters
from meseta.core.resources import Resources

BAGS = [Resources.parse(t) for t in ("cpus:1;mem:64", "cpus:2;mem:128", "cpus:2;mem:128;ports:[1-10]", "mem:64")]
FRAMEWORKS, ROLES, AGENTS = ["f1", "f2", "f3"], ["*", "web"], ["a1", "a2"]

op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(FRAMEWORKS), st.sampled_from(ROLES), st.sampled_from(AGENTS),
              st.sampled_from(range(len(BAGS))), st.integers(1, 20)),
    st.tuples(st.just("drop"), st.sampled_from(FRAMEWORKS), st.sampled_from([None, *ROLES])),
    st.tuples(st.just("drop_agent"), st.sampled_from(AGENTS)),
    st.tuples(st.just("tick"), st.integers(1, 6)),
)


@given(st.lists(op, max_size=60))
def test_grouped_filters_answer_as_a_list_of_filters_does(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    filters = OfferFilters()
    model: list[tuple[str, str, str, Resources, float]] = []
    now = 0.0
    for step in ops:
        kind = step[0]
        if kind == "add":
            _, framework, role, agent, bag, seconds = step
            filters.add(framework, role, agent, BAGS[bag], now + seconds)
            model.append((framework, role, agent, BAGS[bag], now + seconds))
        elif kind == "drop":
            _, framework, role = step
            filters.drop(framework, None if role is None else [role])
            model = [m for m in model if not (m[0] == framework and (role is None or m[1] == role))]
        elif kind == "drop_agent":
            model = [m for m in model if m[2] != step[1]]
            filters.drop_agent(step[1])
        else:
            now += step[1]
        for agent in AGENTS:
            for role in ROLES:
                for bag in BAGS:
                    expected = {m[0] for m in model
                                if m[1] == role and m[2] == agent and m[4] > now and m[3].contains(bag)}
                    assert set(filters.blocked(agent, role, bag, now)) == expected
                    for framework in FRAMEWORKS:
                        assert filters.is_filtered(framework, role, agent, bag, now) == (framework in expected)


def test_a_decline_storm_leaves_one_group_per_agent() -> None:
    filters = OfferFilters()
    bag = BAGS[2]
    for index in range(100):
        filters.add(f"f{index}", "*", "a1", bag, 1e9)
    assert len(filters) == 100
    assert len(filters._by_slot[("a1", "*")]) == 1  # one bag, one contains() per check
    assert len(filters.blocked("a1", "*", bag, 0.0)) == 100


def test_an_agent_every_framework_declined_is_skipped_until_something_changes() -> None:
    from random import Random

    from meseta.alloc.allocator import Allocator

    allocator = Allocator()
    allocator.add_agent("a1", Resources.parse("cpus:4;mem:1024"))
    for name in ("f1", "f2"):
        allocator.add_framework(name, ["*"])

    def storm(now: float, refuse: float = 100.0) -> list[str]:
        offered = allocator.allocate(now, Random(0))
        for offer in offered:
            allocator.recover(offer.framework_id, offer.role, offer.agent_id, offer.resources, refuse, now)
        return [offer.framework_id for offer in offered]

    assert storm(0.0) == ["f1"] and storm(1.0) == ["f2"] and storm(2.0) == []
    assert ("a1", "*") in allocator._filters._all_blocked  # noted: the next cycles walk nobody
    assert storm(3.0) == []
    allocator.add_framework("f3", ["*"])  # the role's frameworks changed
    assert storm(4.0) == ["f3"] and storm(5.0) == []
    allocator.revive("f2")  # a revive drops f2's filters
    assert storm(6.0) == ["f2"] and storm(7.0) == []
    assert storm(100.5) == ["f1"]  # f1's filter (until 100.0) expired; f3's and f2's still hold
