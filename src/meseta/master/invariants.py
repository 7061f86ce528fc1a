"""What must always hold of the master's state; machine tests check it after every event."""

from __future__ import annotations

from meseta.core.resources import EMPTY
from meseta.master.machine import MasterMachine


def validate(machine: MasterMachine) -> list[str]:
    """Every way the state can disagree with itself; empty when consistent (tests call it)."""
    problems: list[str] = []
    for offer in machine.offers.values():
        framework, agent = machine.frameworks.get(offer.framework_id), machine.agents.get(offer.agent_id)
        if framework is None or offer.id not in framework.offers:
            problems.append(f"offer {offer.id} is not held by framework {offer.framework_id}")
        if agent is None or offer.id not in agent.offers:
            problems.append(f"offer {offer.id} is not listed on agent {offer.agent_id}")
    for agent in machine.agents.values():
        expected = EMPTY
        for offer_id in agent.offers:
            expected = expected + machine.offers[offer_id].resources
        for framework_id, task_id in agent.task_keys:
            task = machine.frameworks[framework_id].tasks.get(task_id)
            if task is None:
                problems.append(f"agent {agent.id} lists unknown task {framework_id}/{task_id}")
            elif not task.released:
                expected = expected + task.resources
        for framework in machine.frameworks.values():
            for record in framework.executors.get(agent.id, {}).values():
                expected = expected + record.resources
        allocated = machine.allocator.allocated_on(agent.id)
        if allocated != expected:
            problems.append(f"agent {agent.id}: allocator holds {allocated.to_text()!r}, "
                            f"offers+tasks+executors are {expected.to_text()!r}")
        if not agent.total.contains(allocated):
            problems.append(f"agent {agent.id}: allocated {allocated.to_text()!r} exceeds its total")
    return problems
