"""The JSON edge: every hostile body is one JsonRejected naming the place, never another exception."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.protocol.json_edge import (
    MAX_DEPTH,
    JsonRejected,
    check_tree,
    decode_json,
    decode_typed,
    nested_deeper_than,
)


class Call(msgspec.Struct):
    type: str
    count: int = 0


@pytest.mark.parametrize("body, problem", [
    (b"[" * 1000 + b"]" * 1000, "nested deeper than"),
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper than"),
    (b'{"a": NaN}', "Failed to parse"),
    (b'{"a": 1e400}', "Failed to parse"),
    (b'"\\ud800"', "Failed to parse"),
    (b"{not json", "Failed to parse"),
])
def test_hostile_bodies_are_rejected(body: bytes, problem: str) -> None:
    with pytest.raises(JsonRejected, match=problem) as caught:
        decode_json(body, "thing")
    assert caught.value.status == 400


@pytest.mark.parametrize("value, problem", [
    (json.loads('{"cmd": "\\ud800"}'), "'$.cmd' is not valid Unicode"),
    (json.loads('{"\\udfff": 1}'), "'$' is not valid Unicode"),
    (json.loads('{"cpus": NaN}'), "'$.cpus' must be a finite number"),
    (json.loads('{"cpus": [Infinity]}'), "'$.cpus[0]' must be a finite number"),
    ({1: "a"}, "key that is not a string"),
])
def test_values_built_by_json_loads_are_checked(value: Any, problem: str) -> None:
    with pytest.raises(JsonRejected, match=re.escape(problem)):
        check_tree(value)


def test_a_value_at_fault_is_named_apart_from_the_message() -> None:
    """Callers render the place in their own form without parsing the message (a key may hold
    quotes and spaces); a body refused as a whole names no place."""
    with pytest.raises(JsonRejected) as refused:
        check_tree({"labels": {"it' s": "\ud800"}})
    assert (refused.value.where, refused.value.problem) == ("$.labels.it' s", "is not valid Unicode (a lone surrogate)")
    assert refused.value.message == "'$.labels.it' s' is not valid Unicode (a lone surrogate)"
    with pytest.raises(JsonRejected) as deep:
        check_tree(json.loads("[" * 40 + "]" * 40))
    assert deep.value.where is None and deep.value.problem is None


def test_typed_decoding_names_the_field_and_survives_deep_nesting() -> None:
    assert decode_typed(b'{"type": "X", "count": 2}', Call, "Call") == Call("X", 2)
    with pytest.raises(JsonRejected, match=r"\$\.count"):
        decode_typed(b'{"type": "X", "count": [1]}', Call, "Call")
    with pytest.raises(JsonRejected, match="nested deeper"):
        decode_typed(b'{"type": "X", "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}", Call, "Call")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_decode_or_are_rejected(body: bytes) -> None:
    try:
        decode_json(body, "thing")
    except JsonRejected:
        pass


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("value, depth", [
    ({}, 1), ([[1, [2]]], 3), ({"a": "[[[[" * 20, "b": [{"c": '\\"[[' * 20}]}, 3),
    ({"x": "]]]]" * 20, "y": [[[["\\\\"]]]]}, 5), (nested(41), 41),
])
def test_depth_is_counted_outside_strings(value: Any, depth: int) -> None:
    body = json.dumps(value).encode()
    assert not nested_deeper_than(body, depth)
    assert nested_deeper_than(body, depth - 1)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.text(alphabet='[]{}"\\ab', max_size=8) | st.integers(),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                                        max_size=3), max_leaves=30))
def test_depth_scan_agrees_with_the_decoded_value(value: Any) -> None:
    def depth(item: Any) -> int:
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        return 0 if children is None else 1 + max((depth(c) for c in children), default=0)

    body = json.dumps(value).encode()
    assert not nested_deeper_than(body, depth(value))
    if depth(value) > 0:
        assert nested_deeper_than(body, depth(value) - 1)
