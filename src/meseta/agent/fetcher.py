"""The fetcher: ``CommandInfo.uris`` into the sandbox before the task starts.

One URI (Mesos' ``CommandInfo.URI``)::

    value        http://, https://, file:// or an absolute local path
    output_file  the name in the sandbox (default: the URI's last path part)
    executable   chmod 755, never extracted
    extract      (default true) .tar .tar.gz .tgz .tar.bz2 .tbz2 .tar.xz .txz .zip unpack into the sandbox
    cache        keep the download under --fetcher-cache-dir, keyed by (user, value); later fetches
                 copy from it; least recently used entries go when the cache passes --fetcher-cache-size

Any failure (unknown scheme, HTTP error, missing file, corrupt archive) is a FetchError whose
message names the URI; the task then ends TASK_FAILED with REASON_CONTAINER_LAUNCH_FAILED.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tarfile
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from meseta.agent.options import DEFAULT_CACHE_BYTES

ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


class FetchError(Exception):
    """A URI could not be fetched; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class FetchItem:
    uri: str
    name: str  # the file name in the sandbox
    executable: bool
    extract: bool  # an archive to unpack (never when executable)
    cache: bool


def plan(uri: Mapping[str, Any]) -> FetchItem:
    """What to do with one ``CommandInfo.URI`` (pure; raises FetchError for a bad one)."""
    value = str(uri.get("value") or "")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https", "file", "") or (not parsed.scheme and not value.startswith("/")):
        raise FetchError(f"Failed to fetch '{value}': only http, https, file and absolute paths are supported")
    name = str(uri.get("output_file") or "") or Path(unquote(parsed.path)).name
    if not name or "/" in name or name in (".", ".."):
        raise FetchError(f"Failed to fetch '{value}': no file name to save it under")
    executable = bool(uri.get("executable", False))
    extract = bool(uri.get("extract", True)) and not executable and name.endswith(ARCHIVES)
    return FetchItem(value, name, executable, extract, bool(uri.get("cache", False)))


@dataclass
class FetcherCache:
    """Downloads kept by (user, uri), evicted least recently used beyond ``capacity`` bytes."""

    directory: Path
    capacity: int = DEFAULT_CACHE_BYTES
    entries: OrderedDict[str, int] = field(default_factory=OrderedDict)  # key -> size, oldest first
    hits: int = 0
    misses: int = 0

    @staticmethod
    def key(user: str | None, uri: str) -> str:
        return hashlib.sha256(f"{user or ''}\0{uri}".encode()).hexdigest()

    def lookup(self, key: str) -> Path | None:
        if key in self.entries and (self.directory / key).exists():
            self.entries.move_to_end(key)
            self.hits += 1
            return self.directory / key
        self.misses += 1
        return None

    def admit(self, key: str, source: Path) -> None:
        size = source.stat().st_size
        if size > self.capacity:
            return  # larger than the whole cache: used once, never kept
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.directory / key)
        self.entries[key] = size
        while sum(self.entries.values()) > self.capacity:
            evicted, _ = self.entries.popitem(last=False)
            (self.directory / evicted).unlink(missing_ok=True)


class Fetcher:
    def __init__(self, cache: FetcherCache) -> None:
        self.cache = cache
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=True)

    async def fetch_all(self, uris: Iterable[Mapping[str, Any]], sandbox: Path, user: str | None) -> None:
        for uri in uris:
            await self.fetch(plan(uri), sandbox, user)

    async def fetch(self, item: FetchItem, sandbox: Path, user: str | None) -> None:
        target = sandbox / item.name
        key = FetcherCache.key(user, item.uri)
        cached = self.cache.lookup(key) if item.cache else None
        if cached is not None:
            await asyncio.to_thread(shutil.copyfile, cached, target)
        else:
            await self._download(item.uri, target)
            if item.cache:
                await asyncio.to_thread(self.cache.admit, key, target)
        if item.executable:
            target.chmod(0o755)
        elif item.extract:
            await asyncio.to_thread(_extract, item.uri, target, sandbox)

    async def _download(self, uri: str, target: Path) -> None:
        parsed = urlparse(uri)
        if parsed.scheme in ("http", "https"):
            try:
                async with self._client.stream("GET", uri) as response:
                    if response.status_code != 200:
                        raise FetchError(f"Failed to fetch '{uri}': HTTP {response.status_code}")
                    with open(target, "wb") as out:
                        async for chunk in response.aiter_bytes(1 << 16):
                            out.write(chunk)
            except httpx.HTTPError as exc:
                raise FetchError(f"Failed to fetch '{uri}': {exc}") from None
            return
        source = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        try:
            await asyncio.to_thread(shutil.copyfile, source, target)
        except OSError as exc:
            raise FetchError(f"Failed to fetch '{uri}': {exc.strerror or exc}") from None

    async def close(self) -> None:
        await self._client.aclose()


def _extract(uri: str, archive: Path, sandbox: Path) -> None:
    """Unpack into the sandbox; members that would land outside it are refused."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    if not _inside(sandbox, sandbox / member):
                        raise FetchError(f"Failed to extract '{uri}': '{member}' points outside the sandbox")
                zipped.extractall(sandbox)
        else:
            with tarfile.open(archive) as tarred:
                tarred.extractall(sandbox, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"Failed to extract '{uri}': {exc}") from None


def _inside(root: Path, path: Path) -> bool:
    return os.path.commonpath([root.resolve(), path.resolve()]) == str(root.resolve())
