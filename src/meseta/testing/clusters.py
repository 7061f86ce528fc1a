"""Real `meseta` processes for integration tests and benchmarks: every daemon is started by
``start_daemon`` (the `meseta` command line in a session of its own, stdout and stderr appended to
its log) and stopped with ``stop_processes`` (``meseta.testing.processes``) or ``kill9``.

    proc = start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "m")], tmp_path / "master.log")
    wait_for_agents(f"127.0.0.1:{port}", 2)
    kill9(proc)                                        # SIGKILL to its process group, reaped

    with master_and_agent(tmp_path, "--resources", "cpus:2") as (master, agent_port): ...
    with services_cluster(tmp_path, agents=2) as (master, services_url): ...

What the two clusters leave in their base directory::

    master_and_agent(base)              services_cluster(base, agents=n)
      master/        master.log           m/            master.log
      agent/         agent.log            a<i>/         agent<i>.log    (i < n, attribute rack:r<i>)
                                          s/            services.log
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from meseta.core.resources import Resources, share_of_ranges
from meseta.runtime.serve import free_port
from meseta.testing.processes import stop_processes
from meseta.testing.services_api import pings
from meseta.testing.waiting import wait_until

MESETA = [sys.executable, "-m", "meseta.cli.main"]  # the `meseta` command line of this interpreter
DEFAULT_AGENT_RESOURCES = "cpus:4;mem:4096;disk:4096;ports:[31000-32000]"  # one agent unless a test says otherwise
FAST_ALLOCATION = ("--allocation-interval", "0.2")  # offers follow a change within a fifth of a second


def agent_resources(index: int, count: int, resources: str = DEFAULT_AGENT_RESOURCES) -> str:
    """``resources`` for agent ``index`` of ``count`` on this one host: a port range of its own (two
    agents handing out the same host port make the second task's bind fail)."""
    return share_of_ranges(Resources.parse(resources), index, count).to_text()


def start_daemon(args: Sequence[str], log: Path, prefix: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """``meseta <args>`` in a session (process group) of its own, its output appended to ``log``;
    ``prefix`` runs it through a wrapper (``ip netns exec <ns>``, ``taskset -c 0``)."""
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen([*prefix, *MESETA, *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole group (no chance to clean up, as a crash) and reap it."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def registered_agents(master: str) -> int:
    return len(httpx.get(f"http://{master}/master/slaves", timeout=2).json()["slaves"])


def wait_for_agents(master: str, count: int, timeout: float = 20.0) -> None:
    """Until at least ``count`` agents are registered with ``master`` ("host:port")."""
    wait_until(lambda: registered_agents(master) >= count, timeout, f"{count} agents registered with {master}",
               interval=0.1)


@contextmanager
def master_and_agent(base: Path, *agent_flags: str) -> Iterator[tuple[str, int]]:
    """A `meseta master` (allocating every 0.2 s) and one `meseta agent` given ``agent_flags``,
    registered; yields (master, agent port) and stops both."""
    port, agent_port = free_port(), free_port()
    master = f"127.0.0.1:{port}"
    procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(base / "master"), *FAST_ALLOCATION],
                          base / "master.log"),
             start_daemon(["agent", "--master", master, "--port", str(agent_port), "--work-dir", str(base / "agent"),
                           "--no-switch-user", *agent_flags], base / "agent.log")]
    try:
        wait_for_agents(master, 1)
        yield master, agent_port
    finally:
        stop_processes(procs)


@contextmanager
def services_cluster(base: Path, agents: int = 2, services_flags: Sequence[str] = ()) -> Iterator[tuple[str, str]]:
    """A master, ``agents`` agents and `meseta services` (given ``services_flags``), every
    process stopped afterwards; yields (master, services URL) once all answer."""
    master = f"127.0.0.1:{free_port()}"
    port = free_port()
    procs = [start_daemon(["master", "--port", master.split(":")[1], "--work-dir", str(base / "m"),
                           *FAST_ALLOCATION], base / "master.log")]
    for i in range(agents):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()),
                                   "--work-dir", str(base / f"a{i}"), "--no-switch-user",
                                   "--resources", agent_resources(i, agents), "--attributes", f"rack:r{i}"],
                                  base / f"agent{i}.log"))
    procs.append(start_daemon(["services", "--master", master, "--port", str(port), "--work-dir", str(base / "s"),
                               *services_flags], base / "services.log"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_agents(master, agents)
        wait_until(lambda: pings(url), 30, "services to answer /ping")
        yield master, url
    finally:
        stop_processes(procs)
