"""The network/cni isolator with Debian's real plugins (/usr/lib/cni) and iptables, as root: two
containers on a bridge network of the test's own (bridge name, subnet, netns prefix and dataDir
per run) each serve ``busybox httpd`` on port 80, reachable at their IP and through a host port;
detaching or recovering leaves nothing behind (``meseta.testing.leaks``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from meseta.agent.containerizer.cni import Attachment, CniIsolator, NetworkError, NetworkRequest, PortMapping
from meseta.agent.containerizer.cni_config import default_bridge_network, subnet_masquerade
from meseta.runtime.serve import free_port
from meseta.testing.leaks import PORTMAP_SHARED, Snapshot, snapshot
from meseta.testing.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/lib/cni/bridge").exists()
                       or not Path("/bin/busybox").exists(),
                       reason="needs root, containernetworking-plugins and busybox-static"),
]

PLUGINS = Path("/usr/lib/cni")


@dataclass
class Net:
    isolator: CniIsolator
    tmp: Path
    tag: str  # in every name the test makes: bridges, netns, network names
    bridge: str
    subnet_prefix: str  # "10.a.b."
    before: Snapshot
    procs: list[subprocess.Popen[bytes]]

    def snap(self) -> Snapshot:
        return snapshot(lease_dirs=[self.tmp / "ipam"], mount_roots=[self.tmp])

    def leaks(self) -> list[str]:
        """What is new since the start that is ours (the bridges themselves stay, by design)."""
        return self.before.diff(self.snap(), allow=[*PORTMAP_SHARED, rf"^link: {self.tag}\w*$"],
                                mentioning=[self.tag, self.subnet_prefix, str(self.tmp)])

    def serve(self, attachment: Attachment, name: str) -> None:
        www = self.tmp / f"www-{name}"
        www.mkdir()
        (www / "index.html").write_text(f"hello from {name}\n")
        argv = self.isolator.enter(attachment, ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(www)])
        self.procs.append(subprocess.Popen(argv))


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _get(url: str) -> str:
    with httpx.Client(trust_env=False, timeout=2) as client:
        return client.get(url).text


def _answers(url: str, text: str) -> None:
    def ok() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return _get(url) == text
        return False
    wait_until(ok, 10, f"{url} answers {text!r}")


def _host_address() -> str:
    for line in subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        return line.split()[3].split("/")[0]
    pytest.skip("the host has no global IPv4 address")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    pid = os.getpid()
    tag = f"mt{pid % 100000}"
    a, b = 230 + pid % 20, (pid // 20) % 250
    config_dir = tmp_path / "cni"
    config_dir.mkdir()
    bridge = f"{tag}b"
    conf = default_bridge_network("test-bridge", bridge, f"10.{a}.{b}.0/24", str(tmp_path / "ipam"))
    (config_dir / "bridge.conflist").write_text(json.dumps(conf))
    tiny = default_bridge_network("tiny", f"{tag}t", f"10.{a}.{b + 1}.0/24", str(tmp_path / "ipam"))
    tiny["plugins"][0]["ipam"]["ranges"][0][0].update(rangeStart=f"10.{a}.{b + 1}.2", rangeEnd=f"10.{a}.{b + 1}.2")
    (config_dir / "tiny.conflist").write_text(json.dumps(tiny))
    isolator = CniIsolator(config_dir, PLUGINS, tmp_path / "state", netns_prefix=f"{tag}-")
    net = Net(isolator, tmp_path, tag, bridge, f"10.{a}.{b}", snapshot([tmp_path / "ipam"], [tmp_path]), [])
    try:
        yield net
    finally:
        for proc in net.procs:
            proc.kill()
            proc.wait()
        _run(isolator.recover(set()))
        for link in (bridge, f"{tag}t"):
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)


def test_two_containers_serve_on_their_ip_and_host_ports_and_leave_nothing(net: Net) -> None:
    ports = [free_port(), free_port()]
    attachments = [_run(net.isolator.attach(f"c{i}", [NetworkRequest("test-bridge", (PortMapping(port, 80),),
                                                                     {"app": f"c{i}"})]))
                   for i, port in enumerate(ports)]
    host = _host_address()
    for i, attachment in enumerate(attachments):
        [info] = attachment.network_infos
        assert info["name"] == "test-bridge" and info["labels"] == {"labels": [{"key": "app", "value": f"c{i}"}]}
        assert info["port_mappings"] == [{"host_port": ports[i], "container_port": 80, "protocol": "tcp"}]
        [address] = info["ip_addresses"]
        assert address["protocol"] == "IPv4" and address["ip_address"].startswith(net.subnet_prefix + ".")
        assert attachment.etc_files["hosts"].read_text().endswith(f"{address['ip_address']} c{i}\n")
        net.serve(attachment, f"c{i}")
    for i, attachment in enumerate(attachments):
        ip = attachment.network_infos[0]["ip_addresses"][0]["ip_address"]
        for url in (f"http://{ip}/", f"http://127.0.0.1:{ports[i]}/", f"http://{host}:{ports[i]}/"):
            _answers(url, f"hello from c{i}\n")
    assert net.isolator.attachment("c0") == attachments[0]  # read back from the state dir
    assert net.leaks()  # while attached there is something to see: the check can fail
    for proc in net.procs:
        proc.kill()
        proc.wait()
    net.procs.clear()
    for i in range(2):
        _run(net.isolator.detach(f"c{i}"))
        _run(net.isolator.detach(f"c{i}"))  # idempotent
    assert net.leaks() == []
    assert net.isolator.attachment("c0") is None and net.isolator.stored() == {}


def test_recover_after_a_crash_cleans_up(net: Net) -> None:
    port = free_port()
    attachment = _run(net.isolator.attach("crashed", [NetworkRequest("test-bridge", (PortMapping(port, 80),))]))
    net.serve(attachment, "crashed")
    _run(net.isolator.attach("half", [NetworkRequest("test-bridge", (PortMapping(free_port(), 80),))]))
    (net.isolator.state_dir / "half" / "0-test-bridge" / "result.json").unlink()  # crashed after ADD, before storing
    _run(net.isolator.attach("kept", []))
    for proc in net.procs:  # the agent dies and its task with it
        proc.kill()
        proc.wait()
    net.procs.clear()
    restarted = CniIsolator(net.isolator.config_dir, PLUGINS, net.isolator.state_dir, netns_prefix=f"{net.tag}-")
    kept = _run(restarted.recover({"kept"}))
    assert list(kept) == ["kept"] and set(restarted.stored()) == {"kept"}
    _run(restarted.detach("kept"))
    assert net.leaks() == []


def test_unknown_network_is_refused_by_name_and_leaves_nothing(net: Net) -> None:
    with pytest.raises(NetworkError, match="network 'nope' is unknown"):
        _run(net.isolator.attach("c", [NetworkRequest("nope")]))
    with pytest.raises(NetworkError, match=r"port_mappings\[0\].host_port"):
        _run(net.isolator.attach("c", [NetworkRequest("test-bridge", (PortMapping(0, 80),))]))
    with pytest.raises(NetworkError, match="hostname: 'a b' is not a host name"):
        _run(net.isolator.attach("c", [], hostname="a b"))
    assert net.leaks() == [] and net.isolator.stored() == {}


def test_plugin_failure_names_network_and_message_and_is_undone(net: Net) -> None:
    first = _run(net.isolator.attach("t1", [NetworkRequest("tiny")]))
    assert first.network_infos[0]["ip_addresses"]
    during = net.snap()
    with pytest.raises(NetworkError, match=r"network 'tiny': ADD by plugin 'bridge' failed: .*no IP addresses"):
        _run(net.isolator.attach("t2", [NetworkRequest("test-bridge"), NetworkRequest("tiny")]))
    left = during.diff(net.snap(), allow=[rf"^link: {net.bridge}$"], mentioning=[net.tag, net.subnet_prefix])
    assert left == []
    assert set(net.isolator.stored()) == {"t1"}
    _run(net.isolator.detach("t1"))
    assert net.leaks() == []


def test_none_network_has_only_loopback(net: Net) -> None:
    attachment = _run(net.isolator.attach("isolated", []))
    assert attachment.network_infos == []
    links = subprocess.run(net.isolator.enter(attachment, ["ip", "-o", "link"]), capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert len(links) == 1 and links[0].split(": ")[1] == "lo" and "UP" in links[0]
    assert "127.0.1.1 isolated" in attachment.etc_files["hosts"].read_text()
    _run(net.isolator.detach("isolated"))
    assert net.leaks() == []


def test_many_parallel_attaches(net: Net) -> None:
    async def attach_then_detach() -> list[Attachment]:
        found = await asyncio.gather(*(net.isolator.attach(f"p{i}", [NetworkRequest("test-bridge")])
                                       for i in range(20)))
        await asyncio.gather(*(net.isolator.detach(f"p{i}") for i in range(20)))
        return list(found)
    found = _run(attach_then_detach())
    addresses = {a.network_infos[0]["ip_addresses"][0]["ip_address"] for a in found}
    assert len(addresses) == 20
    assert net.leaks() == []


def test_a_plugin_that_hangs_is_cut_off_and_undone(net: Net) -> None:
    plugins = net.tmp / "plugins"
    plugins.mkdir()
    for name in ("bridge", "host-local", "portmap"):
        (plugins / name).symlink_to(PLUGINS / name)
    (plugins / "hang").write_text('#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && exec sleep 60\nexit 0\n')  # DEL works
    (plugins / "hang").chmod(0o755)
    (net.isolator.config_dir / "slow.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "slow", "plugins": [{"type": "hang"}]}))
    isolator = CniIsolator(net.isolator.config_dir, plugins, net.isolator.state_dir, netns_prefix=f"{net.tag}-",
                           timeout=1)
    with pytest.raises(NetworkError, match=r"network 'slow': ADD by plugin 'hang': no answer within 1 s"):
        _run(isolator.attach("slow", [NetworkRequest("test-bridge"), NetworkRequest("slow")]))
    assert isolator.stored() == {}
    assert net.leaks() == []


@pytest.mark.parametrize("flags", [[], ["--no-cni"]])
def test_meseta_local_ships_the_default_bridge_network(tmp_path: Path, flags: list[str]) -> None:
    from meseta.agent.containerizer.cni_config import load_networks
    from meseta.testing.clusters import start_daemon, wait_for_agents
    from meseta.testing.processes import stop_processes

    port = free_port()
    proc = start_daemon(["local", "--port", str(port), "--agents", "1", "--work-dir", str(tmp_path),
                         "--services-port", "0", "--jobs-port", "0", *flags], tmp_path / "local.log")
    try:
        wait_for_agents(f"127.0.0.1:{port}", 1)
    finally:
        stop_processes([proc])
    conflist = tmp_path / "cni" / "mesos-bridge.conflist"
    if flags:
        assert not conflist.exists()
        return
    loaded = load_networks({conflist.name: conflist.read_text()}, {p.name for p in PLUGINS.iterdir()})
    network = loaded.networks["mesos-bridge"]
    assert [p["type"] for p in network.plugins] == ["bridge", "portmap"] and network.port_mapping_capable
    assert network.plugins[0]["ipam"]["dataDir"] == str(tmp_path / "network" / "ipam")


# busybox-static's wget crashes in a namespace: fetch with this Python (no proxies)
FETCH = ("import sys, urllib.request as u; "
         "sys.stdout.write(u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=2).read().decode())")


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.mark.parametrize("per_container", [True, False], ids=["ipMasq", "one-subnet-rule"])
def test_containers_reach_beyond_the_host_only_through_masquerade(net: Net, per_container: bool) -> None:
    """An 'outside' namespace on a veth of its own, with no route back to the containers' subnet,
    serves httpd: a container reaches it only masqueraded, by the bridge plugin's per-container
    ipMasq chain or by one subnet rule on a network made with ip_masq=False (and not without it)."""
    _, a, b = net.subnet_prefix.split(".")
    name, rule = "test-bridge", None
    if not per_container:
        name, subnet = "nomasq", f"10.{a}.{int(b) + 3}.0/24"
        config = default_bridge_network(name, f"{net.tag}n", subnet, str(net.tmp / "ipam"), ip_masq=False)
        (net.tmp / "cni" / "nomasq.conflist").write_text(json.dumps(config))
        rule = subnet_masquerade(subnet, f"meseta test {net.tag}")
        _sh("iptables", "-w", "-t", "nat", "-A", *rule)
    outside, host_end, far = f"{net.tag}-out", f"{net.tag}o", f"10.{a}.{int(b) + 2}"
    www = net.tmp / "www-outside"
    www.mkdir()
    (www / "index.html").write_text("outside\n")
    server = None
    try:
        _sh("ip", "netns", "add", outside)
        _sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", outside)
        _sh("ip", "addr", "add", f"{far}.1/30", "dev", host_end)
        _sh("ip", "link", "set", host_end, "up")
        _sh("ip", "-n", outside, "addr", "add", f"{far}.2/30", "dev", "eth0")
        _sh("ip", "-n", outside, "link", "set", "eth0", "up")
        server = subprocess.Popen(["ip", "netns", "exec", outside, "/bin/busybox", "httpd", "-f", "-p", "80",
                                   "-h", str(www)])
        attachment = _run(net.isolator.attach("c-out", [NetworkRequest(name)]))
        fetch = net.isolator.enter(attachment, [sys.executable, "-c", FETCH, f"http://{far}.2/"])

        def fetched() -> bool:
            return subprocess.run(fetch, capture_output=True, text=True, timeout=10).stdout == "outside\n"

        wait_until(fetched, 15, "the outside namespace answers the container")
        if rule is not None:  # without the rule the outside cannot answer: the test can fail
            _sh("iptables", "-w", "-t", "nat", "-D", *rule)
            rule = None
            assert not fetched()
        _run(net.isolator.detach("c-out"))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", outside], capture_output=True, check=False)
        if rule is not None:
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *rule], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"{net.tag}n"], capture_output=True, check=False)
    assert net.leaks() == []
