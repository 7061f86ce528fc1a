"""The dependency graph (cycles, children, readiness, exports) and Chronos's run statistics."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from meseta.jobs import graph, stats
from meseta.jobs.runs import task_id


def _acyclic(parents: dict[str, list[str]]) -> bool:
    """Whether the jobs can be put in an order where every parent comes before its children."""
    done: set[str] = set()
    todo = set(parents) | {p for ps in parents.values() for p in ps}
    while todo:
        free = {n for n in todo if set(parents.get(n, ())) <= done}
        if not free:
            return False
        done |= free
        todo -= free
    return True


def test_a_cycle_is_found_and_shown_as_a_path() -> None:
    children = {"a": ["b"], "b": ["c"]}
    assert graph.cycle_through(children, "a", []) is None
    assert graph.cycle_through(children, "a", ["c"]) == ["a", "b", "c", "a"]
    assert graph.cycle_through({}, "a", ["a"]) == ["a", "a"]


def test_children_and_readiness() -> None:
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


@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3), max_size=6),
       st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3))
def test_the_cycle_an_edit_would_close_is_found_by_walking_down_from_it(
        graph_before: dict[str, list[str]], name: str, parents: list[str]) -> None:
    """On an acyclic graph, cycle_through agrees with a search of the whole edited graph."""
    if not _acyclic(graph_before):
        return
    children: dict[str, list[str]] = {}
    for child, of in graph_before.items():
        if child != name:
            for parent in of:
                children.setdefault(parent, []).append(child)
    found = graph.cycle_through(children, name, parents)
    edited = {**graph_before, name: parents}
    assert (found is None) == _acyclic(edited)
    if found is not None:
        assert found[0] == found[-1] == name
        for parent, child in itertools.pairwise(found):
            assert parent in edited[child]
