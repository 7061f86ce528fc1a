"""JSON as it enters from the network: decoded strictly, and bounded before anything uses it.

Every edge (scheduler, operator, agent, executor, files, services REST) decodes with these, so a
hostile body is one clean 4xx and never an exception deeper in::

    decode_json(body, "scheduler::Call")            any JSON value, or JsonRejected(400)
    decode_typed(body, Call, "scheduler::Call")     into a msgspec type (field paths in errors)
    check_tree(value, "task_infos[0]")              walk a value that came from elsewhere

What is refused (JsonRejected naming where): malformed JSON; nesting deeper than MAX_DEPTH;
numbers that are not finite (NaN, Infinity, 1e400); strings that are not valid Unicode (a lone
surrogate such as ``"\\ud800"``, which no UTF-8 encoder can write back); keys that are not strings.
msgspec already refuses the last three while decoding; ``check_tree`` catches them in values that
``json.loads`` or a caller built.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
# The deepest legitimate body is a Marathon app or a TaskInfo with a container, health check and
# labels: about a dozen levels. Decoding itself recurses, and ~1,000 levels blow Python's stack.
MAX_DEPTH = 32


class JsonRejected(ValueError):
    """The body cannot be used; ``status`` is the HTTP status to answer (400). A value at fault
    (not finite, not valid Unicode, a key that is no string) is also named apart: ``where`` its
    path (``$.container.volumes[0].hostPath``) and ``problem`` what is wrong with it; both are
    None when the body as a whole is refused (malformed, too deep)."""

    def __init__(self, message: str, status: int = 400, *, where: str | None = None,
                 problem: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.where = where
        self.problem = problem


def _value_rejected(where: str, problem: str) -> JsonRejected:
    return JsonRejected(f"'{where}' {problem}", where=where, problem=problem)


_any_decoder = msgspec.json.Decoder()
_typed_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode_json(body: bytes, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Any JSON value no deeper than ``max_depth`` (msgspec refuses the rest of the list above)."""
    return _decode(_any_decoder, body, what, max_depth)


def decode_typed(body: bytes, kind: type[T], what: str, max_depth: int = MAX_DEPTH) -> T:
    """A value of the msgspec type ``kind`` (Structs, lists, ...); errors carry the field path."""
    decoder = _typed_decoders.get(kind)
    if decoder is None:
        decoder = _typed_decoders[kind] = msgspec.json.Decoder(kind, strict=False)
    return _decode(decoder, body, what, max_depth)  # type: ignore[no-any-return]


_NOT_BRACKETS_OR_QUOTES = bytes(b for b in range(256) if b not in b'[]{}"')
_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the containers of a JSON text nest more than ``limit`` deep, counted on the bytes
    in a few C passes, so that it is safe before decoding (~5 us a kilobyte of a LAUNCH,
    ~13 when many strings hold brackets):

        fewer opening brackets than ``limit``          cannot be deeper
        escaped backslashes and quotes removed, then only brackets and quotes kept;
        the quotes of strings without brackets ("") removed: if no quote is left, no string
        holds a bracket (the first one that did would leave an odd run of quotes); else the
        quoted runs are cut out one by one
        [{ and ]} as ( and ): each pass that removes every "()" peels one level off

    A text whose brackets do not balance counts as too deep (it is no JSON either)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = body.translate(None, delete=_NOT_BRACKETS_OR_QUOTES)
    outside = kept.replace(b'""', b"")
    if b'"' in outside:
        outside = b"".join(kept.split(b'"')[::2])
    levels = outside.translate(_PARENTHESES)
    for _ in range(limit):
        if not levels:
            return False
        levels = levels.replace(b"()", b"")
    return bool(levels)


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes, what: str, max_depth: int) -> Any:
    if nested_deeper_than(body, max_depth):
        raise JsonRejected(f"Failed to parse body into {what}: JSON nested deeper than {max_depth} levels")
    try:
        return decoder.decode(body)
    except RecursionError:
        raise JsonRejected(f"Failed to parse body into {what}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except msgspec.DecodeError as exc:
        raise JsonRejected(f"Failed to parse body into {what}: {exc}") from None


def check_tree(value: Any, where: str = "$", max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonRejected naming the first place where ``value`` is too deep, not finite, not
    valid Unicode or keyed by a non-string (the last three with ``where`` and ``problem``)."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= max_depth:
                raise JsonRejected(f"'{path}' is nested deeper than {max_depth} levels")
            for key, child in item.items():
                if not isinstance(key, str):
                    raise _value_rejected(path, "has a key that is not a string")
                _check_text(key, path)
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            if depth >= max_depth:
                raise JsonRejected(f"'{path}' is nested deeper than {max_depth} levels")
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _value_rejected(path, "must be a finite number")


def _check_text(text: str, path: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _value_rejected(path, "is not valid Unicode (a lone surrogate)") from None
