"""The dependency graph of jobs (pure): parents -> children edges, cycles, and its exports.

    a ----> c        a dependent job lists its parents; it runs once each of them has succeeded
    b ----> c ----> d   since its own last run (graph.ready)

Exports: ``graph/csv`` (Chronos's lines ``node,<name>,<last state>,<state>`` then
``link,<parent>,<child>``) and ``graph/dot`` (Graphviz).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(parents: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of the graph as a path ``[a, b, ..., a]`` (each one a parent of the next), or None."""
    children: dict[str, list[str]] = {}
    for child, of in parents.items():
        for parent in of:
            children.setdefault(parent, []).append(child)
    colour: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(set(parents) | set(children)):
        if root in colour:
            continue
        path: list[str] = [root]
        stack: list[Iterable[str]] = [iter(sorted(children.get(root, ())))]
        colour[root] = 1
        while stack:
            step = next(iter(stack[-1]), None)
            if step is None:
                colour[path.pop()] = 2
                stack.pop()
                continue
            if colour.get(step) == 1:
                return [*path[path.index(step):], step]
            if step not in colour:
                colour[step] = 1
                path.append(step)
                stack.append(iter(sorted(children.get(step, ()))))
    return None


def children_of(parents: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return sorted(child for child, of in parents.items() if name in of)


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
