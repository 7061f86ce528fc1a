"""The agent machine: event sequences in, exact effects out; its invariants after every event.

No process, file or clock: ``now`` is given, and what a process would do (fetched, launched,
exited) is fed in as the actor would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from meseta.agent.effects import (
    AdoptExecutor,
    AdoptTask,
    CheckpointRecord,
    CheckpointTask,
    CloseExecutorStream,
    CreateContainer,
    Effect,
    ExpectPings,
    ForgetAgent,
    ForgetRun,
    KillTask,
    LaunchTask,
    Log,
    ProbeHealth,
    ReleaseContainer,
    RemoveSandbox,
    RunKey,
    SaveAgent,
    SaveResources,
    StartExecutor,
    StartTask,
    StartTimer,
    StopExecutor,
    ToExecutor,
    ToMaster,
)
from meseta.agent.invariants import validate
from meseta.agent.machine import AgentMachine, ExecutorCallRejected
from meseta.agent.options import AgentOptions
from meseta.agent.recovery_plan import Discard, Rebuild, SavedRun, SavedTask, Wrapper, plan_recovery
from meseta.agent.runs import CustomRun
from meseta.core.resources import Resources

FID, AGENT = "fw-1", "agent-1"
CPU = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}]


def framework(*capabilities: str, checkpoint: bool = True) -> dict[str, Any]:
    return {"id": {"value": FID}, "user": "", "name": "f", "checkpoint": checkpoint,
            "capabilities": [{"type": c} for c in capabilities]}


def command_task(task_id: str, **extra: Any) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "name": task_id, "agent_id": {"value": AGENT}, "resources": CPU,
            "command": {"value": "sleep 9"}, **extra}


class World:
    """One machine, a clock the test moves, and the invariants checked after every handler."""

    def __init__(self, **options: Any) -> None:
        self.machine = AgentMachine(AgentOptions(**options), Resources.parse("cpus:4;mem:1024"), [],
                                    agent_id=AGENT, seed=7)
        self.now = 1000.0

    def __call__(self, handler: str, *args: Any, at: float | None = None) -> list[Effect]:
        if at is not None:
            self.now = at
        effects = getattr(self.machine, handler)(*args, self.now)
        problems = validate(self.machine)
        assert not problems, f"after {handler}: {problems}"
        return effects

    def message(self, kind: str, **payload: Any) -> list[Effect]:
        return self("handle_master_message", {"type": kind, **payload})

    def run_task(self, task: dict[str, Any], info: dict[str, Any] | None = None) -> list[Effect]:
        return self.message("RUN_TASK", framework_info=info or framework(), task=task)

    def key(self, executor_id: str) -> RunKey:
        return self.machine.executors[(FID, executor_id)].key

    def running(self, task_id: str, info: dict[str, Any] | None = None, **extra: Any) -> RunKey:
        """A command task through fetch and fork to TASK_RUNNING, every update acknowledged."""
        self.run_task(command_task(task_id, **extra), info)
        key = self.key(task_id)
        pending = statuses(self("handle_task_fetched", key, task_id, None) + self("handle_task_launched", key, task_id))
        while pending:
            pending = statuses(self.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": task_id},
                                            uuid=pending.pop(0)["uuid"]))
        assert not self.machine.book.has_pending(FID, task_id)
        return key


def statuses(effects: list[Effect]) -> list[dict[str, Any]]:
    """The status of every update sent to the master now."""
    return [e.call["update"]["status"] for e in effects
            if isinstance(e, ToMaster) and e.call["type"] == "STATUS_UPDATE"]


def states(effects: list[Effect]) -> list[str]:
    return [s["state"] for s in statuses(effects)]


def recorded(effects: list[Effect]) -> list[str]:
    """The states of the updates checkpointed (sent now or queued behind an unacknowledged one)."""
    return [e.record["update"]["status"]["state"] for e in effects
            if isinstance(e, CheckpointRecord) and "update" in e.record]


def test_a_command_task_from_run_task_to_finished() -> None:
    world = World()
    task = command_task("t1")
    effects = world.run_task(task)
    key = world.key("t1")
    assert key.agent_id == AGENT and key.executor_id == "t1"
    assert effects == [CreateContainer(key, "COMMAND", framework(), {
        "executor_id": {"value": "t1"}, "name": "Command Executor (Task: t1)", "source": "t1",
        "framework_id": {"value": FID}}, Resources.from_json(CPU), None), StartTask(key, "t1", task["command"])]

    effects = world("handle_task_fetched", key, "t1", None, at=1001.0)
    starting = statuses(effects)[0]
    assert starting == {"task_id": {"value": "t1"}, "state": "TASK_STARTING", "source": "SOURCE_EXECUTOR",
                        "executor_id": {"value": "t1"}, "timestamp": 1001.0, "uuid": starting["uuid"],
                        "agent_id": {"value": AGENT},
                        "container_status": {"container_id": {"value": key.container_id},  # the agent's address
                                             "network_infos": [{"ip_addresses": [{"protocol": "IPv4",
                                                                                  "ip_address": "127.0.0.1"}]}]}}
    update = {"framework_id": {"value": FID}, "status": starting}
    assert effects == [CheckpointRecord(key, "t1", {"update": update}),
                       ToMaster({"type": "STATUS_UPDATE", "update": {**update, "latest_state": "TASK_STARTING"}}),
                       LaunchTask(key, "t1", task, task["command"])]

    running = world("handle_task_launched", key, "t1")
    assert recorded(running) == ["TASK_RUNNING"] and states(running) == []  # queued behind STARTING
    ended = world("handle_task_exited", key, "t1", True, "Command exited with status 0", None, at=1005.0)
    assert recorded(ended) == ["TASK_FINISHED"]
    assert ReleaseContainer(key) in ended and (FID, "t1") not in world.machine.executors
    assert ToMaster({"type": "EXECUTOR_EXITED", "framework_id": {"value": FID}, "executor_id": {"value": "t1"},
                     "status": 0, "custom": False}) in ended

    # Acknowledgements release the queue one by one; the terminal one lets the checkpoint go.
    next_one = world.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": "t1"},
                             uuid=starting["uuid"])
    assert states(next_one) == ["TASK_RUNNING"] and statuses(next_one)[0]["timestamp"] == 1001.0
    uuid = statuses(next_one)[0]["uuid"]
    last = world.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": "t1"}, uuid=uuid)
    assert states(last) == ["TASK_FINISHED"]
    done = world.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": "t1"},
                         uuid=statuses(last)[0]["uuid"])
    assert done == [CheckpointRecord(key, "t1", {"ack": statuses(last)[0]["uuid"]}), ForgetRun(key)]
    assert world.machine.book.finished == {}


def test_a_framework_that_does_not_checkpoint_gets_the_same_updates_and_no_records() -> None:
    """Mesos records the update stream only for frameworks with checkpoint: true."""
    world = World()
    info = framework(checkpoint=False)
    world.run_task(command_task("t1"), info)
    key = world.key("t1")
    effects = world("handle_task_fetched", key, "t1", None)
    effects += world("handle_task_launched", key, "t1")
    effects += world("handle_task_exited", key, "t1", True, "Command exited with status 0", None)
    assert states(effects) == ["TASK_STARTING"]  # the others wait behind it, as with checkpointing
    sent = statuses(effects)
    for expected in (["TASK_RUNNING"], ["TASK_FINISHED"], []):
        acked = world.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": "t1"},
                              uuid=sent[0]["uuid"])
        assert states(acked) == expected
        effects += acked
        sent = statuses(acked)
    assert not [e for e in effects if isinstance(e, CheckpointRecord)]
    assert acked == [ForgetRun(key)]  # what the run did checkpoint (its pid, to kill it after a restart) goes
    assert world.machine.book.finished == {}


def test_a_fetch_or_launch_failure_fails_the_task() -> None:
    world = World()
    world.run_task(command_task("t1"))
    failed = world("handle_task_fetched", world.key("t1"), "t1", "Failed to fetch 'http://x/y': 404")
    assert [(s["state"], s["source"], s["reason"], s["message"]) for s in statuses(failed)] == [
        ("TASK_FAILED", "SOURCE_AGENT", "REASON_CONTAINER_LAUNCH_FAILED", "Failed to fetch 'http://x/y': 404")]
    world.run_task(command_task("t2"))
    key = world.key("t2")
    world("handle_task_fetched", key, "t2", None)
    failed = world("handle_task_launch_failed", key, "t2", "no such file")
    assert recorded(failed) == ["TASK_FAILED"] and ReleaseContainer(key) in failed


def test_kill_before_the_fork_kills_at_launch_and_kill_with_killing_state() -> None:
    world = World()
    world.run_task(command_task("t1"))
    key = world.key("t1")
    assert world.message("KILL_TASK", framework_id={"value": FID}, task_id={"value": "t1"}) == []
    world("handle_task_fetched", key, "t1", None)
    assert world("handle_task_launched", key, "t1") == [KillTask(key, "t1", 0.0)]
    killed = world("handle_task_exited", key, "t1", False, "Command terminated with signal Terminated", None)
    assert recorded(killed) == ["TASK_KILLED"]

    key = world.running("t2", framework("TASK_KILLING_STATE"), kill_policy={"grace_period": {"nanoseconds": 2e9}})
    effects = world.message("KILL_TASK", framework_id={"value": FID}, task_id={"value": "t2"})
    assert states(effects) == ["TASK_KILLING"] and effects[-1] == KillTask(key, "t2", 2.0)


def test_killing_an_unknown_task_reports_it_lost() -> None:
    effects = World().message("KILL_TASK", framework_id={"value": FID}, task_id={"value": "ghost"})
    assert [(s["state"], s["reason"], s["source"]) for s in statuses(effects)] == [
        ("TASK_LOST", "REASON_TASK_UNKNOWN", "SOURCE_AGENT")]


def test_a_task_group_fails_together() -> None:
    world = World()
    executor = {"executor_id": {"value": "group"}, "type": "DEFAULT", "resources": CPU}
    tasks = [command_task(f"g{i}") for i in range(3)]
    world.message("RUN_TASK_GROUP", framework_info=framework(), executor=executor, task_group={"tasks": tasks})
    key = world.key("group")
    for task in tasks:
        world("handle_task_fetched", key, task["task_id"]["value"], None)
        world("handle_task_launched", key, task["task_id"]["value"])
    effects = world("handle_task_exited", key, "g0", False, "Command exited with status 1", None)
    assert [e for e in effects if isinstance(e, KillTask)] == [KillTask(key, "g1", 3.0), KillTask(key, "g2", 3.0)]
    for task_id in ("g1", "g2"):
        effects = world("handle_task_exited", key, task_id, False, "Command terminated with signal Terminated", None)
    assert ReleaseContainer(key) in effects
    assert [t.state for t in world.machine.completed_executors[-1].tasks.values()] == [
        "TASK_FAILED", "TASK_KILLED", "TASK_KILLED"]


def custom_world() -> tuple[World, RunKey, dict[str, Any]]:
    world = World()
    executor = {"executor_id": {"value": "ex"}, "command": {"value": "./executor"}, "resources": CPU}
    task = {**command_task("c1"), "executor": executor}
    del task["command"]
    effects = world.run_task(task)
    key = world.key("ex")
    assert effects[1:] == [CheckpointTask(key, task), StartExecutor(key)]
    return world, key, task


def test_a_custom_executor_must_subscribe_in_time() -> None:
    world, key, _ = custom_world()
    assert world("handle_executor_launched", key, at=1000.0) == [
        StartTimer(("register", *key, "REASON_EXECUTOR_REGISTRATION_TIMEOUT"), 1060.0)]
    effects = world("handle_timer", ("register", *key, "REASON_EXECUTOR_REGISTRATION_TIMEOUT"), at=1060.0)
    assert [(s["state"], s["reason"]) for s in statuses(effects)] == [
        ("TASK_FAILED", "REASON_EXECUTOR_REGISTRATION_TIMEOUT")]
    assert effects[-1] == StopExecutor(key, 0.0)
    ended = world("handle_executor_exited", key, None, 9, "Command terminated with signal Killed", None)
    assert ToMaster({"type": "EXECUTOR_EXITED", "framework_id": {"value": FID}, "executor_id": {"value": "ex"},
                     "status": 9, "custom": True}) in ended


def test_a_subscribed_executor_gets_its_launches_and_speaks_only_for_its_tasks() -> None:
    world, key, task = custom_world()
    world("handle_executor_launched", key)
    machine = world.machine
    with pytest.raises(ExecutorCallRejected) as refused:
        machine.executor_for_call(FID, "ex")
    assert refused.value.status == 403
    run = machine.executor_for_call(FID, "ex", subscribing=True)
    effects = world("handle_executor_subscribed", key, [])
    assert [e.event["type"] for e in effects if isinstance(e, ToExecutor)] == ["SUBSCRIBED", "LAUNCH"]
    assert effects[1] == ToExecutor(key, {"type": "LAUNCH", "launch": {"task": task}})
    assert world("handle_timer", ("register", *key, "REASON_EXECUTOR_REGISTRATION_TIMEOUT")) == []

    uuid = "AAAAAAAAAAAAAAAAAAAAAA=="
    status = {"task_id": {"value": "c1"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR", "uuid": uuid}
    effects = world("handle_executor_update", run, {**status, "timestamp": -1e308})
    assert states(effects) == ["TASK_RUNNING"]
    assert statuses(effects)[0]["timestamp"] == world.now  # the agent's time, whatever the executor said
    assert effects[-1] == ToExecutor(key, {"type": "ACKNOWLEDGED", "acknowledged": {
        "task_id": {"value": "c1"}, "uuid": uuid}})
    for bad, status_code in ((dict(status, task_id={"value": "other"}), 400), (dict(status, state="TASK_STAGING"), 400),
                             (dict(status, source="SOURCE_MASTER"), 400),
                             (dict(status, executor_id={"value": "x"}), 400)):
        with pytest.raises(ExecutorCallRejected) as refused:
            world("handle_executor_update", run, {**bad, "state": bad["state"]})
        assert refused.value.status == status_code
    assert machine.executors[(FID, "ex")].tasks["c1"].state == "TASK_RUNNING"

    world("handle_executor_disconnected", key)
    with pytest.raises(ExecutorCallRejected):
        machine.executor_for_call(FID, "ex")
    ended = world("handle_executor_exited", key, 1, None, "Command exited with status 1", None)
    assert recorded(ended) == ["TASK_FAILED"] and CloseExecutorStream(key) in ended
    assert ToMaster({"type": "EXECUTOR_EXITED", "framework_id": {"value": FID}, "executor_id": {"value": "ex"},
                     "status": 256, "custom": True}) in ended


def test_only_a_custom_executor_may_subscribe_or_call() -> None:
    world = World()
    world.running("t1")  # a command task: the agent is its executor
    for framework_id, executor_id, subscribing, status, message in (
            ("nope", "t1", False, 400, "Framework cannot be found"),
            (FID, "nobody", True, 400, "Executor cannot be found"),
            (FID, "t1", True, 400, "Executor cannot be found"),
            (FID, "t1", False, 403, "Executor is not subscribed")):
        with pytest.raises(ExecutorCallRejected) as refused:
            world.machine.executor_for_call(framework_id, executor_id, subscribing=subscribing)
        assert (refused.value.status, refused.value.message) == (status, message)


def test_a_resubscribing_executor_resends_its_unacknowledged_updates() -> None:
    world, key, _ = custom_world()
    world("handle_executor_launched", key)
    uuid = "AAAAAAAAAAAAAAAAAAAAAA=="
    status = {"task_id": {"value": "c1"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR", "uuid": uuid}
    effects = world("handle_executor_subscribed", key, [status, {**status, "task_id": {"value": "ghost"}}, status])
    assert states(effects) == ["TASK_RUNNING"] and recorded(effects) == ["TASK_RUNNING"]  # the duplicate dropped
    [skipped] = [e for e in effects if isinstance(e, Log)]
    assert skipped.level == logging.WARNING and "'ghost'" in skipped.message


def test_an_executors_updates_and_their_acknowledgements_are_checkpointed_in_its_run() -> None:
    world, key, _ = custom_world()
    world("handle_executor_launched", key)
    world("handle_executor_subscribed", key, [])
    uuid = "AAAAAAAAAAAAAAAAAAAAAA=="
    status = {"task_id": {"value": "c1"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR", "uuid": uuid}
    effects = world("handle_executor_update", world.machine.executors[(FID, "ex")], status)
    assert [(e.run, e.task_id) for e in effects if isinstance(e, CheckpointRecord)] == [(key, "c1")]
    acked = world.message("ACKNOWLEDGE", framework_id={"value": FID}, task_id={"value": "c1"}, uuid=uuid)
    assert acked == [CheckpointRecord(key, "c1", {"ack": uuid})]


def test_registered_resends_what_is_in_flight_and_shutdown_forgets_us() -> None:
    world = World()
    world.run_task(command_task("t1"))
    world("handle_task_fetched", world.key("t1"), "t1", None)
    effects = world.message("REGISTERED", registered={"agent_id": {"value": AGENT}, "ping_interval_seconds": 10,
                                                      "max_ping_timeouts": 3})
    assert effects[1] == ExpectPings(30.0) and isinstance(effects[0], SaveAgent)
    assert states(effects) == ["TASK_STARTING"]
    call = world.machine.registration_call()
    assert call["type"] == "REREGISTER" and [t["state"] for t in call["tasks"]] == ["TASK_STARTING"]

    effects = world.message("SHUTDOWN", shutdown={"message": "bye"})
    assert ForgetAgent() in effects and world.machine.agent_id is None
    assert world.machine.registration_call()["type"] == "REGISTER"


def test_checkpointed_resources_must_fit_the_flags() -> None:
    world = World()
    reserved = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1},
                 "reservations": [{"type": "DYNAMIC", "role": "dev", "principal": "p"}]}]
    effects = world.message("CHECKPOINT_RESOURCES", resources=reserved)
    assert effects == [SaveResources(Resources.from_json(reserved), Resources())]
    too_much = [{**reserved[0], "scalar": {"value": 9}}]
    effects = world.message("CHECKPOINT_RESOURCES", resources=too_much)
    assert [type(e) for e in effects] == [Log] and effects[0].level == logging.ERROR  # type: ignore[union-attr]
    assert world.machine.checkpointed == Resources.from_json(reserved)

    afresh = AgentMachine(AgentOptions(), Resources.parse("cpus:1"), [], agent_id=AGENT,
                          checkpointed=Resources.from_json(reserved * 2))
    assert afresh.agent_id is None and ForgetAgent() in afresh.handle_start(0.0)


def test_draining_caps_grace_and_marks_kills() -> None:
    world = World()
    key = world.running("t1", kill_policy={"grace_period": {"nanoseconds": 10e9}})
    effects = world.message("DRAIN", drain_config={"max_grace_period": {"nanoseconds": 1e9}, "mark_gone": True})
    assert effects == [KillTask(key, "t1", 1.0)]
    ended = world("handle_task_exited", key, "t1", False, "Command terminated with signal Terminated", None)
    assert [(s["state"], s["reason"]) for s in statuses(ended)] == [("TASK_GONE_BY_OPERATOR", "REASON_AGENT_DRAINING")]


def test_qos_preempts_only_revocable_executors() -> None:
    world = World(qos_load_threshold_5min=2.0)
    plain = world.running("plain")
    revocable = world.running("rev", resources=[{**CPU[0], "revocable": {}}])
    assert world("handle_load", 1.0, 1.0) == []
    effects = world("handle_load", 3.0, 1.0)
    assert [e for e in effects if isinstance(e, KillTask)] == [KillTask(revocable, "rev", 0.0)]
    assert world.machine.metrics["executors_preempted"] == 1
    ended = world("handle_task_exited", revocable, "rev", False, "Command terminated with signal Terminated", None)
    assert [(s["state"], s["reason"]) for s in statuses(ended)] == [("TASK_LOST", "REASON_CONTAINER_PREEMPTED")]
    assert world.machine.executors[(FID, "plain")].key == plain


def test_disk_quota_is_enforced_only_when_asked() -> None:
    disk = [{"name": "disk", "type": "SCALAR", "scalar": {"value": 1}}]
    for enforce in (False, True):
        world = World(enforce_container_disk_quota=enforce)
        key = world.running("t1", resources=disk)
        effects = world("handle_disk_usage", key, 5 * 1024 * 1024)
        assert world.machine.executors[(FID, "t1")].disk_used == 5 * 1024 * 1024
        assert (KillTask(key, "t1", 0.0) in effects) is enforce


def test_ended_sandboxes_go_when_the_disk_says_so() -> None:
    world = World(gc_delay=100.0, gc_disk_headroom=0.1)
    key = world.running("t1")
    world("handle_task_exited", key, "t1", True, "Command exited with status 0", None, at=2000.0)
    assert world("handle_gc_tick", 0.0, at=2050.0) == []  # 90 s at an empty disk
    assert world("handle_gc_tick", 0.5, at=2050.0) == [RemoveSandbox(key)]  # 40 s at half full
    assert world.machine.gc_scheduled == {}


def test_unacknowledged_updates_are_retried_with_backoff() -> None:
    world = World(status_update_retry_min=10.0, status_update_retry_max=25.0)
    world.run_task(command_task("t1"))
    world("handle_task_fetched", world.key("t1"), "t1", None, at=1000.0)
    assert world("handle_retry_tick", at=1005.0) == []
    assert states(world("handle_retry_tick", at=1010.0)) == ["TASK_STARTING"]
    assert world("handle_retry_tick", at=1025.0) == []
    assert states(world("handle_retry_tick", at=1030.0)) == ["TASK_STARTING"]


def test_a_failing_health_check_reports_then_kills() -> None:
    world = World()
    check = {"type": "COMMAND", "command": {"value": "false"}, "delay_seconds": 5, "interval_seconds": 2,
             "grace_period_seconds": 0, "consecutive_failures": 2}
    world.run_task(command_task("t1", health_check=check))
    key = world.key("t1")
    world("handle_task_fetched", key, "t1", None)
    launched = world("handle_task_launched", key, "t1", at=1000.0)
    timer = ("health", *key, "t1")
    assert launched[-1] == StartTimer(timer, 1005.0)
    probe = world("handle_timer", timer, at=1005.0)
    assert [type(e) for e in probe] == [ProbeHealth]
    first = world("handle_health_probed", key, "t1", False, at=1006.0)
    assert first[-1] == StartTimer(timer, 1008.0)
    killed = world("handle_health_probed", key, "t1", False, at=1009.0)
    assert killed[-1] == KillTask(key, "t1", 3.0)
    ended = world("handle_task_exited", key, "t1", False, "Command terminated with signal Terminated", None)
    last = [e.record["update"]["status"] for e in ended if isinstance(e, CheckpointRecord)][-1]
    assert (last["state"], last["healthy"], last["reason"]) == ("TASK_KILLED", False,
                                                                 "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")


def saved_run(kind: str, tasks: list[SavedTask], wrapper: Wrapper = Wrapper.RUNNING, checkpoint: bool = True,
              executor_id: str = "t1") -> SavedRun:
    info = {"kind": kind, "executor_info": {"executor_id": {"value": executor_id}}, "container_id": "c-1",
            "resources": CPU}
    pid = 4242 if kind == "CUSTOM" else None
    return SavedRun(framework(checkpoint=checkpoint), info, Path("/meta/run"), tasks, pid, wrapper)


def saved_task(task_id: str, wrapper: Wrapper, *records: dict[str, Any]) -> SavedTask:
    return SavedTask(command_task(task_id), Path(f"/meta/run/tasks/{task_id}"), 99, list(records), wrapper)


def update_record(task_id: str, state: str, uuid: str) -> dict[str, Any]:
    return {"update": {"framework_id": {"value": FID},
                       "status": {"task_id": {"value": task_id}, "state": state, "uuid": uuid}}}


def test_a_recovered_container_is_made_again_with_the_container_info_it_was_launched_with() -> None:
    docker = {"type": "DOCKER", "docker": {"image": "web:1", "network": "BRIDGE"}}
    task = SavedTask(command_task("t1", container=docker), Path("/meta/run/tasks/t1"), 99, [], Wrapper.RUNNING)
    effects = World()("handle_recovered", plan_recovery([saved_run("COMMAND", [task])], "reconnect"))
    assert isinstance(effects[0], CreateContainer) and effects[0].recovered and effects[0].container == docker
    custom = saved_run("CUSTOM", [saved_task("c1", Wrapper.UNKNOWN)], executor_id="ex")
    custom.info["executor_info"]["container"] = docker
    effects = World()("handle_recovered", plan_recovery([custom], "reconnect"))
    assert isinstance(effects[0], CreateContainer) and effects[0].container == docker


def test_recovery_plans_discard_what_cannot_be_recovered() -> None:
    live = saved_task("t1", Wrapper.RUNNING)
    gone = saved_task("t2", Wrapper.GONE)
    [plan] = plan_recovery([saved_run("COMMAND", [live, gone], checkpoint=False)], "reconnect")
    assert plan == Discard(plan.run, (99,))
    [plan] = plan_recovery([saved_run("COMMAND", [live], checkpoint=True)], "cleanup")
    assert isinstance(plan, Discard)
    [plan] = plan_recovery([saved_run("MYSTERY", [live])], "reconnect")
    assert isinstance(plan, Discard)


def test_recovery_rebuilds_runs_replays_updates_and_adopts_processes() -> None:
    world = World()
    running = saved_task("t1", Wrapper.RUNNING, update_record("t1", "TASK_RUNNING", "u1"))
    vanished = saved_task("t2", Wrapper.GONE, update_record("t2", "TASK_RUNNING", "u2"), {"ack": "u2"})
    finished = saved_task("t3", Wrapper.ENDED, update_record("t3", "TASK_FINISHED", "u3"), {"ack": "u3"})
    plans = plan_recovery([saved_run("DEFAULT", [running, vanished, finished], executor_id="group")], "reconnect")
    assert isinstance(plans[0], Rebuild)
    effects = world("handle_recovered", plans)
    key = world.key("group")
    assert key.container_id == "c-1" and isinstance(effects[0], CreateContainer) and effects[0].recovered
    assert AdoptTask(key, "t1", 99, Path("/meta/run/tasks/t1/exit.status")) in effects
    assert recorded(effects) == ["TASK_FAILED"]  # t2: its process was gone
    assert world.machine.book.has_pending(FID, "t1") and not world.machine.book.has_pending(FID, "t3")

    custom = saved_run("CUSTOM", [saved_task("c1", Wrapper.UNKNOWN, update_record("c1", "TASK_RUNNING", "u4"))],
                       executor_id="ex")
    effects = world("handle_recovered", plan_recovery([custom], "reconnect"), at=2000.0)
    key = world.key("ex")
    assert AdoptExecutor(key, 4242, Path("/meta/run/exit.status")) in effects
    assert StartTimer(("register", *key, "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"), 2002.0) in effects
    assert isinstance(world.machine.executors[(FID, "ex")], CustomRun)
