"""Isolation with real cgroups and namespaces: a pymesos framework against a master and an agent
started with ``--isolation cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid`` under a cgroup
root of the test's own, which must be empty of containers when the tasks are done.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.agent.containerizer.cgroup_limits import choose_hierarchies, parse_mountinfo
from meseta.testing.clusters import master_and_agent
from meseta.testing.pymesos_recorder import Recorder, driver_for
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.integration

ISOLATION = "cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid"


def _hierarchies() -> dict[str, Any]:
    v1, unified = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    controllers = (Path(unified) / "cgroup.controllers").read_text().split() if unified else []
    return choose_hierarchies(v1, unified, controllers)


def _containers(root: str, controller: str) -> list[Path]:
    base = Path(_hierarchies()[controller].mount) / root
    return [p for p in base.iterdir() if p.is_dir()] if base.exists() else []


def _container_running(root: str, controller: str, argv: bytes) -> Path:
    """The container cgroup holding a process whose command line is ``argv`` (NUL-separated);
    the other containers' cgroups may still be on their way out."""
    for container in _containers(root, controller):
        with contextlib.suppress(FileNotFoundError):  # a cgroup (or process) that left meanwhile
            for pid in (container / "cgroup.procs").read_text().split():
                if Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0") == argv:
                    return container
    raise AssertionError(f"no {controller} cgroup under {root} runs {argv!r}")


@pytest.fixture
def isolated_cluster(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    if not {"cpu", "memory", "pids"} <= set(_hierarchies()):
        pytest.fail("this host must offer the cpu, memory and pids cgroup controllers")
    root = f"meseta-test-{uuid.uuid4().hex[:8]}"
    try:
        with master_and_agent(tmp_path, "--resources", "cpus:4;mem:2048;disk:256;ports:[31000-31010]",
                              "--isolation", ISOLATION, "--cgroups-root", root, "--cgroups-limit-pids", "64"
                              ) as (master, agent_port):
            yield master, root, agent_port
    finally:
        for hierarchy in {h.mount for h in _hierarchies().values()}:
            base = Path(hierarchy) / root
            if base.exists():
                for left in base.iterdir():
                    if left.is_dir():
                        left.rmdir()
                base.rmdir()


def _task(task_id: str, offer: dict[str, Any], command: str, cpus: float = 0.5, mem: float = 64) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "agent_id": offer["agent_id"], "name": task_id,
            "command": {"value": command},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]}



def test_memory_limit_pid_namespace_cpu_shares_and_cleanup(isolated_cluster: tuple[str, str, int]) -> None:
    master, root, agent_port = isolated_cluster
    recorder = Recorder()
    with driver_for(master, recorder) as driver:
        offer = recorder.take_offers()[0]
        hog = _task("hog", offer, "python3 -c 'x = \"x\" * (256 << 20); import time; time.sleep(30)'", mem=64)
        alone = _task("alone", offer, "test $$ -eq 1 && test $(ls -d /proc/[0-9]* | wc -l) -le 4")
        shares = _task("shares", offer, "exec sleep 31", cpus=1.5, mem=128)
        driver.launchTasks(offer["id"], [hog, alone, shares])

        failed = recorder.final("hog")
        assert failed["state"] == "TASK_FAILED", failed
        assert failed["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY"
        assert "Memory limit exceeded" in failed["message"]
        assert recorder.final("alone")["state"] == "TASK_FINISHED"  # pid 1, seeing only its own /proc

        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("shares"), 20, "the shares task")
        sleeper = b"sleep\x0031"
        container = _container_running(root, "cpu", sleeper)
        if (container / "cpu.shares").exists():
            assert (container / "cpu.shares").read_text().strip() == "1536"  # 1.5 cpus x 1024
        else:
            assert (container / "cpu.weight").read_text().strip() == str(1 + (1536 - 2) * 9999 // 262142)
        memory = _container_running(root, "memory", sleeper)
        limit = memory / "memory.limit_in_bytes"
        assert int((limit if limit.exists() else memory / "memory.max").read_text()) == 128 << 20
        pids = _container_running(root, "pids", sleeper)
        assert (pids / "pids.max").read_text().strip() == "64"
        monitor = httpx.get(f"http://127.0.0.1:{agent_port}/monitor/statistics").json()
        stats = {each["executor_id"]: each["statistics"] for each in monitor}
        assert stats["shares"]["mem_limit_bytes"] == 128 << 20 and stats["shares"]["processes"] >= 1

        driver.killTask({"value": "shares"})
        assert recorder.final("shares")["state"] == "TASK_KILLED"
        wait_until(lambda: not any(_containers(root, c) for c in ("cpu", "memory", "pids")), 10,
                   "the containers' cgroups removed")
        assert not any(_containers(root, c) for c in ("cpu", "cpuacct", "memory", "pids")), "leaked cgroups"


def test_disk_du_destroys_a_container_over_its_quota(tmp_path: Path) -> None:
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:2;mem:512;disk:64", "--isolation", "posix/cpu,disk/du",
                          "--enforce-container-disk-quota", "--container-disk-watch-interval", "0.3") as (master, _), \
            driver_for(master, recorder) as driver:
        offer = recorder.take_offers()[0]
        disk = {"name": "disk", "type": "SCALAR", "scalar": {"value": 2}}
        hog = _task("hog", offer, "head -c 8388608 /dev/zero > blob; sleep 30")
        modest = _task("modest", offer, "head -c 524288 /dev/zero > blob; sleep 30")
        for each in (hog, modest):
            each["resources"].append(disk)
        driver.launchTasks(offer["id"], [hog, modest])
        failed = recorder.final("hog")
        assert failed["state"] == "TASK_FAILED" and failed["reason"] == "REASON_CONTAINER_LIMITATION_DISK", failed
        assert "exceeds quota (2.0MB)" in failed["message"]
        time.sleep(1.0)  # three more checks
        assert recorder.states("modest")[-1] == "TASK_RUNNING"
