"""services_rolling: a rolling upgrade of a 100-instance app with agent-side HTTP health checks on
real processes (the spec's S4, benchmarks.md 7.4): capacity never below minimumHealthCapacity.

    `meseta master` + 2 real `meseta agent`s + `meseta services` (SQLite); the app: --instances
    `busybox httpd` serving /health, HTTP health check every 1 s, upgradeStrategy
    {minimumHealthCapacity 0.5, maximumOverCapacity 0.2}

    1. deploy v1; wait until every instance is healthy
    2. PUT v2 (a new cmd): sample GET /v2/apps/<id>?embed=apps.tasks every 100 ms until the
       deployment is gone and every instance is healthy on v2
    3. report: rollout time, samples, violations (fewer than minHealthy healthy, or more than
       maxCapacity instances), the lowest healthy count seen

    python benchmarks/services_rolling.py [--instances 100] [--min-health 0.5] [--max-over 0.2]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, agent_resources, start_daemon
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until

APP = "/rolling"
NOT_YET = (httpx.HTTPError, OSError, KeyError, ValueError)  # what a server still starting answers


def cmd(version: str) -> str:
    return f"mkdir -p www && echo {version} > www/health && exec busybox httpd -f -p $PORT0 -h www"


def healthy(task: dict[str, Any]) -> bool:
    return task["state"] == "TASK_RUNNING" and (task.get("healthCheckResults") or [{}])[0].get("alive") is True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--min-health", type=float, default=0.5)
    parser.add_argument("--max-over", type=float, default=0.2)
    parser.add_argument("--agents", type=int, default=2)
    args = parser.parse_args()
    n = args.instances
    min_healthy = math.ceil(n * args.min_health)
    max_capacity = math.floor(n * (1 + args.max_over))
    print(f"# services_rolling: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; {n} busybox httpd instances on {args.agents} agents, "
          f"minimumHealthCapacity {args.min_health:g} (>= {min_healthy} healthy), maximumOverCapacity "
          f"{args.max_over:g} (<= {max_capacity} instances)", flush=True)
    with tempfile.TemporaryDirectory(prefix="services-rolling-") as tmp_name:
        tmp = Path(tmp_name)
        master, services = f"127.0.0.1:{free_port()}", free_port()
        procs = [start_daemon(["master", "--port", master.split(":")[1], "--work-dir", str(tmp / "m"),
                               *FAST_ALLOCATION], tmp / "master.log")]
        per_agent = math.ceil(max_capacity / args.agents) + 5
        resources = f"cpus:{per_agent * 0.05 + 1:g};mem:{per_agent * 16 + 256};ports:[31000-33000]"
        for i in range(args.agents):  # one host: each agent its own ports
            procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                                       str(tmp / f"a{i}"), "--no-switch-user",
                                       "--resources", agent_resources(i, args.agents, resources)],
                                      tmp / f"agent{i}.log"))
        procs.append(start_daemon(["services", "--master", master, "--port", str(services), "--work-dir",
                                   str(tmp / "s")], tmp / "services.log"))
        url = f"http://127.0.0.1:{services}"
        http = httpx.Client(timeout=10)
        try:
            wait_until(lambda: len(http.get(f"http://{master}/master/slaves").json()["slaves"]) == args.agents,
                       60, "the agents", interval=0.2, ignore=NOT_YET)
            wait_until(lambda: http.get(url + "/v2/info").json().get("frameworkId"), 60, "the services framework",
                       interval=0.2, ignore=NOT_YET)
            app = {"id": APP, "cmd": cmd("v1"), "cpus": 0.05, "mem": 16, "instances": n,
                   "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0,
                                     "gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1,
                                     "maxConsecutiveFailures": 3}],
                   "upgradeStrategy": {"minimumHealthCapacity": args.min_health,
                                       "maximumOverCapacity": args.max_over}}
            assert http.post(url + "/v2/apps", json=app).status_code == 201
            t0 = time.monotonic()

            def settled(version: str) -> Any:
                body = http.get(f"{url}/v2/apps{APP}", params={"embed": "apps.tasks"}).json()["app"]
                tasks = body["tasks"]
                ok = (not body["deployments"] and len(tasks) == n and all(healthy(t) for t in tasks)
                      and all(t["version"] == body["version"] for t in tasks) and version in body["cmd"])
                return body if ok else None

            wait_until(lambda: settled("v1"), 300, f"{n} healthy v1 instances", interval=0.5, ignore=NOT_YET)
            print(f"v1: {n} instances healthy after {time.monotonic() - t0:.1f} s", flush=True)

            assert http.put(f"{url}/v2/apps{APP}", json={**app, "cmd": cmd("v2")}).status_code == 200
            t1 = time.monotonic()
            samples: list[tuple[float, int, int]] = []  # (seconds, instances, healthy)

            def sample_until_rolled_out() -> bool:
                body = http.get(f"{url}/v2/apps{APP}", params={"embed": "apps.tasks"}).json()["app"]
                tasks = body["tasks"]
                samples.append((time.monotonic() - t1, len(tasks), sum(1 for t in tasks if healthy(t))))
                return (not body["deployments"] and len(tasks) == n and all(healthy(t) for t in tasks)
                        and all(t["version"] == body["version"] for t in tasks))
            wait_until(sample_until_rolled_out, 600, "the rollout of v2", interval=0.1, ignore=(),
                       describe=lambda: f"(seconds, instances, healthy) {samples[-1:]}")
            rollout = time.monotonic() - t1
            low = [s for s in samples if s[2] < min_healthy]
            high = [s for s in samples if s[1] > max_capacity]
            print(f"v1 -> v2: rolled out in {rollout:.1f} s; {len(samples)} samples; healthy min "
                  f"{min(s[2] for s in samples)} (>= {min_healthy} wanted), instances max "
                  f"{max(s[1] for s in samples)} (<= {max_capacity} wanted); violations: {len(low)} below "
                  f"minimumHealthCapacity, {len(high)} over capacity", flush=True)
            print(f"S4 verdict (must: 0 violations): {'met' if not low and not high else 'MISSED'}")
        finally:
            http.close()
            stop_processes(procs)


if __name__ == "__main__":
    main()
