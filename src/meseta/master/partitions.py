"""Unreachable and gone agents, Mesos 1.5+ partition semantics (pure, composed into the machine).

Registry first, then act: every move below is a registry write (``Persist``), and the master
changes its view and tells frameworks only once the write is done (``handle_persisted``), so no
framework ever hears of a move a newly elected master would not recover. Until then the agent
keeps its place (it is still offered, pinged, reconciled as before)::

    REGISTERED --max_agent_ping_timeouts missed PONGs------------------+
    recovered (admitted before a failover) --agent_reregister_timeout--+  (Abort instead if more than
                                                                       |   recovery_agent_removal_limit
                                                                       v   of the recovered would go)
      queued: agent_removal_rate_limit, at most N marks in any window  --PONG / REREGISTER--> as before
                                                                       | its turn
                                                                       v
      marking: Persist(MarkAgentUnreachable(id, now))      a REREGISTER now waits for the write
                                                                       | persisted
                                                                       v
      UNREACHABLE: offers rescinded, out of the allocator, stream closed (no SHUTDOWN); FAILURE to
      every connected framework; partition-aware tasks TASK_UNREACHABLE (kept as unreachable tasks,
      with unreachable_time), the others TASK_LOST; reason REASON_AGENT_REMOVED
                                                                       | REREGISTER
                                                                       v
      readmitting: Persist(AdmitAgent) --persisted--> REREGISTERED: the tasks of partition-aware
      frameworks are adopted as the agent reports them (unreachable tasks it no longer has become
      TASK_GONE); the other frameworks were told TASK_LOST, so they get SHUTDOWN_FRAMEWORK there

    MARK_AGENT_GONE (registered, recovered or unreachable) -> Persist(MarkAgentGone) --persisted-->
      GONE: tasks TASK_GONE_BY_OPERATOR (partition-aware) or TASK_LOST; FAILURE; SHUTDOWN and the
      stream closed. A gone agent that re-registers is told SHUTDOWN and never admitted again.
"""

from __future__ import annotations

from collections import deque

from meseta.master.books import Books, Parked
from meseta.master.core import MasterCore
from meseta.master.effects import (
    Abort,
    AdmitAgent,
    CloseAgentStream,
    Effect,
    MarkAgentGone,
    MarkAgentUnreachable,
    Persist,
    StartTimer,
    ToAgent,
)
from meseta.master.eviction import Eviction
from meseta.master.records import Framework, Task
from meseta.master.updates import master_update
from meseta.master.validation.agents import ReportedTask, Reregistration
from meseta.master.validation.errors import CallRejected

MARK_TIMER = ("mark-unreachable",)  # the rate limiter's next free slot
REREGISTER_TIMER = ("reregister-timeout",)  # recovered agents' deadline, from when the master leads
GONE_REASON = "REASON_AGENT_REMOVED_BY_OPERATOR"  # TASK_GONE_BY_OPERATOR; TASK_LOST says REASON_AGENT_REMOVED


def shutdown_agent(agent_id: str, stream_id: str, message: str) -> list[Effect]:
    """Refuse an agent for good: it shuts its frameworks down and forgets its id."""
    return [ToAgent(agent_id, {"type": "SHUTDOWN", "shutdown": {"message": message}}),
            CloseAgentStream(agent_id, stream_id)]


class RemovalPacer:
    """``--agent_removal_rate_limit``: at most ``count`` marks in any ``seconds``-long window, the
    rest waiting in arrival order. ``recent`` holds the times of the last ``count`` marks, so the
    next one may go once the oldest of them is ``seconds`` old. No limit: everything goes at once."""

    def __init__(self, limit: tuple[int, float] | None) -> None:
        self.limit = limit
        self.queue: dict[str, str] = {}  # agent id -> why, oldest first
        self.recent: deque[float] = deque(maxlen=limit[0] if limit else 1)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self.queue

    def add(self, agent_id: str, why: str) -> None:
        self.queue.setdefault(agent_id, why)

    def cancel(self, agent_id: str) -> bool:
        return self.queue.pop(agent_id, None) is not None

    def take(self, now: float) -> list[tuple[str, str]]:
        """The marks that may go now, in order; each one uses up its slot."""
        out: list[tuple[str, str]] = []
        while self.queue and self._free(now):
            agent_id = next(iter(self.queue))
            out.append((agent_id, self.queue.pop(agent_id)))
            if self.limit is not None:
                self.recent.append(now)
        return out

    def _free(self, now: float) -> bool:
        if self.limit is None or len(self.recent) < self.limit[0]:
            return True
        return now >= self.recent[0] + self.limit[1]

    def next_at(self) -> float | None:
        """When the next queued mark may go (None: nothing waits)."""
        if not self.queue or self.limit is None or len(self.recent) < self.limit[0]:
            return None
        return self.recent[0] + self.limit[1]


