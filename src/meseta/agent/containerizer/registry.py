"""A Docker Registry HTTP API v2 client (pull only): manifests, manifest lists, verified blobs.

    GET /v2/                              version check (401: authenticate per WWW-Authenticate)
    GET /v2/<repo>/manifests/<ref>        Accept: Docker v2, Docker list, OCI manifest, OCI index
    GET /v2/<repo>/blobs/<digest>         may redirect elsewhere (no Authorization sent off-host)

Auth: anonymous; Basic (htpasswd registries) with the host's credentials from a docker config.json;
Bearer: a token from the challenge's realm (Basic credentials when known), reused per host and scope.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from meseta.agent.containerizer.image_refs import (
    INDEXES,
    ImageError,
    accept_header,
    check_descriptor,
    credentials_for,
    manifest_kind,
    parse_challenge,
    pick_platform,
    pull_scope,
)
from meseta.protocol.image_reference import Reference

log = logging.getLogger(__name__)
MAX_MANIFEST = 4 * 1024 * 1024
CHUNK = 4 * 1024 * 1024  # bytes handed to a thread at once for sha256 + write
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class HTTPStatusError(ImageError):
    """The registry answered with an error status (the message has its error codes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _host_only(host: str) -> str:
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


class Registry:
    """Pulls from v2 registries. ``default_url`` (http:// or https://) names the default host and
    its scheme; other hosts use HTTPS unless listed in ``insecure`` (HOST[:PORT]: plain HTTP), or
    on loopback when the default registry is plain HTTP."""

    def __init__(self, default_url: str | None = None, docker_config: Mapping[str, Any] | None = None,
                 insecure: tuple[str, ...] = (), ca_file: Path | None = None,
                 event_hooks: Mapping[str, list[Any]] | None = None) -> None:
        self.default_host, self.default_scheme = "registry-1.docker.io", "https"
        if default_url is not None:
            parts = urlsplit(default_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ImageError(f"--docker-registry '{default_url}': expected http(s)://HOST[:PORT]")
            self.default_host, self.default_scheme = parts.netloc, parts.scheme
        self.docker_config = docker_config or {}
        self.insecure = frozenset(insecure)
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self.client = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(30.0, read=120.0),
                                        follow_redirects=False, event_hooks=dict(event_hooks or {}))
        self._auth: dict[tuple[str, str], str] = {}  # (host, scope) -> Authorization header value
        self._checked: dict[str, asyncio.Future[None]] = {}  # host -> its GET /v2/

    async def close(self) -> None:
        await self.client.aclose()

    def base(self, host: str) -> str:
        if host == self.default_host:
            scheme = self.default_scheme
        elif host in self.insecure or _host_only(host) in self.insecure:
            scheme = "http"
        elif self.default_scheme == "http" and _host_only(host) in LOOPBACK:
            scheme = "http"  # a plain-HTTP default registry on loopback: its neighbours too
        else:
            scheme = "https"
        return f"{scheme}://{host}"

    async def check_version(self, ref: Reference) -> None:
        """``GET /v2/`` once per host (authenticating as a 401 asks): ImageError if it is no v2 registry."""
        checking = self._checked.get(ref.host)
        if checking is None:
            checking = self._checked[ref.host] = asyncio.ensure_future(self._check_version(ref))
        try:
            await asyncio.shield(checking)
        except ImageError:
            self._checked.pop(ref.host, None)
            raise

    async def _check_version(self, ref: Reference) -> None:
        try:
            async with self._get(ref, f"{self.base(ref.host)}/v2/", {}) as response:
                await response.aread()
        except HTTPStatusError as exc:
            if exc.status in (401, 403):
                raise
            raise ImageError(f"registry {ref.host}: not a Docker registry v2 API ({exc})") from None

    async def manifest(self, ref: Reference) -> tuple[str, str, bytes, dict[str, Any]]:
        """(digest, media type, exact bytes, parsed) of the image manifest, a list resolved to linux/amd64."""
        await self.check_version(ref)
        digest, kind, body, manifest = await self._manifest(ref, ref.reference, None)
        if kind in INDEXES:
            entry = pick_platform(manifest)
            digest, kind, body, manifest = await self._manifest(ref, str(entry["digest"]), entry)
            if kind in INDEXES:
                raise ImageError(f"image '{ref}': a manifest list inside a manifest list is not supported")
        return digest, kind, body, manifest

    async def _manifest(self, ref: Reference, reference: str,
                        descriptor: Mapping[str, Any] | None) -> tuple[str, str, bytes, dict[str, Any]]:
        url = f"{self.base(ref.host)}/v2/{ref.repository}/manifests/{reference}"
        async with self._get(ref, url, {"Accept": accept_header()}) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST:
                    raise ImageError(f"image '{ref}': manifest is larger than {MAX_MANIFEST} bytes")
            content_type = response.headers.get("content-type", "")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ImageError(f"image '{ref}': manifest {reference} has digest {digest} (corrupted or tampered)")
        if descriptor is not None and descriptor.get("size") != len(body):
            raise ImageError(f"image '{ref}': manifest {reference} is {len(body)} bytes, "
                             f"the list says {descriptor.get('size')}")
        try:
            manifest = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImageError(f"image '{ref}': manifest is not JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise ImageError(f"image '{ref}': manifest is not a JSON object")
        return digest, manifest_kind(content_type, manifest), body, manifest

    async def blob(self, ref: Reference, descriptor: Mapping[str, Any], dest: Path) -> None:
        """Download a blob to ``dest`` (via ``dest.partial``), its size and sha256 verified."""
        check_descriptor(descriptor, "blob")
        digest, size = str(descriptor["digest"]), int(descriptor["size"])
        url = f"{self.base(ref.host)}/v2/{ref.repository}/blobs/{digest}"
        partial = dest.with_name(dest.name + ".partial")
        hasher, written = hashlib.sha256(), 0
        out = await asyncio.to_thread(_open_new, partial)
        try:
            async with self._get(ref, url, {}) as response:
                buffer = bytearray()
                async for chunk in response.aiter_raw():
                    buffer += chunk
                    written += len(chunk)
                    if written > size:
                        raise ImageError(f"image '{ref}': blob {digest} is larger than its {size} bytes")
                    if len(buffer) >= CHUNK:
                        await asyncio.to_thread(_feed, out, hasher, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(_feed, out, hasher, bytes(buffer))
            await asyncio.to_thread(out.close)
            if written != size:
                raise ImageError(f"image '{ref}': blob {digest} is {written} bytes, the manifest says {size}")
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise ImageError(f"image '{ref}': blob {digest} has sha256 {actual}: corrupted, refused")
            await asyncio.to_thread(os.replace, partial, dest)
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise

    def _get(self, ref: Reference, url: str, headers: dict[str, str]) -> _Get:
        return _Get(self, ref, url, headers)

    async def _open(self, ref: Reference, url: str, headers: dict[str, str]) -> httpx.Response:
        """GET ``url`` authenticated for ``ref``'s repository, following redirects (no auth off-host)."""
        scope, origin = pull_scope(ref.repository), urlsplit(url).netloc
        for attempt in range(2):
            current, sent = url, dict(headers)
            if (ref.host, scope) in self._auth:
                sent["Authorization"] = self._auth[ref.host, scope]
            for _ in range(6):
                try:
                    response = await self.client.send(self.client.build_request("GET", current, headers=sent),
                                                       stream=True)
                except httpx.HTTPError as exc:
                    raise ImageError(f"image '{ref}': GET {current}: {type(exc).__name__}: {exc}") from None
                if response.status_code not in (301, 302, 303, 307, 308):
                    break
                await response.aclose()
                current = urljoin(current, response.headers.get("location", ""))
                if urlsplit(current).netloc != origin:
                    sent.pop("Authorization", None)
            else:
                raise ImageError(f"image '{ref}': GET {url}: too many redirects")
            if response.status_code == 401 and attempt == 0 and urlsplit(current).netloc == origin:
                challenge = response.headers.get("www-authenticate", "")
                await response.aread()
                await response.aclose()
                if not challenge:
                    raise ImageError(f"image '{ref}': GET {url}: 401 without a WWW-Authenticate challenge")
                self._auth[ref.host, scope] = await self._authorize(ref, challenge, scope)
                continue
            if response.status_code != 200:
                body = (await response.aread())[:4096]
                await response.aclose()
                raise HTTPStatusError(response.status_code,
                                      f"image '{ref}': GET {current}: HTTP {response.status_code}{_codes(body)}")
            return response
        raise AssertionError("unreachable")

    async def _authorize(self, ref: Reference, header: str, scope: str) -> str:
        challenge = parse_challenge(header)
        creds = credentials_for(self.docker_config, ref.host)
        if challenge.scheme == "basic":
            if creds is None:
                raise ImageError(f"image '{ref}': registry {ref.host} asks for Basic credentials and "
                                 "--docker-config has none for it")
            return basic_header(*creds)
        params: dict[str, str] = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        auth = httpx.BasicAuth(*creds) if creds is not None else None
        try:
            answer = await self.client.get(challenge.params["realm"], params=params, auth=auth)
        except httpx.HTTPError as exc:
            raise ImageError(f"image '{ref}': token from {challenge.params['realm']}: {exc}") from None
        if answer.status_code != 200:
            raise ImageError(f"image '{ref}': token from {challenge.params['realm']}: HTTP {answer.status_code}"
                             f"{_codes(answer.content)}")
        try:
            token = answer.json().get("token") or answer.json().get("access_token")
        except (json.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ImageError(f"image '{ref}': token from {challenge.params['realm']}: no 'token' in the answer")
        return f"Bearer {token}"


class _Get:
    def __init__(self, registry: Registry, ref: Reference, url: str, headers: dict[str, str]) -> None:
        self.args = registry, ref, url, headers
        self.response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        registry, ref, url, headers = self.args
        self.response = await registry._open(ref, url, headers)
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            await self.response.aclose()


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _codes(body: bytes) -> str:
    """The registry's error codes and messages of a 4xx body, for the error message."""
    try:
        errors = json.loads(body).get("errors") or []
        named = [f"{e.get('code', 'UNKNOWN')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        named = []
    return f" ({'; '.join(named)})" if named else ""


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")  # closed by the caller


def _feed(out: BinaryIO, hasher: Any, data: bytes) -> None:
    hasher.update(data)
    out.write(data)
