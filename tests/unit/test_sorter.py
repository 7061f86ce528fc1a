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
