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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meseta.master.state import (
    MAX_UNREACHABLE_TASKS_PER_FRAMEWORK,
    Abort,
    AdmitAgent,
    CallRejected,
    CloseAgentStream,
    Effect,
    Framework,
    MarkAgentGone,
    MarkAgentUnreachable,
    Persist,
    StartTimer,
    Task,
    ToAgent,
)
from meseta.master.updates import master_update

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine

MARK_TIMER = ("mark-unreachable",)  # the rate limiter's next free slot
REREGISTER_TIMER = ("reregister-timeout",)  # recovered agents' deadline, from when the master leads
GONE_REASON = "REASON_AGENT_REMOVED_BY_OPERATOR"  # TASK_GONE_BY_OPERATOR; TASK_LOST says REASON_AGENT_REMOVED


def shutdown_agent(agent_id: str, stream_id: str, message: str) -> list[Effect]:
    """Refuse an agent for good: it shuts its frameworks down and forgets its id."""
    return [ToAgent(agent_id, {"type": "SHUTDOWN", "shutdown": {"message": message}}),
            CloseAgentStream(agent_id, stream_id)]


def keep_unreachable(framework: Framework, task: Task) -> None:
    """Move a task to the framework's unreachable tasks, dropping the oldest beyond the bound."""
    framework.tasks.pop(task.task_id, None)
    framework.unreachable_tasks[task.task_id] = task
    while len(framework.unreachable_tasks) > MAX_UNREACHABLE_TASKS_PER_FRAMEWORK:
        del framework.unreachable_tasks[next(iter(framework.unreachable_tasks))]


