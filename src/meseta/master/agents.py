"""Agents joining, staying and leaving, as the master decides it.

    REGISTER -> registry write (Persist AdmitAgent) -> persisted: REGISTERED, pings start
    REREGISTER (known, or admitted before a master restart) -> REREGISTERED, tasks adopted
    REREGISTER (unreachable) -> registry write (Persist AdmitAgent) -> persisted: readmit()
    REREGISTER (gone, or never admitted) -> SHUTDOWN, stream closed
    stream breaks -> disconnected: no offers, its offers rescinded, uncheckpointed tasks LOST
    max_agent_ping_timeouts missed PONGs -> unreachable (meseta.master.partitions)
    machine DOWN for maintenance -> refused (403); removed while registered (meseta.master.maintenance)
"""

from __future__ import annotations

from meseta.master.admission import Admission
from meseta.master.books import Books, Parked
from meseta.master.core import MasterCore
from meseta.master.effects import AdmitAgent, CloseAgentStream, Effect, Persist, StartTimer, ToAgent
from meseta.master.offers import OfferDesk
from meseta.master.partitions import Partitions, shutdown_agent
from meseta.master.records import Agent, AgentMode
from meseta.master.reservations import checkpoint_message
from meseta.master.schedule import MaintenanceSchedule
from meseta.master.tasks import TaskDesk
from meseta.master.updates import master_update
from meseta.master.validation.agents import Registration, ReportedTask, Reregistration
from meseta.master.validation.errors import CallRejected
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL


