"""Containers: the process side of an executor run (the machine keeps the tasks and decides).

One ``Container`` per run (``meseta.agent.runs``), owned by the actor::

    sandbox (made in a thread, once, before any launch) --> fetch URIs --> image overlay
        --> fork in its cgroups / pid namespace, under the status wrapper --> wait for the exit
    terminate(grace): SIGTERM to the process group, SIGKILL after the grace period
    release: the image overlay and the cgroups go (with whatever is left in them)

The actor runs each step when the machine asks (``meseta.agent.effects``) and tells the machine
what happened (fetched, launched, failed, exited); a container never decides a task's state.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meseta.agent import checkpoint, paths
from meseta.agent.containerizer.cgroups import ContainerCgroups
from meseta.agent.containerizer.images import Image, ImageError, ImageStore
from meseta.agent.containerizer.launcher import (
    AdoptedProcess,
    ExitStatus,
    Launcher,
    LaunchError,
    LaunchSpec,
    ProcessHandle,
    wrap_with_status,
)
from meseta.agent.containerizer.rootfs import SANDBOX_IN_CONTAINER, RootfsMount
from meseta.agent.effects import RunKey
from meseta.agent.fetcher import Fetcher, FetchError
from meseta.core.resources import Resources

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command_argv(command: Mapping[str, Any]) -> tuple[str, ...]:
    if command.get("shell", True):
        return ("/bin/sh", "-c", str(command.get("value", "")))
    arguments = [str(a) for a in command.get("arguments") or []]
    return (str(command["value"]), *arguments[1:])


def command_env(command: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.setdefault("PATH", DEFAULT_PATH)
    for variable in (command.get("environment") or {}).get("variables") or []:
        if variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env


@dataclass(frozen=True, slots=True)
class Exit:
    """How a process ended, as the machine hears it."""

    code: int | None
    signal: int | None
    description: str
    limitation: str | None  # why the kernel stopped the container (the memory limit), if it did

    @property
    def succeeded(self) -> bool:
        return self.code == 0


@dataclass(slots=True)
class Container:
    key: RunKey
    sandbox: Path
    meta_dir: Path  # the run's checkpoint directory (``meseta.agent.paths``)
    launcher: Launcher
    base_env: dict[str, str]
    user: str | None = None
    fetcher: Fetcher | None = None
    images: ImageStore | None = None
    image: str | None = None  # the docker image of ContainerInfo.mesos.image, if any
    image_info: Image | None = None  # the pulled image (layers, config), once pulled
    force_pull: bool = False  # re-resolve the tag at the registry (cached: false / forcePullImage)
    rootfs: RootfsMount | None = None  # the image's overlay, once prepared
    cgroups: ContainerCgroups | None = None  # the cgroups/* isolators' share of this container
    pid_namespace: bool = False
    setup_error: str | None = None  # the container could not be made: every launch fails with this
    allocated: Resources = field(default_factory=Resources)
    processes: dict[str, ProcessHandle] = field(default_factory=dict)  # task id -> its wrapper
    executor: ProcessHandle | None = None  # a custom executor's process
    # mkdir of a sandbox costs ~2 ms on these disks: it runs in a thread, once, before any launch
    make_sandbox: Callable[[], Any] | None = None
    sandbox_ready: asyncio.Future[Any] | None = None

    def task_dir(self, task_id: str) -> Path:
        return paths.meta_task_dir(self.meta_dir, task_id)

    def pids(self) -> list[int]:
        pids = [process.pid for process in self.processes.values()]
        return [*pids, self.executor.pid] if self.executor is not None else pids

    async def ensure_sandbox(self) -> None:
        if self.make_sandbox is None:
            return
        if self.sandbox_ready is None:
            self.sandbox_ready = asyncio.ensure_future(asyncio.to_thread(self.make_sandbox))
        await self.sandbox_ready

    async def prepared(self, command: Mapping[str, Any]) -> str | None:
        """The sandbox made and the command's URIs fetched into it; or why not."""
        try:
            await self.ensure_sandbox()
        except OSError as exc:
            return f"Failed to create the sandbox: {exc}"
        uris = command.get("uris") or []
        if not uris or self.fetcher is None:
            return None
        try:
            await self.fetcher.fetch_all(uris, self.sandbox, self.user)
        except FetchError as exc:
            return str(exc)
        return None

    async def ensure_rootfs(self) -> None:
        """Pull the image (layers shared by the agent's containers) and make this container's overlay."""
        if self.image is None or self.rootfs is not None or self.images is None:
            return
        try:
            self.image_info = await self.images.pull(self.image, self.force_pull)
        except ImageError as exc:
            raise LaunchError(str(exc)) from None
        self.rootfs = self.images.prepare(self.key.container_id, self.image_info)

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

    def exit_of(self, status: ExitStatus) -> Exit:
        limitation = self.cgroups.limitation() if self.cgroups is not None else None
        return Exit(status.code, status.signal, status.describe(), limitation)

    # ---------------------------------------------------------------- a task's process
    async def launch_task(self, task_id: str, info: Mapping[str, Any], command: Mapping[str, Any]) -> ProcessHandle:
        """Fork the task (LaunchError says why not); its pid is checkpointed before this returns."""
        env = command_env(command, {**self.base_env, "MESOS_TASK_ID": task_id})
        await self.ensure_rootfs()
        task_dir = self.task_dir(task_id)
        await asyncio.to_thread(checkpoint.save_task, task_dir, dict(info))
        process = await self.launcher.launch(self.contained(command_argv(command), env, task_dir / "exit.status"))
        self.processes[task_id] = process
        await asyncio.to_thread(checkpoint.save_wrapper_pid, task_dir, process.pid)
        return process

    def adopt_task(self, task_id: str, pid: int, status_file: Path) -> ProcessHandle:
        """Recovery: a task wrapper an earlier agent started (not our child: a pidfd watches it)."""
        process = self.processes[task_id] = AdoptedProcess(pid, status_file)
        return process

    def probe_env(self, task_id: str, command: Mapping[str, Any]) -> dict[str, str]:
        return command_env(command, {**self.base_env, "MESOS_TASK_ID": task_id})

    # ---------------------------------------------------------------- a custom executor's process
    async def launch_executor(self, executor_info: Mapping[str, Any]) -> ProcessHandle:
        command = executor_info.get("command")
        if not isinstance(command, dict):
            raise LaunchError("ExecutorInfo has no command")
        await self.ensure_rootfs()
        spec = self.contained(command_argv(command), command_env(command, self.base_env),
                              self.meta_dir / "exit.status")
        self.executor = await self.launcher.launch(spec)
        await asyncio.to_thread(checkpoint.save_wrapper_pid, self.meta_dir, self.executor.pid)
        return self.executor

    def adopt_executor(self, pid: int, status_file: Path) -> ProcessHandle:
        self.executor = AdoptedProcess(pid, status_file)
        return self.executor

    async def stop_executor(self, after: float) -> None:
        """Kill the executor's process group, at once or once ``after`` seconds pass without it exiting."""
        process = self.executor
        if process is None:
            return
        if after > 0:
            try:
                await asyncio.wait_for(process.wait(), after)
                return
            except TimeoutError:
                pass
        await process.terminate(0)

    async def stop_all(self) -> None:
        """The agent stops: every process of the container goes, within a second."""
        for process in list(self.processes.values()):
            await process.terminate(1.0)
        if self.executor is not None:
            await self.executor.terminate(1.0)


def _group_of(user: str) -> str:
    """The primary group of ``user`` (setpriv needs it explicitly)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user  # setpriv then fails and the task ends TASK_FAILED, naming the user
