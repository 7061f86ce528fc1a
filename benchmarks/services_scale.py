"""services_scale: S1-S3 for `meseta services` (issue 6), through its real REST API and a real master.

Every scenario gets a fresh cluster: a `meseta master` process (`--allocation-interval`), a
`meseta services` process (the Marathon-compatible scheduler, SQLite store) and N simulated agents
(`meseta.testing.fake_agent.FakeAgent`, in this process, speaking the real agent protocol and
answering every RUN_TASK with TASK_RUNNING). Progress is read from the services' own
`GET /v2/events` stream (status_update_event TASK_RUNNING, deployment_success), then checked
with `GET /v2/apps`.

    S1  one app (cpus 0.01, mem 1, no ports) POSTed with 10,000 instances on 500 agents:
        placements/s from the POST to the last TASK_RUNNING event, and time to all running
    S2  2,000 apps of 1 instance, POSTed one after another (or one PUT /v2/apps with --s2-put):
        time until no deployment is left and every app has tasksRunning 1; per-app
        POST -> deployment_success p50/p99
    S3  GET /v2/apps?embed=apps.tasks with 1,000 apps of 10 instances (10,000 tasks):
        latency p50/p99 over 20 sequential requests

    python benchmarks/services_scale.py [--scenarios S1 S2 S3] [--s1-instances 10000] [--agents 500]
        [--s2-apps 2000] [--s3-apps 1000 --s3-instances 10] [--profile DIR]

With --profile DIR the services process runs under cProfile (stopped with SIGINT, so the
profile is written) and DIR/services-S?.prof is written: such runs are slower, their figures
are not the benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from meseta.runtime.fast_http import FastPoster
from meseta.runtime.kv_store import SqliteKvStore
from meseta.runtime.serve import free_port
from meseta.services import codec
from meseta.services.deploy import groups
from meseta.services.effects import Store
from meseta.services.machine import ServicesMachine
from meseta.services.model import Instance
from meseta.services.shell.actor import new_uuid
from meseta.services.spec.app_ids import new_task_id
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.waiting import async_wait_until

AGENT_RESOURCES = "cpus:32;mem:65536"
# the set-up waits ask again past what a server still starting answers (errors, partial JSON)
until_ready = partial(async_wait_until, interval=0.1, ignore=(httpx.HTTPError, OSError, KeyError, ValueError))
TICKS = os.sysconf("SC_CLK_TCK")


def app_body(app_id: str, instances: int) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 3600", "instances": instances, "cpus": 0.01, "mem": 1, "disk": 0,
            "portDefinitions": []}


# ---------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its waited-for children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start(args: list[str], log: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return subprocess.Popen([sys.executable, *prefix, "-m", "meseta.cli.main", *args],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@dataclass
class Cluster:
    """A master process, a services process and FakeAgents in this process."""

    tmp: Path
    agents: int
    allocation_interval: float
    profile: Path | None = None
    profile_master: bool = False  # the master under cProfile instead (its file next to the services' one)
    standalone: bool = False  # no master and no agents: the services process alone, on its stored state
    master: str = ""
    services: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    runs: list[asyncio.Task[None]] = field(default_factory=list)
    client: httpx.AsyncClient | None = None
    api: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Cluster:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__()
            raise

    async def _start(self) -> Cluster:
        self.tmp.mkdir(parents=True, exist_ok=True)
        master_port, services_port = free_port(), free_port()
        self.master, self.services = f"127.0.0.1:{master_port}", f"http://127.0.0.1:{services_port}"
        self.api = httpx.AsyncClient(timeout=httpx.Timeout(120, read=None))
        if self.standalone:  # nothing listens on the master's port: the framework never subscribes
            self.procs["services"] = start(
                ["services", "--master", self.master, "--port", str(services_port),
                 "--work-dir", str(self.tmp / "services")], self.tmp / "services.log", self.profile)
            await until_ready(self._apps, 120, "the services API")
            return self
        master_profile = self.profile.with_name(self.profile.name.replace("services", "master")) \
            if self.profile and self.profile_master else None
        self.procs["master"] = start(["master", "--port", str(master_port), "--work-dir", str(self.tmp / "master"),
                                      "--allocation-interval", str(self.allocation_interval),
                                      "--agent-ping-timeout", "60"], self.tmp / "master.log", master_profile)
        await until_ready(lambda: self._slaves(0), 60, "the master")
        # Agent streams are long-lived: one connection each; their calls share a few connections.
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None),
                                        limits=httpx.Limits(max_connections=self.agents + 50))
        poster = FastPoster("127.0.0.1", master_port, connections=32)
        fakes = [FakeAgent(self.master, f"sim{i}", AGENT_RESOURCES, self.client, poster) for i in range(self.agents)]
        self.runs = [asyncio.create_task(f.run()) for f in fakes]
        await until_ready(lambda: self._slaves(self.agents), 120, f"{self.agents} agents", interval=0.25)
        self.procs["services"] = start(
            ["services", "--master", self.master, "--port", str(services_port),
             "--work-dir", str(self.tmp / "services")], self.tmp / "services.log",
            None if self.profile_master else self.profile)
        await until_ready(self._subscribed, 60, "the services framework to subscribe")
        return self

    async def _slaves(self, count: int) -> bool:
        assert self.api is not None
        response = await self.api.get(f"http://{self.master}/master/slaves")
        return len(response.json()["slaves"]) >= count

    async def _apps(self) -> bool:
        assert self.api is not None
        return (await self.api.get(self.services + "/v2/apps")).status_code == 200

    async def _subscribed(self) -> bool:
        assert self.api is not None
        return bool((await self.api.get(self.services + "/v2/info")).json().get("frameworkId"))

    async def master_calls(self) -> str:
        """The framework's calls as the master counted them, and its allocation runs."""
        if self.standalone or self.api is None:
            return ""
        metrics = (await self.api.get(f"http://{self.master}/metrics/snapshot")).json()
        names = ("accept_offers", "decline_offers", "revive_offers", "suppress_offers",
                 "status_update_acknowledgement")
        calls = ", ".join(f"{n} {metrics.get('master/messages_' + n, 0):,}" for n in names)
        return f"{calls}; allocation runs {metrics.get('allocator/mesos/allocation_runs', 0):,}"

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(proc.pid) for name, proc in self.procs.items()}
        out["bench"] = self_cpu()
        return out

    async def __aexit__(self, *exc: object) -> None:
        # SIGINT: the daemons stop cleanly, and cProfile (if any) writes its file on the way out.
        if "services" in self.procs:
            stop(self.procs["services"], signal.SIGINT, wait=120 if self.profile else 20)
        for run in self.runs:
            run.cancel()
        await asyncio.gather(*self.runs, return_exceptions=True)
        if "master" in self.procs:
            stop(self.procs["master"], signal.SIGINT if self.profile_master else signal.SIGTERM,
                 wait=120 if self.profile_master else 20)
        for client in (self.client, self.api):
            if client is not None:
                await client.aclose()


