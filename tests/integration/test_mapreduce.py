"""The MapReduce example framework on a real cluster: a master and three agents as processes,
map and reduce tasks as real processes, the shuffle through the agents' /files/download (or a
shared directory).

Each job counts the words of a seeded corpus of a few MB and must match collections.Counter
exactly: plainly (through `meseta mapreduce`), through a shuffle directory, with an agent killed
(SIGKILL) in the middle of the map phase or of the reduce phase, with a straggler agent whose
maps get speculative copies elsewhere, and with a broken agent whose maps fail and run again
elsewhere. Test-only map and reduce functions are in ``mapreduce_functions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.examples.mapreduce import JobSpec
from meseta.examples.mapreduce.inputs import list_inputs
from meseta.examples.mapreduce.job import WORDCOUNT_REDUCE
from meseta.examples.mapreduce.records import read_output_line
from meseta.examples.mapreduce.scheduler import MapReduceFailed, MapReduceJob, run_job
from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, MESETA, agent_resources, kill9, start_daemon, wait_for_agents
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.waiting import async_wait_until

HERE = str(Path(__file__).parent)  # mapreduce_functions lives here
AGENTS = 3
SPLIT_BYTES = 256 * 1024
QUICK_AGENT_LOSS = ("--agent-ping-timeout", "0.5", "--max-agent-ping-timeouts", "4")  # unreachable within ~2 s


@dataclass
class Cluster:
    master: str
    base: Path
    agents: list[subprocess.Popen[bytes]]
    agent_ports: list[int]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                           *FAST_ALLOCATION, *QUICK_AGENT_LOSS], tmp_path / "master.log")]
    ports = [free_port() for _ in range(AGENTS)]
    agents = [start_daemon(["agent", "--master", master, "--port", str(p), "--work-dir", str(tmp_path / f"agent{i}"),
                            "--resources", agent_resources(i, AGENTS), "--no-switch-user"], tmp_path / f"agent{i}.log")
              for i, p in enumerate(ports)]
    try:
        wait_for_agents(master, AGENTS)
        yield Cluster(master, tmp_path, agents, ports)
    finally:
        stop_processes(procs + agents)
        for pid in processes_with(f"--out {tmp_path}") + processes_with(f"--input {tmp_path}"):
            with contextlib.suppress(ProcessLookupError):  # tasks of a killed agent outlive it
                os.kill(pid, signal.SIGKILL)


def write_corpus(directory: Path, files: int = 3, megabytes: float = 1.2, seed: int = 7) -> Counter[str]:
    """Seeded text: a Zipf-like vocabulary, lines of 1 to 16 words; its word count, done here."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöü", k=rng.randint(1, 9))) for _ in range(6000)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))
    directory.mkdir(parents=True)
    expected: Counter[str] = Counter()
    for index in range(files):
        lines, size = [], 0
        while size < megabytes * 1_000_000:
            line = " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(1, 16)))
            lines.append(line)
            size += len(line.encode()) + 1
        text = "\n".join(lines) + "\n"
        (directory / f"part{index}.txt").write_text(text, encoding="utf-8")
        expected.update(text.split())
    return expected


