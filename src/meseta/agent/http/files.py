"""``/files``: browse and read sandboxes, never anything outside them (spec 3.6)."""

from __future__ import annotations

import grp
import pwd
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MAX_READ_BYTES = 16 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _confine(raw: str | None, roots: Sequence[Path]) -> Path:
    if not raw:
        raise _Refused(400, "Expecting 'path' to be present")
    path = Path(raw).resolve()
    for root in roots:
        if path == root.resolve() or root.resolve() in path.parents:
            if not path.exists():
                raise _Refused(404, f"'{raw}' not found")
            return path
    raise _Refused(404, f"'{raw}' not found")


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


def _entry(path: Path) -> dict[str, Any]:
    st = path.lstat()
    return {"path": str(path), "nlink": st.st_nlink, "size": st.st_size, "mtime": st.st_mtime,
            "mode": stat.filemode(st.st_mode), "uid": _owner(st.st_uid), "gid": _group(st.st_gid)}


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _Refused(400, f"Failed to parse '{name}': '{raw}' is not an integer") from None


def files_routes(roots: Callable[[], Sequence[Path]]) -> list[Route]:
    def handle(fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return fn(request)
            except _Refused as exc:
                return PlainTextResponse(exc.message, status_code=exc.status)
        return wrapped

    @handle
    def browse(request: Request) -> Response:
        path = _confine(request.query_params.get("path"), roots())
        if not path.is_dir():
            raise _Refused(400, f"'{path}' is not a directory")
        return JSONResponse([_entry(child) for child in sorted(path.iterdir())])

    @handle
    def read(request: Request) -> Response:
        path = _confine(request.query_params.get("path"), roots())
        if path.is_dir():
            raise _Refused(400, f"'{path}' is a directory")
        offset, length = _int_param(request, "offset"), _int_param(request, "length")
        size = path.stat().st_size
        if offset is None or offset == -1:
            return JSONResponse({"offset": size, "data": ""})
        if offset < -1 or (length is not None and length < -1):
            raise _Refused(400, "'offset' and 'length' must be >= -1")
        length = MAX_READ_BYTES if length in (None, -1) else min(length, MAX_READ_BYTES)
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        return JSONResponse({"offset": offset, "data": data.decode("utf-8", errors="replace")})

    @handle
    def download(request: Request) -> Response:
        path = _confine(request.query_params.get("path"), roots())
        if path.is_dir():
            raise _Refused(400, f"'{path}' is a directory")
        return FileResponse(path)

    routes = []
    for name, endpoint in (("browse", browse), ("read", read), ("download", download)):
        routes.append(Route(f"/files/{name}", endpoint, methods=["GET"]))
        routes.append(Route(f"/files/{name}.json", endpoint, methods=["GET"]))
    return routes
