"""Partitions: unreachable agents (missed pings, failover), their return, MARK_AGENT_GONE, pacing."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from meseta.core.resources import Resources
from meseta.master import views
from meseta.master.actor import MasterActor
from meseta.master.effects import (
    Abort,
    AdmitAgent,
    CloseAgentStream,
    MarkAgentGone,
    MarkAgentUnreachable,
    Persist,
    StartTimer,
    ToAgent,
    ToFramework,
)
from meseta.master.http.app import build_master_app
from meseta.master.partitions import MARK_TIMER, REREGISTER_TIMER
from meseta.master.registry.storage import MemoryStorage
from meseta.master.validation.errors import CallRejected
from meseta.protocol.flags import parse_rate_limit
from meseta.testing.master_world import MASTER_INFO, World, offers_in

AWARE = [{"type": "PARTITION_AWARE"}]
TASK_RESOURCES = Resources.parse("cpus:1;mem:64").to_json()
AGENT_RESOURCES = Resources.parse("cpus:4;mem:1024").to_json()
INFO = {**MASTER_INFO, "pid": "master@localhost:5050"}


def agent_info(agent_id: str, host: str = "h1") -> dict[str, Any]:
    return {"hostname": host, "port": 5051, "id": {"value": agent_id}, "resources": AGENT_RESOURCES}


def updates(effects: list[Any], framework_id: str | None = None) -> list[dict[str, Any]]:
    return [e.event["update"]["status"] for e in effects if isinstance(e, ToFramework)
            and e.event["type"] == "UPDATE" and framework_id in (None, e.framework_id)]


def kinds(effects: list[Any], kind: str) -> list[Any]:
    return [e for e in effects if isinstance(e, ToFramework) and e.event["type"] == kind]


def to_agent(effects: list[Any], kind: str) -> list[dict[str, Any]]:
    return [e.message for e in effects if isinstance(e, ToAgent) and e.message["type"] == kind]


def persisted(world: World, effects: list[Any], now: float) -> list[Any]:
    """Run every registry write in ``effects`` the way the actor does, and return what follows."""
    out: list[Any] = []
    for effect in effects:
        if isinstance(effect, Persist):
            out += world.persisted(effect.operation, now)
    return out


def add_agent(world: World, host: str) -> str:
    info = {"hostname": host, "port": 5051, "resources": AGENT_RESOURCES}
    effects = world.register_agent(info, f"stream-{host}", 0.0)
    persisted(world, effects, 0.0)
    return effects[0].operation.agent_id  # type: ignore[union-attr]


def add_framework(world: World, name: str, aware: bool) -> str:
    info: dict[str, Any] = {"user": "u", "name": name, "checkpoint": True}
    if aware:
        info["capabilities"] = AWARE
    effects = world.subscribe(info, None, f"s-{name}", [], 0.0)
    return str(kinds(effects, "SUBSCRIBED")[0].event["subscribed"]["framework_id"]["value"])


def launch_on(world: World, framework_id: str, agent_id: str, task_id: str, now: float) -> dict[str, Any]:
    offers = offers_in(world.allocate(now))
    offer = next(o for o in offers[framework_id] if o["agent_id"]["value"] == agent_id)
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": agent_id},
            "command": {"value": "sleep 100"}, "resources": TASK_RESOURCES}
    world.accept(framework_id, [offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                          0.0, now)
    for other in offers.values():  # hand every other offer back, so later allocations see everything
        for leftover in other:
            if leftover["id"]["value"] in world.offers:
                world.decline(leftover["framework_id"]["value"], [leftover["id"]["value"]], 0.0, now)
    return task


def miss_pings(world: World, agent_id: str, now: float) -> list[Any]:
    """Ping until the agent is due to be marked unreachable; returns the last ping's effects."""
    effects: list[Any] = []
    for tick in range(world.machine.core.config.max_agent_ping_timeouts + 1):
        effects = world.timer(("ping", agent_id), now + tick)
    return effects


def reported(framework_id: str, task: dict[str, Any], state: str = "TASK_RUNNING") -> dict[str, Any]:
    return {"framework_id": {"value": framework_id}, "info": task, "state": state, "executor_id": "",
            "resources": task["resources"]}


