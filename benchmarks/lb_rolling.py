"""lb_rolling (L1): failed requests through `meseta lb` while its app changes, runtime API against reloads.

A real master, agent and `meseta services`; a 5-instance busybox httpd app (HTTP health checks every
second, HAPROXY_GROUP external, http mode) behind `meseta lb` (a real HAProxy). A loopback load
generator GETs the app's service port at RATE requests/s for SECONDS s while the app goes, in a
loop: rolling upgrade (new version, all 5 replaced), scale down to 2, scale up to 5. Printed per
mode (runtime: backend changes through the runtime API; reload: every change a seamless reload):

    failed requests / sent, HAProxy reloads, and the backend update latency p50 / p99 / max
    (from the services event that triggered a change to HAProxy having applied it, as `meseta lb`
    measures it: GET /v2/apps, model, runtime commands or reload)

    python benchmarks/lb_rolling.py [--rate 200] [--seconds 60] [--modes runtime,reload]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from meseta.testing.clusters import services_cluster
from meseta.testing.lb_load import Load, lb_process
from meseta.testing.waiting import wait_until

PORT = 10201


def web_app(version: str, instances: int) -> dict[str, Any]:
    cmd = f"mkdir -p www && echo {version} > www/index.html && exec busybox httpd -f -p $PORT0 -h www"
    return {"id": "/bench", "cmd": cmd, "cpus": 0.05, "mem": 16, "instances": instances,
            "portDefinitions": [{"port": PORT, "protocol": "tcp"}],
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http"},
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 5,
                              "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}],
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}}


def settle(url: str, healthy: int) -> None:
    def done() -> bool:
        app = httpx.get(f"{url}/v2/apps/bench", timeout=10).json()["app"]
        return app["tasksHealthy"] == healthy and app["tasksRunning"] == healthy and not app["deployments"]
    wait_until(done, 120, f"/bench with {healthy} healthy")


def put(url: str, app: dict[str, Any]) -> None:
    response = httpx.put(f"{url}/v2/apps/bench", json=app, timeout=10)
    response.raise_for_status()


def run(mode: str, rate: float, seconds: float, base: Path, url: str) -> dict[str, Any]:
    put(url, web_app("v0", 5))
    settle(url, 5)
    with lb_process(base / mode, url, mode=mode) as lb:
        wait_until(lambda: len(lb.servers(f"bench_{PORT}")) == 5, 30, "5 servers in rotation")
        before = httpx.get(f"{lb.api}/v1/latency", timeout=5).json()["count"]
        reloads_before = lb.status()["reloads"]
        cycles, version = 0, 0
        with Load(f"http://127.0.0.1:{PORT}/", rate=rate, threads=8) as load:
            start = time.monotonic()
            while time.monotonic() - start < seconds - 5:
                version += 1
                put(url, web_app(f"v{version}", 5))
                settle(url, 5)
                put(url, web_app(f"v{version}", 2))
                settle(url, 2)
                put(url, web_app(f"v{version}", 5))
                settle(url, 5)
                cycles += 1
            while time.monotonic() - start < seconds:
                time.sleep(0.2)
        samples = httpx.get(f"{lb.api}/v1/latency", timeout=5).json()["samples"]
        samples = sorted(samples[-(len(samples) - before):]) if len(samples) > before else []
        reloads = lb.status()["reloads"] - reloads_before
    return {"mode": mode, "sent": load.sent, "failed": load.failed, "failures": load.failures[:5], "cycles": cycles,
            "reloads": reloads, "latency": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--modes", default="runtime,reload")
    args = parser.parse_args()
    print(f"lb_rolling {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.python_version()}, "
          f"rate {args.rate}/s for {args.seconds} s per mode")
    with tempfile.TemporaryDirectory(prefix="lbbench") as tmp, services_cluster(Path(tmp), agents=1) as (_, url):
        for mode in args.modes.split(","):
            result = run(mode, args.rate, args.seconds, Path(tmp), url)
            lat = result["latency"]
            figures = (f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:.1f}"
                       f" ms, max {lat[-1] * 1000:.1f} ms over {len(lat)} changes") if lat else "no samples"
            print(f"  {mode:8} failed {result['failed']} / {result['sent']} requests, {result['cycles']} cycles "
                  f"(upgrade 5, down to 2, up to 5), {result['reloads']} HAProxy reloads; update latency {figures}")
            if result["failures"]:
                print(f"           first failures: {result['failures']}")


if __name__ == "__main__":
    main()
