"""The DRF paper's example, driven through the master world's real handlers.

One agent ``cpus:9;mem:18432``; framework A launches tasks of <1 cpu, 4 GiB>, B of <3 cpu, 1 GiB>.
Each takes one task per offer and hands the rest back unfiltered; a framework whose task no
longer fits declines for good. DRF must end with A running 3 tasks and B running 2.
"""

from __future__ import annotations

from meseta.core.resources import Resources
from meseta.master.effects import StartTimer, ToAgent
from meseta.testing.master_world import World, offers_in, register_agent, subscribe


def test_drf_paper_example_a_runs_3_b_runs_2() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:9;mem:18432")
    a, b = subscribe(world, "A"), subscribe(world, "B")
    demand = {a: Resources.parse("cpus:1;mem:4096"), b: Resources.parse("cpus:3;mem:1024")}
    launched = {a: 0, b: 0}
    now = 0.0
    for _ in range(20):
        now += 1.0
        offers = offers_in(world.allocate(now))
        if not offers:
            break
        for framework_id, framework_offers in offers.items():
            for offer in framework_offers:
                available = Resources.from_json(offer["resources"])
                if available.contains(demand[framework_id]):
                    task = {
                        "name": "t", "task_id": {"value": f"t{launched[framework_id]}"},
                        "agent_id": {"value": agent_id}, "command": {"value": "true"},
                        "resources": demand[framework_id].to_json(),
                    }
                    effects = world.accept(
                        framework_id, [offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                        0.0, now,
                    )
                    assert any(isinstance(e, ToAgent) and e.message["type"] == "RUN_TASK" for e in effects)
                    launched[framework_id] += 1
                else:
                    world.decline(framework_id, [offer["id"]["value"]], 10_000.0, now)
    assert launched == {a: 3, b: 2}
    assert abs(world.allocator.share(a, "*") - 2 / 3) < 1e-9
    assert abs(world.allocator.share(b, "*") - 2 / 3) < 1e-9


def test_allocation_requests_are_coalesced() -> None:
    world = World()
    register_agent(world, "cpus:2;mem:1024")
    a = subscribe(world, "A")
    timers = []
    for _ in range(100):
        timers += [e for e in world.revive(a, [], 0.0) if isinstance(e, StartTimer)]
    assert len(timers) <= 1



def test_a_covering_later_filter_replaces_older_ones() -> None:
    from meseta.alloc.allocator import Allocator

    allocator = Allocator(allocation_interval=1.0)
    allocator.add_agent("s1", Resources.parse("cpus:100;mem:100000"))
    allocator.add_framework("f", ["*"])
    for step in range(1, 200):  # each decline refuses a little more of the agent than the last
        offered = Resources.parse(f"cpus:{step * 0.5};mem:{step * 500}")
        allocator.recover("f", "*", "s1", Resources(), 0.0, float(step))  # nothing to return
        allocator._track("s1", "f", "*", offered)
        allocator.recover("f", "*", "s1", offered, 3600.0, float(step))
    assert len(allocator._filters) == 1
    # A smaller filter that expires later than the big one is kept beside it.
    allocator._track("s1", "f", "*", Resources.parse("cpus:1"))
    allocator.recover("f", "*", "s1", Resources.parse("cpus:1"), 7200.0, 300.0)
    assert len(allocator._filters) == 2
