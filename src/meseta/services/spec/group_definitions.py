"""Group definitions: POST/PUT /v2/groups bodies parsed into :class:`GroupSpec` trees; pure.

A body and what it defines (relative ids resolve against the enclosing group)::

    {"id": "/prod",                          GroupSpec /prod, dependencies None (keep)
     "apps": [{"id": "db", ...}],              app /prod/db
     "groups": [{"id": "front",                GroupSpec /prod/front
                 "dependencies": ["../db"],      dependencies ("/prod/db",)
                 "apps": [{"id": "web"}]}]}      app /prod/front/web

Every nested app or group must be a direct child of its group: ``{"id": "/group", "apps":
[{"id": "/app"}]}`` is 422 "identifier /app is not child of /group. Hint: use relative paths.".
Keys Meseta does not read are refused naming them, as in app definitions (``pods`` only when
empty, as GET shows them; ``version`` is what GET adds; ``scaleBy`` only alone, handled before).
Errors carry Marathon's JSON paths (``/groups(0)/apps(1)/cmd``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meseta.services.deploy.groups import ROOT, Detail, GroupError, GroupSpec, canonical, parent_of, path_errors
from meseta.services.model import App
from meseta.services.spec.app_fields import UNSUPPORTED

# normalise_app(app_json, group_id) -> (app, errors): app ids resolved against group_id.
GROUP_KEYS = frozenset({"id", "apps", "groups", "dependencies", "version", "pods"})
NormaliseApp = Callable[[dict[str, Any], str], tuple[App | None, list[Detail]]]


def not_child_message(child: str, group_id: str) -> str:
    return f"identifier {child} is not child of {group_id}. Hint: use relative paths."


def parse_group(body: Any, base: str = ROOT, *, normalise_app: NormaliseApp) -> GroupSpec | GroupError:
    """A POST/PUT /v2/groups body as a :class:`GroupSpec`; its ``id`` (default: ``base``) is
    resolved against ``base``, nested ids against their group, which they must be children of.

    ``normalise_app(app_json, group_id)`` resolves an app's relative ids against ``group_id``.
    """
    errors: list[Detail] = []
    if not isinstance(body, dict):
        return GroupError(422, "Object is not valid", (("/", "must be an object"),))
    raw_id = body.get("id", base)
    if not isinstance(raw_id, str):
        return GroupError(422, "Object is not valid", (("/id", "must be a string"),))
    group_id = canonical(raw_id, base)
    errors += [("/id", e) for e in path_errors(group_id)]
    spec = _parse_spec(body, group_id, "", errors, normalise_app, set())
    return GroupError(422, "Object is not valid", tuple(errors)) if errors else spec


def _parse_spec(body: dict[str, Any], group_id: str, at: str, errors: list[Detail],
                normalise_app: NormaliseApp, seen: set[str]) -> GroupSpec:
    for key in body:
        if key == "scaleBy":
            errors.append((f"{at}/scaleBy", "cannot be combined with apps or groups, nor nested"))
        elif key not in GROUP_KEYS or (key == "pods" and body[key]):
            errors.append((f"{at}/{key}", UNSUPPORTED))
    deps = body.get("dependencies")
    if deps is not None and not (isinstance(deps, list) and all(isinstance(d, str) for d in deps)):
        errors.append((f"{at}/dependencies", "must be an array of strings"))
        deps = None
    return GroupSpec(
        id=group_id,
        dependencies=None if deps is None else tuple(canonical(d, group_id) for d in deps),
        apps=_parse_apps(body, group_id, at, errors, normalise_app, seen),
        groups=_parse_groups(body, group_id, at, errors, normalise_app, seen),
    )


def _items(body: dict[str, Any], key: str, at: str, errors: list[Detail]) -> list[Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, list):
        errors.append((f"{at}/{key}", "must be an array"))
        return None
    return value


def _claim(path: str, at: str, group_id: str, errors: list[Detail], seen: set[str]) -> bool:
    if parent_of(path) != group_id or path == group_id:
        errors.append((at, not_child_message(path, group_id)))
        return False
    if path in seen:
        errors.append((at, f"{path} is defined more than once"))
        return False
    seen.add(path)
    return True


def _parse_apps(body: dict[str, Any], group_id: str, at: str, errors: list[Detail],
                normalise_app: NormaliseApp, seen: set[str]) -> dict[str, App] | None:
    items = _items(body, "apps", at, errors)
    if items is None:
        return None
    apps: dict[str, App] = {}
    for i, raw in enumerate(items):
        here = f"{at}/apps({i})"
        if not isinstance(raw, dict):
            errors.append((here, "must be an object"))
            continue
        app, app_errors = normalise_app(raw, group_id)
        errors += [(here + path, message) for path, message in app_errors]
        if app is not None and _claim(app["id"], f"{here}/id", group_id, errors, seen):
            apps[app["id"]] = app
    return apps


def _parse_groups(body: dict[str, Any], group_id: str, at: str, errors: list[Detail],
                  normalise_app: NormaliseApp, seen: set[str]) -> tuple[GroupSpec, ...] | None:
    items = _items(body, "groups", at, errors)
    if items is None:
        return None
    out = []
    for i, raw in enumerate(items):
        here = f"{at}/groups({i})"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            errors.append((f"{here}/id", "is required and must be a string"))
            continue
        child = canonical(raw["id"], group_id)
        errors += [(f"{here}/id", e) for e in path_errors(child)]
        if _claim(child, f"{here}/id", group_id, errors, seen):
            out.append(_parse_spec(raw, child, here, errors, normalise_app, seen))
    return tuple(out)
