"""The durable registry: what must survive a master restart or failover.

Admitted, unreachable and gone agents and the operator settings (weights, quota, maintenance).
Frameworks, tasks and offers are soft state, rebuilt from agents and schedulers. Every change
is a named operation (``AdmitAgent``, ``MarkAgentUnreachable``, ``MarkAgentGone``,
``RemoveAgent``, ``SaveSetting``); an agent is in at most one of the three agent sets::

    AdmitAgent ---------------> admitted <------ AdmitAgent (it came back) ---+
                                   | MarkAgentUnreachable                     |
                                   v                                          |
                               unreachable ---------------------------------- +
      MarkAgentGone (from either) -> gone (never again)    RemoveAgent -> none

SQLite layout (one file, WAL)::

    agents(id TEXT PRIMARY KEY, info TEXT /* AgentInfo JSON */)
    unreachable(id TEXT PRIMARY KEY, time REAL)
    gone(id TEXT PRIMARY KEY, time REAL)
    settings(name TEXT PRIMARY KEY, value TEXT /* JSON: weights, quota, maintenance */)

The ZooKeeper backend (``zk_storage``) keeps the same sets, fenced by the leader's epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from meseta.master.effects import (
    AdmitAgent,
    MarkAgentGone,
    MarkAgentUnreachable,
    RegistryOperation,
    SaveSetting,
)
from meseta.runtime.fencing import Fenced as Fenced  # raised by Storage.apply; re-exported
from meseta.runtime.sqlite import Database


class Storage(Protocol):
    """Loads run once, when a master starts leading; ``apply`` runs in a worker thread and raises
    :class:`Fenced` once another master has taken over."""

    def load_agents(self) -> dict[str, dict[str, Any]]: ...
    def load_unreachable(self) -> dict[str, float]: ...
    def load_gone(self) -> dict[str, float]: ...
    def load_settings(self) -> dict[str, Any]: ...
    def apply(self, operation: RegistryOperation) -> None: ...
    def close(self) -> None: ...


class MemoryStorage:
    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.unreachable: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.settings: dict[str, Any] = {}

    def load_agents(self) -> dict[str, dict[str, Any]]:
        return dict(self.agents)

    def load_unreachable(self) -> dict[str, float]:
        return dict(self.unreachable)

    def load_gone(self) -> dict[str, float]:
        return dict(self.gone)

    def load_settings(self) -> dict[str, Any]:
        return dict(self.settings)

    def apply(self, operation: RegistryOperation) -> None:
        if isinstance(operation, SaveSetting):
            self.settings[operation.name] = operation.value
            return
        self.agents.pop(operation.agent_id, None)
        self.unreachable.pop(operation.agent_id, None)
        if isinstance(operation, AdmitAgent):
            self.agents[operation.agent_id] = operation.info
        elif isinstance(operation, MarkAgentUnreachable):
            self.unreachable[operation.agent_id] = operation.time
        elif isinstance(operation, MarkAgentGone):
            self.gone[operation.agent_id] = operation.time

    def close(self) -> None:
        return None


class FailingStorage(MemoryStorage):
    """Error injection: every write fails with ``message``."""

    def __init__(self, message: str = "registry unavailable") -> None:
        super().__init__()
        self.message = message

    def apply(self, operation: RegistryOperation) -> None:
        raise OSError(self.message)


class SqliteStorage:
    def __init__(self, path: Path) -> None:
        self._db = Database(
            path,
            "CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, info TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS unreachable (id TEXT PRIMARY KEY, time REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS gone (id TEXT PRIMARY KEY, time REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )

    def load_agents(self) -> dict[str, dict[str, Any]]:
        return {agent_id: json.loads(info) for agent_id, info in self._db.rows("SELECT id, info FROM agents")}

    def load_unreachable(self) -> dict[str, float]:
        return dict(self._db.rows("SELECT id, time FROM unreachable"))

    def load_gone(self) -> dict[str, float]:
        return dict(self._db.rows("SELECT id, time FROM gone"))

    def load_settings(self) -> dict[str, Any]:
        return {name: json.loads(value) for name, value in self._db.rows("SELECT name, value FROM settings")}

    def apply(self, operation: RegistryOperation) -> None:
        with self._db.transaction() as db:
            if isinstance(operation, SaveSetting):
                db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                           (operation.name, json.dumps(operation.value)))
                return
            db.execute("DELETE FROM agents WHERE id = ?", (operation.agent_id,))
            db.execute("DELETE FROM unreachable WHERE id = ?", (operation.agent_id,))
            if isinstance(operation, AdmitAgent):
                db.execute("INSERT INTO agents (id, info) VALUES (?, ?)",
                           (operation.agent_id, json.dumps(operation.info)))
            elif isinstance(operation, MarkAgentUnreachable):
                db.execute("INSERT INTO unreachable (id, time) VALUES (?, ?)", (operation.agent_id, operation.time))
            elif isinstance(operation, MarkAgentGone):
                db.execute("INSERT OR REPLACE INTO gone (id, time) VALUES (?, ?)", (operation.agent_id, operation.time))

    def close(self) -> None:
        self._db.close()