@pytest.fixture
def partitioned() -> tuple[World, str, str, str, dict[str, Any], dict[str, Any]]:
    """One agent running a task of a partition-aware framework and one of an older framework."""
    world = World(INFO, agent_ping_timeout=1.0, max_agent_ping_timeouts=2)
    agent_id = add_agent(world, "h1")
    aware, old = add_framework(world, "aware", True), add_framework(world, "old", False)
    aware_task = launch_on(world, aware, agent_id, "ta", 1.0)
    old_task = launch_on(world, old, agent_id, "to", 1.5)
    return world, agent_id, aware, old, aware_task, old_task


def mark_unreachable(world: World, agent_id: str, now: float) -> list[Any]:
    effects = miss_pings(world, agent_id, now)
    assert [e for e in effects if isinstance(e, Persist)] == [Persist(MarkAgentUnreachable(agent_id, now + 2))]
    return persisted(world, effects, now + 2.5)


# ---------------------------------------------------------------------------- unreachable


def test_unreachable_agent_partition_aware_tasks_unreachable_others_lost(partitioned: Any) -> None:
    world, agent_id, aware, old, _, _ = partitioned
    effects = mark_unreachable(world, agent_id, 10.0)
    (unreachable,) = updates(effects, aware)
    (lost,) = updates(effects, old)
    stamp = {"nanoseconds": 12_000_000_000}
    assert (unreachable["state"], unreachable["reason"], unreachable["unreachable_time"]) == (
        "TASK_UNREACHABLE", "REASON_AGENT_REMOVED", stamp)
    assert (lost["state"], lost["reason"], lost["unreachable_time"]) == ("TASK_LOST", "REASON_AGENT_REMOVED", stamp)
    assert all("uuid" not in u for u in (unreachable, lost))
    assert {e.framework_id for e in kinds(effects, "FAILURE")} == {aware, old}
    assert list(world.frameworks[aware].unreachable_tasks) == ["ta"] and not world.frameworks[aware].tasks
    assert world.frameworks[old].completed_tasks[-1].task_id == "to"
    assert agent_id not in world.agents and not world.allocator.has_agent(agent_id)
    state = views.state_json(world.machine, 0.0, {})
    assert state["unreachable_slaves"] == 1 and state["frameworks"][0]["unreachable_tasks"][0]["id"] == "ta"
    assert views.metrics_json(world.machine, 1.0)["master/slaves_unreachable"] == 1


def test_reconciliation_of_unreachable_tasks(partitioned: Any) -> None:
    world, agent_id, aware, old, _, _ = partitioned
    mark_unreachable(world, agent_id, 10.0)
    (implicit,) = updates(world.reconcile(aware, [], 13.0))
    assert (implicit["state"], implicit["unreachable_time"]) == ("TASK_UNREACHABLE", {"nanoseconds": 12_000_000_000})
    assert implicit["reason"] == "REASON_RECONCILIATION" and "uuid" not in implicit
    (known,) = updates(world.reconcile(aware, [("ta", None)], 13.0))
    assert known["state"] == "TASK_UNREACHABLE"
    (ghost,) = updates(world.reconcile(aware, [("ghost", agent_id)], 13.0))
    assert (ghost["state"], ghost["unreachable_time"]) == ("TASK_UNREACHABLE", {"nanoseconds": 12_000_000_000})
    assert [u["state"] for u in updates(world.reconcile(old, [("to", agent_id)], 13.0))] == ["TASK_LOST"]
    assert updates(world.reconcile(old, [], 13.0)) == []  # its task was completed as LOST


