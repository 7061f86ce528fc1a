"""Fixtures of the integration tests: real clusters (`meseta master` + `meseta agent` processes, or
`meseta local`) and real ZooKeeper ensembles. Plain helpers are in ``meseta.testing``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from meseta.runtime.serve import free_port
from meseta.testing.clusters import (
    DEFAULT_AGENT_RESOURCES,
    FAST_ALLOCATION,
    agent_resources,
    start_daemon,
    wait_for_agents,
)
from meseta.testing.processes import stop_processes
from meseta.testing.zookeeper import Ensemble, connected

HOST_FILES = tuple(Path("/etc") / name for name in ("hosts", "hostname", "resolv.conf"))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


@pytest.fixture(autouse=True)
def host_etc_untouched() -> Iterator[None]:
    """No test may change the host's /etc/hosts, /etc/hostname or /etc/resolv.conf (containers get
    copies; once a wrong key made the agent copy a container's files over the host's, and the
    machine lost its name server). A change is undone and fails the test that made it."""
    before = {path: _read(path) for path in HOST_FILES}
    yield
    changed = [path for path, data in before.items() if _read(path) != data]
    for path in changed:
        data = before[path]
        if data is not None:
            path.write_bytes(data)
    assert not changed, f"the test changed the host's {', '.join(map(str, changed))} (restored)"


@pytest.fixture
def separate_processes(tmp_path: Path) -> Iterator[str]:
    """`meseta master` and two `meseta agent` processes on loopback."""
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"), *FAST_ALLOCATION],
                          tmp_path / "master.log")]
    for index in range(2):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()),
                                   "--work-dir", str(tmp_path / f"agent{index}"),
                                   "--resources", agent_resources(index, 2), "--no-switch-user"],
                                  tmp_path / f"agent{index}.log"))
    try:
        wait_for_agents(master, 2)
        yield master
    finally:
        stop_processes(procs)


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[str]:
    """`meseta local` with two agents."""
    port = free_port()
    proc = start_daemon(["local", "--port", str(port), "--agents", "2", "--work-dir", str(tmp_path),
                         "--agent-resources", DEFAULT_AGENT_RESOURCES, "--services-port", str(free_port())],
                        tmp_path / "local.log")
    try:
        wait_for_agents(f"127.0.0.1:{port}", 2)
        yield f"127.0.0.1:{port}"
    finally:
        stop_processes([proc])


@pytest.fixture(params=["separate_processes", "local_cluster"])
def cluster(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    """Three ZooKeeper nodes shared by a module's tests; a test that kills a node starts it again."""
    with Ensemble(tmp_path_factory.mktemp("zk"), size=3) as zk:
        yield zk


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[Ensemble]:
    """One standalone ZooKeeper node for this test alone (starts in well under a second)."""
    with Ensemble(tmp_path / "zk", size=1) as zk:
        yield zk


@pytest.fixture(scope="module")
def zk_client(ensemble: Ensemble) -> Iterator[KazooClient]:
    """A client of the module's ensemble, shared by its tests."""
    with connected(ensemble) as client:
        yield client
