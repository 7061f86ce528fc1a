"""An agent enters the registered agents: admitted afresh, re-registered after a master failover, or
re-admitted after being unreachable; the frameworks and tasks it reports are adopted.

    admit(id, info, stream, reported tasks and executors)
      Agent record (connected, ACTIVE) -> tasks and executors it runs filed under their frameworks
      (frameworks the master does not know yet were recovered from the same report) -> the
      allocator holds them as used -> REGISTERED or REREGISTERED on its stream, pings start
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meseta.core.resources import Resources
from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, StartTimer, ToAgent
from meseta.master.records import Agent, Framework, FrameworkState
from meseta.master.tasks import TaskDesk
from meseta.master.validation.agents import ReportedExecutor, ReportedTask
from meseta.master.validation.frameworks import FrameworkInfo
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL


def allocation_role(resources: Any, roles: tuple[str, ...]) -> str:
    """The role a reported task's resources were allocated to (its allocation_info), else the
    framework's first role."""
    for item in resources or []:
        role = (item.get("allocation_info") or {}).get("role") if isinstance(item, dict) else None
        if isinstance(role, str) and role:
            return role
    return roles[0] if roles else "*"


class Admission:
    def __init__(self, core: MasterCore, books: Books, tasks: TaskDesk) -> None:
        self.core, self.books, self.tasks = core, books, tasks

    def admit(self, agent_id: str, info: dict[str, Any], total: Resources, stream_id: str, now: float, *,
              reregistered: bool, tasks: Iterable[ReportedTask] = (),
              executors: Iterable[ReportedExecutor] = ()) -> list[Effect]:
        agent = Agent(id=agent_id, info={**info, "id": id_json(agent_id)}, total=total, registered_time=now,
                      version=str(info.get("version", "")), stream_id=stream_id,
                      reregistered_time=now if reregistered else None)
        used = self._adopt_running(agent, tasks, executors)
        self.core.allocator.add_agent(agent_id, total, used)
        self.books.agents.register(agent)
        kind = "REREGISTERED" if reregistered else "REGISTERED"
        effects: list[Effect] = [
            ToAgent(agent_id, self.registered_message(agent_id, kind)),
            StartTimer(("ping", agent_id), now + self.core.config.agent_ping_timeout),
        ]
        self.core.request_allocation(effects, now)
        return effects

    def _adopt_running(self, agent: Agent, tasks: Iterable[ReportedTask],
                       executors: Iterable[ReportedExecutor]) -> list[tuple[str, str, Resources]]:
        """Rebuild the tasks and executors an agent reports (after a master failover)."""
        used: list[tuple[str, str, Resources]] = []
        for executor in executors:
            framework = self.books.frameworks.get(executor.framework_id)
            if framework is None:
                continue
            role = allocation_role(executor.info.get("resources"), framework.roles)
            record = self.tasks.add_executor(framework, agent.id, role, executor.executor_id, executor.info,
                                             executor.resources)
            used.append((framework.id, role, record.resources))
        for reported in tasks:
            framework = self.books.frameworks.get(reported.framework_id)
            if framework is None:
                continue
            role = allocation_role(reported.info.get("resources"), framework.roles)
            task = self.tasks.add_task(framework, agent, role, reported.info, reported.executor_id,
                                       reported.resources, reported.state)
            if task.state in TERMINAL:
                task.released = True
            else:
                used.append((framework.id, role, task.resources))
        return used

    def recover_framework(self, info: FrameworkInfo, now: float) -> None:
        """A framework an agent reports that this master does not know yet (it failed over):
        RECOVERED until it subscribes again."""
        framework_id = info.id
        frameworks = self.books.frameworks
        if not framework_id or frameworks.get(framework_id) is not None or framework_id in frameworks.removed_ids:
            return
        framework = Framework(id=framework_id, info=dict(info.raw), roles=info.roles, capabilities=info.capabilities,
                              registered_time=now, state=FrameworkState.RECOVERED,
                              failover_timeout=info.failover_timeout)
        frameworks.add(framework)
        self.core.allocator.add_framework(framework_id, framework.roles)
        self.core.allocator.set_framework_active(framework_id, False)

    def registered_message(self, agent_id: str, kind: str) -> dict[str, Any]:
        config = self.core.config
        return {
            "type": kind,
            kind.lower(): {
                "agent_id": id_json(agent_id),
                "master_info": self.core.master_info,
                "ping_interval_seconds": config.agent_ping_timeout,
                "max_ping_timeouts": config.max_agent_ping_timeouts,
            },
        }
