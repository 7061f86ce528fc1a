"""What must always hold of the master's state; machine tests check it after every event (also
after a rejected one: a rejection changes nothing).

    every offer is of a known framework and on a registered agent
    every agent: the allocator holds exactly its offers + unreleased tasks + executors, within its total
    every task filed under an agent is a live task of a known framework, on that agent
    the allocator offers an agent exactly when the agent is active (connected and ACTIVE)
    an agent id stands in one place only: registered, recovered, unreachable or gone
"""

from __future__ import annotations

from meseta.alloc.allocator import Allocator
from meseta.core.resources import EMPTY
from meseta.master.books import Books


def validate(books: Books, allocator: Allocator) -> list[str]:
    """Every way the state can disagree with itself; empty when consistent (tests call it)."""
    problems: list[str] = []
    frameworks, agents = books.frameworks, books.agents
    for offer in books.offers:
        if frameworks.get(offer.framework_id) is None:
            problems.append(f"offer {offer.id} is held by unknown framework {offer.framework_id}")
        if agents.get(offer.agent_id) is None:
            problems.append(f"offer {offer.id} is on unknown agent {offer.agent_id}")
    for agent in agents:
        expected = EMPTY
        for offer in books.offers.of_agent(agent.id):
            expected = expected + offer.resources
        for framework_id, task_id in frameworks.task_keys_on(agent.id):
            framework = frameworks.get(framework_id)
            task = framework.tasks.get(task_id) if framework is not None else None
            if task is None or task.agent_id != agent.id:
                problems.append(f"agent {agent.id} lists unknown task {framework_id}/{task_id}")
            elif not task.released:
                expected = expected + task.resources
        for framework in frameworks:
            for record in framework.executors.get(agent.id, {}).values():
                expected = expected + record.resources
        allocated = allocator.allocated_on(agent.id)
        if allocated != expected:
            problems.append(f"agent {agent.id}: allocator holds {allocated.to_text()!r}, "
                            f"offers+tasks+executors are {expected.to_text()!r}")
        if not agent.total.contains(allocated):
            problems.append(f"agent {agent.id}: allocated {allocated.to_text()!r} exceeds its total")
        if allocator.is_agent_active(agent.id) != agent.active:
            problems.append(f"agent {agent.id}: the allocator thinks it active={not agent.active}")
    places = [set(agents.registered), set(agents.recovered), set(agents.unreachable), set(agents.gone)]
    for index, place in enumerate(places):
        for other in places[index + 1:]:
            if place & other:
                problems.append(f"agents {sorted(place & other)} stand in two places at once")
    return problems
