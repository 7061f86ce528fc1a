"""The agent's decisions: ``handle_*(..., now) -> list[Effect]``, no I/O, no clock, no awaiting.

The actor (``meseta.agent.actor``) feeds it the master's messages, the executors' calls, what
processes did and timer ticks, and executes the effects it returns (``meseta.agent.effects``).
It owns the agent's soft state: identity and resources, frameworks, executor runs and their tasks
(``meseta.agent.runs``), the status update streams, sandboxes awaiting collection, metrics.

Agent lifecycle (connection handling is the actor's)::

    (start) agent id and reservations from the checkpoint --> recovery (handle_recovered)
    REGISTERED | REREGISTERED: remember the id (SaveAgent); resend every update in flight
    SHUTDOWN (the master removed us): kill everything, forget id and reservations (ForgetAgent)

Status updates, whoever sends them (built-in runs, custom executors, the agent itself)::

    report --> stamped (time, uuid, agent id; drain rewrites KILLING/KILLED); an executor's
               UPDATE keeps its uuid and gets the agent's time
           --> the update book (``meseta.agent.update_book``): CheckpointRecord, one in flight
               per task --> ToMaster(STATUS_UPDATE); ACKNOWLEDGE releases the next; an ended run
               whose updates are all acknowledged is forgotten (ForgetRun)
"""

from __future__ import annotations

import base64
import logging
import random
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from meseta import MESOS_COMPAT_VERSION
from meseta.agent import disk_quota as disk_rules
from meseta.agent import gc as gc_rules
from meseta.agent import qos as qos_rules
from meseta.agent.effects import (
    AdoptExecutor,
    AdoptTask,
    CreateContainer,
    Effect,
    ExpectPings,
    ForgetAgent,
    GrowContainer,
    Log,
    ReleaseContainer,
    RemoveSandbox,
    RunKey,
    SaveAgent,
    SaveResources,
    ToExecutor,
    ToMaster,
)
from meseta.agent.options import AgentOptions
from meseta.agent.recovery_plan import Discard, Fate, Rebuild, SavedRun
from meseta.agent.runs import (
    AGENT,
    EXECUTOR_TERMINATED,
    KINDS,
    REREGISTRATION_TIMEOUT,
    CommandRun,
    CustomRun,
    DefaultRun,
    ExecutorRun,
    Outbox,
    Report,
    RunEnded,
    TaskRecord,
)
from meseta.agent.update_book import UpdateBook
from meseta.core.reservations import checkpointed as checkpointed_part
from meseta.core.reservations import stripped
from meseta.core.resources import ResourceError, Resources, parse_json
from meseta.protocol.ids import id_json, id_problem
from meseta.protocol.task_states import TERMINAL, TaskState

Run = TypeVar("Run", bound=ExecutorRun)
MAX_COMPLETED_EXECUTORS = 150  # --max_completed_executors_per_framework, roughly


def total_with(flags: Resources, checkpointed: Resources) -> Resources | None:
    """The agent's total: its flag resources with the checkpointed ones carved out of them,
    ``flags - stripped(checkpointed) + checkpointed``; None when the flags cannot hold them."""
    base = stripped(checkpointed)
    if not flags.contains(base):
        return None
    return flags - base + checkpointed


