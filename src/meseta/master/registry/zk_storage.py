"""The registry in ZooKeeper, for masters in HA mode; the same sets as ``SqliteStorage``::

    <root>/                    e.g. /meseta/log_replicas
      epoch                    data: the id of the last master to claim; its znode *version* is the fence
      agents/<id>              AgentInfo JSON (admitted)
      unreachable/<id>         {"time": t}
      gone/<id>                {"time": t}
      settings/<name>          a zk_blobs blob (any size) holding the setting's JSON

``<id>`` and ``<name>`` are percent-encoded (``quote(safe="")``), so any string is a znode name.

Fencing: a newly elected leader calls :meth:`ZooKeeperStorage.claim`, which sets ``epoch`` and
remembers the version that write produced. Every ``apply`` is then ONE transaction::

    check(epoch, version=<ours>) ; the operation's writes (an agent moves: delete it from the
                                   other sets, write it into the target set)

so once another master has claimed, the old leader's writes fail as a whole and raise
:class:`Fenced`. A large setting's chunks are staged first, in transactions that start with the
same check; only the final, checked transaction makes them visible (see ``zk_blobs``).

A lost connection is retried (kazoo's ``KazooRetry``) for up to ``store_timeout``; each attempt
re-reads where the agent is, so repeating an attempt that did commit writes the same result.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote, unquote

from kazoo.client import KazooClient
from kazoo.client import TransactionRequest as Transaction
from kazoo.exceptions import NoNodeError
from kazoo.retry import KazooRetry

from meseta.master.effects import (
    AdmitAgent,
    MarkAgentGone,
    MarkAgentUnreachable,
    RegistryOperation,
    RemoveAgent,
    SaveSetting,
)
from meseta.master.registry.storage import Fenced
from meseta.runtime import zk_blobs
from meseta.runtime.fencing import EpochFence

__all__ = ["Fenced", "ZooKeeperStorage"]

STORE_TIMEOUT = 20.0  # --registry_store_timeout: how long one write waits out a lost connection
AGENT_SETS = ("agents", "unreachable", "gone")


def encode_name(key: str) -> str:
    name = quote(key, safe="")
    return name if name not in (".", "..") else name.replace(".", "%2E")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def target_of(operation: AdmitAgent | RemoveAgent | MarkAgentUnreachable | MarkAgentGone) -> tuple[str, bytes] | None:
    """The set an agent operation puts the agent in, and its data there (None: no set)."""
    if isinstance(operation, AdmitAgent):
        return "agents", json_bytes(operation.info)
    if isinstance(operation, MarkAgentUnreachable):
        return "unreachable", json_bytes({"time": operation.time})
    if isinstance(operation, MarkAgentGone):
        return "gone", json_bytes({"time": operation.time})
    return None


class ZooKeeperStorage:
    """The Storage protocol over ``client`` (started, owned by the caller) under ``root``."""

    def __init__(self, client: KazooClient, root: str, store_timeout: float = STORE_TIMEOUT) -> None:
        self.client = client
        self.root = "/" + root.strip("/")
        self.fence = EpochFence(client, self.root)  # the epoch node; its version, once claimed
        self._retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=1.0, deadline=store_timeout,
                                 ignore_expire=True)
        self._lock = threading.Lock()

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def retry(self, func: Callable[..., Any], *args: Any) -> Any:
        return self._retry.copy()(func, *args)

    # ------------------------------------------------------------------ fencing
    @property
    def version(self) -> int | None:
        return self.fence.version

    def claim(self, master_id: str) -> int:
        """Take the registry over: every earlier claimant's writes fail from now on."""
        with self._lock:
            for name in (*AGENT_SETS, "settings"):
                self.retry(self.client.ensure_path, self.path(name))
            return int(self.retry(self.fence.claim, master_id))

    def guard(self, txn: Transaction) -> None:
        self.fence.guard(txn)

    def commit(self, txn: Transaction) -> None:
        self.fence.commit(txn)

    def fenced_or(self, failure: zk_blobs.TransactionFailed) -> Exception:
        return self.fence.fenced_or(failure)

    # ------------------------------------------------------------------ writes
    def apply(self, operation: RegistryOperation) -> None:
        with self._lock:
            if self.fence.version is None:
                raise Fenced("this master has not claimed the registry")
            if isinstance(operation, SaveSetting):
                self.retry(self._save_setting_once, operation)
            else:
                self.retry(self._move_agent_once, operation)

    def _move_agent_once(self, operation: AdmitAgent | RemoveAgent | MarkAgentUnreachable | MarkAgentGone) -> None:
        node = encode_name(operation.agent_id)
        paths = [self.path(name, node) for name in AGENT_SETS]
        pending = [self.client.exists_async(path) for path in paths]  # one round trip for the three
        present = [result.get() is not None for result in pending]
        target = target_of(operation)
        txn = self.client.transaction()
        self.guard(txn)
        for name, path, exists in zip(AGENT_SETS, paths, present, strict=True):
            if target is not None and name == target[0]:
                (txn.set_data if exists else txn.create)(path, target[1])
            elif exists and name != "gone":  # gone is for good: only MarkAgentGone writes it
                txn.delete(path)
        self.commit(txn)

    def _save_setting_once(self, operation: SaveSetting) -> None:
        path = self.path("settings", encode_name(operation.name))
        try:
            staged = zk_blobs.stage_blob(self.client, path, json_bytes(operation.value), self.guard)
        except zk_blobs.TransactionFailed as failure:
            raise self.fenced_or(failure) from None
        txn = self.client.transaction()
        self.guard(txn)
        staged.add_commit(txn)
        try:
            self.commit(txn)
        except (Fenced, zk_blobs.TransactionFailed):
            zk_blobs.discard_blob(self.client, staged)  # rolled back for sure (not so a lost connection)
            raise
        try:
            zk_blobs.sweep_blob(self.client, path, staged.generation, self.guard)
        except zk_blobs.TransactionFailed:
            pass  # fenced after our commit: the next leader's sweep removes what is left

    # ------------------------------------------------------------------ reads
    def _read_set(self, name: str) -> dict[str, bytes]:
        """Every child of ``<root>/<name>`` with its data (fetched in parallel)."""
        try:
            children = self.client.get_children(self.path(name))
        except NoNodeError:
            return {}
        pending = {child: self.client.get_async(self.path(name, child)) for child in children}
        found: dict[str, bytes] = {}
        for child, result in pending.items():
            try:
                found[unquote(child)] = result.get()[0]
            except NoNodeError:
                pass  # deleted since it was listed
        return found

    def _load(self, name: str) -> dict[str, Any]:
        return {key: json.loads(data) for key, data in self.retry(self._read_set, name).items()}

    def load_agents(self) -> dict[str, dict[str, Any]]:
        return self._load("agents")

    def load_unreachable(self) -> dict[str, float]:
        return {key: value["time"] for key, value in self._load("unreachable").items()}

    def load_gone(self) -> dict[str, float]:
        return {key: value["time"] for key, value in self._load("gone").items()}

    def load_settings(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.retry(self._read_settings))

    def _read_settings(self) -> dict[str, Any]:
        try:
            children = self.client.get_children(self.path("settings"))
        except NoNodeError:
            return {}
        settings: dict[str, Any] = {}
        for child in children:
            data = zk_blobs.read_blob(self.client, self.path("settings", child))
            if data is not None:  # an empty placeholder left by a fenced write
                settings[unquote(child)] = json.loads(data)
        return settings

    def close(self) -> None:
        """Stop writing (later applies raise Fenced); the client belongs to the caller."""
        with self._lock:
            self.fence.version = None
