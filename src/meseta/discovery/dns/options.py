"""``meseta dns`` settings: parsed and checked once, at the edge, into a frozen record.

Each check raises ValueError naming the flag, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meseta.discovery.dns.answer import AnswerConfig
from meseta.discovery.dns.book import IP_SOURCES, BookConfig
from meseta.discovery.dns.wire import ip_literal

VERSION = "meseta-dns/1"
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class DnsOptions:
    masters: tuple[str, ...] = ()  # HOST:PORT entries (static list); empty when following ZooKeeper
    zk: str | None = None  # zk://.../path
    domain: str = "meseta"
    listen: str = "127.0.0.1"
    port: int = 8053
    http_port: int = 8123
    ttl: int = 5  # short: answers follow the cluster within a second, so caches should not hold them long
    resolvers: tuple[tuple[str, int], ...] = ()
    timeout: float = 5.0
    ip_sources: tuple[str, ...] = ("netinfo", "mesos", "host")
    enforce_rfc952: bool = False
    set_truncate_bit: bool = True
    enumeration: bool = True
    soa_refresh: int = 60
    soa_retry: int = 600
    soa_expire: int = 86400
    ns_ips: tuple[str, ...] = ()  # ns1.D.'s addresses; empty: the --listen address

    @property
    def mname(self) -> str:
        return f"ns1.{self.domain}."

    def book_config(self) -> BookConfig:
        return BookConfig(domain=self.domain, ip_sources=self.ip_sources, rfc952=self.enforce_rfc952,
                          ns_ips=self.ns_ips or (self.listen,))

    def answer_config(self) -> AnswerConfig:
        return AnswerConfig(domain=self.domain, ttl=self.ttl, mname=self.mname, rname=f"root.ns1.{self.domain}.",
                            refresh=self.soa_refresh, retry=self.soa_retry, expire=self.soa_expire,
                            recurse=bool(self.resolvers), set_truncate_bit=self.set_truncate_bit)

    def master_addresses(self) -> list[tuple[str, int]]:
        """The configured masters that are IP:PORT (``masterN.D.`` names need an address)."""
        out = []
        for entry in self.masters:
            host, _, port = entry.rpartition(":")
            ip = ip_literal(host.strip("[]"))
            if ip:
                out.append((ip, int(port)))
        return out

    def config_json(self) -> dict[str, Any]:
        """/v1/config: Mesos-DNS's Go field names; RefreshSeconds is 0 (pushed, never polled)."""
        return {
            "RefreshSeconds": 0, "TTL": self.ttl, "Port": self.port, "Domain": self.domain,
            "Resolvers": [f"{ip}:{port}" for ip, port in self.resolvers], "Timeout": self.timeout,
            "Listener": self.listen, "HTTPListener": self.listen, "HttpPort": self.http_port,
            "DnsOn": True, "HttpOn": True, "ExternalOn": bool(self.resolvers), "RecurseOn": bool(self.resolvers),
            "Zk": self.zk or "", "Masters": list(self.masters), "IPSources": list(self.ip_sources),
            "EnforceRFC952": self.enforce_rfc952, "SetTruncateBit": self.set_truncate_bit,
            "EnumerationOn": self.enumeration, "SOAMname": self.mname, "SOARname": f"root.ns1.{self.domain}.",
            "SOARefresh": self.soa_refresh, "SOARetry": self.soa_retry, "SOAExpire": self.soa_expire,
            "SOAMinttl": self.ttl, "SRVRecordDefaultWeight": 1,
        }


def parse_domain(text: str) -> str:
    domain = text.strip().rstrip(".").lower()
    labels = domain.split(".")
    if not domain or len(domain) > 200 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"--domain '{text}' is not a domain name (labels of a-z, 0-9 and '-')")
    return domain


def parse_resolver(text: str) -> tuple[str, int]:
    """``ip`` or ``ip:port`` (``[v6]:port``); port 53 implied."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else (53 if not rest else -1)
    elif text.count(":") == 1:
        host, _, given = text.partition(":")
        port = int(given) if given.isdigit() else -1
    ip = ip_literal(host)
    if ip is None or not 0 < port < 65536:
        raise ValueError(f"--resolver '{text}' must be IP or IP:PORT")
    return ip, port


def parse_ip_sources(text: str) -> tuple[str, ...]:
    sources = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [s for s in sources if s not in IP_SOURCES]
    if not sources or unknown or len(set(sources)) != len(sources):
        raise ValueError(f"--ip-sources '{text}': a comma list of distinct {', '.join(IP_SOURCES)}")
    return sources


def parse_masters(text: str) -> tuple[str, ...]:
    entries = tuple(part.strip().removeprefix("http://") for part in text.split(",") if part.strip())
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--master '{entry}' must be HOST:PORT (or the whole flag zk://host:port,.../path)")
    if not entries:
        raise ValueError("--master needs at least one HOST:PORT")
    return entries

