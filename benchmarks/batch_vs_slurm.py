"""B1: 1,000 trivial batch tasks on 64 CPUs, Meseta against Slurm 22.05, measured in the same run.

Each task is `true` with 1 CPU. Both sides start once and are then measured alternately, ``--runs``
times, so that drift of this shared machine hits both alike::

    Slurm (peers/slurm/start.sh: one node of 64 CPUs, batch_sched_delay=0, munge)
        bench.sh N array: one `sbatch --array=1-N --wrap true`, first submit -> every job done
    Meseta (a `meseta master` process and AGENTS `meseta agent` processes summing to 64 CPUs)
        one framework per run, each DRIVER in turn, subscribe -> every task terminal:
          submit   `meseta submit --master H:P --count N --cpus 1 --mem 32 --no-output true`
                   (used when `meseta submit --help` answers; wall time of the command)
          client   a minimal framework on `meseta.client` (packs each offer, launches with
                   refuse_seconds 0, suppresses once everything is launched)
          pymesos  an unmodified pymesos 0.3.15 framework: launchTasks with the default filters,
                   declineOffer for offers it has no use for (the naive framework)

Prints tasks/s of each side per run, the medians and the ratio Meseta / Slurm, and the machine.

    python benchmarks/batch_vs_slurm.py [--tasks 1000] [--runs 3] [--agents 4] [--cpus 64]
        [--drivers auto,pymesos] [--no-slurm] [--master-flags "--allocation-interval 1"]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from meseta.client import Scheduler, SchedulerDriver
from meseta.protocol.task_states import TERMINAL
from meseta.runtime.serve import free_port
from meseta.testing.clusters import MESETA, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes

SLURM_PEER = Path(os.environ.get("SLURM_PEER", "/work/shared/peers/slurm"))
TASK_CPUS, TASK_MEM = 1.0, 32.0


def task_info(task_id: str, agent_id: dict[str, Any]) -> dict[str, Any]:
    return {"name": task_id, "task_id": {"value": task_id}, "agent_id": agent_id,
            "command": {"value": "true", "shell": True},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": TASK_CPUS}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": TASK_MEM}}]}


def fits(offer: dict[str, Any]) -> int:
    """How many tasks the offer holds."""
    cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
    mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
    return int(min(cpus / TASK_CPUS + 1e-9, mem / TASK_MEM + 1e-9))


# ------------------------------------------------------------------ Slurm
class Slurm:
    """The peer scripts with their own base directory and ports (nothing shared with a peer
    another engineer may run)."""

    def __init__(self, base: Path, cpus: int) -> None:
        self.env = {**os.environ, "SLURM_BASE": str(base), "SLURM_CPUS": str(cpus),
                    "SLURM_SCHED_PARAMS": "batch_sched_delay=0",
                    "SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT_BASE": str(free_port())}

    def script(self, name: str, *args: str, check: bool = True) -> str:
        done = subprocess.run([str(SLURM_PEER / name), *args], env=self.env, capture_output=True, text=True,
                              check=False, timeout=1800)
        if check and done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> str:
        out = self.script("start.sh")
        version = subprocess.run(["slurmctld", "-V"], capture_output=True, text=True, check=False).stdout.strip()
        return f"{version}; " + " ".join(line for line in out.splitlines() if line.startswith(("Slurm up", "startup")))

    def run(self, tasks: int) -> dict[str, float]:
        out = self.script("bench.sh", str(tasks), "array")
        line = next(line for line in out.splitlines() if line.startswith("RESULT"))
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        return {"seconds": float(fields["total_s"]), "tasks_per_s": float(fields["jobs_per_s"]),
                "completed": float(fields["completed"])}

    def stop(self) -> None:
        self.script("stop.sh", check=False)


# ------------------------------------------------------------------ Meseta drivers
class ClientBatch(Scheduler):
    """Launch ``total`` tasks as offers come (each offer packed), refuse_seconds 0 on what is left;
    once every task is launched, suppress. ``done`` when every task is terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.launched = total, 0
        self.states: dict[str, str] = {}
        self.done = asyncio.Event()

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            count = min(fits(offer), self.total - self.launched)
            tasks = [task_info(f"b{self.launched + k}", offer["agent_id"]) for k in range(count)]
            self.launched += count
            if tasks:
                await driver.launch([offer["id"]["value"]], tasks, {"refuse_seconds": 0})
            else:
                await driver.decline([offer["id"]["value"]], {"refuse_seconds": 3600})
        if self.launched >= self.total:
            await driver.suppress()

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        if status["state"] in TERMINAL:
            self.states[status["task_id"]["value"]] = status["state"]
            if len(self.states) >= self.total:
                self.done.set()


