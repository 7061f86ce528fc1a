"""The root group: every app by absolute id, plus the groups above them; pure, no I/O.

The tree Marathon shows under ``GET /v2/groups``::

    /                      root (always exists)
    |-- /prod              explicit group: {dependencies, version}
    |   |-- /prod/db       app
    |   `-- /prod/web      app, dependencies ["/prod/db"]
    `-- /dev               implicit group (only implied by /dev/api/x)
        `-- /dev/api       implicit group
            `-- /dev/api/x app

Only apps and *explicit* groups (made by the groups API, possibly empty) are stored; every
ancestor of an app or group is a group too (implicit). An app and a group never share a path.
A :class:`RootGroup` is frozen: every change returns a new one stamped with the change's version.

Dependencies: an app depends on its own ``dependencies`` plus those of every group above it; a
dependency naming a group means every app below that group; ids naming nothing are ignored
(as Marathon does). The resulting app graph must be acyclic (422 otherwise).

Group definitions (POST/PUT /v2/groups bodies) are parsed into :class:`GroupSpec` trees by
``services.group_definitions``; a key left out of a body (``apps``, ``groups``,
``dependencies``) keeps what the group has (PUT).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from meseta.services.model import App

ROOT = "/"
# The app/group id segment rule of Marathon's PathId validation (spec 2.1).
SEGMENT_PATTERN = r"^(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$"
_SEGMENT = re.compile(SEGMENT_PATTERN)
# Keys that say *when* a definition changed, not *what* it is: ignored when comparing apps.
VERSION_KEYS = frozenset({"version", "versionInfo"})
CLASH_MESSAGE = "Groups and Applications may not have the same identifier."
CYCLE_MESSAGE = "Dependency graph has cyclic dependencies."

Detail = tuple[str, str]  # (JSON path, error), e.g. ("/apps(0)/id", "is not child of ...")


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    dependencies: tuple[str, ...] = ()  # absolute app or group ids
    version: str = ""


@dataclass(frozen=True)
class RootGroup:
    apps: Mapping[str, App] = field(default_factory=dict)  # never mutated: replace the RootGroup
    groups: Mapping[str, Group] = field(default_factory=dict)  # explicit groups only
    version: str = ""


@dataclass(frozen=True)
class GroupError:
    """A rejected change as data: ``status`` 409 or 422, Marathon's message, per-path details."""

    status: int
    message: str
    details: tuple[Detail, ...] = ()


@dataclass(frozen=True)
class GroupSpec:
    """One group of a POST/PUT body; ``None`` means the key was absent (keep what exists)."""

    id: str
    dependencies: tuple[str, ...] | None = None
    apps: Mapping[str, App] | None = None  # the group's direct apps
    groups: tuple[GroupSpec, ...] | None = None  # its direct subgroups


# ---- paths -------------------------------------------------------------------------------


def canonical(path: str, base: str = ROOT) -> str:
    """``path`` made absolute against the group ``base``, with ``.`` and ``..`` resolved."""
    segments = [] if path.startswith("/") else [s for s in base.split("/") if s]
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or ROOT


def ancestors(path: str) -> list[str]:
    """The groups above ``path``, nearest first, ending with the root."""
    out = []
    while path != ROOT:
        path = parent_of(path)
        out.append(path)
    return out


def is_below(path: str, group_id: str) -> bool:
    """Whether ``path`` lies strictly inside ``group_id``."""
    return path != group_id and (group_id == ROOT or path.startswith(group_id + "/"))


def path_errors(path: str) -> list[str]:
    return [f"must fully match regular expression '{SEGMENT_PATTERN}'"
            for segment in path.split("/")[1:] if segment and not _SEGMENT.match(segment)][:1]


# ---- reading the tree ---------------------------------------------------------------------


def group_ids(root: RootGroup) -> set[str]:
    """Every group of the tree: the root, explicit groups and all implicit ancestors."""
    out = {ROOT}
    for path in [*root.groups, *(parent_of(a) for a in root.apps)]:
        while path not in out:
            out.add(path)
            path = parent_of(path)
    return out


def apps_below(root: RootGroup, group_id: str) -> list[App]:
    """The apps inside ``group_id`` at any depth, by id."""
    return [root.apps[a] for a in sorted(root.apps) if is_below(a, group_id)]


def _apps_by_group(root: RootGroup) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for app_id in root.apps:
        for group_id in ancestors(app_id):
            index.setdefault(group_id, set()).add(app_id)
    return index


def dependents_of(apps: Mapping[str, App]) -> set[str]:
    """The ids of the apps that have dependencies of their own."""
    return {app_id for app_id, app in apps.items() if app.get("dependencies")}


