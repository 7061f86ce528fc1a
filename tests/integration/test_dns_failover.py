"""`meseta dns` across a master failover: masters elected in a real ZooKeeper ensemble; one
`meseta dns` follows zk://, another the static --master list. Both name the new leader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import pytest

from meseta.testing.ha_cluster import HaCluster, active_agents
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble

from .test_dns import Dns, start_dns

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def zk(tmp_path: Path) -> Iterator[Ensemble]:
    with Ensemble(tmp_path / "zk", size=1) as ensemble:
        yield ensemble


def leader_port(server: Dns) -> int | None:
    ports = {port for _, port in server.srv("_leader._tcp.meseta.")}
    return ports.pop() if len(ports) == 1 else None


def test_leader_names_the_new_leader_after_a_failover(zk: Ensemble, tmp_path: Path) -> None:
    with HaCluster(tmp_path, zk.hosts, masters=3, agents=1) as cluster:
        cluster.wait(lambda s: active_agents(s) == 1, 60, "the agent registered")
        listed = ",".join(f"127.0.0.1:{p}" for p in cluster.master_ports)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        followers = [start_dns(tmp_path / "a", cluster.zk_url), start_dns(tmp_path / "b", listed)]
        try:
            servers = [server for _, server in followers]
            first = cluster.leader()
            assert first is not None
            for server in servers:
                wait_until(lambda s=server: leader_port(s) == cluster.master_ports[first], 10, "the first leader")
                wait_until(lambda s=server: len(s.srv("_slave._tcp.meseta.")) == 1, 10, "the agent")
            masters = {f"master{i}.meseta." for i in range(3)}
            assert all(servers[1].a(name) == {"127.0.0.1"} for name in masters)  # the static list's names
            assert all(servers[0].a(name) == {"127.0.0.1"} for name in masters)  # the contenders' znodes

            cluster.kill_master(first)
            wait_until(lambda: cluster.leader() not in (None, first), 60, "a new leader elected")
            second = cluster.leader()
            assert second is not None
            for server in servers:
                wait_until(lambda s=server: leader_port(s) == cluster.master_ports[second], 30,
                           "leader.meseta. naming the new leader",
                           describe=lambda s=server: f"SRV {s.srv('_leader._tcp.meseta.')}")
                wait_until(lambda s=server: len(s.srv("_slave._tcp.meseta.")) == 1, 60,
                           "the agent, re-registered with the new leader")
            wait_until(lambda: servers[0].ask("master2.meseta.").rcode() == dns.rcode.NXDOMAIN, 30,
                       "two contenders left in ZooKeeper: master0 and master1 only")
            assert servers[1].a("master2.meseta.") == {"127.0.0.1"}  # the static list keeps its names
        finally:
            stop_processes([proc for proc, _ in followers])
