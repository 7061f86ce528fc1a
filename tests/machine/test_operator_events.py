"""The operator event stream's events (spec 3.3) come out of the master machine as effects, in the
order the state changed; and GET_STATE and friends render the same state."""

from __future__ import annotations

from typing import Any

from meseta.master import operator_views
from meseta.master.effects import MarkAgentUnreachable, OperatorEvent, Persist
from meseta.testing.master_world import (
    World,
    agent_info,
    command_task,
    launch,
    offers_in,
    register_agent,
    subscribe,
)


def operator(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, OperatorEvent)]


def kinds(effects: list[Any]) -> list[str]:
    return [e["type"] for e in operator(effects)]


def watched_world(**options: Any) -> World:
    world = World(**options)
    world.machine.watch_operator_events(True)
    return world


def status(task_id: str, state: str, uuid: str = "AAAAAAAAAAAAAAAAAAAAAA==", **extra: Any) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "state": state, "uuid": uuid, "source": "SOURCE_EXECUTOR", **extra}


def test_nothing_is_noted_or_rendered_while_nobody_watches() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:2;mem:256")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    effects = world.accept(fid, [offer["id"]["value"]], [launch(command_task("t1", agent_id, "cpus:1;mem:32"))],
                           None, 1.0)
    assert not operator(effects) and not world.machine.journal.notes


def test_a_task_run_gives_every_event_in_order() -> None:
    world = watched_world()
    effects = world.register_agent(agent_info("cpus:2;mem:256"), "agent-stream", 0.0)
    assert not operator(effects)  # not registered before the registry admits it
    (persist,) = [e for e in effects if isinstance(e, Persist)]
    effects = world.persisted(persist.operation, 0.0)
    (added,) = operator(effects)
    agent_id = persist.operation.agent_id  # type: ignore[union-attr]
    assert added["type"] == "AGENT_ADDED"
    assert added["agent_added"]["agent"]["agent_info"]["id"] == {"value": agent_id}
    assert added["agent_added"]["agent"]["registered_time"] == {"nanoseconds": 0}

    effects = world.subscribe({"user": "u", "name": "A"}, None, "s-A", [], 0.5)
    (framework_added,) = operator(effects)
    framework = framework_added["framework_added"]["framework"]
    fid = framework["framework_info"]["id"]["value"]
    assert (framework_added["type"], framework["active"], framework["connected"]) == ("FRAMEWORK_ADDED", True, True)
    assert framework["framework_info"]["name"] == "A"

    (offer,) = offers_in(world.allocate(1.0))[fid]
    effects = world.accept(fid, [offer["id"]["value"]], [launch(command_task("t1", agent_id, "cpus:1;mem:32",
                                                                              labels={"labels": [{"key": "k"}]}))],
                           None, 1.0)
    (task_added,) = operator(effects)
    task = task_added["task_added"]["task"]
    assert task_added["type"] == "TASK_ADDED"
    assert (task["task_id"], task["framework_id"], task["agent_id"], task["state"], task["name"]) == (
        {"value": "t1"}, {"value": fid}, {"value": agent_id}, "TASK_STAGING", "t1")
    assert task["labels"] == {"labels": [{"key": "k"}]} and task["statuses"] == []
    assert {r["name"] for r in task["resources"]} == {"cpus", "mem"}

    states = []
    for now, state in ((2.0, "TASK_STARTING"), (3.0, "TASK_RUNNING"), (4.0, "TASK_FINISHED")):
        container = {"network_infos": [{"ip_addresses": [{"ip_address": "10.0.0.9"}]}]}
        effects = world.status_update(agent_id, {"framework_id": {"value": fid},
                                                 "status": status("t1", state, container_status=container)}, now)
        (updated,) = operator(effects)
        assert updated["type"] == "TASK_UPDATED"
        body = updated["task_updated"]
        assert body["framework_id"] == {"value": fid} and body["state"] == state
        assert body["status"]["agent_id"] == {"value": agent_id}
        assert body["status"]["container_status"] == container
        states.append(body["status"]["state"])
    assert states == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert not operator(world.acknowledge(fid, agent_id, "t1", "AAAAAAAAAAAAAAAAAAAAAA==", 5.0))

    effects = world.teardown(fid, 6.0)
    assert kinds(effects) == ["FRAMEWORK_REMOVED"]
    assert operator(effects)[0]["framework_removed"]["framework_info"]["id"] == {"value": fid}


def test_a_task_added_after_updates_keeps_its_state_at_launch() -> None:
    world = watched_world()
    agent_id = register_agent(world, "cpus:2;mem:256")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    effects = world.accept(fid, [offer["id"]["value"]], [launch(command_task("t1", agent_id, "cpus:1;mem:32"))],
                           None, 1.0)
    world.status_update(agent_id, {"framework_id": {"value": fid}, "status": status("t1", "TASK_RUNNING")}, 2.0)
    # rendered at launch: a later change does not leak into an event already made
    assert operator(effects)[0]["task_added"]["task"]["state"] == "TASK_STAGING"


