"""What enters the services REST API, checked before any handler sees it (a hostile client).

    request --check_query--> 414 query longer than MAX_QUERY_BYTES
            --flag(name)---> a boolean query parameter, or 400 naming it (true|false|1|0|yes|no)
            --choices(name, known)--> the values of a repeated parameter (embed, status,
                             event_type), or 400 naming the first one the endpoint does not know
            --read_json----> 413 body beyond MAX_BODY_BYTES (also chunked: read with a bound, never whole)
                             400 malformed JSON, or nested deeper than MAX_BODY_DEPTH levels
                             422 {"message", "details": [{"path": "/cmd", "errors": [...]}]} for a
                                 number that is not finite (NaN, 1e400) or a string that is not valid
                                 Unicode (a lone surrogate): JSON, but no definition can hold it

Everything past this is a JSON value of dicts, lists, str, finite float/int, bool and None, with
keys that are strings, that any encoder can write back (stored, rendered, sent to the master).
Definition rules (types, ranges, known fields) are spec/'s; this module only bounds the shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from starlette.requests import Request

from meseta.protocol.json_edge import JsonRejected, check_tree, decode_json
from meseta.runtime.http import MAX_BODY_BYTES, HttpError, read_body
from meseta.services import wire
from meseta.services.machine import ApiError

# A group of groups of groups... each level is two JSON levels ("groups": [{...}]) and an app
# inside adds about six (container.docker.portMappings[i].labels): 64 holds ~25 group levels.
MAX_BODY_DEPTH = 64
MAX_QUERY_BYTES = 8192  # Jetty's (Marathon's) request-line bound: 414 beyond it
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
_INDEX = re.compile(r"\[(\d+)\]")


def check_query(request: Request) -> None:
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        raise ApiError(414, {"message": f"The query string is longer than {MAX_QUERY_BYTES} bytes"})


def flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter, read case-insensitively; anything else is refused (Marathon's
    Jersey would read it as false, silently)."""
    value = request.query_params.get(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return default if text == "" else False
    raise ApiError(400, {"message": f"Query parameter '{name}' must be true or false, got '{value[:64]}'"})


def choices(request: Request, name: str, known: Collection[str], *, fold_case: bool = False) -> list[str]:
    """The values of the repeated query parameter ``name``, each one of ``known`` (lower-cased
    first with ``fold_case``): what an endpoint cannot honour is refused, not dropped (Marathon
    drops an unknown embed silently)."""
    values = request.query_params.getlist(name)
    if fold_case:
        values = [value.lower() for value in values]
    for value in values:
        if value not in known:
            raise ApiError(400, {"message": f"Unknown {name} '{value[:64]}' here; known: {', '.join(sorted(known))}"})
    return values


async def read_json(request: Request) -> Any:
    """The body as a bounded JSON value (None when empty)."""
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except HttpError as exc:
        raise ApiError(exc.status, {"message": exc.message}) from None
    if not raw.strip():
        return None
    try:
        return decode_json(raw, "JSON", MAX_BODY_DEPTH)
    except JsonRejected as exc:
        named = _named_problem(raw)
        if named is not None:
            raise ApiError(422, wire.invalid_body([named])) from None
        detail = [{"path": "/", "errors": [f"error.expected.json: {exc.message}"]}]
        raise ApiError(400, {"message": "Invalid JSON", "details": detail}) from None


def _named_problem(raw: bytes) -> tuple[str, str] | None:
    """Where well-formed JSON holds what no definition can (msgspec refuses it without saying
    where): the stdlib parser reads lone surrogates and NaN, and check_tree names the place."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    try:
        check_tree(value, "$", MAX_BODY_DEPTH)
    except JsonRejected as exc:
        if exc.where is None or exc.problem is None:
            return None  # a body problem (400: too deep), like JSON too deep to parse at all
        return marathon_path(exc.where), exc.problem
    return None


def marathon_path(path: str) -> str:
    """``$.container.volumes[0].hostPath`` -> ``/container/volumes(0)/hostPath`` (Marathon's form)."""
    return _INDEX.sub(r"(\1)", path.removeprefix("$")).replace(".", "/") or "/"
