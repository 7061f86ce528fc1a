"""What must hold of the agent machine after every event (machine tests check it each time).

    each live run is filed under its own (framework, executor), is not terminated, and its
        framework is known
    an ended run is not live: it waits in ``finished`` (updates unacknowledged) and for GC
    a finished task belongs to the run it points at
    the agent's total is its flags with the checkpointed resources carved out (``total_with``)
    a run's tasks are keyed by their ids
"""

from __future__ import annotations

from meseta.agent.machine import AgentMachine, total_with


def validate(machine: AgentMachine) -> list[str]:
    problems = []
    for (framework_id, executor_id), run in machine.executors.items():
        if (run.framework_id, run.executor_id) != (framework_id, executor_id):
            problems.append(f"run {run.key} filed under ({framework_id}, {executor_id})")
        if run.terminated:
            problems.append(f"run {run.key} is terminated but still live")
        if framework_id not in machine.frameworks:
            problems.append(f"run {run.key} of an unknown framework")
        if run.key in machine.gc_scheduled:
            problems.append(f"live run {run.key} is scheduled for GC")
        problems += [f"task {task_id} of {run.key} is filed as {task.task_id}"
                     for task_id, task in run.tasks.items() if task.task_id != task_id]
    for (framework_id, task_id), run in machine.book.finished.items():
        if task_id not in run.tasks or run.framework_id != framework_id:
            problems.append(f"finished task {task_id} points at run {run.key} which does not hold it")
        if not run.terminated:
            problems.append(f"finished task {task_id}'s run {run.key} has not ended")
    if total_with(machine.flag_resources, machine.checkpointed) != machine.resources:
        problems.append("the total is not the flags with the checkpointed resources carved out")
    return problems
