"""Properties of DRF, the role tree and the allocator over random clusters (hypothesis).

* DRF progressive filling on our sorter (the NSDI'11 algorithm, one task at a time): sharing
  incentive and envy-freeness hold up to one task.
* The allocator never hands out more than an agent has, over many cycles with returns.
* Weighted roles converge to their weight proportions (up to one agent's worth).
* Quota guarantees are met whenever the cluster can meet them; limits are never exceeded.
"""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.alloc.allocator import Allocator
from meseta.alloc.quota import Quota
from meseta.alloc.roles import RoleTree
from meseta.alloc.sorter import DRFSorter, RandomSorter
from meseta.core.resources import Resources, to_milli

SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ("cpus", "mem", "disk")

demands = st.lists(
    st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)), min_size=2, max_size=6
)


def _progressive_filling(total: tuple[int, ...], demand: list[tuple[int, ...]]) -> list[int]:
    """Give one task at a time to the user with the lowest dominant share whose task fits."""
    sorter = DRFSorter()
    sorter.set_total(dict(zip(NAMES, total, strict=True)))
    users = [f"u{i}" for i in range(len(demand))]
    for user in users:
        sorter.add(user)
    used = [0] * len(total)
    tasks = [0] * len(demand)
    blocked: set[str] = set()
    while len(blocked) < len(users):
        for user in sorter.sorted_clients():
            if user in blocked:
                continue
            index = users.index(user)
            need = demand[index]
            if all(used[r] + need[r] <= total[r] for r in range(len(total))):
                for r in range(len(total)):
                    used[r] += need[r]
                tasks[index] += 1
                sorter.allocated(user, dict(zip(NAMES, need, strict=True)))
            else:
                blocked.add(user)
            break
    return tasks


def _tasks_fitting(budget: tuple[float, ...], need: tuple[int, ...]) -> int:
    return int(min(budget[r] / need[r] for r in range(len(need))) + 1e-9)


def _displaced(mine: tuple[int, ...], other: tuple[int, ...]) -> int:
    """How many of my tasks one task of another user can take the place of (task granularity)."""
    return math.ceil(max(other[r] / mine[r] for r in range(len(mine))))


@settings(max_examples=300, deadline=None)
@given(demands, st.tuples(st.integers(20, 200), st.integers(20, 200), st.integers(20, 200)))
def test_drf_sharing_incentive_and_envy_freeness(demand: list[tuple[int, ...]], total: tuple[int, ...]) -> None:
    """The NSDI'11 properties hold up to task granularity: every other user may be one task
    ahead when the cluster fills up."""
    tasks = _progressive_filling(total, demand)
    n = len(demand)
    for i, need in enumerate(demand):
        slack = sum(_displaced(need, other) for j, other in enumerate(demand) if j != i)
        # sharing incentive: at least what 1/n of every resource would run
        assert tasks[i] >= _tasks_fitting(tuple(t / n for t in total), need) - 1 - slack
        # envy-freeness: another user's bundle would not run more of my tasks
        for j, other in enumerate(demand):
            bundle = tuple(tasks[j] * other[r] for r in range(len(total)))
            assert _tasks_fitting(bundle, need) <= tasks[i] + 1 + _displaced(need, other)


def test_role_tree_shares_between_siblings_then_inside() -> None:
    tree = RoleTree()
    tree.set_total({"cpus": 100_000})
    for role in ("eng/web", "eng/db", "ads"):
        tree.add(role)
    tree.allocated("eng/web", {"cpus": 30_000})
    assert tree.sorted_roles()[0] == "ads"  # eng as a whole (0.3) is ahead of ads (0)
    tree.allocated("ads", {"cpus": 40_000})
    assert tree.sorted_roles() == ["eng/db", "eng/web", "ads"]
    tree.set_weight("ads", 4.0)  # 0.4 / 4 = 0.1 < 0.3
    assert tree.sorted_roles() == ["ads", "eng/db", "eng/web"]
    assert list(tree.iter_roles(skip={"eng/db"})) == ["ads", "eng/web"]
    assert list(tree.iter_roles(tops={"eng"})) == ["eng/db", "eng/web"]
    tree.add("eng")  # eng's own frameworks: a leaf beside its subroles
    assert list(tree.iter_roles(tops={"eng"})) == ["eng", "eng/db", "eng/web"]
    tree.remove("eng")
    tree.remove("eng/db")
    tree.remove("eng/web")
    assert tree.sorted_roles() == ["ads"]


def test_random_sorter_follows_weights() -> None:
    sorter = RandomSorter(seed=7)
    sorter.add("heavy", 3.0)
    sorter.add("light", 1.0)
    firsts = [sorter.sorted_clients()[0] for _ in range(4000)]
    assert 0.70 < firsts.count("heavy") / len(firsts) < 0.80  # 3 / (3 + 1)


# ------------------------------------------------------------------------- the allocator

