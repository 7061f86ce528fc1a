"""cni_config: loading network configs, plugin stdin, results, port mappings."""

from __future__ import annotations

import json

import pytest

from meseta.agent.containerizer.cni_config import (
    CniConfigError,
    PortMapping,
    check_request,
    default_bridge_network,
    del_prev_result,
    hosts_file,
    load_networks,
    network_info,
    plugin_stdin,
    resolv_conf,
    result_addresses,
    sanitise_id,
    subnet_masquerade,
    validate_port_mappings,
)

PRESENT = {"bridge", "host-local", "portmap"}
SINGLE = {"name": "net1", "type": "bridge", "bridge": "b1", "ipam": {"type": "host-local"}}


def test_single_plugin_and_list_configs_load_by_name() -> None:
    files = {"a.conf": json.dumps(SINGLE), "b.conflist": json.dumps(default_bridge_network("net2", "b2"))}
    loaded = load_networks(files, PRESENT)
    assert set(loaded.networks) == {"net1", "net2"}
    one, two = loaded.networks["net1"], loaded.networks["net2"]
    assert (one.is_list, one.cni_version, one.source) == (False, "0.2.0", "a.conf")
    assert (two.is_list, two.cni_version, [p["type"] for p in two.plugins]) == (True, "1.0.0", ["bridge", "portmap"])
    assert loaded.skipped == ()


def test_duplicates_first_file_wins_and_the_skip_is_reported() -> None:
    files = {"b.conf": json.dumps({**SINGLE, "bridge": "second"}), "a.conf": json.dumps(SINGLE)}
    loaded = load_networks(files, PRESENT)
    assert loaded.networks["net1"].source == "a.conf"
    assert loaded.skipped == (("b.conf", "network 'net1' is already defined by a.conf"),)


def test_missing_plugin_mesos_args_and_bad_files_are_skipped_with_reasons() -> None:
    files = {
        "missing.conf": json.dumps({"name": "m", "type": "macvlan"}),
        "noipam.conf": json.dumps({"name": "i", "type": "bridge", "ipam": {"type": "dhcp"}}),
        "args.conf": json.dumps({**SINGLE, "name": "x", "args": {"org.apache.mesos": {}}}),
        "bad.json": "{not json",
        "noname.conf": json.dumps({"type": "bridge"}),
        "emptylist.conflist": json.dumps({"name": "e", "cniVersion": "1.0.0", "plugins": []}),
        "noversion.conflist": json.dumps({"name": "v", "plugins": [{"type": "bridge"}]}),
    }
    loaded = load_networks(files, PRESENT)
    assert loaded.networks == {}
    reasons = dict(loaded.skipped)
    assert "plugin 'macvlan' is not in the plugins dir" in reasons["missing.conf"]
    assert "args.org.apache.mesos" in reasons["args.conf"]
    assert "ipam.type: plugin 'dhcp' is not in the plugins dir" in reasons["noipam.conf"]
    assert reasons["bad.json"].startswith("not JSON")
    assert reasons["noname.conf"].startswith("name:")
    assert "plugins: must be a non-empty list" in reasons["emptylist.conflist"]
    assert "cniVersion" in reasons["noversion.conflist"]
    assert "macvlan" in loaded.why_missing("m") and loaded.why_missing("other") == ""


