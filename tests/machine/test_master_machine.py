"""Master world: event sequences in, exact effects out (no I/O, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.core.resources import Resources
from meseta.master.effects import (
    CloseAgentStream,
    CloseFrameworkStream,
    MarkAgentUnreachable,
    Persist,
    StartTimer,
    ToAgent,
)
from meseta.master.validation.errors import CallRejected, SubscribeRefused
from meseta.testing.master_world import World, events, offers_in, register_agent, subscribe


def launch(world: World, fid: str, offer: dict[str, Any], task_id: str, now: float) -> list[Any]:
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
            "command": {"value": "true"}, "resources": Resources.parse("cpus:1;mem:64").to_json()}
    return world.accept(fid, [offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}], 0.0,
                        now)


@pytest.fixture
def cluster() -> tuple[World, str, str, dict[str, Any]]:
    world = World(agent_ping_timeout=1.0, max_agent_ping_timeouts=2)
    agent_id = register_agent(world, "cpus:4;mem:1024")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    return world, agent_id, fid, offer


def test_missed_pings_mark_the_agent_unreachable_once_the_registry_has_it(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    (second,) = offers_in(world.allocate(1.5))[fid]  # leftovers offered again
    assert world.timer(("ping", agent_id), 2.0)  # first ping: goes out
    world.timer(("ping", agent_id), 3.0)  # no pong: one miss
    effects = world.timer(("ping", agent_id), 4.0)  # second miss: the registry first
    assert Persist(MarkAgentUnreachable(agent_id, 4.0)) in effects
    assert not events(effects, "UPDATE") and agent_id in world.agents  # nothing acts before the write
    effects = world.persisted(MarkAgentUnreachable(agent_id, 4.0), 4.1)
    (lost,) = [e["update"]["status"] for e in events(effects, "UPDATE")]
    assert (lost["state"], lost["reason"], "uuid" in lost) == ("TASK_LOST", "REASON_AGENT_REMOVED", False)
    assert lost["unreachable_time"] == {"nanoseconds": 4_000_000_000}
    assert events(effects, "FAILURE") == [{"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}}]
    assert [e["rescind"]["offer_id"] for e in events(effects, "RESCIND")] == [second["id"]]
    assert CloseAgentStream(agent_id, "agent-stream") in effects
    assert not [e for e in effects if isinstance(e, ToAgent)]  # no SHUTDOWN: it may come back
    assert agent_id not in world.agents and not world.offers
    assert world.unreachable_agents == {agent_id: 4.0}
    assert world.frameworks[fid].completed_tasks[-1].state == "TASK_LOST"


def test_pong_keeps_the_agent(cluster: Any) -> None:
    world, agent_id, _, _ = cluster
    for now in range(2, 10):
        world.timer(("ping", agent_id), float(now))
        world.pong(agent_id, float(now) + 0.1)
    assert agent_id in world.agents


def test_disconnected_framework_is_removed_after_its_failover_timeout(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    effects = world.framework_disconnected(fid, "s-A", 2.0)
    assert StartTimer(("failover", fid), 2.0) in effects  # failover_timeout 0: immediately
    assert not world.machine.books.offers.of_framework(fid)
    effects = world.timer(("failover", fid), 2.0)
    shutdown = {"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": fid}}
    assert ToAgent(agent_id, shutdown) in effects
    assert fid not in world.frameworks and fid in world.machine.books.frameworks.removed_ids
    with pytest.raises(SubscribeRefused, match="removed"):
        world.subscribe({"user": "u", "name": "A", "id": {"value": fid}}, fid, "s-2", [], 3.0)


def test_resubscribe_fails_over_the_old_stream(cluster: Any) -> None:
    world, _, fid, _ = cluster
    effects = world.subscribe({"user": "u", "name": "A", "id": {"value": fid}}, fid, "s-new", [], 2.0)
    assert events(effects, "ERROR") == [{"type": "ERROR", "error": {"message": "Framework failed over"}}]
    assert CloseFrameworkStream(fid, "s-A") in effects
    assert events(effects, "SUBSCRIBED")
    with pytest.raises(CallRejected, match="didn't match"):
        world.machine.check_stream(fid, "s-A")
    world.machine.check_stream(fid, "s-new")


def test_terminal_update_frees_resources_and_its_ack_completes_the_task(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    status = {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
              "source": "SOURCE_EXECUTOR"}
    effects = world.status_update(agent_id, {"framework_id": {"value": fid}, "status": status}, 2.0)
    (forwarded,) = events(effects, "UPDATE")
    assert forwarded["update"]["status"]["agent_id"] == {"value": agent_id}
    assert world.frameworks[fid].tasks["t1"].released
    assert world.allocator.allocated_on(agent_id).is_empty()  # the leftover and the task are back
    effects = world.acknowledge(fid, agent_id, "t1", status["uuid"], 3.0)
    assert "t1" not in world.frameworks[fid].tasks
    assert world.frameworks[fid].completed_tasks[-1].task_id == "t1"
    ack = {"type": "ACKNOWLEDGE", "framework_id": {"value": fid}, "task_id": {"value": "t1"}, "uuid": status["uuid"]}
    assert ToAgent(agent_id, ack) in effects


def test_accept_with_an_unknown_offer_loses_the_tasks(cluster: Any) -> None:
    world, _, fid, offer = cluster
    bogus = {**offer, "id": {"value": "nope"}}
    (update,) = events(launch(world, fid, bogus, "t1", 1.0), "UPDATE")
    status = update["update"]["status"]
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    assert "t1" not in world.frameworks[fid].tasks


def test_reconciliation_explicit_and_implicit(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    implicit = events(world.reconcile(fid, [], 2.0), "UPDATE")
    assert [e["update"]["status"]["state"] for e in implicit] == ["TASK_STAGING"]
    explicit = events(world.reconcile(fid, [("ghost", agent_id), ("ghost2", None)], 2.0), "UPDATE")
    assert [e["update"]["status"]["state"] for e in explicit] == ["TASK_LOST", "TASK_LOST"]
    assert all("uuid" not in e["update"]["status"] for e in implicit + explicit)


def test_reconciliation_carries_the_container_status_last_reported(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    container = {"container_id": {"value": "c1"},
                 "network_infos": [{"name": "mesos-bridge", "ip_addresses": [{"ip_address": "10.220.0.7"}]}]}
    running = {"task_id": {"value": "t1"}, "state": "TASK_RUNNING", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
               "source": "SOURCE_EXECUTOR", "container_status": container}
    world.status_update(agent_id, {"framework_id": {"value": fid}, "status": running}, 2.0)
    (answer,) = events(world.reconcile(fid, [("t1", agent_id)], 3.0), "UPDATE")
    assert answer["update"]["status"]["container_status"] == container
    assert world.frameworks[fid].tasks["t1"].statuses[-1]["container_status"] == container  # in /master/state


def checkpointing_cluster() -> tuple[World, str, str, dict[str, Any]]:
    world = World()
    agent_id = register_agent(world, "cpus:4;mem:1024")
    effects = world.subscribe({"user": "u", "name": "C", "checkpoint": True}, None, "s-C", [], 0.0)
    fid = str(events(effects, "SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"])
    (offer,) = offers_in(world.allocate(1.0))[fid]
    return world, agent_id, fid, offer


def test_kill_for_a_disconnected_agent_is_sent_when_it_re_registers() -> None:
    world, agent_id, fid, offer = checkpointing_cluster()
    launch(world, fid, offer, "t1", 1.0)
    world.agent_disconnected(agent_id, "agent-stream", 2.0)
    assert world.kill(fid, "t1", None, 2.5) == []  # checkpointed: the task outlives the hiccup
    info = {**world.agents[agent_id].info}
    effects = world.reregister_agent(info, [], [], [], "agent-stream-2", 3.0)
    kill = {"type": "KILL_TASK", "framework_id": {"value": fid}, "task_id": {"value": "t1"}}
    assert ToAgent(agent_id, kill) in effects
    assert world.agents[agent_id].connected and not world.agents[agent_id].pending_kills


def test_disconnect_loses_tasks_of_frameworks_that_do_not_checkpoint(cluster: Any) -> None:
    world, agent_id, fid, offer = cluster  # framework A does not checkpoint
    launch(world, fid, offer, "t1", 1.0)
    effects = world.agent_disconnected(agent_id, "agent-stream", 2.0)
    (status,) = [e["update"]["status"] for e in events(effects, "UPDATE")]
    assert (status["state"], status["reason"], "uuid" in status) == ("TASK_LOST", "REASON_AGENT_DISCONNECTED", False)
    assert "t1" not in world.frameworks[fid].tasks
    effects = world.reregister_agent({**world.agents[agent_id].info}, [], [], [], "agent-stream-2", 3.0)
    assert ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": fid}}) in effects


class Timers:
    """Runs the world's timers the way the actor does: latest StartTimer per key wins."""

    def __init__(self, world: World) -> None:
        self.world, self.pending, self.now = world, {}, 0.0

    def feed(self, effects: list[Any]) -> list[Any]:
        for effect in effects:
            if isinstance(effect, StartTimer):
                self.pending[effect.key] = effect.at
        return effects

    def fire_next(self) -> list[Any]:
        key = min(self.pending, key=lambda k: self.pending[k])
        self.now = max(self.now, self.pending.pop(key))
        return self.feed(self.world.timer(key, self.now))


