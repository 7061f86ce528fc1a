"""`meseta submit` as a user runs it: the real command line in a subprocess, against a real cluster
(a master and two agents, ``meseta.testing.local_cluster``) running real tasks."""

from __future__ import annotations

import itertools
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from meseta.testing.clusters import MESETA
from meseta.testing.ha_cluster import HaCluster, active_agents
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble

pytestmark = pytest.mark.integration
RUN_TIMEOUT = 120.0  # one submission, however loaded the machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two agents of 4 cpus each (attributes index:0 and index:1), shared by this module's tests."""
    with LocalCluster(tmp_path_factory.mktemp("submit"), agents=2) as running:
        yield running
        assert running.logged_errors() == []


def submit(master: str | None, *args: str, env: dict[str, str] | None = None,
           timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    flags = ["--master", master] if master else []
    return subprocess.run([*MESETA, "submit", *flags, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start_submit(master: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*MESETA, "submit", "--master", master, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def read_line(stream: IO[str], timeout: float = 60.0) -> str:
    """The next line of a child's pipe, or AssertionError after ``timeout`` seconds without one."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no line within {timeout} s"
    return stream.readline()


def flat(text: str) -> str:
    """typer's error box, unwrapped: one line, single spaces, no borders."""
    return " ".join(text.replace("│", " ").split())


def active_frameworks(master: str, name: str) -> list[str]:
    frameworks = httpx.get(f"http://{master}/master/frameworks", timeout=5).json()["frameworks"]
    return [f["id"] for f in frameworks if f["name"] == name and f.get("active", True)]


def test_count_runs_every_index_and_prints_the_outputs_in_index_order(cluster: LocalCluster) -> None:
    done = submit(None, "--count", "50", "--mem", "32", "--name", "fifty", "echo $MESETA_TASK_INDEX",
                  env={"MESETA_MASTER": cluster.master})  # the master comes from the environment
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(i) for i in range(50)]
    assert active_frameworks(cluster.master, "fifty") == []  # torn down at the end


def test_the_exit_code_is_the_tasks_and_with_count_the_first_failing_index(cluster: LocalCluster) -> None:
    done = submit(cluster.master, "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    script = 'case $MESETA_TASK_INDEX in 2) exit 5;; 3) exit 3;; esac; echo ok'
    done = submit(cluster.master, "--count", "4", "--mem", "32", script)
    assert done.returncode == 5, done.stderr
    assert done.stdout.split() == ["ok", "ok"] and "task 2 failed" in done.stderr


def test_env_uris_and_constraints_reach_the_task(cluster: LocalCluster, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("from a uri\n")
    done = submit(cluster.master, "--count", "3", "--mem", "32", "--env", "GREETING=hello world",
                  "--uri", f"file://{tmp_path / 'input.txt'}", "--constraint", "index:CLUSTER:1",
                  'echo "$GREETING $MESETA_TASK_INDEX $(cat input.txt) $(pwd)"')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" from a uri ")[0] for line in lines] == [f"hello world {i}" for i in range(3)]
    assert all("/agent1/" in line for line in lines)  # every sandbox on the agent with index:1


def test_follow_streams_output_while_the_task_runs(cluster: LocalCluster) -> None:
    proc = start_submit(cluster.master, "--follow", "echo first; sleep 4; echo second")
    try:
        assert proc.stdout is not None
        assert read_line(proc.stdout) == "first\n"
        first_at = time.monotonic()
        assert read_line(proc.stdout) == "second\n"
        assert time.monotonic() - first_at > 2  # the first line came while the task still slept
        assert proc.wait(RUN_TIMEOUT) == 0
    finally:
        stop_processes([proc])  # type: ignore[list-item]


def test_follow_with_count_prefixes_each_line_by_index(cluster: LocalCluster) -> None:
    done = submit(cluster.master, "--follow", "--count", "3", "--mem", "32",
                  "echo a$MESETA_TASK_INDEX; echo b$MESETA_TASK_INDEX >&2")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["[0] a0", "[1] a1", "[2] a2"]
    assert sorted(done.stderr.splitlines()) == ["[0] b0", "[1] b1", "[2] b2"]


def test_retries_run_a_failed_task_again(cluster: LocalCluster, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    script = f"if [ -e {marker} ]; then echo second try; else touch {marker}; echo first try; exit 9; fi"
    done = submit(cluster.master, "--retries", "1", script)
    assert (done.returncode, done.stdout) == (0, "second try\n"), done.stderr  # the last attempt's output
    assert "task 0 failed (Command exited with status 9); retry 1 of 1" in done.stderr
    done = submit(cluster.master, "--retries", "2", "exit 4")
    assert done.returncode == 4 and done.stderr.count("; retry ") == 2


@pytest.mark.parametrize(("args", "named"), [
    (["--count", "-1", "true"], "--count"),
    (["--constraint", "hostname:GROUP_BY", "true"], "GROUP_BY is not supported"),
    (["--constraint", "hostname:NEAR:x", "true"], "unknown operator 'NEAR'"),
    (["--env", "NOVALUE", "true"], "--env"),
    (["--cpus", "nan", "true"], "--cpus"),
    (["--max-parallel", "-2", "true"], "--max-parallel"),
    (["--name", "a/b", "true"], "--name"),
    (["--follow", "--no-output", "true"], "--follow and --no-output"),
])
def test_bad_flags_exit_2_naming_the_flag_without_contacting_the_master(args: list[str], named: str) -> None:
    with socket.socket() as listener:  # a "master" that would see any connection
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        master = f"127.0.0.1:{listener.getsockname()[1]}"
        done = submit(None, *args, env={"MESETA_MASTER": master}, timeout=60)
        assert done.returncode == 2 and named in flat(done.stderr), done.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_a_task_no_agent_fits_is_reported_and_ctrl_c_tears_down(cluster: LocalCluster) -> None:
    proc = start_submit(cluster.master, "--cpus", "64", "--report-after", "1", "--name", "too-big", "true")
    try:
        assert proc.stderr is not None
        line = read_line(proc.stderr)
        assert "1 task(s) waiting" in line and "cpus: 64 needed, 4 offered" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(RUN_TIMEOUT) == 130
    finally:
        stop_processes([proc])  # type: ignore[list-item]
    assert active_frameworks(cluster.master, "too-big") == []


def test_ctrl_c_kills_the_running_tasks(cluster: LocalCluster) -> None:
    marker = "sleep 40.4321"  # the tasks' command line; submit's own reads "sleep $((40)).4321"
    proc = start_submit(cluster.master, "--count", "2", "--mem", "32", "--name", "interrupted", "sleep $((40)).4321")
    try:
        wait_until(lambda: len(processes_with(marker)) == 2, 60, "both tasks running")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(RUN_TIMEOUT) == 130
    finally:
        stop_processes([proc])  # type: ignore[list-item]
    wait_until(lambda: not processes_with(marker), 60, "the tasks killed")
    assert active_frameworks(cluster.master, "interrupted") == []


def test_a_job_file_describes_the_run(cluster: LocalCluster, tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text('{"command": "echo $MESETA_TASK_INDEX $N", "count": 2, "mem": 32, "env": {"N": "x"}}')
    done = submit(cluster.master, "--file", str(job))
    assert (done.returncode, done.stdout) == (0, "0 x\n1 x\n"), done.stderr
    job.write_text('{"command": "true", "instances": 2}')
    done = submit(cluster.master, "--file", str(job))
    assert done.returncode == 2 and "job file: instances" in flat(done.stderr)



def test_image_runs_the_task_on_that_root_filesystem(cluster: LocalCluster, tmp_path: Path) -> None:
    from meseta.testing.images import BUSYBOX, docker_archive

    if not BUSYBOX.exists():
        pytest.skip("needs Debian's busybox-static (scripts/install-test-system.sh)")
    image = docker_archive(tmp_path / "tiny.tar")
    done = submit(cluster.master, "--image", str(image), "cat /etc/os-release /hello.txt; pwd")
    assert (done.returncode, done.stdout) == (0, "tiny-image\nfrom layer 2\n/mnt/mesos/sandbox\n"), done.stderr


def test_zk_master_and_a_leader_failover_mid_run(tmp_path: Path, single_node: Ensemble) -> None:
    """Masters found through ZooKeeper; the leader killed while the task runs: submit follows the
    new leader, the task is not killed, and its output and exit code still come back."""
    with HaCluster(tmp_path, single_node.hosts, agents=1) as ha:
        ha.wait(lambda s: active_agents(s) == 1, 60, "the agent registered")
        proc = subprocess.Popen([*MESETA, "submit", "--master", ha.zk_url, "--name", "through-failover",
                                 "echo started; sleep 8; echo survived; exit 6"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            state = ha.wait(lambda s: any(f["name"] == "through-failover" and f["tasks"] for f in s["frameworks"]),
                            60, "the task launched")
            assert state is not None
            old = ha.leader()
            assert old is not None
            ha.kill_master(old)
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
            assert (proc.returncode, out) == (6, "started\nsurvived\n"), err
        finally:
            stop_processes([proc])  # type: ignore[list-item]


def test_max_parallel_never_lets_more_tasks_run_at_once(cluster: LocalCluster) -> None:
    done = submit(cluster.master, "--count", "4", "--max-parallel", "1", "--mem", "32",
                  "echo $(date +%s.%N) start; sleep 0.3; echo $(date +%s.%N) end")
    assert done.returncode == 0, done.stderr
    times = [float(line.split()[0]) for line in done.stdout.splitlines()]
    spans = sorted(zip(times[0::2], times[1::2], strict=True))
    assert len(spans) == 4
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))  # one at a time
