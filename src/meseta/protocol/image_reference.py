"""Image references by Docker's rules (pure), read where a task is checked (the master) and where an
image is pulled (the agent)::

    [host[:port]/]repo[/more][:tag|@sha256:<64 hex>]

A first component with ``.`` or ``:``, or ``localhost``, is a registry host; otherwise the image is on
the default registry. ``library/`` is prefixed only on Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ReferenceError(ValueError):
    """Not an image reference; the message names what is wrong with it."""


DOCKER_HUB = "registry-1.docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB})

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class Reference:
    host: str  # host[:port]
    repository: str  # library/busybox
    tag: str | None = None
    digest: str | None = None  # sha256:<hex>; when set, what is pulled

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.host}/{self.repository}{tag}{digest}"


def parse_reference(name: str, default_host: str) -> Reference:
    """A reference by Docker's rules; ReferenceError names what is wrong with it."""
    if not name or len(name) > 1024 or not name.isascii() or any(c.isspace() for c in name):
        raise ReferenceError(f"image '{name}': not a valid reference (empty, too long, or spaces/non-ASCII)")
    rest, at, digest = name.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise ReferenceError(f"image '{name}': digest '{digest}' is not sha256:<64 lower-case hex>")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise ReferenceError(f"image '{name}': registry host '{first}' is not a valid host[:port]")
        host, path = first, remainder
    else:
        host, path = default_host, rest
    path, colon, tag = path.rpartition(":") if ":" in path.rpartition("/")[2] else (path, "", "")
    if colon and not _TAG.fullmatch(tag):
        raise ReferenceError(f"image '{name}': tag '{tag}' must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    if host in HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    components = path.split("/")
    bad = next((c for c in components if not _COMPONENT.fullmatch(c)), None)
    if bad is not None:
        raise ReferenceError(f"image '{name}': repository component '{bad}' must match [a-z0-9]+([._-][a-z0-9]+)*")
    if len(path) >= 256:
        raise ReferenceError(f"image '{name}': repository name is 256 characters or more")
    return Reference(host, path, tag or (None if at else "latest"), digest or None)
