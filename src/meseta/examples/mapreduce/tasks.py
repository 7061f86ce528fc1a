"""TaskInfo for a planned attempt (pure): the worker run by the agent's command executor with
this host's interpreter, no shell in between::

    <python> -m meseta.examples.mapreduce.worker map --input F --offset N --length N
             --reducers R --map M [--combiner C] --out map-out|<shuffle-dir>/<job>/<attempt>
    <python> -m meseta.examples.mapreduce.worker reduce --partition r
             --inputs <output>/_temporary/<attempt>.inputs.json --reduce F
             --out <output>/_temporary/<attempt>/part-r-<r>

Agents give tasks no environment of their own, so PYTHONPATH names the directory holding the
``meseta`` package and the job's ``python_path`` (where the user's functions live).
"""

from __future__ import annotations

from typing import Any

from meseta.examples.mapreduce.effects import TaskPlan
from meseta.examples.mapreduce.job import JobSpec
from meseta.examples.mapreduce.records import output_name

WORKER = "meseta.examples.mapreduce.worker"


def temporary_dir(spec: JobSpec) -> str:
    return f"{spec.output.rstrip('/')}/_temporary"


def inputs_file(spec: JobSpec, attempt_id: str) -> str:
    return f"{temporary_dir(spec)}/{attempt_id}.inputs.json"


def reduce_output_file(spec: JobSpec, attempt_id: str, partition: int) -> str:
    return f"{temporary_dir(spec)}/{attempt_id}/{output_name(partition)}"


def worker_arguments(plan: TaskPlan, spec: JobSpec) -> list[str]:
    if plan.kind == "map":
        assert plan.split is not None and plan.map_output is not None
        split = plan.split
        arguments = ["map", "--input", split.path, "--offset", str(split.offset), "--length", str(split.length),
                     "--reducers", str(spec.reducers), "--map", spec.map_function, "--out", plan.map_output]
        return arguments + (["--combiner", spec.combiner] if spec.combiner else [])
    return ["reduce", "--partition", str(plan.index), "--inputs", inputs_file(spec, plan.attempt_id),
            "--reduce", spec.reduce_function, "--out", reduce_output_file(spec, plan.attempt_id, plan.index)]


def task_info(plan: TaskPlan, spec: JobSpec, agent_id: str, python: str, package_root: str) -> dict[str, Any]:
    python_path = ":".join([package_root, *spec.python_path])
    return {
        "name": f"{plan.kind} {plan.index}" + (" (speculative)" if plan.speculative else ""),
        "task_id": {"value": plan.attempt_id},
        "agent_id": {"value": agent_id},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": spec.cpus}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": spec.mem}}],
        "command": {
            "shell": False,
            "value": python,
            "arguments": [python, "-m", WORKER, *worker_arguments(plan, spec)],
            "environment": {"variables": [{"name": "PYTHONPATH", "value": python_path},
                                          {"name": "PYTHONUNBUFFERED", "value": "1"}]},
        },
    }
