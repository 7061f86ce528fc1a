"""A cycle over some agents (those whose resources changed) offers only them, under the same
rules as a cycle over all; quota headroom is still the whole cluster's."""

from __future__ import annotations

from random import Random

from meseta.alloc.allocator import Allocator
from meseta.alloc.quota import Quota
from meseta.core.resources import Resources, to_milli


def cluster(*agents: str) -> Allocator:
    allocator = Allocator()
    for agent_id in agents:
        allocator.add_agent(agent_id, Resources.parse("cpus:4;mem:1024"))
    allocator.add_framework("f", ["*"])
    return allocator


def test_a_cycle_over_some_agents_offers_only_those_still_active() -> None:
    allocator = cluster("a", "b", "c")
    allocator.set_agent_active("c", False)
    offered = allocator.allocate(0.0, Random(0), {"b", "c", "gone"})
    assert [(o.framework_id, o.agent_id) for o in offered] == [("f", "b")]
    assert sorted(o.agent_id for o in allocator.allocate(0.0, Random(0))) == ["a"]  # the rest, in a full cycle
    assert allocator.allocate(0.0, Random(0), set()) == []


def test_the_headroom_of_a_cycle_over_some_agents_is_the_whole_clusters() -> None:
    """Role g is guaranteed 4 CPUs and nobody of g wants them now: of the 8 free CPUs, f may take
    4 (one agent's; the other's memory alone is offered too), whether the cycle walks both agents
    or only a, whose 4 CPUs may all go."""
    for agents in (None, {"a"}):
        allocator = cluster("a", "b")
        allocator.add_framework("g-idle", ["g"])
        allocator.suppress("g-idle", ["g"])
        allocator.set_quota("g", Quota(guarantees={"cpus": to_milli(4)}))
        offered = allocator.allocate(0.0, Random(0), agents)
        assert {o.framework_id for o in offered} == {"f"}
        assert sum(o.resources.scalar_totals().get("cpus", 0) for o in offered) == to_milli(4)
