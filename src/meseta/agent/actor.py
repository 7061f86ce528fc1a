"""The agent's asyncio shell around :class:`AgentMachine`: it owns the clock, the master
connection, the processes (``meseta.agent.executors``), the files and the timers.

Each entry point calls one machine handler synchronously (atomic on the event loop) with
``now`` and executes the effects it returns (``meseta.agent.effects``); what the effects start
(a fork, a fetch, a probe, a process exit) comes back as another handler call.

Connection lifecycle (``run``)::

    recover (``meseta.agent.recovery``) --> REGISTER (first time) | REREGISTER (known id) --> stream
        master messages --> machine.handle_master_message; PING --> PONG (here)
        stream ends / no PING for ping_interval x max_ping_timeouts --> backoff --> REREGISTER
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from meseta.agent import checkpoint, paths, recovery
from meseta.agent.containerizer.cgroup_limits import Limits, compute_limits, parse_isolation
from meseta.agent.containerizer.cgroups import CgroupError, CgroupIsolation
from meseta.agent.containerizer.cni import DEFAULT_PLUGINS_DIR, CniIsolator, default_state_dir
from meseta.agent.containerizer.images import ImageStore
from meseta.agent.containerizer.launcher import LaunchError, ProcessHandle
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
    GrowContainer,
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
from meseta.agent.executors import Container
from meseta.agent.fetcher import Fetcher, FetcherCache
from meseta.agent.health_probes import probe
from meseta.agent.machine import AgentMachine
from meseta.agent.options import AgentOptions
from meseta.agent.seams import AgentSeams
from meseta.core.reservations import is_revocable, volumes
from meseta.core.resources import Resources, parse_attributes, ranges_contain
from meseta.protocol.agent_wire import AGENT_CALL_PATH, AGENT_STREAM_PATH, STREAM_ID_HEADER
from meseta.protocol.container_info import ContainerInfoError, container_spec
from meseta.protocol.ids import id_json
from meseta.protocol.recordio import RecordIODecoder
from meseta.runtime.fast_http import FastHttpError, FastPoster
from meseta.runtime.leader import locate_masters, while_leading
from meseta.runtime.streams import EventStream
from meseta.runtime.zk import is_zk_url

log = logging.getLogger(__name__)

REGISTRATION_BACKOFF_MAX = 60.0
RECOVERING_RETRY = 0.25  # seconds (at most) between tries while the leader answers 503
EXECUTOR_HEARTBEAT_SECONDS = 1800.0  # DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL
STOP_GRACE_SECONDS = 10.0  # at a stop, how long cancelled work (a plugin run being killed) may take to end


class MasterNotReady(Exception):
    """503 from the master: it is recovering its registry, or knows no leader."""


class AgentActor:
    def __init__(self, options: AgentOptions, resources: Resources, seams: AgentSeams) -> None:
        self.options, self.seams, self.clock = options, seams, seams.clock
        self.work_dir = options.work_dir
        self.launcher = seams.launcher
        self.cgroups: CgroupIsolation | None = seams.cgroups
        isolation = parse_isolation(options.isolation)
        self.pid_namespace, self.disk_du = isolation.pid_namespace, isolation.disk_du
        self.fetcher = seams.fetcher or Fetcher(FetcherCache(options.fetcher_cache_dir or self.work_dir / "fetch",
                                                             options.fetcher_cache_size))
        self.images = ImageStore(self.work_dir, options.docker_registry, store_dir=options.docker_store_dir,
                                 docker_config=options.docker_config, insecure=options.docker_insecure_registry,
                                 gc_bytes=options.image_gc)
        self.cni = CniIsolator(options.network_cni_config_dir, options.network_cni_plugins_dir or DEFAULT_PLUGINS_DIR,
                               default_state_dir(self.work_dir)) if options.network_cni_config_dir else None
        self.framework_files = checkpoint.FrameworkFiles(self.work_dir)
        seed = seams.seed if seams.seed is not None else random.SystemRandom().getrandbits(64)
        self.machine = AgentMachine(options, resources, parse_attributes(options.attributes),
                                    agent_id=checkpoint.load_agent_id(self.work_dir),
                                    checkpointed=checkpoint.load_resources(self.work_dir), seed=seed)
        master = options.master  # HOST:PORT or zk://.../path (followed in run())
        self.master = "" if is_zk_url(master) else master if master.startswith("http") else f"http://{master}"
        self.stream_id: str | None = None
        self.containers: dict[RunKey, Container] = {}
        self.executor_streams: dict[RunKey, EventStream] = {}
        self.start_time = self.clock.time()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))  # the stream only
        self._poster = self._poster_for(self.master)
        self._last_ping = 0.0
        self._ping_deadline = 75.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[tuple[str, ...], asyncio.TimerHandle] = {}
        self.run(self.machine.handle_start)

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.options.ip}:{self.options.port}"

    def now(self) -> float:
        return self.clock.time()

    # ================================================================ the machine's entry
    def run(self, handler: Callable[..., list[Effect]], *args: Any) -> None:
        """Call ``handler(*args, now)`` and execute its effects."""
        self.execute(handler(*args, self.now()))

    def execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            _EXECUTORS[type(effect)](self, effect)

    # ================================================================ master connection
    async def run_forever(self) -> None:
        await self.recover()
        masters = await locate_masters(self.options.master)
        backoff = 1.0
        while True:
            address = await masters.wait_leader()
            if self.master != f"http://{address}":
                log.info("agent %s: following the master at %s", self.options.port, address)
                old, self.master, self._poster = self._poster, f"http://{address}", self._poster_for(address)
                await old.close()
            try:
                await while_leading(masters, address, self._connect_once())
                backoff = 1.0  # the stream ended, or a new leader: register (again) soon
            except MasterNotReady:
                backoff = RECOVERING_RETRY  # a new leader still loading its registry: it is close
            except (httpx.HTTPError, OSError, ValueError) as exc:
                log.info("agent %s: master connection failed: %s", self.options.port, exc)
            self.stream_id = None
            slept, _ = await while_leading(masters, address, asyncio.sleep(random.uniform(0, backoff)))
            backoff = min(backoff * 2, REGISTRATION_BACKOFF_MAX) if slept else 1.0  # a new leader: try it soon

    @staticmethod
    def _poster_for(master: str) -> FastPoster:
        host, _, port = master.removeprefix("http://").partition(":")
        return FastPoster(host or "127.0.0.1", int(port or 5050), connections=16)

    async def _connect_once(self) -> None:
        body = self.machine.registration_call()
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
                        self._dispatch(json.loads(record))
            finally:
                watchdog.cancel()

    async def _ping_watchdog(self, response: httpx.Response) -> None:
        loop = asyncio.get_running_loop()
        self._last_ping = loop.time()
        while True:
            await asyncio.sleep(1.0)
            if loop.time() - self._last_ping > self._ping_deadline:
                log.warning("agent %s: no PING from the master, re-registering", self.options.port)
                await response.aclose()
                return

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "PING":
            self._last_ping = asyncio.get_running_loop().time()
            self._spawn(self._call({"type": "PONG"}))
            return
        try:
            self.run(self.machine.handle_master_message, message)
        except Exception:  # one bad message must not take the agent down
            log.exception("agent %s: failed to handle %s", self.options.port, message.get("type"))

    async def _call(self, body: dict[str, Any]) -> bool:
        agent_id = self.machine.agent_id
        if self.stream_id is None or agent_id is None:
            return False
        body = {**body, "agent_id": id_json(agent_id)}
        try:
            status, _ = await self._poster.post(AGENT_CALL_PATH, body, {STREAM_ID_HEADER: self.stream_id})
        except (FastHttpError, OSError, TimeoutError) as exc:
            log.info("agent %s: call %s failed: %r", self.options.port, body["type"], exc)
            return False
        return status == 202

    # ================================================================ effects: master, executors, time
    def _to_master(self, effect: ToMaster) -> None:
        self._spawn(self._call(effect.call))

    def _expect_pings(self, effect: ExpectPings) -> None:
        self._ping_deadline = effect.within

    def _to_executor(self, effect: ToExecutor) -> None:
        stream = self.executor_streams.get(effect.run)
        if stream is not None and not stream.closed:
            stream.send(effect.event)

    def _close_executor_stream(self, effect: CloseExecutorStream) -> None:
        stream = self.executor_streams.pop(effect.run, None)
        if stream is not None:
            stream.close()

    def _start_timer(self, effect: StartTimer) -> None:
        old = self._timers.pop(effect.key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(effect.key, None)
            self.run(self.machine.handle_timer, effect.key)

        self._timers[effect.key] = asyncio.get_running_loop().call_later(max(0.0, effect.at - self.now()), fire)

    def _log(self, effect: Log) -> None:
        log.log(effect.level, "%s", effect.message)

    # ================================================================ effects: files
    def _save_agent(self, effect: SaveAgent) -> None:
        checkpoint.save_agent(self.work_dir, effect.agent_id, effect.info)

    def _forget_agent(self, effect: ForgetAgent) -> None:
        checkpoint.forget_agent(self.work_dir)

    def _save_resources(self, effect: SaveResources) -> None:
        checkpoint.save_resources(self.work_dir, effect.checkpointed, effect.previous)

    def _meta_dir(self, key: RunKey) -> Path:
        container = self.containers.get(key)
        return container.meta_dir if container is not None else paths.meta_run_dir(self.work_dir, *key)

    def _task_dir(self, key: RunKey, task_id: str) -> Path:
        return paths.meta_task_dir(self._meta_dir(key), task_id)

    def _checkpoint_task(self, effect: CheckpointTask) -> None:
        task_dir = self._task_dir(effect.run, str(effect.info["task_id"]["value"]))
        self._spawn(asyncio.to_thread(checkpoint.save_task, task_dir, effect.info))

    def _checkpoint_record(self, effect: CheckpointRecord) -> None:
        checkpoint.append_update_record(self._task_dir(effect.run, effect.task_id), effect.record)

    def _forget_run(self, effect: ForgetRun) -> None:
        self._spawn(asyncio.to_thread(checkpoint.forget_run, self._meta_dir(effect.run)))

    def _remove_sandbox(self, effect: RemoveSandbox) -> None:
        self._spawn(asyncio.to_thread(shutil.rmtree, paths.sandbox_dir(self.work_dir, *effect.run), True))

    # ================================================================ effects: containers
    def _create_container(self, effect: CreateContainer) -> None:
        key = effect.run
        sandbox = paths.sandbox_dir(self.work_dir, *key)  # validates the ids; directories are made off the loop
        container = Container(
            key=key, sandbox=sandbox, meta_dir=paths.meta_run_dir(self.work_dir, *key), launcher=self.launcher,
            base_env=self._executor_env(key, sandbox, effect.framework_info), fetcher=self.fetcher, images=self.images,
            user=self._user(effect.framework_info, effect.executor_info.get("command") or {}),
            pid_namespace=self.pid_namespace, allocated=effect.resources)
        if not effect.recovered:
            container.make_sandbox = lambda: self._make_sandbox(container, effect)
        if self.cgroups is not None:
            try:
                container.cgroups = self.cgroups.prepare(key.container_id, _limits(effect.resources, self.cgroups))
            except CgroupError as exc:
                container.setup_error = f"Failed to prepare the container's cgroups: {exc}"
        container.networks = self.cni
        ports = effect.resources.ranges("ports")
        try:
            container.spec = container_spec(effect.container or None,
                                            holds_port=lambda port: ranges_contain(ports, ((port, port),)),
                                            bridge_network=self.options.docker_bridge_network)
            container.image = container.spec.image
            container.force_pull = container.spec.force_pull
        except ContainerInfoError as exc:
            container.setup_error = f"Task's ContainerInfo is invalid: {exc}"
        if effect.recovered and self.cni is not None:
            container.attachment = self.cni.attachment(key.container_id)
        self.containers[key] = container

    def _make_sandbox(self, container: Container, effect: CreateContainer) -> None:
        """Off the loop, once per run: the sandbox, its volumes and the run's checkpoint."""
        sandbox = paths.create_sandbox(self.work_dir, *container.key)
        if volumes(container.allocated):
            checkpoint.link_volumes(self.work_dir, sandbox, container.allocated)
        info = {"kind": effect.kind, "executor_info": effect.executor_info, "container_id": container.key.container_id,
                "sandbox": str(sandbox), "resources": container.allocated.to_json()}
        self.framework_files.save(container.key.agent_id, effect.framework_info)
        checkpoint.save_run(info, container.meta_dir)

    def _grow_container(self, effect: GrowContainer) -> None:
        container = self.containers.get(effect.run)
        if container is None:
            return
        if volumes(effect.added):
            checkpoint.link_volumes(self.work_dir, container.sandbox, effect.added)
        container.allocated = effect.allocated
        if container.cgroups is not None and self.cgroups is not None:
            try:
                container.cgroups.apply(_limits(effect.allocated, self.cgroups))
            except CgroupError as exc:
                log.error("agent %s: cannot update the limits of %s: %s", self.options.port,
                          effect.run.container_id, exc)

    def _release_container(self, effect: ReleaseContainer) -> None:
        container = self.containers.pop(effect.run, None)
        if container is not None and (container.rootfs is not None or container.image is not None):
            # (a recovered container has no rootfs handle, but its overlay is on disk all the same)
            self._spawn(asyncio.to_thread(self.images.release, effect.run.container_id))
        if container is not None and container.attachment is not None and self.cni is not None:
            self._spawn(self._detach(effect.run.container_id))
        if self.cgroups is not None:  # whatever the executor left behind dies with its cgroups
            self._spawn(asyncio.to_thread(self.cgroups.release, effect.run.container_id))

    async def _detach(self, container_id: str) -> None:
        if self.cni is None:
            return
        try:
            await self.cni.detach(container_id)
        except Exception as exc:  # retried by the next recovery; the agent goes on
            log.error("agent %s: cannot detach container %s from its networks: %s", self.options.port,
                      container_id, exc)

    def _user(self, framework_info: dict[str, Any], command: dict[str, Any]) -> str | None:
        if not self.options.switch_user:
            return None
        return command.get("user") or framework_info.get("user") or None

    def _executor_env(self, key: RunKey, sandbox_dir: Path, framework_info: dict[str, Any]) -> dict[str, str]:
        checkpointing = bool(framework_info.get("checkpoint"))
        sandbox = str(sandbox_dir)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "MESOS_FRAMEWORK_ID": key.framework_id,
            "MESOS_EXECUTOR_ID": key.executor_id,
            "MESOS_DIRECTORY": sandbox,
            "MESOS_SANDBOX": sandbox,
            "MESOS_SLAVE_ID": key.agent_id,
            "MESOS_AGENT_ID": key.agent_id,
            "MESOS_SLAVE_PID": self.pid,
            "MESOS_AGENT_ENDPOINT": f"{self.options.ip}:{self.options.port}",
            "MESOS_CHECKPOINT": "1" if checkpointing else "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
            "LIBPROCESS_PORT": "0",
        }
        if checkpointing:
            env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
            env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "2secs"
        return env

    # ================================================================ effects: processes
    def _start_task(self, effect: StartTask) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            self._spawn(self._fetch_for_task(container, effect))

    async def _fetch_for_task(self, container: Container, effect: StartTask) -> None:
        error = await container.prepared(effect.command)
        self.run(self.machine.handle_task_fetched, effect.run, effect.task_id, error)

    def _launch_task(self, effect: LaunchTask) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            self._spawn(self._task_process(container, effect))

    async def _task_process(self, container: Container, effect: LaunchTask) -> None:
        try:
            process = await container.launch_task(effect.task_id, effect.info, effect.command)
        except LaunchError as exc:
            self.run(self.machine.handle_task_launch_failed, effect.run, effect.task_id, str(exc))
            return
        if container.attachment is not None:
            self.run(self.machine.handle_container_networked, effect.run, container.attachment.network_infos)
        self.run(self.machine.handle_task_launched, effect.run, effect.task_id)
        await self._task_exit(container, effect.run, effect.task_id, process)

    def _adopt_task(self, effect: AdoptTask) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            process = container.adopt_task(effect.task_id, effect.pid, effect.status_file)
            self._spawn(self._task_exit(container, effect.run, effect.task_id, process))

    async def _task_exit(self, container: Container, key: RunKey, task_id: str, process: ProcessHandle) -> None:
        ended = container.exit_of(await process.wait())
        self.run(self.machine.handle_task_exited, key, task_id, ended.succeeded, ended.description, ended.limitation)

    def _kill_task(self, effect: KillTask) -> None:
        container = self.containers.get(effect.run)
        process = container.processes.get(effect.task_id) if container is not None else None
        if process is not None:
            self._spawn(process.terminate(effect.grace))

    def _probe_health(self, effect: ProbeHealth) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            self._spawn(self._probe(container, effect))

    async def _probe(self, container: Container, effect: ProbeHealth) -> None:
        ok = await probe(effect.policy, self.launcher, container.probe_env(effect.task_id, effect.command),
                         container.sandbox, container.probe_host(effect.policy.port))
        self.run(self.machine.handle_health_probed, effect.run, effect.task_id, ok)

    def _start_executor(self, effect: StartExecutor) -> None:
        container, run = self.containers.get(effect.run), self.machine.run_of(effect.run)
        if container is not None and run is not None:
            self._spawn(self._executor_process(container, effect.run, run.executor_info))

    async def _executor_process(self, container: Container, key: RunKey, executor_info: dict[str, Any]) -> None:
        error = await container.prepared(executor_info.get("command") or {})
        if error is not None:
            self.run(self.machine.handle_executor_launch_failed, key, error)
            return
        try:
            process = await container.launch_executor(executor_info)
        except LaunchError as exc:
            self.run(self.machine.handle_executor_launch_failed, key, f"Failed to launch executor: {exc}")
            return
        if container.attachment is not None:
            self.run(self.machine.handle_container_networked, key, container.attachment.network_infos)
        self.run(self.machine.handle_executor_launched, key)
        await self._executor_exit(container, key, process)

    def _adopt_executor(self, effect: AdoptExecutor) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            process = container.adopt_executor(effect.pid, effect.status_file)
            self._spawn(self._executor_exit(container, effect.run, process))

    async def _executor_exit(self, container: Container, key: RunKey, process: ProcessHandle) -> None:
        ended = container.exit_of(await process.wait())
        self.run(self.machine.handle_executor_exited, key, ended.code, ended.signal, ended.description,
                 ended.limitation)

    def _stop_executor(self, effect: StopExecutor) -> None:
        container = self.containers.get(effect.run)
        if container is not None:
            self._spawn(container.stop_executor(effect.after))

    # ================================================================ the executor API's streams
    def open_executor_stream(self, key: RunKey) -> EventStream:
        """A (new) subscription of the executor ``key``: a second SUBSCRIBE closes the first."""

        def closed(stream: EventStream) -> None:
            if self.executor_streams.get(key) is stream:
                del self.executor_streams[key]
                self.run(self.machine.handle_executor_disconnected, key)

        old = self.executor_streams.pop(key, None)
        if old is not None:
            old.close()
        stream = self.executor_streams[key] = EventStream(key.container_id, EXECUTOR_HEARTBEAT_SECONDS,
                                                          on_closed=closed)
        return stream

    # ================================================================ recovery and ticks
    async def recover(self) -> None:
        """After a restart (even a ``kill -9``), find the tasks again from the checkpoint."""
        agent_id = self.machine.agent_id
        if agent_id is None:
            return
        plans = await recovery.plan(self.work_dir, agent_id, self.options.recover)
        await recovery.discard(plans)
        self.run(self.machine.handle_recovered, plans)
        if self.cni is not None:  # attachments of containers that did not survive go; the others report again
            live = {key.container_id: key for key in self.machine.live_runs()}
            attached = await self.cni.recover(set(live))
            for container_id, attachment in attached.items():
                self.run(self.machine.handle_container_networked, live[container_id], attachment.network_infos)

    async def retry_updates(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.run(self.machine.handle_retry_tick)

    async def collect_garbage(self) -> None:
        """Every disk-watch interval, delete the finished sandboxes the disk can no longer keep."""
        while True:
            await asyncio.sleep(self.options.disk_watch_interval)
            await self.prune_sandboxes()

    async def prune_sandboxes(self) -> None:
        await asyncio.to_thread(self.work_dir.mkdir, parents=True, exist_ok=True)  # (before the first task)
        disk = await asyncio.to_thread(shutil.disk_usage, self.work_dir)
        self.run(self.machine.handle_gc_tick, disk.used / disk.total)

    async def watch_disk_usage(self) -> None:
        """disk/du: measure every sandbox; the machine judges each against its quota."""
        if not self.disk_du:
            return
        while True:
            await asyncio.sleep(self.options.container_disk_watch_interval)
            for key in self.machine.live_runs():
                container = self.containers.get(key)
                if container is not None:
                    used = await asyncio.to_thread(paths.disk_usage, container.sandbox)
                    self.run(self.machine.handle_disk_usage, key, used)

    async def qos_corrections(self) -> None:
        """Poll the system load; over a threshold, revocable executors go first (``meseta.agent.qos``)."""
        if not self.machine.qos.enabled():
            return
        while True:
            await asyncio.sleep(self.options.qos_correction_interval)
            self.run(self.machine.handle_load, *self.seams.load())

    # ================================================================ plumbing
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        overlays = [key.container_id for key, container in self.containers.items()
                    if container.rootfs is not None or container.image is not None]
        with contextlib.suppress(Exception):
            self.run(self.machine.handle_stopping)
        for container in list(self.containers.values()):
            await container.stop_all()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        if pending:  # a cancelled detach lets go of its container
            await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        if self.cgroups is not None:
            for container_id in list(self.cgroups.live):
                await asyncio.to_thread(self.cgroups.release, container_id)
        if self.cni is not None:  # every process is gone: so is every network, released (its detach was
            for container_id in list(self.cni.stored()):  # just cancelled) or not; DEL is idempotent
                await self._detach(container_id)
        for container_id in overlays:  # as for the networks: a release may have been cancelled with the rest
            await asyncio.to_thread(self.images.release, container_id)
        with contextlib.suppress(Exception):
            await self.fetcher.close()
            await self._client.aclose()
            await self._poster.close()


_EXECUTORS: dict[type, Callable[[AgentActor, Any], None]] = {
    ToMaster: AgentActor._to_master,
    ToExecutor: AgentActor._to_executor,
    CloseExecutorStream: AgentActor._close_executor_stream,
    ExpectPings: AgentActor._expect_pings,
    CreateContainer: AgentActor._create_container,
    StartTask: AgentActor._start_task,
    LaunchTask: AgentActor._launch_task,
    AdoptTask: AgentActor._adopt_task,
    KillTask: AgentActor._kill_task,
    StartExecutor: AgentActor._start_executor,
    AdoptExecutor: AgentActor._adopt_executor,
    StopExecutor: AgentActor._stop_executor,
    GrowContainer: AgentActor._grow_container,
    ProbeHealth: AgentActor._probe_health,
    ReleaseContainer: AgentActor._release_container,
    CheckpointTask: AgentActor._checkpoint_task,
    CheckpointRecord: AgentActor._checkpoint_record,
    ForgetRun: AgentActor._forget_run,
    RemoveSandbox: AgentActor._remove_sandbox,
    SaveAgent: AgentActor._save_agent,
    ForgetAgent: AgentActor._forget_agent,
    SaveResources: AgentActor._save_resources,
    StartTimer: AgentActor._start_timer,
    Log: AgentActor._log,
}


def _limits(resources: Resources, cgroups: CgroupIsolation) -> Limits:
    cpus = resources.filter(lambda k: k.name == "cpus")
    revocable = not cpus.is_empty() and all(is_revocable(k) for k in cpus)
    return compute_limits(resources.scalar("cpus"), resources.scalar("mem"), revocable_cpus=revocable,
                          enable_cfs=cgroups.enable_cfs, pids_max=cgroups.pids_max)
