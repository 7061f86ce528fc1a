"""Durable state of the services scheduler: a keyed store of JSON values by kind.

    kind          key                  value
    app           /prod/web            the current normalised app definition
    app_version   /prod/web@<version>  every stored version (rollback, GET .../versions)
    group         /prod                {"dependencies": [...], "version": ...}
    deployment    <plan id>            a running deployment plan (resumed by a new leader)
    instance      <task id>            an Instance record
    meta          framework_id         the framework id (re-subscribed with after failover)

Backends: SQLite (``meseta local``, one table ``kv(kind, key, value)``) and ZooKeeper for HA::

    <root>/epoch                   fencing (runtime.fencing): only the last claimant writes
    <root>/<kind>/<quoted key>     one blob per value (runtime.zk_blobs): no per-node size limit

``write`` applies a batch of changes (value None = delete). SQLite applies a batch in one
transaction; ZooKeeper applies each value in its own fenced transaction, in order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.retry import KazooRetry

from meseta.runtime import zk_blobs
from meseta.runtime.fencing import EpochFence
from meseta.runtime.sqlite import Database

KINDS = ("app", "app_version", "group", "deployment", "instance", "meta")
Change = tuple[str, str, Any]  # (kind, key, value or None to delete)


class ServiceStore(Protocol):
    def claim(self, owner: str) -> None: ...
    def load(self, kind: str) -> dict[str, Any]: ...
    def write(self, changes: Iterable[Change]) -> None: ...
    def close(self) -> None: ...


class SqliteServiceStore:
    def __init__(self, path: Path) -> None:
        self._db = Database(path, "CREATE TABLE IF NOT EXISTS kv (kind TEXT, key TEXT, value TEXT NOT NULL, "
                                  "PRIMARY KEY (kind, key))")

    def claim(self, owner: str) -> None:
        return None  # one process owns the file

    def load(self, kind: str) -> dict[str, Any]:
        rows = self._db.rows("SELECT key, value FROM kv WHERE kind = ?", kind)
        return {key: json.loads(value) for key, value in rows}

    def write(self, changes: Iterable[Change]) -> None:
        with self._db.transaction() as db:
            for kind, key, value in changes:
                if value is None:
                    db.execute("DELETE FROM kv WHERE kind = ? AND key = ?", (kind, key))
                else:
                    db.execute("INSERT OR REPLACE INTO kv (kind, key, value) VALUES (?, ?, ?)",
                               (kind, key, json.dumps(value, separators=(",", ":"))))

    def close(self) -> None:
        self._db.close()


class ZooKeeperServiceStore:
    def __init__(self, client: KazooClient, root: str, store_timeout: float = 20.0) -> None:
        self.client = client
        self.root = "/" + root.strip("/")
        self.fence = EpochFence(client, self.root)
        self._retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=1.0, deadline=store_timeout, ignore_expire=True)
        self._lock = threading.Lock()

    def _path(self, kind: str, key: str = "") -> str:
        return f"{self.root}/{kind}" + (f"/{quote(key, safe='')}" if key else "")

    def claim(self, owner: str) -> None:
        with self._lock:
            for kind in KINDS:
                self._retry.copy()(self.client.ensure_path, self._path(kind))
            self._retry.copy()(self.fence.claim, owner)

    def load(self, kind: str) -> dict[str, Any]:
        return dict(self._retry.copy()(self._load_once, kind))

    def _load_once(self, kind: str) -> dict[str, Any]:
        try:
            children = self.client.get_children(self._path(kind))
        except NoNodeError:
            return {}
        out: dict[str, Any] = {}
        for child in children:
            data = zk_blobs.read_blob(self.client, f"{self._path(kind)}/{child}")
            if data is not None:
                out[unquote(child)] = json.loads(data)
        return out

    def write(self, changes: Iterable[Change]) -> None:
        with self._lock:
            for kind, key, value in changes:
                self._retry.copy()(self._write_once, self._path(kind, key), value)

    def _write_once(self, path: str, value: Any) -> None:
        try:
            if value is None:
                zk_blobs.delete_blob(self.client, path, self.fence.guard)
            else:
                zk_blobs.write_blob(self.client, path, json.dumps(value, separators=(",", ":")).encode(),
                                    self.fence.guard)
        except zk_blobs.TransactionFailed as failure:
            raise self.fence.fenced_or(failure) from None

    def close(self) -> None:
        with self._lock:
            self.fence.version = None