async def run_client(master: str, total: int) -> dict[str, float]:
    scheduler = ClientBatch(total)
    started = time.perf_counter()
    driver = SchedulerDriver(scheduler, {"user": "root", "name": "b1-client"}, master)
    await driver.start()
    try:
        await asyncio.wait_for(scheduler.done.wait(), 900)
        seconds = time.perf_counter() - started
    finally:
        await driver.stop()
    return outcome(seconds, total, list(scheduler.states.values()))


def outcome(seconds: float, total: int, states: list[str]) -> dict[str, float]:
    return {"seconds": seconds, "tasks_per_s": total / seconds,
            "completed": float(sum(s == "TASK_FINISHED" for s in states))}


def run_pymesos(master: str, total: int) -> dict[str, float]:
    from pymesos import MesosSchedulerDriver
    from pymesos import Scheduler as PyScheduler

    lock = threading.Condition()
    states: dict[str, str] = {}
    launched = [0]

    class Naive(PyScheduler):  # type: ignore[misc]
        def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
            for offer in offers:
                count = min(fits(offer), total - launched[0])
                if count <= 0:
                    driver.declineOffer(offer["id"])
                    continue
                tasks = [task_info(f"p{launched[0] + k}", offer["agent_id"]) for k in range(count)]
                launched[0] += count
                driver.launchTasks(offer["id"], tasks)

        def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
            with lock:
                if status["state"] in TERMINAL:
                    states[status["task_id"]["value"]] = status["state"]
                    lock.notify_all()

    started = time.perf_counter()
    driver = MesosSchedulerDriver(Naive(), {"user": "root", "name": "b1-pymesos", "hostname": "127.0.0.1"},
                                  master, use_addict=False)
    driver.start()
    try:
        with lock:
            if not lock.wait_for(lambda: len(states) >= total, 900):
                raise RuntimeError(f"pymesos: {len(states)} of {total} tasks terminal after 900 s")
        seconds = time.perf_counter() - started
    finally:
        driver.stop()
        driver.join()
    return outcome(seconds, total, list(states.values()))


def submit_available() -> bool:
    done = subprocess.run([*MESETA, "submit", "--help"], capture_output=True, check=False, timeout=120)
    return done.returncode == 0


def run_submit(master: str, total: int) -> dict[str, float]:
    command = [*MESETA, "submit", "--master", master, "--count", str(total), "--cpus", "1", "--mem", "32",
               "--no-output", "true"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"meseta submit exited {done.returncode}: {done.stderr[-2000:]}")
    return {"seconds": seconds, "tasks_per_s": total / seconds, "completed": float(total)}