def dependency_graph(root: RootGroup, dependents: Collection[str] | None = None) -> dict[str, set[str]]:
    """app id -> the app ids it directly depends on (own and inherited group dependencies);
    apps that depend on nothing are left out (most of a large root). ``dependents``: the apps
    with dependencies of their own, when the caller keeps them (else every app is looked at)."""
    candidates = dependents_of(root.apps) if dependents is None else dependents
    apps_with_deps = {a: root.apps[a]["dependencies"] for a in candidates if root.apps.get(a, {}).get("dependencies")}
    groups_with_deps = [g for g in root.groups.values() if g.dependencies]
    if not apps_with_deps and not groups_with_deps:
        return {}
    named = {d for deps in apps_with_deps.values() for d in deps}
    below = _apps_by_group(root) if groups_with_deps or named - root.apps.keys() else {}

    def resolve(ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for dep in ids:
            out |= {dep} if dep in root.apps else below.get(dep, set())
        return out

    graph = {app_id: resolve(deps) for app_id, deps in apps_with_deps.items()}
    for group in groups_with_deps:
        targets = resolve(group.dependencies)
        for app_id in below.get(group.id, ()):
            graph.setdefault(app_id, set()).update(targets)
    return {app_id: deps for app_id, deps in graph.items() if deps}


def transitive_dependencies(root: RootGroup, app_id: str) -> set[str]:
    """Every app ``app_id`` waits for, directly or through others (itself only on a cycle)."""
    graph = dependency_graph(root)
    seen: set[str] = set()
    todo = list(graph.get(app_id, ()))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(graph.get(dep, ()))
    return seen


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One dependency cycle as ``[a, b, ..., a]``, or None; iterative (chains of 2,000 apps)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif nxt not in state and nxt in graph:  # an app outside the graph depends on nothing
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def validate_root(root: RootGroup, *, touched: Collection[str] | None = None, known_groups: Collection[str] = (),
                  dependents: Collection[str] | None = None) -> GroupError | None:
    """422 when an app and a group share a path or the dependencies form a cycle. ``touched``
    (with ``known_groups``, every group of the root before): only those apps changed, so only
    they can clash (the cost is the change's, not the root's)."""
    if touched is None:
        clashes = sorted(set(root.apps) & group_ids(root))
    else:
        clashes = sorted(a for a in touched if a in root.apps
                         and (a in known_groups or any(g in root.apps for g in ancestors(a))))
    if clashes:
        return GroupError(422, CLASH_MESSAGE, tuple((c, f"{c} is both an app and a group") for c in clashes))
    cycle = find_cycle(dependency_graph(root, dependents))
    if cycle:
        return GroupError(422, CYCLE_MESSAGE, (("/", " -> ".join(cycle)),))
    return None


# ---- comparing and stamping apps ------------------------------------------------------------


def _config(app: App, *drop: str) -> dict[str, Any]:
    return {k: v for k, v in app.items() if k not in VERSION_KEYS and k not in drop}


def same_definition(a: App, b: App) -> bool:
    """Equal apart from version stamps: no deployment is needed between them."""
    return _config(a) == _config(b)


def is_scale_only(old: App, new: App) -> bool:
    """The change from ``old`` to ``new`` touches nothing but ``instances`` (spec 2.8)."""
    return _config(old, "instances") == _config(new, "instances")


def stamp(app: App, version: str, previous: App | None = None) -> App:
    """``app`` as stored by a change at ``version``: unchanged apps keep their old stamps;
    ``versionInfo`` (when the app carries one) records a scale or a config change."""
    if previous is not None and same_definition(app, previous):
        return previous
    out = {**app, "version": version}
    info = previous.get("versionInfo") if previous is not None else app.get("versionInfo")
    if isinstance(info, dict):
        scale_only = previous is not None and is_scale_only(previous, app)
        last_config = info.get("lastConfigChangeAt", version) if scale_only else version
        out["versionInfo"] = {**info, "lastScalingAt": version, "lastConfigChangeAt": last_config}
    return out


# ---- changing the tree ------------------------------------------------------------------------


def _touch_groups(groups: dict[str, Group], path: str, version: str) -> None:
    for group_id in [path, *ancestors(path)]:
        if group_id in groups:
            groups[group_id] = replace(groups[group_id], version=version)


def put_app(root: RootGroup, app: App, *, version: str) -> RootGroup:
    """``root`` with ``app`` created or replaced (stamped unless unchanged)."""
    apps = dict(root.apps)
    apps[app["id"]] = stamp(app, version, root.apps.get(app["id"]))
    groups = dict(root.groups)
    _touch_groups(groups, parent_of(app["id"]), version)
    return RootGroup(apps, groups, version)


def remove_app(root: RootGroup, app_id: str, *, version: str) -> RootGroup:
    apps = {k: v for k, v in root.apps.items() if k != app_id}
    groups = dict(root.groups)
    _touch_groups(groups, parent_of(app_id), version)
    return RootGroup(apps, groups, version)


def remove_group(root: RootGroup, group_id: str, *, version: str) -> RootGroup:
    """``root`` without ``group_id`` and everything below it (the root itself is emptied)."""
    apps = {k: v for k, v in root.apps.items() if not is_below(k, group_id)}
    groups = {k: v for k, v in root.groups.items() if k != group_id and not is_below(k, group_id)}
    if group_id == ROOT and ROOT in root.groups:
        groups[ROOT] = Group(ROOT, (), version)
    _touch_groups(groups, parent_of(group_id), version)
    return RootGroup(apps, groups, version)


def scale_by(root: RootGroup, group_id: str, factor: float, *, version: str) -> RootGroup:
    """Every app below ``group_id`` with ``ceil(instances x factor)`` instances."""
    apps = dict(root.apps)
    for app in apps_below(root, group_id):
        instances = math.ceil(app["instances"] * factor - 1e-9)  # 25 x 0.28 (7.000000000000001) is 7
        apps[app["id"]] = stamp({**app, "instances": max(0, instances)}, version, app)
    groups = dict(root.groups)
    _touch_groups(groups, group_id, version)
    return RootGroup(apps, groups, version)


def _apply_spec(apps: dict[str, App], groups: dict[str, Group], spec: GroupSpec, version: str) -> None:
    old = groups.get(spec.id)
    deps = spec.dependencies if spec.dependencies is not None else (old.dependencies if old else ())
    groups[spec.id] = Group(spec.id, deps, version)
    if spec.apps is not None:
        for app_id in [a for a in apps if parent_of(a) == spec.id and a not in spec.apps]:
            del apps[app_id]
        for app_id, app in spec.apps.items():
            apps[app_id] = stamp(app, version, apps.get(app_id))
    if spec.groups is not None:
        kept = {g.id for g in spec.groups}
        present = group_ids(RootGroup(apps, groups))
        for gone in [g for g in present if parent_of(g) == spec.id and g != ROOT and g not in kept]:
            for app_id in [a for a in apps if is_below(a, gone)]:
                del apps[app_id]
            for sub in [g for g in groups if g == gone or is_below(g, gone)]:
                del groups[sub]
        for child in spec.groups:
            _apply_spec(apps, groups, child, version)


def snapshot(root: RootGroup, group_id: str) -> dict[str, Any]:
    """What a group version records (kind ``group_version``): the versions of the apps below the
    group and the dependencies of the explicit groups at and below it; the app definitions
    themselves are the app versions."""
    return {"apps": {a: app["version"] for a, app in root.apps.items() if is_below(a, group_id)},
            "groups": {g: list(group.dependencies) for g, group in root.groups.items()
                       if g == group_id or is_below(g, group_id)}}


def restore_group(root: RootGroup, group_id: str, apps: Mapping[str, App], groups: Mapping[str, Iterable[str]], *,
                  version: str) -> RootGroup | GroupError:
    """``root`` with everything below ``group_id`` replaced by ``apps`` and the explicit
    ``groups`` (id -> dependencies) of a recorded version, stamped ``version`` where they differ
    from what is there now (a rollback is a new version with the old definitions)."""
    kept_apps = {a: app for a, app in root.apps.items() if not is_below(a, group_id)}
    for app_id, app in apps.items():
        kept_apps[app_id] = stamp(app, version, root.apps.get(app_id))
    kept_groups = {g: group for g, group in root.groups.items() if g != group_id and not is_below(g, group_id)}
    for gid, dependencies in groups.items():
        kept_groups[gid] = Group(gid, tuple(dependencies), version)
    _touch_groups(kept_groups, parent_of(group_id), version)
    target = RootGroup(kept_apps, kept_groups, version)
    return validate_root(target) or target


def update_group(root: RootGroup, spec: GroupSpec, *, version: str) -> RootGroup | GroupError:
    """PUT /v2/groups/{id}: apply ``spec`` (creating the group if needed); 422 if invalid."""
    apps, groups = dict(root.apps), dict(root.groups)
    _apply_spec(apps, groups, spec, version)
    _touch_groups(groups, parent_of(spec.id), version)
    target = RootGroup(apps, groups, version)
    return validate_root(target) or target


def create_group(root: RootGroup, spec: GroupSpec, *, version: str) -> RootGroup | GroupError:
    """POST /v2/groups: like :func:`update_group`, but 409 when the path is taken."""
    if spec.id in root.apps:
        return GroupError(409, f"An app with id [{spec.id}] already exists.")
    if spec.id in group_ids(root):
        return GroupError(409, f"Group {spec.id} is already created. Use PUT to change this group.")
    return update_group(root, spec, version=version)
