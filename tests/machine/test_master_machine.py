"""Master machine: event sequences in, exact effects out (no I/O, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.core.resources import Resources
from meseta.master.machine import MasterMachine
from meseta.master.state import (
    CallRejected,
    CloseAgentStream,
    CloseFrameworkStream,
    MarkAgentUnreachable,
    Persist,
    StartTimer,
    SubscribeRefused,
    ToAgent,
    ToFramework,
)

from .test_drf_golden import MASTER_INFO, offers_in, register_agent, subscribe


def events(effects: list[Any], kind: str) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, ToFramework) and e.event["type"] == kind]


def launch(machine: MasterMachine, fid: str, offer: dict[str, Any], task_id: str, now: float) -> list[Any]:
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
            "command": {"value": "true"}, "resources": Resources.parse("cpus:1;mem:64").to_json()}
    return machine.handle_accept(fid, [offer["id"]["value"]],
                                 [{"type": "LAUNCH", "launch": {"task_infos": [task]}}], 0.0, now)


@pytest.fixture
def cluster() -> tuple[MasterMachine, str, str, dict[str, Any]]:
    machine = MasterMachine(MASTER_INFO, agent_ping_timeout=1.0, max_agent_ping_timeouts=2)
    agent_id = register_agent(machine, "cpus:4;mem:1024")
    fid = subscribe(machine, "A")
    (offer,) = offers_in(machine.handle_allocate(1.0))[fid]
    return machine, agent_id, fid, offer


def test_missed_pings_mark_the_agent_unreachable_once_the_registry_has_it(cluster: Any) -> None:
    machine, agent_id, fid, offer = cluster
    launch(machine, fid, offer, "t1", 1.0)
    (second,) = offers_in(machine.handle_allocate(1.5))[fid]  # leftovers offered again
    assert machine.handle_timer(("ping", agent_id), 2.0)  # first ping: goes out
    machine.handle_timer(("ping", agent_id), 3.0)  # no pong: one miss
    effects = machine.handle_timer(("ping", agent_id), 4.0)  # second miss: the registry first
    assert Persist(MarkAgentUnreachable(agent_id, 4.0)) in effects
    assert not events(effects, "UPDATE") and agent_id in machine.agents  # nothing acts before the write
    effects = machine.handle_persisted(MarkAgentUnreachable(agent_id, 4.0), 4.1)
    (lost,) = [e["update"]["status"] for e in events(effects, "UPDATE")]
    assert (lost["state"], lost["reason"], "uuid" in lost) == ("TASK_LOST", "REASON_AGENT_REMOVED", False)
    assert lost["unreachable_time"] == {"nanoseconds": 4_000_000_000}
    assert events(effects, "FAILURE") == [{"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}}]
    assert [e["rescind"]["offer_id"] for e in events(effects, "RESCIND")] == [second["id"]]
    assert CloseAgentStream(agent_id, "agent-stream") in effects
    assert not [e for e in effects if isinstance(e, ToAgent)]  # no SHUTDOWN: it may come back
    assert agent_id not in machine.agents and not machine.offers
    assert machine.unreachable_agents == {agent_id: 4.0}
    assert machine.frameworks[fid].completed_tasks[-1].state == "TASK_LOST"


def test_pong_keeps_the_agent(cluster: Any) -> None:
    machine, agent_id, _, _ = cluster
    for now in range(2, 10):
        machine.handle_timer(("ping", agent_id), float(now))
        machine.handle_pong(agent_id, float(now) + 0.1)
    assert agent_id in machine.agents


def test_disconnected_framework_is_removed_after_its_failover_timeout(cluster: Any) -> None:
    machine, agent_id, fid, offer = cluster
    launch(machine, fid, offer, "t1", 1.0)
    effects = machine.handle_framework_disconnected(fid, "s-A", 2.0)
    assert StartTimer(("failover", fid), 2.0) in effects  # failover_timeout 0: immediately
    assert not machine.frameworks[fid].offers
    effects = machine.handle_timer(("failover", fid), 2.0)
    shutdown = {"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": fid}}
    assert ToAgent(agent_id, shutdown) in effects
    assert fid not in machine.frameworks and fid in machine.removed_framework_ids
    with pytest.raises(SubscribeRefused, match="removed"):
        machine.handle_subscribe({"user": "u", "name": "A", "id": {"value": fid}}, fid, "s-2", [], 3.0)


def test_resubscribe_fails_over_the_old_stream(cluster: Any) -> None:
    machine, _, fid, _ = cluster
    effects = machine.handle_subscribe({"user": "u", "name": "A", "id": {"value": fid}}, fid, "s-new", [], 2.0)
    assert events(effects, "ERROR") == [{"type": "ERROR", "error": {"message": "Framework failed over"}}]
    assert CloseFrameworkStream(fid, "s-A") in effects
    assert events(effects, "SUBSCRIBED")
    with pytest.raises(CallRejected, match="didn't match"):
        machine.check_stream(fid, "s-A")
    assert machine.check_stream(fid, "s-new").id == fid


def test_terminal_update_frees_resources_and_its_ack_completes_the_task(cluster: Any) -> None:
    machine, agent_id, fid, offer = cluster
    launch(machine, fid, offer, "t1", 1.0)
    status = {"task_id": {"value": "t1"}, "state": "TASK_FINISHED", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
              "source": "SOURCE_EXECUTOR"}
    effects = machine.handle_status_update(agent_id, {"framework_id": {"value": fid}, "status": status}, 2.0)
    (forwarded,) = events(effects, "UPDATE")
    assert forwarded["update"]["status"]["agent_id"] == {"value": agent_id}
    assert machine.frameworks[fid].tasks["t1"].released
    assert machine.allocator.allocated_on(agent_id).is_empty()  # the leftover and the task are back
    effects = machine.handle_acknowledge(fid, agent_id, "t1", status["uuid"], 3.0)
    assert "t1" not in machine.frameworks[fid].tasks
    assert machine.frameworks[fid].completed_tasks[-1].task_id == "t1"
    ack = {"type": "ACKNOWLEDGE", "framework_id": {"value": fid}, "task_id": {"value": "t1"}, "uuid": status["uuid"]}
    assert ToAgent(agent_id, ack) in effects


def test_accept_with_an_unknown_offer_loses_the_tasks(cluster: Any) -> None:
    machine, _, fid, offer = cluster
    bogus = {**offer, "id": {"value": "nope"}}
    (update,) = events(launch(machine, fid, bogus, "t1", 1.0), "UPDATE")
    status = update["update"]["status"]
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    assert "t1" not in machine.frameworks[fid].tasks


def test_reconciliation_explicit_and_implicit(cluster: Any) -> None:
    machine, agent_id, fid, offer = cluster
    launch(machine, fid, offer, "t1", 1.0)
    implicit = events(machine.handle_reconcile(fid, [], 2.0), "UPDATE")
    assert [e["update"]["status"]["state"] for e in implicit] == ["TASK_STAGING"]
    explicit = events(machine.handle_reconcile(fid, [("ghost", agent_id), ("ghost2", None)], 2.0), "UPDATE")
    assert [e["update"]["status"]["state"] for e in explicit] == ["TASK_LOST", "TASK_LOST"]
    assert all("uuid" not in e["update"]["status"] for e in implicit + explicit)


def checkpointing_cluster() -> tuple[MasterMachine, str, str, dict[str, Any]]:
    machine = MasterMachine(MASTER_INFO)
    agent_id = register_agent(machine, "cpus:4;mem:1024")
    effects = machine.handle_subscribe({"user": "u", "name": "C", "checkpoint": True}, None, "s-C", [], 0.0)
    fid = str(events(effects, "SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"])
    (offer,) = offers_in(machine.handle_allocate(1.0))[fid]
    return machine, agent_id, fid, offer


def test_kill_for_a_disconnected_agent_is_sent_when_it_re_registers() -> None:
    machine, agent_id, fid, offer = checkpointing_cluster()
    launch(machine, fid, offer, "t1", 1.0)
    machine.handle_agent_disconnected(agent_id, "agent-stream", 2.0)
    assert machine.handle_kill(fid, "t1", None, 2.5) == []  # checkpointed: the task outlives the hiccup
    info = {**machine.agents[agent_id].info}
    effects = machine.handle_reregister_agent(info, [], [], [], "agent-stream-2", 3.0)
    kill = {"type": "KILL_TASK", "framework_id": {"value": fid}, "task_id": {"value": "t1"}}
    assert ToAgent(agent_id, kill) in effects
    assert machine.agents[agent_id].connected and not machine.agents[agent_id].pending_kills


def test_disconnect_loses_tasks_of_frameworks_that_do_not_checkpoint(cluster: Any) -> None:
    machine, agent_id, fid, offer = cluster  # framework A does not checkpoint
    launch(machine, fid, offer, "t1", 1.0)
    effects = machine.handle_agent_disconnected(agent_id, "agent-stream", 2.0)
    (status,) = [e["update"]["status"] for e in events(effects, "UPDATE")]
    assert (status["state"], status["reason"], "uuid" in status) == ("TASK_LOST", "REASON_AGENT_DISCONNECTED", False)
    assert "t1" not in machine.frameworks[fid].tasks
    effects = machine.handle_reregister_agent({**machine.agents[agent_id].info}, [], [], [], "agent-stream-2", 3.0)
    assert ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": fid}}) in effects




class Timers:
    """Runs the machine's timers the way the actor does: latest StartTimer per key wins."""

    def __init__(self, machine: MasterMachine) -> None:
        self.machine, self.pending, self.now = machine, {}, 0.0

    def feed(self, effects: list[Any]) -> list[Any]:
        for effect in effects:
            if isinstance(effect, StartTimer):
                self.pending[effect.key] = effect.at
        return effects

    def fire_next(self) -> list[Any]:
        key = min(self.pending, key=lambda k: self.pending[k])
        self.now = max(self.now, self.pending.pop(key))
        return self.feed(self.machine.handle_timer(key, self.now))


