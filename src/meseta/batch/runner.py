"""The asyncio shell of ``meseta submit``: a Mesos framework that runs one job and goes away.

Lifecycle (``run_batch``)::

    SUBSCRIBE (name = --name, role = --role, failover_timeout FAILOVER_TIMEOUT)
      subscribed again (master failover) -> RECONCILE the launched tasks
      OFFERS   -> BatchBook.plan -> LAUNCH as many tasks per offer as fit (leftovers refused for
                  LEFTOVER_REFUSE_SECONDS); offers taking none: DECLINE (DECLINE_REFUSE_SECONDS)
                  nothing launchable (all placed, or --max-parallel reached) -> SUPPRESS
      UPDATE   -> BatchBook.handle_update (acknowledged by the driver) -> outputs: follow / fetch;
                  a retry, or room under --max-parallel again -> REVIVE
      every second: tasks pending but unplaced for WAIT_REPORT_SECONDS, or no master -> say why
    all tasks done -> outputs fetched and printed -> TEARDOWN -> exit code (BatchBook.exit_code)
    cancelled (Ctrl-C, SIGTERM) -> TEARDOWN (the master kills every task of the run) -> INTERRUPTED

Launch, decline and acknowledge calls run in the background on the driver's keep-alive
connections, so that event handling never waits for a round trip.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from meseta.batch.job import Job
from meseta.batch.offers import agent_address
from meseta.batch.outputs import Outputs
from meseta.batch.plan import BatchBook, Launch, OfferPlan, waiting_report
from meseta.batch.tasks import build_task_info, task_id_of
from meseta.batch.terminal import Terminal
from meseta.client import CallError, NotConnected, Scheduler, SchedulerDriver

log = logging.getLogger(__name__)

DECLINE_REFUSE_SECONDS = 2.0  # an offer no task fits now: soon again (tasks end, retries come back)
LEFTOVER_REFUSE_SECONDS = 2.0  # what a launch left over; the agent's next freed resources still come
IDLE_REFUSE_SECONDS = 30.0  # offers while nothing is launchable (SUPPRESS is on its way; REVIVE clears it)
WAIT_REPORT_SECONDS = 10.0  # pending tasks unplaced this long are reported, and again every REPORT_EVERY
REPORT_EVERY = 30.0
INTERRUPTED = 130  # the shell's code for a run ended by SIGINT
FAILOVER_TIMEOUT = 60.0  # a master failover (or a brief loss of the stream) does not kill the run;
#                          a submit killed with -9 leaves its tasks this long before the master kills them


class BatchScheduler(Scheduler):
    def __init__(self, job: Job, book: BatchBook, outputs: Outputs, terminal: Terminal,
                 report_after: float = WAIT_REPORT_SECONDS) -> None:
        self.job, self.book, self.outputs, self.terminal = job, book, outputs, terminal
        self.report_after = report_after
        self.loop = asyncio.get_running_loop()
        self.finished = asyncio.Event()
        self.suppressed = False
        self.calls: set[asyncio.Task[None]] = set()
        self.last_placed = self.loop.time()  # or the last time nothing was waiting
        self.reasons: dict[str, str] = {}
        self.offers_seen = 0
        self.failure: str | None = None

    def _background(self, call: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(call)
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)

    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None:
        self.outputs.framework_id = framework_id

    async def reregistered(self, driver: SchedulerDriver, master_info: dict[str, Any]) -> None:
        """Subscribed again (a new leading master): ask where every launched task stands."""
        tasks = [{"task_id": {"value": task_id}, "agent_id": {"value": agent_id}}
                 for task_id, agent_id in self.book.launched_ids()]
        self._background(self._reconcile(driver, tasks))
        self.suppressed = False  # a new master knows nothing of an earlier SUPPRESS
        await self._suppress_or_revive(driver)

    async def _reconcile(self, driver: SchedulerDriver, tasks: list[dict[str, Any]]) -> None:
        try:
            await driver.reconcile(tasks)
        except (CallError, NotConnected) as exc:
            log.info("reconciliation not sent: %s", exc)

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        self.offers_seen += len(offers)
        for offer in offers:
            self.outputs.note_agent(str(offer["agent_id"]["value"]), agent_address(offer))
        if self.book.capacity() == 0:
            self._background(self._decline(driver, [str(o["id"]["value"]) for o in offers], IDLE_REFUSE_SECONDS))
            await self._suppress_or_revive(driver)
            return
        plan = self.book.plan(offers)
        self._carry_out(driver, plan)
        await self._suppress_or_revive(driver)

    def _carry_out(self, driver: SchedulerDriver, plan: OfferPlan) -> None:
        for launch in sorted((la for ls in plan.launches.values() for la in ls), key=lambda la: la.index):
            self.book.launched(launch)  # in the walk's (index) order, as launched() expects
        for offer_id, launches in plan.launches.items():
            tasks = [build_task_info(self.job, self.book.run_id, la.index, la.attempt, la.agent_id, la.resources)
                     for la in launches]
            self._background(self._launch(driver, offer_id, tasks, launches))
        if plan.launches:
            self.last_placed = self.loop.time()
            self.reasons.clear()
        self.reasons.update(plan.reasons)
        if plan.unused:
            self._background(self._decline(driver, plan.unused, DECLINE_REFUSE_SECONDS))
        self._show()

    async def _launch(self, driver: SchedulerDriver, offer_id: str, tasks: list[dict[str, Any]],
                      launches: list[Launch]) -> None:
        try:
            await driver.launch([offer_id], tasks, {"refuse_seconds": LEFTOVER_REFUSE_SECONDS})
        except (CallError, NotConnected) as exc:  # the master has not got them: they are lost
            for launch in launches:
                task_id = task_id_of(self.book.run_id, launch.index, launch.attempt)
                await self.status_update(driver, {"task_id": {"value": task_id}, "state": "TASK_LOST",
                                                  "message": f"the launch call failed: {exc}"})

    async def _decline(self, driver: SchedulerDriver, offer_ids: list[str], seconds: float) -> None:
        try:
            await driver.decline(offer_ids, {"refuse_seconds": seconds})
        except (CallError, NotConnected) as exc:  # the offers time out or go with the subscription
            log.info("decline not sent: %s", exc)

    async def _suppress_or_revive(self, driver: SchedulerDriver) -> None:
        want = self.book.capacity() > 0 and not self.finished.is_set()
        if want == (not self.suppressed):
            return
        try:
            await (driver.revive() if want else driver.suppress())
            self.suppressed = not want
        except (CallError, NotConnected) as exc:
            log.info("%s not sent: %s", "REVIVE" if want else "SUPPRESS", exc)

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        outcome = self.book.handle_update(status)
        if outcome.kind == "stale":
            return
        slot = self.book.slots[outcome.index]
        task_id = task_id_of(self.book.run_id, outcome.index, outcome.attempt)
        agent_id = slot.agent_id or ""
        if outcome.kind == "started":
            self.outputs.on_started(outcome.index, task_id, agent_id)
        elif outcome.kind == "retry":
            self.terminal.note(f"task {outcome.index} failed ({slot.message}); retry "
                               f"{outcome.attempt + 1} of {self.job.retries}")
            self.outputs.on_ended(outcome.index, task_id, agent_id, final=False)
        else:
            self.outputs.on_ended(outcome.index, task_id, agent_id, final=True)
            if outcome.exit_code and self.job.count > 1:
                self.terminal.note(f"task {outcome.index} failed: {slot.message}")
        if self.book.finished():
            self.finished.set()
        if not self.book.pending():
            self.last_placed = self.loop.time()
        self._show()
        await self._suppress_or_revive(driver)

    async def error(self, driver: SchedulerDriver, message: str) -> None:
        self.failure = f"the master refused the framework: {message}"
        self.finished.set()

    def _show(self) -> None:
        self.terminal.show(self.book.done, self.book.phases)

    def report_waiting(self, driver: SchedulerDriver, master: str, now: float, last_report: float) -> float:
        """Say why tasks wait (or that there is no master); the time of the last report."""
        if now - last_report < max(REPORT_EVERY, self.report_after):
            return last_report
        if not driver.connected and now - self.last_placed >= self.report_after:
            self.terminal.note(f"not subscribed to the master at {master}: {driver.last_error}")
            return now
        if self.book.capacity() > 0 and now - self.last_placed >= self.report_after:
            self.terminal.note(waiting_report(self.book.pending(), now - self.last_placed, self.reasons,
                                              self.offers_seen))
            return now
        return last_report


async def run_batch(job: Job, master: str, terminal: Terminal, *, follow: bool, fetch: bool,
                    report_after: float = WAIT_REPORT_SECONDS) -> int:
    """Run ``job`` on the cluster at ``master`` to its end; the exit code (INTERRUPTED if cancelled)."""
    book = BatchBook(job, f"submit-{uuid.uuid4().hex[:12]}")
    outputs = Outputs(terminal, job.count, follow=follow, fetch=fetch)
    scheduler = BatchScheduler(job, book, outputs, terminal, report_after)
    info = {"user": _user(), "name": job.name, "role": job.role, "failover_timeout": FAILOVER_TIMEOUT}
    driver = SchedulerDriver(scheduler, info, master)
    await driver.start()
    try:
        last_report = -float("inf")
        while not scheduler.finished.is_set():
            try:
                await asyncio.wait_for(scheduler.finished.wait(), 1.0)
            except TimeoutError:
                last_report = scheduler.report_waiting(driver, master, asyncio.get_running_loop().time(),
                                                       last_report)
        await outputs.close()
    except asyncio.CancelledError:
        running = len(book.active)
        terminal.note(f"interrupted: tearing the framework down ({running} task(s) still running are killed)")
        await outputs.cancel()
        await driver.stop()
        return INTERRUPTED
    await driver.stop()
    if scheduler.failure is not None:
        terminal.note(scheduler.failure)
        return 1
    return book.exit_code()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's uid)
        return ""
