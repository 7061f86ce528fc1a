"""ACCEPT as the master applies it (spec 1.7), on a record already checked at the edge.

    offers valid? (exist, this framework's, not repeated, one agent, one role)
      no  -> the listed offers that exist go back unfiltered; every task TASK_LOST (TASK_DROPPED
             for partition-aware frameworks), REASON_INVALID_OFFERS
      yes -> offers leave the book; their resources pool; operations apply in order:
             LAUNCH        each task checked against the state (agent, duplicate id, a running
                           executor, the pool): TASK_ERROR, or filed (STAGING) and RUN_TASK sent
             LAUNCH_GROUP  the same for the group as a whole: RUN_TASK_GROUP
             RESERVE/UNRESERVE/CREATE/DESTROY  meseta.master.reservations
             anything else dropped (kept in the master's problems for operators)
           -> what is left of the pool goes back with the framework's filter
"""

from __future__ import annotations

from typing import Any

from meseta.core.resources import EMPTY, Resources
from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, ToAgent
from meseta.master.offers import OfferDesk
from meseta.master.records import Agent, Framework, Offer
from meseta.master.reservations import ReservationOperations
from meseta.master.tasks import TaskDesk
from meseta.master.updates import master_update
from meseta.master.validation import scheduler as calls
from meseta.master.validation.tasks import ExecutorSpec, InvalidTask, LaunchGroupSpec, TaskSpec
from meseta.protocol.ids import id_json


def with_allocation(info: dict[str, Any], role: str) -> dict[str, Any]:
    """Inject the offer's allocation_info into the resources, as the master does."""
    out = dict(info)
    if "resources" in out:
        out["resources"] = [{**r, "allocation_info": {"role": role}} for r in out["resources"] or []]
    return out


def comparable(executor: dict[str, Any]) -> dict[str, Any]:
    """An ExecutorInfo as compared with a running one: without framework_id and resources."""
    return {k: v for k, v in executor.items() if k not in ("framework_id", "resources")}


