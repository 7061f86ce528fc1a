"""The dependency graph (cycles, children, readiness, exports) and Chronos's run statistics."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from meseta.jobs import graph, stats
from meseta.jobs.runs import task_id


def test_a_cycle_is_found_and_shown_as_a_path() -> None:
    assert graph.find_cycle({"a": [], "b": ["a"], "c": ["b"]}) is None
    cycle = graph.find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert graph.find_cycle({"a": ["a"]}) == ["a", "a"]


@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3), max_size=6))
def test_a_reported_cycle_is_one(parents: dict[str, list[str]]) -> None:
    cycle = graph.find_cycle(parents)
    if cycle is None:  # then a topological order exists
        done: set[str] = set()
        todo = set(parents) | {p for ps in parents.values() for p in ps}
        while todo:
            free = {n for n in todo if set(parents.get(n, ())) <= done}
            assert free, "no cycle reported, yet no job can go first"
            done |= free
            todo -= free
    else:
        for parent, child in itertools.pairwise(cycle):
            assert parent in parents[child]


def test_children_and_readiness() -> None:
    parents = {"a": (), "b": (), "c": ("a", "b"), "d": ("c",)}
    assert graph.children_of(parents, "a") == ["c"]
    assert not graph.ready(("a", "b"), {"a"}) and graph.ready(("a", "b"), {"b", "a"})
    assert not graph.ready((), {"a"})


def test_csv_has_a_node_line_per_job_then_a_link_per_edge() -> None:
    text = graph.graph_csv([("a", "success", "idle"), ("b", "fresh", "queued")], [("a", "b")])
    assert text.splitlines() == ["node,a,success,idle", "node,b,fresh,queued", "link,a,b"]
    dot = graph.graph_dot([("a", "success", "idle"), ('q"x', "failure", "running")], [("a", 'q"x')])
    assert dot.startswith("digraph G {") and '"a" -> "q\\"x";' in dot


def test_histogram_of_no_runs_is_all_zero_as_chronos_python_expects() -> None:
    assert stats.histogram([]) == {"75thPercentile": 0.0, "95thPercentile": 0.0, "98thPercentile": 0.0,
                                   "99thPercentile": 0.0, "median": 0.0, "mean": 0.0, "count": 0}


def test_percentiles_interpolate() -> None:
    figures = stats.histogram([1.0, 2.0, 3.0, 4.0])
    assert figures["median"] == 2.5 and figures["mean"] == 2.5 and figures["count"] == 4
    assert figures["99thPercentile"] == 4.0


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_percentiles_lie_within_the_durations_and_grow(durations: list[float]) -> None:
    figures = stats.histogram(durations)
    order = [figures[n] for n in ("median", "75thPercentile", "95thPercentile", "98thPercentile", "99thPercentile")]
    assert all(min(durations) <= f <= max(durations) for f in order)
    assert order == sorted(order)


def test_task_ids_are_chronos_shaped_and_always_valid_ids() -> None:
    assert task_id("nightly", 1.5, 0, ()) == "ct:1500:0:nightly:"
    assert task_id("job", 2.0, 1, ("a", "b/c")) == "ct:2000:1:job:a b_c"
    assert len(task_id("j" * 300, 0.0, 0, ())) == 255
