"""Tasks and executors as the master tracks them: filed at launch, moved by status updates, killed,
acknowledged and reconciled; messages between schedulers and executors pass through here.

    launched: add_task (STAGING, resources held by the allocator) [+ add_executor]
    STATUS_UPDATE from the agent: state and history recorded, forwarded to the framework;
        terminal -> release (resources back to the allocator)
    ACKNOWLEDGE of that terminal update -> complete (the framework's completed tasks)
    KILL / SHUTDOWN / MESSAGE -> the agent (a KILL for a disconnected agent waits for it)
    RECONCILE -> the latest state of known tasks; unknown ones by where their agent stands
"""

from __future__ import annotations

from typing import Any

from meseta.core.resources import Resources
from meseta.master.books import Books, Standing
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, ToAgent, ToFramework
from meseta.master.records import Agent, ExecutorRecord, Framework, Task
from meseta.master.updates import reconcile_known, reconcile_unknown
from meseta.master.validation import agents as agent_calls
from meseta.master.validation import scheduler as calls
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL


class TaskDesk:
    def __init__(self, core: MasterCore, books: Books) -> None:
        self.core, self.books = core, books

    # ------------------------------------------------------------- filing
    def add_executor(self, framework: Framework, agent_id: str, role: str, executor_id: str, info: dict[str, Any],
                     resources: Resources) -> ExecutorRecord:
        """The executor's record on the agent (the first launch with it files it)."""
        known = framework.executors.get(agent_id, {}).get(executor_id)
        if known is not None:
            return known
        record = ExecutorRecord(info, resources, role)
        self.books.frameworks.add_executor(framework, agent_id, executor_id, record)
        return record

    def add_task(self, framework: Framework, agent: Agent, role: str, info: dict[str, Any], executor_id: str,
                 resources: Resources, state: str = "TASK_STAGING") -> Task:
        task = Task(info, framework.id, agent.id, executor_id, role, resources, state)
        self.books.frameworks.add_task(framework, task)
        self.core.count("tasks_staging")
        return task

    def release(self, task: Task) -> None:
        """Its resources go back to the allocator (once)."""
        if not task.released:
            task.released = True
            self.core.allocator.recover(task.framework_id, task.role, task.agent_id, task.resources)

    def complete(self, framework: Framework, task: Task) -> None:
        self.books.frameworks.complete_task(framework, task)

    def end(self, framework: Framework, task: Task, state: str, why: tuple[str, str] = ("", "")) -> None:
        """A state the master decides for a live task (lost, dropped, killed) and ``why`` (reason,
        message): released, counted."""
        self.release(task)
        self.books.frameworks.set_state(task, state, why=why)
        self.core.count(state.lower())

    # ------------------------------------------------------------- status updates from agents
    def status_update(self, agent_id: str, update: agent_calls.StatusUpdate, now: float) -> list[Effect]:
        """An update forwarded by an agent's status update manager (it carries a uuid)."""
        framework = self.books.frameworks.get(update.framework_id)
        if framework is None or self.books.agents.get(agent_id) is None:
            self.core.count("invalid_status_updates")
            return []
        task = framework.tasks.get(update.task_id)
        if task is not None and task.agent_id != agent_id:  # only a task's own agent speaks for it
            self.core.count("invalid_status_updates")
            self.core.log_problem(f"agent {agent_id} sent an update for task {update.task_id} of agent {task.agent_id}")
            return []
        self.core.count("valid_status_updates")
        effects: list[Effect] = []
        status = {**update.status, "agent_id": id_json(agent_id)}  # the task's own agent (checked above)
        if task is not None:
            effects += self._apply(task, update, status, now)
        if framework.connected:
            effects.append(ToFramework(framework.id, {"type": "UPDATE", "update": {"status": status}}))
        return effects

    def _apply(self, task: Task, update: agent_calls.StatusUpdate, status: dict[str, Any],
               now: float) -> list[Effect]:
        previous = task.state
        timestamp = update.status.get("timestamp")
        entry: dict[str, Any] = {"state": update.state,
                                 "timestamp": timestamp if isinstance(timestamp, int | float) else now}
        if isinstance(update.status.get("healthy"), bool):
            entry["healthy"] = update.status["healthy"]
        container = update.status.get("container_status")
        if isinstance(container, dict) and container:  # where mesos-dns and marathon-lb read a task's IPs
            entry["container_status"] = container
        self.books.frameworks.apply_status(task, update.latest_state or update.state, update.state, update.uuid,
                                           status, entry)
        if previous != task.state:
            self.core.count(task.state.lower())
        effects: list[Effect] = []
        if task.state in TERMINAL and not task.released:
            self.release(task)
            self.core.request_allocation(effects, now, task.agent_id)
        return effects

    def acknowledge(self, framework: Framework, ack: calls.Acknowledge) -> list[Effect]:
        self.core.count("messages_status_update_acknowledgement")
        task = framework.tasks.get(ack.task_id)
        if task is not None and task.status_update_uuid == ack.uuid and task.status_update_state in TERMINAL:
            self.complete(framework, task)
        if self.books.agents.get(ack.agent_id) is None:
            return []
        message = {"type": "ACKNOWLEDGE", "framework_id": id_json(framework.id), "task_id": id_json(ack.task_id),
                   "uuid": ack.uuid}
        return [ToAgent(ack.agent_id, message)]

    # ------------------------------------------------------------- framework calls to agents
    def kill(self, framework: Framework, kill: calls.Kill) -> list[Effect]:
        self.core.count("messages_kill_task")
        task = framework.tasks.get(kill.task_id)
        if task is None:
            return self._reconcile_unknown(framework, kill.task_id, None)
        agent = self.books.agents.get(task.agent_id)
        if agent is None:
            return []
        message: dict[str, Any] = {"type": "KILL_TASK", "framework_id": id_json(framework.id),
                                   "task_id": id_json(kill.task_id)}
        if kill.kill_policy is not None:
            message["kill_policy"] = kill.kill_policy
        if not agent.connected:  # Mesos retries the kill when the agent re-registers
            agent.pending_kills[(framework.id, kill.task_id)] = message
            return []
        return [ToAgent(agent.id, message)]

    def shutdown(self, framework: Framework, shutdown: calls.Shutdown) -> list[Effect]:
        if self.books.agents.get(shutdown.agent_id) is None:
            return []
        message = {"type": "SHUTDOWN_EXECUTOR", "framework_id": id_json(framework.id),
                   "executor_id": id_json(shutdown.executor_id)}
        return [ToAgent(shutdown.agent_id, message)]

    def framework_message(self, framework: Framework, message: calls.FrameworkMessage) -> list[Effect]:
        self.core.count("messages_framework_to_executor")
        if self.books.agents.get(message.agent_id) is None:
            return []
        return [ToAgent(message.agent_id, {"type": "FRAMEWORK_MESSAGE", "framework_id": id_json(framework.id),
                                           "executor_id": id_json(message.executor_id), "data": message.data})]

    # ------------------------------------------------------------- executors' traffic from agents
    def executor_message(self, agent_id: str, message: agent_calls.ExecutorMessage) -> list[Effect]:
        framework = self.books.frameworks.get(message.framework_id)
        self.core.count("messages_executor_to_framework")
        if framework is None or not framework.connected:
            return []
        payload = {"agent_id": id_json(agent_id), "executor_id": id_json(message.executor_id), "data": message.data}
        return [ToFramework(framework.id, {"type": "MESSAGE", "message": payload})]

    def executor_exited(self, agent_id: str, exited: agent_calls.ExecutorExited, now: float) -> list[Effect]:
        framework = self.books.frameworks.get(exited.framework_id)
        if framework is None:
            return []
        record = self.books.frameworks.remove_executor(framework, agent_id, exited.executor_id)
        effects: list[Effect] = []
        if record is not None:
            self.core.allocator.recover(framework.id, record.role, agent_id, record.resources)
            self.core.request_allocation(effects, now, agent_id)
        if exited.custom and framework.connected:
            failure = {"agent_id": id_json(agent_id), "executor_id": id_json(exited.executor_id),
                       "status": exited.status}
            effects.append(ToFramework(framework.id, {"type": "FAILURE", "failure": failure}))
        return effects

    # ------------------------------------------------------------- reconciliation
    def reconcile(self, framework: Framework, reconcile: calls.Reconcile) -> list[Effect]:
        self.core.count("messages_reconcile_tasks")
        if not reconcile.tasks:
            known = [*framework.tasks.values(), *framework.unreachable_tasks.values()]
            return [reconcile_known(framework.id, t) for t in known]
        effects: list[Effect] = []
        for task_id, agent_id in reconcile.tasks:
            task = framework.tasks.get(task_id)
            if task is not None:
                effects.append(reconcile_known(framework.id, task))
            else:
                effects += self._reconcile_unknown(framework, task_id, agent_id)
        return effects

    def _reconcile_unknown(self, framework: Framework, task_id: str, agent_id: str | None) -> list[Effect]:
        unreachable = framework.unreachable_tasks.get(task_id)
        if unreachable is not None:
            return [reconcile_known(framework.id, unreachable)]
        agents = self.books.agents
        if agent_id is None:
            if agents.recovered:
                return []  # any recovered agent may still re-register with it: say nothing yet
            standing = "unknown"
        else:
            where = agents.standing(agent_id)
            if where is Standing.RECOVERED:
                return []
            standing = {Standing.REGISTERED: "registered", Standing.UNREACHABLE: "unreachable",
                        Standing.GONE: "gone"}.get(where, "unknown")
        since = agents.unreachable.get(agent_id) if agent_id is not None else None
        return [reconcile_unknown(framework.id, framework.partition_aware, task_id, agent_id, standing, since)]
