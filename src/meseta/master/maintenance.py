"""Maintenance and draining as the master decides them (pure, composed into the machine).

Machine modes (maintenance primitives, keyed by ``{hostname, ip}``)::

    UP --(in a schedule window)--> DRAINING --START_MAINTENANCE--> DOWN --STOP_MAINTENANCE--> UP
           offers carry ``unavailability``;      agents removed,          (and out of the
           frameworks with tasks there get       cannot register          schedule)
           INVERSE_OFFERS, answered with ACCEPT_/DECLINE_INVERSE_OFFERS

Agent draining (DRAIN_AGENT)::

    active --DRAIN_AGENT--> DRAINING (no offers; the agent kills every task, grace capped by
    max_grace_period, reason REASON_AGENT_DRAINING) --last task ends--> DRAINED
    --mark_gone--> MARK_AGENT_GONE (meseta.master.partitions);  REACTIVATE_AGENT ends either state.

Schedule and DOWN machines are operator settings (persisted as ``maintenance``); drain state
is soft and lives on the agent record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meseta.master.state import Agent, CallRejected, Effect, SaveSetting, ToAgent, ToFramework

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine

NANOS = 1_000_000_000
def machine_key(machine_id: Any, where: str) -> tuple[str, str]:
    if not isinstance(machine_id, dict):
        raise CallRejected(400, f"{where} must be an object {{hostname, ip}}")
    hostname, ip = machine_id.get("hostname") or "", machine_id.get("ip") or ""
    if not isinstance(hostname, str) or not isinstance(ip, str) or not (hostname or ip):
        raise CallRejected(400, f"{where} needs a 'hostname' or an 'ip' (strings)")
    return hostname, ip


def machine_json(key: tuple[str, str]) -> dict[str, str]:
    out = {}
    if key[0]:
        out["hostname"] = key[0]
    if key[1]:
        out["ip"] = key[1]
    return out


def duration_nanos(value: Any, where: str) -> int:
    """A duration as Mesos JSON gives it, in whole nanoseconds: ``{"nanoseconds": n}``,
    ``{"seconds": s, "nanos": n}`` (google.protobuf.Duration) or ``"10s"``."""
    try:
        if isinstance(value, dict) and "nanoseconds" in value:
            nanos = int(value["nanoseconds"])
        elif isinstance(value, dict):
            nanos = int(value.get("seconds", 0) or 0) * NANOS + int(value.get("nanos", 0) or 0)
        elif isinstance(value, str) and value.endswith("s"):
            nanos = round(float(value[:-1]) * NANOS)
        else:
            raise CallRejected(400, f"{where} must be a duration ({{\"nanoseconds\": n}} or \"<seconds>s\")")
    except (TypeError, ValueError, OverflowError):
        raise CallRejected(400, f"{where} is not a valid duration") from None
    if nanos < 0:
        raise CallRejected(400, f"{where} must be non-negative")
    return nanos


def duration_seconds(value: Any, where: str) -> float:
    return duration_nanos(value, where) / NANOS


@dataclass(slots=True)
class Window:
    machines: list[tuple[str, str]]
    start_ns: int
    duration_ns: int | None

    def unavailability(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": {"nanoseconds": self.start_ns}}
        if self.duration_ns is not None:
            out["duration"] = {"nanoseconds": self.duration_ns}
        return out


@dataclass(slots=True)
class InverseOffer:
    id: str
    framework_id: str
    agent_id: str


@dataclass(slots=True)
class MaintenanceState:
    windows: list[Window] = field(default_factory=list)
    down: set[tuple[str, str]] = field(default_factory=set)
    # machine -> framework id -> {status, framework_id, timestamp}
    responses: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)


def parse_schedule(schedule: Any) -> list[Window]:
    if not isinstance(schedule, dict):
        raise CallRejected(400, "'schedule' must be an object with 'windows'")
    windows_json = schedule.get("windows") or []
    if not isinstance(windows_json, list):
        raise CallRejected(400, "'schedule.windows' must be a list")
    windows: list[Window] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(windows_json):
        where = f"schedule.windows[{i}]"
        if not isinstance(raw, dict):
            raise CallRejected(400, f"{where} must be an object")
        ids = raw.get("machine_ids")
        if not isinstance(ids, list) or not ids:
            raise CallRejected(400, f"{where}.machine_ids must be a non-empty list")
        machines = [machine_key(m, f"{where}.machine_ids[{j}]") for j, m in enumerate(ids)]
        for key in machines:
            if key in seen:
                raise CallRejected(400, f"{where}: machine {machine_json(key)} is in more than one window")
            seen.add(key)
        unavailability = raw.get("unavailability")
        if not isinstance(unavailability, dict) or "start" not in unavailability:
            raise CallRejected(400, f"{where}.unavailability.start is required")
        start = duration_nanos(unavailability["start"], f"{where}.unavailability.start")
        duration = unavailability.get("duration")
        duration_ns = None if duration is None else duration_nanos(duration, f"{where}.unavailability.duration")
        windows.append(Window(machines, start, duration_ns))
    return windows


class MaintenanceControl:
    def __init__(self, machine: MasterMachine) -> None:
        self.m = machine
        self.state = MaintenanceState()
        self.inverse_offers: dict[str, InverseOffer] = {}
        self._counter = 0

    # ------------------------------------------------------------- settings
    def setting_value(self, windows: list[Window], down: set[tuple[str, str]]) -> dict[str, Any]:
        return {
            "schedule": {"windows": [
                {"machine_ids": [machine_json(k) for k in w.machines], "unavailability": w.unavailability()}
                for w in windows]},
            "down": [machine_json(k) for k in sorted(down)],
        }

    def schedule_json(self) -> dict[str, Any]:
        return dict(self.setting_value(self.state.windows, self.state.down)["schedule"])

    def prepare_schedule(self, schedule: Any) -> SaveSetting:
        windows = parse_schedule(schedule)
        scheduled = {k for w in windows for k in w.machines}
        for key in self.state.down:
            if key not in scheduled:
                raise CallRejected(400, f"machine {machine_json(key)} is DOWN and must stay in the schedule")
        return SaveSetting("maintenance", self.setting_value(windows, self.state.down))

    def prepare_start(self, machines: Any) -> SaveSetting:
        keys = self._machine_list(machines)
        scheduled = {k for w in self.state.windows for k in w.machines}
        for key in keys:
            if key not in scheduled:
                raise CallRejected(400, f"machine {machine_json(key)} is not in the maintenance schedule")
        return SaveSetting("maintenance", self.setting_value(self.state.windows, self.state.down | set(keys)))

    def prepare_stop(self, machines: Any) -> SaveSetting:
        keys = set(self._machine_list(machines))
        for key in keys:
            if key not in self.state.down:
                raise CallRejected(400, f"machine {machine_json(key)} is not DOWN")
        windows = [Window([k for k in w.machines if k not in keys], w.start_ns, w.duration_ns)
                   for w in self.state.windows]
        windows = [w for w in windows if w.machines]
        return SaveSetting("maintenance", self.setting_value(windows, self.state.down - keys))

    def _machine_list(self, machines: Any) -> list[tuple[str, str]]:
        if not isinstance(machines, list) or not machines:
            raise CallRejected(400, "'machines' must be a non-empty list of {hostname, ip}")
        return [machine_key(m, f"machines[{i}]") for i, m in enumerate(machines)]

    def apply(self, value: dict[str, Any], now: float) -> list[Effect]:
        """Install a persisted schedule: newly DOWN agents go, DRAINING ones get inverse offers."""
        windows = parse_schedule(value.get("schedule") or {})
        down = {machine_key(m, "down") for m in value.get("down") or []}
        newly_down = down - self.state.down
        self.state.windows, self.state.down = windows, down
        scheduled = {k for w in windows for k in w.machines}
        self.state.responses = {k: v for k, v in self.state.responses.items() if k in scheduled}
        effects: list[Effect] = []
        for agent in list(self.m.agents.values()):
            key = self.machine_of(agent)
            if key in newly_down:
                effects += self.m.agent_lifecycle.remove(agent, now, "REASON_AGENT_REMOVED",
                                                         "Agent's machine is DOWN for maintenance")
        for inverse in list(self.inverse_offers.values()):  # machines no longer draining
            holder = self.m.agents.get(inverse.agent_id)
            if holder is None or self.window_of(holder) is None:
                del self.inverse_offers[inverse.id]
                effects.append(ToFramework(inverse.framework_id, {
                    "type": "RESCIND_INVERSE_OFFER",
                    "rescind_inverse_offer": {"inverse_offer_id": {"value": inverse.id}}}))
        effects += self.send_inverse_offers(now)
        self.m.request_allocation(effects, now)
        return effects

    # ------------------------------------------------------------- queries
    def machine_of(self, agent: Agent) -> tuple[str, str] | None:
        for key in [k for w in self.state.windows for k in w.machines] + sorted(self.state.down):
            if self.matches(key, agent):
                return key
        return None

    @staticmethod
    def matches(key: tuple[str, str], agent: Agent) -> bool:
        hostname, ip = key
        return bool((hostname and hostname == agent.hostname) or (ip and ip == agent.hostname))

    def is_down(self, agent_info: dict[str, Any]) -> bool:
        hostname = str(agent_info.get("hostname", ""))
        return any(h == hostname or i == hostname for h, i in self.state.down if h or i)

    def window_of(self, agent: Agent) -> Window | None:
        for window in self.state.windows:
            for key in window.machines:
                if key not in self.state.down and self.matches(key, agent):
                    return window
        return None

    def status_json(self) -> dict[str, Any]:
        draining = []
        for window in self.state.windows:
            for key in window.machines:
                if key in self.state.down:
                    continue
                statuses = [{k: v for k, v in s.items() if k != "until"}
                            for s in self.state.responses.get(key, {}).values()]
                draining.append({"id": machine_json(key), "statuses": statuses})
        return {"draining_machines": draining, "down_machines": [machine_json(k) for k in sorted(self.state.down)]}

    # ------------------------------------------------------------- inverse offers
    def send_inverse_offers(self, now: float) -> list[Effect]:
        """One outstanding inverse offer per (framework, draining agent the framework uses)."""
        if not self.state.windows:
            return []  # no maintenance scheduled: nothing to walk (this runs after every allocation)
        outstanding = {(i.framework_id, i.agent_id) for i in self.inverse_offers.values()}
        effects: list[Effect] = []
        for agent in self.m.agents.values():
            window = self.window_of(agent)
            if window is None:
                continue
            key = self.machine_of(agent)
            users = {fid for fid, _ in agent.task_keys}
            users |= {f.id for f in self.m.frameworks.values() if agent.id in f.executors}
            for framework_id in sorted(users):
                framework = self.m.frameworks.get(framework_id)
                answered = self.state.responses.get(key or ("", ""), {}).get(framework_id)
                if (framework is None or not framework.connected or (framework_id, agent.id) in outstanding
                        or (answered and answered.get("until", 0) > now)):
                    continue
                inverse = InverseOffer(f"{self.m.master_id}-IO{self._counter}", framework_id, agent.id)
                self._counter += 1
                self.inverse_offers[inverse.id] = inverse
                effects.append(ToFramework(framework_id, {"type": "INVERSE_OFFERS", "inverse_offers": {
                    "inverse_offers": [{
                        "id": {"value": inverse.id},
                        "url": {"scheme": "http", "address": {"hostname": agent.hostname, "ip": agent.hostname,
                                                              "port": agent.port}, "path": "/slave(1)"},
                        "framework_id": {"value": framework_id},
                        "agent_id": {"value": agent.id},
                        "unavailability": window.unavailability(),
                        "resources": [],
                    }]}}))
        return effects

    def answer(self, framework_id: str, ids: list[str], accept: bool, refuse: float | None, now: float) -> None:
        for inverse_id in ids:
            inverse = self.inverse_offers.get(inverse_id)
            if inverse is None or inverse.framework_id != framework_id:
                continue
            del self.inverse_offers[inverse_id]
            agent = self.m.agents.get(inverse.agent_id)
            key = self.machine_of(agent) if agent is not None else None
            if key is None:
                continue
            seconds = 5.0 if refuse is None else max(refuse, self.m.allocation_interval)
            self.state.responses.setdefault(key, {})[framework_id] = {
                "status": "ACCEPT" if accept else "DECLINE",
                "framework_id": {"value": framework_id},
                "timestamp": {"nanoseconds": round(now * NANOS)},
                "until": float("inf") if accept else now + seconds,
            }

    def forget_framework(self, framework_id: str) -> None:
        for inverse_id in [i for i, o in self.inverse_offers.items() if o.framework_id == framework_id]:
            del self.inverse_offers[inverse_id]

    # ------------------------------------------------------------- draining (DRAIN_AGENT)
    def drain(self, agent_id: str, max_grace: float | None, mark_gone: bool, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        config: dict[str, Any] = {"mark_gone": mark_gone}
        if max_grace is not None:
            config["max_grace_period"] = {"nanoseconds": round(max_grace * NANOS)}
        agent.drain_info = {"state": "DRAINING", "config": config}
        agent.deactivated = True
        self.m.refresh_agent_active(agent)
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        effects.append(ToAgent(agent.id, {"type": "DRAIN", "drain_config": config}))
        return effects + self.check_drained(agent, now)

    def check_drained(self, agent: Agent, now: float) -> list[Effect]:
        """DRAINING -> DRAINED once nothing runs there; with mark_gone the agent then goes."""
        info = agent.drain_info
        if info is None or info["state"] != "DRAINING":
            return []
        if any(not self.m.frameworks[f].tasks[t].released for f, t in agent.task_keys):
            return []
        info["state"] = "DRAINED"
        if info["config"].get("mark_gone"):
            return self.m.partitions.mark_gone(agent.id, now)
        return []

    def reactivate(self, agent_id: str, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        agent.drain_info = None
        agent.deactivated = False
        self.m.refresh_agent_active(agent)
        effects: list[Effect] = [ToAgent(agent.id, {"type": "DRAIN", "drain_config": None})]
        self.m.request_allocation(effects, now)
        return effects

    def deactivate(self, agent_id: str) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        agent.deactivated = True
        self.m.refresh_agent_active(agent)
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        return effects