class LaunchDesk:
    def __init__(self, core: MasterCore, books: Books, offers: OfferDesk, tasks: TaskDesk,
                 reservations: ReservationOperations) -> None:
        self.core, self.books, self.offers, self.tasks, self.reservations = core, books, offers, tasks, reservations

    def accept(self, framework: Framework, call: calls.Accept, now: float) -> list[Effect]:
        self.core.count("messages_accept_offers")
        effects: list[Effect] = []
        offers, problem = self._offers(framework, call.offer_ids)
        if problem is not None:
            for offer in offers:
                effects += self.offers.rescind(offer, notify=False)
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            effects += [master_update(framework.id, task_id, state, "REASON_INVALID_OFFERS",
                                      f"Task launched with invalid offers: {problem}") for task_id in call.task_ids()]
            self.core.request_allocation(effects, now)
            return effects
        agent, role = self.books.agents.registered[offers[0].agent_id], offers[0].role
        pool = EMPTY
        for offer in offers:
            pool = pool + offer.resources
            self.offers.take(offer)
        for operation in call.operations:
            pool, more = self._apply(framework, agent, role, pool, operation)
            effects += more
        self.core.allocator.recover(framework.id, role, agent.id, pool, call.refuse_seconds, now)
        self.core.request_allocation(effects, now, agent.id)
        return effects

    def _offers(self, framework: Framework, offer_ids: tuple[str, ...]) -> tuple[list[Offer], str | None]:
        book = self.books.offers
        found = [o for o in (book.get(i) for i in dict.fromkeys(offer_ids)) if o is not None]
        mine = [o for o in found if o.framework_id == framework.id]
        if not offer_ids:
            return mine, "No offers specified"
        if len(set(offer_ids)) != len(offer_ids):
            return mine, "Duplicate offer ids"
        for offer_id in offer_ids:
            offer = book.get(offer_id)
            if offer is None:
                return mine, f"Offer {offer_id} is no longer valid"
            if offer.framework_id != framework.id:
                return mine, f"Offer {offer_id} has invalid framework"
        if len({o.agent_id for o in mine}) > 1:
            return mine, "Aggregated offers must belong to one single agent"
        if len({o.role for o in mine}) > 1:
            return mine, "Aggregated offers must be allocated to the same role"
        return mine, None

    def _apply(self, framework: Framework, agent: Agent, role: str, pool: Resources,
               operation: calls.Operation) -> tuple[Resources, list[Effect]]:
        if isinstance(operation, calls.Launch):
            effects: list[Effect] = []
            for task in operation.tasks:
                pool, more = self._launch_task(framework, agent, role, pool, task)
                effects += more
            return pool, effects
        if isinstance(operation, calls.LaunchGroup):
            return self._launch_group(framework, agent, role, pool, operation.group)
        return self.reservations.apply_offer_operation(framework, agent, role, pool, operation)

    # ------------------------------------------------------------- LAUNCH
    def _launch_task(self, framework: Framework, agent: Agent, role: str, pool: Resources,
                     task: TaskSpec | InvalidTask) -> tuple[Resources, list[Effect]]:
        self.core.count("messages_launch_tasks")
        checked = task.message if isinstance(task, InvalidTask) else self._check(framework, agent, pool, task)
        if isinstance(checked, str):
            return pool, [master_update(framework.id, task.id, "TASK_ERROR", "REASON_TASK_INVALID", checked)]
        assert isinstance(task, TaskSpec)
        info = with_allocation(task.raw, role)
        executor_id = ""
        if task.executor is not None:
            executor = self._executor_json(framework, task.executor, role)
            executor_id = task.executor.id
            info["executor"] = executor
            self.tasks.add_executor(framework, agent.id, role, executor_id, executor, task.executor.resources)
        self.tasks.add_task(framework, agent, role, info, executor_id, task.resources)
        return pool - checked, [ToAgent(agent.id, {"type": "RUN_TASK", "framework_info": framework.info,
                                                   "task": info})]

    def _check(self, framework: Framework, agent: Agent, pool: Resources, task: TaskSpec) -> str | Resources:
        """What the task takes from the pool (with a new executor's), or why it cannot run here."""
        if task.agent_id != agent.id:
            return f"Task uses agent_id '{task.agent_id}', not the offer's agent '{agent.id}'"
        if task.id in framework.tasks:
            return f"Task has duplicate ID: {task.id}"
        needed = task.resources
        if task.executor is not None:
            problem = self._executor_problem(framework, agent, task.executor)
            if problem:
                return problem
            if not self._runs(framework, agent, task.executor):
                needed = needed + task.executor.resources
        if not pool.contains(needed):
            return f"Task uses more resources {needed.to_text()} than available {pool.to_text()}"
        return needed

    def _runs(self, framework: Framework, agent: Agent, executor: ExecutorSpec) -> bool:
        return executor.id in framework.executors.get(agent.id, {})

    def _executor_problem(self, framework: Framework, agent: Agent, executor: ExecutorSpec) -> str | None:
        given_framework = executor.raw.get("framework_id")
        if given_framework is not None and given_framework != id_json(framework.id):
            return f"ExecutorInfo has an invalid FrameworkID (expected '{framework.id}')"
        known = framework.executors.get(agent.id, {}).get(executor.id)
        given = {**executor.raw, "framework_id": id_json(framework.id)}
        if known is not None and comparable(known.info) != comparable(given):
            return "ExecutorInfo is not compatible with the ExecutorInfo of the running executor"
        return None

    def _executor_json(self, framework: Framework, executor: ExecutorSpec, role: str) -> dict[str, Any]:
        """The ExecutorInfo sent to the agent: its framework_id filled in, allocation injected."""
        return with_allocation({**executor.raw, "framework_id": id_json(framework.id)}, role)

    # ------------------------------------------------------------- LAUNCH_GROUP
    def _launch_group(self, framework: Framework, agent: Agent, role: str, pool: Resources,
                      group: LaunchGroupSpec) -> tuple[Resources, list[Effect]]:
        self.core.count("messages_launch_tasks")
        problem = group.problem or self._group_problem(framework, agent, pool, group)
        if problem or group.executor is None:
            return pool, [master_update(framework.id, task_id, "TASK_ERROR", "REASON_TASK_GROUP_INVALID",
                                        problem or "'launch_group.executor' is required")
                          for task_id in group.task_ids]
        executor = group.executor
        executor_json = self._executor_json(framework, executor, role)
        if not self._runs(framework, agent, executor):
            pool = pool - executor.resources
            self.tasks.add_executor(framework, agent.id, role, executor.id, executor_json, executor.resources)
        launched = []
        for task in group.tasks:
            assert isinstance(task, TaskSpec)
            info = with_allocation(task.raw, role)
            pool = pool - task.resources
            self.tasks.add_task(framework, agent, role, info, executor.id, task.resources)
            launched.append(info)
        message = {"type": "RUN_TASK_GROUP", "framework_info": framework.info, "executor": executor_json,
                   "task_group": {"tasks": launched}}
        return pool, [ToAgent(agent.id, message)]

    def _group_problem(self, framework: Framework, agent: Agent, pool: Resources, group: LaunchGroupSpec) -> str | None:
        executor = group.executor
        assert executor is not None
        problem = self._executor_problem(framework, agent, executor)
        if problem:
            return problem
        needed = EMPTY if self._runs(framework, agent, executor) else executor.resources
        for task in group.tasks:
            assert isinstance(task, TaskSpec)
            if task.agent_id != agent.id:
                return f"Task uses agent_id '{task.agent_id}', not the offer's agent '{agent.id}'"
            if task.id in framework.tasks:
                return f"Task has duplicate ID: {task.id}"
            needed = needed + task.resources
        if not pool.contains(needed):
            return f"Task group uses more resources {needed.to_text()} than available {pool.to_text()}"
        return None
