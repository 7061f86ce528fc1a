"""A real ZooKeeper ensemble (1 or 3 nodes) on loopback, one ``java`` process per node.

Everything lives under the caller's ``base_dir``::

    base_dir/
      node1/zoo.cfg     tickTime, ports, server.i=127.0.0.1:<peer>:<election> (none when size == 1)
      node1/data/myid   "1"
      node1/zk.log      the node's console log (stdout and stderr)
      node2/...

Node lifecycle::

    (new) --start()/start_node(i)--> starting --srvr shows a Mode--> serving
      ^                                                                 |
      +-------------------- kill(i) (SIGKILL) / stop() -----------------+

``connected(ensemble)`` is a started kazoo client of every node, stopped and closed afterwards.

Each node runs in its own session (process group), so :meth:`Ensemble.stop` kills the whole
group and nothing survives it; ``stop`` also runs at interpreter exit if a test forgot it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kazoo.client import KazooClient

from meseta.runtime.zk import make_client, parse_zk_url
from meseta.testing.waiting import wait_until

CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
# The Debian jar names no slf4j binding; with these two (when installed) the node logs to zk.log.
LOG_JARS = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"]
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
TICK_MS = 200  # sessions may be 2 x tick .. 20 x tick: 0.4 s .. 4 s, short enough for failover tests
START_ATTEMPTS = 3  # a port found free may be taken by another process before the JVM binds it
START_TIMEOUT = 30.0  # a JVM plus a leader election; a few seconds on a loaded CI machine
SESSION_TIMEOUT = 4.0  # the longest session the test ensembles allow (20 ticks of 200 ms)
# Small heap, no JIT tiers beyond C1: a test node holds a few MB and should start fast.
JAVA_OPTS = ["-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true",
             "-Dzookeeper.root.logger=INFO,CONSOLE"]


def classpath() -> str:
    return ":".join([CLASSPATH, *(jar for jar in LOG_JARS if os.path.exists(jar))])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def four_letter_word(port: int, word: str = "srvr", timeout: float = 1.0) -> str | None:
    """The server's answer to a 4-letter word, or None if nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None


class NodeExited(RuntimeError):
    """A node's process ended while we waited for it to serve."""


@dataclass
class Node:
    number: int  # ZooKeeper's myid, 1-based
    directory: Path
    client_port: int
    peer_port: int
    election_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "zoo.cfg"

    @property
    def log(self) -> Path:
        return self.directory / "zk.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Ensemble:
    def __init__(self, base_dir: Path, size: int = 3, tick_ms: int = TICK_MS) -> None:
        if size not in (1, 3):
            raise ValueError(f"an ensemble has 1 or 3 nodes, not {size}")
        self.base_dir = Path(base_dir)
        self.size = size
        self.tick_ms = tick_ms
        self.nodes = self.choose_nodes()

    def choose_nodes(self) -> list[Node]:
        ports = free_ports(3 * self.size)
        return [Node(i + 1, self.base_dir / f"node{i + 1}", ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])
                for i in range(self.size)]

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{node.client_port}" for node in self.nodes)

    def url(self, path: str = "/meseta") -> str:
        return f"zk://{self.hosts}/{path.strip('/')}"

    def start(self, timeout: float = START_TIMEOUT) -> Ensemble:
        """Start every node; return once all of them serve clients. If a node dies while starting
        (most likely another process took one of its ports meanwhile), start again on fresh ports:
        ``hosts`` is final only once this returns. On failure nothing is left running."""
        attempts = START_ATTEMPTS
        atexit.register(self.stop)
        try:
            while True:
                try:
                    return self.start_all(time.monotonic() + timeout)
                except NodeExited:
                    attempts -= 1
                    if attempts == 0:
                        raise
                    self.stop()
                    for node in self.nodes:
                        shutil.rmtree(node.directory / "data", ignore_errors=True)
                    self.nodes = self.choose_nodes()
                    atexit.register(self.stop)
        except BaseException:
            self.stop()
            raise

    def start_all(self, deadline: float) -> Ensemble:
        for node in self.nodes:
            self.write_config(node)
        for node in self.nodes:
            self.launch(node)
        for index in range(self.size):
            self.wait_serving(index, deadline)
        return self

    def write_config(self, node: Node) -> None:
        (node.directory / "data").mkdir(parents=True, exist_ok=True)
        (node.directory / "data" / "myid").write_text(f"{node.number}\n")
        lines = [f"tickTime={self.tick_ms}", "initLimit=20", "syncLimit=10",
                 f"dataDir={node.directory / 'data'}", f"clientPort={node.client_port}",
                 "clientPortAddress=127.0.0.1", "admin.enableServer=false",
                 "4lw.commands.whitelist=srvr,mntr,ruok", "maxClientCnxns=0"]
        if self.size > 1:
            lines += [f"server.{peer.number}=127.0.0.1:{peer.peer_port}:{peer.election_port}" for peer in self.nodes]
        node.config.write_text("\n".join(lines) + "\n")

    def launch(self, node: Node) -> None:
        with open(node.log, "ab") as log:
            node.process = subprocess.Popen(
                ["java", *JAVA_OPTS, f"-Dzookeeper.log.dir={node.directory}", "-cp", classpath(), MAIN_CLASS,
                 str(node.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_serving(self, index: int, deadline: float) -> None:
        node = self.nodes[index]

        def serving() -> bool:
            if self.mode(index) is not None:
                return True
            if not node.running():
                raise NodeExited(f"ZooKeeper node {node.number} exited; see {node.log}:\n{self.log_tail(index)}")
            return False

        wait_until(serving, deadline - time.monotonic(), f"ZooKeeper node {node.number} to serve (see {node.log})")

    def log_tail(self, index: int, lines: int = 20) -> str:
        log = self.nodes[index].log
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def mode(self, index: int) -> str | None:
        """"leader", "follower" or "standalone" while the node serves; None otherwise."""
        node = self.nodes[index]
        if not node.running():
            return None
        answer = four_letter_word(node.client_port) or ""
        for line in answer.splitlines():
            if line.startswith("Mode:"):
                return line.partition(":")[2].strip()
        return None

    def leader_index(self) -> int | None:
        return next((i for i in range(self.size) if self.mode(i) in ("leader", "standalone")), None)

    def pids(self) -> list[int]:
        return [node.process.pid for node in self.nodes if node.process is not None and node.running()]

    def kill(self, index: int) -> None:
        """SIGKILL one node (its whole process group) and reap it."""
        node = self.nodes[index]
        if node.process is None:
            return
        if node.process.poll() is None:
            try:
                os.killpg(node.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.process.wait()

    def start_node(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Restart a killed node and wait until it serves again."""
        node = self.nodes[index]
        if node.running():
            raise RuntimeError(f"ZooKeeper node {node.number} is running")
        self.launch(node)
        self.wait_serving(index, time.monotonic() + timeout)

    def stop(self) -> None:
        """Kill every node and wait for it; safe to call more than once."""
        for index in range(self.size):
            self.kill(index)
        atexit.unregister(self.stop)

    def __enter__(self) -> Ensemble:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


@contextmanager
def connected(zk: Ensemble, session_timeout: float = SESSION_TIMEOUT) -> Iterator[KazooClient]:
    """A started client of ``zk`` (every node in its host list), stopped and closed afterwards."""
    client = make_client(parse_zk_url(zk.url("meseta")), session_timeout)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()
