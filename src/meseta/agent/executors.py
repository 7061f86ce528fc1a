"""Containers: the process side of an executor run (the machine keeps the tasks and decides).

One ``Container`` per run (``meseta.agent.runs``), owned by the actor::

    sandbox (made in a thread, once, before any launch) --> fetch URIs --> image pulled, overlay
        --> network namespace attached to its CNI networks (``spec.networks``)
        --> fork in its cgroups / netns / pid namespace, under the status wrapper --> wait for the exit
    terminate(grace): SIGTERM to the process group, SIGKILL after the grace period
    release: the network attachments, the image overlay and the cgroups go

A launch's process chain, outermost first (each step execs or waits for the next)::

    cgroups join (sh)  ->  status wrapper (sh)  ->  nsenter --net (own network)  ->
      rootfs: unshare --mount, overlay + volumes + /etc files, unshare --root [--pid] [--setuid]
      or, without an image: [unshare --mount: sandbox volumes]  [unshare --pid]  ->  the task

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
from meseta.agent.containerizer.cni import Attachment, CniIsolator, NetworkError
from meseta.agent.containerizer.image_config import ImageConfig, LaunchCommandError, image_env, launch_argv
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
from meseta.agent.containerizer.rootfs import (
    SANDBOX_IN_CONTAINER,
    Bind,
    MountError,
    RootfsMount,
    UnknownUser,
    plan_mounts,
    resolve_ids,
    wrap_sandbox_binds,
)
from meseta.agent.effects import RunKey
from meseta.agent.fetcher import Fetcher, FetchError
from meseta.core.resources import Resources
from meseta.protocol.container_info import HOST, ContainerSpec

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# an image on the host's network resolves names as the host does (copies, as Docker's)
HOST_ETC_FILES = {name: Path("/etc") / name for name in ("hosts", "resolv.conf") if (Path("/etc") / name).is_file()}


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
    spec: ContainerSpec = HOST  # what its ContainerInfo asks: image, networks, volumes
    networks: CniIsolator | None = None  # the agent's network/cni isolator, when it has CNI networks
    attachment: Attachment | None = None  # its network namespace and addresses, once attached
    binds: list[Bind] | None = None  # its volumes and /etc files, once their mount points exist
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
        for index, volume in enumerate(self.spec.volumes):  # else the mount step fails with only an exit status
            if volume.kind == "HOST_PATH" and not await asyncio.to_thread(os.path.exists, volume.source):
                return (f"Failed to mount volume container.volumes[{index}] at {volume.container_path}: "
                        f"host path {volume.source} does not exist")
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

    @property
    def image_config(self) -> ImageConfig | None:
        return self.image_info.config if self.image_info is not None else None

    async def ensure_network(self) -> list[dict[str, Any]] | None:
        """Attach the container to its networks (once); their NetworkInfos, or None on the host's."""
        if not self.spec.own_network:
            return None
        if self.attachment is None:
            if self.networks is None:
                raise LaunchError("container.network_infos: this agent has no container networks "
                                  "(start it with --network-cni-config-dir)")
            try:
                self.attachment = await self.networks.attach(self.key.container_id, self.spec.networks or ())
            except NetworkError as exc:
                raise LaunchError(f"Failed to attach the container to its networks: {exc}") from None
        return list(self.attachment.network_infos)

    async def ensure_mounts(self) -> None:
        """Make the mount points of its volumes and /etc files (once, off the loop)."""
        if self.binds is not None:
            return
        etc = dict(self.attachment.etc_files) if self.attachment is not None else HOST_ETC_FILES
        try:
            self.binds = await asyncio.to_thread(plan_mounts, self.rootfs, self.sandbox, self.spec.volumes, etc)
        except (MountError, OSError) as exc:
            raise LaunchError(f"Failed to prepare the container's mounts: {exc}") from None

    def task_command(self, command: Mapping[str, Any]) -> tuple[str, ...]:
        """The argv of a task or executor: its CommandInfo, with its image's Entrypoint/Cmd."""
        try:
            return launch_argv(command, self.image_config) if self.rootfs is not None else command_argv(command)
        except LaunchCommandError as exc:
            raise LaunchError(str(exc)) from None

    def task_env(self, command: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
        """The image's Env under the agent's (MESOS_*) and the command's own variables."""
        config = self.image_config
        if config is None:
            return command_env(command, base)
        own = {k: v for k, v in base.items() if k != "PATH"}
        return command_env(command, {**base, **image_env(config), **own})

    def _ids(self, user: str | None, config: ImageConfig | None) -> tuple[int, int] | None:
        """Who runs in an image: the task's user, else the image's User, else its root."""
        wanted = user or (config.user if config else None)
        if not wanted or self.rootfs is None:
            return None
        try:
            return resolve_ids(wanted, self.rootfs.lowers)
        except (UnknownUser, OSError) as exc:
            raise LaunchError(f"Failed to switch to user '{wanted}': {exc}") from None

    def contained(self, argv: tuple[str, ...], env: dict[str, str], status_file: Path | None = None) -> LaunchSpec:
        """The launch of ``argv`` inside this container: in its cgroups (joined before exec), with
        namespaces/pid as pid 1 of a new pid namespace with its own /proc, on its image's root
        filesystem if it has one, and under a wrapper that records its exit status in
        ``status_file`` (so that a restarted agent learns how it ended)."""
        if self.setup_error is not None:
            raise LaunchError(self.setup_error)
        user = self.user
        if self.rootfs is not None:  # the image's root filesystem, in a mount namespace of its own
            config = self.image_config
            argv = self.rootfs.wrap(argv, self.sandbox, self.pid_namespace,
                                    workdir=(config.working_dir if config else None) or SANDBOX_IN_CONTAINER,
                                    binds=self.binds or (), ids=self._ids(user, config))
            env = {**env, "MESOS_SANDBOX": SANDBOX_IN_CONTAINER, "MESOS_DIRECTORY": SANDBOX_IN_CONTAINER}
            user = None  # unshare needs root: the rootfs chain switches user itself
        else:
            if user is not None and (self.pid_namespace or status_file is not None or self.binds) \
                    and os.geteuid() == 0:
                # unshare and the status wrapper need root: drop to the user last, with setpriv
                argv = ("setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--init-groups", "--", *argv)
                user = None
            if self.binds:  # sandbox volumes, bound in a mount namespace of its own (before setpriv)
                argv = wrap_sandbox_binds(argv, self.binds)
            if self.pid_namespace:
                argv = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--", *argv)
        if self.attachment is not None and self.networks is not None:
            argv = self.networks.enter(self.attachment, argv)
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
        await self.ensure_rootfs()
        await self.ensure_network()
        await self.ensure_mounts()
        env = self.task_env(command, {**self.base_env, "MESOS_TASK_ID": task_id})
        argv = self.task_command(command)
        task_dir = self.task_dir(task_id)
        await asyncio.to_thread(checkpoint.save_task, task_dir, dict(info))
        process = await self.launcher.launch(self.contained(argv, env, task_dir / "exit.status"))
        self.processes[task_id] = process
        await asyncio.to_thread(checkpoint.save_wrapper_pid, task_dir, process.pid)
        return process

    def adopt_task(self, task_id: str, pid: int, status_file: Path) -> ProcessHandle:
        """Recovery: a task wrapper an earlier agent started (not our child: a pidfd watches it)."""
        process = self.processes[task_id] = AdoptedProcess(pid, status_file)
        return process

    def probe_host(self, port: int | None) -> str:
        """Where a health check reaches the task: the agent's loopback for a host port (through the
        mapping, if any), else the container's own address on its first network."""
        if self.attachment is None or port is None or port in self.spec.host_ports():
            return "127.0.0.1"
        for info in self.attachment.network_infos:
            for address in info.get("ip_addresses") or []:
                if address.get("ip_address"):
                    return str(address["ip_address"])
        return "127.0.0.1"

    def probe_env(self, task_id: str, command: Mapping[str, Any]) -> dict[str, str]:
        return command_env(command, {**self.base_env, "MESOS_TASK_ID": task_id})

    # ---------------------------------------------------------------- a custom executor's process
    async def launch_executor(self, executor_info: Mapping[str, Any]) -> ProcessHandle:
        command = executor_info.get("command")
        if not isinstance(command, dict):
            raise LaunchError("ExecutorInfo has no command")
        await self.ensure_rootfs()
        await self.ensure_network()
        await self.ensure_mounts()
        spec = self.contained(self.task_command(command), self.task_env(command, self.base_env),
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
