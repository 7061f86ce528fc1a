"""Costs of the pure job-scheduler core: schedule parsing, due-time queries far from the start,
cron expansion, and job definitions in and out (in-process, one core, no I/O).

    parse ISO / cron            parse_schedule of an ISO interval with a zone, of a cron expression
    next_due PT1M, +30 years    a one-minute period asked 30 years after its start (15.8 M periods)
    next_due P1M NY, +30 years  a calendar period in America/New_York, the same gap (bisection)
    remaining_text P1D Berlin   the Chronos text of a daily Berlin schedule 30 years on
    due_times cron, 1,000       1,000 due times of '*/5 * * * *' in Europe/Berlin
    due_times PT1M, 1,000       1,000 due times of a one-minute period
    parse_job / job_json        a job with every field set, read and shown back

    python benchmarks/job_schedules.py [--runs 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from meseta.jobs.schedule import due_times, next_due, parse_schedule, remaining_text
from meseta.jobs.spec import job_json, parse_job

YEAR = 365.25 * 86_400
START = 1_388_534_400.0  # 2014-01-01T00:00:00Z
FULL_JOB: dict[str, Any] = {
    "name": "camus_kafka2hdfs", "command": "/srv/kafka_hdfs_job.bash", "arguments": ["-verbose"], "shell": False,
    "epsilon": "PT30M", "retries": 3, "owner": "bofh@example.com", "cpus": 1.0, "mem": 1024, "disk": 10240,
    "fetch": [{"uri": "https://example.com/job.tgz", "extract": True}], "schedule": "R/2014-03-08T20:00:00Z/PT2H",
    "scheduleTimeZone": "Europe/Berlin", "environmentVariables": [{"name": "JVMOPTS", "value": "-Xmx1000m"}],
    "constraints": [["rack", "LIKE", "rack-[1-3]"]],
    "container": {"type": "MESOS", "image": "busybox", "volumes": [{"containerPath": "/d", "hostPath": "/srv/d"}]},
}


def per_call_us(action: Callable[[], object], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        action()
    return (time.perf_counter() - began) / calls * 1e6


def cases() -> list[tuple[str, Callable[[], object], int]]:
    minutely = parse_schedule("R/2014-01-01T00:00:00Z/PT1M")
    monthly = parse_schedule("R/2014-01-31T09:00:00/P1M", "America/New_York")
    daily = parse_schedule("R/2014-01-01T02:30:00/P1D", "Europe/Berlin")
    cron = parse_schedule("*/5 * * * *", "Europe/Berlin")
    far = START + 30 * YEAR
    spec = parse_job(FULL_JOB, dependent=False, legacy=False, now=START)
    return [
        ("parse ISO (with zone)", lambda: parse_schedule("R5/2014-03-08T20:00:00Z/P1D", "Europe/Berlin"), 2_000),
        ("parse cron", lambda: parse_schedule("*/5 * * * *", "", START), 2_000),
        ("next_due PT1M, +30 years", lambda: next_due(minutely, far), 5_000),
        ("next_due P1M NY, +30 years", lambda: next_due(monthly, far), 1_000),
        ("remaining_text P1D Berlin, +30 years", lambda: remaining_text(daily, far), 1_000),
        ("due_times cron, 1,000", lambda: due_times(cron, far, far + YEAR, 1_000), 5),
        ("due_times PT1M, 1,000", lambda: due_times(minutely, far, far + YEAR, 1_000), 20),
        ("parse_job (every field)", lambda: parse_job(FULL_JOB, dependent=False, legacy=False, now=START), 1_000),
        ("job_json", lambda: job_json(spec, schedule=spec.schedule, success_count=1, error_count=0,
                                      last_success=START, last_error=None, errors_since_last_success=0), 5_000),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {runs} runs")
    print("| case | median us/call | runs (us/call) |")
    print("| --- | --- | --- |")
    for name, action, calls in cases():
        figures = [per_call_us(action, calls) for _ in range(runs)]
        shown = ", ".join(f"{figure:,.1f}" for figure in figures)
        print(f"| {name} | {statistics.median(figures):,.1f} | {shown} |")


if __name__ == "__main__":
    main()