def test_declined_resources_come_back_when_the_filter_expires() -> None:
    machine = MasterMachine(MASTER_INFO)  # allocation_interval 1 s
    timers = Timers(machine)
    effects = machine.handle_register_agent({"hostname": "h", "resources": Resources.parse("cpus:2;mem:512").to_json()},
                                            "agent-stream", 0.0)
    timers.feed(effects)
    timers.feed(machine.handle_persisted(effects[0].operation, 0.0))
    fid = str(events(timers.feed(machine.handle_subscribe({"user": "u", "name": "A"}, None, "s", [], 0.0)),
                     "SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"])
    offers = []
    while not offers:
        offers = offers_in(timers.fire_next()).get(fid, [])
    timers.feed(machine.handle_decline(fid, [offers[0]["id"]["value"]], 5.0, timers.now))  # default filter
    declined_at, offers = timers.now, []
    while not offers and timers.now < 60:
        offers = offers_in(timers.fire_next()).get(fid, [])
    assert offers, "the declined agent was never offered again"
    assert declined_at + 5.0 <= timers.now <= declined_at + 6.0  # after the filter, within one interval


def test_revive_and_suppress_of_roles_the_framework_lacks_change_nothing(cluster: Any) -> None:
    machine, _, fid, offer = cluster
    machine.handle_decline(fid, [offer["id"]["value"]], 3600.0, 1.0)
    assert machine.handle_revive(fid, ["someone-else"], 2.0) == []
    assert not offers_in(machine.handle_allocate(3.0))  # the filter still holds
    machine.handle_suppress(fid, ["someone-else"], 3.0)
    machine.handle_revive(fid, [], 4.0)
    assert offers_in(machine.handle_allocate(5.0))[fid]  # not suppressed: offers flow again
