"""The agent's status updates on their way to the scheduler: the only owner of the update streams
(``StatusUpdateManager``), their checkpoint records and the ended runs kept until every update
of theirs is acknowledged (pure; the machine stamps the updates and the actor sends them).

    add(update) --> CheckpointRecord({"update"}) unless a duplicate or the framework does not
                    checkpoint --> one in flight per task
                --> ToMaster(STATUS_UPDATE)
    acknowledge --> CheckpointRecord({"ack"}) --> the next one goes
    retire(run): its tasks wait in ``finished``; once all are acknowledged, ForgetRun (checkpoint gone)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meseta.agent.effects import CheckpointRecord, ForgetRun, RunKey, ToMaster
from meseta.agent.runs import ExecutorRun, TaskRecord
from meseta.agent.status_updates import StatusUpdateManager
from meseta.protocol.ids import id_json


def forward(update: dict[str, Any]) -> ToMaster:
    return ToMaster({"type": "STATUS_UPDATE", "update": update})


class UpdateBook:
    def __init__(self, retry_min: float, retry_max: float) -> None:
        self.streams = StatusUpdateManager(retry_min, retry_max)
        self.finished: dict[tuple[str, str], ExecutorRun] = {}  # (framework, task) -> its ended run

    def add(self, effects: list[Any], run: RunKey | None, framework_id: str, status: dict[str, Any],
            now: float) -> None:
        """Checkpoint one update of a task of ``run`` and hand it to reliable delivery (sent now,
        after its record, if first in line); a duplicate of one still pending is neither. ``run``
        None: no record (a task the agent does not have, or a framework that does not checkpoint),
        and none for its acknowledgements either."""
        update = {"framework_id": id_json(framework_id), "status": status}
        taken, to_send = self.streams.add(framework_id, update, now, where=run)
        if taken and run is not None:
            effects.append(CheckpointRecord(run, status["task_id"]["value"], {"update": update}))
        if to_send is not None:
            effects.append(forward(to_send))

    def replay(self, run: RunKey, task_id: str, records: list[dict[str, Any]], now: float) -> None:
        """Recovery: a task's update stream as it was checkpointed; the unacknowledged stay pending."""
        framework_id = run.framework_id
        for entry in records:
            if "update" in entry:
                self.streams.add(framework_id, entry["update"], now, where=run)
            elif "ack" in entry:
                self.streams.acknowledge(framework_id, task_id, entry["ack"], now)

    def acknowledge(self, effects: list[Any], framework_id: str, task_id: str, uuid: str, now: float) -> None:
        run: RunKey | None = self.streams.where(framework_id, task_id)  # (a terminal ack ends the stream)
        matched, next_update = self.streams.acknowledge(framework_id, task_id, uuid, now)
        if matched:
            if run is not None:
                effects.append(CheckpointRecord(run, task_id, {"ack": uuid}))
            self._forget_if_done(effects, framework_id, task_id)
        if next_update is not None:
            effects.append(forward(next_update))

    def retire(self, effects: list[Any], run: ExecutorRun) -> None:
        """The run has ended: its tasks stay known until their last updates are acknowledged."""
        for task_id in run.tasks:
            self.finished[(run.framework_id, task_id)] = run
            self._forget_if_done(effects, run.framework_id, task_id)

    def due(self, now: float) -> list[ToMaster]:
        return [forward(update) for update in self.streams.due(now)]

    def in_flight(self) -> list[ToMaster]:
        """Every stream's head, to resend after (re-)registering with a master."""
        return [forward(update) for update in self.streams.in_flight()]

    def drop_framework(self, framework_id: str) -> None:
        self.streams.drop_framework(framework_id)

    def has_pending(self, framework_id: str, task_id: str) -> bool:
        return self.streams.has_pending(framework_id, task_id)

    def unacknowledged_ended(self) -> Iterator[tuple[ExecutorRun, TaskRecord]]:
        """Ended tasks whose last updates are not acknowledged yet (a re-registration reports them)."""
        for (framework_id, task_id), run in self.finished.items():
            if task_id in run.tasks and self.streams.has_pending(framework_id, task_id):
                yield run, run.tasks[task_id]

    def _forget_if_done(self, effects: list[Any], framework_id: str, task_id: str) -> None:
        """A finished run whose updates are all acknowledged needs no checkpoint any more."""
        run = self.finished.get((framework_id, task_id))
        if run is None or any(self.streams.has_pending(framework_id, t) for t in run.tasks):
            return
        for other in run.tasks:
            self.finished.pop((framework_id, other), None)
        effects.append(ForgetRun(run.key))
