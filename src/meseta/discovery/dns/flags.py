"""The flags of ``meseta dns`` (and ``meseta local --dns-port``) into :class:`DnsOptions`."""

from __future__ import annotations

import ipaddress

import psutil

from meseta.discovery.dns.options import (
    DnsOptions,
    parse_domain,
    parse_ip_sources,
    parse_masters,
    parse_resolver,
)
from meseta.discovery.dns.wire import ip_literal
from meseta.runtime.zk import is_zk_url, parse_zk_url


def build_options(master: str, *, domain: str = "meseta", listen: str = "127.0.0.1", port: int = 8053,
                  http_port: int = 8123, ttl: int = 5, resolvers: list[str] | tuple[str, ...] = (),
                  ip_sources: str = "netinfo,mesos,host", enforce_rfc952: bool = False,
                  set_truncate_bit: bool = True, timeout: float = 5.0) -> DnsOptions:
    """The flags of ``meseta dns`` into options; ValueError names the flag at fault."""
    zk = None
    masters: tuple[str, ...] = ()
    if is_zk_url(master):
        parse_zk_url(master)
        zk = master
    else:
        masters = parse_masters(master)
    if ip_literal(listen) is None:
        raise ValueError(f"--listen '{listen}' must be an IP address")
    for flag, value in (("--port", port), ("--http-port", http_port)):
        if not 0 < value < 65536:
            raise ValueError(f"{flag} {value} is not a port (1-65535)")
    if not 0 <= ttl < 2**31:
        raise ValueError(f"--ttl {ttl} must be 0 .. 2^31-1 seconds")
    if not 0 < timeout <= 60:
        raise ValueError(f"--timeout {timeout} must be in (0, 60] seconds")
    return DnsOptions(masters=masters, zk=zk, domain=parse_domain(domain), listen=listen, port=port,
                      ns_ips=interface_ips() if ipaddress.ip_address(listen).is_unspecified else (),
                      http_port=http_port, ttl=ttl, resolvers=tuple(parse_resolver(r) for r in resolvers),
                      timeout=timeout, ip_sources=parse_ip_sources(ip_sources), enforce_rfc952=enforce_rfc952,
                      set_truncate_bit=set_truncate_bit)


def interface_ips() -> tuple[str, ...]:
    """Every non-loopback address of this host: ``ns1.D.`` when listening on 0.0.0.0 or ::."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            ip = ip_literal(address.address.split("%", 1)[0])
            if ip and not ipaddress.ip_address(ip).is_loopback and not ipaddress.ip_address(ip).is_link_local:
                found.append(ip)
    return tuple(dict.fromkeys(found)) or ("127.0.0.1",)
