"""The master's books: the one owner of each piece of soft state, and the only code that changes it.

    FrameworkBook   frameworks (by state), completed frameworks, removed ids; every framework's
                    tasks, unreachable and completed tasks, executors; the index of tasks by agent
    AgentBook       where every agent id stands with this master, and the registered agents' records:

        id --REGISTER--> admitting --AdmitAgent written--> registered
        (registry, at start)                            -> recovered --REREGISTER--> registered
        registered | recovered --MarkAgentUnreachable written--> unreachable
        unreachable --REREGISTER, AdmitAgent written--> registered
        any --MarkAgentGone written--> gone (never again)        registered --RemoveAgent--> (none)

                    with the registry writes in flight beside them (marking unreachable, marking
                    gone, re-admitting): an agent keeps its place until its write is done
    OfferBook       outstanding offers and inverse offers, indexed by framework and by agent

Books hold no policy: they never talk to the allocator or make effects. ``AgentBook`` reports
every change of an agent's ``active`` (connected and ACTIVE) to its ``on_active`` callback, so the
allocator's view of which agents to offer can never drift from the records. Both note the
changes an operator subscriber hears about in the ``Journal`` (``meseta.master.journal``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from meseta.master.journal import Journal
from meseta.master.records import (
    MAX_COMPLETED_FRAMEWORKS,
    MAX_UNREACHABLE_TASKS_PER_FRAMEWORK,
    Agent,
    AgentMode,
    ExecutorRecord,
    Framework,
    FrameworkState,
    InverseOffer,
    Offer,
    Task,
)
from meseta.master.validation.agents import Registration, Reregistration


class Standing(Enum):
    """Where an agent id stands with this master (what reconciliation and re-registration ask)."""

    UNKNOWN = "unknown"  # never admitted, or removed (RemoveAgent)
    ADMITTING = "admitting"  # REGISTER seen, AdmitAgent being written
    RECOVERED = "recovered"  # admitted before this master started leading; not back yet
    REGISTERED = "registered"
    UNREACHABLE = "unreachable"
    GONE = "gone"


@dataclass(slots=True)
class Admitting:
    """A REGISTER, held until the registry has admitted the agent."""

    call: Registration
    stream_id: str
    connected: bool = True  # its stream closed while the write was out: admitted, then disconnected


@dataclass(slots=True)
class Parked:
    """A REREGISTER of an unreachable agent, held until the registry admits the agent again."""

    call: Reregistration
    stream_id: str
    persisting: bool = False  # Persist(AdmitAgent) is out
    connected: bool = True  # its stream closed while the write was out: admitted, then disconnected

    @property
    def agent_id(self) -> str:
        return self.call.agent_id


# ============================================================================ frameworks


class FrameworkBook:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.by_id: dict[str, Framework] = {}  # RECOVERED, ACTIVE and DISCONNECTED
        self.completed: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.removed_ids: set[str] = set()
        self._tasks_by_agent: dict[str, set[tuple[str, str]]] = {}  # agent -> (framework id, task id)

    def get(self, framework_id: str) -> Framework | None:
        return self.by_id.get(framework_id)

    def __iter__(self) -> Iterator[Framework]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    # ------------------------------------------------------------- lifecycle
    def add(self, framework: Framework) -> None:
        self.by_id[framework.id] = framework
        self.journal.note("FRAMEWORK_ADDED", framework)

    def resubscribed(self, framework: Framework, stream_id: str, now: float) -> None:
        """Subscribed again (failed over, reconnected, or recovered after a master failover): ACTIVE."""
        framework.stream_id, framework.state, framework.reregistered_time = stream_id, FrameworkState.ACTIVE, now
        self.journal.note("FRAMEWORK_UPDATED", framework)

    def disconnected(self, framework: Framework, now: float) -> None:
        framework.state, framework.unregistered_time = FrameworkState.DISCONNECTED, now
        self.journal.note("FRAMEWORK_UPDATED", framework)

    def set_info(self, framework: Framework, info: dict[str, Any], roles: tuple[str, ...],
                 capabilities: frozenset[str], failover_timeout: float) -> None:
        framework.info, framework.roles, framework.capabilities = info, roles, capabilities
        framework.failover_timeout = failover_timeout
        self.journal.note("FRAMEWORK_UPDATED", framework)

    def complete(self, framework: Framework, now: float) -> None:
        """Torn down or timed out: out of the book for good (its tasks were completed first)."""
        framework.state, framework.unregistered_time = FrameworkState.COMPLETED, now
        framework.executors.clear()
        del self.by_id[framework.id]
        self.completed.append(framework)
        self.removed_ids.add(framework.id)
        self.journal.note("FRAMEWORK_REMOVED", framework)

    # ------------------------------------------------------------- tasks
    def add_task(self, framework: Framework, task: Task) -> None:
        framework.tasks[task.task_id] = task
        self._tasks_by_agent.setdefault(task.agent_id, set()).add(task.key)
        self.journal.note("TASK_ADDED", task, task.state, statuses=len(task.statuses))

    def tasks_on(self, agent_id: str) -> list[Task]:
        """The live (not completed, not unreachable) tasks on an agent, in a stable order."""
        return [self.by_id[f].tasks[t] for f, t in sorted(self._tasks_by_agent.get(agent_id, ()))]

    def task_keys_on(self, agent_id: str) -> frozenset[tuple[str, str]]:
        return frozenset(self._tasks_by_agent.get(agent_id, ()))

    def complete_task(self, framework: Framework, task: Task) -> None:
        """The task is done for the master: it moves to the framework's completed tasks."""
        framework.tasks.pop(task.task_id, None)
        framework.completed_tasks.append(task)
        self._unindex(task)

    def set_state(self, task: Task, state: str, *, update_state: str | None = None,
                  uuid: str | None = None, unreachable_time: float | None = None,
                  why: tuple[str, str] = ("", "")) -> None:
        """A state the master decided (lost, dropped, gone, unreachable), ``why`` (reason, message):
        no update is in flight."""
        task.state = state
        task.status_update_state = update_state
        task.status_update_uuid = uuid
        task.unreachable_time = unreachable_time
        self.journal.note("TASK_UPDATED", task, state, why=why)

    def apply_status(self, task: Task, state: str, update_state: str, uuid: str | None, status: dict[str, Any],
                     entry: dict[str, Any]) -> None:
        """A status update from the task's agent: its latest ``state`` (the update's own state may
        be an older one, retried), the update in flight, and the history ``entry``."""
        task.state = state
        task.status_update_state = update_state
        task.status_update_uuid = uuid
        task.latest_status = status
        task.statuses.append(entry)
        self.journal.note("TASK_UPDATED", task, state, status)

    def keep_unreachable(self, framework: Framework, task: Task) -> None:
        """Move a task to the framework's unreachable tasks, dropping the oldest beyond the bound."""
        framework.tasks.pop(task.task_id, None)
        self._unindex(task)
        framework.unreachable_tasks[task.task_id] = task
        while len(framework.unreachable_tasks) > MAX_UNREACHABLE_TASKS_PER_FRAMEWORK:
            del framework.unreachable_tasks[next(iter(framework.unreachable_tasks))]

    def take_unreachable(self, agent_id: str) -> list[tuple[Framework, Task]]:
        """Every unreachable task of the agent, out of the unreachable sets (it is back or gone)."""
        taken = []
        for framework in self.by_id.values():
            for task in [t for t in framework.unreachable_tasks.values() if t.agent_id == agent_id]:
                del framework.unreachable_tasks[task.task_id]
                taken.append((framework, task))
        return taken

    def _unindex(self, task: Task) -> None:
        keys = self._tasks_by_agent.get(task.agent_id)
        if keys is not None:
            keys.discard(task.key)
            if not keys:
                del self._tasks_by_agent[task.agent_id]

    # ------------------------------------------------------------- executors
    def add_executor(self, framework: Framework, agent_id: str, executor_id: str, record: ExecutorRecord) -> None:
        framework.executors.setdefault(agent_id, {}).setdefault(executor_id, record)

    def remove_executor(self, framework: Framework, agent_id: str, executor_id: str) -> ExecutorRecord | None:
        per_agent = framework.executors.get(agent_id)
        if per_agent is None:
            return None
        record = per_agent.pop(executor_id, None)
        if not per_agent:
            del framework.executors[agent_id]
        return record

    def remove_executors_on(self, framework: Framework, agent_id: str) -> list[ExecutorRecord]:
        return list(framework.executors.pop(agent_id, {}).values())

    def users_of(self, agent_id: str) -> set[str]:
        """The frameworks with tasks or executors on the agent."""
        users = {f for f, _ in self._tasks_by_agent.get(agent_id, ())}
        return users | {f.id for f in self.by_id.values() if agent_id in f.executors}


