"""DRF sorter invariants under random updates (hypothesis) and the weighted order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meseta.alloc.sorter import DRFSorter

ops = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.booleans(), st.integers(0, 5000), st.integers(0, 5000)),
    max_size=40,
)


@given(ops)
def test_incremental_order_equals_a_full_sort(updates: list[tuple[str, bool, int, int]]) -> None:
    sorter = DRFSorter()
    sorter.set_total({"cpus": 10_000, "mem": 20_000})
    for name in "abcd":
        sorter.add(name)
    for name, add, cpus, mem in updates:
        if add:
            sorter.allocated(name, {"cpus": cpus, "mem": mem})
        else:
            sorter.unallocated(name, {"cpus": cpus, "mem": mem})
    expected = sorted("abcd", key=lambda c: (sorter.share(c), c))
    assert sorter.sorted_clients() == expected
    assert all(sorter.share(c) >= 0 for c in "abcd")


def test_weights_divide_the_share_and_ties_break_by_name() -> None:
    sorter = DRFSorter()
    sorter.set_total({"cpus": 100})
    sorter.add("heavy", weight=3.0)
    sorter.add("light")
    sorter.allocated("heavy", {"cpus": 30})
    sorter.allocated("light", {"cpus": 10})
    assert sorter.share("heavy") == sorter.share("light") == 0.1
    assert sorter.sorted_clients() == ["heavy", "light"]
    sorter.allocated("heavy", {"cpus": 1})
    assert sorter.sorted_clients() == ["light", "heavy"]


def test_deactivated_clients_leave_the_order_but_keep_their_allocation() -> None:
    sorter = DRFSorter()
    sorter.set_total({"cpus": 100})
    for name in ("a", "b", "c"):
        sorter.add(name)
    sorter.allocated("a", {"cpus": 10})
    sorter.deactivate("b")
    assert sorter.sorted_clients() == ["c", "a"]
    sorter.allocated("b", {"cpus": 50})  # still counted while out of the order
    sorter.set_total({"cpus": 200})  # a lazy re-sort keeps it out
    assert sorter.sorted_clients() == ["c", "a"]
    sorter.activate("b")
    assert sorter.sorted_clients() == ["c", "a", "b"] and sorter.share("b") == 0.25


@given(ops, st.sets(st.sampled_from("abcd")))
def test_restricted_orders_are_the_order_filtered(updates: list[tuple[str, bool, int, int]], subset: set[str]) -> None:
    sorter = DRFSorter()
    sorter.set_total({"cpus": 10_000, "mem": 20_000})
    for name in "abcd":
        sorter.add(name)
    for name, add, cpus, mem in updates:
        (sorter.allocated if add else sorter.unallocated)(name, {"cpus": cpus, "mem": mem})
    order = sorter.sorted_clients()
    assert list(sorter.iter_clients_within(subset)) == [c for c in order if c in subset]
    assert list(sorter.iter_clients_except(subset)) == [c for c in order if c not in subset]


def test_small_subsets_are_sorted_directly_and_agree_with_the_scan() -> None:
    sorter = DRFSorter()
    sorter.set_total({"cpus": 1_000_000})
    names = [f"c{i:03d}" for i in range(200)]
    for index, name in enumerate(names):
        sorter.add(name)
        sorter.allocated(name, {"cpus": (index * 7919) % 1000})
    order = sorter.sorted_clients()
    few = set(names[::50])  # 4 of 200: sorted by their own keys
    many = set(names[::2])  # 100 of 200: a filtered scan
    assert list(sorter.iter_clients_within(few)) == [c for c in order if c in few]
    assert list(sorter.iter_clients_within(many)) == [c for c in order if c in many]
    assert list(sorter.iter_clients_except(set(names[3:]))) == [c for c in order if c in names[:3]]
