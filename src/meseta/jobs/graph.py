"""The dependency graph of jobs (pure): parents -> children edges, cycles, and its exports.

    a ----> c        a dependent job lists its parents; it runs once each of them has succeeded
    b ----> c ----> d   since its own last run (graph.ready)

Exports: ``graph/csv`` (Chronos's lines ``node,<name>,<last state>,<state>`` then
``link,<parent>,<child>``) and ``graph/dot`` (Graphviz).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def cycle_through(children: Mapping[str, Sequence[str]], name: str, parents: Sequence[str]) -> list[str] | None:
    """The cycle that giving ``name`` these ``parents`` would close, as a path ``[name, ..., p, name]``
    (each one a parent of the next), or None: a walk down from ``name`` through ``children`` (the
    graph without the new edges), so the cost is the size of what depends on ``name``, not the graph's."""
    targets = set(parents)
    if name in targets:
        return [name, name]
    path: dict[str, str | None] = {name: None}  # node -> the node it was reached from
    stack = [name]
    while stack:
        node = stack.pop()
        for child in children.get(node, ()):
            if child in path:
                continue
            path[child] = node
            if child in targets:
                found: list[str] = [child]
                step = path[child]
                while step is not None:
                    found.append(step)
                    step = path[step]
                return [*reversed(found), name]
            stack.append(child)
    return None


def ready(parents: Sequence[str], succeeded: Iterable[str]) -> bool:
    """Whether a child with ``parents`` may run, ``succeeded`` being the parents that succeeded
    since its last run."""
    return bool(parents) and set(parents) <= set(succeeded)


def graph_csv(nodes: Iterable[tuple[str, str, str]], links: Iterable[tuple[str, str]]) -> str:
    """nodes: (name, last state success|failure|fresh, state idle|queued|running)."""
    lines = [f"node,{name},{last},{state}" for name, last, state in nodes]
    lines += [f"link,{parent},{child}" for parent, child in links]
    return "".join(line + "\n" for line in lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


DOT_COLOURS = {"success": "green", "failure": "red", "fresh": "grey"}


def graph_dot(nodes: Iterable[tuple[str, str, str]], links: Iterable[tuple[str, str]]) -> str:
    lines = ["digraph G {", "  node [style=filled];"]
    for name, last, state in nodes:
        lines.append(f"  {_quoted(name)} [fillcolor={DOT_COLOURS.get(last, 'grey')}, "
                     f"tooltip={_quoted(state)}];")
    lines += [f"  {_quoted(parent)} -> {_quoted(child)};" for parent, child in links]
    lines.append("}")
    return "\n".join(lines) + "\n"