# ------------------------------------------------------------------ Meseta cluster
class MesetaCluster:
    """`meseta master` + ``agents`` `meseta agent` processes whose CPUs sum to ``cpus``."""

    def __init__(self, base: Path, agents: int, cpus: int, master_flags: list[str]) -> None:
        port = free_port()
        self.master = f"127.0.0.1:{port}"
        base.mkdir(parents=True, exist_ok=True)
        self.procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(base / "master"),
                                    *master_flags], base / "master.log")]
        per_agent = cpus // agents
        for i in range(agents):
            mem = int(per_agent * TASK_MEM * 2)
            self.procs.append(start_daemon(
                ["agent", "--master", self.master, "--port", str(free_port()), "--work-dir", str(base / f"a{i}"),
                 "--resources", f"cpus:{per_agent};mem:{mem};disk:4096", "--no-switch-user"],
                base / f"agent{i}.log"))
        self.description = f"{agents} agents x cpus:{per_agent}, master flags {master_flags or 'default'}"

    def wait(self, agents: int) -> None:
        wait_for_agents(self.master, agents, timeout=120)

    def quiet(self) -> None:
        """Until the master holds no active tasks from an earlier run."""
        deadline = time.time() + 120
        while time.time() < deadline:
            metrics = httpx.get(f"http://{self.master}/metrics/snapshot", timeout=10).json()
            if metrics.get("master/tasks_running", 0) + metrics.get("master/tasks_staging", 0) == 0:
                return
            time.sleep(0.2)

    def counters(self) -> dict[str, float]:
        """The master's allocation runs, ACCEPTs and DECLINEs so far."""
        metrics = httpx.get(f"http://{self.master}/metrics/snapshot", timeout=10).json()
        return {short: metrics.get(name, 0) for short, name in (
            ("allocations", "allocator/mesos/allocation_runs"), ("accepts", "master/messages_accept_offers"),
            ("declines", "master/messages_decline_offers"))}

    def cpu_seconds(self) -> list[float]:
        """CPU seconds of the master, the agents, the agents' tasks (their processes, once reaped)
        and this process (the framework, for the in-process drivers)."""
        own = os.times()
        agents = [proc_cpu(p.pid) for p in self.procs[1:]]
        return [proc_cpu(self.procs[0].pid)[0], sum(a[0] for a in agents), sum(a[1] for a in agents),
                own.user + own.system]

    def spy(self, directory: Path, label: str) -> list[subprocess.Popen[bytes]]:
        """py-spy (collapsed stacks) on the master and the first agent until stopped."""
        directory.mkdir(parents=True, exist_ok=True)
        return [subprocess.Popen(["py-spy", "record", "--format", "raw", "--rate", "200", "-p", str(proc.pid),
                                  "-o", str(directory / f"{label}-{role}.txt")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                for proc, role in zip(self.procs, ["master", "agent0"], strict=False)]

    def count_syscalls(self, directory: Path, label: str) -> subprocess.Popen[bytes]:
        """strace -c on the first agent, its threads and the tasks it forks, until stopped."""
        directory.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(["strace", "-c", "-f", "-p", str(self.procs[1].pid),
                                 "-o", str(directory / f"{label}-agent0.txt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        stop_processes(self.procs)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


DRIVERS: dict[str, Callable[[str, int], dict[str, float]]] = {
    "client": lambda master, total: asyncio.run(run_client(master, total)),
    "pymesos": run_pymesos,
    "submit": run_submit,
}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.platform()}, load average at start {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=64)
    parser.add_argument("--drivers", default="auto,pymesos",
                        help="comma list of submit, client, pymesos; auto = submit if it exists, else client")
    parser.add_argument("--no-slurm", action="store_true", help="Meseta only")
    parser.add_argument("--profile", type=Path, help="py-spy the master and the first agent into this directory")
    parser.add_argument("--strace", type=Path, help="count the system calls of the first agent and its tasks "
                                                    "(strace -c -f) into this directory")
    parser.add_argument("--master-flags", default="", help="extra `meseta master` flags, e.g. --allocation-interval 1")
    args = parser.parse_args()
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    if "auto" in drivers:
        drivers[drivers.index("auto")] = "submit" if submit_available() else "client"
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown:
        parser.error(f"unknown --drivers {unknown}; known: {sorted(DRIVERS)}")
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; command: "
          f"{' '.join(shlex.quote(a) for a in sys.argv)}")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in ["slurm", *drivers]}
    with tempfile.TemporaryDirectory(prefix="b1-") as tmp:
        base = Path(tmp)
        slurm = None if args.no_slurm else Slurm(base / "slurm", args.cpus)
        cluster = MesetaCluster(base / "meseta", args.agents, args.cpus, shlex.split(args.master_flags))
        try:
            if slurm is not None:
                print(f"slurm: {slurm.start()}")
            cluster.wait(args.agents)
            print(f"meseta: {cluster.description}")
            for run in range(1, args.runs + 1):
                if slurm is not None:
                    results["slurm"].append(slurm.run(args.tasks))
                    report(run, "slurm (sbatch --array)", results["slurm"][-1])
                for name in drivers:
                    cluster.quiet()
                    before, busy, counted = cluster.cpu_seconds(), machine_busy(), cluster.counters()
                    spies = cluster.spy(args.profile, f"{name}-{run}") if args.profile else []
                    if args.strace:
                        spies.append(cluster.count_syscalls(args.strace, f"{name}-{run}"))
                    results[name].append(DRIVERS[name](cluster.master, args.tasks))
                    for spy in spies:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(60)
                    used = [round(b - a, 1) for a, b in zip(before, cluster.cpu_seconds(), strict=True)]
                    after = machine_busy()
                    share = (after[0] - busy[0]) / max(1.0, after[1] - busy[1])
                    counts = {k: int(v - counted[k]) for k, v in cluster.counters().items()}
                    report(run, f"meseta {name}", results[name][-1],
                           f"CPU s master/agents/tasks/framework {used}, machine {share:.0%} busy, {counts}")
        finally:
            cluster.stop()
            if slurm is not None:
                slurm.stop()
    summarize(results)


def report(run: int, side: str, result: dict[str, float], extra: str = "") -> None:
    print(f"run {run} {side:24s} {result['seconds']:7.2f} s  {result['tasks_per_s']:7.1f} tasks/s  "
          f"finished {int(result['completed'])}  {extra}", flush=True)


def summarize(results: dict[str, list[dict[str, float]]]) -> None:
    medians = {name: statistics.median(r["tasks_per_s"] for r in runs) for name, runs in results.items() if runs}
    print("median tasks/s: " + ", ".join(f"{name} {rate:.1f}" for name, rate in medians.items()))
    if "slurm" in medians:
        for name, rate in medians.items():
            if name == "slurm":
                continue
            pairs = zip(results[name], results["slurm"], strict=False)
            per_run = [m["tasks_per_s"] / s["tasks_per_s"] for m, s in pairs]
            print(f"ratio meseta {name} / slurm: {rate / medians['slurm']:.2f}x "
                  f"(per run: {', '.join(f'{r:.2f}' for r in per_run)})")

if __name__ == "__main__":
    main()