def test_declined_resources_come_back_when_the_filter_expires() -> None:
    world = World()  # allocation_interval 1 s
    timers = Timers(world)
    effects = world.register_agent({"hostname": "h", "resources": Resources.parse("cpus:2;mem:512").to_json()},
                                   "agent-stream", 0.0)
    timers.feed(effects)
    timers.feed(world.persisted(effects[0].operation, 0.0))
    fid = str(events(timers.feed(world.subscribe({"user": "u", "name": "A"}, None, "s", [], 0.0)),
                     "SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"])
    offers = []
    while not offers:
        offers = offers_in(timers.fire_next()).get(fid, [])
    timers.feed(world.decline(fid, [offers[0]["id"]["value"]], 5.0, timers.now))  # default filter
    declined_at, offers = timers.now, []
    while not offers and timers.now < 60:
        offers = offers_in(timers.fire_next()).get(fid, [])
    assert offers, "the declined agent was never offered again"
    assert declined_at + 5.0 <= timers.now <= declined_at + 6.0  # after the filter, within one interval


def test_revive_and_suppress_of_roles_the_framework_lacks_change_nothing(cluster: Any) -> None:
    world, _, fid, offer = cluster
    world.decline(fid, [offer["id"]["value"]], 3600.0, 1.0)
    assert world.revive(fid, ["someone-else"], 2.0) == []
    assert not offers_in(world.allocate(3.0))  # the filter still holds
    world.suppress(fid, ["someone-else"], 3.0)
    world.revive(fid, [], 4.0)
    assert offers_in(world.allocate(5.0))[fid]  # not suppressed: offers flow again


