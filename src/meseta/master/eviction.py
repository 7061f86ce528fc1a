"""The one way an agent leaves the registered agents: unreachable, gone, or removed (DOWN).

    evict(agent, task state for partition-aware frameworks, reason, message, shutdown?)
      offers on it rescinded; out of the allocator; its tasks: already terminal -> completed,
      partition-aware -> the given state (TASK_UNREACHABLE ones kept as unreachable tasks),
      the others -> TASK_LOST with REASON_AGENT_REMOVED; its executors forgotten;
      FAILURE {agent_id} to every connected framework; SHUTDOWN (if asked) and the stream closed
"""

from __future__ import annotations

from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import CancelTimer, CloseAgentStream, Effect, Persist, RemoveAgent, ToAgent, ToFramework
from meseta.master.offers import OfferDesk
from meseta.master.records import Agent, Framework, Task
from meseta.master.updates import master_update
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL


class Eviction:
    def __init__(self, core: MasterCore, books: Books, offers: OfferDesk) -> None:
        self.core, self.books, self.offers = core, books, offers

    def remove(self, agent: Agent, now: float, reason: str, message: str) -> list[Effect]:
        """Out of the cluster for good without a trace (its machine is DOWN): it must start afresh."""
        effects = self.evict(agent, now, aware_state="TASK_GONE_BY_OPERATOR", reason=reason, message=message,
                             shutdown=True)
        return [*effects, Persist(RemoveAgent(agent.id))]

    def evict(self, agent: Agent, now: float, *, aware_state: str, reason: str, message: str,
              shutdown: bool) -> list[Effect]:
        self.core.count("slave_removals")
        effects = self.offers.rescind_agent(agent.id)
        for task in self.books.frameworks.tasks_on(agent.id):
            framework = self.books.frameworks.by_id[task.framework_id]
            effects += self._evict_task(framework, task, aware_state, reason, message, now)
        for framework in self.books.frameworks:
            self.books.frameworks.remove_executors_on(framework, agent.id)
        effects += self.failure(agent.id)
        self.core.allocator.remove_agent(agent.id)
        self.books.agents.remove(agent.id)
        if agent.stream_id:
            if shutdown:
                effects.append(ToAgent(agent.id, {"type": "SHUTDOWN", "shutdown": {"message": message}}))
            effects.append(CloseAgentStream(agent.id, agent.stream_id))
        effects.append(CancelTimer(("ping", agent.id)))
        return effects

    def _evict_task(self, framework: Framework, task: Task, aware_state: str, reason: str, message: str,
                    now: float) -> list[Effect]:
        task.released = True  # the allocator forgets the whole agent
        frameworks = self.books.frameworks
        if task.state in TERMINAL:  # the framework has heard the end already
            frameworks.complete_task(framework, task)
            return []
        state = aware_state if framework.partition_aware else "TASK_LOST"
        since = now if aware_state == "TASK_UNREACHABLE" else None
        reason = reason if state == aware_state else "REASON_AGENT_REMOVED"  # TASK_LOST, for all causes
        frameworks.set_state(task, state, update_state=state, unreachable_time=since, why=(reason, message))
        self.core.count(state.lower())
        if state == "TASK_UNREACHABLE":
            frameworks.keep_unreachable(framework, task)
        else:
            frameworks.complete_task(framework, task)
        if not framework.connected:
            return []
        return [master_update(framework.id, task.task_id, state, reason, message, task.agent_id, since)]

    def failure(self, agent_id: str) -> list[Effect]:
        """FAILURE {agent_id}: every connected framework hears the agent is lost."""
        return [ToFramework(f.id, {"type": "FAILURE", "failure": {"agent_id": id_json(agent_id)}})
                for f in self.books.frameworks if f.connected]
