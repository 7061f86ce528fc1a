"""CNI network configurations, plugin input and results, read strictly (pure: the caller hands in
file texts and the names of the plugin binaries present; nothing here reads the disk).

A network is either a single-plugin config (what Mesos reads from every regular file of
``--network_cni_config_dir``) or a ``.conflist``-style list (``{"name", "cniVersion", "plugins": [...]}``),
accepted too because Debian's plugins need ``portmap`` chained after ``bridge``. Duplicate names: the
first file (in sorted file-name order) wins. A network whose plugin binary is missing, or that sets
``args.org.apache.mesos`` (the runtime's own key), is skipped with the reason.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meseta.protocol.container_info import PortMapping

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # CNI network names and container ids
MAX_CONFIG_BYTES = 1 << 20
LEGACY_VERSIONS = ("0.1.0", "0.2.0")  # results carry ip4/ip6 instead of ips[]
PROTOCOLS = ("tcp", "udp")


class CniConfigError(ValueError):
    """A config, request or result is malformed; the message names the field."""


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]  # each plugin's own object, as written
    source: str  # the file it came from
    is_list: bool  # a .conflist-style list (False: a single-plugin Mesos config)
    raw: dict[str, Any] = field(compare=False, default_factory=dict)  # the whole file, for the state dir

    @property
    def port_mapping_capable(self) -> bool:
        return any(_capabilities(plugin).get("portMappings") is True for plugin in self.plugins)


@dataclass(frozen=True)
class Loaded:
    networks: dict[str, NetworkConfig]
    skipped: tuple[tuple[str, str], ...]  # (file, reason)

    def why_missing(self, name: str) -> str:
        """Why a network of that name is not usable (a skipped file that declared it), or ''."""
        reasons = [f"{source}: {reason}" for source, reason in self.skipped if f"network {name!r}" in reason]
        return "; ".join(reasons)


def _capabilities(plugin: Mapping[str, Any]) -> dict[str, Any]:
    caps = plugin.get("capabilities") or {}
    return dict(caps) if isinstance(caps, Mapping) else {}


def _check_plugin(plugin: Any, where: str, present: Collection[str] | None) -> None:
    if not isinstance(plugin, dict):
        raise CniConfigError(f"{where}: must be an object")
    kind = plugin.get("type")
    if not isinstance(kind, str) or not NAME.match(kind):
        raise CniConfigError(f"{where}.type: must be a plugin name")
    caps = plugin.get("capabilities")
    if caps is not None and not isinstance(caps, dict):
        raise CniConfigError(f"{where}.capabilities: must be an object")
    args = plugin.get("args")
    if args is not None and not isinstance(args, dict):
        raise CniConfigError(f"{where}.args: must be an object")
    if isinstance(args, dict) and "org.apache.mesos" in args:
        raise CniConfigError(f"{where}.args.org.apache.mesos: is set by the agent, not by a config")
    if present is not None and kind not in present:
        raise CniConfigError(f"{where}.type: plugin {kind!r} is not in the plugins dir")
    ipam = plugin.get("ipam")
    if ipam is not None and not isinstance(ipam, dict):
        raise CniConfigError(f"{where}.ipam: must be an object")
    if ipam and present is not None and ipam.get("type") not in present:
        raise CniConfigError(f"{where}.ipam.type: plugin {ipam.get('type')!r} is not in the plugins dir")


def parse_network(source: str, text: str, present: Collection[str] | None) -> NetworkConfig:
    """One file's network; CniConfigError names the file's bad field. ``present``: the plugin
    binaries there are (None: do not check, as for a stored config to DEL)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise CniConfigError("larger than 1 MiB")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise CniConfigError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CniConfigError("must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise CniConfigError("name: must be a network name (letters, digits, _ . -)")
    version = raw.get("cniVersion", "0.2.0" if "plugins" not in raw else None)
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        raise CniConfigError(f"network {name!r}: cniVersion: must be a version like 1.0.0")
    try:
        if "plugins" in raw:
            plugins = raw["plugins"]
            if not isinstance(plugins, list) or not plugins:
                raise CniConfigError("plugins: must be a non-empty list")
            for index, plugin in enumerate(plugins):
                _check_plugin(plugin, f"plugins[{index}]", present)
            return NetworkConfig(name, version, tuple(plugins), source, True, raw)
        _check_plugin(raw, "config", present)
    except CniConfigError as exc:
        raise CniConfigError(f"network {name!r}: {exc}") from None
    return NetworkConfig(name, version, (raw,), source, False, raw)


def load_networks(files: Mapping[str, str], present: Collection[str]) -> Loaded:
    """Every network of a config dir (file name -> text); the first file of a name wins."""
    networks: dict[str, NetworkConfig] = {}
    skipped: list[tuple[str, str]] = []
    for source in sorted(files):
        try:
            network = parse_network(source, files[source], present)
        except CniConfigError as exc:
            skipped.append((source, str(exc)))
            continue
        if network.name in networks:
            skipped.append((source, f"network {network.name!r} is already defined by {networks[network.name].source}"))
            continue
        networks[network.name] = network
    return Loaded(networks, tuple(skipped))


def validate_port_mappings(mappings: Sequence[PortMapping], where: str = "port_mappings") -> None:
    """Ports in 1..65535, protocol tcp|udp, no host port twice for a protocol."""
    seen: set[tuple[int, str]] = set()
    for index, mapping in enumerate(mappings):
        at = f"{where}[{index}]"
        for key in ("host_port", "container_port"):
            value = getattr(mapping, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise CniConfigError(f"{at}.{key}: must be a port in 1..65535, not {value!r}")
        if mapping.protocol not in PROTOCOLS:
            raise CniConfigError(f"{at}.protocol: must be tcp or udp, not {mapping.protocol!r}")
        taken = (mapping.host_port, mapping.protocol)
        if taken in seen:
            raise CniConfigError(f"{at}.host_port: {mapping.host_port}/{mapping.protocol} is mapped twice")
        seen.add(taken)


def check_request(network: NetworkConfig, mappings: Sequence[PortMapping],
                  labels: Mapping[str, str] | None = None) -> None:
    """Refuse bad labels and port mappings a network cannot honour (no plugin declares the
    portMappings capability)."""
    validate_port_mappings(mappings, f"network {network.name!r}: port_mappings")
    if labels is not None and (not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        raise CniConfigError(f"network {network.name!r}: labels: must map strings to strings")
    if mappings and not network.port_mapping_capable:
        raise CniConfigError(f"network {network.name!r}: port_mappings: no plugin of the network declares the "
                             "portMappings capability")


def mesos_network_info(name: str, mappings: Sequence[PortMapping], labels: Mapping[str, str] | None) -> dict[str, Any]:
    """The requested NetworkInfo (v1 JSON), without addresses."""
    info: dict[str, Any] = {"name": name}
    if labels:
        info["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
    if mappings:
        info["port_mappings"] = [{"host_port": m.host_port, "container_port": m.container_port,
                                  "protocol": m.protocol} for m in mappings]
    return info


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def plugin_stdin(network: NetworkConfig, index: int, *, mappings: Sequence[PortMapping] = (),
                 labels: Mapping[str, str] | None = None, prev_result: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """What plugin ``index`` of the network reads on stdin (CNI spec: name and cniVersion added,
    capabilities dropped, runtimeConfig for declared capabilities, prevResult chained)."""
    conf = copy.deepcopy(network.plugins[index])
    conf["cniVersion"] = network.cni_version
    conf["name"] = network.name
    caps = _capabilities(conf)
    conf.pop("capabilities", None)
    conf.pop("runtimeConfig", None)
    if caps.get("portMappings") is True:
        conf["runtimeConfig"] = {"portMappings": [{"hostPort": m.host_port, "containerPort": m.container_port,
                                                   "protocol": m.protocol} for m in mappings]}
    if not network.is_list:
        args = conf.setdefault("args", {})
        args["org.apache.mesos"] = {"network_info": mesos_network_info(network.name, mappings, labels)}
    if prev_result is not None:
        conf["prevResult"] = copy.deepcopy(dict(prev_result))
    return conf


def del_prev_result(network: NetworkConfig, result: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """DEL carries the stored ADD result from spec 0.4.0 on."""
    return result if result is not None and version_tuple(network.cni_version) >= (0, 4, 0) else None


def _address(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, str):
        raise CniConfigError(f"{where}: must be an address with a prefix")
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise CniConfigError(f"{where}: {value!r} is not an address with a prefix") from None
    return ("IPv4" if interface.version == 4 else "IPv6", str(interface.ip))


def result_addresses(result: Any) -> list[tuple[str, str]]:
    """(protocol, address without prefix) of an ADD result, spec 0.1/0.2 (ip4/ip6) or 0.3+ (ips[])."""
    if not isinstance(result, dict):
        raise CniConfigError("result: must be a JSON object")
    found: list[tuple[str, str]] = []
    if "ips" in result:
        ips = result["ips"]
        if not isinstance(ips, list):
            raise CniConfigError("result.ips: must be a list")
        for index, entry in enumerate(ips):
            if not isinstance(entry, dict):
                raise CniConfigError(f"result.ips[{index}]: must be an object")
            found.append(_address(entry.get("address"), f"result.ips[{index}].address"))
        return found
    for key in ("ip4", "ip6"):
        block = result.get(key)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise CniConfigError(f"result.{key}: must be an object")
        found.append(_address(block.get("ip"), f"result.{key}.ip"))
    return found


def network_info(name: str, mappings: Sequence[PortMapping], labels: Mapping[str, str] | None,
                 result: Any) -> dict[str, Any]:
    """The NetworkInfo a status reports: the request with the result's addresses (Mesos ``status()``)."""
    info = mesos_network_info(name, mappings, labels)
    info["ip_addresses"] = [{"protocol": protocol, "ip_address": address}
                            for protocol, address in result_addresses(result)]
    return info


def result_dns(result: Any) -> dict[str, list[str]]:
    """nameservers / search / options / domain of a result's ``dns`` (both result shapes carry it)."""
    dns = result.get("dns") if isinstance(result, dict) else None
    if not isinstance(dns, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key in ("nameservers", "search", "options"):
        values = dns.get(key)
        if isinstance(values, list) and all(isinstance(v, str) and v.strip() and "\n" not in v for v in values):
            out[key] = list(values)
    domain = dns.get("domain")
    if isinstance(domain, str) and domain.strip() and "\n" not in domain:
        out["domain"] = [domain]
    return out


def resolv_conf(results: Sequence[Any], host_text: str) -> str:
    """The container's resolv.conf: the first result with nameservers, else the host's."""
    for result in results:
        dns = result_dns(result)
        if dns.get("nameservers"):
            lines = [f"nameserver {ns}" for ns in dns["nameservers"]]
            if "domain" in dns:
                lines.append(f"domain {dns['domain'][0]}")
            if dns.get("search"):
                lines.append("search " + " ".join(dns["search"]))
            if dns.get("options"):
                lines.append("options " + " ".join(dns["options"]))
            return "\n".join(lines) + "\n"
    return host_text


def hosts_file(hostname: str, addresses: Sequence[str]) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{address} {hostname}" for address in addresses] or [f"127.0.1.1 {hostname}"]
    return "\n".join(lines) + "\n"


def sanitise_id(container_id: str) -> str:
    """A container id in CNI's charset (letters, digits, then also _ . -); others become '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "-", container_id)[:200]
    if not cleaned or not cleaned[0].isalnum():
        cleaned = "c" + cleaned
    return cleaned


def default_bridge_network(name: str = "mesos-bridge", bridge: str = "meseta0", subnet: str = "10.220.0.0/16",
                           data_dir: str = "/var/lib/meseta/cni/ipam", ip_masq: bool = True) -> dict[str, Any]:
    """bridge + host-local + portmap, for a runtime that makes its own netns (spec 5.3).
    ``ip_masq=False``: the bridge plugin adds no NAT chain per container (8 iptables runs per ADD and
    6 per DEL, half an attach's time); whoever sets the network up then installs
    ``subnet_masquerade(subnet)`` once, or the containers cannot reach beyond the host."""
    ipaddress.ip_network(subnet)  # ValueError on a bad subnet
    if not NAME.match(name):
        raise CniConfigError(f"name: {name!r} is not a network name")
    if not re.match(r"^[A-Za-z0-9_.\-]{1,15}$", bridge):
        raise CniConfigError(f"bridge: {bridge!r} is not an interface name (at most 15 characters)")
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "disableCheck": True,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": ip_masq, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": data_dir}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def subnet_masquerade(subnet: str, comment: str) -> list[str]:
    """The nat POSTROUTING rule (iptables arguments after ``-A``/``-D``) that masquerades what the
    subnet sends beyond itself: one rule for every container of a network made with ``ip_masq=False``."""
    network = str(ipaddress.ip_network(subnet))  # ValueError on a bad subnet
    if not comment or len(comment) > 200 or not comment.isprintable():
        raise CniConfigError(f"comment: {comment!r} must be 1-200 printable characters")
    return ["POSTROUTING", "-s", network, "!", "-d", network, "-m", "comment", "--comment", comment,
            "-j", "MASQUERADE"]
