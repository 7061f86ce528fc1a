"""A job's TaskInfo, and the exit code a final TaskStatus stands for; pure.

Task ids: ``<run id>.<index>.<attempt>`` (attempt 0 first, one more per retry), so an update names
its task and attempt, and a late update of an attempt already replaced is recognised as stale.

Exit codes, as a shell reports them::

    TASK_FINISHED                                         0
    TASK_FAILED "Command exited with status N"            N
    TASK_FAILED "Command terminated with signal <name>"   128 + the signal's number
    any other end (failed to launch, lost, killed, ...)   1   (FAILURE_CODE)
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from typing import Any

from meseta.batch.job import TASK_INDEX_VARIABLE, Job

FAILURE_CODE = 1  # a task that ended without an exit status of its own
_EXITED = re.compile(r"Command exited with status (\d+)")
_SIGNALLED = re.compile(r"Command terminated with signal (.+)")
_SIGNALS = {**{s.name: int(s) for s in signal.Signals},  # "Killed" (strsignal) or "SIGKILL" -> 9
            **{signal.strsignal(s) or s.name: int(s) for s in signal.Signals}}


def task_id_of(run_id: str, index: int, attempt: int) -> str:
    return f"{run_id}.{index}.{attempt}"


def index_attempt_of(run_id: str, task_id: str) -> tuple[int, int] | None:
    """(index, attempt) of one of this run's task ids, or None for anyone else's."""
    if not task_id.startswith(f"{run_id}."):
        return None
    index, _, attempt = task_id[len(run_id) + 1:].partition(".")
    if not index.isdigit() or not attempt.isdigit():
        return None
    return int(index), int(attempt)


def build_task_info(job: Job, run_id: str, index: int, attempt: int, agent_id: str,
                    resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The v1 TaskInfo of task ``index`` (its ``attempt``) on ``agent_id``."""
    variables = [{"name": name, "type": "VALUE", "value": value} for name, value in job.env]
    variables.append({"name": TASK_INDEX_VARIABLE, "type": "VALUE", "value": str(index)})
    command: dict[str, Any] = {"value": job.command, "shell": True, "environment": {"variables": variables}}
    if job.uris:
        command["uris"] = [_uri_json(uri) for uri in job.uris]
    task: dict[str, Any] = {
        "name": f"{job.name}-{index}" if job.count > 1 else job.name,
        "task_id": {"value": task_id_of(run_id, index, attempt)},
        "agent_id": {"value": agent_id},
        "resources": resources,
        "command": command,
    }
    if job.image is not None:
        task["container"] = {"type": "MESOS",
                             "mesos": {"image": {"type": "DOCKER", "docker": {"name": job.image}}}}
    return task


def _uri_json(uri: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"value": uri.value, "extract": uri.extract, "executable": uri.executable,
                           "cache": uri.cache}
    if uri.output_file is not None:
        out["output_file"] = uri.output_file
    return out


def exit_code_of(status: Mapping[str, Any]) -> int:
    """The exit code a final status stands for (see the module's table)."""
    if status.get("state") == "TASK_FINISHED":
        return 0
    message = str(status.get("message") or "")
    exited = _EXITED.search(message)
    if exited:
        return min(int(exited.group(1)), 255)
    signalled = _SIGNALLED.search(message)
    if signalled:
        number = _SIGNALS.get(signalled.group(1).strip())
        if number is not None:
            return 128 + number
    return FAILURE_CODE
