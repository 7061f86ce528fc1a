"""Executors on the agent: how a task's processes are started, watched and stopped.

Three kinds, one lifecycle (the agent owns a run; the run owns its processes)::

    CommandExecutor  one TaskInfo.command task, run in-agent (no executor process):
                     STARTING -> fork -> RUNNING -> exit 0: FINISHED | else FAILED | kill: KILLED
    DefaultExecutor  a LAUNCH_GROUP task group; each task a process; killing one kills all
    CustomExecutor   ExecutorInfo.command as a process that subscribes to /api/v1/executor
                     and receives LAUNCH / KILL / MESSAGE / SHUTDOWN over its event stream

Built-in executors send their updates with ``source: SOURCE_EXECUTOR`` and a fresh uuid, exactly
as an executor process would, so the status update manager treats every kind alike.
"""

from __future__ import annotations

import asyncio
import base64
import grp
import logging
import os
import pwd
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meseta.agent import checkpoint
from meseta.agent.containerizer.cgroups import ContainerCgroups
from meseta.agent.containerizer.images import SANDBOX_IN_CONTAINER, ImageError, ImageStore, RootfsMount
from meseta.agent.containerizer.launcher import Launcher, LaunchError, LaunchSpec, ProcessHandle, wrap_with_status
from meseta.agent.fetcher import Fetcher, FetchError
from meseta.agent.health import HEALTH_REASON, HealthCheckError, HealthPolicy, HealthTracker
from meseta.agent.health_probes import probe
from meseta.core.resources import Resources
from meseta.protocol.task_states import TERMINAL
from meseta.runtime.streams import EventStream

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_KILL_GRACE_SECONDS = 3.0  # the command executor's default
EXECUTOR_SHUTDOWN_GRACE_SECONDS = 5.0  # --executor_shutdown_grace_period
EXECUTOR_REGISTRATION_TIMEOUT = 60.0  # --executor_registration_timeout


MEMORY_LIMITATION = "REASON_CONTAINER_LIMITATION_MEMORY"  # the kernel's OOM killer acted in the container


def new_uuid() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode()


def duration_seconds(duration: Any, default: float) -> float:
    if isinstance(duration, dict) and "nanoseconds" in duration:
        return float(duration["nanoseconds"]) / 1e9
    return default


def command_argv(command: dict[str, Any]) -> tuple[str, ...]:
    if command.get("shell", True):
        return ("/bin/sh", "-c", str(command.get("value", "")))
    arguments = [str(a) for a in command.get("arguments") or []]
    return (str(command["value"]), *arguments[1:])


def command_env(command: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env.setdefault("PATH", DEFAULT_PATH)
    for variable in (command.get("environment") or {}).get("variables") or []:
        if variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env


@dataclass(slots=True)
class TaskRecord:
    info: dict[str, Any]
    state: str = "TASK_STAGING"
    process: ProcessHandle | None = None
    kill_requested: bool = False
    killed_by_health_check: bool = False

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])