# ============================================================================ agents


class AgentBook:
    def __init__(
        self,
        *,
        admitted: dict[str, dict[str, Any]] | None = None,
        unreachable: dict[str, float] | None = None,
        gone: dict[str, float] | None = None,
        on_active: Callable[[str, bool], None] = lambda agent_id, active: None,
        journal: Journal | None = None,
    ) -> None:
        self.journal = journal or Journal()
        self.gone: dict[str, float] = dict(gone or {})
        self.unreachable: dict[str, float] = {a: t for a, t in (unreachable or {}).items() if a not in self.gone}
        self.recovered: dict[str, dict[str, Any]] = {
            a: info for a, info in (admitted or {}).items() if a not in self.gone and a not in self.unreachable}
        self.registered: dict[str, Agent] = {}
        self.admitting: dict[str, Admitting] = {}  # REGISTER seen, AdmitAgent out
        self.marking_unreachable: dict[str, str] = {}  # MarkAgentUnreachable out: agent id -> why
        self.marking_gone: set[str] = set()  # MarkAgentGone out
        self.readmitting: dict[str, Parked] = {}  # unreachable agents back; AdmitAgent out
        self.partition_lost: dict[str, set[str]] = {}  # unreachable agent -> frameworks to shut down there
        self._on_active = on_active

    def get(self, agent_id: str) -> Agent | None:
        return self.registered.get(agent_id)

    def __iter__(self) -> Iterator[Agent]:
        return iter(self.registered.values())

    def __len__(self) -> int:
        return len(self.registered)

    def standing(self, agent_id: str) -> Standing:
        if agent_id in self.registered:
            return Standing.REGISTERED
        if agent_id in self.gone:
            return Standing.GONE
        if agent_id in self.unreachable:
            return Standing.UNREACHABLE
        if agent_id in self.recovered:
            return Standing.RECOVERED
        if agent_id in self.admitting:
            return Standing.ADMITTING
        return Standing.UNKNOWN

    def counts(self) -> dict[str, int]:
        """How many registered agents are active (connected and ACTIVE) or not, connected or not."""
        agents = self.registered.values()
        return {"active": sum(a.active for a in agents), "inactive": sum(not a.active for a in agents),
                "connected": sum(a.connected for a in agents), "disconnected": sum(not a.connected for a in agents)}

    # ------------------------------------------------------------- joining
    def admitting_started(self, agent_id: str, call: Registration, stream_id: str) -> None:
        self.admitting[agent_id] = Admitting(call, stream_id)

    def take_admitting(self, agent_id: str) -> Admitting | None:
        return self.admitting.pop(agent_id, None)

    def take_recovered(self, agent_id: str) -> dict[str, Any] | None:
        return self.recovered.pop(agent_id, None)

    def register(self, agent: Agent) -> None:
        """The agent is in the cluster (admitted now, or re-registered)."""
        self.unreachable.pop(agent.id, None)
        self.recovered.pop(agent.id, None)
        self.registered[agent.id] = agent
        self._on_active(agent.id, agent.active)
        self.journal.note("AGENT_ADDED", agent)

    def reconnected(self, agent: Agent, stream_id: str, now: float) -> None:
        agent.stream_id, agent.connected = stream_id, True
        agent.reregistered_time, agent.missed_pings, agent.pong_seen = now, 0, True
        self._on_active(agent.id, agent.active)

    def disconnected(self, agent: Agent) -> None:
        agent.connected = False
        self._on_active(agent.id, agent.active)

    # ------------------------------------------------------------- modes (operator)
    def set_mode(self, agent: Agent, mode: AgentMode, drain_config: dict[str, Any] | None = None) -> None:
        agent.mode = mode
        if mode is AgentMode.DRAINING:
            agent.drain_config = drain_config
        elif mode is not AgentMode.DRAINED:
            agent.drain_config = None
        self._on_active(agent.id, agent.active)

    # ------------------------------------------------------------- pings
    def pong(self, agent: Agent) -> None:
        agent.pong_seen = True

    def ping_sent(self, agent: Agent) -> None:
        agent.missed_pings = 0 if agent.pong_seen else agent.missed_pings + 1
        agent.pong_seen = False

    # ------------------------------------------------------------- leaving
    def remove(self, agent_id: str) -> Agent | None:
        """Out of the registered agents (unreachable, gone or removed: the caller says which)."""
        agent = self.registered.pop(agent_id, None)
        if agent is not None:
            self.journal.note("AGENT_REMOVED", agent_id)
        return agent

    def mark_unreachable_started(self, agent_id: str, why: str) -> None:
        self.marking_unreachable[agent_id] = why

    def marked_unreachable(self, agent_id: str, time: float) -> str:
        """The registry holds the mark: returns why it was made."""
        why = self.marking_unreachable.pop(agent_id, "Agent is unreachable")
        if agent_id not in self.gone:
            self.unreachable[agent_id] = time
        return why

    def mark_gone_started(self, agent_id: str) -> None:
        self.marking_gone.add(agent_id)

    def marked_gone(self, agent_id: str, time: float) -> None:
        self.marking_gone.discard(agent_id)
        self.marking_unreachable.pop(agent_id, None)
        self.partition_lost.pop(agent_id, None)
        self.unreachable.pop(agent_id, None)
        self.recovered.pop(agent_id, None)
        self.gone[agent_id] = time

    def is_being_marked(self, agent_id: str) -> bool:
        return agent_id in self.marking_unreachable or agent_id in self.marking_gone

    # ------------------------------------------------------------- coming back from unreachable
    def park(self, registration: Parked) -> Parked | None:
        """Hold an unreachable agent's REREGISTER until the registry admits it (the latest wins);
        returns the one it replaces."""
        previous = self.readmitting.get(registration.agent_id)
        self.readmitting[registration.agent_id] = registration
        return previous

    def take_parked(self, agent_id: str) -> Parked | None:
        return self.readmitting.pop(agent_id, None)

    def readmitted(self, agent_id: str) -> set[str]:
        """The registry admitted the unreachable agent again: the frameworks lost there."""
        self.unreachable.pop(agent_id, None)
        return self.partition_lost.pop(agent_id, set())

    def pending_stream_closed(self, agent_id: str, stream_id: str) -> None:
        """The stream of an agent whose registry write is out closed: it is admitted, then
        disconnected at once (or, if nothing was written yet, forgotten)."""
        admitting = self.admitting.get(agent_id)
        if admitting is not None and admitting.stream_id == stream_id:
            admitting.connected = False
        registration = self.readmitting.get(agent_id)
        if registration is None or registration.stream_id != stream_id:
            return
        if registration.persisting:
            registration.connected = False
        else:
            del self.readmitting[agent_id]

    def remember_lost_frameworks(self, agent_id: str, framework_ids: Iterable[str]) -> None:
        self.partition_lost[agent_id] = set(framework_ids)


