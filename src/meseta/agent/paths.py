"""The one owner of the agent's on-disk layout (Mesos ``slave/paths.hpp``)::

    <work_dir>/
      slaves/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/
          <container_id>/          a sandbox: the executor's cwd, with stdout and stderr
          latest -> <container_id>
      meta/
        slaves/<agent_id>/slave.info   AgentInfo JSON (the id survives an agent restart)
        slaves/<agent_id>/frameworks/<framework_id>/framework.info
            executors/<executor_id>/runs/<container_id>/run.info      kind, executor, sandbox
                wrapper.pid, exit.status       a custom executor's status wrapper, as for tasks
                tasks/<task_id>/task.info      TaskInfo JSON
                tasks/<task_id>/wrapper.pid    the pid of the task's wrapper (its process group)
                tasks/<task_id>/exit.status    written by the wrapper when the task ends
                tasks/<task_id>/task.updates   JSON lines: {"update": ...} and {"ack": uuid}
        slaves/latest -> <agent_id>
        resources/resources.info       checkpointed resources JSON: dynamic reservations, volumes
      volumes/roles/<role>/<persistence_id>/   persistent volume data (never garbage collected)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from meseta.protocol.ids import id_problem


def validate_id(kind: str, value: str) -> None:
    """Ids become path components: reject anything that could escape or confuse the tree."""
    problem = id_problem(kind, value)
    if problem is not None:
        raise ValueError(problem)


def slaves_root(work_dir: Path) -> Path:
    return work_dir / "slaves"


def sandbox_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str) -> Path:
    for kind, value in (("agent id", agent_id), ("framework id", framework_id),
                        ("executor id", executor_id), ("container id", container_id)):
        validate_id(kind, value)
    return (slaves_root(work_dir) / agent_id / "frameworks" / framework_id / "executors" / executor_id
            / "runs" / container_id)


def create_sandbox(work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str) -> Path:
    sandbox = sandbox_dir(work_dir, agent_id, framework_id, executor_id, container_id)
    sandbox.mkdir(parents=True, exist_ok=True, mode=0o755)
    latest = sandbox.parent / "latest"
    tmp = sandbox.parent / f".latest.{container_id}"
    os.symlink(container_id, tmp)
    os.replace(tmp, latest)
    return sandbox


def meta_dir(work_dir: Path) -> Path:
    return work_dir / "meta"


def agent_info_file(work_dir: Path, agent_id: str) -> Path:
    validate_id("agent id", agent_id)
    return meta_dir(work_dir) / "slaves" / agent_id / "slave.info"


def latest_agent_link(work_dir: Path) -> Path:
    return meta_dir(work_dir) / "slaves" / "latest"


def resources_file(work_dir: Path) -> Path:
    return meta_dir(work_dir) / "resources" / "resources.info"


def volume_dir(work_dir: Path, role: str, persistence_id: str) -> Path:
    validate_id("persistence id", persistence_id)
    for part in role.split("/"):
        validate_id("role", part)
    return work_dir / "volumes" / "roles" / role / persistence_id


def write_atomically(path: Path, data: bytes, sync: bool = True) -> None:
    """Write, fsync, rename: a reader sees the old file or the new one, never a torn one.
    ``sync=False`` skips the fsync: enough to survive the agent process dying (the page cache
    outlives it), not the machine; per-task files use it, since a machine crash ends the tasks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # writers in several threads never share one
    with open(tmp, "wb") as out:
        out.write(data)
        if sync:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)


def point_latest(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def disk_usage(root: Path) -> int:
    """Bytes used under ``root`` as ``du`` counts them, links not followed (volumes excluded)."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif not entry.is_symlink():
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def meta_run_dir(work_dir: Path, agent_id: str, framework_id: str, executor_id: str, container_id: str) -> Path:
    sandbox_dir(work_dir, agent_id, framework_id, executor_id, container_id)  # validates the ids
    return (meta_dir(work_dir) / "slaves" / agent_id / "frameworks" / framework_id / "executors" / executor_id
            / "runs" / container_id)


def meta_task_dir(run_dir: Path, task_id: str) -> Path:
    validate_id("task id", task_id)
    return run_dir / "tasks" / task_id


def meta_frameworks_dir(work_dir: Path, agent_id: str) -> Path:
    validate_id("agent id", agent_id)
    return meta_dir(work_dir) / "slaves" / agent_id / "frameworks"
