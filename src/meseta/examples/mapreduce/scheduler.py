"""The asyncio shell around the job tracker: a ``meseta.client`` Scheduler that turns offers,
status updates and lost agents into tracker calls and carries out the effects.

    run_job(spec, master) --SUBSCRIBE--> offers -> tracker.handle_offers -> LAUNCH / DECLINE
        UPDATE -> tracker.handle_update -> KILL, locate a map's sandbox (the agent's /state),
                  commit a reducer's file, check the agents holding map outputs
        FAILURE (agent removed) -> tracker.handle_agent_lost
        launching a reducer -> its inputs file; a file system error fails the job
        JobFinished -> _SUCCESS written, _temporary removed, TEARDOWN -> the JobReport
        JobFailed -> TEARDOWN -> MapReduceFailed(reason)

Every tracker call happens on the one event loop without an await in between, so each is atomic;
background work (locating, checking) posts its answer back the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import meseta
from meseta.client import CallError, NotConnected, Scheduler, SchedulerDriver
from meseta.examples.mapreduce import inputs as files
from meseta.examples.mapreduce.effects import (
    CheckOutputs,
    CommitOutput,
    Decline,
    Effect,
    JobFailed,
    JobFinished,
    JobReport,
    KillTask,
    LaunchTasks,
    LocateOutput,
    OfferView,
)
from meseta.examples.mapreduce.job import JobSpec
from meseta.examples.mapreduce.tasks import task_info
from meseta.examples.mapreduce.tracker import JobTracker

log = logging.getLogger(__name__)
REFUSE_SECONDS = 0.5  # a declined offer comes back soon: a slot freed, a retry or a straggler wants it
AGENT_TIMEOUT = 10.0  # seconds an agent has to answer /state or /files/browse
FAILOVER_TIMEOUT = 60.0  # a scheduler cut off from the master this long loses its tasks (a crash leaves none behind
# for longer); a normal end, a failure or Ctrl-C tears the framework down at once
STDERR_TAIL = 2000  # bytes of a failed task's stderr shown with the job's failure
_EXIT = re.compile(r"exited with status (\d+)")


class MapReduceFailed(RuntimeError):
    def __init__(self, reason: str, report: JobReport) -> None:
        super().__init__(reason)
        self.report = report


def offer_view(offer: dict[str, Any]) -> OfferView:
    scalars: dict[str, float] = {}
    for resource in offer.get("resources") or []:
        if resource.get("type") == "SCALAR":
            scalars[resource["name"]] = scalars.get(resource["name"], 0.0) + float(resource["scalar"]["value"])
    address = (offer.get("url") or {}).get("address") or {}
    host = address.get("ip") or address.get("hostname") or offer.get("hostname", "")
    return OfferView(offer["id"]["value"], offer["agent_id"]["value"], f"http://{host}:{address.get('port', 5051)}",
                     scalars.get("cpus", 0.0), scalars.get("mem", 0.0))


def exit_code(message: str) -> int | None:
    """The command executor's "Command exited with status N", as a number."""
    found = _EXIT.search(message)
    return int(found.group(1)) if found else None


