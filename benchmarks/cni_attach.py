"""CNI attach/detach (issue 16): attach then detach N containers on a bridge + host-local + portmap
network of the benchmark's own (Debian's plugins in /usr/lib/cni, real iptables; needs root), at
concurrency 1 and 16; prints per-op p50/p99 and ops/s, and checks that nothing is left behind.
``--profile`` adds where the time goes (wall time summed per plugin and command, and per `ip`
command of the isolator itself); ``--subnet-masq`` turns the bridge plugin's per-container ipMasq
off and installs one MASQUERADE rule for the subnet instead (removed at the end).

    sudo python benchmarks/cni_attach.py [--containers 200] [--concurrency 1 16] [--ports] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from meseta.agent.containerizer import cni
from meseta.agent.containerizer.cni import CniIsolator, NetworkRequest, PortMapping
from meseta.agent.containerizer.cni_config import default_bridge_network
from meseta.testing.leaks import PORTMAP_SHARED, snapshot


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_round(isolator: CniIsolator, total: int, concurrency: int, ports: bool, base_port: int,
                    ) -> tuple[list[float], list[float], float]:
    gate = asyncio.Semaphore(concurrency)
    attach_times: list[float] = []
    detach_times: list[float] = []

    async def attach(i: int) -> None:
        mappings = (PortMapping(base_port + i, 80),) if ports else ()
        async with gate:
            began = time.perf_counter()
            await isolator.attach(f"bench-{i}", [NetworkRequest("bench", mappings)])
            attach_times.append(time.perf_counter() - began)

    async def detach(i: int) -> None:
        async with gate:
            began = time.perf_counter()
            await isolator.detach(f"bench-{i}")
            detach_times.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(attach(i) for i in range(total)))
    await asyncio.gather(*(detach(i) for i in range(total)))
    return attach_times, detach_times, time.perf_counter() - began


SPENT: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def profile(isolator: CniIsolator) -> None:
    """Sum the wall time of every plugin run (by command and plugin) and `ip` run of the isolator."""
    plugin, ip = isolator._plugin, cni._ip

    async def timed_plugin(command: str, container_id: str, netns: Path | None, ifname: str,
                           network: cni.NetworkConfig, index: int, stdin: dict) -> object:  # type: ignore[type-arg]
        began = time.perf_counter()
        try:
            return await plugin(command, container_id, netns, ifname, network, index, stdin)
        finally:
            key = f"{command} {network.plugins[index]['type']}"
            SPENT[key] += time.perf_counter() - began
            CALLS[key] += 1

    async def timed_ip(*args: str) -> None:
        began = time.perf_counter()
        try:
            await ip(*args)
        finally:
            key = "ip " + " ".join(a for a in args if not a.startswith(isolator.netns_prefix))
            SPENT[key] += time.perf_counter() - began
            CALLS[key] += 1

    isolator._plugin = timed_plugin  # type: ignore[method-assign]
    cni._ip = timed_ip


def report(what: str, times: list[float]) -> str:
    return f"{what} p50 {percentile(times, 0.5) * 1000:7.1f} ms  p99 {percentile(times, 0.99) * 1000:7.1f} ms"


async def main(total: int, levels: list[int], ports: bool, parallel: int | None, profiled: bool = False,
               subnet_masq: bool = False) -> None:
    tag = f"mb{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="cni-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "cni").mkdir()
        subnet = f"10.{240 + os.getpid() % 10}.0.0/16"
        network = default_bridge_network("bench", f"{tag}b", subnet, str(tmp / "ipam"))
        masq = ["POSTROUTING", "-s", subnet, "!", "-d", subnet, "-m", "comment", "--comment", f"bench {tag}",
                "-j", "MASQUERADE"]
        if subnet_masq:
            network["plugins"][0]["ipMasq"] = False
        (tmp / "cni" / "bench.conflist").write_text(json.dumps(network))
        extra = {"parallel": parallel} if parallel else {}
        isolator = CniIsolator(tmp / "cni", Path("/usr/lib/cni"), tmp / "state", netns_prefix=f"{tag}-", **extra)
        if profiled:
            profile(isolator)
        before = snapshot([tmp / "ipam"], [tmp])
        if subnet_masq:
            subprocess.run(["iptables", "-w", "-t", "nat", "-A", *masq], check=True)
        print(f"cni attach+detach: {total} containers, bridge+host-local+portmap, port mappings: {ports}, "
              f"per-container ipMasq: {not subnet_masq}, plugin processes at once: {isolator.parallel}, "
              f"python {platform.python_version()}, {os.cpu_count()} cpus")
        try:
            for concurrency in levels:
                SPENT.clear()
                CALLS.clear()
                attached, detached, elapsed = await one_round(isolator, total, concurrency, ports, 20000)
                print(f"  concurrency {concurrency:3d}: {report('attach', attached)}   {report('detach', detached)}"
                      f"   {2 * total / elapsed:7.1f} ops/s")
                for key, spent in SPENT.most_common():
                    print(f"      {key:40s} {CALLS[key]:5d} runs  {spent / CALLS[key] * 1000:7.1f} ms each")
            if subnet_masq:
                subprocess.run(["iptables", "-w", "-t", "nat", "-D", *masq], check=True)
                subnet_masq = False
            left = before.diff(snapshot([tmp / "ipam"], [tmp]), allow=[*PORTMAP_SHARED, rf"^link: {tag}b$"],
                               mentioning=[tag, str(tmp)])
            print(f"  left behind: {left or 'nothing'}")
        finally:
            await isolator.recover(set())
            if subnet_masq:
                subprocess.run(["iptables", "-w", "-t", "nat", "-D", *masq], check=False)
            subprocess.run(["ip", "link", "del", f"{tag}b"], capture_output=True, check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--ports", action="store_true", help="give each container a host port (portmap)")
    parser.add_argument("--parallel", type=int, help="plugin processes at once (default: the isolator's)")
    parser.add_argument("--profile", action="store_true", help="time each plugin and `ip` run")
    parser.add_argument("--subnet-masq", action="store_true",
                        help="no per-container ipMasq; one MASQUERADE rule for the subnet instead")
    args = parser.parse_args()
    asyncio.run(main(args.containers, args.concurrency, args.ports, args.parallel, args.profile, args.subnet_masq))
