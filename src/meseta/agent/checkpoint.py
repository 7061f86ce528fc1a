"""What the agent remembers across its own restarts (layout in ``meseta.agent.paths``).

    agent id          meta/slaves/latest -> <id>, with slave.info: re-register as the same agent
    resources         meta/resources/resources.info: dynamic reservations and persistent volumes,
                      as the master last sent them (CHECKPOINT_RESOURCES)

The agent's total is its flag resources with the checkpointed ones carved out of them::

    total = flags - stripped(checkpointed) + checkpointed

A checkpoint that the flags can no longer hold (the operator shrank ``--resources``) is ignored,
and the agent starts afresh with a new id, as Mesos refuses incompatible recovered resources.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from meseta.agent import paths
from meseta.core.reservations import stripped, volumes
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


def total_with(flags: Resources, checkpointed: Resources) -> Resources | None:
    """The agent's total, or None when the flags cannot hold the checkpointed resources."""
    base = stripped(checkpointed)
    if not flags.contains(base):
        return None
    return flags - base + checkpointed


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
