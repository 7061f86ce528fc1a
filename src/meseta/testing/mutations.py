"""Structure-aware fuzzing: a valid request with one field made hostile, as a hypothesis strategy.

    @given(mutated(valid_accept))          # -> Mutation(where, how, body)
    def test(mutation): post(mutation.body) ...

Every mutation changes exactly one place of the template: one member (at any depth) replaced by a
hostile value, removed, or a hostile member added beside it. The hostile values are what broke
servers before: wrong types, numbers beyond every range (and NaN, which Python's JSON writes),
huge and invalid strings (a lone surrogate, NUL), containers nested past every limit.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]


def nested(depth: int, leaf: Any = None) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


HOSTILE: tuple[Any, ...] = (
    None, True, False, 0, -1, 1.5, 2**63, 2**64 + 1, -(2**70), 1.7976931348623157e308, -1e308,
    float("nan"), float("inf"),
    "", " ", "x" * 70_000, "\ud800", "a\x00b", "../../etc", "TASK_RUNNING", "*", "\u202e\U0001f600",
    [], {}, [None], [1, "a"], {"value": 5}, {"value": "\ud800"}, {"nanoseconds": -(2**70)},
    nested(40), nested(1000),
)


@dataclass(frozen=True)
class Mutation:
    where: str  # e.g. "accept.operations[0].launch.task_infos[0].resources[0].scalar replaced"
    value: Any  # the whole request, one place changed

    @property
    def body(self) -> bytes:
        return encode(self.value)


def encode(value: Any) -> bytes:
    """JSON as a hostile client writes it: escapes for lone surrogates, NaN and Infinity literals,
    integers of any length written out."""
    try:
        return json.dumps(value, ensure_ascii=True).encode()
    except ValueError:  # an int longer than str() allows
        return json.dumps(value, ensure_ascii=True, default=str).encode()


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every member of a JSON value, at any depth (the root's members first)."""
    found: list[Path] = []
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def describe(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "$"


def mutate(template: Any, path: Path, how: str, hostile: Any) -> Any:
    if not path:  # the whole value
        return hostile
    value = copy.deepcopy(template)
    parent: Any = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = hostile
    elif how == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"{last}_extra"] = hostile
    else:
        parent.append(hostile)
    return value


def mutated(template: Any, values: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Mutation]:
    """One hostile change of ``template`` (a dict or list of JSON values): a member at any depth
    replaced, removed or given a hostile sibling, or the whole value replaced; the hostile values
    are HOSTILE unless ``values`` gives others."""
    places = paths(template)
    assert places, "a template with no members cannot be mutated"

    def build(choice: tuple[Path, str, Any]) -> Mutation:
        path, how, hostile = choice
        if not path:
            how = "replace"
        shown = repr(hostile) if len(repr(hostile)) < 40 else repr(hostile)[:37] + "..."
        done = {"replace": f"replaced by {shown}", "remove": "removed", "add": f"with {shown} added beside it"}[how]
        return Mutation(f"{describe(path)} {done}", mutate(template, path, how, hostile))

    return st.tuples(st.sampled_from([(), *places]), st.sampled_from(("replace", "remove", "add")),
                     values if values is not None else st.sampled_from(HOSTILE)).map(build)