def counted(output: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for part in sorted(output.glob("part-r-*")):
        for line in part.read_text(encoding="utf-8").splitlines():
            word, count = read_output_line(line)
            assert word not in found, f"{word!r} in two partitions"
            found[word] = count
    return found


def spec_of(cluster: Cluster, **fields: object) -> JobSpec:
    defaults: dict[str, Any] = {"inputs": list_inputs([str(cluster.base / "corpus")]),
                                "output": str(cluster.base / "out"), "reducers": 3, "split_bytes": SPLIT_BYTES,
                                "python_path": (HERE,), "combiner": WORDCOUNT_REDUCE}
    return JobSpec(**{**defaults, **fields})


def master_tasks(master: str) -> list[dict[str, Any]]:
    state = httpx.get(f"http://{master}/master/state", timeout=5).json()
    frameworks = [*state["frameworks"], *state["completed_frameworks"]]
    return [t for f in frameworks for t in [*f["tasks"], *f["completed_tasks"]]]


def when(task: dict[str, Any], state: str) -> float:
    return float(next(s["timestamp"] for s in task["statuses"] if s["state"] == state))


@pytest.mark.integration
def test_word_count_through_the_command_line_equals_a_local_count(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus")
    out = cluster.base / "out"
    result = subprocess.run([*MESETA, "mapreduce", str(cluster.base / "corpus"), "--output", str(out),
                             "--master", cluster.master, "--reducers", "3", "--split-bytes", str(SPLIT_BYTES)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 maps, 3 reducers" in result.stdout, result.stdout
    assert counted(out) == expected
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-r-00000", "part-r-00001", "part-r-00002"]


@pytest.mark.integration
async def test_word_count_through_a_shared_shuffle_directory(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus", files=1)
    shuffle = cluster.base / "shuffle"
    report = await asyncio.wait_for(run_job(spec_of(cluster, shuffle_dir=str(shuffle)), cluster.master), 240)
    assert counted(cluster.base / "out") == expected
    (job_dir,) = shuffle.iterdir()  # one directory per map attempt, each with the three partitions
    assert len(list(job_dir.iterdir())) == report.attempts - report.reducers == report.maps
    assert all(len(list(attempt.iterdir())) == 3 for attempt in job_dir.iterdir())


@pytest.mark.integration
async def test_an_agent_killed_in_the_map_phase_changes_nothing_in_the_result(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus")
    spec = spec_of(cluster, map_function="mapreduce_functions:words_slowly")
    job = MapReduceJob(spec, cluster.master)
    await job.start()

    def agent_with_a_finished_map() -> str | None:  # in the middle of the map phase
        done = [m.output.agent_id for m in job.tracker.maps if m.state == "done" and m.output is not None]
        pending = [m for m in job.tracker.maps if m.state != "done"]
        return done[0] if done and pending else None

    victim = await async_wait_until(agent_with_a_finished_map, 120, "a finished map while others wait or run")
    slaves = httpx.get(f"http://{cluster.master}/master/slaves", timeout=5).json()["slaves"]
    port = next(s["port"] for s in slaves if s["id"] == victim)
    kill9(cluster.agents[cluster.agent_ports.index(port)])
    report = await asyncio.wait_for(job.wait(), 240)
    assert counted(cluster.base / "out") == expected
    assert report.maps_rerun >= 1, report  # its finished maps ran again elsewhere


@pytest.mark.integration
async def test_an_agent_killed_in_the_reduce_phase_has_its_maps_run_again(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus", files=2)
    spec = spec_of(cluster, reduce_function="mapreduce_functions:sum_slowly", speculation=False)
    job = MapReduceJob(spec, cluster.master)
    await job.start()

    def agent_with_map_outputs() -> str | None:  # while every reducer runs
        tracker = job.tracker
        if tracker.phase != "reduce" or any(r.state != "running" for r in tracker.reduces):
            return None
        return next(m.output.agent_id for m in tracker.maps if m.output is not None)

    victim = await async_wait_until(agent_with_map_outputs, 120, "every reducer running")
    slaves = httpx.get(f"http://{cluster.master}/master/slaves", timeout=5).json()["slaves"]
    kill9(cluster.agents[cluster.agent_ports.index(next(s["port"] for s in slaves if s["id"] == victim))])
    report = await asyncio.wait_for(job.wait(), 240)
    assert counted(cluster.base / "out") == expected
    assert report.maps_rerun >= 1 and report.attempts > report.maps + report.reducers, report


@pytest.mark.integration
async def test_a_straggler_gets_a_speculative_copy_that_wins(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus")
    (cluster.base / "agent0" / "SLOW").write_text("maps here hang\n")
    spec = spec_of(cluster, map_function="mapreduce_functions:words_on_slow_host", speculative_min_seconds=2.0,
                   speculative_factor=2.0)
    job = MapReduceJob(spec, cluster.master)
    await job.start()
    report = await asyncio.wait_for(job.wait(), 240)
    assert counted(cluster.base / "out") == expected
    assert report.speculative >= 1 and report.speculative_won >= 1, report
    # The originals whose copies won were killed then, not when the job ended: before the last reducer finished.
    won = [m for m in job.tracker.maps if job.tracker.attempts[m.attempts[-1]].speculative
           and job.tracker.attempts[m.attempts[-1]].state == "finished"]
    tasks = {str(t["id"]): t for t in master_tasks(cluster.master)}
    end = max(when(tasks[a], "TASK_FINISHED") for a in job.tracker.attempts if "-r" in a)
    for item in won:
        original = tasks[item.attempts[0]]
        assert original["state"] == "TASK_KILLED" and when(original, "TASK_KILLED") < end, original


@pytest.mark.integration
async def test_failed_maps_are_retried_on_other_agents_and_a_hopeless_job_says_why(cluster: Cluster) -> None:
    expected = write_corpus(cluster.base / "corpus", files=1, megabytes=1.8)  # 7 maps: more than two agents' slots
    (cluster.base / "agent1" / "BROKEN").write_text("maps here raise\n")
    spec = spec_of(cluster, map_function="mapreduce_functions:words_except_on_broken_host")
    report = await asyncio.wait_for(run_job(spec, cluster.master), 240)
    assert counted(cluster.base / "out") == expected
    assert report.failed >= 1, report  # agent 1 took some maps, and each ran again elsewhere

    for index in (0, 2):
        (cluster.base / f"agent{index}" / "BROKEN").write_text("maps here raise\n")
    spec = spec_of(cluster, map_function="mapreduce_functions:words_except_on_broken_host", max_attempts=2,
                   output=str(cluster.base / "out2"))
    with pytest.raises(MapReduceFailed) as failed:
        await asyncio.wait_for(run_job(spec, cluster.master), 240)
    assert "failed 2 times" in str(failed.value) and "RuntimeError: this host is broken" in str(failed.value)
