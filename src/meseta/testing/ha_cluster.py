"""A highly available cluster of real processes for tests and benchmarks: masters contending in
ZooKeeper and agents following the leader, each a `meseta` process in its own session.

    HaCluster(base_dir, zk_hosts)
      base_dir/master<i>/           work dir, master<i>.log
      base_dir/agent<i>/            work dir, agent<i>.log
      masters: --zk zk://<zk_hosts>/meseta --quorum 2, on free loopback ports
      agents:  --master zk://<zk_hosts>/meseta

``leader()`` asks ZooKeeper (the lowest json.info_ znode), as every client does; ``state()``
reads the leader's /master/state. ``kill_master(i)`` sends SIGKILL (or any signal) to the
master's process group; ``start_master(i)`` starts it again as a contender.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from meseta.protocol.master_znodes import leader_child, master_address, parse_master_info
from meseta.testing.clusters import DEFAULT_AGENT_RESOURCES, FAST_ALLOCATION, start_daemon
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import free_ports

ZK_PATH = "/meseta"


class HaCluster:
    def __init__(self, base_dir: Path, zk_hosts: str, masters: int = 3, agents: int = 3,
                 master_flags: Sequence[str] = (), agent_flags: Sequence[str] = (),
                 session_timeout: float = 2.0) -> None:
        self.base_dir, self.zk_hosts = base_dir, zk_hosts
        self.zk_url = f"zk://{zk_hosts}{ZK_PATH}"
        self.master_flags, self.agent_flags = list(master_flags), list(agent_flags)
        self.session_timeout = session_timeout
        ports = free_ports(masters + agents)
        self.master_ports, self.agent_ports = ports[:masters], ports[masters:]
        self.masters: list[subprocess.Popen[bytes] | None] = [None] * masters
        self.agents: list[subprocess.Popen[bytes] | None] = [None] * agents
        self.zk = KazooClient(hosts=zk_hosts, timeout=10.0)

    # ------------------------------------------------------------ processes
    def start(self) -> HaCluster:
        self.zk.start(30)
        for i in range(len(self.masters)):
            self.start_master(i)
        for i in range(len(self.agents)):
            self.start_agent(i)
        return self

    def start_master(self, i: int) -> None:
        self.masters[i] = start_daemon([
            "master", "--port", str(self.master_ports[i]), "--work-dir", str(self.base_dir / f"master{i}"),
            "--zk", self.zk_url, "--quorum", "2", "--zk-session-timeout", str(self.session_timeout),
            *FAST_ALLOCATION, *self.master_flags], self.base_dir / f"master{i}.log")

    def start_agent(self, i: int, extra: Sequence[str] = ()) -> None:
        self.agents[i] = start_daemon([
            "agent", "--master", self.zk_url, "--port", str(self.agent_ports[i]),
            "--work-dir", str(self.base_dir / f"agent{i}"), "--no-switch-user",
            "--resources", DEFAULT_AGENT_RESOURCES, *self.agent_flags, *extra], self.base_dir / f"agent{i}.log")

    def kill_master(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.masters[i]
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait()
            self.masters[i] = None

    def stop(self) -> None:
        stop_processes(p for p in [*self.agents, *self.masters] if p is not None)
        with contextlib.suppress(KazooException):
            self.zk.stop()
            self.zk.close()

    def __enter__(self) -> HaCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ observing
    def leader(self) -> int | None:
        """The index of the leading master, as ZooKeeper says (None: no leader, or not one of ours)."""
        try:
            children = self.zk.get_children(ZK_PATH)
            child = leader_child(children)
            if child is None:
                return None
            data, _ = self.zk.get(f"{ZK_PATH}/{child}")
        except KazooException:
            return None
        info = parse_master_info(child, data)
        if info is None:
            return None
        port = int(master_address(info).rsplit(":", 1)[1])
        return self.master_ports.index(port) if port in self.master_ports else None

    def leader_address(self) -> str | None:
        i = self.leader()
        return None if i is None else f"127.0.0.1:{self.master_ports[i]}"

    def state(self) -> dict[str, Any] | None:
        """The leader's /master/state, or None while there is no leader that answers."""
        address = self.leader_address()
        if address is None:
            return None
        try:
            response = httpx.get(f"http://{address}/master/state", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0, what: str = "") -> \
            dict[str, Any]:
        """Poll the leader's state until ``predicate`` holds; returns that state."""
        last: dict[str, Any] = {}

        def holds() -> dict[str, Any] | None:
            state = self.state()
            if state is not None:
                last.clear()
                last.update(state)
            return state if state is not None and predicate(state) else None

        return wait_until(holds, timeout, what, describe=lambda: json.dumps(
            {k: last.get(k) for k in ("leader", "activated_slaves")}))


def running_tasks(state: dict[str, Any]) -> set[str]:
    return {t["id"] for f in state.get("frameworks", []) for t in f.get("tasks", []) if t["state"] == "TASK_RUNNING"}


def active_agents(state: dict[str, Any]) -> int:
    return sum(1 for a in state.get("slaves", []) if a.get("active"))