# ---------------------------------------------------------------- the event stream


@dataclass
class Events:
    """Reads GET /v2/events (SSE): TASK_RUNNING times per task, deployment_success times per plan."""

    running: dict[str, float] = field(default_factory=dict)
    running_by_app: dict[str, int] = field(default_factory=dict)
    deployed: dict[str, float] = field(default_factory=dict)
    other_states: dict[str, int] = field(default_factory=dict)
    ended: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, services: str, attached: asyncio.Event) -> None:
        url = services + "/v2/events?event_type=status_update_event&event_type=deployment_success"
        buffer = b""
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client, \
                    client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
                attached.set()
                async for chunk in response.aiter_bytes():
                    buffer += chunk
                    *frames, buffer = buffer.split(b"\n\n")
                    now = time.perf_counter()
                    for frame in frames:
                        self._on(frame, now)
                    self.changed.set()
            self.ended = "the stream ended"
        except httpx.HTTPError as exc:
            self.ended = f"the stream failed: {exc!r}"
        finally:
            attached.set()
            self.changed.set()

    def _on(self, frame: bytes, now: float) -> None:
        data = next((line[6:] for line in frame.split(b"\n") if line.startswith(b"data: ")), None)
        if data is None:
            return
        item = json.loads(data)
        kind = item.get("eventType")
        if kind == "status_update_event":
            state, task = item.get("taskStatus"), item.get("taskId")
            if state == "TASK_RUNNING":
                if task not in self.running:
                    self.running[task] = now
                    self.running_by_app[item["appId"]] = self.running_by_app.get(item["appId"], 0) + 1
            else:
                self.other_states[state] = self.other_states.get(state, 0) + 1
        elif kind == "deployment_success":
            self.deployed.setdefault(item["id"], now)

    async def until(self, done: Callable[[], bool], timeout: float, progress: Callable[[], str]) -> bool:
        """Wait until ``done()``; print progress every 10 s; False on timeout or a dead stream."""
        deadline = time.perf_counter() + timeout
        next_print = time.perf_counter() + 10
        while not done():
            if self.ended:
                print(f"    !! {self.ended}", flush=True)
                return False
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass
            if time.perf_counter() >= next_print:
                print(f"    ... {progress()}", flush=True)
                next_print += 10
        return True


