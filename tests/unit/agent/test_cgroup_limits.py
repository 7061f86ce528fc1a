"""cgroup decisions: hierarchy choice on v1, v2 and hybrid hosts, Mesos's limits, the kernel's files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meseta.agent.containerizer.cgroup_limits import (
    Hierarchy,
    choose_hierarchies,
    compute_limits,
    keyed_values,
    memory_limitation_message,
    oom_killed,
    parse_isolation,
    parse_mountinfo,
    shares_to_weight,
)

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PURE_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
JOINED_V1 = "25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_hybrid_hosts_take_each_controller_from_v1() -> None:
    v1, unified = parse_mountinfo(HYBRID)
    assert unified == "/sys/fs/cgroup/unified" and v1["memory"] == "/sys/fs/cgroup/memory"
    chosen = choose_hierarchies(v1, unified, ["hugetlb"])
    assert chosen["cpu"] == Hierarchy("/sys/fs/cgroup/cpu", 1) and chosen["pids"].version == 1


def test_v2_hosts_and_joined_v1_hierarchies() -> None:
    v1, unified = parse_mountinfo(PURE_V2)
    chosen = choose_hierarchies(v1, unified, ["cpuset", "cpu", "io", "memory", "pids"])
    assert {h.version for h in chosen.values()} == {2} and set(chosen) == {"cpu", "cpuacct", "memory", "pids"}
    assert "memory" not in choose_hierarchies(v1, unified, ["cpu"])  # not enabled: not offered
    v1, unified = parse_mountinfo(JOINED_V1)
    assert v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"}


def test_limits_follow_mesos() -> None:
    limits = compute_limits(1.5, 128)
    assert (limits.cpu_shares, limits.cfs_quota_us, limits.memory_bytes) == (1536, None, 128 << 20)
    assert compute_limits(0.0001, 1).cpu_shares == 2 and compute_limits(0, 1).memory_bytes == 32 << 20
    assert compute_limits(2, 64, revocable_cpus=True).cpu_shares == 20
    assert compute_limits(0.5, 64, enable_cfs=True).cfs_quota_us == 50_000
    assert compute_limits(0.001, 64, enable_cfs=True).cfs_quota_us == 1_000
    assert compute_limits(1, 64, pids_max=10).pids_max == 10


@given(st.integers(0, 10**6))
def test_v2_weights_stay_in_range_and_keep_the_order(shares: int) -> None:
    weight = shares_to_weight(shares)
    assert 1 <= weight <= 10_000
    assert shares_to_weight(shares + 1) >= weight
    assert shares_to_weight(2) == 1 and shares_to_weight(262_144) == 10_000


def test_the_kernels_files() -> None:
    assert keyed_values("user 120\nsystem 30\nbad line\n") == {"user": 120, "system": 30}
    assert not oom_killed("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert oom_killed("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert oom_killed("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")  # v2 memory.events
    assert memory_limitation_message(64 << 20, 64 << 20) == "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"


def test_isolation_flag() -> None:
    assert parse_isolation("posix/cpu,posix/mem").controllers == frozenset()
    isolation = parse_isolation("cgroups/cpu, cgroups/mem,namespaces/pid")
    assert isolation.controllers == {"cpu", "cpuacct", "memory"} and isolation.pid_namespace
    with pytest.raises(ValueError, match="unknown isolator 'cgroups/gpu'"):
        parse_isolation("cgroups/cpu,cgroups/gpu")