agents = st.lists(st.tuples(st.integers(1, 16), st.integers(1, 64)), min_size=1, max_size=12)


def _agent(cpus: int, mem_units: int) -> Resources:
    return Resources.parse(f"cpus:{cpus};mem:{mem_units * 64};ports:[31000-31010]")


@SLOW
@given(agents, st.integers(1, 5), st.integers(0, 2**31), st.lists(st.floats(0, 1), min_size=5, max_size=30))
def test_allocations_never_exceed_capacity(
    cluster: list[tuple[int, int]], frameworks: int, seed: int, returns: list[float]
) -> None:
    allocator = Allocator()
    totals = {}
    for i, (cpus, mem) in enumerate(cluster):
        totals[f"a{i}"] = _agent(cpus, mem)
        allocator.add_agent(f"a{i}", totals[f"a{i}"])
    for f in range(frameworks):
        allocator.add_framework(f"f{f}", [f"r{f % 2}"])
    rng = random.Random(seed)
    held: list[tuple[str, str, str, Resources]] = []
    for step, fraction in enumerate(returns):
        for decision in allocator.allocate(float(step), rng):
            held.append((decision.framework_id, decision.role, decision.agent_id, decision.resources))
        for agent_id, total in totals.items():
            given_out = [r for _, _, a, r in held if a == agent_id]
            assert total.contains(sum(given_out, Resources()))
            assert allocator.allocated_on(agent_id) == sum(given_out, Resources())
        keep = int(len(held) * fraction)
        for framework_id, role, agent_id, resources in held[keep:]:
            allocator.recover(framework_id, role, agent_id, resources, 0.0, float(step))
        del held[keep:]


def _share(resources: Resources, total: dict[str, int]) -> float:
    scalars = resources.scalar_totals()
    return max(scalars.get(n, 0) / total[n] for n in ("cpus", "mem"))


@SLOW
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31))
def test_weighted_roles_converge_to_weight_proportions(w1: int, w2: int, seed: int) -> None:
    allocator = Allocator()
    n_agents = 120
    for i in range(n_agents):
        allocator.add_agent(f"a{i}", _agent(4, 64))
    allocator.set_weight("light", float(w1))
    allocator.set_weight("heavy", float(w2))
    allocator.add_framework("f-light", ["light"])
    allocator.add_framework("f-heavy", ["heavy"])
    got = {"light": Resources(), "heavy": Resources()}
    for decision in allocator.allocate(0.0, random.Random(seed)):
        got[decision.role] = got[decision.role] + decision.resources
    total = allocator.total()
    light, heavy = _share(got["light"], total), _share(got["heavy"], total)
    assert abs(heavy / (light + heavy) - w2 / (w1 + w2)) <= 2 / n_agents + 1e-9


quota_case = st.tuples(
    agents.filter(lambda a: len(a) >= 2),
    st.lists(st.tuples(st.floats(0, 0.45), st.floats(0, 0.45)), min_size=1, max_size=3),
    st.integers(0, 2**31),
)


@SLOW
@given(quota_case)
def test_quota_guarantees_are_met_and_limits_never_exceeded(case: tuple) -> None:  # type: ignore[type-arg]
    cluster, fractions, seed = case
    allocator = Allocator()
    for i, (cpus, mem) in enumerate(cluster):
        allocator.add_agent(f"a{i}", _agent(cpus, mem))
    total = allocator.total()
    quotas = {}
    scale_c = min(1.0, 0.9 / max(sum(f for f, _ in fractions), 1e-9))
    scale_m = min(1.0, 0.9 / max(sum(f for _, f in fractions), 1e-9))
    for index, (fc, fm) in enumerate((c * scale_c, m * scale_m) for c, m in fractions):
        role = f"q{index}"
        # whole cpus and 64 MiB steps, together at most 90 % of the cluster: always satisfiable
        guarantee = {"cpus": to_milli(int(fc * total["cpus"] / 1000)),
                     "mem": to_milli(int(fm * total["mem"] / 1000 / 64) * 64)}
        guarantee = {k: v for k, v in guarantee.items() if v}
        limit = {k: v + to_milli(1) if k == "cpus" else v + to_milli(64) for k, v in guarantee.items()}
        quotas[role] = Quota(guarantee, limit)
        allocator.set_quota(role, quotas[role])
        allocator.add_framework(f"f-{role}", [role])
    allocator.add_framework("greedy", ["other"])  # wants everything, first in line by name
    for decision in allocator.allocate(0.0, random.Random(seed)):
        assert decision.role in quotas or decision.role == "other"
    for role, quota in quotas.items():
        consumed = allocator.consumed(role)
        for name, guarantee in quota.guarantees.items():
            assert consumed.get(name, 0) >= guarantee, (role, name, consumed, quota)
        for name, limit in quota.limits.items():
            assert consumed.get(name, 0) <= limit, (role, name, consumed, quota)
