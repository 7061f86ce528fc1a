"""A run of a job as a Mesos ``TaskInfo`` (pure): what Chronos puts in it.

    TaskInfo
      name        ChronosTask:<job name>
      task_id     runs.task_id: ct:<due ms>:<attempt>:<job>:<arguments>
      resources   cpus/mem/disk of the job (0: the scheduler's defaults), taken from the offer
      command     the command under /bin/sh -c with the run's arguments appended (shell: true), or
                  the command as the executable with the job's then the run's arguments (shell: false);
                  fetch -> uris; runAsUser -> user
        environment  the job's variables + mesos_task_id, CHRONOS_JOB_OWNER, CHRONOS_JOB_NAME,
                     CHRONOS_RESOURCE_CPU/MEM/DISK, HOST
      container   the job's DOCKER or MESOS container: its image is the run's root filesystem
      labels      the run's cause and attempt
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from meseta.jobs.runs import Run
from meseta.jobs.spec import JobSpec
from meseta.protocol.container_info import DEFAULT_BRIDGE


@dataclass(frozen=True, slots=True)
class TaskDefaults:
    """The scheduler's flags for a job's zero resources and empty user (Chronos's --mesos_task_*)."""

    cpus: float = 0.1
    mem: float = 128.0
    disk: float = 256.0
    user: str = "root"


def needs(spec: JobSpec, defaults: TaskDefaults) -> dict[str, float]:
    return {"cpus": spec.cpus or defaults.cpus, "mem": spec.mem or defaults.mem, "disk": spec.disk or defaults.disk}


def _command(spec: JobSpec, run: Run, defaults: TaskDefaults) -> dict[str, Any]:
    if spec.shell:
        value = spec.command
        extra = (*spec.arguments, *run.arguments)
        if extra:
            value += " " + " ".join(shlex.quote(a) for a in extra)
        command: dict[str, Any] = {"shell": True, "value": value}
    else:
        command = {"shell": False, "value": spec.command,
                   "arguments": [spec.command, *spec.arguments, *run.arguments]}
    if spec.fetch:
        command["uris"] = [{"value": f["uri"], "extract": bool(f.get("extract", True)),
                            "executable": bool(f.get("executable", False)), "cache": bool(f.get("cache", False)),
                            **({"output_file": f["outputFile"]} if f.get("outputFile") else {})}
                           for f in spec.fetch]
    command["user"] = spec.run_as_user or defaults.user
    return command


def environment(spec: JobSpec, run: Run, resources: dict[str, float], host: str) -> list[dict[str, str]]:
    env = dict(spec.environment)
    env.update({"mesos_task_id": run.task_id, "CHRONOS_JOB_OWNER": spec.owner, "CHRONOS_JOB_NAME": spec.name,
                "CHRONOS_RESOURCE_CPU": f"{resources['cpus']:g}", "CHRONOS_RESOURCE_MEM": f"{resources['mem']:g}",
                "CHRONOS_RESOURCE_DISK": f"{resources['disk']:g}", "HOST": host})
    return [{"name": name, "value": value} for name, value in sorted(env.items())]


def container(spec: JobSpec) -> dict[str, Any] | None:
    """The job's ContainerInfo (spec.parse_job refuses what Meseta cannot run): its image, its
    network (HOST; BRIDGE: the agents' mesos-bridge CNI network; USER: the named one) and its
    host-path volumes."""
    if not spec.container:
        return None
    box = spec.container
    force = bool(box.get("forcePullImage", False))
    network, name = box.get("network", "HOST"), box.get("networkName")
    out: dict[str, Any]
    if box.get("type") == "DOCKER":  # the agent runs it as it runs a MESOS image
        out = {"type": "DOCKER", "docker": {"image": box["image"], "network": network, "force_pull_image": force}}
        if network == "USER":
            out["network_infos"] = [{"name": name}]
    else:
        out = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": box["image"]},
                                                    "cached": not force}}}
        if network != "HOST":
            out["network_infos"] = [{"name": name if network == "USER" else DEFAULT_BRIDGE}]
    if box.get("volumes"):
        out["volumes"] = [{"container_path": v["containerPath"], "host_path": v["hostPath"], "mode": v["mode"]}
                          for v in box["volumes"]]
    return out


def task_info(spec: JobSpec, run: Run, *, agent_id: str, host: str, resources: list[dict[str, Any]],
              defaults: TaskDefaults) -> dict[str, Any]:
    amounts = needs(spec, defaults)
    command = _command(spec, run, defaults)
    command["environment"] = {"variables": environment(spec, run, amounts, host)}
    info: dict[str, Any] = {
        "name": f"ChronosTask:{spec.name}",
        "task_id": {"value": run.task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "command": command,
        "labels": {"labels": [{"key": "cause", "value": run.cause.value},
                              {"key": "attempt", "value": str(run.attempt)}]},
    }
    box = container(spec)
    if box is not None:
        info["container"] = box
    return info