class Partitions:
    """Marks agents unreachable and gone (registry first) and parks the unreachable ones that come
    back until the registry admits them; the AgentBook holds every set it moves agents between."""

    def __init__(self, core: MasterCore, books: Books, eviction: Eviction) -> None:
        self.core, self.books, self.eviction = core, books, eviction
        self.pacer = RemovalPacer(core.config.agent_removal_rate_limit)
        self.recovered_total = len(books.agents.recovered)

    # ------------------------------------------------------------- marking unreachable
    def start(self, now: float) -> list[Effect]:
        if not self.books.agents.recovered:
            return []
        return [StartTimer(REREGISTER_TIMER, now + self.core.config.agent_reregister_timeout)]

    def recovery_timed_out(self, now: float) -> list[Effect]:
        agents = self.books.agents
        late = sorted(a for a in agents.recovered if a not in agents.marking_gone)
        if not late:
            return []
        total = max(self.recovered_total, len(late))
        limit = self.core.config.recovery_agent_removal_limit
        if len(late) / total > limit:
            return [Abort(f"Post-recovery agent removal limit exceeded: {len(late)} of {total} recovered agents "
                          f"did not re-register within {self.core.config.agent_reregister_timeout:g} s "
                          f"(recovery_agent_removal_limit {limit:.0%})")]
        effects: list[Effect] = []
        for agent_id in late:
            effects += self.schedule(agent_id, "Agent did not re-register after a master failover", now)
        return effects

    def schedule(self, agent_id: str, why: str, now: float) -> list[Effect]:
        """Mark the agent unreachable as soon as the rate limit allows."""
        if self.books.agents.is_being_marked(agent_id) or agent_id in self.pacer:
            return []
        self.core.count("slave_unreachable_scheduled")
        self.pacer.add(agent_id, why)
        return self.pump(now)

    def cancel(self, agent_id: str) -> None:
        """The agent answered (PONG) or came back (REREGISTER) while it waited for its turn."""
        if self.pacer.cancel(agent_id):
            self.core.count("slave_unreachable_canceled")

    def pump(self, now: float) -> list[Effect]:
        agents = self.books.agents
        effects: list[Effect] = []
        for agent_id, why in self.pacer.take(now):
            if agent_id in agents.registered or agent_id in agents.recovered:
                agents.mark_unreachable_started(agent_id, why)
                effects.append(Persist(MarkAgentUnreachable(agent_id, now)))
        at = self.pacer.next_at()
        if at is not None:
            effects.append(StartTimer(MARK_TIMER, at))
        return effects

    def on_unreachable(self, operation: MarkAgentUnreachable, now: float) -> list[Effect]:
        agents, agent_id = self.books.agents, operation.agent_id
        if agent_id in agents.gone:
            agents.marking_unreachable.pop(agent_id, None)
            return []
        why = agents.marked_unreachable(agent_id, operation.time)
        self.core.count("slave_unreachable_completed")
        effects: list[Effect] = []
        agent = agents.get(agent_id)
        if agent is not None:
            agents.remember_lost_frameworks(agent_id, agent.lost_frameworks)
            effects += self.eviction.evict(agent, operation.time, aware_state="TASK_UNREACHABLE",
                                           reason="REASON_AGENT_REMOVED", message=why, shutdown=False)
        elif agents.take_recovered(agent_id) is not None:
            effects += self.eviction.failure(agent_id)
        parked = agents.readmitting.get(agent_id)
        if parked is not None and not parked.persisting:  # it re-registered while the write was out
            parked.persisting = True
            effects.append(Persist(AdmitAgent(agent_id, parked.call.info)))
        return effects

    # ------------------------------------------------------------- coming back
    def reregister(self, call: Reregistration, stream_id: str) -> list[Effect]:
        """REREGISTER of an agent marked (or being marked) unreachable: the registry admits it first."""
        agents, agent_id = self.books.agents, call.agent_id
        parked = Parked(call, stream_id)
        previous = agents.park(parked)  # the latest report wins
        effects: list[Effect] = []
        if previous is not None and previous.stream_id != stream_id:
            effects.append(CloseAgentStream(agent_id, previous.stream_id))
        if agent_id in agents.marking_unreachable:  # parked: on_unreachable writes AdmitAgent after the mark
            return effects
        # Written again even if an earlier AdmitAgent is out: the write is idempotent, and a failed
        # one must not keep the agent out for good. The first to land admits the latest report.
        parked.persisting = True
        return [*effects, Persist(AdmitAgent(agent_id, call.info))]

    def take_readmission(self, operation: AdmitAgent) -> tuple[Parked, set[str]] | None:
        """The registry admitted an unreachable agent again: its parked report and the frameworks
        lost there, for the caller to re-admit (None: nothing waits, or it is gone meanwhile)."""
        agents = self.books.agents
        parked = agents.take_parked(operation.agent_id)
        if parked is None or operation.agent_id in agents.gone:
            return None
        return parked, agents.readmitted(operation.agent_id)

    def settle_unreachable_tasks(self, agent_id: str, reported: tuple[ReportedTask, ...]) -> list[Effect]:
        """The agent is back: its unreachable tasks leave the unreachable set; those it reports are
        adopted again by the caller, the others are TASK_GONE."""
        kept = {(t.framework_id, t.task_id) for t in reported}
        effects: list[Effect] = []
        for framework, task in self.books.frameworks.take_unreachable(agent_id):
            if (framework.id, task.task_id) not in kept:
                effects += self._complete(framework, task, "TASK_GONE", "REASON_RECONCILIATION",
                                          "Task is unknown to the re-registered agent")
        return effects

    # ------------------------------------------------------------- gone for good
    def mark_gone(self, agent_id: str, now: float) -> list[Effect]:
        """MARK_AGENT_GONE (and DRAIN_AGENT with mark_gone): nothing more once it is (being) gone."""
        agents = self.books.agents
        if agent_id in agents.gone or agent_id in agents.marking_gone:
            return []
        if not (agent_id in agents.registered or agent_id in agents.recovered or agent_id in agents.unreachable):
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        agents.mark_gone_started(agent_id)
        self.cancel(agent_id)
        return [Persist(MarkAgentGone(agent_id, now))]

    def on_gone(self, operation: MarkAgentGone, now: float) -> list[Effect]:
        agents, agent_id = self.books.agents, operation.agent_id
        self.cancel(agent_id)
        was_recovered = agent_id in agents.recovered
        agents.marked_gone(agent_id, operation.time)
        effects: list[Effect] = []
        agent = agents.get(agent_id)
        if agent is not None:
            effects += self.eviction.evict(agent, now, aware_state="TASK_GONE_BY_OPERATOR", reason=GONE_REASON,
                                           message="Agent marked gone by the operator", shutdown=True)
        elif was_recovered:
            effects += self.eviction.failure(agent_id)
        for framework, task in self.books.frameworks.take_unreachable(agent_id):
            effects += self._complete(framework, task, "TASK_GONE_BY_OPERATOR", GONE_REASON,
                                      "Agent marked gone by the operator")
        parked = agents.take_parked(agent_id)
        if parked is not None:
            effects += shutdown_agent(agent_id, parked.stream_id, "Agent has been marked gone")
        return effects

    def _complete(self, framework: Framework, task: Task, state: str, reason: str, message: str) -> list[Effect]:
        self.books.frameworks.set_state(task, state, update_state=state, unreachable_time=task.unreachable_time,
                                        why=(reason, message))
        self.books.frameworks.complete_task(framework, task)
        self.core.count(state.lower())
        if not framework.connected:
            return []
        return [master_update(framework.id, task.task_id, state, reason, message, task.agent_id)]
