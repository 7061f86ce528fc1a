"""`meseta dns` against real processes: a master, agents and `meseta services` running apps;
answers read with dnspython over UDP and TCP. Every check polls with a deadline of a few seconds
(the latency itself is benchmarks/dns_latency.py's figure, not an assertion)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from meseta.discovery.dns.names import canonical_label
from meseta.runtime.serve import free_port
from meseta.testing.clusters import services_cluster, start_daemon
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(240)
FOLLOW = 3.0  # seconds for DNS to follow what the cluster already did (usually milliseconds: benchmark D1)
LAUNCH = 60.0  # seconds for the cluster to launch or kill tasks (not the DNS server's part)


class Dns:
    def __init__(self, port: int, http_port: int) -> None:
        self.port, self.http = port, f"http://127.0.0.1:{http_port}"

    def ask(self, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        send = dns.query.tcp if tcp else dns.query.udp
        return send(query, "127.0.0.1", port=self.port, timeout=2)

    def srv(self, name: str, tcp: bool = False) -> set[tuple[str, int]]:
        reply = self.ask(name, "SRV", tcp)
        return {(r.target.to_text(), r.port) for rrset in reply.answer for r in rrset}

    def a(self, name: str) -> set[str]:
        return {r.address for rrset in self.ask(name).answer for r in rrset}


def start_dns(base: Path, master: str, *flags: str) -> tuple[subprocess.Popen[bytes], Dns]:
    port, http_port = free_port(), free_port()
    proc = start_daemon(["dns", "--master", master, "--port", str(port), "--http-port", str(http_port), *flags],
                        base / "dns.log")
    server = Dns(port, http_port)

    def answers() -> bool:
        try:
            return httpx.get(server.http + "/v1/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    wait_until(answers, 30, "meseta dns to serve", interval=0.1)
    return proc, server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Dns, Path]]:
    base = tmp_path_factory.mktemp("dns")
    with services_cluster(base, agents=2) as (master, services):
        proc, server = start_dns(base, master)
        try:
            yield master, services, server, base
        finally:
            stop_processes([proc])


def app_tasks(services: str, app: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{services}/v2/apps/{app}/tasks", timeout=5).json()["tasks"])


def follows(what: str, check: Any, describe: Any = None) -> None:
    wait_until(check, FOLLOW, what, interval=0.05, describe=describe)


def running_tasks(services: str, app: str, count: int) -> list[dict[str, Any]]:
    """Once the services scheduler reports ``count`` running tasks of ``app`` (launching takes its time)
    and its deployment is over (a task API call on an app under deployment is refused with 409)."""
    def settled() -> list[dict[str, Any]] | None:
        tasks = [t for t in app_tasks(services, app) if t.get("state") == "TASK_RUNNING"]
        deploying = httpx.get(f"{services}/v2/deployments", timeout=10).json()
        return tasks if len(tasks) == count and not deploying else None
    return wait_until(settled, LAUNCH, f"{count} running tasks of {app}")


def test_a_and_srv_follow_scale_up_scale_down_and_kill(cluster: tuple[str, str, Dns, Path]) -> None:
    _, services, server, _ = cluster
    app = {"id": "/web", "cmd": "sleep 3600", "cpus": 0.05, "mem": 16, "instances": 3,
           "portDefinitions": [{"port": 0, "name": "http", "protocol": "tcp"}]}
    assert httpx.post(f"{services}/v2/apps", json=app, timeout=10).status_code == 201

    def expected(tasks: list[dict[str, Any]]) -> set[tuple[str, int]]:
        """SRV (target, port) per task: T-H-S.F.D. at its host port (a DiscoveryInfo port)."""
        return {(f"{canonical_label('web', t['id'], t['slaveId'])}.marathon.meseta.", t["ports"][0]) for t in tasks}

    def follows_tasks(tasks: list[dict[str, Any]], what: str) -> None:
        follows(what, lambda: server.srv("_web._tcp.marathon.meseta.") == expected(tasks),
                lambda: f"SRV {server.srv('_web._tcp.marathon.meseta.')}, expected {expected(tasks)}")

    tasks = running_tasks(services, "web", 3)
    follows_tasks(tasks, "3 SRV records, one per task")
    assert server.a("web.marathon.meseta.") == {"127.0.0.1"}
    reply = server.ask("_web._tcp.marathon.meseta.", "SRV")
    assert reply.flags & dns.flags.AA and reply.rcode() == dns.rcode.NOERROR
    targets = {target for target, _ in expected(tasks)}
    assert {rrset.name.to_text() for rrset in reply.additional} == targets  # each target's address
    assert all(server.a(target) == {"127.0.0.1"} for target in targets)
    assert server.srv("_web._tcp.marathon.meseta.", tcp=True) == expected(tasks)
    assert server.srv("_http._web._tcp.marathon.meseta.") == expected(tasks)  # the port's name

    httpx.put(f"{services}/v2/apps/web", json={"instances": 5}, timeout=10).raise_for_status()
    tasks = running_tasks(services, "web", 5)
    follows_tasks(tasks, "5 SRV records after scaling up")
    edns = dns.message.make_query("_web._tcp.marathon.meseta.", "SRV", use_edns=0, payload=4096)
    big = dns.query.udp(edns, "127.0.0.1", port=server.port, timeout=2)
    assert not big.flags & dns.flags.TC and len(big.additional) == 5  # every target's address fits in 4096
    assert big.edns == 0 and {(r.target.to_text(), r.port) for r in big.answer[0]} == expected(tasks)
    httpx.put(f"{services}/v2/apps/web", json={"instances": 2}, timeout=10).raise_for_status()
    tasks = running_tasks(services, "web", 2)
    follows_tasks(tasks, "2 SRV records after scaling down")

    victim = tasks[0]
    httpx.delete(f"{services}/v2/apps/web/tasks/{victim['id']}", params={"scale": "true"},
                 timeout=10).raise_for_status()
    follows_tasks(running_tasks(services, "web", 1), "the killed task's record gone")

    httpx.delete(f"{services}/v2/apps/web", timeout=10).raise_for_status()
    wait_until(lambda: not app_tasks_or_none(services, "web"), LAUNCH, "the app gone")
    follows("no record once the app is gone",
            lambda: server.ask("web.marathon.meseta.").rcode() == dns.rcode.NXDOMAIN)


def app_tasks_or_none(services: str, app: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{services}/v2/apps/{app}/tasks", timeout=5)
    return list(response.json()["tasks"]) if response.status_code == 200 else []


def test_unhealthy_tasks_are_not_published(cluster: tuple[str, str, Dns, Path], tmp_path: Path) -> None:
    _, services, server, _ = cluster
    flag = tmp_path / "healthy"
    app = {"id": "/checked", "cmd": "sleep 3600", "cpus": 0.05, "mem": 16, "instances": 1,
           "healthChecks": [{"protocol": "COMMAND", "command": {"value": f"test -e {flag}"}, "delaySeconds": 0,
                             "gracePeriodSeconds": 0, "intervalSeconds": 1, "timeoutSeconds": 2,
                             "maxConsecutiveFailures": 0}]}
    assert httpx.post(f"{services}/v2/apps", json=app, timeout=10).status_code == 201
    def reported(alive: bool) -> Any:
        return lambda: any(t.get("state") == "TASK_RUNNING" and t.get("healthCheckResults") and
                           t["healthCheckResults"][0].get("alive") is alive for t in app_tasks(services, "checked"))
    try:
        wait_until(reported(False), LAUNCH, "the task running and reported unhealthy")
        follows("not published while unhealthy", lambda: server.a("checked.marathon.meseta.") == set())
        flag.write_text("ok")
        wait_until(reported(True), LAUNCH, "the task reported healthy")
        follows("published once healthy", lambda: server.a("checked.marathon.meseta.") == {"127.0.0.1"})
        flag.unlink()
        wait_until(reported(False), LAUNCH, "the task reported unhealthy again")
        follows("withdrawn once unhealthy again", lambda: server.a("checked.marathon.meseta.") == set())
    finally:
        httpx.delete(f"{services}/v2/apps/checked", timeout=10)


def test_leader_agents_soa_forwarding_and_http_api(cluster: tuple[str, str, Dns, Path]) -> None:
    master, _, server, _ = cluster
    port = int(master.split(":")[1])
    assert server.a("leader.meseta.") == {"127.0.0.1"} == server.a("master.meseta.")
    assert server.srv("_leader._tcp.meseta.") == {("leader.meseta.", port)}
    assert server.a("slave.meseta.") == {"127.0.0.1"} and len(server.srv("_slave._tcp.meseta.")) == 2
    assert server.a("marathon.meseta.") == {"127.0.0.1"}
    missing = server.ask("nothing.meseta.")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].rdtype == dns.rdatatype.SOA
    assert server.ask("example.com.").rcode() == dns.rcode.REFUSED  # no --resolver given
    assert server.ask("meseta.", "SOA").answer[0].rdtype == dns.rdatatype.SOA
    config = httpx.get(server.http + "/v1/config", timeout=5).json()
    assert config["Domain"] == "meseta" and config["Masters"] == [master]
    assert httpx.get(server.http + "/v1/hosts/leader.meseta.", timeout=5).json() == [
        {"host": "leader.meseta.", "ip": "127.0.0.1"}]
    assert httpx.get(server.http + "/v1/services/_leader._tcp.meseta.", timeout=5).json() == [
        {"service": "_leader._tcp.meseta.", "host": "leader.meseta.", "ip": "127.0.0.1", "port": str(port)}]
    metrics = httpx.get(server.http + "/metrics/snapshot", timeout=5).json()
    assert metrics["dns/stale"] == 0 and metrics["dns/subscriptions"] >= 1


def test_forwarding_to_a_resolver(cluster: tuple[str, str, Dns, Path], tmp_path: Path) -> None:
    """A second `meseta dns` with domain `other` forwards to the first (its resolver)."""
    master, _, upstream, _ = cluster
    proc, server = start_dns(tmp_path, master, "--domain", "other", "--resolver", f"127.0.0.1:{upstream.port}")
    try:
        assert server.a("leader.meseta.") == {"127.0.0.1"}  # answered by the upstream
        assert server.srv("_leader._tcp.meseta.", tcp=True) == upstream.srv("_leader._tcp.meseta.")
        assert server.a("leader.other.") == {"127.0.0.1"}
        assert server.ask("leader.other.").flags & dns.flags.RA
    finally:
        stop_processes([proc])


def test_bad_flags_exit_with_a_message(tmp_path: Path) -> None:
    proc = start_daemon(["dns", "--master", "127.0.0.1:1", "--resolver", "not-an-ip"], tmp_path / "bad.log")
    assert proc.wait(30) == 2
    assert "--resolver" in (tmp_path / "bad.log").read_text()


def test_stale_records_are_served_while_the_master_is_away(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    args = ["master", "--port", str(port), "--work-dir", str(tmp_path / "m")]
    procs = [start_daemon(args, tmp_path / "master.log")]
    try:
        proc, server = start_dns(tmp_path, master)
        procs.append(proc)

        def metric(name: str) -> float:
            return float(httpx.get(server.http + "/metrics/snapshot", timeout=2).json()[name])
        assert metric("dns/stale") == 0
        stop_processes(procs[:1])
        wait_until(lambda: metric("dns/stale") == 1 and metric("dns/connected") == 0, FOLLOW, "marked stale")
        assert server.srv("_leader._tcp.meseta.") == {("leader.meseta.", port)}  # still served
        procs[0] = start_daemon(args, tmp_path / "master.log")
        wait_until(lambda: metric("dns/stale") == 0 and metric("dns/subscriptions") >= 2, 30,
                   "subscribed again to the restarted master")
    finally:
        stop_processes(procs)


def test_meseta_local_serves_dns_on_dns_port(tmp_path: Path) -> None:
    """Two `meseta local` asking for the same --dns-port at once: the second takes the next free one."""
    dns_port = free_port()
    masters = [free_port(), free_port()]
    procs = [start_daemon(["local", "--work-dir", str(tmp_path / f"w{i}"), "--port", str(port), "--agents", "1",
                           "--no-cni", "--services-port", "0", "--jobs-port", "0", "--dns-port", str(dns_port)],
                          tmp_path / f"local{i}.log") for i, port in enumerate(masters)]
    try:
        def printed(i: int) -> int | None:
            found = re.search(r"dns +127\.0\.0\.1:(\d+)", (tmp_path / f"local{i}.log").read_text())
            return int(found.group(1)) if found else None
        ports = [wait_until(lambda i=i: printed(i), 60, f"local {i} printing its DNS port") for i in range(2)]
        assert sorted(ports)[0] == dns_port and len(set(ports)) == 2
        for port, master_port in zip(ports, masters, strict=True):
            server = Dns(port, 0)
            assert server.srv("_leader._tcp.meseta.") == {("leader.meseta.", master_port)}
            wait_until(lambda s=server: len(s.srv("_slave._tcp.meseta.")) == 1, LAUNCH, "its agent")
    finally:
        stop_processes(procs)
