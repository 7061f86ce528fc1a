"""``/files``: browse and read sandboxes, never anything outside them (spec 3.6).

    GET /files/browse?path=<dir>                        [{path, nlink, size, mtime, mode, uid, gid}]
    GET /files/read?path=<file>&offset=N&length=M       {"offset": N, "data": "..."} (offset absent
                                                        or -1: {"offset": <size>, "data": ""})
    GET /files/download?path=<file>                     the bytes, streamed

A task owns its sandbox and may put anything there, so every request assumes the worst:

    path     present, at most PATH_MAX bytes, no NUL; resolved (links followed) it must lie under a
             sandbox root, else 404 naming it
    reads    only regular files: the file is opened with O_NONBLOCK | O_NOFOLLOW and fstat'ed
             before a byte is read, so a FIFO, socket or device (or one swapped in meanwhile) is
             refused with 400 naming the path instead of blocking a thread forever
    offset   -1 .. 2^63-1; length -1 .. and at most MAX_READ_BYTES per read
    threads  every file system call runs on this app's own FILE_WORKERS threads, never the shared
             pool, so that a slow disk queues file requests and nothing else (/health, /state)
    names    a file name that is not UTF-8 (byte \\377) is shown with backslash escapes
"""

from __future__ import annotations

import asyncio
import grp
import mimetypes
import os
import pwd
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from meseta.runtime.http import HttpError

T = TypeVar("T")
MAX_READ_BYTES = 16 * 1024 * 1024  # one /files/read answers at most this much
MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_OFFSET = 2**63 - 1  # off_t
FILE_WORKERS = 4  # threads for this agent's file requests; more requests wait for one
CHUNK_BYTES = 256 * 1024  # /files/download reads this much at a time


def shown(path: str) -> str:
    """A path as JSON can carry it: bytes that are not UTF-8 become backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def checked_path(raw: str | None) -> str:
    if not raw:
        raise HttpError(400, "Expecting 'path' to be present")
    if "\x00" in raw:
        raise HttpError(400, "'path' must not contain a NUL byte")
    if len(os.fsencode(raw)) > MAX_PATH_BYTES:
        raise HttpError(400, f"'path' is longer than {MAX_PATH_BYTES} bytes")
    return raw


def confine(raw: str, roots: Sequence[Path]) -> Path:
    """The resolved path, if it lies under one of ``roots`` and exists (blocking: in a worker)."""
    path = Path(os.path.realpath(raw))
    for root in roots:
        resolved = Path(os.path.realpath(root))
        if path == resolved or resolved in path.parents:
            if not os.path.lexists(path):
                raise HttpError(404, f"'{shown(raw)}' not found")
            return path
    raise HttpError(404, f"'{shown(raw)}' not found")


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw) if len(raw) <= 32 else None
    except ValueError:
        value = None
    if value is None:
        raise HttpError(400, f"Failed to parse '{name}': '{shown(raw[:32])}' is not an integer")
    if not -1 <= value <= MAX_OFFSET:
        raise HttpError(400, f"'{name}' must be between -1 and {MAX_OFFSET}")
    return value


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An fd of the regular file at ``path``, opened without blocking; HttpError(400) for anything else."""
    before = os.lstat(path)
    if stat.S_ISDIR(before.st_mode):
        raise HttpError(400, f"'{shown(str(path))}' is a directory")
    if not stat.S_ISREG(before.st_mode):
        raise HttpError(400, f"'{shown(str(path))}' is not a regular file ({_kind(before.st_mode)})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise HttpError(400, f"'{shown(str(path))}' cannot be opened: {exc.strerror}") from None
    st = os.fstat(fd)  # what was opened, whatever the name points at now
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise HttpError(400, f"'{shown(str(path))}' is not a regular file ({_kind(st.st_mode)})")
    return fd, st


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a file"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def listing(raw: str, roots: Sequence[Path]) -> list[dict[str, Any]]:
    path = confine(raw, roots)
    if not stat.S_ISDIR(os.stat(path).st_mode):
        raise HttpError(400, f"'{shown(str(path))}' is not a directory")
    entries = []
    with os.scandir(path) as children:
        for child in children:
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile
            entries.append({"path": shown(child.path), "nlink": st.st_nlink, "size": st.st_size,
                            "mtime": st.st_mtime, "mode": stat.filemode(st.st_mode), "uid": _owner(st.st_uid),
                            "gid": _group(st.st_gid)})
    return sorted(entries, key=lambda entry: entry["path"])


def read_part(raw: str, roots: Sequence[Path], offset: int | None, length: int | None) -> dict[str, Any]:
    fd, st = open_regular(confine(raw, roots))
    try:
        if offset is None or offset == -1:
            return {"offset": st.st_size, "data": ""}
        size = MAX_READ_BYTES if length in (None, -1) else min(length, MAX_READ_BYTES)
        # past the end there is nothing to read (and pread near 2^63 fails with EINVAL)
        data = os.pread(fd, size, offset) if size > 0 and offset < st.st_size else b""
    finally:
        os.close(fd)
    return {"offset": offset, "data": data.decode("utf-8", errors="replace")}


class FileRoutes:
    def __init__(self, roots: Callable[[], Sequence[Path]]) -> None:
        self.roots = roots
        self._pool = ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="agent-files")

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _answer(self, work: Callable[[], Awaitable[Response]]) -> Response:
        try:
            return await work()
        except HttpError as exc:
            return exc.response()
        except OSError as exc:  # a race with the task (a file removed, a directory swapped)
            return PlainTextResponse(f"Failed to access the path: {exc.strerror or exc}", status_code=400)

    async def browse(self, request: Request) -> Response:
        async def work() -> Response:
            raw = checked_path(request.query_params.get("path"))
            return JSONResponse(await self._off_loop(listing, raw, self.roots()))
        return await self._answer(work)

    async def read(self, request: Request) -> Response:
        async def work() -> Response:
            raw = checked_path(request.query_params.get("path"))
            offset, length = int_param(request, "offset"), int_param(request, "length")
            return JSONResponse(await self._off_loop(read_part, raw, self.roots(), offset, length))
        return await self._answer(work)

    async def download(self, request: Request) -> Response:
        async def work() -> Response:
            raw = checked_path(request.query_params.get("path"))
            path = await self._off_loop(confine, raw, self.roots())
            fd, st = await self._off_loop(open_regular, path)
            media = mimetypes.guess_type(path.name)[0] or "text/plain"
            return StreamingResponse(self._chunks(fd, st.st_size), media_type=media,
                                     headers={"content-length": str(st.st_size)})
        return await self._answer(work)

    async def _chunks(self, fd: int, size: int) -> AsyncIterator[bytes]:
        """The file's first ``size`` bytes (its size when opened: a growing stdout stops there)."""
        try:
            offset = 0
            while offset < size:
                data = await self._off_loop(os.pread, fd, min(CHUNK_BYTES, size - offset), offset)
                if not data:
                    break
                offset += len(data)
                yield data
        finally:
            os.close(fd)

    def routes(self) -> list[Route]:
        routes = []
        for name, endpoint in (("browse", self.browse), ("read", self.read), ("download", self.download)):
            routes.append(Route(f"/files/{name}", endpoint, methods=["GET"]))
            routes.append(Route(f"/files/{name}.json", endpoint, methods=["GET"]))
        return routes


def files_routes(roots: Callable[[], Sequence[Path]]) -> list[Route]:
    return FileRoutes(roots).routes()
