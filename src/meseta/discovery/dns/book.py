"""The record book: every Mesos-DNS record (spec 1.4), kept current one event at a time.

    SUBSCRIBED -> fresh() built aside, then adopt()    the one full build (also after a leader change);
                  replace(frameworks, agents, tasks)   the same in one call
    TASK_ADDED / TASK_UPDATED                          that task's records only
    AGENT_ADDED / AGENT_REMOVED                        the agent's records + its tasks'
    FRAMEWORK_ADDED / _UPDATED / _REMOVED              the framework's records + its tasks'
    set_masters(leader, masters)                       leader.D. master.D. masterN.D. and SRVs

Each owner (a task, an agent, a framework, the masters, the name server) remembers the records it
added; a change withdraws them and adds the new ones, so nothing is rebuilt per event. A record
value is counted, so two owners may publish the same one (two tasks on one host). Lookups are one
dict access by (name, type). The SOA serial goes up by one on every change that alters a record.

A task is published while its state is TASK_RUNNING, its agent and framework are known and its
latest status does not say ``healthy: false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from meseta.discovery.dns import wire
from meseta.discovery.dns.names import canonical_label, sanitise_framework, sanitise_label
from meseta.protocol.task_states import TERMINAL

IP_SOURCES = ("netinfo", "mesos", "docker", "host")
DEFAULT_IP_SOURCES = ("netinfo", "mesos", "host")  # Mesos-DNS's default order
KEPT_STATUSES = 4  # the newest few statuses: enough for the latest health and the newest RUNNING IPs
SERIAL_MOD = 2**32
EVENT_KINDS = ("TASK_ADDED", "TASK_UPDATED", "AGENT_ADDED", "AGENT_REMOVED", "FRAMEWORK_ADDED", "FRAMEWORK_UPDATED",
               "FRAMEWORK_REMOVED")

Value = str | tuple[str, int]  # an IP (A, AAAA) or (target, port) (SRV)
Record = tuple[str, str, Value]  # (fqdn, "A" | "AAAA" | "SRV", value)
Owner = tuple[str, str]


@dataclass(frozen=True)
class BookConfig:
    domain: str = "meseta"
    ip_sources: tuple[str, ...] = DEFAULT_IP_SOURCES
    rfc952: bool = False
    ns_name: str = "ns1"  # the SOA mname's first label
    ns_ips: tuple[str, ...] = ("127.0.0.1",)


def address_type(ip: str) -> str:
    """A or AAAA of an address already checked by wire.ip_literal (only IPv6 has colons)."""
    return "AAAA" if ":" in ip else "A"


def _addresses(name: str, ips: Iterable[str]) -> list[Record]:
    return [(name, address_type(ip), ip) for ip in ips]


def task_ips(task: wire.TaskFacts, agent: wire.AgentFacts, sources: Iterable[str]) -> tuple[str, ...]:
    """The first IP source that yields any IP wins (spec 1.4)."""
    newest_first = sorted((s for s in task.statuses if s.state == "TASK_RUNNING"), key=lambda s: -s.timestamp)
    for source in sources:
        if source == "host":
            ips: tuple[str, ...] = (agent.ip,) if agent.ip else ()
        else:  # the newest RUNNING status that says: a health update may carry no network info
            ips = next((found for status in newest_first if (found := _status_ips(status, source))), ())
        if ips:
            return ips
    return ()


def _status_ips(status: wire.StatusFacts, source: str) -> tuple[str, ...]:
    return status.netinfo_ips if source == "netinfo" else status.label_ips.get(source, ())


def kept_statuses(statuses: tuple[wire.StatusFacts, ...]) -> tuple[wire.StatusFacts, ...]:
    """The newest KEPT_STATUSES, plus the newest one with IPs if that is older (the task's address)."""
    kept = statuses[-KEPT_STATUSES:]
    if any(s.netinfo_ips or any(s.label_ips.values()) for s in kept):
        return kept
    older = [s for s in statuses[:-KEPT_STATUSES] if s.netinfo_ips or any(s.label_ips.values())]
    return (older[-1], *kept) if older else kept


def published(task: wire.TaskFacts) -> bool:
    return task.state == "TASK_RUNNING" and not (task.statuses and task.statuses[-1].healthy is False)


def task_records(task: wire.TaskFacts, framework: str, agent: wire.AgentFacts, config: BookConfig) -> list[Record]:
    """Spec 1.4's task rows for one running task of framework ``framework`` (already sanitised)."""
    domain = config.domain
    names = {sanitise_label(task.discovery_name or task.name, config.rfc952)}
    raw = (task.discovery_name or "").lower()
    if raw and raw.replace("-", "a").replace("_", "a").isalnum() and raw.isascii() and len(raw) <= 63:
        names.add(raw)  # Mesos-DNS also publishes a DiscoveryInfo name as given (legacy)
    out: list[Record] = []
    ips = task_ips(task, agent, config.ip_sources)
    for label in sorted(n for n in names if n):
        canonical = canonical_label(label, task.task_id, task.agent_id)
        on_agent = f"{canonical}.{framework}.slave.{domain}."
        for prefix in (label, canonical):
            out += _addresses(f"{prefix}.{framework}.{domain}.", ips)
            out += _addresses(f"{prefix}.{framework}.slave.{domain}.", (agent.ip,) if agent.ip else ())
        for port in task.host_ports:
            for proto in ("tcp", "udp"):
                out.append((f"_{label}._{proto}.{framework}.slave.{domain}.", "SRV", (on_agent, port)))
                if not task.has_discovery:
                    out.append((f"_{label}._{proto}.{framework}.{domain}.", "SRV", (on_agent, port)))
        target = f"{canonical}.{framework}.{domain}."
        for dport in task.discovery_ports:
            for proto in (dport.protocol,) if dport.protocol else ("tcp", "udp"):
                out.append((f"_{label}._{proto}.{framework}.{domain}.", "SRV", (target, dport.number)))
                port_name = sanitise_label(dport.name, config.rfc952)
                if port_name:
                    out.append((f"_{port_name}._{label}._{proto}.{framework}.{domain}.", "SRV", (target, dport.number)))
    return out


@dataclass
class RecordBook:
    config: BookConfig = field(default_factory=BookConfig)
    serial: int = 1
    records: dict[tuple[str, str], dict[Value, int]] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)  # fqdn -> number of records under it
    owned: dict[Owner, list[Record]] = field(default_factory=dict)
    tasks: dict[str, wire.TaskFacts] = field(default_factory=dict)
    agents: dict[str, wire.AgentFacts] = field(default_factory=dict)
    frameworks: dict[str, wire.FrameworkFacts] = field(default_factory=dict)
    tasks_of_agent: dict[str, set[str]] = field(default_factory=dict)
    tasks_of_framework: dict[str, set[str]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # names whose records changed since take_changed()

    def __post_init__(self) -> None:
        ns = f"{self.config.ns_name}.{self.config.domain}."
        self._own(("ns", ""), _addresses(ns, self.config.ns_ips))

    # ------------------------------------------------------------------ reads
    def lookup(self, name: str, rtype: str) -> list[Value]:
        return list(self.records.get((name, rtype), ()))

    def exists(self, name: str) -> bool:
        return name in self.names

    def all_records(self) -> Iterator[tuple[str, str, list[Value]]]:
        for (name, rtype), values in self.records.items():
            yield name, rtype, list(values)

    # ------------------------------------------------------------------ ownership
    def _own(self, owner: Owner, records: list[Record]) -> bool:
        """Replace what ``owner`` publishes; True when any record changed."""
        old = self.owned.pop(owner, [])
        if old == records:
            if records:
                self.owned[owner] = records
            return False
        for name, rtype, value in old:
            values = self.records[(name, rtype)]
            values[value] -= 1
            if not values[value]:
                del values[value]
                if not values:
                    del self.records[(name, rtype)]
            self.names[name] -= 1
            if not self.names[name]:
                del self.names[name]
        for name, rtype, value in records:
            values = self.records.setdefault((name, rtype), {})
            values[value] = values.get(value, 0) + 1
            self.names[name] = self.names.get(name, 0) + 1
        if records:
            self.owned[owner] = records
        self.changed.update(name for name, _, _ in old)
        self.changed.update(name for name, _, _ in records)
        self.serial = (self.serial + 1) % SERIAL_MOD or 1
        return True

    def take_changed(self) -> set[str]:
        """The names changed since the last call (for a cache of answers)."""
        changed, self.changed = self.changed, set()
        return changed

    def _publish_task(self, task_id: str) -> bool:
        task = self.tasks.get(task_id)
        records: list[Record] = []
        if task is not None and published(task):
            framework = self.frameworks.get(task.framework_id)
            agent = self.agents.get(task.agent_id)
            framework_name = sanitise_framework(framework.name, self.config.rfc952) if framework else ""
            if framework_name and agent is not None:
                records = task_records(task, framework_name, agent, self.config)
        return self._own(("task", task_id), records)

    # ------------------------------------------------------------------ changes
    def put_task(self, task: wire.TaskFacts) -> bool:
        old = self.tasks.pop(task.task_id, None)
        if old is not None:
            self.tasks_of_agent.get(old.agent_id, set()).discard(task.task_id)
            self.tasks_of_framework.get(old.framework_id, set()).discard(task.task_id)
        if task.state not in TERMINAL:
            self.tasks[task.task_id] = task
            self.tasks_of_agent.setdefault(task.agent_id, set()).add(task.task_id)
            self.tasks_of_framework.setdefault(task.framework_id, set()).add(task.task_id)
        return self._publish_task(task.task_id)

    def update_task(self, status: wire.StatusFacts, state: str | None = None) -> bool:
        """TASK_UPDATED: ``state`` is the task's latest state (the status may be an older one)."""
        task = self.tasks.get(status.task_id)
        if task is None:
            return False  # a task we never saw added (or already gone): nothing to publish
        statuses = kept_statuses((*task.statuses, status))
        return self.put_task(replace(task, state=state or status.state, statuses=statuses))

    def put_agent(self, agent: wire.AgentFacts) -> bool:
        self.agents[agent.agent_id] = agent
        slave = f"slave.{self.config.domain}."
        records = _addresses(slave, (agent.ip,) if agent.ip else ())
        if agent.ip and agent.port:
            records.append((f"_slave._tcp.{self.config.domain}.", "SRV", (slave, agent.port)))
        changed = self._own(("agent", agent.agent_id), records)
        return self._republish(self.tasks_of_agent.get(agent.agent_id, ())) or changed

    def remove_agent(self, agent_id: str) -> bool:
        self.agents.pop(agent_id, None)
        changed = self._own(("agent", agent_id), [])
        return self._republish(self.tasks_of_agent.get(agent_id, ())) or changed

    def put_framework(self, framework: wire.FrameworkFacts) -> bool:
        self.frameworks[framework.framework_id] = framework
        name = sanitise_framework(framework.name, self.config.rfc952)
        records: list[Record] = []
        if name and framework.ip:
            fqdn = f"{name}.{self.config.domain}."
            records = _addresses(fqdn, (framework.ip,))
            if framework.port:
                records.append((f"_framework._tcp.{fqdn}", "SRV", (fqdn, framework.port)))
        changed = self._own(("framework", framework.framework_id), records)
        return self._republish(self.tasks_of_framework.get(framework.framework_id, ())) or changed

    def remove_framework(self, framework_id: str) -> bool:
        self.frameworks.pop(framework_id, None)
        changed = self._own(("framework", framework_id), [])
        for task_id in list(self.tasks_of_framework.pop(framework_id, ())):
            task = self.tasks.pop(task_id)
            self.tasks_of_agent.get(task.agent_id, set()).discard(task_id)
            changed = self._own(("task", task_id), []) or changed
        return changed

    def _republish(self, task_ids: Iterable[str]) -> bool:
        changed = False
        for task_id in list(task_ids):
            changed = self._publish_task(task_id) or changed
        return changed

    def set_masters(self, leader: tuple[str, int] | None, masters: Iterable[tuple[str, int]]) -> bool:
        """``leader.D.`` and its SRVs, ``master.D.`` (leader + configured) and ``masterN.D.`` in list order,
        the leader taking the next index when it is not in the list (spec 1.4)."""
        domain, listed = self.config.domain, list(dict.fromkeys(masters))
        records: list[Record] = []
        everyone = listed + ([leader] if leader and leader not in listed else [])
        for index, (ip, _) in enumerate(everyone):
            records += _addresses(f"master{index}.{domain}.", (ip,))
            records += _addresses(f"master.{domain}.", (ip,))
        if leader is not None:
            records += _addresses(f"leader.{domain}.", (leader[0],))
            for proto in ("tcp", "udp"):
                records.append((f"_leader._{proto}.{domain}.", "SRV", (f"leader.{domain}.", leader[1])))
        return self._own(("masters", ""), records)

    def replace(self, frameworks: list[wire.FrameworkFacts], agents: list[wire.AgentFacts],
                tasks: list[wire.TaskFacts]) -> None:
        """A fresh SUBSCRIBED: forget every task, agent and framework (masters and NS stay)."""
        for owner in [o for o in self.owned if o[0] in ("task", "agent", "framework")]:
            self._own(owner, [])
        for table in (self.tasks, self.agents, self.frameworks, self.tasks_of_agent, self.tasks_of_framework):
            table.clear()
        for framework in frameworks:
            self.put_framework(framework)
        for agent in agents:
            self.put_agent(agent)
        for task in tasks:
            self.put_task(task)

    def fresh(self) -> RecordBook:
        """An empty book of the same configuration with our masters' records: a SUBSCRIBED is built
        in it, aside, while this one keeps answering; then :meth:`adopt` swaps it in at once."""
        book = RecordBook(self.config, serial=self.serial)
        book._own(("masters", ""), list(self.owned.get(("masters", ""), [])))
        return book

    def adopt(self, fresh: RecordBook) -> None:
        """Take over ``fresh``'s records and facts; every name of both counts as changed."""
        self.changed.update(self.names)
        self.changed.update(fresh.names)
        for table in ("records", "names", "owned", "tasks", "agents", "frameworks", "tasks_of_agent",
                      "tasks_of_framework"):
            setattr(self, table, getattr(fresh, table))
        self.serial = (self.serial + 1) % SERIAL_MOD or 1

    def apply(self, event: dict[str, Any]) -> bool:
        """One operator event (anything but SUBSCRIBED); True when a record changed.
        Raises wire.WireError for a payload without what DNS needs."""
        if not isinstance(event, dict):
            raise wire.WireError("an operator event must be an object")
        kind = event.get("type")
        body = event.get(str(kind).lower())
        if not isinstance(body, dict):
            if kind in EVENT_KINDS:
                raise wire.WireError(f"{kind}: missing '{str(kind).lower()}' object")
            return False
        if kind == "TASK_ADDED":
            return self.put_task(wire.parse_task(body.get("task")))
        if kind == "TASK_UPDATED":
            state = body.get("state")
            return self.update_task(wire.parse_status(body.get("status")), state if isinstance(state, str) else None)
        if kind == "AGENT_ADDED":
            return self.put_agent(wire.parse_agent(body.get("agent")))
        if kind == "AGENT_REMOVED":
            return self.remove_agent(wire.id_of(body, "agent_id", "AGENT_REMOVED"))
        if kind in ("FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"):
            return self.put_framework(wire.parse_framework(body.get("framework")))
        if kind == "FRAMEWORK_REMOVED":
            return self.remove_framework(wire.id_of(wire.framework_info(body), "id", "FRAMEWORK_REMOVED"))
        return False  # HEARTBEAT and events DNS does not use
