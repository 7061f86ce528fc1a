"""What the agent remembers across its own restarts (layout in ``meseta.agent.paths``).

    agent id          meta/slaves/latest -> <id>, with slave.info: re-register as the same agent
    resources         meta/resources/resources.info: dynamic reservations and persistent volumes,
                      as the master last sent them (CHECKPOINT_RESOURCES)

The agent's total is its flag resources with the checkpointed ones carved out of them
(``meseta.agent.machine.total_with``); a checkpoint that the flags can no longer hold (the operator
shrank ``--resources``) is ignored, and the agent starts afresh with a new id, as Mesos refuses
incompatible recovered resources.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from meseta.agent import paths
from meseta.agent.recovery_plan import SavedRun, SavedTask
from meseta.core.reservations import volumes
from meseta.core.resources import ResourceError, Resources, parse_json

log = logging.getLogger(__name__)


def load_agent_id(work_dir: Path) -> str | None:
    link = paths.latest_agent_link(work_dir)
    if not link.is_symlink():
        return None
    agent_id = link.readlink().name
    return agent_id if paths.agent_info_file(work_dir, agent_id).exists() else None


def save_agent(work_dir: Path, agent_id: str, info: dict[str, Any]) -> None:
    paths.write_atomically(paths.agent_info_file(work_dir, agent_id), json.dumps(info).encode())
    paths.point_latest(paths.latest_agent_link(work_dir), agent_id)


def forget_agent(work_dir: Path) -> None:
    """The master no longer knows us: the next registration is a new agent, without reservations."""
    link = paths.latest_agent_link(work_dir)
    if link.is_symlink():
        link.unlink()
    paths.resources_file(work_dir).unlink(missing_ok=True)


def load_resources(work_dir: Path) -> Resources:
    path = paths.resources_file(work_dir)
    if not path.exists():
        return Resources()
    try:
        return parse_json(json.loads(path.read_bytes()))
    except (ValueError, ResourceError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return Resources()


def save_resources(work_dir: Path, checkpointed: Resources, previous: Resources) -> None:
    """Checkpoint, make the new volumes' directories and delete the data of destroyed ones."""
    paths.write_atomically(paths.resources_file(work_dir), json.dumps(checkpointed.to_json()).encode())
    keep = set()
    for role, volume in volumes(checkpointed):
        directory = paths.volume_dir(work_dir, role, volume["id"])
        directory.mkdir(parents=True, exist_ok=True)
        keep.add(directory)
    for role, volume in volumes(previous):
        directory = paths.volume_dir(work_dir, role, volume["id"])
        if directory not in keep:
            shutil.rmtree(directory, ignore_errors=True)


def link_volumes(work_dir: Path, sandbox: Path, resources: Resources) -> None:
    """Each volume appears in the sandbox at its container_path (a symlink, as Mesos' posix
    filesystem isolator does without a mount namespace)."""
    for role, volume in volumes(resources):
        target = paths.volume_dir(work_dir, role, volume["id"])
        target.mkdir(parents=True, exist_ok=True)
        link = sandbox / volume["container_path"]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() and not link.exists():
            link.symlink_to(target, target_is_directory=True)


# --------------------------------------------------------------------- runs and tasks
# What a restarted agent needs to find its tasks again (layout in ``meseta.agent.paths``).


class FrameworkFiles:
    """Each framework's ``framework.info``, written only when it differs from what this agent
    process last wrote there: every run of a framework carries the same FrameworkInfo, and a
    thousand one-task runs made a thousand identical writes. Runs are saved from worker threads:
    two may both write a new one (harmless, each write is atomic); the note follows the write."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._written: dict[tuple[str, str], bytes] = {}  # (agent id, framework id) -> contents

    def save(self, agent_id: str, framework_info: dict[str, Any]) -> None:
        framework_id = framework_info["id"]["value"]
        data = json.dumps(framework_info).encode()
        if self._written.get((agent_id, framework_id)) == data:
            return
        framework_file = paths.meta_frameworks_dir(self.work_dir, agent_id) / framework_id / "framework.info"
        paths.write_atomically(framework_file, data, sync=False)
        self._written[(agent_id, framework_id)] = data


def save_run(run_info: dict[str, Any], run_dir: Path) -> None:
    """A run's ``run.info`` (its framework's ``framework.info`` is saved first: ``FrameworkFiles``)."""
    paths.write_atomically(run_dir / "run.info", json.dumps(run_info).encode(), sync=False)


def save_task(task_dir: Path, task_info: dict[str, Any]) -> None:
    paths.write_atomically(task_dir / "task.info", json.dumps(task_info).encode(), sync=False)


def save_wrapper_pid(directory: Path, pid: int) -> None:
    """The pid of the status wrapper of a task (its task directory) or a custom executor (its run)."""
    paths.write_atomically(directory / "wrapper.pid", str(pid).encode(), sync=False)


def append_update_record(task_dir: Path, record: dict[str, Any]) -> None:
    """One line per update or acknowledgement; a torn last line (a crash mid-write) is skipped on read."""
    task_dir.mkdir(parents=True, exist_ok=True)
    with open(task_dir / "task.updates", "a") as out:
        out.write(json.dumps(record) + "\n")


def load_runs(work_dir: Path, agent_id: str) -> list[SavedRun]:
    """Every checkpointed run of this agent (the latest run of each executor)."""
    runs = []
    for framework_dir in sorted(paths.meta_frameworks_dir(work_dir, agent_id).glob("*")):
        framework_info = _json(framework_dir / "framework.info")
        if framework_info is None:
            continue
        for run_dir in sorted(framework_dir.glob("executors/*/runs/*")):
            info = _json(run_dir / "run.info")
            if info is None:
                continue
            tasks = []
            for task_dir in sorted(run_dir.glob("tasks/*")):
                task_info = _json(task_dir / "task.info")
                if task_info is not None:
                    tasks.append(SavedTask(task_info, task_dir, _pid(task_dir),
                                               _records(task_dir / "task.updates")))
            runs.append(SavedRun(framework_info, info, run_dir, tasks, _pid(run_dir)))
    return runs


def forget_run(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def _pid(directory: Path) -> int | None:
    text = _text(directory / "wrapper.pid")
    return int(text) if text.isdigit() else None


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in _text(path).splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
