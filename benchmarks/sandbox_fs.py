"""sandbox_fs: what bounds real launches on this machine, sandbox creation or fork+exec?

Creates 1,000 sandboxes with meseta.agent.paths.create_sandbox (then deletes them, as a run's
cleanup does) and forks 1,000 `true` processes, for ROUNDS rounds, printing both rates.

    python benchmarks/sandbox_fs.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from meseta.agent import paths

COUNT = 1000


def sandboxes_per_second() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i in range(COUNT):
            paths.create_sandbox(Path(tmp), "agent", "framework", f"task-{i}", str(uuid.uuid4()))
        return COUNT / (time.perf_counter() - start)


def forks_per_second() -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen(["true"], start_new_session=True) for _ in range(COUNT)]
    for proc in procs:
        proc.wait()
    return COUNT / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    rounds = parser.parse_args().rounds
    for round_ in range(1, rounds + 1):
        print(f"round {round_}: {sandboxes_per_second():.0f} sandboxes/s, {forks_per_second():.0f} fork+exec/s")


if __name__ == "__main__":
    main()
