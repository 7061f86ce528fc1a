"""The maintenance schedule as the master holds it: windows of machines and the machines DOWN.

    machine modes (maintenance primitives, keyed by MachineID {hostname, ip}):
    UP --(in a window)--> DRAINING --START_MAINTENANCE--> DOWN --STOP_MAINTENANCE--> UP (out of it)

Only ``meseta.master.maintenance`` changes it (``install``); offers, registration and views ask it
which window an agent is in and whether its machine is DOWN. Answers to inverse offers are kept per
machine and framework until their ``until``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meseta.master.records import Agent
from meseta.master.validation.operator import Machine, Window, machine_json


@dataclass(slots=True)
class MaintenanceSchedule:
    windows: tuple[Window, ...] = ()
    down: frozenset[Machine] = frozenset()
    # machine -> framework id -> {status, framework_id, timestamp, until}
    responses: dict[Machine, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def install(self, windows: tuple[Window, ...], down: frozenset[Machine]) -> frozenset[Machine]:
        """The new schedule; returns the machines newly DOWN. Answers for machines no longer
        scheduled are forgotten."""
        newly_down = down - self.down
        self.windows, self.down = windows, down
        scheduled = self.scheduled()
        self.responses = {k: v for k, v in self.responses.items() if k in scheduled}
        return newly_down

    def scheduled(self) -> set[Machine]:
        return {k for w in self.windows for k in w.machines}

    def setting_value(self, windows: tuple[Window, ...] | None = None,
                      down: frozenset[Machine] | None = None) -> dict[str, Any]:
        """The registry's ``maintenance`` value for a schedule (this one by default)."""
        windows = self.windows if windows is None else windows
        down = self.down if down is None else down
        return {
            "schedule": {"windows": [
                {"machine_ids": [machine_json(k) for k in w.machines], "unavailability": w.unavailability()}
                for w in windows]},
            "down": [machine_json(k) for k in sorted(down)],
        }

    # ------------------------------------------------------------- queries
    @staticmethod
    def matches(key: Machine, hostname: str) -> bool:
        name, ip = key
        return bool((name and name == hostname) or (ip and ip == hostname))

    def machine_of(self, agent: Agent) -> Machine | None:
        for key in [k for w in self.windows for k in w.machines] + sorted(self.down):
            if self.matches(key, agent.hostname):
                return key
        return None

    def is_down(self, hostname: str) -> bool:
        return any(self.matches(key, hostname) for key in self.down)

    def window_of(self, agent: Agent) -> Window | None:
        for window in self.windows:
            for key in window.machines:
                if key not in self.down and self.matches(key, agent.hostname):
                    return window
        return None

    def record_answer(self, key: Machine, framework_id: str, answer: dict[str, Any]) -> None:
        self.responses.setdefault(key, {})[framework_id] = answer

    def answer_of(self, key: Machine | None, framework_id: str) -> dict[str, Any] | None:
        return self.responses.get(key or ("", ""), {}).get(framework_id)

    def status_json(self) -> dict[str, Any]:
        draining = []
        for window in self.windows:
            for key in window.machines:
                if key in self.down:
                    continue
                statuses = [{k: v for k, v in s.items() if k != "until"}
                            for s in self.responses.get(key, {}).values()]
                draining.append({"id": machine_json(key), "statuses": statuses})
        return {"draining_machines": draining, "down_machines": [machine_json(k) for k in sorted(self.down)]}
