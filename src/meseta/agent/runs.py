"""Executor runs as the agent machine keeps them: tasks, their states, and every decision about
them (pure: the actor owns the processes and reports what they do).

Three kinds, one lifecycle::

    CommandRun   one TaskInfo.command task, run by the agent itself (no executor process):
                 StartTask --fetched--> TASK_STARTING, LaunchTask --launched--> TASK_RUNNING
                 --exited--> 0: FINISHED | else FAILED | kill requested: KILLED
    DefaultRun   a LAUNCH_GROUP task group, each task a process; when one ends other than
                 FINISHED the rest are killed
    CustomRun    ExecutorInfo.command as a process that subscribes to /api/v1/executor:
                 StartExecutor --launched--> (subscribe within 60 s or it is killed) --subscribed-->
                 LAUNCH / KILL / MESSAGE / SHUTDOWN over its stream; its tasks are what it says;
                 when it exits, its live tasks fail with it

Every method appends to an outbox: effects for the actor (``meseta.agent.effects``) and two notes
that never leave the machine: ``Report`` for each task status (the machine stamps and delivers
it) and ``RunEnded`` once no task is left. Built-in runs report with
``source: SOURCE_EXECUTOR``, exactly as an executor process would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from meseta.agent.effects import (
    CheckpointTask,
    CloseExecutorStream,
    KillTask,
    LaunchTask,
    Log,
    ProbeHealth,
    RunKey,
    StartExecutor,
    StartTask,
    StartTimer,
    StopExecutor,
    ToExecutor,
)
from meseta.agent.health import HEALTH_REASON, HealthCheckError, HealthPolicy, HealthTracker
from meseta.core.resources import Resources
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL, TaskState

DEFAULT_KILL_GRACE_SECONDS = 3.0  # the command executor's default
EXECUTOR_SHUTDOWN_GRACE_SECONDS = 5.0  # --executor_shutdown_grace_period
EXECUTOR_REGISTRATION_TIMEOUT = 60.0  # --executor_registration_timeout
MEMORY_LIMITATION = "REASON_CONTAINER_LIMITATION_MEMORY"  # the kernel's OOM killer acted in the container
LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
REGISTRATION_TIMEOUT = "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
REREGISTRATION_TIMEOUT = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"
AGENT, EXECUTOR = "SOURCE_AGENT", "SOURCE_EXECUTOR"


Outbox = list[Any]  # effects and notes, in the order they happened


@dataclass(frozen=True, slots=True)
class Report:
    """Note: a run reports a task status; the machine stamps it, checkpoints it and sends it reliably."""

    framework_id: str
    status: dict[str, Any]
    run: RunKey | None  # where the task is checkpointed; None for a task the agent does not have


@dataclass(frozen=True, slots=True)
class RunEnded:
    """Note: no task of the run is left (or its executor is gone); the machine retires it."""

    run: ExecutorRun


def duration_seconds(duration: Any, default: float) -> float:
    if isinstance(duration, dict) and "nanoseconds" in duration:
        return float(duration["nanoseconds"]) / 1e9
    return default


def kill_grace(policy: Any) -> float:
    return duration_seconds((policy or {}).get("grace_period"), DEFAULT_KILL_GRACE_SECONDS)


@dataclass(slots=True)
class TaskRecord:
    info: dict[str, Any]
    state: str = TaskState.TASK_STAGING
    launched: bool = False  # its process was forked (or adopted): a kill signals it
    kill_requested: bool = False
    killed_by_health_check: bool = False
    health: HealthTracker | None = None

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])


@dataclass(slots=True)
class ExecutorRun:
    """What every kind shares: identity, tasks, resources and how a task status is reported."""

    key: RunKey
    framework_info: dict[str, Any]
    executor_info: dict[str, Any]
    allocated: Resources = field(default_factory=Resources)  # the executor's and its tasks' resources
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    terminated: bool = False
    # set when the agent destroys the container (QoS, disk quota): how its live tasks end
    termination: tuple[str, str, str] | None = None  # (state, reason, message)
    disk_used: int | None = None  # the sandbox's size at the last disk/du check
    network_infos: list[dict[str, Any]] | None = None  # its CNI networks' addresses (None: the host's)
    # custom executors only
    process_started: bool = False
    ever_subscribed: bool = False
    connected: bool = False  # its subscription stream is open
    queued: list[dict[str, Any]] = field(default_factory=list)  # LAUNCHes sent before it subscribed
    exit_status: int = 0

    kind = "COMMAND"

    @property
    def framework_id(self) -> str:
        return self.key.framework_id

    @property
    def executor_id(self) -> str:
        return self.key.executor_id

    @property
    def container_id(self) -> str:
        return self.key.container_id

    def live(self) -> bool:
        return not self.terminated and self.termination is None

    def killing_supported(self) -> bool:
        caps = {c.get("type") for c in self.framework_info.get("capabilities") or []}
        return "TASK_KILLING_STATE" in caps

    def resource_lists(self) -> list[list[dict[str, Any]]]:
        """The executor's own resources and each task's, as the master sent them."""
        tasks = (task.info.get("resources") or [] for task in self.tasks.values())
        return [self.executor_info.get("resources") or [], *tasks]

    # ---------------------------------------------------------------- reporting
    def report(self, out: Outbox, task: TaskRecord, state: str, message: str = "", reason: str | None = None,
               source: str = EXECUTOR, healthy: bool | None = None) -> None:
        if task.state in TERMINAL:
            return
        if self.termination is not None and state in TERMINAL:
            (state, reason, message), source = self.termination, AGENT
        task.state = state
        status: dict[str, Any] = {"task_id": task.info["task_id"], "state": state, "source": source,
                                  "executor_id": self.executor_info["executor_id"]}
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        out.append(Report(self.framework_id, status, self.key))

    def finish_if_idle(self, out: Outbox) -> None:
        if not self.terminated and all(t.state in TERMINAL for t in self.tasks.values()):
            self.terminated = True
            out.append(RunEnded(self))

    def destroy(self, out: Outbox, state: str, reason: str, message: str) -> None:
        """Destroy the container now, no grace (a QoS correction, a disk quota): its live tasks
        end ``state`` with ``reason`` as their processes die."""
        if not self.live():
            return
        self.termination = (state, reason, message)
        for task in self.tasks.values():
            if task.state not in TERMINAL:
                task.kill_requested = True
                if task.launched:
                    out.append(KillTask(self.key, task.task_id, 0.0))
        if self.process_started:
            out.append(StopExecutor(self.key, 0.0))

    # ---------------------------------------------------------------- what every kind implements
    def launch(self, out: Outbox, task_info: dict[str, Any]) -> None:
        task = TaskRecord(task_info)
        self.tasks[task.task_id] = task
        out.append(StartTask(self.key, task.task_id, task_info["command"]))

    def launch_group(self, out: Outbox, tasks: list[dict[str, Any]]) -> None:
        raise NotImplementedError(f"a {self.kind} executor runs no task group")

    def kill(self, out: Outbox, task_id: str, kill_policy: Any) -> None:
        task = self.tasks.get(task_id)
        if task is not None:
            self.kill_task(out, task, kill_grace(kill_policy or task.info.get("kill_policy")))

    def shutdown(self, out: Outbox) -> None:
        for task_id in list(self.tasks):
            self.kill(out, task_id, None)

    def on_task_exit(self, out: Outbox, task: TaskRecord) -> None:
        self.finish_if_idle(out)

    # ---------------------------------------------------------------- a built-in task's life
    def kill_task(self, out: Outbox, task: TaskRecord, grace: float) -> None:
        if task.state in TERMINAL:
            return
        task.kill_requested = True
        if not task.launched:
            return  # killed before its fork: the launch path finishes it
        if self.killing_supported():
            self.report(out, task, TaskState.TASK_KILLING)
        out.append(KillTask(self.key, task.task_id, grace))

    def on_fetched(self, out: Outbox, task: TaskRecord, error: str | None) -> None:
        if error is not None:
            self.report(out, task, TaskState.TASK_FAILED, error, LAUNCH_FAILED, source=AGENT)
            self.finish_if_idle(out)
            return
        self.report(out, task, TaskState.TASK_STARTING)
        out.append(LaunchTask(self.key, task.task_id, task.info, _command_of(task.info)))

    def on_launch_failed(self, out: Outbox, task: TaskRecord, message: str) -> None:
        self.report(out, task, TaskState.TASK_FAILED, f"Failed to launch container: {message}", LAUNCH_FAILED)
        self.finish_if_idle(out)

    def on_launched(self, out: Outbox, task: TaskRecord, now: float) -> None:
        task.launched = True
        if task.kill_requested:
            out.append(KillTask(self.key, task.task_id, 0.0))
            return
        self.report(out, task, TaskState.TASK_RUNNING)
        if task.info.get("health_check"):
            self.watch_health(out, task, now)

    def on_exited(self, out: Outbox, task: TaskRecord, succeeded: bool, description: str,
                  limitation: str | None) -> None:
        if task.killed_by_health_check:
            self.report(out, task, TaskState.TASK_KILLED, "Task killed after failing its health check", HEALTH_REASON,
                        healthy=False)
        elif task.kill_requested:
            self.report(out, task, TaskState.TASK_KILLED, description)
        elif limitation is not None:
            self.report(out, task, TaskState.TASK_FAILED, limitation, MEMORY_LIMITATION, source=AGENT)
        elif succeeded:
            self.report(out, task, TaskState.TASK_FINISHED, description)
        else:
            self.report(out, task, TaskState.TASK_FAILED, description)
        self.on_task_exit(out, task)

    # ---------------------------------------------------------------- health checks
    def watch_health(self, out: Outbox, task: TaskRecord, now: float) -> None:
        """Probe a running task per its health check (``meseta.agent.health``) until it ends."""
        try:
            policy = HealthPolicy.from_json(task.info["health_check"])
        except (HealthCheckError, TypeError, ValueError, AttributeError) as exc:
            out.append(Log(logging.WARNING, f"task {task.task_id}: health check not run: {exc}"))
            return
        task.health = HealthTracker(policy, now)
        out.append(StartTimer(self.health_timer(task), now + policy.delay))

    def health_timer(self, task: TaskRecord) -> tuple[str, ...]:
        return ("health", *self.key, task.task_id)

    def on_health_due(self, out: Outbox, task: TaskRecord) -> None:
        if task.health is not None and task.state == TaskState.TASK_RUNNING and not task.kill_requested:
            out.append(ProbeHealth(self.key, task.task_id, task.health.policy, _command_of(task.info)))

    def on_probed(self, out: Outbox, task: TaskRecord, ok: bool, now: float) -> None:
        if task.health is None or task.state != TaskState.TASK_RUNNING or task.kill_requested:
            return
        verdict = task.health.record(ok, now)
        if verdict.report is not None:
            self.report(out, task, TaskState.TASK_RUNNING, reason=HEALTH_REASON, healthy=verdict.report)
        if verdict.kill:
            task.killed_by_health_check = True
            self.kill_task(out, task, kill_grace(task.info.get("kill_policy")))
            return
        out.append(StartTimer(self.health_timer(task), now + task.health.policy.interval))


class CommandRun(ExecutorRun):
    kind = "COMMAND"


class DefaultRun(ExecutorRun):
    """Runs a task group; when one task is killed or fails, the rest of the group is killed."""

    kind = "DEFAULT"

    def launch_group(self, out: Outbox, tasks: list[dict[str, Any]]) -> None:
        for info in tasks:
            task = TaskRecord(info)
            self.tasks[task.task_id] = task
            out.append(StartTask(self.key, task.task_id, _command_of(info)))

    def kill(self, out: Outbox, task_id: str, kill_policy: Any) -> None:
        for other in list(self.tasks):
            ExecutorRun.kill(self, out, other, kill_policy)

    def on_task_exit(self, out: Outbox, task: TaskRecord) -> None:
        if task.state != TaskState.TASK_FINISHED:
            for other in self.tasks.values():
                if other.state not in TERMINAL and not other.kill_requested:
                    self.kill_task(out, other, DEFAULT_KILL_GRACE_SECONDS)
        self.finish_if_idle(out)


class CustomRun(ExecutorRun):
    """A framework's executor process, speaking the v1 executor API to this agent."""

    kind = "CUSTOM"

    def start(self, out: Outbox) -> None:
        out.append(StartExecutor(self.key))

    def end(self, out: Outbox) -> None:
        if not self.terminated:
            self.terminated = True
            out.append(RunEnded(self))

    def send(self, out: Outbox, event: dict[str, Any]) -> None:
        if self.connected:
            out.append(ToExecutor(self.key, event))
        elif event["type"] in ("LAUNCH", "LAUNCH_GROUP"):
            self.queued.append(event)

    def launch(self, out: Outbox, task_info: dict[str, Any]) -> None:
        self._remember(out, task_info)
        self.send(out, {"type": "LAUNCH", "launch": {"task": task_info}})

    def launch_group(self, out: Outbox, tasks: list[dict[str, Any]]) -> None:
        for info in tasks:
            self._remember(out, info)
        self.send(out, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": tasks}}})

    def _remember(self, out: Outbox, task_info: dict[str, Any]) -> None:
        task = TaskRecord(task_info)
        self.tasks[task.task_id] = task
        out.append(CheckpointTask(self.key, task_info))

    def kill(self, out: Outbox, task_id: str, kill_policy: Any) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.state in TERMINAL:
            return
        if not self.ever_subscribed:
            self.report(out, task, TaskState.TASK_KILLED, "Killed before the executor subscribed",
                        "REASON_TASK_KILLED_DURING_LAUNCH", source=AGENT)
            return
        event: dict[str, Any] = {"type": "KILL", "kill": {"task_id": id_json(task_id)}}
        if kill_policy:
            event["kill"]["kill_policy"] = kill_policy
        self.send(out, event)

    def shutdown(self, out: Outbox) -> None:
        self.send(out, {"type": "SHUTDOWN"})
        grace = duration_seconds(self.executor_info.get("shutdown_grace_period"), EXECUTOR_SHUTDOWN_GRACE_SECONDS)
        if self.process_started:
            out.append(StopExecutor(self.key, grace))

    # ---------------------------------------------------------------- the executor process
    def on_start_failed(self, out: Outbox, message: str) -> None:
        """The fetch or the fork failed: its tasks fail with the message."""
        for task in self.tasks.values():
            self.report(out, task, TaskState.TASK_FAILED, message, LAUNCH_FAILED, source=AGENT)
        self.end(out)

    def on_started(self, out: Outbox, now: float, timeout: float = EXECUTOR_REGISTRATION_TIMEOUT,
                   reason: str = REGISTRATION_TIMEOUT) -> None:
        """Its process runs (forked, or adopted after an agent restart): it must subscribe in time."""
        self.process_started = True
        out.append(StartTimer(("register", *self.key, reason), now + timeout))

    def on_registration_deadline(self, out: Outbox, reason: str) -> None:
        """An executor that has not subscribed (again, after an agent restart) in time is killed."""
        if self.ever_subscribed or not self.process_started or self.terminated:
            return
        for task in self.tasks.values():
            self.report(out, task, TaskState.TASK_FAILED, "Executor did not subscribe in time", reason, source=AGENT)
        out.append(StopExecutor(self.key, 0.0))

    def on_executor_exited(self, out: Outbox, code: int | None, signal: int | None, description: str,
                           limitation: str | None) -> None:
        """Its tasks still running have failed with it."""
        self.exit_status = (code or 0) << 8 if signal is None else signal
        for task in self.tasks.values():
            if limitation is not None:
                self.report(out, task, TaskState.TASK_FAILED, limitation, MEMORY_LIMITATION, source=AGENT)
            else:
                self.report(out, task, TaskState.TASK_FAILED, f"Executor terminated: {description}",
                            EXECUTOR_TERMINATED, source=AGENT)
        if self.ever_subscribed:
            out.append(CloseExecutorStream(self.key))
        self.connected = False
        self.end(out)

    # ---------------------------------------------------------------- its subscription
    def on_subscribed(self, out: Outbox, agent_info: dict[str, Any]) -> None:
        self.ever_subscribed = self.connected = True
        out.append(ToExecutor(self.key, {
            "type": "SUBSCRIBED",
            "subscribed": {
                "executor_info": self.executor_info,
                "framework_info": self.framework_info,
                "agent_info": agent_info,
                "container_id": id_json(self.container_id),
            },
        }))
        out.extend(ToExecutor(self.key, event) for event in self.queued)
        self.queued.clear()

    def record_update(self, task: TaskRecord, state: str) -> None:
        task.state = state


KINDS: dict[str, type[ExecutorRun]] = {"COMMAND": CommandRun, "DEFAULT": DefaultRun, "CUSTOM": CustomRun}


def _command_of(info: dict[str, Any]) -> dict[str, Any]:
    command = info.get("command")
    return command if isinstance(command, dict) else {"value": "true"}