def test_framework_disconnect_and_resubscribe_are_one_update_each() -> None:
    world = watched_world()
    fid = subscribe(world, "A", failover_timeout=60.0)
    effects = world.framework_disconnected(fid, "s-A", 1.0)
    (update,) = operator(effects)
    assert update["type"] == "FRAMEWORK_UPDATED"
    assert (update["framework_updated"]["framework"]["connected"],
            update["framework_updated"]["framework"]["unregistered_time"]) == (False, {"nanoseconds": 1_000_000_000})
    effects = world.subscribe({"user": "u", "name": "A", "id": {"value": fid}, "failover_timeout": 60.0}, fid,
                              "s-B", [], 2.0)
    (update,) = operator(effects)  # new info and resubscription: one event with both
    assert update["type"] == "FRAMEWORK_UPDATED"
    assert update["framework_updated"]["framework"]["connected"] is True
    assert update["framework_updated"]["framework"]["reregistered_time"] == {"nanoseconds": 2_000_000_000}


def test_an_unreachable_agent_is_removed_and_its_tasks_updated_by_the_master() -> None:
    world = watched_world(agent_ping_timeout=1.0, max_agent_ping_timeouts=1)
    agent_id = register_agent(world, "cpus:2;mem:256")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    world.accept(fid, [offer["id"]["value"]], [launch(command_task("t1", agent_id, "cpus:1;mem:32"))], None, 1.0)
    world.timer(("ping", agent_id), 2.0)
    world.timer(("ping", agent_id), 3.0)
    effects = world.persisted(MarkAgentUnreachable(agent_id, 3.0), 3.5)
    assert kinds(effects) == ["TASK_UPDATED", "AGENT_REMOVED"]
    lost, removed = operator(effects)
    assert lost["task_updated"]["state"] == "TASK_LOST"
    assert lost["task_updated"]["status"]["source"] == "SOURCE_MASTER"
    assert lost["task_updated"]["status"]["reason"] == "REASON_AGENT_REMOVED"
    assert lost["task_updated"]["status"]["task_id"] == {"value": "t1"}
    assert removed["agent_removed"] == {"agent_id": {"value": agent_id}}


def test_a_recovered_agent_brings_its_framework_and_tasks() -> None:
    info = {**agent_info("cpus:2;mem:256"), "id": {"value": "S9"}}
    world = watched_world(admitted_agents={"S9": info})
    framework = {"id": {"value": "F1"}, "user": "u", "name": "old", "checkpoint": True}
    task_info = {"task_id": {"value": "t1"}, "agent_id": {"value": "S9"}, "name": "t1",
                 "command": {"value": "true"}, "resources": info["resources"][:1]}
    task = {"framework_id": {"value": "F1"}, "info": task_info, "state": "TASK_RUNNING",
            "resources": info["resources"][:1]}
    effects = world.reregister_agent(info, [task], [], [framework], "agent-stream", 1.0)
    assert kinds(effects) == ["FRAMEWORK_ADDED", "TASK_ADDED", "AGENT_ADDED"]
    framework_added, task_added, _ = operator(effects)
    assert framework_added["framework_added"]["framework"]["recovered"] is True
    assert task_added["task_added"]["task"]["state"] == "TASK_RUNNING"


def test_get_views_render_the_books() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:2;mem:256")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    executor = {"executor_id": {"value": "e1"}, "command": {"value": "x"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}
    task = command_task("t1", agent_id, "cpus:1;mem:32")
    del task["command"]
    world.accept(fid, [offer["id"]["value"]], [launch({**task, "executor": executor})], None, 1.0)
    world.status_update(agent_id, {"framework_id": {"value": fid}, "status": status("t1", "TASK_RUNNING")}, 2.0)
    state = operator_views.get_state(world.machine)
    assert set(state) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
    (listed,) = state["get_tasks"]["tasks"]
    assert (listed["state"], listed["executor_id"], listed["status_update_state"]) == (
        "TASK_RUNNING", {"value": "e1"}, "TASK_RUNNING")
    assert listed["statuses"][0]["task_id"] == {"value": "t1"} and listed["statuses"][0]["state"] == "TASK_RUNNING"
    assert state["get_tasks"]["unreachable_tasks"] == [] and state["get_tasks"]["completed_tasks"] == []
    (executor_entry,) = state["get_executors"]["executors"]
    assert executor_entry["agent_id"] == {"value": agent_id}
    assert executor_entry["executor_info"]["executor_id"] == {"value": "e1"}
    (framework,) = state["get_frameworks"]["frameworks"]
    assert framework["framework_info"]["id"] == {"value": fid} and framework["active"]
    assert framework["allocated_resources"]  # the task's and the executor's
    assert state["get_frameworks"]["completed_frameworks"] == []
    (agent,) = state["get_agents"]["agents"]
    assert agent["agent_info"]["id"] == {"value": agent_id}
    world.machine.watch_operator_events(True)
    killed, removed = operator(world.teardown(fid, 3.0))
    assert killed["task_updated"]["state"] == "TASK_KILLED" and removed["type"] == "FRAMEWORK_REMOVED"
    assert killed["task_updated"]["status"]["reason"] == "REASON_FRAMEWORK_REMOVED"
    after = operator_views.get_state(world.machine)
    assert after["get_tasks"]["tasks"] == [] and len(after["get_tasks"]["completed_tasks"]) == 1
    assert after["get_tasks"]["completed_tasks"][0]["state"] == "TASK_KILLED"
    assert [f["framework_info"]["id"]["value"] for f in after["get_frameworks"]["completed_frameworks"]] == [fid]
    assert after["get_executors"]["executors"] == []