class ExecutorCallRejected(Exception):
    """An executor call refused before anything changed: the HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class AgentMachine:
    def __init__(self, options: AgentOptions, resources: Resources, attributes: list[dict[str, Any]], *,
                 agent_id: str | None = None, checkpointed: Resources = Resources(), seed: int = 0) -> None:
        self.options = options
        self.hostname = options.hostname or options.ip
        self.port = options.port
        self.ip = options.ip
        self.attributes = attributes
        self.flag_resources = resources
        total = total_with(resources, checkpointed)
        self.starting_afresh = total is None  # the checkpointed reservations no longer fit the flags
        self.agent_id = None if total is None else agent_id
        self.checkpointed = Resources() if total is None else checkpointed
        self.resources = resources if total is None else total
        self.drain_config: dict[str, Any] | None = None
        self.frameworks: dict[str, dict[str, Any]] = {}  # framework id -> FrameworkInfo
        self.executors: dict[tuple[str, str], ExecutorRun] = {}  # (framework, executor) -> live run
        self.completed_executors: list[ExecutorRun] = []
        self.book = UpdateBook(options.status_update_retry_min, options.status_update_retry_max)
        self.gc_scheduled: dict[RunKey, float] = {}  # ended run -> when it ended
        self.qos = qos_rules.LoadThresholds(options.qos_load_threshold_5min, options.qos_load_threshold_15min)
        self.metrics: dict[str, int] = {"executors_preempted": 0}
        self._rng = random.Random(seed)

    # ================================================================ identity
    def handle_start(self, now: float) -> list[Effect]:
        """Checkpointed reservations make the total; ones the flags no longer hold start us afresh."""
        if not self.starting_afresh:
            return []
        self.starting_afresh = False
        return [Log(logging.WARNING, "agent: checkpointed resources no longer fit --resources; starting afresh"),
                ForgetAgent()]

    def agent_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"hostname": self.hostname, "port": self.port,
                                "resources": self.resources.to_json(), "attributes": self.attributes}
        if self.agent_id:
            info["id"] = id_json(self.agent_id)
        return info

    def registration_call(self) -> dict[str, Any]:
        """REGISTER (first time) or REREGISTER with every live task and the ended ones whose last
        updates are not acknowledged yet (as Mesos does, so the master does not take a task that
        finished while the agent was away for lost)."""
        if self.agent_id is None:
            return {"type": "REGISTER", "agent_info": self.agent_info(), "version": MESOS_COMPAT_VERSION}
        live = [(run, t) for run in self.executors.values() for t in run.tasks.values()]
        ended = list(self.book.unacknowledged_ended())
        return {
            "type": "REREGISTER",
            "agent_info": self.agent_info(),
            "version": MESOS_COMPAT_VERSION,
            "frameworks": list(self.frameworks.values()),
            "executor_infos": [{**run.executor_info, "framework_id": id_json(run.framework_id)}
                               for run in self.executors.values() if run.kind == "CUSTOM"],
            "tasks": [{"framework_id": id_json(run.framework_id), "info": t.info, "state": t.state,
                       "executor_id": run.executor_id if run.kind == "CUSTOM" else "",
                       "resources": t.info.get("resources")} for run, t in live + ended],
        }

    def new_uuid(self) -> str:
        return base64.b64encode(uuid.UUID(int=self._rng.getrandbits(128), version=4).bytes).decode()

    # ================================================================ the master's messages
    def handle_master_message(self, message: Mapping[str, Any], now: float) -> list[Effect]:
        kind = str(message.get("type"))
        handler = _MASTER_HANDLERS.get(kind)
        if handler is None:
            return []
        out: Outbox = []
        handler(self, out, message, now)
        return self._settle(out, now)

    def _on_registered(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        payload = message[str(message["type"]).lower()]
        self.agent_id = str(payload["agent_id"]["value"])
        out.append(SaveAgent(self.agent_id, self.agent_info()))
        out.append(ExpectPings(float(payload.get("ping_interval_seconds", 15))
                               * int(payload.get("max_ping_timeouts", 5))))
        out.extend(self.book.in_flight())

    def _on_run_task(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        framework_info, task = message["framework_info"], message["task"]
        framework_id = framework_info["id"]["value"]
        executor_info = task.get("executor")
        if executor_info is None:  # a command task: the built-in command executor, id = task id
            task_id = task["task_id"]["value"]
            executor_info = {"executor_id": task["task_id"], "name": f"Command Executor (Task: {task_id})",
                             "source": task_id, "framework_id": id_json(framework_id)}
            run = self._new_run(out, CommandRun, framework_info, executor_info, _resources_of(task),
                                task.get("container"))
            run.launch(out, task)
            return
        existing = self.executors.get((framework_id, executor_info["executor_id"]["value"]))
        if isinstance(existing, CustomRun) and not existing.terminated:
            self._grow(out, existing, _resources_of(task), _resources_of(task))
            existing.launch(out, task)
            return
        custom = self._new_run(out, CustomRun, framework_info, executor_info,
                               _resources_of(task) + _resources_of(executor_info), executor_info.get("container"))
        custom.launch(out, task)
        custom.start(out)

    def _on_run_task_group(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        framework_info, executor_info = message["framework_info"], message["executor"]
        tasks = message["task_group"]["tasks"]
        existing = self.executors.get((framework_info["id"]["value"], executor_info["executor_id"]["value"]))
        group_resources = sum((_resources_of(t) for t in tasks), _resources_of(executor_info))
        if existing is not None and not existing.terminated:
            self._grow(out, existing, group_resources, sum((_resources_of(t) for t in tasks), Resources()))
            existing.launch_group(out, tasks)
            return
        if executor_info.get("type") == "CUSTOM":
            custom = self._new_run(out, CustomRun, framework_info, executor_info, group_resources,
                                   executor_info.get("container"))
            custom.launch_group(out, tasks)
            custom.start(out)
            return
        run = self._new_run(out, DefaultRun, framework_info, executor_info, group_resources)
        run.launch_group(out, tasks)

    def _on_kill_task(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        framework_id, task_id = message["framework_id"]["value"], message["task_id"]["value"]
        for (fid, _), run in self.executors.items():
            if fid == framework_id and task_id in run.tasks:
                run.kill(out, task_id, message.get("kill_policy"))
                return
        # Unknown here: tell the scheduler it is gone (the agent has no such task).
        out.append(Report(framework_id, {"task_id": id_json(task_id), "state": TaskState.TASK_LOST,
                                         "source": AGENT, "reason": "REASON_TASK_UNKNOWN",
                                         "message": "Task is unknown to the agent"}, None))

    def _on_acknowledge(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        framework_id, task_id = message["framework_id"]["value"], message["task_id"]["value"]
        self.book.acknowledge(out, framework_id, task_id, message["uuid"], now)

    def _on_framework_message(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        run = self.executors.get((message["framework_id"]["value"], message["executor_id"]["value"]))
        if isinstance(run, CustomRun):
            run.send(out, {"type": "MESSAGE", "message": {"data": message["data"]}})

    def _on_shutdown_executor(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        run = self.executors.get((message["framework_id"]["value"], message["executor_id"]["value"]))
        if run is not None:
            run.shutdown(out)

    def _on_shutdown_framework(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        self._shutdown_framework(out, message["framework_id"]["value"])

    def _shutdown_framework(self, out: Outbox, framework_id: str) -> None:
        for (fid, _), run in list(self.executors.items()):
            if fid == framework_id:
                run.shutdown(out)
        self.book.drop_framework(framework_id)

    def _on_checkpoint_resources(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        """CHECKPOINT_RESOURCES: the master's view of our reservations and volumes."""
        wanted = checkpointed_part(parse_json(message.get("resources") or []))
        total = total_with(self.flag_resources, wanted)
        if total is None:
            out.append(Log(logging.ERROR, f"agent {self.port}: checkpointed resources {wanted.to_text()} "
                                          "do not fit our resources"))
            return
        out.append(SaveResources(wanted, self.checkpointed))
        self.checkpointed, self.resources = wanted, total

    def _on_drain(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        """DRAIN: kill every task, grace capped by max_grace_period; None ends draining."""
        config = message.get("drain_config")
        self.drain_config = config
        if config is None:
            return
        cap = config.get("max_grace_period")
        for run in list(self.executors.values()):
            for task_id, task in list(run.tasks.items()):
                policy = task.info.get("kill_policy") or {}
                if cap is not None:
                    own = (policy.get("grace_period") or {}).get("nanoseconds")
                    nanos = cap["nanoseconds"] if own is None else min(int(own), int(cap["nanoseconds"]))
                    policy = {**policy, "grace_period": {"nanoseconds": nanos}}
                run.kill(out, task_id, policy or None)

    def _on_shutdown(self, out: Outbox, message: Mapping[str, Any], now: float) -> None:
        out.append(Log(logging.WARNING, f"agent {self.port}: master asked us to shut down: {message.get('shutdown')}"))
        for framework_id in list(self.frameworks):
            self._shutdown_framework(out, framework_id)
        self.agent_id = None
        out.append(ForgetAgent())
        self.checkpointed, self.resources, self.drain_config = Resources(), self.flag_resources, None

    # ================================================================ runs
    def _new_run(self, out: Outbox, cls: type[Run], framework_info: dict[str, Any],
                 executor_info: dict[str, Any], resources: Resources = Resources(),
                 container: dict[str, Any] | None = None, container_id: str | None = None) -> Run:
        """A new run, or with ``container_id`` one found again by recovery (its sandbox exists)."""
        assert self.agent_id is not None
        key = RunKey(self.agent_id, str(framework_info["id"]["value"]), str(executor_info["executor_id"]["value"]),
                     container_id or str(uuid.UUID(int=self._rng.getrandbits(128), version=4)))
        for kind, value in zip(("agent id", "framework id", "executor id", "container id"), key, strict=True):
            problem = id_problem(kind, value)
            if problem is not None:
                raise ValueError(problem)
        self.frameworks[key.framework_id] = framework_info
        run = cls(key, framework_info, executor_info, resources)
        out.append(CreateContainer(key, run.kind, framework_info, executor_info, resources, container,
                                   recovered=container_id is not None))
        self.executors[(key.framework_id, key.executor_id)] = run
        return run

    def _grow(self, out: Outbox, run: ExecutorRun, linked: Resources, added: Resources) -> None:
        """More tasks for a running executor: volumes linked, and its limits follow its resources."""
        run.allocated = run.allocated + added
        out.append(GrowContainer(run.key, linked, run.allocated))

    def run_of(self, key: RunKey) -> ExecutorRun | None:
        """The live run ``key`` names (None once it has ended: late news of it changes nothing)."""
        run = self.executors.get((key.framework_id, key.executor_id))
        return run if run is not None and run.key == key else None

    def _task_event(self, key: RunKey, task_id: str) -> tuple[ExecutorRun, TaskRecord] | None:
        run = self.run_of(key)
        task = run.tasks.get(task_id) if run is not None else None
        return (run, task) if run is not None and task is not None else None

    def handle_task_fetched(self, key: RunKey, task_id: str, error: str | None, now: float) -> list[Effect]:
        return self._on_task(key, task_id, now, lambda out, run, task: run.on_fetched(out, task, error))

    def handle_task_launched(self, key: RunKey, task_id: str, now: float) -> list[Effect]:
        return self._on_task(key, task_id, now, lambda out, run, task: run.on_launched(out, task, now))

    def handle_task_launch_failed(self, key: RunKey, task_id: str, message: str, now: float) -> list[Effect]:
        return self._on_task(key, task_id, now, lambda out, run, task: run.on_launch_failed(out, task, message))

    def handle_task_exited(self, key: RunKey, task_id: str, succeeded: bool, description: str,
                           limitation: str | None, now: float) -> list[Effect]:
        return self._on_task(key, task_id, now, lambda out, run, task: run.on_exited(
            out, task, succeeded, description, limitation))

    def handle_health_probed(self, key: RunKey, task_id: str, ok: bool, now: float) -> list[Effect]:
        return self._on_task(key, task_id, now, lambda out, run, task: run.on_probed(out, task, ok, now))

    def _on_task(self, key: RunKey, task_id: str, now: float, step: Any) -> list[Effect]:
        found = self._task_event(key, task_id)
        if found is None:
            return []
        out: Outbox = []
        step(out, *found)
        return self._settle(out, now)

    def handle_container_networked(self, key: RunKey, network_infos: list[dict[str, Any]], now: float) -> list[Effect]:
        """The container joined its networks: every later status of its tasks reports the addresses."""
        run = self.run_of(key)
        if run is not None:
            run.network_infos = [dict(info) for info in network_infos]
        return []

    def handle_executor_launched(self, key: RunKey, now: float) -> list[Effect]:
        return self._on_custom(key, now, lambda out, run: run.on_started(out, now))

    def handle_executor_launch_failed(self, key: RunKey, message: str, now: float) -> list[Effect]:
        return self._on_custom(key, now, lambda out, run: run.on_start_failed(out, message))

    def handle_executor_exited(self, key: RunKey, code: int | None, signal: int | None, description: str,
                               limitation: str | None, now: float) -> list[Effect]:
        return self._on_custom(key, now, lambda out, run: run.on_executor_exited(
            out, code, signal, description, limitation))

    def handle_executor_disconnected(self, key: RunKey, now: float) -> list[Effect]:
        run = self.run_of(key)
        if isinstance(run, CustomRun):
            run.connected = False
        return []

    def _on_custom(self, key: RunKey, now: float, step: Any) -> list[Effect]:
        run = self.run_of(key)
        if not isinstance(run, CustomRun):
            return []
        out: Outbox = []
        step(out, run)
        return self._settle(out, now)

    def handle_timer(self, key: tuple[str, ...], now: float) -> list[Effect]:
        """("health", *run, task) probes a task; ("register", *run, reason) is a subscription deadline."""
        out: Outbox = []
        if key[0] == "health":
            found = self._task_event(RunKey(*key[1:5]), key[5])
            if found is not None:
                found[0].on_health_due(out, found[1])
        elif key[0] == "register":
            run = self.run_of(RunKey(*key[1:5]))
            if isinstance(run, CustomRun):
                run.on_registration_deadline(out, key[5])
        return self._settle(out, now)

    # ================================================================ the executor API
    def executor_for_call(self, framework_id: str, executor_id: str, *, subscribing: bool = False) -> CustomRun:
        """The custom executor a call comes from, or ExecutorCallRejected with Mesos's status."""
        if framework_id not in self.frameworks:
            raise ExecutorCallRejected(400, "Framework cannot be found")
        run = self.executors.get((framework_id, executor_id))
        if run is None or (subscribing and not isinstance(run, CustomRun)):
            raise ExecutorCallRejected(400, "Executor cannot be found")
        if not isinstance(run, CustomRun) or not (subscribing or run.connected):
            raise ExecutorCallRejected(403, "Executor is not subscribed")
        return run

    def handle_executor_subscribed(self, key: RunKey, unacknowledged_updates: Iterable[dict[str, Any]],
                                   now: float) -> list[Effect]:
        """Its stream is open: SUBSCRIBED, what was queued, then what it never saw acknowledged
        (duplicates of updates we have are dropped by their uuid; invalid ones skipped, logged with
        why: the subscription itself stands, as in Mesos)."""
        run = self.run_of(key)
        if not isinstance(run, CustomRun):
            return []
        out: Outbox = []
        run.on_subscribed(out, self.agent_info())
        effects = self._settle(out, now)
        for status in unacknowledged_updates:
            try:
                effects += self.handle_executor_update(run, status, now)
            except ExecutorCallRejected as exc:
                effects.append(Log(logging.WARNING, f"agent {self.port}: executor {run.executor_id} of "
                                                    f"{run.framework_id} re-sent an update not taken: {exc.message}"))
        return effects

    def handle_executor_update(self, run: CustomRun, status: dict[str, Any], now: float) -> list[Effect]:
        """UPDATE from an executor (its fields already typed at the edge): it may speak only for
        its own tasks; checkpointed, delivered reliably and ACKNOWLEDGED at once (spec 2.1)."""
        if status.get("source") != "SOURCE_EXECUTOR":
            raise ExecutorCallRejected(400, "Received Call from executor with invalid source: expecting "
                                            "SOURCE_EXECUTOR")
        if status["state"] == TaskState.TASK_STAGING:
            raise ExecutorCallRejected(400, "Received TASK_STAGING from executor")
        if (status.get("executor_id") or {}).get("value") not in (None, run.executor_id):
            raise ExecutorCallRejected(400, "Received status update from executor with a mismatched executor id")
        task = run.tasks.get(status["task_id"]["value"])
        if task is None:
            raise ExecutorCallRejected(400, f"Task '{status['task_id']['value']}' is not a task of executor "
                                            f"'{run.executor_id}'")
        status = {**status, "executor_id": run.executor_info["executor_id"]}
        run.record_update(task, status["state"])
        effects: list[Effect] = []
        self._status_update(effects, run.key, run.framework_id, status, now)
        effects.append(ToExecutor(run.key, {"type": "ACKNOWLEDGED", "acknowledged": {
            "task_id": status["task_id"], "uuid": status["uuid"]}}))
        return effects

    def handle_executor_message(self, run: CustomRun, data: str, now: float) -> list[Effect]:
        return [ToMaster({"type": "EXECUTOR_MESSAGE", "framework_id": id_json(run.framework_id),
                          "executor_id": id_json(run.executor_id), "data": data})]

    # ================================================================ status updates
    def _settle(self, out: Outbox, now: float) -> list[Effect]:
        """Turn the notes of an outbox into effects, in order."""
        effects: list[Effect] = []
        for item in out:
            kind = type(item)
            if kind is Report:
                status = {**item.status, "uuid": self.new_uuid()}
                run = self.run_of(item.run) if item.run is not None else None
                if run is not None:
                    status["container_status"] = self._container_status(run, status.get("container_status"))
                self._status_update(effects, item.run, item.framework_id, status, now)
            elif kind is RunEnded:
                self._run_ended(effects, item.run, now)
            else:
                effects.append(item)
        return effects

    def _container_status(self, run: ExecutorRun, given: Any) -> dict[str, Any]:
        """Mesos's ContainerStatus of every update: the container's id and its addresses (the agent's
        own for a container on the host's network), over whatever the executor said."""
        status = dict(given) if isinstance(given, dict) else {}
        status["container_id"] = id_json(run.container_id)
        status["network_infos"] = run.network_infos if run.network_infos is not None else [
            {"ip_addresses": [{"protocol": "IPv4", "ip_address": self.ip}]}]
        return status

    def _status_update(self, effects: list[Any], run: RunKey | None, framework_id: str, status: dict[str, Any],
                       now: float) -> None:
        """Hand one update (from any executor, or the agent) to the reliable delivery path, stamped
        with the agent's time (an executor's own timestamp is overwritten, as Mesos does)."""
        status = {**status, "timestamp": now}
        if self.agent_id:
            status["agent_id"] = id_json(self.agent_id)
        if self.drain_config is not None and status.get("state") in ("TASK_KILLING", "TASK_KILLED"):
            status["reason"] = "REASON_AGENT_DRAINING"
            if status["state"] == "TASK_KILLED" and self.drain_config.get("mark_gone"):
                status["state"] = "TASK_GONE_BY_OPERATOR"
        self.book.add(effects, run if self.checkpoints(framework_id) else None, framework_id, status, now)

    def checkpoints(self, framework_id: str) -> bool:
        """Whether the framework asked for checkpointing: only then are its tasks' status updates
        and acknowledgements recorded (Mesos keeps no update stream on disk for the others; their
        runs are discarded, not recovered, when the agent restarts)."""
        return (self.frameworks.get(framework_id) or {}).get("checkpoint") is True

    def _run_ended(self, effects: list[Any], run: ExecutorRun, now: float) -> None:
        if self.executors.get((run.framework_id, run.executor_id)) is run:
            del self.executors[(run.framework_id, run.executor_id)]
        self.book.retire(effects, run)
        self.gc_scheduled[run.key] = now
        effects.append(ReleaseContainer(run.key))  # whatever the executor left behind dies with it
        self.completed_executors.append(run)
        del self.completed_executors[:-MAX_COMPLETED_EXECUTORS]
        effects.append(ToMaster({"type": "EXECUTOR_EXITED", "framework_id": id_json(run.framework_id),
                                 "executor_id": id_json(run.executor_id), "status": run.exit_status,
                                 "custom": run.kind == "CUSTOM"}))

    # ================================================================ ticks
    def handle_retry_tick(self, now: float) -> list[Effect]:
        """Every second: the updates whose retry time has come go again."""
        return list(self.book.due(now))

    def handle_gc_tick(self, disk_usage: float, now: float) -> list[Effect]:
        """Every disk-watch interval: the ended sandboxes the disk (``disk_usage``, 0..1) can no
        longer keep go (``meseta.agent.gc``)."""
        limit = gc_rules.max_age(self.options.gc_delay, self.options.gc_disk_headroom, disk_usage)
        doomed = gc_rules.due(self.gc_scheduled, now, limit)
        for key in doomed:
            del self.gc_scheduled[key]
        return [RemoveSandbox(key) for key in doomed]

    def handle_load(self, load_5min: float, load_15min: float, now: float) -> list[Effect]:
        """QoS: over a threshold, the executors holding revocable resources go first (``meseta.agent.qos``)."""
        overload = qos_rules.overload(self.qos, load_5min, load_15min)
        if overload is None:
            return []
        out: Outbox = []
        for run in list(self.executors.values()):
            if run.live() and qos_rules.holds_revocable(run.resource_lists()):
                out.append(Log(logging.WARNING, f"agent {self.port}: preempting executor {run.executor_id} of "
                                                f"{run.framework_id}: {overload}"))
                self.metrics["executors_preempted"] += 1
                run.destroy(out, qos_rules.preempted_state(run.framework_info), qos_rules.PREEMPTED_REASON,
                            f"Container preempted by QoS: {overload}")
        return self._settle(out, now)

    def live_runs(self) -> list[RunKey]:
        """The runs whose sandboxes disk/du measures."""
        return [run.key for run in self.executors.values() if run.live()]

    def handle_disk_usage(self, key: RunKey, used_bytes: int, now: float) -> list[Effect]:
        """disk/du measured a sandbox; over its quota, with enforcement on, the container goes."""
        run = self.run_of(key)
        if run is None or not run.live():
            return []
        run.disk_used = used_bytes
        problem = disk_rules.disk_limitation(used_bytes, disk_rules.quota_bytes(run.allocated))
        if problem is None or not self.options.enforce_container_disk_quota:
            return []
        out: Outbox = [Log(logging.WARNING, f"agent {self.port}: {run.executor_id} of {run.framework_id}: {problem}")]
        run.destroy(out, TaskState.TASK_FAILED, disk_rules.DISK_REASON, problem)
        return self._settle(out, now)

    def handle_stopping(self, now: float) -> list[Effect]:
        """The agent stops: every executor is told to shut down (the actor then ends its processes)."""
        out: Outbox = []
        for run in list(self.executors.values()):
            run.shutdown(out)
        return self._settle(out, now)

    # ================================================================ recovery
    def handle_recovered(self, plans: Iterable[Discard | Rebuild], now: float) -> list[Effect]:
        """Rebuild the runs recovery kept (``meseta.agent.recovery_plan``); nothing is launched again."""
        out: Outbox = []
        for plan in plans:
            if isinstance(plan, Rebuild):
                self._rebuild(out, plan, now)
        return self._settle(out, now)

    def _rebuild(self, out: Outbox, plan: Rebuild, now: float) -> None:
        saved = plan.run
        run = self._new_run(out, KINDS[saved.kind], saved.framework_info, saved.info["executor_info"],
                            _resources_json(saved.info.get("resources")), _saved_container(saved),
                            container_id=saved.info["container_id"])
        for task, fate in zip(saved.tasks, plan.task_fates, strict=True):
            record = run.tasks[task.task_id] = TaskRecord(task.info, task.replayed_state() or TaskState.TASK_STAGING)
            self.book.replay(run.key, record.task_id, task.records, now)
            if fate == Fate.GONE:
                run.report(out, record, TaskState.TASK_FAILED, "The task's process was gone when the agent "
                           "recovered", EXECUTOR_TERMINATED, source=AGENT)
            elif fate == Fate.ADOPT:
                record.launched = True  # its wrapper runs, or has ended (then its status comes at once)
                out.append(AdoptTask(run.key, record.task_id, task.pid or 0, task.directory / "exit.status"))
                if record.info.get("health_check") and record.state == TaskState.TASK_RUNNING:
                    run.watch_health(out, record, now)  # probing resumes where it was
        if isinstance(run, CustomRun):
            self._recover_executor(out, run, plan, now)
        out.append(Log(logging.INFO, f"agent {self.port}: recovered {run.executor_id} with {len(run.tasks)} task(s)"))
        if not isinstance(run, CustomRun) and all(t.state in TERMINAL for t in run.tasks.values()):
            run.finish_if_idle(out)

    def _recover_executor(self, out: Outbox, run: CustomRun, plan: Rebuild, now: float) -> None:
        """A custom executor still running is adopted and given --executor-reregistration-timeout
        to subscribe again; one that is gone takes its unfinished tasks with it."""
        if plan.executor_fate == Fate.GONE:
            for record in run.tasks.values():
                run.report(out, record, TaskState.TASK_FAILED, "The executor was gone when the agent recovered",
                           EXECUTOR_TERMINATED, source=AGENT)
            run.end(out)
            return
        out.append(AdoptExecutor(run.key, plan.run.pid or 0, plan.run.directory / "exit.status"))
        run.on_started(out, now, self.options.executor_reregistration_timeout, REREGISTRATION_TIMEOUT)


_MASTER_HANDLERS = {
    "REGISTERED": AgentMachine._on_registered,
    "REREGISTERED": AgentMachine._on_registered,
    "RUN_TASK": AgentMachine._on_run_task,
    "RUN_TASK_GROUP": AgentMachine._on_run_task_group,
    "KILL_TASK": AgentMachine._on_kill_task,
    "ACKNOWLEDGE": AgentMachine._on_acknowledge,
    "FRAMEWORK_MESSAGE": AgentMachine._on_framework_message,
    "SHUTDOWN_EXECUTOR": AgentMachine._on_shutdown_executor,
    "SHUTDOWN_FRAMEWORK": AgentMachine._on_shutdown_framework,
    "CHECKPOINT_RESOURCES": AgentMachine._on_checkpoint_resources,
    "DRAIN": AgentMachine._on_drain,
    "SHUTDOWN": AgentMachine._on_shutdown,
}


def _resources_of(info: Mapping[str, Any]) -> Resources:
    return _resources_json(info.get("resources"))


def _resources_json(items: Any) -> Resources:
    try:
        return parse_json(items or [])
    except (ValueError, ResourceError):
        return Resources()


def _saved_container(saved: SavedRun) -> dict[str, Any] | None:
    """The ContainerInfo a recovered run was made with, as at launch: a command task's own, a custom
    executor's (its image overlay and networks are released with it)."""
    if saved.kind == "COMMAND":
        container = saved.tasks[0].info.get("container") if saved.tasks else None
    elif saved.kind == "CUSTOM":
        container = saved.info["executor_info"].get("container")
    else:
        container = None
    return container if isinstance(container, dict) else None
