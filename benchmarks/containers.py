"""C1 and C2 (issue 16): container starts from a loopback docker-registry, and bridged launches.

A `meseta master` and one `meseta agent` process on loopback (`--docker-registry` pointing at
Debian's docker-registry, `--network-cni-config-dir` holding a bridge network of the benchmark's
own: bridge mc<pid>b, a /16 of 10.x, its own lease dir); one v1 scheduler holds the offers and
launches DOCKER tasks of a 3-layer busybox image (`sleep 3600`) in batches, one ACCEPT per batch.

C1: one task cold (empty layer store) then warm (layers in the store), then 50 tasks at once cold
    (a new agent, new store) and warm; per-task ACCEPT -> TASK_RUNNING p50/p99/max, the batch's
    total, and the registry's blob GETs (each blob should be fetched once).
C2: 200 tasks at once on the host network, then 200 on the bridge network (network BRIDGE), each
    launched to TASK_RUNNING, then all killed to TASK_KILLED, then until the agent's CNI state dir
    is empty; launches/s and kills/s and the bridged/host ratio. ``--variants`` repeats the bridged
    round with other network configs in the same run (the agent re-reads its config dir at every
    attach): ``masq`` = the bridge plugin's per-container ipMasq chains, ``subnet-masq`` = ipMasq off
    and one MASQUERADE rule for the subnet installed by the benchmark. Nothing may be left.

    python benchmarks/containers.py [--quick] [--c1-tasks 50] [--c2-tasks 200] [--variants masq,subnet-masq]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from launch_throughput import TASK_RESOURCES, BenchScheduler, start, stop, wait_agents
from meseta.agent.containerizer.cni_config import default_bridge_network, subnet_masquerade
from meseta.runtime.serve import free_port
from meseta.testing.images import docker_archive
from meseta.testing.leaks import PORTMAP_SHARED, snapshot
from meseta.testing.registry import LocalRegistry

IMAGE = "bench:1"
NETWORK = "mesos-bridge"  # the agent's default --docker-bridge-network


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class PhaseScheduler(BenchScheduler):
    """Holds every offer; ``launch`` spends one on a batch, ``kill`` kills a batch; both time
    each task from the ACCEPT (or KILL) to its state."""

    def __init__(self, master: str) -> None:
        super().__init__(master, 1 << 30, "sleep 3600", "(tracked here)")
        self.offers: list[dict[str, Any]] = []
        self.offered = asyncio.Event()
        self.states: dict[str, dict[str, float]] = {}  # state -> task -> when first seen
        self.changed = asyncio.Event()
        self.agent_id: dict[str, Any] = {}
        self.serial = 0
        self.first: dict[str, float] = {}  # the last batch's tasks: seconds from the ACCEPT to their first update

    async def _on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "OFFERS":
            self.offers.extend(event["offers"]["offers"])
            self.offered.set()
            return
        if event["type"] == "UPDATE":
            status = event["update"]["status"]
            self.agent_id = status.get("agent_id", self.agent_id)
            self.states.setdefault(status["state"], {}).setdefault(status["task_id"]["value"], time.perf_counter())
            if status["state"] in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED"):
                print(f"  !! {status['task_id']['value']} {status['state']}: {status.get('message', '')[:300]}")
            self.changed.set()
        await super()._on_event(event)

    async def _call(self, body: dict[str, Any]) -> None:
        try:
            await super()._call(body)
        except Exception:
            if not self.done.is_set():  # set once the round is over: late acknowledgements may fail
                raise

    async def _wait(self, ids: list[str], state: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not all(i in self.states.get(state, {}) for i in ids):
            bad = [i for i in ids for s in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST") if i in self.states.get(s, {})]
            if bad:
                raise RuntimeError(f"{len(bad)} tasks failed, e.g. {bad[0]}")
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.1, deadline - time.monotonic()))

    def _offered(self, name: str) -> float:
        return sum(r["scalar"]["value"] for o in self.offers for r in o["resources"] if r["name"] == name)

    async def launch(self, count: int, container: dict[str, Any]) -> tuple[list[str], dict[str, float], float]:
        """``count`` tasks in one ACCEPT; (ids, per-task seconds to TASK_RUNNING, batch seconds)."""
        while self._offered("cpus") < count * 0.01 - 1e-6 or self._offered("mem") < count:
            self.offered.clear()  # freed resources come back in offers of their own
            await asyncio.wait_for(self.offered.wait(), 60)
        offers, self.offers = self.offers, []
        offer = offers[0]
        ids = [f"t{self.serial + n}" for n in range(count)]
        self.serial += count
        tasks = [{"name": i, "task_id": {"value": i}, "agent_id": offer["agent_id"], "resources": TASK_RESOURCES,
                  "command": {"value": self.command}, "container": container} for i in ids]
        began = time.perf_counter()
        await self._call({"type": "ACCEPT", "accept": {"offer_ids": [o["id"] for o in offers], "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": tasks}}], "filters": {"refuse_seconds": 0}}})
        await self._wait(ids, "TASK_RUNNING")
        running, starting = self.states["TASK_RUNNING"], self.states.get("TASK_STARTING", {})
        self.first = {i: min(running[i], starting.get(i, running[i])) - began for i in ids}
        return ids, {i: running[i] - began for i in ids}, max(running[i] for i in ids) - began

    async def kill(self, ids: list[str]) -> float:
        began = time.perf_counter()
        await asyncio.gather(*(self._call({"type": "KILL", "kill": {"task_id": {"value": i},
                                                                    "agent_id": self.agent_id}}) for i in ids))
        await self._wait(ids, "TASK_KILLED")
        return max(self.states["TASK_KILLED"][i] for i in ids) - began


def docker(network: str) -> dict[str, Any]:
    return {"type": "DOCKER", "docker": {"image": IMAGE, "network": network}}


class Network:
    """The benchmark's own bridge network: config dir, lease dir, bridge device, subnet /16."""

    def __init__(self, tmp: Path) -> None:
        self.tag = f"mc{os.getpid() % 10000}"
        self.bridge = f"{self.tag}b"
        self.subnet = f"10.{230 + os.getpid() % 10}.0.0/16"
        self.config_dir, self.lease_dir = tmp / "cni", tmp / "ipam"
        self.config_dir.mkdir()
        self.masq_rule: list[str] | None = None
        self.netns: set[str] = set()  # the namespaces the agent made for our containers (from its state dir)
        self.use("masq")

    def use(self, variant: str) -> None:
        config = default_bridge_network(NETWORK, self.bridge, self.subnet, str(self.lease_dir),
                                        ip_masq=variant != "subnet-masq")
        if variant == "subnet-masq":
            self._subnet_masq(True)
        elif variant == "masq":
            self._subnet_masq(False)
        else:
            raise SystemExit(f"--variants: unknown variant {variant!r} (masq, subnet-masq)")
        (self.config_dir / f"{NETWORK}.conflist").write_text(json.dumps(config, indent=2))

    def _subnet_masq(self, on: bool) -> None:
        rule = subnet_masquerade(self.subnet, f"meseta bench {self.tag}")
        if on and self.masq_rule is None:
            subprocess.run(["iptables", "-w", "-t", "nat", "-A", *rule], check=True)
            self.masq_rule = rule
        elif not on and self.masq_rule is not None:
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *self.masq_rule], check=True)
            self.masq_rule = None

    def close(self) -> None:
        self._subnet_masq(False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, those of its reaped children: plugins, ip, mount, the tasks' chain)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


@contextmanager
def cluster(tmp: Path, registry: LocalRegistry, network: Network, tasks: int) -> Iterator[tuple[str, Path, int]]:
    """A master and an agent with a fresh work dir (so an empty layer store); (master, agent work dir,
    agent pid)."""
    port = free_port()
    master = f"127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(dir=tmp, prefix="agent-"))
    procs = [start(["master", "--port", str(port), "--work-dir", str(work / "master"), "--allocation-interval",
                    "0.2"], work / "master.log"),
             start(["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(work / "agent"),
                    "--resources", f"cpus:{tasks * 0.01 + 1:.2f};mem:{tasks * 2 + 64}", "--no-switch-user",
                    "--docker-registry", registry.url, "--network-cni-config-dir", str(network.config_dir),
                    "--network-cni-plugins-dir", "/usr/lib/cni"], work / "agent.log")]
    try:
        yield master, work / "agent", procs[1].pid
    finally:
        for proc in procs:
            stop(proc)


def line(what: str, per_task: dict[str, float], total: float) -> str:
    values = list(per_task.values())
    return (f"{what:24s} ACCEPT->RUNNING min {min(values):6.3f} p50 {percentile(values, 0.5):6.3f} "
            f"p99 {percentile(values, 0.99):6.3f} max {max(values):6.3f} s, batch {total:6.3f} s")


async def c1(tmp: Path, registry: LocalRegistry, network: Network, batch: int) -> None:
    for round_ in ("single", "batch"):
        gets = registry.blob_gets()
        with cluster(tmp, registry, network, batch + 2) as (master, _, _):
            await wait_agents(master, 1)
            scheduler = PhaseScheduler(master)
            runner = asyncio.create_task(scheduler.run())
            count = 1 if round_ == "single" else batch
            ids, cold, total = await scheduler.launch(count, docker("HOST"))
            fetched = registry.blob_gets() - gets
            print(line(f"C1 cold {count:3d} task(s)", cold, total) + f"  blob GETs {fetched}")
            ids2, warm, total = await scheduler.launch(count, docker("HOST"))
            print(line(f"C1 warm {count:3d} task(s)", warm, total)
                  + f"  blob GETs {registry.blob_gets() - gets - fetched}")
            await scheduler.kill(ids + ids2)
            scheduler.done.set()
            runner.cancel()


async def wait_empty(directory: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while directory.exists() and any(directory.iterdir()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{directory} still holds {sorted(p.name for p in directory.iterdir())[:5]}")
        await asyncio.sleep(0.02)


async def c2(tmp: Path, registry: LocalRegistry, network: Network, total: int, variants: list[str]) -> None:
    results: dict[str, dict[str, float]] = {}
    with cluster(tmp, registry, network, total + 1) as (master, agent_dir, agent_pid):
        await wait_agents(master, 1)
        scheduler = PhaseScheduler(master)
        runner = asyncio.create_task(scheduler.run())
        warm_ids, _, _ = await scheduler.launch(1, docker("HOST"))  # the image into the store
        await scheduler.kill(warm_ids)
        rounds = [("host", "HOST", None)] + [(f"bridge/{v}", "BRIDGE", v) for v in variants]
        for name, mode, variant in rounds:
            if variant is not None:
                network.use(variant)
            cpu_before = cpu_seconds(agent_pid)
            ids, per_task, launch_s = await scheduler.launch(total, docker(mode))
            network.netns |= {json.loads(p.read_text())["netns_name"]
                              for p in (agent_dir / "network" / "cni").glob("*/attachment.json")}
            began = time.perf_counter()
            kill_s = await scheduler.kill(ids)
            await wait_empty(agent_dir / "network" / "cni")
            teardown_s = time.perf_counter() - began
            cpu = [after - before for after, before in zip(cpu_seconds(agent_pid), cpu_before, strict=True)]
            results[name] = {"launch": launch_s, "kill": kill_s, "teardown": teardown_s,
                             "p99": percentile(list(per_task.values()), 0.99)}
            first = list(scheduler.first.values())
            print(f"C2 {name:18s} {total} tasks: launch {launch_s:6.2f} s = {total / launch_s:6.1f}/s "
                  f"(first update p50 {percentile(first, 0.5):.2f} s, RUNNING min {min(per_task.values()):.2f} "
                  f"p99 {results[name]['p99']:.2f} s), kill {kill_s:6.2f} s = {total / kill_s:6.1f}/s, "
                  f"until the CNI state dir is empty {teardown_s:6.2f} s; CPU: agent {cpu[0]:.1f} s, "
                  f"its children {cpu[1]:.1f} s")
        scheduler.done.set()
        runner.cancel()
    host = results["host"]
    for name, r in results.items():
        if name != "host":
            print(f"C2 {name:18s} / host: launch x{r['launch'] / host['launch']:.2f}, "
                  f"kill+teardown x{r['teardown'] / host['teardown']:.2f} (aim <= 2x)")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cpus, {platform.processor() or platform.machine()}, kernel "
          f"{platform.release()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="containers-bench-") as tmp_name:
        tmp = Path(tmp_name)
        network = Network(tmp)
        before = snapshot(lease_dirs=[network.lease_dir], mount_roots=[tmp])
        try:
            with LocalRegistry(tmp) as registry:
                registry.push(docker_archive(tmp / "bench.tar", layers=3, tag=IMAGE), IMAGE)
                if "c1" in args.only:
                    await c1(tmp, registry, network, args.c1_tasks)
                if "c2" in args.only:
                    await c2(tmp, registry, network, args.c2_tasks, args.variants.split(","))
            network.use("masq")  # drops the subnet rule, if a variant added it
            left = before.diff(snapshot(lease_dirs=[network.lease_dir], mount_roots=[tmp]),
                               allow=[*PORTMAP_SHARED, rf"^link: {network.bridge}$"],
                               mentioning=[network.bridge, network.subnet.rsplit(".", 2)[0] + ".", str(tmp)])
            live = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
            left += [f"netns: {name}" for name in sorted(network.netns & live)]
            print(f"namespaces made and checked: {len(network.netns)}")
            print(f"left behind: {left or 'nothing'}")
        finally:
            network.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 tasks for C1, 40 for C2")
    parser.add_argument("--c1-tasks", type=int, default=50)
    parser.add_argument("--c2-tasks", type=int, default=200)
    parser.add_argument("--variants", default="masq,subnet-masq", help="bridged rounds of C2 (masq, subnet-masq)")
    parser.add_argument("--only", default="c1,c2")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.c1_tasks, parsed.c2_tasks = 10, 40
    asyncio.run(main(parsed))
