"""The HTTP API's documents (spec 1.6), rendered from the record book; pure.

    hosts(book, host)        [{"host": fqdn, "ip": ip}]                 no match: [{"host": "", "ip": ""}]
    services(book, service)  [{"service", "host", "ip", "port"}]         no match: one record of ""
    enumerate_json(book)     {"frameworks": [{"name", "tasks": [{"name", "id", "records": [...]}]}]}
    axfr_json(book, ...)     {"TTL", "Serial", "RefreshSeconds", "Mname", "Rname", "Domain", "Records"}
"""

from __future__ import annotations

from typing import Any

from meseta.discovery.dns.book import RecordBook
from meseta.discovery.dns.names import sanitise_framework
from meseta.discovery.dns.options import DnsOptions


def fqdn(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else f"{name}."


def hosts(book: RecordBook, host: str) -> list[dict[str, str]]:
    name = fqdn(host)
    found = [{"host": name, "ip": str(ip)} for rtype in ("A", "AAAA") for ip in book.lookup(name, rtype)]
    return found or [{"host": "", "ip": ""}]


def services(book: RecordBook, service: str) -> list[dict[str, str]]:
    out = []
    for value in book.lookup(fqdn(service), "SRV"):
        target, port = value if isinstance(value, tuple) else (value, 0)
        ips = book.lookup(target, "A") or book.lookup(target, "AAAA")
        out.append({"service": service, "host": target, "ip": str(ips[0]) if ips else "", "port": str(port)})
    return out or [{"service": "", "host": "", "ip": "", "port": ""}]


def _shown(value: Any) -> str:
    return f"{value[0]}:{value[1]}" if isinstance(value, tuple) else str(value)


def enumerate_json(book: RecordBook) -> dict[str, Any]:
    frameworks = []
    for framework_id, framework in book.frameworks.items():
        tasks = []
        for task_id in sorted(book.tasks_of_framework.get(framework_id, ())):
            task = book.tasks[task_id]
            records = [{"name": name, "host": _shown(value), "rtype": rtype}
                       for name, rtype, value in book.owned.get(("task", task_id), [])]
            tasks.append({"name": task.name, "id": task_id, "records": records})
        frameworks.append({"name": sanitise_framework(framework.name), "tasks": tasks})
    return {"frameworks": frameworks}


def axfr_json(book: RecordBook, options: DnsOptions) -> dict[str, Any]:
    records: dict[str, dict[str, list[str]]] = {"As": {}, "AAAAs": {}, "SRVs": {}}
    for name, rtype, values in book.all_records():
        records[f"{rtype}s"][name] = [_shown(v) for v in values]
    return {"TTL": options.ttl, "Serial": book.serial, "RefreshSeconds": 0, "Mname": options.mname,
            "Rname": f"root.ns1.{options.domain}.", "Domain": options.domain, "Records": records}
