"""The durable registry: what must survive a master restart (admitted agents, operator settings).

Frameworks, tasks and offers are soft state, rebuilt from agents and schedulers. Every change
is a named operation (``AdmitAgent``, ``RemoveAgent``, ``SaveSetting``).

SQLite layout (one file, WAL)::

    agents(id TEXT PRIMARY KEY, info TEXT /* AgentInfo JSON */)
    settings(name TEXT PRIMARY KEY, value TEXT /* JSON: weights, quota, maintenance */)
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from meseta.master.state import AdmitAgent, RegistryOperation, RemoveAgent, SaveSetting


class Storage(Protocol):
    def load_agents(self) -> dict[str, dict[str, Any]]: ...
    def load_settings(self) -> dict[str, Any]: ...
    def apply(self, operation: RegistryOperation) -> None: ...
    def close(self) -> None: ...


class MemoryStorage:
    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {}

    def load_agents(self) -> dict[str, dict[str, Any]]:
        return dict(self.agents)

    def load_settings(self) -> dict[str, Any]:
        return dict(self.settings)

    def apply(self, operation: RegistryOperation) -> None:
        if isinstance(operation, AdmitAgent):
            self.agents[operation.agent_id] = operation.info
        elif isinstance(operation, RemoveAgent):
            self.agents.pop(operation.agent_id, None)
        elif isinstance(operation, SaveSetting):
            self.settings[operation.name] = operation.value

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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, info TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def load_agents(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, info FROM agents").fetchall()
        return {agent_id: json.loads(info) for agent_id, info in rows}

    def load_settings(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM settings").fetchall()
        return {name: json.loads(value) for name, value in rows}

    def apply(self, operation: RegistryOperation) -> None:
        with self._lock:
            if isinstance(operation, AdmitAgent):
                self._db.execute(
                    "INSERT OR REPLACE INTO agents (id, info) VALUES (?, ?)",
                    (operation.agent_id, json.dumps(operation.info)),
                )
            elif isinstance(operation, RemoveAgent):
                self._db.execute("DELETE FROM agents WHERE id = ?", (operation.agent_id,))
            elif isinstance(operation, SaveSetting):
                self._db.execute(
                    "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                    (operation.name, json.dumps(operation.value)),
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()