def test_an_agent_cannot_speak_for_another_agents_task(cluster: Any) -> None:
    world, _, fid, offer = cluster
    launch(world, fid, offer, "t1", 1.0)
    other = register_agent(world, "cpus:1;mem:64", hostname="h2", stream_id="other-stream")
    status = {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
              "source": "SOURCE_EXECUTOR"}
    assert world.status_update(other, {"framework_id": {"value": fid}, "status": status}, 2.0) == []
    task = world.frameworks[fid].tasks["t1"]
    assert task.state == "TASK_STAGING" and not task.released
    assert world.metrics["invalid_status_updates"] == 1


def test_an_agent_whose_stream_closes_before_its_admission_is_written_is_not_offered() -> None:
    """(Found by the fuzz: such agents were admitted connected, their resources offered, their
    dead streams pinged until they were marked unreachable.)"""
    world = World()
    effects = world.register_agent({"hostname": "h", "resources": Resources.parse("cpus:2;mem:512").to_json()},
                                   "short-lived", 0.0)
    agent_id = effects[0].operation.agent_id  # type: ignore[union-attr]
    assert world.agent_disconnected(agent_id, "short-lived", 0.1) == []
    world.persisted(effects[0].operation, 0.2)
    assert not world.agents[agent_id].connected and not world.agents[agent_id].active
    subscribe(world, "A")
    assert not offers_in(world.allocate(1.0))


def test_the_run_after_a_change_looks_only_at_the_agents_that_changed() -> None:
    """A task ending on agent A asks for a run of A alone; B, whose decline filter has expired
    meanwhile, waits for the run of every agent each allocation interval (as in Mesos)."""
    world = World()  # allocation_interval 1 s
    a, b = register_agent(world, "cpus:2;mem:512", "ha"), register_agent(world, "cpus:2;mem:512", "hb")
    fid = subscribe(world, "F")
    offered = {o["agent_id"]["value"]: o for o in offers_in(world.allocate(0.0))[fid]}
    assert set(offered) == {a, b}
    declined = world.decline(fid, [offered[b]["id"]["value"]], 1.0, 0.0)
    assert StartTimer(("allocate",), 0.0) in declined
    assert world.timer(("allocate",), 0.0) == []  # B is filtered, A is offered already
    task = {"name": "t1", "task_id": {"value": "t1"}, "agent_id": {"value": a}, "command": {"value": "true"},
            "resources": Resources.parse("cpus:2;mem:512").to_json()}
    world.accept(fid, [offered[a]["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}], 0.0, 0.0)
    world.timer(("allocate",), 0.0)

    status = {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
              "source": "SOURCE_EXECUTOR"}
    ended = world.status_update(a, {"framework_id": {"value": fid}, "status": status}, 2.0)
    assert StartTimer(("allocate",), 2.0) in ended
    soon = offers_in(world.timer(("allocate",), 2.0))[fid]
    assert [o["agent_id"]["value"] for o in soon] == [a]
    batch = offers_in(world.timer(("allocate-batch",), 2.0))[fid]
    assert [o["agent_id"]["value"] for o in batch] == [b]

    world.subscribe({"user": "u", "name": "G"}, None, "s-G", [], 3.0)  # a framework: every agent again
    assert world.machine.core.allocation_candidates() is None