async def with_events(cluster: Cluster) -> tuple[Events, asyncio.Task[None]]:
    events = Events()
    attached = asyncio.Event()
    task = asyncio.create_task(events.follow(cluster.services, attached))
    await attached.wait()
    await asyncio.sleep(0.2)  # the subscription is registered before the first change
    return events, task


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]  # nearest rank


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    return ", ".join(f"{name} {after[name] - before[name]:.1f} s ({(after[name] - before[name]) / seconds:.0%})"
                     for name in before)


def milestones(times: list[float], t0: float, total: int) -> str:
    ordered = sorted(times)
    marks = []
    for share in (0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        index = int(total * share) - 1
        if 0 <= index < len(ordered):
            marks.append(f"{share:.0%} {ordered[index] - t0:.1f} s")
    return ", ".join(marks)


# ---------------------------------------------------------------- S1


async def s1(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    total = args.s1_instances
    profile = args.profile / "services-S1.prof" if args.profile else None
    async with Cluster(tmp / "s1", args.agents, args.allocation_interval, profile,
                       profile_master=args.profile_master) as cluster:
        assert cluster.api is not None
        events, follow = await with_events(cluster)
        cpu0 = cluster.cpu()
        t0 = time.perf_counter()
        response = await cluster.api.post(cluster.services + "/v2/apps", json=app_body("/s1", total))
        posted = time.perf_counter() - t0
        if response.status_code != 201:
            raise RuntimeError(f"POST /v2/apps answered {response.status_code}: {response.text[:300]}")
        plan = response.headers.get("Marathon-Deployment-Id", "")
        ok = await events.until(lambda: len(events.running) >= total and plan in events.deployed, args.timeout,
                                lambda: f"{len(events.running)} of {total} running after "
                                        f"{time.perf_counter() - t0:.0f} s")
        t_end = time.perf_counter()
        cpu1 = cluster.cpu()
        app = (await cluster.api.get(cluster.services + "/v2/apps/s1")).json()["app"]
        calls = await cluster.master_calls()
        follow.cancel()
        times = list(events.running.values())
        last = max(times) if times else t_end
        seconds = last - t0
        result = {
            "instances": total, "running": len(times), "complete": ok,
            "post_s": posted, "first_running_s": (min(times) - t0) if times else float("nan"),
            "all_running_s": seconds, "rate": len(times) / seconds if times else 0.0,
            "deployed_s": (events.deployed[plan] - t0) if plan in events.deployed else float("nan"),
            "tasksRunning": app.get("tasksRunning"), "tasksStaged": app.get("tasksStaged"),
            "milestones": milestones(times, t0, total), "other_states": dict(events.other_states),
            "cpu": cpu_delta(cpu0, cpu1, t_end - t0), "calls": calls,
        }
    return result


# ---------------------------------------------------------------- S2 (and S3's set-up)


async def deploy_many(cluster: Cluster, events: Events, apps: int, instances: int, put: bool, prefix: str,
                      timeout: float, concurrency: int) -> dict[str, Any]:
    """Create ``apps`` apps of ``instances`` each; wait until all are deployed and running."""
    assert cluster.api is not None
    api = cluster.api
    ids = [f"/{prefix}/app-{n:05d}" for n in range(apps)]
    sent: dict[str, float] = {}
    plans: dict[str, str] = {}
    post_times: list[float] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    if put:
        response = await api.put(cluster.services + "/v2/apps", json=[app_body(i, instances) for i in ids])
        if response.status_code >= 300:
            raise RuntimeError(f"PUT /v2/apps answered {response.status_code}: {response.text[:300]}")
        plans[ids[0]] = response.headers["Marathon-Deployment-Id"]
        sent[ids[0]] = t0
        post_times.append(time.perf_counter() - t0)
    else:
        queue = list(reversed(ids))

        async def poster() -> None:
            while queue:
                app_id = queue.pop()
                started = time.perf_counter()
                response = await api.post(cluster.services + "/v2/apps", json=app_body(app_id, instances))
                post_times.append(time.perf_counter() - started)
                if response.status_code != 201:
                    errors.append(f"{app_id}: {response.status_code} {response.text[:200]}")
                    continue
                sent[app_id] = started
                plans[app_id] = response.headers["Marathon-Deployment-Id"]

        async def progress() -> None:
            while True:
                await asyncio.sleep(10)
                print(f"    ... {len(sent)} of {apps} apps created, {len(events.running)} tasks running after "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)

        reporter = asyncio.create_task(progress())
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        reporter.cancel()
    posted = time.perf_counter() - t0
    want = apps * instances

    def done() -> bool:
        return len(events.running) >= want and all(p in events.deployed for p in plans.values())

    ok = await events.until(done, timeout, lambda: f"{len(events.running)} of {want} tasks running, "
                                                   f"{sum(p in events.deployed for p in plans.values())} of "
                                                   f"{len(plans)} deployments done after "
                                                   f"{time.perf_counter() - t0:.0f} s")
    # The API's own view: no deployment left, every app tasksRunning == instances.
    deployments = (await api.get(cluster.services + "/v2/deployments")).json()
    listed = (await api.get(cluster.services + "/v2/apps")).json()["apps"]
    t_checked = time.perf_counter()
    full = sum(1 for a in listed if a["id"].startswith(f"/{prefix}/") and a.get("tasksRunning") == instances)
    finished = [events.deployed[p] for p in plans.values() if p in events.deployed]
    per_app = [events.deployed[plans[a]] - sent[a] for a in plans if plans[a] in events.deployed]
    return {
        "apps": apps, "instances": instances, "put": put, "complete": ok, "post_s": posted, "errors": errors,
        "post_p50_ms": statistics.median(post_times) * 1000 if post_times else float("nan"),
        "post_p99_ms": pct(post_times, 0.99) * 1000 if post_times else float("nan"),
        "all_deployed_s": (max(max(finished), max(events.running.values(), default=t0)) - t0) if finished
        else float("nan"),
        "checked_s": t_checked - t0,
        "deploy_p50_s": statistics.median(per_app) if per_app else float("nan"),
        "deploy_p99_s": pct(per_app, 0.99) if per_app else float("nan"),
        "deployments_left": len(deployments), "apps_full": full, "running": len(events.running),
        "milestones": milestones(list(events.running.values()), t0, want),
    }


async def s2(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    profile = args.profile / "services-S2.prof" if args.profile else None
    async with Cluster(tmp / "s2", args.agents, args.allocation_interval, profile) as cluster:
        events, follow = await with_events(cluster)
        cpu0, t0 = cluster.cpu(), time.perf_counter()
        result = await deploy_many(cluster, events, args.s2_apps, args.s2_instances, args.s2_put, "s2",
                                   args.timeout, args.s2_concurrency)
        result["cpu"] = cpu_delta(cpu0, cluster.cpu(), time.perf_counter() - t0)
        result["calls"] = await cluster.master_calls()
        follow.cancel()
    return result


# ---------------------------------------------------------------- S3


def seed_store(work_dir: Path, apps: int, instances: int, agents: int) -> None:
    """The services store as a finished deployment of ``apps`` x ``instances`` leaves it: apps,
    their versions and groups as the scheduler's own code makes them (``new_app``, ``deploy``),
    and TASK_RUNNING instances spread over ``agents`` hosts; no deployment left."""
    machine = ServicesMachine(new_uuid=new_uuid)
    now = time.time()
    version = machine.version(now)
    target = machine.root
    for n in range(apps):
        target = groups.put_app(target, machine.new_app(app_body(f"/s3/app-{n:05d}", instances), now),
                                version=version)
    _, effects = machine.deploy(target, now, force=False)
    changes = [c for e in effects if isinstance(e, Store) for c in e.changes if c[0] != "deployment"]
    for n, (app_id, app) in enumerate(sorted(machine.root.apps.items())):
        for k in range(instances):
            slot = n * instances + k
            task_id = new_task_id(app_id, new_uuid())
            instance = Instance(task_id, app_id, app["version"], f"seeded-S{slot % agents}", f"sim{slot % agents}",
                                state="TASK_RUNNING", staged_at=now, started_at=now,
                                agent_fields={"hostname": f"sim{slot % agents}"})
            changes.append(("instance", task_id, codec.instance_json(instance)))
    store = SqliteKvStore(work_dir / "services.sqlite")
    store.write(changes)
    store.close()


async def s3(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    profile = args.profile / "services-S3.prof" if args.profile else None
    seeded = args.s3_setup == "seed"
    if seeded:
        started = time.perf_counter()
        seed_store(tmp / "s3" / "services", args.s3_apps, args.s3_instances, args.agents)
        setup: dict[str, Any] = {"seeded_s": time.perf_counter() - started}
    async with Cluster(tmp / "s3", args.agents, args.allocation_interval, profile, standalone=seeded) as cluster:
        assert cluster.api is not None
        if not seeded:
            events, follow = await with_events(cluster)
            setup = await deploy_many(cluster, events, args.s3_apps, args.s3_instances, True, "s3", args.timeout, 1)
            setup["calls"] = await cluster.master_calls()
            follow.cancel()
        await asyncio.sleep(2.0)  # let the last acknowledgements and ticks settle
        url = cluster.services + "/v2/apps?embed=apps.tasks"
        latencies, sizes, tasks = [], [], 0
        cpu0, t0 = cluster.cpu(), time.perf_counter()
        for _ in range(args.s3_requests):
            started = time.perf_counter()
            response = await cluster.api.get(url)
            body = response.content
            latencies.append(time.perf_counter() - started)
            sizes.append(len(body))
            apps = json.loads(body)["apps"]
            tasks = sum(len(a.get("tasks", ())) for a in apps)
        cpu = cpu_delta(cpu0, cluster.cpu(), time.perf_counter() - t0)
        # For comparison: the same list without tasks, and one app with its tasks.
        started = time.perf_counter()
        await cluster.api.get(cluster.services + "/v2/apps")
        plain = time.perf_counter() - started
        started = time.perf_counter()
        await cluster.api.get(cluster.services + "/v2/apps/s3/app-00000")
        one = time.perf_counter() - started
    return {"setup": setup, "apps": len(apps), "tasks": tasks, "requests": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": pct(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000, "first_ms": latencies[0] * 1000,
            "slowest": sorted(range(len(latencies)), key=lambda k: -latencies[k])[:3],
            "bytes": statistics.median(sizes), "plain_ms": plain * 1000,
            "one_app_ms": one * 1000, "cpu": cpu}


# ---------------------------------------------------------------- main


def verdict(value: float, must: float, aim: float, higher: bool = True) -> str:
    if value != value:  # nan
        return "no figure"
    def ok(target: float) -> bool:
        return value >= target if higher else value <= target

    return "aim met" if ok(aim) else "must met, aim missed" if ok(must) else "must missed"


def report_s1(r: dict[str, Any]) -> None:
    print(f"S1: {r['running']} of {r['instances']} instances TASK_RUNNING in {r['all_running_s']:.2f} s "
          f"= {r['rate']:.0f} placements/s ({verdict(r['rate'], 400, 1500)}: must >= 400/s, aim >= 1,500/s)"
          + ("" if r["complete"] else "  ** INCOMPLETE (timeout) **"))
    print(f"    POST answered in {r['post_s'] * 1000:.0f} ms; first TASK_RUNNING after {r['first_running_s']:.2f} s; "
          f"deployment_success after {r['deployed_s']:.2f} s; GET /v2/apps/s1: tasksRunning "
          f"{r['tasksRunning']}, tasksStaged {r['tasksStaged']}")
    print(f"    running at: {r['milestones']}")
    print(f"    CPU during the run: {r['cpu']}")
    print(f"    master counted: {r['calls']}")
    if r["other_states"]:
        print(f"    other states seen: {r['other_states']}")


def report_deploy(name: str, r: dict[str, Any]) -> None:
    how = "one PUT /v2/apps" if r["put"] else "POST /v2/apps each"
    print(f"{name}: {r['apps']} apps x {r['instances']} instance(s) ({how}): all deployed and running after "
          f"{r['all_deployed_s']:.2f} s" + ("" if r["complete"] else "  ** INCOMPLETE (timeout) **"))
    print(f"    requests took {r['post_s']:.2f} s in all (per request p50 {r['post_p50_ms']:.0f} ms, "
          f"p99 {r['post_p99_ms']:.0f} ms); per-app request -> deployment_success p50 {r['deploy_p50_s']:.2f} s, "
          f"p99 {r['deploy_p99_s']:.2f} s")
    print(f"    then the API says: {r['deployments_left']} deployments left, {r['apps_full']} of {r['apps']} apps "
          f"at tasksRunning {r['instances']}; {r['running']} TASK_RUNNING events; running at: {r['milestones']}")
    if r["errors"]:
        print(f"    {len(r['errors'])} requests failed, e.g. {r['errors'][:3]}")
    if "cpu" in r:
        print(f"    CPU during the run: {r['cpu']}")
    if r.get("calls"):
        print(f"    master counted: {r['calls']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["S1", "S2", "S3"], choices=["S1", "S2", "S3"])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--allocation-interval", type=float, default=0.2)
    parser.add_argument("--s1-instances", type=int, default=10_000)
    parser.add_argument("--s2-apps", type=int, default=2_000)
    parser.add_argument("--s2-instances", type=int, default=1)
    parser.add_argument("--s2-put", action="store_true", help="one PUT /v2/apps with every app, not a POST each")
    parser.add_argument("--s2-concurrency", type=int, default=1, help="POSTs in flight at once")
    parser.add_argument("--s3-apps", type=int, default=1_000)
    parser.add_argument("--s3-instances", type=int, default=10)
    parser.add_argument("--s3-requests", type=int, default=20)
    parser.add_argument("--s3-setup", choices=["seed", "deploy"], default="seed",
                        help="seed: the services store written as a finished deployment leaves it, the services "
                        "process started on it alone (no master); deploy: one PUT /v2/apps on the live cluster")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a scenario may take to deploy")
    parser.add_argument("--profile", type=Path, default=None, help="run the services process under cProfile")
    parser.add_argument("--profile-master", action="store_true", help="with --profile: the master instead (S1)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the daemons' work directories and logs here (default: a temporary directory)")
    args = parser.parse_args()
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 500 agent streams; the daemons inherit it
    print(f"# services_scale: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; {args.agents} FakeAgents ({AGENT_RESOURCES}), "
          f"master --allocation-interval {args.allocation_interval}, unpinned"
          + (f"; services under cProfile -> {args.profile}" if args.profile else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="services-scale-") as scratch:
        tmp = str(args.work_dir.resolve()) if args.work_dir else scratch
        if "S1" in args.scenarios:
            report_s1(asyncio.run(s1(Path(tmp), args)))
        if "S2" in args.scenarios:
            r = asyncio.run(s2(Path(tmp), args))
            report_deploy("S2", r)
            print(f"    S2 verdict ({args.s2_apps} apps, must <= 60 s, aim <= 20 s): "
                  f"{verdict(r['all_deployed_s'], 60, 20, higher=False)}", flush=True)
        if "S3" in args.scenarios:
            r = asyncio.run(s3(Path(tmp), args))
            if "seeded_s" in r["setup"]:
                print(f"S3 set-up: store seeded with {args.s3_apps} apps x {args.s3_instances} TASK_RUNNING "
                      f"instances in {r['setup']['seeded_s']:.1f} s; services process alone on it (no master)")
            else:
                report_deploy("S3 set-up", r["setup"])
            print(f"S3: GET /v2/apps?embed=apps.tasks with {r['apps']} apps / {r['tasks']} tasks, {r['requests']} "
                  f"requests: p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms, "
                  f"{r['bytes'] / 1e6:.1f} MB each (aim <= 200 ms: {'met' if r['p99_ms'] <= 200 else 'missed'})")
            print(f"    first request {r['first_ms']:.0f} ms; slowest requests (0-based): {r['slowest']}")
            print(f"    without embed: {r['plain_ms']:.0f} ms; one app with its tasks: {r['one_app_ms']:.0f} ms; "
                  f"CPU during the requests: {r['cpu']}", flush=True)


if __name__ == "__main__":
    main()
