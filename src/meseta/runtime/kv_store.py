"""Durable state of a built-in framework (services, jobs): a keyed store of JSON values by kind.
Each framework names its kinds and what they hold (services.effects, jobs.effects).

Backends: SQLite (``meseta local``, one table ``kv(kind, key, value)``) and ZooKeeper for HA::

    <root>/epoch                   fencing (runtime.fencing): only the last claimant writes
    <root>/<kind>/<quoted key>     one blob per value (runtime.zk_blobs): no per-node size limit

``write`` applies a batch of changes (value None = delete). SQLite applies a batch in one
transaction. ZooKeeper writes the small values of a batch (inline blobs whose node is known to
exist or not: every node of a kind is known once the kind is loaded, and after each write) in
one fenced transaction per ~half MiB; large values, and any a transaction refused for a reason
other than fencing, get a fenced blob write of their own.
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

Change = tuple[str, str, Any]  # (kind, key, value or None to delete)
Item = tuple[str, bytes | None]  # (ZooKeeper path, encoded value or None to delete)


class KvStore(Protocol):
    def claim(self, owner: str) -> None: ...
    def load(self, kind: str) -> dict[str, Any]: ...
    def write(self, changes: Iterable[Change]) -> None: ...
    def close(self) -> None: ...


class SqliteKvStore:
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


class ZooKeeperKvStore:
    def __init__(self, client: KazooClient, root: str, kinds: Iterable[str], store_timeout: float = 20.0) -> None:
        self.client = client
        self.kinds = tuple(kinds)
        self.root = "/" + root.strip("/")
        self.fence = EpochFence(client, self.root)
        self._retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=1.0, deadline=store_timeout, ignore_expire=True)
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # path -> bytes of its value, for the paths known to exist
        self._loaded: set[str] = set()  # kinds whose every node is in _sizes

    def _path(self, kind: str, key: str = "") -> str:
        return f"{self.root}/{kind}" + (f"/{quote(key, safe='')}" if key else "")

    def claim(self, owner: str) -> None:
        with self._lock:
            for kind in self.kinds:
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
        sizes: dict[str, int] = {}
        paths = [f"{self._path(kind)}/{child}" for child in children]
        for child, path, data in zip(children, paths, zk_blobs.read_blobs(self.client, paths), strict=True):
            sizes[path] = len(data) if data is not None else zk_blobs.INLINE_LIMIT + 1  # half-written: slow path
            if data is not None:
                out[unquote(child)] = json.loads(data)
        with self._lock:
            self._sizes.update(sizes)
            self._loaded.add(kind)
        return out

    def write(self, changes: Iterable[Change]) -> None:
        latest: dict[str, tuple[str, bytes | None]] = {}  # path -> (kind, data): the last change wins
        for kind, key, value in changes:
            data = None if value is None else json.dumps(value, separators=(",", ":")).encode()
            latest[self._path(kind, key)] = (kind, data)
        with self._lock:
            slow = [(path, data) for path, (kind, data) in latest.items() if not self._small(kind, path, data)]
            small = [(path, data) for path, (kind, data) in latest.items() if self._small(kind, path, data)]
            for batch in _batches(small):
                slow += self._write_small(batch, {path: latest[path][0] for path, _ in batch})
            for path, data in slow:
                self._retry.copy()(self._write_once, path, data)
                self._note(path, data)

    def _small(self, kind: str, path: str, data: bytes | None) -> bool:
        """Whether ``path``'s change fits one operation of a batch: its node is known to hold an
        inline value or (a create) known to be absent, and the new value is inline too."""
        if path in self._sizes:
            return self._sizes[path] <= zk_blobs.INLINE_LIMIT and (data is None or len(data) <= zk_blobs.INLINE_LIMIT)
        return kind in self._loaded and data is not None and len(data) <= zk_blobs.INLINE_LIMIT

    def _note(self, path: str, data: bytes | None) -> None:
        if data is None:
            self._sizes.pop(path, None)
        else:
            self._sizes[path] = len(data)

    def _write_small(self, batch: list[Item], kinds: dict[str, str]) -> list[Item]:
        """One fenced transaction for ``batch``; if it fails for another reason than fencing (a
        node not as we knew it, or a retried commit that had applied), the nodes are looked at
        again and what is still small is tried once more. Returns what is left for the slow path."""
        try:
            self._commit_small(batch)
            return []
        except zk_blobs.TransactionFailed:
            pass
        self._retry.copy()(self._refresh, [path for path, _ in batch])
        left = [(p, d) for p, d in batch if not self._small(kinds[p], p, d)]
        batch = [(p, d) for p, d in batch if self._small(kinds[p], p, d)]
        if batch:
            try:
                self._commit_small(batch)
            except zk_blobs.TransactionFailed:
                return left + batch
        return left

    def _refresh(self, paths: list[str]) -> None:
        """What the nodes at ``paths`` hold now: absent, inline (their size) or chunked."""
        for path, pending in zip(paths, [self.client.exists_async(p) for p in paths], strict=True):
            stat = pending.get()
            if stat is None:
                self._sizes.pop(path, None)
            else:
                chunked = stat.numChildren > 0 or stat.dataLength == 0
                self._sizes[path] = zk_blobs.INLINE_LIMIT + 1 if chunked else int(stat.dataLength)

    def _commit_small(self, batch: list[Item]) -> None:
        """Commit (retried on connection loss) and note the new state of every node."""
        self._retry.copy()(self._commit_small_once, batch)
        for path, data in batch:
            self._note(path, data)

    def _commit_small_once(self, batch: list[Item]) -> None:
        txn = zk_blobs.transaction(self.client, self.fence.guard)
        for path, data in batch:
            if data is None:
                txn.delete(path)
            elif path in self._sizes:
                txn.set_data(path, zk_blobs.inline_header(data))
            else:
                txn.create(path, zk_blobs.inline_header(data))
        try:
            zk_blobs.commit(txn)
        except zk_blobs.TransactionFailed as failure:
            raise self.fence.fenced_or(failure) from None

    def _write_once(self, path: str, data: bytes | None) -> None:
        try:
            if data is None:
                zk_blobs.delete_blob(self.client, path, self.fence.guard)
            else:
                zk_blobs.write_blob(self.client, path, data, self.fence.guard)
        except zk_blobs.TransactionFailed as failure:
            raise self.fence.fenced_or(failure) from None

    def close(self) -> None:
        with self._lock:
            self.fence.version = None


BATCH_BYTES = zk_blobs.CHUNK_SIZE  # half of jute.maxbuffer per transaction, framing included
OPERATION_OVERHEAD = 128  # bytes of a multi-op request per operation besides path and value (generous)


def _batches(items: list[Item]) -> list[list[Item]]:
    """``items`` cut into transactions that stay well below ZooKeeper's request limit."""
    out: list[list[Item]] = []
    size = BATCH_BYTES
    for path, data in items:
        cost = len(path) + len(data or b"") + OPERATION_OVERHEAD
        if size + cost > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append((path, data))
        size += cost
    return out

