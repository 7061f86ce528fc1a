"""mapreduce_wordcount: the MapReduce example's word count on a real cluster, against one process.

A `meseta master` and AGENTS `meseta agent` processes on loopback; a seeded corpus of --megabytes
(files of 8 MB, a Zipf-like vocabulary of 20,000 words); the job runs in this process with
--split-mb splits, --reducers reducers and word count's combiner, --rounds times. Prints the
job's seconds and MB/s beside `collections.Counter` over the same files in this one process (the
floor a 2-core host sets: the cluster runs on the same cores), and checks the counts agree.

    python benchmarks/mapreduce_wordcount.py [--megabytes 64] [--split-mb 4] [--reducers 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from meseta.examples.mapreduce import JobSpec
from meseta.examples.mapreduce.inputs import list_inputs
from meseta.examples.mapreduce.job import WORDCOUNT_REDUCE
from meseta.examples.mapreduce.records import read_output_line
from meseta.examples.mapreduce.scheduler import run_job
from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, agent_resources, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes

AGENTS = 3
FILE_MB = 8


def write_corpus(directory: Path, megabytes: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(20_000)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))
    directory.mkdir()
    for index in range(max(1, megabytes // FILE_MB)):
        lines = [" ".join(rng.choices(vocabulary, cum_weights=cumulative, k=12)) for _ in range(FILE_MB * 12_000)]
        (directory / f"part{index:03d}.txt").write_text("\n".join(lines) + "\n")


def local_count(directory: Path) -> tuple[Counter[str], float]:
    start = time.perf_counter()
    counts: Counter[str] = Counter()
    for path in sorted(directory.iterdir()):
        with open(path, encoding="utf-8") as source:
            for line in source:
                counts.update(line.split())
    return counts, time.perf_counter() - start


def job_count(output: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for part in output.glob("part-r-*"):
        counts.update(dict(read_output_line(line) for line in part.read_text().splitlines()))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--split-mb", type=float, default=4.0)
    parser.add_argument("--reducers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_corpus(base / "corpus", args.megabytes)
        size = sum(p.stat().st_size for p in (base / "corpus").iterdir()) / 1e6
        expected, local_seconds = local_count(base / "corpus")
        print(f"corpus: {size:.1f} MB; one process, collections.Counter: {local_seconds:.1f} s "
              f"({size / local_seconds:.1f} MB/s); {os.cpu_count()} cores")
        port = free_port()
        master = f"127.0.0.1:{port}"
        procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(base / "master"), *FAST_ALLOCATION],
                              base / "master.log")]
        procs += [start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                                str(base / f"agent{i}"), "--resources", agent_resources(i, AGENTS),
                                "--no-switch-user"], base / f"agent{i}.log") for i in range(AGENTS)]
        try:
            wait_for_agents(master, AGENTS)
            for round_number in range(args.rounds):
                output = base / f"out{round_number}"
                spec = JobSpec(list_inputs([str(base / "corpus")]), str(output), reducers=args.reducers,
                               split_bytes=int(args.split_mb * (1 << 20)), combiner=WORDCOUNT_REDUCE)
                report = asyncio.run(run_job(spec, master))
                assert job_count(output) == expected, "the job's count differs from Counter's"
                print(f"round {round_number + 1}: {report.maps} maps, {report.reducers} reducers, {AGENTS} agents: "
                      f"{report.seconds:.1f} s ({size / report.seconds:.1f} MB/s), {report.attempts} attempts, "
                      f"{report.speculative} speculative")
                shutil.rmtree(output)
        finally:
            stop_processes(procs)


if __name__ == "__main__":
    main()
