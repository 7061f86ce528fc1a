"""Fencing a store's writers by an epoch znode: whoever claimed last is the only one who writes.

    <root>/epoch      data: the claimant's id; its znode *version* is the fencing token

``claim`` sets the node and remembers the version it got; ``guard`` puts ``check(epoch,
version)`` first in every transaction, so once another writer has claimed, each of our writes
is rolled back whole and reported as :class:`Fenced` (by ``commit`` / ``fenced_or``).
"""

from __future__ import annotations

from typing import Any

from kazoo.client import KazooClient
from kazoo.client import TransactionRequest as Transaction
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from meseta.runtime import zk_blobs


class Fenced(Exception):
    """This writer may no longer write: another one has claimed the store since. A leader that
    sees it has been deposed and must stop acting at once."""


class EpochFence:
    def __init__(self, client: KazooClient, root: str) -> None:
        self.client = client
        self.path = f"{root.rstrip('/')}/epoch"
        self.version: int | None = None

    def claim(self, owner: str) -> int:
        """Take the store over (blocking; callers retry on connection loss)."""
        data = owner.encode()
        try:
            self.version = int(self.client.set(self.path, data).version)
        except NoNodeError:
            try:
                self.client.create(self.path, data, makepath=True)
                self.version = 0
            except NodeExistsError:
                self.version = int(self.client.set(self.path, data).version)
        return self.version

    def guard(self, txn: Transaction) -> None:
        if self.version is None:
            raise Fenced("this writer has not claimed the store")
        txn.check(self.path, version=self.version)

    def fenced_or(self, failure: zk_blobs.TransactionFailed) -> Exception:
        """The guard is every transaction's first operation: if it failed, we are fenced."""
        if failure.results and isinstance(failure.results[0], BadVersionError | NoNodeError):
            return Fenced(f"another writer claimed {self.path} (ours: version {self.version})")
        return failure

    def commit(self, txn: Transaction) -> list[Any]:
        try:
            return zk_blobs.commit(txn)
        except zk_blobs.TransactionFailed as failure:
            raise self.fenced_or(failure) from None
