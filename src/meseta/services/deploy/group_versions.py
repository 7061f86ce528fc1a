"""Group versions (kind ``group_version``): what a change through the groups API recorded, and
the root a rollback to one makes; pure.

    change of /shop at v  -> record: {"apps": {id: app version}, "groups": {id: dependencies}}
                             (the newest ``keep`` per group; older ones deleted)
    rollback /shop to v   -> restored: the root with /shop's subtree as recorded at v, its apps
                             taken from their stored versions (422 if one is no longer stored)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meseta.services.deploy import groups
from meseta.services.deploy.groups import GroupError, RootGroup
from meseta.services.model import App

Snapshot = dict[str, Any]


def record(recorded: dict[str, Snapshot], target: RootGroup, group_id: str, keep: int) -> list[tuple[str, str, Any]]:
    """Add ``group_id``'s version ``target.version`` to ``recorded``; the store changes it takes."""
    recorded[target.version] = groups.snapshot(target, group_id)
    changes: list[tuple[str, str, Any]] = [("group_version", f"{group_id}@{target.version}", recorded[target.version])]
    for old in sorted(recorded)[:max(0, len(recorded) - keep)]:
        del recorded[old]
        changes.append(("group_version", f"{group_id}@{old}", None))
    return changes


def restored(root: RootGroup, group_id: str, snap: Snapshot, app_versions: Mapping[str, Mapping[str, App]],
             new_version: str) -> RootGroup | GroupError:
    """``root`` with ``group_id`` back as ``snap`` recorded it, stamped ``new_version``."""
    apps = {a: app_versions.get(a, {}).get(v) for a, v in snap["apps"].items()}
    gone = sorted(a for a, app in apps.items() if app is None)
    if gone:
        return GroupError(422, "Object is not valid", tuple(
            ("/version", f"app {a} is no longer stored in version {snap['apps'][a]}") for a in gone))
    return groups.restore_group(root, group_id, {a: app for a, app in apps.items() if app is not None},
                                snap["groups"], version=new_version)
