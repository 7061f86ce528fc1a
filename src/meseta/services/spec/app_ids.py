"""Marathon path ids and the task ids derived from them; pure string work.

An app or group id is a path of segments, always shown absolute::

    /prod/web/frontend          segments: prod, web, frontend
     '--- parent /prod/web       Mesos task name: frontend.web.prod (reversed, dot-joined)

Task ids carry their app, so ``POST /v2/tasks/delete`` can find the app from the id alone.
The app path without its leading slash, with ``/`` turned into ``_`` (never legal inside a
segment), is the *safe* app id::

    prod_web_frontend.4f0c7e40-8f4c-11e6-8a56-0242ac110002      legacy, what we issue
    prod_web_frontend_4f0c7e40-8f4c-11e6-8a56-0242ac110002      legacy, '_' separator
    prod_web_frontend.instance-4f0c7e40-..._app[.<n>]           Marathon 1.8+ instance form

The uuid never contains ``.`` or ``_``, so ids are parsed from the right (app ids may hold dots).
"""

from __future__ import annotations

import re

SEGMENT_PATTERN = (
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
)  # Marathon's own spelling: it appears verbatim in the 422 message
_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])"
_SEGMENT = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}|\.|\.\.")
RESERVED_LAST_SEGMENTS = ("restart", "tasks", "versions", ".", "..")  # they collide with /v2/apps sub-routes
ROOT = "/"

_INSTANCE_TASK = re.compile(r"^(?P<safe>.+)\.instance-(?P<uuid>[^._]+)\.(?:_app|[^._]+)(?:\.\d+)?$")
_LEGACY_TASK = re.compile(r"^(?P<safe>.+)[._](?P<uuid>[^._]+)$")
_HEX_UUID = re.compile(r"^[0-9a-f]{32}$")


def segments(path_id: str) -> list[str]:
    """The non-empty segments of a path, as written (no ``.``/``..`` resolution)."""
    return [part for part in path_id.split("/") if part]


def canonical(path_id: str, base: str = ROOT) -> str:
    """The absolute form of ``path_id``: relative ids hang below ``base``; ``.``/``..`` resolved.

    ``..`` above the root stays at the root. ``canonical("../db", "/prod/web") == "/prod/db"``.
    """
    parts = [] if path_id.startswith("/") else segments(canonical(base))
    for part in segments(path_id):
        if part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def parent(path_id: str) -> str:
    """The enclosing group of an absolute id (the root is its own parent)."""
    parts = segments(canonical(path_id))
    return "/" + "/".join(parts[:-1])


def is_child_of(path_id: str, group: str) -> bool:
    """True when ``path_id`` lies strictly below ``group`` (both absolute)."""
    group_parts = segments(canonical(group))
    parts = segments(canonical(path_id))
    return len(parts) > len(group_parts) and parts[: len(group_parts)] == group_parts


def validate_id(path_id: str, *, base: str = ROOT, allow_root: bool = False, anywhere: bool = False) -> list[str]:
    """Marathon's complaints about an id as sent (empty when it is valid).

    Checks every segment against :data:`SEGMENT_PATTERN`, the reserved last segments, the
    root (refused unless ``allow_root``) and, for absolute ids given inside a group ``base``,
    that the id lies below that group (unless ``anywhere``, as for dependencies).
    """
    errors: list[str] = []
    if any(_SEGMENT.fullmatch(part) is None for part in segments(path_id)):
        errors.append(f"must fully match regular expression '{SEGMENT_PATTERN}'")
    absolute = canonical(path_id, base)
    if absolute.rsplit("/", 1)[-1] in RESERVED_LAST_SEGMENTS:
        errors.append("must not end with any of the following reserved keywords: " + ", ".join(RESERVED_LAST_SEGMENTS))
    if absolute == ROOT and not allow_root:
        errors.append("must not be root")
    elif not anywhere and path_id.startswith("/") and canonical(base) != ROOT and not is_child_of(absolute, base):
        errors.append(f"identifier {absolute} is not child of {canonical(base)}. Hint: use relative paths.")
    return errors


def task_name(app_id: str) -> str:
    """The Mesos task name: ``/prod/web`` -> ``web.prod`` (what mesos-dns turns into records)."""
    return ".".join(reversed(segments(canonical(app_id))))


def safe_app_id(app_id: str) -> str:
    """``/prod/web`` -> ``prod_web``: the app part of a task id."""
    return "_".join(segments(canonical(app_id)))


def new_task_id(app_id: str, uuid: str) -> str:
    """A task id ``<safeAppId>.<uuid>``; a 32-digit hex uuid is written in its dashed form."""
    text = uuid.lower()
    if _HEX_UUID.match(text):
        text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return f"{safe_app_id(app_id)}.{text}"


def app_of_task(task_id: str) -> str | None:
    """The absolute app id a task id names, or None when it is not a Marathon task id."""
    match = _INSTANCE_TASK.match(task_id) or _LEGACY_TASK.match(task_id)
    if match is None or "/" in match.group("safe"):
        return None
    app_id = "/" + match.group("safe").replace("_", "/")
    if "//" in app_id or app_id.endswith("/") or validate_id(app_id):
        return None
    return app_id
