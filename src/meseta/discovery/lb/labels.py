"""The marathon-lb labels ``meseta lb`` honours, parsed per service port; pure.

    HAPROXY_GROUP                   app groups, comma-separated (no group: not exposed, unless the LB serves "*")
    HAPROXY_{n}_GROUP               overrides HAPROXY_GROUP for service port index n
    HAPROXY_{n}_PORT                bind port instead of the service port
    HAPROXY_{n}_BIND_ADDR           bind address (IPv4 literal) instead of the LB's --bind-addr
    HAPROXY_{n}_MODE                tcp | http (default tcp; http when a VHOST is given)
    HAPROXY_{n}_BALANCE             roundrobin | static-rr | leastconn | first | source | uri | random
    HAPROXY_{n}_VHOST               host names, comma-separated, routed on the shared http frontend
    HAPROXY_{n}_PATH                path prefixes, space-separated (needs VHOST)
    HAPROXY_{n}_BACKEND_WEIGHT      integer -1000..1000 ordering vhost/path rules, largest first
    HAPROXY_{n}_REDIRECT_TO_HTTPS   true | false: 301 to https when not over TLS (needs VHOST)
    HAPROXY_{n}_USE_HSTS            true | false: Strict-Transport-Security response header (http mode)

Any other ``HAPROXY_`` label (templates, TLS, auth, zdd's deployment labels...) is refused by name:
``LabelError`` names the label, and the app is left out of the LB (the others are unaffected).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

MODES = ("tcp", "http")
BALANCES = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "random")
PER_PORT = ("GROUP", "PORT", "BIND_ADDR", "MODE", "BALANCE", "VHOST", "PATH", "BACKEND_WEIGHT",
            "REDIRECT_TO_HTTPS", "USE_HSTS")
PORT_LABEL = re.compile(r"HAPROXY_(\d{1,3})_([A-Z_]+)")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")
PATH_PREFIX = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/-]{0,200}")  # no quote, $, # or space: config syntax
GROUP_NAME = re.compile(r"[A-Za-z0-9_.*-]{1,64}")
TRUE, FALSE = ("true", "t", "yes", "y"), ("false", "f", "no", "n")
MAX_LABEL = 1024


class LabelError(ValueError):
    """A label ``meseta lb`` cannot turn into a valid HAProxy configuration; names the label."""

    def __init__(self, label: str, problem: str) -> None:
        super().__init__(f"label {label}: {problem}")
        self.label = label


@dataclass(frozen=True, slots=True)
class PortLabels:
    """What the labels say about one service port (None = not set)."""

    groups: tuple[str, ...]
    port: int | None = None
    bind_addr: str | None = None
    mode: str | None = None
    balance: str = "roundrobin"
    vhosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    weight: int = 0
    redirect_https: bool = False
    hsts: bool = False


def check_known(labels: Mapping[str, str]) -> None:
    """Refuse every HAPROXY_ label this LB does not implement (by name)."""
    for key in sorted(labels):
        if not key.startswith("HAPROXY_") or key == "HAPROXY_GROUP":
            continue
        match = PORT_LABEL.fullmatch(key)
        if match is None or match.group(2) not in PER_PORT:
            raise LabelError(key, "not supported by meseta lb")


def port_labels(labels: Mapping[str, str], index: int) -> PortLabels:
    """The labels of service port ``index``, checked; raises LabelError naming the first bad one."""
    def get(name: str) -> tuple[str, str] | None:
        key = f"HAPROXY_{index}_{name}"
        value = labels.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > MAX_LABEL or not value.isprintable():
            raise LabelError(key, f"must be printable text of at most {MAX_LABEL} characters")
        return key, value.strip()

    group = get("GROUP")
    groups = _groups(*group) if group else _groups("HAPROXY_GROUP", labels["HAPROXY_GROUP"]) \
        if "HAPROXY_GROUP" in labels else ()
    result = PortLabels(groups=groups)
    if (item := get("PORT")) is not None:
        result = replace(result, port=_integer(*item, 1, 65535))
    if (item := get("BIND_ADDR")) is not None:
        key, value = item
        try:
            result = replace(result, bind_addr=str(ipaddress.IPv4Address(value)))
        except ValueError:
            raise LabelError(key, f"{value!r} is not an IPv4 address") from None
    if (item := get("MODE")) is not None:
        result = replace(result, mode=_choice(*item, MODES))
    if (item := get("BALANCE")) is not None:
        result = replace(result, balance=_choice(*item, BALANCES))
    if (item := get("VHOST")) is not None:
        key, value = item
        hosts = tuple(h.strip().lower() for h in value.split(","))
        for host in hosts:
            if len(host) > 253 or not HOST_NAME.fullmatch(host):
                raise LabelError(key, f"{host!r} is not a host name")
        result = replace(result, vhosts=hosts)
    if (item := get("PATH")) is not None:
        key, value = item
        paths = tuple(value.split())
        if not paths:
            raise LabelError(key, "is empty")
        for path in paths:
            if not PATH_PREFIX.fullmatch(path):
                raise LabelError(key, f"{path!r} is not a path prefix (/ then URL characters)")
        result = replace(result, paths=paths)
    if (item := get("BACKEND_WEIGHT")) is not None:
        result = replace(result, weight=_integer(*item, -1000, 1000))
    if (item := get("REDIRECT_TO_HTTPS")) is not None:
        result = replace(result, redirect_https=_boolean(*item))
    if (item := get("USE_HSTS")) is not None:
        result = replace(result, hsts=_boolean(*item))
    return _coherent(result, index)


def _coherent(p: PortLabels, index: int) -> PortLabels:
    if (p.paths or p.redirect_https) and not p.vhosts:
        name = "PATH" if p.paths else "REDIRECT_TO_HTTPS"
        raise LabelError(f"HAPROXY_{index}_{name}", f"needs HAPROXY_{index}_VHOST")
    if p.vhosts and p.mode == "tcp":
        raise LabelError(f"HAPROXY_{index}_VHOST", f"needs http mode, HAPROXY_{index}_MODE is tcp")
    if p.hsts and p.mode != "http" and not p.vhosts:
        raise LabelError(f"HAPROXY_{index}_USE_HSTS", "needs http mode")
    if p.paths and p.weight == 0:
        p = replace(p, weight=1)  # marathon-lb: a path rule goes before the plain vhost rules
    return p


def _groups(key: str, value: str) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise LabelError(key, "must be text")
    groups = tuple(g.strip() for g in value.split(",") if g.strip())
    for group in groups:
        if not GROUP_NAME.fullmatch(group):
            raise LabelError(key, f"{group!r} is not a group name")
    return groups


def _integer(key: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?\d{1,6}", value) or not low <= int(value) <= high:
        raise LabelError(key, f"{value!r} is not an integer in {low}..{high}")
    return int(value)


def _choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise LabelError(key, f"{value!r} is not one of {', '.join(choices)}")
    return value.lower()


def _boolean(key: str, value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise LabelError(key, f"{value!r} is not true or false")
