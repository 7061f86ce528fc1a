"""services_drain: what the drain before kill costs the services machine (pure, in this process).

One app of N TASK_RUNNING instances (one port, HAPROXY_GROUP external) behind L registered load
balancers, on the real ServicesMachine (offers and status updates as the master would send them):

    DR1  scale to 0 (one deploy call): every instance starts draining (N events, no Kill)
    DR2  a full tick while N drains wait (p50 / max over 20 ticks), against a tick with no drains
    DR3  each LB confirms every task in batches of B task ids (the last LB's batches send the
        Kills): time per POST .../drained handler call

    python benchmarks/services_drain.py [--instances 5000] [--lbs 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from typing import Any

from meseta.services.effects import Emit, Kill, Launch
from meseta.services.machine import ServicesMachine

NOW = 1_800_000_000.0


def offer(oid: str, host: str) -> dict[str, Any]:
    def scalar(name: str, value: float) -> dict[str, Any]:
        return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}

    return {"id": {"value": oid}, "agent_id": {"value": "S-" + host}, "hostname": host,
            "allocation_info": {"role": "*"},
            "resources": [scalar("cpus", 64.0), scalar("mem", 65536.0),
                          {"name": "ports", "type": "RANGES", "role": "*",
                           "ranges": {"range": [{"begin": 31000, "end": 31999}]}}]}


def running_machine(instances: int) -> ServicesMachine:
    counter = itertools.count()
    m = ServicesMachine(new_uuid=lambda: f"u{next(counter)}", max_per_offer=1000)
    app = m.new_app({"id": "/web", "cmd": "sleep 1000", "cpus": 0.01, "mem": 1, "instances": instances,
                     "portDefinitions": [{"port": 0}], "labels": {"HAPROXY_GROUP": "external"}}, NOW)
    m.deploy(m.with_app(app, app["version"]), NOW, force=False)
    host = 0
    while m.queue:
        for effect in m.offers([offer(f"O{host}", f"h{host}")], NOW):
            if isinstance(effect, Launch):
                for task in effect.tasks:
                    m.status({"task_id": task["task_id"], "agent_id": task["agent_id"], "state": "TASK_RUNNING"}, NOW)
        host += 1
    m.tick(NOW)
    return m


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--lbs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(f"# services_drain {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} python {platform.python_version()}"
          f" instances={args.instances} lbs={args.lbs} batch={args.batch}")
    m = running_machine(args.instances)
    idle = [timed(lambda: m.tick(NOW + 1))[0] for _ in range(20)]
    lbs = [f"lb-{i}" for i in range(args.lbs)]
    for lb in lbs:
        m.lb_register(lb, {"groups": ["external"], "ttlSeconds": 3600}, NOW)
    app = {**m.root.apps["/web"], "instances": 0, "version": m.version(NOW + 2)}
    seconds, (_, effects) = timed(lambda: m.deploy(m.with_app(app, app["version"]), NOW + 2, force=False))
    events = sum(1 for e in effects if isinstance(e, Emit) and e.event["eventType"] == "instance_draining_event")
    assert events == args.instances and not any(isinstance(e, Kill) for e in effects)
    print(f"DR1 scale to 0: {seconds * 1000:.1f} ms for {events} drains started "
          f"({seconds / events * 1e6:.1f} us per instance)")
    waiting = [timed(lambda: m.tick(NOW + 3))[0] for _ in range(20)]
    print(f"DR2 full tick: {statistics.median(idle) * 1000:.2f} ms before (max {max(idle) * 1000:.2f}); "
          f"{statistics.median(waiting) * 1000:.2f} ms with {len(m.lbs.drains)} drains waiting "
          f"(max {max(waiting) * 1000:.2f})")
    task_ids = sorted(m.lbs.drains)
    calls: list[float] = []
    killed = 0
    for lb in lbs:
        for i in range(0, len(task_ids), args.batch):
            body = {"taskIds": task_ids[i:i + args.batch]}
            seconds, out = timed(lambda lb=lb, body=body: m.lb_drained(lb, body, NOW + 4))
            calls.append(seconds)
            killed += sum(1 for e in out if isinstance(e, Kill))
    assert killed == args.instances and not m.lbs.drains
    print(f"DR3 {len(calls)} confirmations of {args.batch}: p50 {statistics.median(calls) * 1000:.2f} ms, "
          f"max {max(calls) * 1000:.2f} ms; {killed} Kills sent by the last LB's")


if __name__ == "__main__":
    main()