def test_unreachable_agent_comes_back_through_the_registry(partitioned: Any) -> None:
    world, agent_id, aware, old, aware_task, old_task = partitioned
    mark_unreachable(world, agent_id, 10.0)
    info = agent_info(agent_id)
    frameworks = [world.frameworks[aware].info, world.frameworks[old].info]
    effects = world.reregister_agent(info, [reported(aware, aware_task), reported(old, old_task)], [],
                                              frameworks, "stream-back", 20.0)
    assert effects == [Persist(AdmitAgent(agent_id, info))]  # the registry first
    assert agent_id not in world.agents and agent_id in world.unreachable_agents
    effects = persisted(world, effects, 20.5)
    assert to_agent(effects, "REREGISTERED")
    assert to_agent(effects, "SHUTDOWN_FRAMEWORK") == [{"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": old}}]
    assert world.frameworks[aware].tasks["ta"].state == "TASK_RUNNING"
    assert not world.frameworks[aware].unreachable_tasks and "to" not in world.frameworks[old].tasks
    assert agent_id in world.agents and agent_id not in world.unreachable_agents
    assert StartTimer(("ping", agent_id), 21.5) in effects
    (back,) = updates(world.reconcile(aware, [], 21.0))
    assert back["state"] == "TASK_RUNNING" and "unreachable_time" not in back


def test_unreachable_tasks_the_returning_agent_no_longer_has_are_gone(partitioned: Any) -> None:
    world, agent_id, aware, _, _, _ = partitioned
    mark_unreachable(world, agent_id, 10.0)
    info = agent_info(agent_id)
    effects = persisted(world, world.reregister_agent(info, [], [], [], "stream-back", 20.0), 20.0)
    (gone,) = updates(effects, aware)
    assert (gone["state"], gone["reason"]) == ("TASK_GONE", "REASON_RECONCILIATION")
    assert world.frameworks[aware].completed_tasks[-1].task_id == "ta"


def test_re_registration_while_the_mark_is_being_written_waits_for_it(partitioned: Any) -> None:
    world, agent_id, aware, _, aware_task, _ = partitioned
    marking = miss_pings(world, agent_id, 10.0)
    info = agent_info(agent_id)
    assert world.reregister_agent(info, [reported(aware, aware_task)], [], [], "stream-2", 12.2) == []
    effects = persisted(world, marking, 12.5)  # the mark lands, then the agent is admitted again
    assert Persist(AdmitAgent(agent_id, info)) in effects and updates(effects, aware)
    effects = persisted(world, effects, 12.6)
    assert to_agent(effects, "REREGISTERED") and "ta" in world.frameworks[aware].tasks


def test_agent_whose_stream_closes_during_readmission_is_admitted_disconnected(partitioned: Any) -> None:
    world, agent_id, _, _, _, _ = partitioned
    mark_unreachable(world, agent_id, 10.0)
    info = agent_info(agent_id)
    writes = world.reregister_agent(info, [], [], [], "stream-2", 20.0)
    assert world.agent_disconnected(agent_id, "stream-2", 20.1) == []
    persisted(world, writes, 20.2)
    assert agent_id in world.agents and not world.agents[agent_id].connected


def test_pong_saves_an_agent_waiting_for_its_turn() -> None:
    world = World(agent_ping_timeout=1.0, max_agent_ping_timeouts=2,
                            agent_removal_rate_limit=(1, 10.0))
    first, second = add_agent(world, "h1"), add_agent(world, "h2")
    for now in (1.0, 2.0, 3.0):
        marks = [*world.timer(("ping", first), now), *world.timer(("ping", second), now)]
    assert [e.operation for e in marks if isinstance(e, Persist)] == [MarkAgentUnreachable(first, 3.0)]
    assert StartTimer(MARK_TIMER, 13.0) in marks  # the second waits for the next slot
    world.pong(second, 4.0)
    persisted(world, marks, 3.5)
    assert world.timer(MARK_TIMER, 13.0) == []
    assert second in world.agents and world.metrics["slave_unreachable_canceled"] == 1