def test_list_plugin_stdin_follows_the_spec() -> None:
    network = load_networks({"n": json.dumps(default_bridge_network("n", "b"))}, PRESENT).networks["n"]
    mappings = (PortMapping(8080, 80),)
    first = plugin_stdin(network, 0, mappings=mappings)
    assert first["name"] == "n" and first["cniVersion"] == "1.0.0" and first["type"] == "bridge"
    assert "runtimeConfig" not in first and "prevResult" not in first and "args" not in first
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}
    second = plugin_stdin(network, 1, mappings=mappings, prev_result=prev)
    assert "capabilities" not in second
    assert second["runtimeConfig"] == {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    assert second["prevResult"] == prev and second["snat"] is True
    assert network.plugins[1]["capabilities"] == {"portMappings": True}  # the config is not changed


def test_single_plugin_stdin_carries_mesos_network_info() -> None:
    network = load_networks({"a": json.dumps(SINGLE)}, PRESENT).networks["net1"]
    stdin = plugin_stdin(network, 0, labels={"k": "v"})
    assert stdin["args"]["org.apache.mesos"]["network_info"] == {
        "name": "net1", "labels": {"labels": [{"key": "k", "value": "v"}]}}
    assert stdin["cniVersion"] == "0.2.0"


def test_port_mappings_need_a_capable_plugin() -> None:
    single = load_networks({"a": json.dumps(SINGLE)}, PRESENT).networks["net1"]
    with pytest.raises(CniConfigError, match="portMappings capability"):
        check_request(single, (PortMapping(8080, 80),))
    check_request(single, ())
    with pytest.raises(CniConfigError, match="labels: must map strings to strings"):
        check_request(single, (), {"k": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(("mappings", "field"), [
    ((PortMapping(0, 80),), r"port_mappings\[0\]\.host_port"),
    ((PortMapping(80, 70000),), r"port_mappings\[0\]\.container_port"),
    ((PortMapping(True, 80),), r"port_mappings\[0\]\.host_port"),  # type: ignore[arg-type]
    ((PortMapping(80, 80, "sctp"),), r"port_mappings\[0\]\.protocol"),
    ((PortMapping(80, 80), PortMapping(80, 81)), r"port_mappings\[1\]\.host_port: 80/tcp is mapped twice"),
])
def test_bad_port_mappings_name_the_field(mappings: tuple[PortMapping, ...], field: str) -> None:
    with pytest.raises(CniConfigError, match=field):
        validate_port_mappings(mappings)


def test_same_host_port_on_tcp_and_udp_is_fine() -> None:
    validate_port_mappings((PortMapping(53, 53, "tcp"), PortMapping(53, 53, "udp")))


def test_results_of_both_spec_generations_give_addresses() -> None:
    old = {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1"}, "ip6": {"ip": "fd00::5/64"}}
    new = {"cniVersion": "1.0.0", "interfaces": [], "ips": [{"address": "10.2.0.3/24", "interface": 2}]}
    assert result_addresses(old) == [("IPv4", "10.1.0.5"), ("IPv6", "fd00::5")]
    assert network_info("n", (PortMapping(8080, 80, "udp"),), {"a": "b"}, new) == {
        "name": "n", "labels": {"labels": [{"key": "a", "value": "b"}]},
        "port_mappings": [{"host_port": 8080, "container_port": 80, "protocol": "udp"}],
        "ip_addresses": [{"protocol": "IPv4", "ip_address": "10.2.0.3"}]}


@pytest.mark.parametrize(("result", "field"), [
    ([], "result: must be a JSON object"),
    ({"ips": {}}, "result.ips: must be a list"),
    ({"ips": [{"address": "nonsense"}]}, r"result.ips\[0\].address"),
    ({"ip4": {"ip": 5}}, "result.ip4.ip"),
])
def test_bad_results_name_the_field(result: object, field: str) -> None:
    with pytest.raises(CniConfigError, match=field):
        result_addresses(result)


def test_del_carries_prev_result_from_spec_0_4() -> None:
    loaded = load_networks({"a": json.dumps(SINGLE), "b": json.dumps(default_bridge_network("n", "b"))}, PRESENT)
    assert del_prev_result(loaded.networks["net1"], {"x": 1}) is None
    assert del_prev_result(loaded.networks["n"], {"x": 1}) == {"x": 1}


def test_etc_files() -> None:
    result = {"dns": {"nameservers": ["10.0.0.53"], "search": ["a.example"], "domain": "example"}}
    assert resolv_conf([{}, result], "host\n") == "nameserver 10.0.0.53\ndomain example\nsearch a.example\n"
    assert resolv_conf([{"dns": {"nameservers": ["bad\nline"]}}], "host\n") == "host\n"
    assert hosts_file("web", ["10.0.0.2"]).endswith("10.0.0.2 web\n")
    assert hosts_file("web", []).endswith("127.0.1.1 web\n")


def test_container_ids_are_sanitised_to_cni_charset() -> None:
    assert sanitise_id("abc-1.2_x") == "abc-1.2_x"
    assert sanitise_id("a/b c") == "a-b-c"
    assert sanitise_id("-x") == "c-x"


def test_default_bridge_network_refuses_bad_names() -> None:
    with pytest.raises(CniConfigError, match="bridge"):
        default_bridge_network(bridge="a-name-longer-than-15")
    with pytest.raises(ValueError):
        default_bridge_network(subnet="10.0.0.0/33")


def test_a_bridge_network_without_ip_masq_and_its_one_subnet_rule() -> None:
    assert default_bridge_network()["plugins"][0]["ipMasq"] is True  # what `meseta local` ships
    assert default_bridge_network(ip_masq=False)["plugins"][0]["ipMasq"] is False
    assert subnet_masquerade("10.9.0.0/16", "meseta n1") == [
        "POSTROUTING", "-s", "10.9.0.0/16", "!", "-d", "10.9.0.0/16", "-m", "comment", "--comment", "meseta n1",
        "-j", "MASQUERADE"]
    with pytest.raises(ValueError):
        subnet_masquerade("10.9.0.1/16", "host bits set")
    with pytest.raises(CniConfigError, match="comment"):
        subnet_masquerade("10.9.0.0/16", "")
