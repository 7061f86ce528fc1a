"""Values larger than a znode: ZooKeeper refuses any request over ``jute.maxbuffer`` (1 MiB),
one node's data and one whole transaction alike. A blob at path P::

    P                  header: {"size": n, "chunks": k, "generation": g} "\\n" inline bytes (k == 0)
    P/<g>-0000         the pieces of generation g, at most CHUNK_SIZE bytes each (k > 0)
    P/<g>-0001 ...

Up to INLINE_LIMIT bytes the value lives in the header, and the caller's one transaction writes
it. A larger value is written in three phases, so no request comes near the limit::

    stage   chunks of a fresh generation g, one transaction each; no reader sees them, since
            the header does not name g yet (a new P is created empty, which reads as absent)
    commit  the caller's transaction writes the header naming g: the value changes atomically
    sweep   the chunks of every other generation are deleted

Each staging and sweeping transaction starts with the caller's ``guard`` (a fencing check), so a
writer that has lost the right to write stops at once and never deletes another writer's chunks.
Nothing here retries: callers retry the whole write, and each attempt stages a new generation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.client import TransactionRequest as Transaction
from kazoo.exceptions import NoNodeError

CHUNK_SIZE = 512 * 1024  # half of jute.maxbuffer: a chunk plus a guard and headers fits one request
INLINE_LIMIT = CHUNK_SIZE
SWEEP_BATCH = 100  # deletes per sweeping transaction
READ_ATTEMPTS = 5  # a reader racing a writer's sweep re-reads the header this often

Guard = Callable[[Transaction], None]


class TransactionFailed(Exception):
    """A ZooKeeper transaction was rolled back; ``results`` holds kazoo's per-operation outcome
    (the failing operation's exception, RolledBackError for the others)."""

    def __init__(self, results: list[Any]) -> None:
        self.results = results
        cause = next((r for r in results if isinstance(r, Exception) and type(r).__name__ != "RolledBackError"),
                     None)
        super().__init__(f"transaction rolled back: {cause!r}")


def transaction(client: KazooClient, guard: Guard | None = None) -> Transaction:
    txn = client.transaction()
    if guard is not None:
        guard(txn)
    return txn


def commit(txn: Transaction) -> list[Any]:
    """Commit, raising :class:`TransactionFailed` unless every operation succeeded."""
    results: list[Any] = txn.commit()
    if any(isinstance(result, Exception) for result in results):
        raise TransactionFailed(results)
    return results


def chunk_name(generation: str, index: int) -> str:
    return f"{generation}-{index:04d}"


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """A value whose chunks are written; :meth:`add_commit` makes it the value of ``path``."""

    path: str
    header: bytes
    generation: str
    chunks: int
    exists: bool  # whether ``path`` exists, so the commit sets rather than creates it

    def add_commit(self, txn: Transaction) -> None:
        if self.exists:
            txn.set_data(self.path, self.header)
        else:
            txn.create(self.path, self.header)


def encode_header(size: int, chunks: int, generation: str, inline: bytes = b"") -> bytes:
    header = {"size": size, "chunks": chunks, "generation": generation}
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + inline


def inline_header(data: bytes) -> bytes:
    """The node data of a value small enough to live in its header (``len(data) <= INLINE_LIMIT``):
    what a caller's own transaction writes to store it in one operation."""
    return encode_header(len(data), 0, "", data)


def stage_blob(client: KazooClient, path: str, data: bytes, guard: Guard | None = None) -> StagedBlob:
    """Write ``data``'s chunks (if it needs any) under ``path``; the value does not change yet."""
    exists = client.exists(path) is not None
    if len(data) <= INLINE_LIMIT:
        return StagedBlob(path, inline_header(data), "", 0, exists)
    generation = uuid.uuid4().hex
    pieces = [data[start:start + CHUNK_SIZE] for start in range(0, len(data), CHUNK_SIZE)]
    staged = StagedBlob(path, encode_header(len(data), len(pieces), generation), generation, len(pieces), True)
    try:
        for index, piece in enumerate(pieces):
            txn = transaction(client, guard)
            if not exists and index == 0:
                txn.create(path, b"")
            txn.create(f"{path}/{chunk_name(generation, index)}", piece)
            commit(txn)
    except TransactionFailed:
        discard_blob(client, staged)
        raise
    return staged


def discard_blob(client: KazooClient, staged: StagedBlob) -> None:
    """Delete the chunks of a blob that was never committed (its generation is ours alone)."""
    for index in range(staged.chunks):
        try:
            client.delete(f"{staged.path}/{chunk_name(staged.generation, index)}")
        except NoNodeError:
            pass


def sweep_blob(client: KazooClient, path: str, keep: str, guard: Guard | None = None) -> None:
    """Delete the chunks under ``path`` of every generation but ``keep`` ("" keeps none)."""
    stale = [child for child in client.get_children(path) if not (keep and child.startswith(keep + "-"))]
    for start in range(0, len(stale), SWEEP_BATCH):
        txn = transaction(client, guard)
        for child in stale[start:start + SWEEP_BATCH]:
            txn.delete(f"{path}/{child}")
        commit(txn)


def write_blob(client: KazooClient, path: str, data: bytes, guard: Guard | None = None) -> None:
    """Stage, commit (in a transaction of its own, after ``guard``) and sweep."""
    staged = stage_blob(client, path, data, guard)
    txn = transaction(client, guard)
    staged.add_commit(txn)
    try:
        commit(txn)
    except TransactionFailed:
        discard_blob(client, staged)
        raise
    sweep_blob(client, path, staged.generation, guard)


def delete_blob(client: KazooClient, path: str, guard: Guard | None = None) -> None:
    """Make ``path`` read as absent (one transaction), then remove its chunks and the node."""
    if client.exists(path) is None:
        return
    txn = transaction(client, guard)
    txn.set_data(path, b"")
    commit(txn)
    sweep_blob(client, path, "", guard)
    txn = transaction(client, guard)
    txn.delete(path)
    commit(txn)


def read_blobs(client: KazooClient, paths: list[str], window: int = 1000) -> list[bytes | None]:
    """The values at ``paths`` (None where there is none): the headers are asked for together,
    ``window`` at a time (thousands of small values load in a few round trips), and only the
    chunked values are read one by one."""
    out: list[bytes | None] = []
    for start in range(0, len(paths), window):
        part = paths[start:start + window]
        for path, pending in zip(part, [client.get_async(p) for p in part], strict=True):
            try:
                data, _stat = pending.get()
            except NoNodeError:
                out.append(None)
                continue
            line, _newline, inline = data.partition(b"\n")
            if data and json.loads(line)["chunks"] == 0:
                out.append(bytes(inline))
            else:
                out.append(read_blob(client, path))  # chunked (or empty: being written): read it whole
    return out


def read_blob(client: KazooClient, path: str) -> bytes | None:
    """The value at ``path``, or None if there is none."""
    for _ in range(READ_ATTEMPTS):
        try:
            data, _stat = client.get(path)
        except NoNodeError:
            return None
        if not data:
            return None
        line, _newline, inline = data.partition(b"\n")
        header = json.loads(line)
        if header["chunks"] == 0:
            return bytes(inline)
        pending = [client.get_async(f"{path}/{chunk_name(header['generation'], i)}") for i in range(header["chunks"])]
        try:
            value = b"".join(result.get()[0] for result in pending)
        except NoNodeError:
            continue  # replaced and swept while we read: read the new header
        if len(value) != header["size"]:
            raise ValueError(f"blob {path}: {len(value)} bytes, header says {header['size']}")
        return value
    raise RuntimeError(f"blob {path} changed {READ_ATTEMPTS} times while being read")
