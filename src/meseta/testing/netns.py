"""Hosts for partition tests: network namespaces on a bridge that the test creates and removes.

    root namespace                          namespace <prefix>h<i>  ("host" i)
      <prefix>br  10.<net>.0.1/24  <--veth-->  <prefix>v<i>p  10.<net>.0.<10+i>/24
        |  <prefix>v<i> (bridge port)            lo up

``cut(i)`` takes host i's bridge port down: packets stop both ways and nothing tells either side
(no RST), like a pulled cable; ``heal(i)`` brings it back. ``inside(i)`` is the command prefix
that runs a program inside host i (``start_daemon(args, log, prefix=hosts.inside(i))``).
Everything is deleted by ``close()`` (also on a failed ``__init__``), namespaces first, so their
processes' sockets go with them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from types import TracebackType


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Hosts:
    def __init__(self, count: int, net: int | None = None) -> None:
        self.prefix = f"ms{os.getpid() % 10000}"
        self.net = net if net is not None else 100 + os.getpid() % 100
        self.count = count
        self.bridge = f"{self.prefix}br"
        self.gateway = f"10.{self.net}.0.1"
        self._made: list[tuple[str, str]] = []  # ("netns"|"link", name), to delete in reverse
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.count):
            ns, port, peer = self.namespace(i), f"{self.prefix}v{i}", f"{self.prefix}v{i}p"
            _ip("netns", "add", ns)
            self._made.append(("netns", ns))
            _ip("link", "add", port, "type", "veth", "peer", "name", peer)
            self._made.append(("link", port))
            _ip("link", "set", peer, "netns", ns)
            _ip("link", "set", port, "master", self.bridge)
            _ip("link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", peer)
            _ip("-n", ns, "link", "set", peer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def namespace(self, i: int) -> str:
        return f"{self.prefix}h{i}"

    def address(self, i: int) -> str:
        return f"10.{self.net}.0.{10 + i}"

    def cut(self, i: int) -> None:
        _ip("link", "set", f"{self.prefix}v{i}", "down")

    def heal(self, i: int) -> None:
        _ip("link", "set", f"{self.prefix}v{i}", "up")

    def inside(self, i: int) -> list[str]:
        """The command prefix that runs a program in host i's namespace."""
        return ["ip", "netns", "exec", self.namespace(i)]

    def close(self) -> None:
        for kind, name in reversed(self._made):
            with contextlib.suppress(subprocess.CalledProcessError):
                if kind == "netns":
                    _kill_namespace(name)
                    _ip("netns", "del", name)
                else:
                    _ip("link", "del", name)
        self._made.clear()

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _kill_namespace(ns: str) -> None:
    """SIGKILL whatever still runs in the namespace (its processes would keep it alive)."""
    found = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