def test_rate_limit_paces_the_marks() -> None:
    world = World(agent_ping_timeout=1.0, max_agent_ping_timeouts=1,
                            agent_removal_rate_limit=(2, 10.0))
    agents = [add_agent(world, f"h{i}") for i in range(5)]
    marked: list[tuple[str, float]] = []
    timers: dict[tuple[str, ...], float] = {}
    for agent_id in agents:
        for now in (1.0, 2.0):
            for effect in world.timer(("ping", agent_id), now):
                if isinstance(effect, Persist):
                    marked.append((effect.operation.agent_id, 2.0))  # type: ignore[union-attr]
                elif isinstance(effect, StartTimer) and effect.key == MARK_TIMER:
                    timers[MARK_TIMER] = effect.at
    while MARK_TIMER in timers:
        now = timers.pop(MARK_TIMER)
        for effect in world.timer(MARK_TIMER, now):
            if isinstance(effect, Persist):
                marked.append((effect.operation.agent_id, now))  # type: ignore[union-attr]
            elif isinstance(effect, StartTimer) and effect.key == MARK_TIMER:
                timers[MARK_TIMER] = effect.at
    assert marked == [(agents[0], 2.0), (agents[1], 2.0), (agents[2], 12.0), (agents[3], 12.0), (agents[4], 22.0)]


@pytest.mark.parametrize(("text", "expected"), [
    ("1/10mins", (1, 600.0)), ("2/1secs", (2, 1.0)), ("3/1.5hrs", (3, 5400.0)), ("10/500ms", (10, 0.5)),
    (None, None), ("", None),
])
def test_parse_rate_limit(text: str | None, expected: tuple[int, float] | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("10mins", "<count>/<duration>"), ("x/1secs", "whole number"), ("0/1secs", "at least 1"),
    ("1/10minutes", "unknown duration unit 'minutes'"), ("1/0secs", "positive"), ("1/ten", "not a duration"),
])
def test_parse_rate_limit_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="agent_removal_rate_limit") as raised:
        parse_rate_limit(text)
    assert problem in str(raised.value)


# ---------------------------------------------------------------------------- after a master failover


def recovered_master(limit: float = 1.0) -> World:
    admitted = {a: {"hostname": a, "port": 5051, "id": {"value": a}} for a in ("a1", "a2")}
    return World(admitted_agents=admitted, recovery_agent_removal_limit=limit,
                         unreachable_agents={"u1": 5.0}, gone_agents={"g1": 6.0})


def test_recovered_agents_that_do_not_come_back_are_marked_unreachable() -> None:
    world = recovered_master()
    assert world.start(100.0) == [StartTimer(REREGISTER_TIMER, 700.0)]
    aware = add_framework(world, "aware", True)
    assert world.reconcile(aware, [("t", "a2")], 101.0) == []  # a2 may still come back
    assert world.reconcile(aware, [("t", None)], 101.0) == []
    assert [u["state"] for u in updates(world.reconcile(aware, [("t", "u1"), ("t", "g1")], 101.0))] == [
        "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR"]
    world.reregister_agent(world.recovered_agents["a1"], [], [], [], "s-a1", 200.0)
    effects = world.timer(REREGISTER_TIMER, 700.0)
    assert [e for e in effects if isinstance(e, Persist)] == [Persist(MarkAgentUnreachable("a2", 700.0))]
    effects = persisted(world, effects, 700.5)
    assert [e.event["failure"] for e in kinds(effects, "FAILURE")] == [{"agent_id": {"value": "a2"}}]
    assert world.unreachable_agents == {"u1": 5.0, "a2": 700.0} and not world.recovered_agents
    (answer,) = updates(world.reconcile(aware, [("t", "a2")], 701.0))
    assert (answer["state"], answer["unreachable_time"]) == ("TASK_UNREACHABLE", {"nanoseconds": 700_000_000_000})
    old = add_framework(world, "old", False)
    assert [u["state"] for u in updates(world.reconcile(old, [("t", "a2")], 701.0))] == ["TASK_LOST"]


def test_too_many_missing_recovered_agents_abort_the_master() -> None:
    world = recovered_master(limit=0.5)
    world.reregister_agent(world.recovered_agents["a1"], [], [], [], "s-a1", 200.0)
    assert world.timer(REREGISTER_TIMER, 700.0) == [Persist(MarkAgentUnreachable("a2", 700.0))]  # 1/2
    world = recovered_master(limit=0.5)
    (abort,) = world.timer(REREGISTER_TIMER, 700.0)
    assert isinstance(abort, Abort) and "2 of 2 recovered agents" in abort.message
    assert set(world.recovered_agents) == {"a1", "a2"}  # nobody was marked


def test_no_recovered_agents_no_timer() -> None:
    assert World().start(0.0) == []