# ============================================================================ offers


class OfferBook:
    def __init__(self) -> None:
        self.by_id: dict[str, Offer] = {}
        self._by_framework: dict[str, set[str]] = {}
        self._by_agent: dict[str, set[str]] = {}
        self.inverse: dict[str, InverseOffer] = {}

    def get(self, offer_id: str) -> Offer | None:
        return self.by_id.get(offer_id)

    def __iter__(self) -> Iterator[Offer]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, offer: Offer) -> None:
        self.by_id[offer.id] = offer
        self._by_framework.setdefault(offer.framework_id, set()).add(offer.id)
        self._by_agent.setdefault(offer.agent_id, set()).add(offer.id)

    def remove(self, offer: Offer) -> None:
        self.by_id.pop(offer.id, None)
        for index, owner in ((self._by_framework, offer.framework_id), (self._by_agent, offer.agent_id)):
            ids = index.get(owner)
            if ids is not None:
                ids.discard(offer.id)
                if not ids:
                    del index[owner]

    def of_framework(self, framework_id: str) -> list[Offer]:
        return [self.by_id[o] for o in sorted(self._by_framework.get(framework_id, ()))]

    def of_agent(self, agent_id: str) -> list[Offer]:
        return [self.by_id[o] for o in sorted(self._by_agent.get(agent_id, ()))]

    # ------------------------------------------------------------- inverse offers (maintenance)
    def add_inverse(self, inverse: InverseOffer) -> None:
        self.inverse[inverse.id] = inverse

    def remove_inverse(self, inverse_id: str) -> InverseOffer | None:
        return self.inverse.pop(inverse_id, None)

    def inverse_of_framework(self, framework_id: str) -> list[InverseOffer]:
        return [i for i in self.inverse.values() if i.framework_id == framework_id]


@dataclass(slots=True)
class Books:
    """The three books, handed to the helpers together."""

    frameworks: FrameworkBook
    agents: AgentBook
    offers: OfferBook