class AgentLifecycle:
    def __init__(self, core: MasterCore, books: Books, admission: Admission, partitions: Partitions,
                 offers: OfferDesk, tasks: TaskDesk, schedule: MaintenanceSchedule) -> None:
        self.core, self.books = core, books
        self.admission, self.partitions, self.offers, self.tasks = admission, partitions, offers, tasks
        self.schedule = schedule

    # ------------------------------------------------------------- joining
    def register(self, call: Registration, stream_id: str, now: float) -> tuple[str, list[Effect]]:
        """(the new agent's id, effects): its admission is written to the registry first."""
        self._refuse_down(call.info)
        self.core.count("slave_registrations")
        agent_id = self.core.next_id("agent")
        self.books.agents.admitting_started(agent_id, call, stream_id)
        return agent_id, [Persist(AdmitAgent(agent_id, {**call.info, "id": id_json(agent_id)}))]

    def admitted(self, operation: AdmitAgent, now: float) -> list[Effect] | None:
        """A REGISTER's admission is written: the agent is in (None: it was no REGISTER)."""
        pending = self.books.agents.take_admitting(operation.agent_id)
        if pending is None:
            return None
        effects = self.admission.admit(operation.agent_id, pending.call.info, pending.call.total, pending.stream_id,
                                       now, reregistered=False)
        if not pending.connected:  # its stream closed while the write was out
            effects += self.disconnected(operation.agent_id, pending.stream_id, now)
        return effects

    def reregister(self, call: Reregistration, stream_id: str, now: float) -> list[Effect]:
        agents, agent_id = self.books.agents, call.agent_id
        self._refuse_down(call.info)
        self.core.count("slave_reregistrations")
        if agent_id in agents.gone or agent_id in agents.marking_gone:
            return shutdown_agent(agent_id, stream_id, "Agent has been marked gone")
        if agent_id in agents.unreachable or agent_id in agents.marking_unreachable:
            return self.partitions.reregister(call, stream_id)
        self.partitions.cancel(agent_id)
        known = agents.get(agent_id)
        if known is not None:
            return self._reregister_known(known, call, stream_id, now)
        if agents.take_recovered(agent_id) is None:
            # Removed agents (or ones this master never admitted) must start afresh.
            return shutdown_agent(agent_id, stream_id, "Agent is not known to the master")
        for info in call.frameworks:
            self.admission.recover_framework(info, now)
        return self.admission.admit(agent_id, call.info, call.total, stream_id, now, reregistered=True,
                                    tasks=call.tasks, executors=call.executors)

    def _refuse_down(self, info: dict[str, object]) -> None:
        if self.schedule.is_down(str(info.get("hostname", ""))):
            raise CallRejected(403, "Agent's machine is DOWN for maintenance")

    def _reregister_known(self, known: Agent, call: Reregistration, stream_id: str, now: float) -> list[Effect]:
        agent_id = known.id
        effects: list[Effect] = []
        if known.stream_id and known.stream_id != stream_id:
            effects.append(CloseAgentStream(agent_id, known.stream_id))
        self.books.agents.reconnected(known, stream_id, now)
        effects.append(ToAgent(agent_id, self.admission.registered_message(agent_id, "REREGISTERED")))
        effects.append(ToAgent(agent_id, checkpoint_message(known)))  # the master's view of reservations wins
        if known.mode in (AgentMode.DRAINING, AgentMode.DRAINED):
            effects.append(ToAgent(agent_id, {"type": "DRAIN", "drain_config": known.drain_config}))
        effects += self._lose_unreported(known, call.tasks)
        effects += [ToAgent(agent_id, kill) for kill in known.pending_kills.values()]
        known.pending_kills.clear()
        effects += [ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(fid)})
                    for fid in sorted(known.lost_frameworks)]
        known.lost_frameworks.clear()
        effects.append(StartTimer(("ping", agent_id), now + self.core.config.agent_ping_timeout))
        self.core.request_allocation(effects, now)
        return effects

    def readmit(self, parked: Parked, lost: set[str], now: float) -> list[Effect]:
        """An unreachable agent is admitted again. Partition-aware frameworks keep what it reports;
        the others were told TASK_LOST (and ``lost`` lost their tasks there on a disconnect), so
        the agent shuts them down; a task id a framework has elsewhere by now is killed here."""
        call, agent_id = parked.call, parked.agent_id
        for info in call.frameworks:
            self.admission.recover_framework(info, now)
        frameworks = self.books.frameworks
        shut: set[str] = set(lost)

        def kept(framework_id: str) -> bool:
            framework = frameworks.get(framework_id)
            if framework is None or not framework.partition_aware or framework.id in lost:
                shut.add(framework_id)
                return False
            return True

        executors = tuple(e for e in call.executors if kept(e.framework_id))
        tasks: list[ReportedTask] = []
        kills: list[Effect] = []
        for reported in call.tasks:
            if not kept(reported.framework_id):
                continue
            if reported.task_id in frameworks.by_id[reported.framework_id].tasks:
                kills.append(ToAgent(agent_id, {"type": "KILL_TASK", "framework_id": id_json(reported.framework_id),
                                                "task_id": id_json(reported.task_id)}))
            else:
                tasks.append(reported)
        effects = self.partitions.settle_unreachable_tasks(agent_id, tuple(tasks))
        effects += self.admission.admit(agent_id, call.info, call.total, parked.stream_id, now, reregistered=True,
                                        tasks=tasks, executors=executors)
        effects += [ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(fid)})
                    for fid in sorted(shut)]
        effects += kills
        if not parked.connected:
            effects += self.disconnected(agent_id, parked.stream_id, now)
        return effects

    def _lose_unreported(self, agent: Agent, reported: tuple[ReportedTask, ...]) -> list[Effect]:
        """Tasks the master has on a re-registering agent that the agent no longer knows (it
        restarted without them, or the launch never reached it) are gone: LOST, or DROPPED for
        partition-aware frameworks."""
        known = {(t.framework_id, t.task_id) for t in reported}
        effects: list[Effect] = []
        for task in self.books.frameworks.tasks_on(agent.id):
            if task.key in known or task.state in TERMINAL:
                continue
            framework = self.books.frameworks.by_id[task.framework_id]
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            why = ("REASON_RECONCILIATION", "Task is unknown to the re-registered agent")
            self.tasks.end(framework, task, state, why)
            effects.append(master_update(framework.id, task.task_id, state, *why, agent.id))
            self.tasks.complete(framework, task)
        return effects

    # ------------------------------------------------------------- connection
    def disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        agents = self.books.agents
        agent = agents.get(agent_id)
        if agent is None:
            agents.pending_stream_closed(agent_id, stream_id)
            return []
        if agent.stream_id != stream_id or not agent.connected:
            return []
        agents.disconnected(agent)
        return self.offers.rescind_agent(agent.id) + self._lose_uncheckpointed(agent)

    def _lose_uncheckpointed(self, agent: Agent) -> list[Effect]:
        """Tasks of frameworks that do not checkpoint cannot survive an agent hiccup (Mesos): they
        are lost now, and the agent is told to shut those frameworks down if it comes back."""
        frameworks = self.books.frameworks
        effects: list[Effect] = []
        for task in frameworks.tasks_on(agent.id):
            framework = frameworks.by_id[task.framework_id]
            if framework.checkpoint:
                continue
            why = ("REASON_AGENT_DISCONNECTED", "Agent disconnected")
            self.tasks.end(framework, task, "TASK_LOST", why)
            effects.append(master_update(framework.id, task.task_id, "TASK_LOST", *why, agent.id))
            self.tasks.complete(framework, task)
            agent.lost_frameworks.add(framework.id)
        for framework_id in agent.lost_frameworks:
            framework = frameworks.by_id[framework_id]
            for record in frameworks.remove_executors_on(framework, agent.id):
                self.core.allocator.recover(framework.id, record.role, agent.id, record.resources)
        return effects

    def pong(self, agent_id: str) -> list[Effect]:
        agent = self.books.agents.get(agent_id)
        if agent is not None:
            self.books.agents.pong(agent)
            self.partitions.cancel(agent_id)
        return []

    def ping(self, agent_id: str, now: float) -> list[Effect]:
        """Pings go on while the agent waits to be marked unreachable: a PONG still saves it."""
        agent = self.books.agents.get(agent_id)
        if agent is None:
            return []
        self.books.agents.ping_sent(agent)
        effects: list[Effect] = [StartTimer(("ping", agent_id), now + self.core.config.agent_ping_timeout)]
        if agent.connected:
            effects.append(ToAgent(agent_id, {"type": "PING"}))
        if agent.missed_pings >= self.core.config.max_agent_ping_timeouts:
            effects += self.partitions.schedule(agent_id, "Agent missed too many pings", now)
        return effects
