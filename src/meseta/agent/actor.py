"""The agent: registers with the master, runs what it is told, reports every update reliably.

Connection lifecycle (``run``)::

    REGISTER (first time) | REREGISTER (known agent id)  --> master stream
        REGISTERED: remember the agent id (also on disk); resend in-flight updates
        stream ends / no PING for ping_interval x max_ping_timeouts --> backoff --> REREGISTER
        SHUTDOWN (master removed us) --> kill everything, forget id and reservations, register afresh

Checkpointed reservations and volumes (``meseta.agent.checkpoint``) make the agent's total;
after a restart the agent re-registers with its old id and that total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from meseta import MESOS_COMPAT_VERSION
from meseta.agent import checkpoint, paths, recovery
from meseta.agent import disk_quota as disk_rules
from meseta.agent import gc as gc_rules
from meseta.agent import qos as qos_rules
from meseta.agent.containerizer.cgroup_limits import Limits, compute_limits
from meseta.agent.containerizer.cgroups import CgroupError, CgroupIsolation
from meseta.agent.containerizer.images import ImageError, ImageStore, image_name
from meseta.agent.containerizer.launcher import Launcher
from meseta.agent.executors import CommandExecutor, CustomExecutor, DefaultExecutor, ExecutorRun, new_uuid
from meseta.agent.fetcher import Fetcher, FetcherCache
from meseta.agent.status_updates import StatusUpdateManager
from meseta.core.reservations import checkpointed as checkpointed_part
from meseta.core.reservations import is_revocable, volumes
from meseta.core.resources import Resources, parse_json
from meseta.protocol.agent_wire import AGENT_CALL_PATH, AGENT_STREAM_PATH, STREAM_ID_HEADER
from meseta.protocol.recordio import RecordIODecoder
from meseta.runtime.fast_http import FastHttpError, FastPoster
from meseta.runtime.leader import locate_masters, while_leading
from meseta.runtime.zk import is_zk_url

log = logging.getLogger(__name__)

REGISTRATION_BACKOFF_MAX = 60.0


RECOVERING_RETRY = 0.25  # seconds (at most) between tries while the leader answers 503


class MasterNotReady(Exception):
    """503 from the master: it is recovering its registry, or knows no leader."""


class Agent:
    def __init__(
        self,
        *,
        master: str,
        ip: str,
        port: int,
        work_dir: Path,
        resources: Resources,
        attributes: list[dict[str, Any]],
        launcher: Launcher,
        hostname: str | None = None,
        switch_user: bool = True,
        update_retry_seconds: float = 10.0,
        update_retry_max_seconds: float = 600.0,
        recover: str = "reconnect",
        qos: qos_rules.LoadThresholds = qos_rules.LoadThresholds(),
        qos_interval: float = 1.0,
        pid_namespace: bool = False,
        cgroups: CgroupIsolation | None = None,
        fetcher: Fetcher | None = None,
        gc_delay: float = gc_rules.DEFAULT_GC_DELAY,
        gc_disk_headroom: float = gc_rules.DEFAULT_DISK_HEADROOM,
        disk_watch_interval: float = gc_rules.DEFAULT_DISK_WATCH_INTERVAL,
        disk_du: bool = False,
        enforce_disk_quota: bool = False,
        container_disk_watch_interval: float = disk_rules.DEFAULT_WATCH_INTERVAL,
        docker_registry: Path | None = None,
        executor_reregistration_timeout: float = 2.0,
    ) -> None:
        self.master_flag = master  # HOST:PORT or zk://.../path (followed in run())
        self.master = "" if is_zk_url(master) else master if master.startswith("http") else f"http://{master}"
        self.ip, self.port = ip, port
        self.hostname = hostname or ip
        self.work_dir = work_dir
        self.resources = resources
        self.attributes = attributes
        self.launcher = launcher
        self.switch_user = switch_user
        self.flag_resources = resources
        self.agent_id: str | None = checkpoint.load_agent_id(work_dir)
        self.checkpointed = checkpoint.load_resources(work_dir)
        total = checkpoint.total_with(resources, self.checkpointed)
        if total is None:
            log.warning("agent: checkpointed resources no longer fit --resources; starting afresh")
            checkpoint.forget_agent(work_dir)
            self.agent_id, self.checkpointed, total = None, Resources(), resources
        self.resources = total
        self.drain_config: dict[str, Any] | None = None
        self.stream_id: str | None = None
        self.frameworks: dict[str, dict[str, Any]] = {}  # framework id -> FrameworkInfo
        self.executors: dict[tuple[str, str], ExecutorRun] = {}
        self.completed_executors: list[ExecutorRun] = []
        self._finished: dict[tuple[str, str], ExecutorRun] = {}  # (framework, task) -> its ended run
        self.updates = StatusUpdateManager(update_retry_seconds, update_retry_max_seconds)
        self.recover_mode = recover  # reconnect: find the tasks again; cleanup: kill what is left
        self.start_time = time.time()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))  # the stream only
        self._poster = self._poster_for(self.master)
        self._last_ping = time.monotonic()
        self._ping_deadline = 75.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.qos, self.qos_interval = qos, qos_interval
        self.pid_namespace, self.cgroups = pid_namespace, cgroups
        self.fetcher = fetcher or Fetcher(FetcherCache(work_dir / "fetch"))
        self.gc_delay, self.gc_disk_headroom, self.disk_watch_interval = gc_delay, gc_disk_headroom, disk_watch_interval
        self.gc_scheduled: dict[str, float] = {}  # finished sandbox -> when its executor ended
        self.disk_du, self.enforce_disk_quota = disk_du, enforce_disk_quota
        self.container_disk_watch_interval = container_disk_watch_interval
        self.images = ImageStore(work_dir, docker_registry)
        self.executor_reregistration_timeout = executor_reregistration_timeout  # Mesos's default: 2 s
        self.metrics: dict[str, int] = {"executors_preempted": 0}

    # ================================================================ identity
    def agent_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.resources.to_json(),
            "attributes": self.attributes,
        }
        if self.agent_id:
            info["id"] = {"value": self.agent_id}
        return info

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

    # ================================================================ master connection
    async def run(self) -> None:
        await recovery.recover(self)
        masters = await locate_masters(self.master_flag)
        backoff = 1.0
        while True:
            address = await masters.wait_leader()
            if self.master != f"http://{address}":
                log.info("agent %s: following the master at %s", self.port, address)
                old, self.master, self._poster = self._poster, f"http://{address}", self._poster_for(address)
                await old.close()
            try:
                await while_leading(masters, address, self._connect_once())
                backoff = 1.0  # the stream ended, or a new leader: register (again) soon
            except MasterNotReady:
                backoff = RECOVERING_RETRY  # a new leader still loading its registry: it is close
            except (httpx.HTTPError, OSError, ValueError) as exc:
                log.info("agent %s: master connection failed: %s", self.port, exc)
            self.stream_id = None
            slept, _ = await while_leading(masters, address, asyncio.sleep(random.uniform(0, backoff)))
            backoff = min(backoff * 2, REGISTRATION_BACKOFF_MAX) if slept else 1.0  # a new leader: try it soon

    @staticmethod
    def _poster_for(master: str) -> FastPoster:
        host, _, port = master.removeprefix("http://").partition(":")
        return FastPoster(host or "127.0.0.1", int(port or 5050), connections=16)

    async def _connect_once(self) -> None:
        body = self._registration_body()
        async with self._client.stream("POST", self.master + AGENT_STREAM_PATH, json=body) as response:
            if response.status_code == 503:
                raise MasterNotReady("the master has not finished recovery (or no leader)")
            if response.status_code != 200:
                raise ValueError(f"master answered {response.status_code}")
            self.stream_id = response.headers.get(STREAM_ID_HEADER)
            decoder = RecordIODecoder()
            watchdog = self._spawn(self._ping_watchdog(response))
            try:
                async for chunk in response.aiter_raw():
                    for record in decoder.feed(chunk):
                        await self._dispatch(json.loads(record))
            finally:
                watchdog.cancel()

    def _registration_body(self) -> dict[str, Any]:
        if self.agent_id is None:
            return {"type": "REGISTER", "agent_info": self.agent_info(), "version": MESOS_COMPAT_VERSION}
        return {
            "type": "REREGISTER",
            "agent_info": self.agent_info(),
            "version": MESOS_COMPAT_VERSION,
            "frameworks": list(self.frameworks.values()),
            "executor_infos": [
                {**run.executor_info, "framework_id": {"value": run.framework_id}}
                for run in self.executors.values() if run.kind == "CUSTOM"
            ],
            "tasks": [
                {"framework_id": {"value": run.framework_id}, "info": t.info, "state": t.state,
                 "executor_id": run.executor_id if run.kind == "CUSTOM" else "", "resources": t.info.get("resources")}
                for run, t in self._reported_tasks()
            ],
        }

    def _reported_tasks(self) -> list[tuple[ExecutorRun, Any]]:
        """What a re-registration reports: every live task, and the ended ones whose last
        updates are not acknowledged yet (as Mesos does), so the master does not take a task
        that finished while the agent was away for lost."""
        live = [(run, t) for run in self.executors.values() for t in run.tasks.values()]
        ended = [(run, run.tasks[task_id]) for (fid, task_id), run in self._finished.items()
                 if task_id in run.tasks and self.updates.has_pending(fid, task_id)]
        return live + ended

    async def _ping_watchdog(self, response: httpx.Response) -> None:
        self._last_ping = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            if time.monotonic() - self._last_ping > self._ping_deadline:
                log.warning("agent %s: no PING from the master, re-registering", self.port)
                await response.aclose()
                return

    async def _dispatch(self, message: dict[str, Any]) -> None:
        try:
            await self._on_master_message(message)
        except Exception:  # one bad message must not take the agent down
            log.exception("agent %s: failed to handle %s", self.port, message.get("type"))

    async def _on_master_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("REGISTERED", "REREGISTERED"):
            self._on_registered(message[kind.lower()])
        elif kind == "PING":
            self._last_ping = time.monotonic()
            await self._call({"type": "PONG"})
        elif kind == "RUN_TASK":
            self._run_task(message["framework_info"], message["task"])
        elif kind == "RUN_TASK_GROUP":
            self._run_task_group(message["framework_info"], message["executor"], message["task_group"]["tasks"])
        elif kind == "KILL_TASK":
            self._kill_task(message["framework_id"]["value"], message["task_id"]["value"], message.get("kill_policy"))
        elif kind == "ACKNOWLEDGE":
            self._acknowledge(message["framework_id"]["value"], message["task_id"]["value"], message["uuid"])
        elif kind == "FRAMEWORK_MESSAGE":
            self._framework_message(message)
        elif kind == "SHUTDOWN_EXECUTOR":
            run = self.executors.get((message["framework_id"]["value"], message["executor_id"]["value"]))
            if run is not None:
                run.shutdown()
        elif kind == "SHUTDOWN_FRAMEWORK":
            self._shutdown_framework(message["framework_id"]["value"])
        elif kind == "CHECKPOINT_RESOURCES":
            self._checkpoint_resources(parse_json(message.get("resources") or []))
        elif kind == "DRAIN":
            self._drain(message.get("drain_config"))
        elif kind == "SHUTDOWN":
            log.warning("agent %s: master asked us to shut down: %s", self.port, message.get("shutdown"))
            for framework_id in list(self.frameworks):
                self._shutdown_framework(framework_id)
            self.agent_id = None
            checkpoint.forget_agent(self.work_dir)
            self.checkpointed, self.resources, self.drain_config = Resources(), self.flag_resources, None

    def _on_registered(self, payload: dict[str, Any]) -> None:
        self.agent_id = payload["agent_id"]["value"]
        checkpoint.save_agent(self.work_dir, self.agent_id, {**self.agent_info(), "id": {"value": self.agent_id}})
        self._ping_deadline = float(payload.get("ping_interval_seconds", 15)) * int(
            payload.get("max_ping_timeouts", 5))
        for update in self.updates.in_flight():
            self._spawn(self._forward(update))

    async def _call(self, body: dict[str, Any]) -> bool:
        if self.stream_id is None or self.agent_id is None:
            return False
        body = {**body, "agent_id": {"value": self.agent_id}}
        try:
            status, _ = await self._poster.post(AGENT_CALL_PATH, body, {STREAM_ID_HEADER: self.stream_id})
        except (FastHttpError, OSError, TimeoutError) as exc:
            log.info("agent %s: call %s failed: %r", self.port, body["type"], exc)
            return False
        return status == 202

    # ================================================================ tasks and executors

    def _checkpoint_resources(self, given: Resources) -> None:
        """CHECKPOINT_RESOURCES: the master's view of our reservations and volumes."""
        wanted = checkpointed_part(given)
        total = checkpoint.total_with(self.flag_resources, wanted)
        if total is None:
            log.error("agent %s: checkpointed resources %s do not fit our resources", self.port, wanted.to_text())
            return
        checkpoint.save_resources(self.work_dir, wanted, self.checkpointed)
        self.checkpointed, self.resources = wanted, total

    def _drain(self, config: dict[str, Any] | None) -> None:
        """DRAIN: kill every task, grace capped by max_grace_period; None ends draining."""
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
                run.kill(task_id, policy or None)

    def _link_volumes(self, sandbox: Path, resources: Resources) -> None:
        if volumes(resources):
            checkpoint.link_volumes(self.work_dir, sandbox, resources)

    def _new_run(self, cls: type[ExecutorRun], framework_info: dict[str, Any],
                 executor_info: dict[str, Any], resources: Resources = Resources(),
                 container: dict[str, Any] | None = None, container_id: str | None = None) -> ExecutorRun:
        """A new run, or with ``container_id`` one found again by recovery (its sandbox exists)."""
        framework_id = framework_info["id"]["value"]
        self.frameworks[framework_id] = framework_info
        recovered = container_id is not None
        container_id = container_id or str(uuid.uuid4())
        assert self.agent_id is not None
        where = (self.work_dir, self.agent_id, framework_id, executor_info["executor_id"]["value"], container_id)
        sandbox = paths.sandbox_dir(*where)  # validates the ids; the directories are made off the loop
        run = cls(
            framework_info=framework_info, executor_info=executor_info, container_id=container_id,
            sandbox=sandbox, launcher=self.launcher,
            base_env=self._executor_env(framework_info, executor_info, sandbox),
            send_update=self.status_update, on_terminated=self._executor_terminated,
            user=self._user(framework_info, executor_info.get("command") or {}),
            make_sandbox=None if recovered else (lambda: self._make_sandbox(run, where, resources)),
        )
        run.pid_namespace, run.fetcher = self.pid_namespace, self.fetcher
        run.meta_dir = paths.meta_run_dir(*where)  # so that a restarted agent finds the run again
        if self.cgroups is not None:
            try:
                run.cgroups = self.cgroups.prepare(container_id, _limits(resources, self.cgroups))
            except CgroupError as exc:
                run.setup_error = f"Failed to prepare the container's cgroups: {exc}"
        run.allocated, run.images = resources, self.images
        try:
            run.image = image_name((executor_info.get("container") if cls is CustomExecutor else container) or None)
        except ImageError as exc:
            run.setup_error = str(exc)
        self.executors[(framework_id, run.executor_id)] = run
        return run

    def _make_sandbox(self, run: ExecutorRun, where: tuple[Path, str, str, str, str], resources: Resources) -> None:
        """Off the loop, once per run: the sandbox, its volumes and the run's checkpoint."""
        self._link_volumes(paths.create_sandbox(*where), resources)
        if run.meta_dir is not None and self.agent_id is not None:
            info = {"kind": run.kind, "executor_info": run.executor_info, "container_id": run.container_id,
                    "sandbox": str(run.sandbox), "resources": run.allocated.to_json()}
            checkpoint.save_run(self.work_dir, self.agent_id, run.framework_info, info, run.meta_dir)

    def _grow(self, run: ExecutorRun, resources: Resources) -> None:
        """More tasks for a running executor: its container's limits follow its resources."""
        run.allocated = run.allocated + resources
        if run.cgroups is not None and self.cgroups is not None:
            try:
                run.cgroups.apply(_limits(run.allocated, self.cgroups))
            except CgroupError as exc:
                log.error("agent %s: cannot update the limits of %s: %s", self.port, run.container_id, exc)

    def _user(self, framework_info: dict[str, Any], command: dict[str, Any]) -> str | None:
        if not self.switch_user:
            return None
        user = command.get("user") or framework_info.get("user") or ""
        return user or None

    def _executor_env(self, framework_info: dict[str, Any], executor_info: dict[str, Any],
                      sandbox: Path) -> dict[str, str]:
        checkpoint = bool(framework_info.get("checkpoint"))
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "MESOS_FRAMEWORK_ID": framework_info["id"]["value"],
            "MESOS_EXECUTOR_ID": executor_info["executor_id"]["value"],
            "MESOS_DIRECTORY": str(sandbox),
            "MESOS_SANDBOX": str(sandbox),
            "MESOS_SLAVE_ID": self.agent_id or "",
            "MESOS_AGENT_ID": self.agent_id or "",
            "MESOS_SLAVE_PID": self.pid,
            "MESOS_AGENT_ENDPOINT": f"{self.ip}:{self.port}",
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
            "LIBPROCESS_PORT": "0",
        }
        if checkpoint:
            env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
        return env

    def _run_task(self, framework_info: dict[str, Any], task: dict[str, Any]) -> None:
        framework_id = framework_info["id"]["value"]
        executor_info = task.get("executor")
        if executor_info is None:  # a command task: the built-in command executor, id = task id
            executor_info = {"executor_id": task["task_id"], "name": f"Command Executor (Task: "
                             f"{task['task_id']['value']})", "source": task["task_id"]["value"],
                             "framework_id": {"value": framework_id}}
            run = self._new_run(CommandExecutor, framework_info, executor_info, _resources_of(task),
                                task.get("container"))
            assert isinstance(run, CommandExecutor)
            run.launch(task)
            return
        existing = self.executors.get((framework_id, executor_info["executor_id"]["value"]))
        if isinstance(existing, CustomExecutor) and not existing.terminated:
            self._link_volumes(existing.sandbox, _resources_of(task))
            self._grow(existing, _resources_of(task))
            existing.launch(task)
            return
        custom = self._new_run(CustomExecutor, framework_info, executor_info,
                               _resources_of(task) + _resources_of(executor_info))
        assert isinstance(custom, CustomExecutor)
        custom.launch(task)
        custom.spawn(custom.start(custom.base_env))

    def _run_task_group(self, framework_info: dict[str, Any], executor_info: dict[str, Any],
                        tasks: list[dict[str, Any]]) -> None:
        framework_id = framework_info["id"]["value"]
        existing = self.executors.get((framework_id, executor_info["executor_id"]["value"]))
        group_resources = sum((_resources_of(t) for t in tasks), _resources_of(executor_info))
        if existing is not None and not existing.terminated:
            self._link_volumes(existing.sandbox, group_resources)
            self._grow(existing, sum((_resources_of(t) for t in tasks), Resources()))
            existing.launch_group(tasks)
            return
        if executor_info.get("type") == "CUSTOM":
            custom = self._new_run(CustomExecutor, framework_info, executor_info, group_resources)
            assert isinstance(custom, CustomExecutor)
            custom.launch_group(tasks)
            custom.spawn(custom.start(custom.base_env))
            return
        run = self._new_run(DefaultExecutor, framework_info, executor_info, group_resources)
        assert isinstance(run, DefaultExecutor)
        run.launch_group(tasks)

    def _kill_task(self, framework_id: str, task_id: str, kill_policy: Any) -> None:
        for (fid, _), run in self.executors.items():
            if fid == framework_id and task_id in run.tasks:
                run.kill(task_id, kill_policy)
                return
        # Unknown here: tell the scheduler it is gone (the agent has no such task).
        status = {"task_id": {"value": task_id}, "state": "TASK_LOST", "source": "SOURCE_AGENT",
                  "reason": "REASON_TASK_UNKNOWN", "message": "Task is unknown to the agent",
                  "timestamp": time.time(), "uuid": new_uuid()}
        self.status_update(framework_id, status)

    def _shutdown_framework(self, framework_id: str) -> None:
        for (fid, _), run in list(self.executors.items()):
            if fid == framework_id:
                run.shutdown()
        self.updates.drop_framework(framework_id)

    def _executor_terminated(self, run: ExecutorRun) -> None:
        self.executors.pop((run.framework_id, run.executor_id), None)
        for task_id in run.tasks:  # until their last updates are acknowledged
            self._finished[(run.framework_id, task_id)] = run
            self._forget_if_done(run.framework_id, task_id)
        self.gc_scheduled[str(run.sandbox)] = time.time()
        if run.rootfs is not None:
            self._spawn(asyncio.to_thread(self.images.release, run.container_id))
        if self.cgroups is not None:  # whatever the executor left behind dies with its cgroups
            self._spawn(asyncio.to_thread(self.cgroups.release, run.container_id))
        self.completed_executors.append(run)
        del self.completed_executors[:-150]  # --max_completed_executors_per_framework, roughly
        status = run.exit_status
        self._spawn(self._call({"type": "EXECUTOR_EXITED", "framework_id": {"value": run.framework_id},
                                "executor_id": {"value": run.executor_id}, "status": status,
                                "custom": run.kind == "CUSTOM"}))

    def _framework_message(self, message: dict[str, Any]) -> None:
        run = self.executors.get((message["framework_id"]["value"], message["executor_id"]["value"]))
        if isinstance(run, CustomExecutor):
            run.send({"type": "MESSAGE", "message": {"data": message["data"]}})

    # ================================================================ status updates
    def status_update(self, framework_id: str, status: dict[str, Any]) -> None:
        """Hand one update (from any executor, or the agent) to the reliable delivery path."""
        if self.agent_id:
            status = {**status, "agent_id": {"value": self.agent_id}}
        if self.drain_config is not None and status.get("state") in ("TASK_KILLING", "TASK_KILLED"):
            status = {**status, "reason": "REASON_AGENT_DRAINING"}
            if status["state"] == "TASK_KILLED" and self.drain_config.get("mark_gone"):
                status["state"] = "TASK_GONE_BY_OPERATOR"
        update = {"framework_id": {"value": framework_id}, "status": status}
        self._record(framework_id, status["task_id"]["value"], {"update": update})
        to_send = self.updates.add(framework_id, update, time.monotonic())
        if to_send is not None:
            self._spawn(self._forward(to_send))

    async def _forward(self, update: dict[str, Any]) -> None:
        await self._call({"type": "STATUS_UPDATE", "update": update})

    def _acknowledge(self, framework_id: str, task_id: str, uuid_b64: str) -> None:
        matched, next_update = self.updates.acknowledge(framework_id, task_id, uuid_b64, time.monotonic())
        if matched:
            self._record(framework_id, task_id, {"ack": uuid_b64})
            self._forget_if_done(framework_id, task_id)
        if next_update is not None:
            self._spawn(self._forward(next_update))

    def _run_of(self, framework_id: str, task_id: str) -> ExecutorRun | None:
        run = self.executors.get((framework_id, task_id))  # a command task's executor has its id
        if run is not None and task_id in run.tasks:
            return run
        return next((r for (fid, _), r in self.executors.items() if fid == framework_id and task_id in r.tasks),
                    self._finished.get((framework_id, task_id)))

    def _record(self, framework_id: str, task_id: str, record: dict[str, Any]) -> None:
        """Checkpoint an update or an acknowledgement, so a restarted agent resends what is unacked."""
        run = self._run_of(framework_id, task_id)
        if run is not None and run.meta_dir is not None:
            checkpoint.append_update_record(run.meta_dir / "tasks" / task_id, record)

    def _forget_if_done(self, framework_id: str, task_id: str) -> None:
        """A finished run whose updates are all acknowledged needs no checkpoint any more."""
        run = self._finished.get((framework_id, task_id))
        if run is None or any(self.updates.has_pending(framework_id, t) for t in run.tasks):
            return
        for other in run.tasks:
            self._finished.pop((framework_id, other), None)
        if run.meta_dir is not None:
            self._spawn(asyncio.to_thread(checkpoint.forget_run, run.meta_dir))

    async def retry_updates(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for update in self.updates.due(time.monotonic()):
                await self._forward(update)

    # ================================================================ sandbox garbage collection
    async def collect_garbage(self) -> None:
        """Every disk-watch interval, delete the finished sandboxes the disk can no longer keep."""
        while True:
            await asyncio.sleep(self.disk_watch_interval)
            await self.prune_sandboxes()

    async def prune_sandboxes(self) -> list[str]:
        await asyncio.to_thread(self.work_dir.mkdir, parents=True, exist_ok=True)  # (before the first task)
        disk = await asyncio.to_thread(shutil.disk_usage, self.work_dir)
        limit = gc_rules.max_age(self.gc_delay, self.gc_disk_headroom, disk.used / disk.total)
        doomed = gc_rules.due(self.gc_scheduled, time.time(), limit)
        for path in doomed:
            del self.gc_scheduled[path]
            await asyncio.to_thread(shutil.rmtree, path, True)
        return doomed

    # ================================================================ disk/du
    async def watch_disk_usage(self) -> None:
        """disk/du: measure every sandbox; over its quota, with enforcement on, the container goes."""
        if not self.disk_du:
            return
        while True:
            await asyncio.sleep(self.container_disk_watch_interval)
            await self.check_disk_usage()

    async def check_disk_usage(self) -> None:
        for run in list(self.executors.values()):
            if run.terminated or run.termination is not None:
                continue
            run.disk_used = await asyncio.to_thread(paths.disk_usage, run.sandbox)
            problem = disk_rules.disk_limitation(run.disk_used, disk_rules.quota_bytes(run.allocated))
            if problem is not None and self.enforce_disk_quota:
                log.warning("agent %s: %s of %s: %s", self.port, run.executor_id, run.framework_id, problem)
                run.destroy("TASK_FAILED", disk_rules.DISK_REASON, problem)

    # ================================================================ QoS corrections
    async def qos_corrections(self) -> None:
        """Poll the system load; over a threshold, revocable executors go first (``meseta.agent.qos``)."""
        if not self.qos.enabled():
            return
        while True:
            await asyncio.sleep(self.qos_interval)
            load_5min, load_15min = os.getloadavg()[1:]
            self.correct(qos_rules.overload(self.qos, load_5min, load_15min))

    def correct(self, overload: str | None) -> None:
        if overload is None:
            return
        for run in list(self.executors.values()):
            if run.termination is None and not run.terminated and qos_rules.holds_revocable(run.resource_lists()):
                log.warning("agent %s: preempting executor %s of %s: %s",
                            self.port, run.executor_id, run.framework_id, overload)
                self.metrics["executors_preempted"] += 1
                run.destroy(qos_rules.preempted_state(run.framework_info), qos_rules.PREEMPTED_REASON,
                            f"Container preempted by QoS: {overload}")

    # ================================================================ executor API glue
    def executor_message(self, run: ExecutorRun, data: str) -> None:
        self._spawn(self._call({"type": "EXECUTOR_MESSAGE", "framework_id": {"value": run.framework_id},
                                "executor_id": {"value": run.executor_id}, "data": data}))

    # ================================================================ plumbing
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for run in list(self.executors.values()):
            run.shutdown()
            for task in run.tasks.values():
                if task.process is not None:
                    await task.process.terminate(1.0)
            if run.process is not None:
                await run.process.terminate(1.0)
        for pending in list(self._tasks):
            pending.cancel()
        if self.cgroups is not None:
            for container_id in list(self.cgroups.live):
                await asyncio.to_thread(self.cgroups.release, container_id)
        with contextlib.suppress(Exception):
            await self.fetcher.close()
            await self._client.aclose()
            await self._poster.close()


def _limits(resources: Resources, cgroups: CgroupIsolation) -> Limits:
    cpus = resources.filter(lambda k: k.name == "cpus")
    revocable = not cpus.is_empty() and all(is_revocable(k) for k in cpus)
    return compute_limits(resources.scalar("cpus"), resources.scalar("mem"), revocable_cpus=revocable,
                          enable_cfs=cgroups.enable_cfs, pids_max=cgroups.pids_max)


def _resources_of(info: dict[str, Any]) -> Resources:
    try:
        return parse_json(info.get("resources") or [])
    except ValueError:
        return Resources()