@dataclass(slots=True)
class Reregistration:
    """A REREGISTER of an unreachable agent, held until the registry admits the agent again."""

    info: dict[str, Any]
    tasks: list[dict[str, Any]]
    executors: list[dict[str, Any]]
    frameworks: list[dict[str, Any]]
    stream_id: str
    persisting: bool = False  # Persist(AdmitAgent) is out
    connected: bool = True  # its stream closed while the write was out: admitted, then disconnected

    @property
    def agent_id(self) -> str:
        return str(self.info["id"]["value"])


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
    """Reads and changes the machine's agent sets (``agents``, ``recovered_agents``,
    ``unreachable_agents``, ``gone_agents``) and the registry writes in flight between them."""

    def __init__(
        self,
        machine: MasterMachine,
        reregister_timeout: float,
        removal_limit: float,
        rate_limit: tuple[int, float] | None,
    ) -> None:
        if not 0.0 <= removal_limit <= 1.0:
            raise ValueError(f"recovery_agent_removal_limit must be a fraction in [0, 1], got {removal_limit}")
        if rate_limit is not None and (rate_limit[0] < 1 or rate_limit[1] <= 0):
            raise ValueError(f"agent_removal_rate_limit needs a positive count and duration, got {rate_limit}")
        self.m = machine
        self.reregister_timeout = reregister_timeout
        self.removal_limit = removal_limit
        self.pacer = RemovalPacer(rate_limit)
        self.recovered_total = len(machine.recovered_agents)
        self.marking: dict[str, str] = {}  # agent id -> why: MarkAgentUnreachable is out
        self.going: set[str] = set()  # MarkAgentGone is out
        self.readmitting: dict[str, Reregistration] = {}
        self.lost_frameworks: dict[str, set[str]] = {}  # unreachable agent -> frameworks to shut down there

    # ------------------------------------------------------------- marking unreachable
    def start(self, now: float) -> list[Effect]:
        if not self.m.recovered_agents:
            return []
        return [StartTimer(REREGISTER_TIMER, now + self.reregister_timeout)]

    def recovery_timed_out(self, now: float) -> list[Effect]:
        late = sorted(a for a in self.m.recovered_agents if a not in self.going)
        if not late:
            return []
        total = max(self.recovered_total, len(late))
        if len(late) / total > self.removal_limit:
            return [Abort(f"Post-recovery agent removal limit exceeded: {len(late)} of {total} recovered agents "
                          f"did not re-register within {self.reregister_timeout:g} s "
                          f"(recovery_agent_removal_limit {self.removal_limit:.0%})")]
        effects: list[Effect] = []
        for agent_id in late:
            effects += self.schedule(agent_id, "Agent did not re-register after a master failover", now)
        return effects

    def schedule(self, agent_id: str, why: str, now: float) -> list[Effect]:
        """Mark the agent unreachable as soon as the rate limit allows."""
        if agent_id in self.marking or agent_id in self.going or agent_id in self.pacer:
            return []
        self.m.count("slave_unreachable_scheduled")
        self.pacer.add(agent_id, why)
        return self.pump(now)

    def cancel(self, agent_id: str) -> None:
        """The agent answered (PONG) or came back (REREGISTER) while it waited for its turn."""
        if self.pacer.cancel(agent_id):
            self.m.count("slave_unreachable_canceled")

    def pump(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for agent_id, why in self.pacer.take(now):
            if agent_id in self.m.agents or agent_id in self.m.recovered_agents:
                self.marking[agent_id] = why
                effects.append(Persist(MarkAgentUnreachable(agent_id, now)))
        at = self.pacer.next_at()
        if at is not None:
            effects.append(StartTimer(MARK_TIMER, at))
        return effects

    def on_unreachable(self, operation: MarkAgentUnreachable, now: float) -> list[Effect]:
        agent_id = operation.agent_id
        why = self.marking.pop(agent_id, "Agent is unreachable")
        if agent_id in self.m.gone_agents:
            return []
        self.m.unreachable_agents[agent_id] = operation.time
        self.m.count("slave_unreachable_completed")
        effects: list[Effect] = []
        agent = self.m.agents.get(agent_id)
        if agent is not None:
            self.lost_frameworks[agent_id] = set(agent.lost_frameworks)
            effects += self.m.agent_lifecycle.evict(agent, operation.time, aware_state="TASK_UNREACHABLE",
                                                    reason="REASON_AGENT_REMOVED", message=why, shutdown=False)
        elif self.m.recovered_agents.pop(agent_id, None) is not None:
            effects += self.m.agent_lifecycle.failure(agent_id)
        parked = self.readmitting.get(agent_id)
        if parked is not None and not parked.persisting:  # it re-registered while the write was out
            parked.persisting = True
            effects.append(Persist(AdmitAgent(agent_id, parked.info)))
        return effects

    # ------------------------------------------------------------- coming back
    def reregister(self, registration: Reregistration, now: float) -> list[Effect]:
        """REREGISTER of an agent marked (or being marked) unreachable: the registry admits it first."""
        agent_id = registration.agent_id
        previous = self.readmitting.get(agent_id)
        self.readmitting[agent_id] = registration  # the latest report wins
        effects: list[Effect] = []
        if previous is not None and previous.stream_id != registration.stream_id:
            effects.append(CloseAgentStream(agent_id, previous.stream_id))
        if agent_id in self.marking:  # parked: on_unreachable writes AdmitAgent after the mark
            return effects
        # Written again even if an earlier AdmitAgent is out: the write is idempotent, and a failed
        # one must not keep the agent out for good. The first to land admits the latest report.
        registration.persisting = True
        return [*effects, Persist(AdmitAgent(agent_id, registration.info))]

    def on_readmitted(self, operation: AdmitAgent, now: float) -> list[Effect]:
        registration = self.readmitting.pop(operation.agent_id, None)
        if registration is None or operation.agent_id in self.m.gone_agents:
            return []
        self.m.unreachable_agents.pop(operation.agent_id, None)
        lost = self.lost_frameworks.pop(operation.agent_id, set())
        return self.m.agent_lifecycle.readmit(registration, lost, now)

    def stream_closed(self, agent_id: str, stream_id: str) -> None:
        registration = self.readmitting.get(agent_id)
        if registration is None or registration.stream_id != stream_id:
            return
        if registration.persisting:
            registration.connected = False
        else:
            del self.readmitting[agent_id]

    def settle_unreachable_tasks(self, agent_id: str, reported: list[dict[str, Any]]) -> list[Effect]:
        """The agent is back: its unreachable tasks leave the unreachable set; those it reports are
        adopted again by the caller, the others are TASK_GONE."""
        kept = {(t["framework_id"]["value"], t["info"]["task_id"]["value"]) for t in reported}
        effects: list[Effect] = []
        for framework in self.m.frameworks.values():
            for task in [t for t in framework.unreachable_tasks.values() if t.agent_id == agent_id]:
                del framework.unreachable_tasks[task.task_id]
                if (framework.id, task.task_id) not in kept:
                    effects += self._complete(framework, task, "TASK_GONE", "REASON_RECONCILIATION",
                                              "Task is unknown to the re-registered agent")
        return effects

    # ------------------------------------------------------------- gone for good
    def mark_gone(self, agent_id: str, now: float) -> list[Effect]:
        """MARK_AGENT_GONE (and DRAIN_AGENT with mark_gone): nothing more once it is (being) gone."""
        if agent_id in self.m.gone_agents or agent_id in self.going:
            return []
        if not (agent_id in self.m.agents or agent_id in self.m.recovered_agents
                or agent_id in self.m.unreachable_agents):
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        self.going.add(agent_id)
        self.cancel(agent_id)
        return [Persist(MarkAgentGone(agent_id, now))]

    def on_gone(self, operation: MarkAgentGone, now: float) -> list[Effect]:
        agent_id = operation.agent_id
        self.going.discard(agent_id)
        self.cancel(agent_id)
        self.marking.pop(agent_id, None)
        self.lost_frameworks.pop(agent_id, None)
        self.m.gone_agents[agent_id] = operation.time
        self.m.unreachable_agents.pop(agent_id, None)
        effects: list[Effect] = []
        agent = self.m.agents.get(agent_id)
        if agent is not None:
            effects += self.m.agent_lifecycle.evict(agent, now, aware_state="TASK_GONE_BY_OPERATOR",
                                                    reason=GONE_REASON, message="Agent marked gone by the operator",
                                                    shutdown=True)
        elif self.m.recovered_agents.pop(agent_id, None) is not None:
            effects += self.m.agent_lifecycle.failure(agent_id)
        for framework in self.m.frameworks.values():
            for task in [t for t in framework.unreachable_tasks.values() if t.agent_id == agent_id]:
                del framework.unreachable_tasks[task.task_id]
                effects += self._complete(framework, task, "TASK_GONE_BY_OPERATOR", GONE_REASON,
                                          "Agent marked gone by the operator")
        registration = self.readmitting.pop(agent_id, None)
        if registration is not None:
            effects += shutdown_agent(agent_id, registration.stream_id, "Agent has been marked gone")
        return effects

    def _complete(self, framework: Framework, task: Task, state: str, reason: str, message: str) -> list[Effect]:
        task.state = task.status_update_state = state
        task.status_update_uuid = None
        framework.completed_tasks.append(task)
        self.m.count(state.lower())
        if not framework.connected:
            return []
        return [master_update(framework.id, task.task_id, state, reason, message, task.agent_id)]

    # ------------------------------------------------------------- reconciliation
    def standing(self, agent_id: str | None) -> str | None:
        """Where an unknown task's agent stands (see meseta.master.updates); None while a recovered
        agent (the named one, or any if none is named) may still re-register."""
        if agent_id is None:
            return None if self.m.recovered_agents else "unknown"
        if agent_id in self.m.agents:
            return "registered"
        if agent_id in self.m.recovered_agents:
            return None
        if agent_id in self.m.unreachable_agents:
            return "unreachable"
        return "gone" if agent_id in self.m.gone_agents else "unknown"
