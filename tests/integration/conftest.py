"""Real clusters for integration tests: `meseta master` + `meseta agent` processes, or `meseta local`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from meseta.core.resources import Resources, share_of_ranges
from meseta.runtime.serve import free_port
from meseta.testing.processes import stop_processes

MESETA = [sys.executable, "-m", "meseta.cli.main"]
AGENT_RESOURCES = "cpus:4;mem:4096;disk:4096;ports:[31000-32000]"


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(MESETA + args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    stop_processes(procs)


def wait_for_agents(master: str, count: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            slaves = httpx.get(f"http://{master}/master/slaves", timeout=2).json()["slaves"]
            if len(slaves) >= count:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{count} agents did not register with {master} in {timeout}s")


@contextmanager
def master_and_agent(tmp_path: Path, *agent_args: str) -> Iterator[tuple[str, int]]:
    """A `meseta master` (allocating every 0.2 s) and one `meseta agent` given ``agent_args``,
    registered; yields (master, agent port) and stops both."""
    port, agent_port = free_port(), free_port()
    master = f"127.0.0.1:{port}"
    procs = [_start(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                     "--allocation-interval", "0.2"], tmp_path / "master.log"),
             _start(["agent", "--master", master, "--port", str(agent_port), "--work-dir", str(tmp_path / "agent"),
                     "--no-switch-user", *agent_args], tmp_path / "agent.log")]
    try:
        wait_for_agents(master, 1)
        yield master, agent_port
    finally:
        _stop(procs)


@pytest.fixture
def separate_processes(tmp_path: Path) -> Iterator[str]:
    """`meseta master` and two `meseta agent` processes on loopback."""
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [_start(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                     "--allocation-interval", "0.2"], tmp_path / "master.log")]
    for index in range(2):
        procs.append(_start(["agent", "--master", master, "--port", str(free_port()),
                             "--work-dir", str(tmp_path / f"agent{index}"), "--resources",
                             share_of_ranges(Resources.parse(AGENT_RESOURCES), index, 2).to_text(),
                             "--no-switch-user"], tmp_path / f"agent{index}.log"))
    try:
        wait_for_agents(master, 2)
        yield master
    finally:
        _stop(procs)


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[str]:
    """`meseta local` with two agents."""
    port = free_port()
    proc = _start(["local", "--port", str(port), "--agents", "2", "--work-dir", str(tmp_path),
                   "--agent-resources", AGENT_RESOURCES, "--services-port", str(free_port())], tmp_path / "local.log")
    try:
        wait_for_agents(f"127.0.0.1:{port}", 2)
        yield f"127.0.0.1:{port}"
    finally:
        _stop([proc])


@pytest.fixture(params=["separate_processes", "local_cluster"])
def cluster(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))