def test_recovery_limit_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="recovery_agent_removal_limit"):
        World(recovery_agent_removal_limit=1.5)


# ---------------------------------------------------------------------------- gone


def test_mark_agent_gone(partitioned: Any) -> None:
    world, agent_id, aware, old, _, _ = partitioned
    with pytest.raises(CallRejected, match="No agent found with ID 'nope'") as rejected:
        world.operator("MARK_AGENT_GONE", {"agent_id": {"value": "nope"}}, 5.0)
    assert rejected.value.status == 400
    effects = world.operator("MARK_AGENT_GONE", {"agent_id": {"value": agent_id}}, 5.0)
    assert effects == [Persist(MarkAgentGone(agent_id, 5.0))] and agent_id in world.agents
    effects = persisted(world, effects, 5.5)
    (gone,) = updates(effects, aware)
    (lost,) = updates(effects, old)
    assert (gone["state"], lost["state"], lost["reason"]) == ("TASK_GONE_BY_OPERATOR", "TASK_LOST",
                                                             "REASON_AGENT_REMOVED")
    assert len(kinds(effects, "FAILURE")) == 2
    assert to_agent(effects, "SHUTDOWN") and CloseAgentStream(agent_id, "stream-h1") in effects
    assert world.gone_agents == {agent_id: 5.0} and agent_id not in world.agents
    info = agent_info(agent_id)
    effects = world.reregister_agent(info, [], [], [], "stream-again", 6.0)
    assert to_agent(effects, "SHUTDOWN") and CloseAgentStream(agent_id, "stream-again") in effects
    assert agent_id not in world.agents
    assert [u["state"] for u in updates(world.reconcile(aware, [("x", agent_id)], 7.0))] == [
        "TASK_GONE_BY_OPERATOR"]
    assert world.operator("MARK_AGENT_GONE", {"agent_id": {"value": agent_id}}, 8.0) == []


def test_mark_an_unreachable_agent_gone(partitioned: Any) -> None:
    world, agent_id, aware, _, _, _ = partitioned
    mark_unreachable(world, agent_id, 10.0)
    effects = persisted(world, world.operator(
        "MARK_AGENT_GONE", {"agent_id": {"value": agent_id}}, 20.0), 20.0)
    (gone,) = updates(effects, aware)
    assert gone["state"] == "TASK_GONE_BY_OPERATOR" and not world.frameworks[aware].unreachable_tasks
    assert agent_id not in world.unreachable_agents and agent_id in world.gone_agents


def test_drained_agent_with_mark_gone_is_marked_gone(partitioned: Any) -> None:
    world, agent_id, aware, old, _, _ = partitioned
    world.operator("DRAIN_AGENT", {"agent_id": {"value": agent_id}, "mark_gone": True}, 5.0)
    effects: list[Any] = []
    for framework_id, task_id in ((aware, "ta"), (old, "to")):
        status = {"task_id": {"value": task_id}, "state": "TASK_GONE_BY_OPERATOR",
                  "uuid": base64.b64encode(task_id.encode().ljust(16)).decode(), "source": "SOURCE_AGENT"}
        effects = world.status_update(agent_id, {"framework_id": {"value": framework_id},
                                                          "status": status}, 6.0)
    assert Persist(MarkAgentGone(agent_id, 6.0)) in effects


async def test_mark_agent_gone_over_the_operator_api() -> None:
    world = World()
    agent_id = add_agent(world, "h1")
    actor = MasterActor(world.machine, MemoryStorage())
    transport = httpx.ASGITransport(app=build_master_app(actor, {}))
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        call = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}}
        refused = await client.post("/api/v1", json=call)
        assert refused.status_code == 400 and "nope" in refused.text
        call["mark_agent_gone"] = {"agent_id": {"value": agent_id}}
        assert (await client.post("/api/v1", json=call)).status_code == 200
    for _ in range(50):  # the registry write runs in a thread, then comes back
        if agent_id in world.gone_agents:
            break
        await asyncio.sleep(0.02)
    assert agent_id in world.gone_agents and agent_id in actor.storage.gone  # type: ignore[attr-defined]
    await actor.stop()