class MapReduceScheduler(Scheduler):
    """The driver's callbacks fed to the tracker; the tracker's effects carried out. ``outcome``
    holds the report (or MapReduceFailed) once the job is over."""

    def __init__(self, spec: JobSpec, tracker: JobTracker, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self.tracker, self.clock = spec, tracker, clock
        self.outcome: asyncio.Future[JobReport] = asyncio.get_running_loop().create_future()
        self.package_root = str(Path(meseta.__file__).resolve().parent.parent)
        self.http = httpx.AsyncClient(timeout=AGENT_TIMEOUT)
        self.background: set[asyncio.Task[None]] = set()
        self.driver: SchedulerDriver | None = None

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        await self.apply(self.tracker.handle_offers([offer_view(o) for o in offers], self.clock()))

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        message = str(status.get("message", ""))
        await self.apply(self.tracker.handle_update(status["task_id"]["value"], status["state"], status.get("reason"),
                                                    exit_code(message), message, self.clock()))

    async def agent_lost(self, driver: SchedulerDriver, agent_id: str) -> None:
        await self.apply(self.tracker.handle_agent_lost(agent_id, self.clock()))

    async def error(self, driver: SchedulerDriver, message: str) -> None:
        self.fail(f"the master says: {message}")

    # ------------------------------------------------------------- effects
    async def apply(self, effects: list[Effect]) -> None:
        assert self.driver is not None
        for effect in effects:
            if isinstance(effect, LaunchTasks):
                await self.launch(effect)
            elif isinstance(effect, Decline):
                await self.quietly(self.driver.decline(list(effect.offer_ids), {"refuse_seconds": REFUSE_SECONDS}))
            elif isinstance(effect, KillTask):
                await self.quietly(self.driver.kill(effect.attempt_id, effect.agent_id))
            elif isinstance(effect, LocateOutput):
                self.in_background(self.locate(effect))
            elif isinstance(effect, CheckOutputs):
                self.in_background(self.check(effect))
            elif isinstance(effect, CommitOutput):
                await self.commit(effect)
            elif isinstance(effect, JobFinished):
                self.finish(effect.report)
            elif isinstance(effect, JobFailed):
                self.fail(effect.reason + await self.stderr_tail(effect))

    async def commit(self, effect: CommitOutput) -> None:
        problem = None
        try:
            files.commit_reduce(self.spec, effect.attempt_id, effect.partition)
        except OSError as exc:  # most likely: the output directory is not shared with that agent
            problem = f"its output cannot be committed ({exc}); is {self.spec.output} shared with the agents?"
        await self.apply(self.tracker.handle_committed(effect.attempt_id, problem, self.clock()))

    def finish(self, report: JobReport) -> None:
        try:
            files.finish_output(self.spec)
        except OSError as exc:
            self.fail(f"output: every partition is in {self.spec.output}, but _SUCCESS could not be written: {exc}")
        if not self.outcome.done():
            self.outcome.set_result(report)

    def fail(self, reason: str) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(MapReduceFailed(reason, self.tracker.report(self.clock())))

    async def launch(self, effect: LaunchTasks) -> None:
        assert self.driver is not None
        try:
            for plan in effect.tasks:
                if plan.kind == "reduce":
                    files.write_reduce_inputs(self.spec, plan.attempt_id, plan.inputs)
        except OSError as exc:
            self.fail(f"output: cannot write in {self.spec.output}: {exc}")
            return
        infos = [task_info(plan, self.spec, effect.agent_id, sys.executable, self.package_root)
                 for plan in effect.tasks]
        try:
            await self.driver.launch([effect.offer_id], infos)
        except (CallError, NotConnected) as exc:  # never reached the agent: the attempts are lost
            for plan in effect.tasks:
                await self.apply(self.tracker.handle_update(plan.attempt_id, "TASK_DROPPED", None, None, str(exc),
                                                            self.clock()))

    @staticmethod
    async def quietly(call: Any) -> None:
        try:
            await call
        except (CallError, NotConnected) as exc:
            log.info("call not made: %s", exc)

    def in_background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def locate(self, effect: LocateOutput) -> None:
        """The attempt's sandbox, from its agent's /state (its executor id is the task id)."""
        sandbox = None
        try:
            state = (await self.http.get(f"{effect.agent_url}/state")).json()
            sandbox = find_sandbox(state, self.tracker_framework_id(), effect.attempt_id)
        except (httpx.HTTPError, ValueError) as exc:
            log.info("sandbox of %s not found: %s", effect.attempt_id, exc)
        await self.apply(self.tracker.handle_located(effect.attempt_id, sandbox, self.clock()))

    async def check(self, effect: CheckOutputs) -> None:
        """Agents that no longer serve a map output are lost, as far as this job is concerned."""
        for place in {p for p in effect.places if p.agent_url is not None}:
            try:
                answer = await self.http.get(f"{place.agent_url}/files/browse", params={"path": place.directory})
                present = answer.status_code == 200
            except httpx.HTTPError:
                present = False
            if not present and place.agent_id is not None:
                await self.apply(self.tracker.handle_agent_lost(place.agent_id, self.clock()))

    async def stderr_tail(self, failed: JobFailed) -> str:
        """The end of the failed attempt's stderr (a traceback, usually), or "" if out of reach."""
        if failed.attempt_id is None or failed.agent_url is None:
            return ""
        try:
            state = (await self.http.get(f"{failed.agent_url}/state")).json()
            sandbox = find_sandbox(state, self.tracker_framework_id(), failed.attempt_id)
            if sandbox is None:
                return ""
            url, path = f"{failed.agent_url}/files/read", f"{sandbox}/stderr"
            size = (await self.http.get(url, params={"path": path, "offset": -1})).json()["offset"]
            start = max(0, size - STDERR_TAIL)
            data = (await self.http.get(url, params={"path": path, "offset": start, "length": STDERR_TAIL})).json()
            return f"\n{path} ends with:\n{data['data']}"
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.info("stderr of %s out of reach: %s", failed.attempt_id, exc)
            return ""

    def tracker_framework_id(self) -> str:
        assert self.driver is not None and self.driver.framework_id is not None
        return self.driver.framework_id

    async def close(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.http.aclose()


def find_sandbox(state: dict[str, Any], framework_id: str, executor_id: str) -> str | None:
    for framework in [*state.get("frameworks", []), *state.get("completed_frameworks", [])]:
        if framework.get("id") != framework_id:
            continue
        for executor in [*framework.get("executors", []), *framework.get("completed_executors", [])]:
            if executor.get("id") == executor_id and executor.get("directory"):
                return str(executor["directory"])
    return None


class MapReduceJob:
    """One job on a cluster: ``start()``, then ``wait()`` for the report (``tracker`` may be read
    meanwhile, on the same loop, to watch progress)."""

    def __init__(self, spec: JobSpec, master: str, name: str = "mapreduce") -> None:
        self.spec, self.master, self.name = spec, master, name
        self.job_id = f"mr{uuid.uuid4().hex[:8]}"
        self.tracker = JobTracker(spec, self.job_id, time.monotonic())
        self.scheduler: MapReduceScheduler | None = None
        self.driver: SchedulerDriver | None = None

    async def start(self) -> None:
        files.prepare_output(self.spec)
        self.scheduler = MapReduceScheduler(self.spec, self.tracker)
        self.driver = SchedulerDriver(self.scheduler, {"user": getpass.getuser(), "name": f"{self.name} {self.job_id}",
                                                       "failover_timeout": FAILOVER_TIMEOUT}, self.master)
        self.scheduler.driver = self.driver
        await self.driver.start()

    async def wait(self) -> JobReport:
        """The report once the job is done (MapReduceFailed if it failed); the framework is torn
        down either way, which kills what still runs."""
        assert self.scheduler is not None and self.driver is not None, "start() first"
        try:
            return await self.scheduler.outcome
        finally:
            with contextlib.suppress(Exception):
                await self.driver.stop()
            await self.scheduler.close()


async def run_job(spec: JobSpec, master: str, name: str = "mapreduce") -> JobReport:
    """Run ``spec`` on the cluster of ``master`` (host:port, URL or zk://); the report, or
    MapReduceFailed. The output directory must not exist or be empty."""
    job = MapReduceJob(spec, master, name)
    await job.start()
    return await job.wait()