@dataclass(slots=True)
class ExecutorRun:
    """What all executor kinds share: identity, sandbox, tasks and the agent's callbacks."""

    framework_info: dict[str, Any]
    executor_info: dict[str, Any]
    container_id: str
    sandbox: Path
    launcher: Launcher
    base_env: dict[str, str]
    send_update: Callable[[str, dict[str, Any]], None]  # (framework_id, status)
    on_terminated: Callable[[ExecutorRun], None]
    user: str | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    terminated: bool = False
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # custom executors only: the executor process, its subscription and what waits for it
    process: ProcessHandle | None = None
    stream: EventStream | None = None
    queued: list[dict[str, Any]] = field(default_factory=list)
    exit_status: int = 0
    # mkdir of a sandbox costs ~2 ms on these disks: it runs in a thread, once, before any launch
    make_sandbox: Callable[[], Any] | None = None
    sandbox_ready: asyncio.Future[Any] | None = None
    # set when the agent destroys the container (QoS, disk quota): how live tasks end
    termination: tuple[str, str, str] | None = None  # (state, reason, message)
    # isolation: the container's cgroups (cgroups/* isolators) and a private pid namespace
    cgroups: ContainerCgroups | None = None
    pid_namespace: bool = False
    setup_error: str | None = None  # the container could not be made: every launch fails with this
    allocated: Resources = field(default_factory=Resources)  # the executor's and its tasks' resources
    meta_dir: Path | None = None  # the run's checkpoint directory (command and default executors)
    fetcher: Fetcher | None = None
    disk_used: int | None = None  # the sandbox's size at the last disk/du check
    images: ImageStore | None = None
    image: str | None = None  # the docker image name of ContainerInfo.mesos.image, if any
    rootfs: RootfsMount | None = None  # the image's overlay, once prepared

    @property
    def kind(self) -> str:
        return "COMMAND"

    @property
    def framework_id(self) -> str:
        return str(self.framework_info["id"]["value"])

    @property
    def executor_id(self) -> str:
        return str(self.executor_info["executor_id"]["value"])

    def update(self, task: TaskRecord, state: str, message: str = "", reason: str | None = None,
               source: str = "SOURCE_EXECUTOR", healthy: bool | None = None) -> None:
        if task.state in TERMINAL:
            return
        if self.termination is not None and state in TERMINAL:
            (state, reason, message), source = self.termination, "SOURCE_AGENT"
        task.state = state
        status: dict[str, Any] = {
            "task_id": task.info["task_id"],
            "state": state,
            "source": source,
            "executor_id": self.executor_info["executor_id"],
            "timestamp": time.time(),
            "uuid": new_uuid(),
        }
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        self.send_update(self.framework_id, status)

    async def ensure_sandbox(self) -> None:
        if self.make_sandbox is None:
            return
        if self.sandbox_ready is None:
            self.sandbox_ready = asyncio.ensure_future(asyncio.to_thread(self.make_sandbox))
        await self.sandbox_ready

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def resource_lists(self) -> list[list[dict[str, Any]]]:
        """The executor's own resources and each task's, as the master sent them."""
        tasks = (task.info.get("resources") or [] for task in self.tasks.values())
        return [self.executor_info.get("resources") or [], *tasks]

    def destroy(self, state: str, reason: str, message: str) -> None:
        """Destroy the container now, no grace (a QoS correction, a disk quota): its live tasks
        end ``state`` with ``reason`` as their processes die."""
        if self.termination is not None or self.terminated:
            return
        self.termination = (state, reason, message)
        for task in self.tasks.values():
            if task.state not in TERMINAL:
                task.kill_requested = True
                if task.process is not None:
                    self.spawn(task.process.terminate(0))
        if self.process is not None:
            self.spawn(self.process.terminate(0))

    def finish_if_idle(self) -> None:
        if not self.terminated and all(t.state in TERMINAL for t in self.tasks.values()):
            self.terminated = True
            self.on_terminated(self)

    # What every executor kind implements.
    def launch(self, task_info: dict[str, Any]) -> None:
        raise NotImplementedError

    def launch_group(self, tasks: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def kill(self, task_id: str, kill_policy: Any) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def killing_supported(self) -> bool:
        caps = {c.get("type") for c in self.framework_info.get("capabilities") or []}
        return "TASK_KILLING_STATE" in caps

    def contained(self, argv: tuple[str, ...], env: dict[str, str], status_file: Path | None = None) -> LaunchSpec:
        """The launch of ``argv`` inside this container: in its cgroups (joined before exec), with
        namespaces/pid as pid 1 of a new pid namespace with its own /proc, on its image's root
        filesystem if it has one, and under a wrapper that records its exit status in
        ``status_file`` (so that a restarted agent learns how it ended)."""
        if self.setup_error is not None:
            raise LaunchError(self.setup_error)
        user = self.user
        if self.rootfs is not None:  # the image's root filesystem, in a mount namespace of its own
            argv = self.rootfs.wrap(argv, self.sandbox, self.pid_namespace)
            env = {**env, "MESOS_SANDBOX": SANDBOX_IN_CONTAINER, "MESOS_DIRECTORY": SANDBOX_IN_CONTAINER}
            user = None  # unshare needs root; images run as their own root
        else:
            if user is not None and (self.pid_namespace or status_file is not None) and os.geteuid() == 0:
                # unshare and the status wrapper need root: drop to the user last, with setpriv
                argv = ("setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--init-groups", "--", *argv)
                user = None
            if self.pid_namespace:
                argv = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--", *argv)
        if status_file is not None:
            argv = wrap_with_status(argv, status_file)
        if self.cgroups is not None:
            argv = self.cgroups.wrap(argv)
        return LaunchSpec(argv=argv, env=env, cwd=self.sandbox, stdout_path=self.sandbox / "stdout",
                          stderr_path=self.sandbox / "stderr", user=user)

    def task_dir(self, task: TaskRecord) -> Path | None:
        """Where the task's checkpoint lives (``meseta.agent.paths``), when this run keeps one."""
        return None if self.meta_dir is None else self.meta_dir / "tasks" / task.task_id

    async def fetched(self, command: dict[str, Any], tasks: Iterable[TaskRecord]) -> bool:
        """Fetch the command's URIs into the sandbox; on failure the tasks end TASK_FAILED."""
        uris = command.get("uris") or []
        if not uris or self.fetcher is None:
            return True
        try:
            await self.fetcher.fetch_all(uris, self.sandbox, self.user)
        except FetchError as exc:
            for task in tasks:
                self.update(task, "TASK_FAILED", str(exc), "REASON_CONTAINER_LAUNCH_FAILED", source="SOURCE_AGENT")
            return False
        return True

    async def ensure_rootfs(self) -> None:
        """Unpack the image (once per agent, off the loop) and make this container's overlay."""
        if self.image is None or self.rootfs is not None or self.images is None:
            return
        try:
            lower = await asyncio.to_thread(self.images.layers, self.image)
        except ImageError as exc:
            raise LaunchError(str(exc)) from None
        self.rootfs = self.images.prepare(self.container_id, lower)

    def limitation(self) -> str | None:
        """Why the kernel stopped this container (the memory limit), once a process has died."""
        return self.cgroups.limitation() if self.cgroups is not None else None

    async def _run_task_process(self, task: TaskRecord, command: dict[str, Any]) -> None:
        await self.ensure_sandbox()
        env = command_env(command, {**self.base_env, "MESOS_TASK_ID": task.task_id})
        if not await self.fetched(command, [task]):
            self.finish_if_idle()
            return
        self.update(task, "TASK_STARTING")
        task_dir = self.task_dir(task)
        try:
            await self.ensure_rootfs()
            if task_dir is not None:
                await asyncio.to_thread(checkpoint.save_task, task_dir, task.info)
            status_file = None if task_dir is None else task_dir / "exit.status"
            task.process = await self.launcher.launch(self.contained(command_argv(command), env, status_file))
        except LaunchError as exc:
            self.update(task, "TASK_FAILED", f"Failed to launch container: {exc}", "REASON_CONTAINER_LAUNCH_FAILED")
            self.finish_if_idle()
            return
        if task_dir is not None:
            await asyncio.to_thread(checkpoint.save_wrapper_pid, task_dir, task.process.pid)
        if task.kill_requested:
            await task.process.terminate(0)
        else:
            self.update(task, "TASK_RUNNING")
            if task.info.get("health_check"):
                self.spawn(self.watch_health(task, env))
        await self.finish_task(task)

    async def finish_task(self, task: TaskRecord) -> None:
        """Wait for the task's process (ours, or adopted after an agent restart) and report its end."""
        assert task.process is not None
        status = await task.process.wait()
        limitation = self.limitation()
        if task.killed_by_health_check:
            self.update(task, "TASK_KILLED", "Task killed after failing its health check", HEALTH_REASON,
                        healthy=False)
        elif task.kill_requested:
            self.update(task, "TASK_KILLED", status.describe())
        elif limitation is not None:
            self.update(task, "TASK_FAILED", limitation, MEMORY_LIMITATION, source="SOURCE_AGENT")
        elif status.succeeded:
            self.update(task, "TASK_FINISHED", status.describe())
        else:
            self.update(task, "TASK_FAILED", status.describe())
        self.on_task_exit(task)

    def on_task_exit(self, task: TaskRecord) -> None:
        self.finish_if_idle()

    async def watch_health(self, task: TaskRecord, env: dict[str, str]) -> None:
        """Probe a running task per its health check (``meseta.agent.health``) until it ends."""
        try:
            policy = HealthPolicy.from_json(task.info["health_check"])
        except (HealthCheckError, TypeError, ValueError) as exc:
            log.warning("task %s: health check not run: %s", task.task_id, exc)
            return
        tracker = HealthTracker(policy, time.monotonic())
        await asyncio.sleep(policy.delay)
        while task.state == "TASK_RUNNING" and not task.kill_requested:
            verdict = tracker.record(await probe(policy, self.launcher, env, self.sandbox), time.monotonic())
            if task.state != "TASK_RUNNING" or task.kill_requested:
                return
            if verdict.report is not None:
                self.update(task, "TASK_RUNNING", reason=HEALTH_REASON, healthy=verdict.report)
            if verdict.kill:
                task.killed_by_health_check = True
                policy_json = task.info.get("kill_policy") or {}
                await self._kill_task(task, duration_seconds(policy_json.get("grace_period"),
                                                             DEFAULT_KILL_GRACE_SECONDS))
                return
            await asyncio.sleep(policy.interval)

    async def _kill_task(self, task: TaskRecord, grace: float) -> None:
        if task.state in TERMINAL:
            return
        task.kill_requested = True
        if task.process is None:
            return  # killed between STARTING and the fork: the launch path finishes it
        if self.killing_supported():
            self.update(task, "TASK_KILLING")
        await task.process.terminate(grace)


class CommandExecutor(ExecutorRun):
    def launch(self, task_info: dict[str, Any]) -> None:
        task = TaskRecord(task_info)
        self.tasks[task.task_id] = task
        self.spawn(self._run_task_process(task, task_info["command"]))

    def kill(self, task_id: str, kill_policy: Any) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            return
        policy = kill_policy or task.info.get("kill_policy") or {}
        grace = duration_seconds(policy.get("grace_period"), DEFAULT_KILL_GRACE_SECONDS)
        self.spawn(self._kill_task(task, grace))

    def shutdown(self) -> None:
        for task_id in list(self.tasks):
            self.kill(task_id, None)


class DefaultExecutor(CommandExecutor):
    """Runs a task group; when one task is killed or fails, the rest of the group is killed."""

    @property
    def kind(self) -> str:
        return "DEFAULT"

    def launch_group(self, tasks: list[dict[str, Any]]) -> None:
        for info in tasks:
            task = TaskRecord(info)
            self.tasks[task.task_id] = task
            self.spawn(self._run_task_process(task, info.get("command") or {"value": "true"}))

    def kill(self, task_id: str, kill_policy: Any) -> None:
        for other in list(self.tasks):
            super().kill(other, kill_policy)

    def on_task_exit(self, task: TaskRecord) -> None:
        if task.state != "TASK_FINISHED":
            for other in self.tasks.values():
                if other.state not in TERMINAL and not other.kill_requested:
                    self.spawn(self._kill_task(other, DEFAULT_KILL_GRACE_SECONDS))
        self.finish_if_idle()


class CustomExecutor(ExecutorRun):
    """A framework's executor process, speaking the v1 executor API to this agent."""

    @property
    def kind(self) -> str:
        return "CUSTOM"

    async def start(self, env: dict[str, str]) -> None:
        await self.ensure_sandbox()
        command = self.executor_info["command"]
        if not await self.fetched(command, list(self.tasks.values())):
            self._terminated()
            return
        status_file = None if self.meta_dir is None else self.meta_dir / "exit.status"
        try:
            await self.ensure_rootfs()
            spec = self.contained(command_argv(command), command_env(command, env), status_file)
            self.process = await self.launcher.launch(spec)
        except LaunchError as exc:
            for task in self.tasks.values():
                self.update(task, "TASK_FAILED", f"Failed to launch executor: {exc}",
                            "REASON_CONTAINER_LAUNCH_FAILED", source="SOURCE_AGENT")
            self._terminated()
            return
        if self.meta_dir is not None:
            await asyncio.to_thread(checkpoint.save_wrapper_pid, self.meta_dir, self.process.pid)
        self.spawn(self._registration_deadline(EXECUTOR_REGISTRATION_TIMEOUT))
        await self.watch_exit()

    async def watch_exit(self) -> None:
        """Wait for the executor process (ours, or adopted after an agent restart); its tasks
        still running then have failed with it."""
        assert self.process is not None
        status = await self.process.wait()
        self.exit_status = (status.code or 0) << 8 if status.signal is None else status.signal
        limitation = self.limitation()
        for task in self.tasks.values():
            if limitation is not None:
                self.update(task, "TASK_FAILED", limitation, MEMORY_LIMITATION, source="SOURCE_AGENT")
            else:
                self.update(task, "TASK_FAILED", f"Executor terminated: {status.describe()}",
                            "REASON_EXECUTOR_TERMINATED", source="SOURCE_AGENT")
        if self.stream is not None:
            self.stream.close()
        self._terminated()

    def _terminated(self) -> None:
        if not self.terminated:
            self.terminated = True
            self.on_terminated(self)

    async def _registration_deadline(self, timeout: float,
                                     reason: str = "REASON_EXECUTOR_REGISTRATION_TIMEOUT") -> None:
        """An executor that has not subscribed (again, after an agent restart) in time is killed."""
        await asyncio.sleep(timeout)
        if self.stream is None and self.process is not None and not self.terminated:
            for task in self.tasks.values():
                self.update(task, "TASK_FAILED", "Executor did not subscribe in time", reason, source="SOURCE_AGENT")
            await self.process.terminate(0)

    def adopt(self, process: ProcessHandle, reregistration_timeout: float) -> None:
        """Recovery: the executor process outlived the agent; wait for it to subscribe again."""
        self.process = process
        self.spawn(self._registration_deadline(reregistration_timeout, "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"))
        self.spawn(self.watch_exit())

    def send(self, event: dict[str, Any]) -> None:
        if self.stream is not None and not self.stream.closed:
            self.stream.send(event)
        elif event["type"] in ("LAUNCH", "LAUNCH_GROUP"):
            self.queued.append(event)

    def launch(self, task_info: dict[str, Any]) -> None:
        self._remember(task_info)
        self.send({"type": "LAUNCH", "launch": {"task": task_info}})

    def launch_group(self, tasks: list[dict[str, Any]]) -> None:
        for info in tasks:
            self._remember(info)
        self.send({"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": tasks}}})

    def _remember(self, task_info: dict[str, Any]) -> None:
        task = self.tasks[task_info["task_id"]["value"]] = TaskRecord(task_info)
        task_dir = self.task_dir(task)
        if task_dir is not None:
            self.spawn(asyncio.to_thread(checkpoint.save_task, task_dir, task_info))

    def kill(self, task_id: str, kill_policy: Any) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.state in TERMINAL:
            return
        if self.stream is None:
            self.update(task, "TASK_KILLED", "Killed before the executor subscribed",
                        "REASON_TASK_KILLED_DURING_LAUNCH", source="SOURCE_AGENT")
            return
        event: dict[str, Any] = {"type": "KILL", "kill": {"task_id": {"value": task_id}}}
        if kill_policy:
            event["kill"]["kill_policy"] = kill_policy
        self.send(event)

    def shutdown(self) -> None:
        self.send({"type": "SHUTDOWN"})
        grace = duration_seconds(self.executor_info.get("shutdown_grace_period"), EXECUTOR_SHUTDOWN_GRACE_SECONDS)
        self.spawn(self._destroy_after(grace))

    async def _destroy_after(self, grace: float) -> None:
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                await self.process.terminate(0)

    def subscribed(self, stream: EventStream, agent_info: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = stream
        stream.send({
            "type": "SUBSCRIBED",
            "subscribed": {
                "executor_info": self.executor_info,
                "framework_info": self.framework_info,
                "agent_info": agent_info,
                "container_id": {"value": self.container_id},
            },
        })
        for event in self.queued:
            stream.send(event)
        self.queued.clear()

    def record_update(self, status: dict[str, Any]) -> None:
        task = self.tasks.get(status["task_id"]["value"])
        if task is not None:
            task.state = status["state"]



def _group_of(user: str) -> str:
    """The primary group of ``user`` (setpriv needs it explicitly)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user  # setpriv then fails and the task ends TASK_FAILED, naming the user
