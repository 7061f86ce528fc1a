"""The network/cni isolator: a network namespace per container, joined to CNI networks by the
plugins of ``--network-cni-plugins-dir`` (run as asyncio subprocesses, bounded in time).

The namespace is made with ``ip netns add <prefix><12 hex>`` (default prefix ``meseta-``), so
``ip netns list`` shows it and ``CNI_NETNS`` is ``/run/netns/<name>``; ``enter()`` gives the
``nsenter --net=...`` prefix that runs a program inside it. An empty request list is an isolated
namespace with only loopback (DockerInfo.network NONE).

State (``<work_dir>/network/cni`` by default), written before each step so that a crash at any
point is undone by ``recover()``:

    <state_dir>/
      <container dir>/          the container id in CNI's charset (+ "-<hash>" when it had to change)
        attachment.json         {"container_id", "netns_name", "netns", "hostname", "requests": [...]}: first
        <i>-<network>/          one per requested network, interface eth<i>
          network.conf          the network config used, written BEFORE the ADD (DEL needs it)
          result.json           the ADD result of the whole plugin list, written AFTER it
        etc/hosts, etc/hostname, etc/resolv.conf   to bind into an image container

Detach sends DEL for each network in reverse order (each list's plugins in reverse, with the
stored result as prevResult), deletes the namespace, then the container dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meseta.agent.containerizer.cni_config import (
    CniConfigError,
    Loaded,
    NetworkConfig,
    check_request,
    del_prev_result,
    hosts_file,
    load_networks,
    network_info,
    parse_network,
    plugin_stdin,
    resolv_conf,
    result_addresses,
    sanitise_id,
)
from meseta.protocol.container_info import NetworkRequest, PortMapping

__all__ = ["Attachment", "CniIsolator", "NetworkError", "NetworkRequest", "PortMapping"]

log = logging.getLogger(__name__)

DEFAULT_PLUGINS_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
PLUGIN_TIMEOUT = 30.0  # per plugin run; the wait for a free slot is not counted
# Plugins mostly wait on the iptables lock: more at once only adds contention (benchmarks/cni_attach.py:
# 200 containers with host ports on 2 cpus, 16 concurrent attaches: 2.7 ops/s with 32 slots, 5.0 with 2).
DEFAULT_PARALLEL = min(8, max(2, os.cpu_count() or 2))
MAX_PLUGIN_OUTPUT = 1 << 20
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
ETC_FILES = ("hosts", "hostname", "resolv.conf")


class NetworkError(RuntimeError):
    """Attaching or detaching failed; names the network and the plugin's message."""


@dataclass(frozen=True)
class Attachment:
    netns: Path
    network_infos: list[dict[str, Any]]
    etc_files: dict[str, Path]  # "hosts", "hostname", "resolv.conf" (names in /etc) -> the container's copy


def default_state_dir(work_dir: Path) -> Path:
    return work_dir / "network" / "cni"


def netns_name(container_id: str, prefix: str = "meseta-") -> str:
    """The network namespace a container gets: ``ip netns list`` shows it by this name."""
    return prefix + hashlib.sha256(container_dir_name(container_id).encode()).hexdigest()[:12]


def container_dir_name(container_id: str) -> str:
    clean = sanitise_id(container_id)
    if clean != container_id:
        clean = f"{clean[:180]}-{hashlib.sha256(container_id.encode()).hexdigest()[:8]}"
    return clean


def _write(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _request_json(request: NetworkRequest) -> dict[str, Any]:
    return {"name": request.name, "labels": request.labels,
            "port_mappings": [[m.host_port, m.container_port, m.protocol] for m in request.port_mappings]}


def _request_from(raw: dict[str, Any]) -> NetworkRequest:
    return NetworkRequest(raw["name"], tuple(PortMapping(*m) for m in raw.get("port_mappings") or ()),
                          raw.get("labels"))


_WAITERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cni-wait")  # not the loop's default pool


async def _run(argv: Sequence[str], data: bytes | None, env: dict[str, str] | None,
               timeout: float | None) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of argv run to its end; TimeoutError after ``timeout`` (killed),
    killed on cancellation too. Started by subprocess.Popen (vfork) and waited for in a thread: the
    agent runs on uvloop, whose subprocesses fork the whole agent, 6-19 ms of the event loop per run
    (benchmarks/containers.py, docs/benchmarks.md), where Popen takes about 0.6 ms."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    loop = asyncio.get_running_loop()
    try:
        out, err = await loop.run_in_executor(_WAITERS, proc.communicate, data, timeout)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await loop.run_in_executor(_WAITERS, proc.wait)  # not its pipes: a child it left may hold them
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise TimeoutError from None
        raise
    return proc.returncode, out, err


async def _ip(*args: str) -> None:
    status, _, err = await _run(["ip", *args], None, None, None)
    if status:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")


class CniIsolator:
    def __init__(self, config_dir: Path, plugins_dir: Path, state_dir: Path, *, netns_prefix: str = "meseta-",
                 timeout: float = PLUGIN_TIMEOUT, parallel: int = DEFAULT_PARALLEL) -> None:
        self.config_dir, self.plugins_dir, self.state_dir = Path(config_dir), Path(plugins_dir), Path(state_dir)
        self.netns_prefix, self.timeout = netns_prefix, timeout
        self.parallel = parallel
        self._slots = asyncio.Semaphore(parallel)  # plugin processes at once
        self._netns_lock = asyncio.Lock()  # the first `ip netns add` mounts /run/netns: not twice at once
        self._busy: set[str] = set()  # containers being attached or detached

    # -- configuration -------------------------------------------------------------------------------

    def load(self) -> Loaded:
        """The config dir's networks, read now (Mesos re-reads at each attach)."""
        present = {p.name for p in self.plugins_dir.iterdir() if p.is_file() and os.access(p, os.X_OK)} \
            if self.plugins_dir.is_dir() else set()
        files: dict[str, str] = {}
        for path in sorted(self.config_dir.iterdir()) if self.config_dir.is_dir() else ():
            if path.is_file():
                try:
                    files[path.name] = path.read_text(errors="replace")
                except OSError as exc:
                    log.warning("cni: cannot read %s: %s", path, exc)
        loaded = load_networks(files, present)
        for source, reason in loaded.skipped:
            log.warning("cni: skipping %s: %s", self.config_dir / source, reason)
        return loaded

    def networks(self) -> dict[str, NetworkConfig]:
        return self.load().networks

    # -- paths ---------------------------------------------------------------------------------------

    def _dir(self, container_id: str) -> Path:
        return self.state_dir / container_dir_name(container_id)

    def _netns_name(self, container_id: str) -> str:
        return netns_name(container_id, self.netns_prefix)

    def enter(self, attachment: Attachment, argv: Sequence[str]) -> tuple[str, ...]:
        """The command that runs argv inside the attachment's namespace (nsenter execs in place)."""
        return ("nsenter", f"--net={attachment.netns}", "--", *argv)

    # -- attach --------------------------------------------------------------------------------------

    async def attach(self, container_id: str, requests: Sequence[NetworkRequest],
                     hostname: str | None = None) -> Attachment:
        """A new namespace joined to each requested network (eth0, eth1... in order); NetworkError
        names the network and the plugin's message, after undoing everything."""
        if not container_id:
            raise NetworkError("container_id: must not be empty")
        loaded = self.load()
        self._check(container_id, requests, loaded)
        host = hostname or re.sub(r"[^A-Za-z0-9-]", "-", container_id)[:63].strip("-") or "container"
        if not HOSTNAME.match(host):
            raise NetworkError(f"hostname: {host!r} is not a host name (letters, digits, - and . , at most 253)")
        self._busy.add(container_id)
        try:
            return await self._attach(container_id, requests, loaded, host)
        except BaseException as exc:
            try:
                await self._detach(container_id)
            except Exception as undo:  # the first failure is the one to report
                log.error("cni: undoing the attach of %s failed: %s", container_id, undo)
            if isinstance(exc, CniConfigError):
                raise NetworkError(str(exc)) from None
            raise
        finally:
            self._busy.discard(container_id)

    def _check(self, container_id: str, requests: Sequence[NetworkRequest], loaded: Loaded) -> None:
        if container_id in self._busy or self._dir(container_id).exists():
            raise NetworkError(f"container {container_id!r} is already attached")
        names = [request.name for request in requests]
        for request in requests:
            if names.count(request.name) > 1:
                raise NetworkError(f"network {request.name!r} is requested twice")
            network = loaded.networks.get(request.name)
            if network is None:
                why = loaded.why_missing(request.name)
                raise NetworkError(f"network {request.name!r} is unknown" + (f" ({why})" if why else
                                   f": no config in {self.config_dir} names it"))
            try:
                check_request(network, request.port_mappings, request.labels)
            except CniConfigError as exc:
                raise NetworkError(str(exc)) from None

    async def _attach(self, container_id: str, requests: Sequence[NetworkRequest], loaded: Loaded,
                      hostname: str) -> Attachment:
        directory = self._dir(container_id)
        directory.mkdir(parents=True)
        name = self._netns_name(container_id)
        netns = Path("/run/netns") / name
        _write(directory / "attachment.json", json.dumps({
            "container_id": container_id, "netns_name": name, "netns": str(netns), "hostname": hostname,
            "requests": [_request_json(r) for r in requests]}))
        async with self._netns_lock:
            await _ip("netns", "add", name)
        await _ip("-n", name, "link", "set", "lo", "up")
        results: list[Any] = []
        for index, request in enumerate(requests):
            network = loaded.networks[request.name]
            net_dir = directory / f"{index}-{network.name}"
            net_dir.mkdir()
            _write(net_dir / "network.conf", json.dumps(network.raw))
            result = await self._add(container_id, netns, f"eth{index}", network, request)
            try:
                result_addresses(result)
            except CniConfigError as exc:
                raise NetworkError(f"network {network.name!r}: {exc}") from None
            _write(net_dir / "result.json", json.dumps(result))
            results.append(result)
        etc = directory / "etc"
        etc.mkdir()
        addresses = [address for result in results for _, address in result_addresses(result)]
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        _write(etc / "hostname", hostname + "\n")
        _write(etc / "hosts", hosts_file(hostname, addresses))
        _write(etc / "resolv.conf", resolv_conf(results, host_resolv))
        attachment = self.attachment(container_id)
        assert attachment is not None
        return attachment

    async def _add(self, container_id: str, netns: Path, ifname: str, network: NetworkConfig,
                   request: NetworkRequest) -> Any:
        result: Any = None
        for index in range(len(network.plugins)):
            stdin = plugin_stdin(network, index, mappings=request.port_mappings, labels=request.labels,
                                 prev_result=result)
            result = await self._plugin("ADD", container_id, netns, ifname, network, index, stdin)
        return result

    # -- plugins -------------------------------------------------------------------------------------

    async def _plugin(self, command: str, container_id: str, netns: Path | None, ifname: str,
                      network: NetworkConfig, index: int, stdin: dict[str, Any]) -> Any:
        kind = network.plugins[index]["type"]
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": sanitise_id(container_id), "CNI_IFNAME": ifname,
               "CNI_NETNS": str(netns) if netns is not None else "", "CNI_PATH": str(self.plugins_dir),
               "PATH": os.environ.get("PATH", DEFAULT_PATH)}
        what = f"network {network.name!r}: {command} by plugin {kind!r}"
        async with self._slots:
            try:
                status, out, err = await _run([str(self.plugins_dir / kind)], json.dumps(stdin).encode(), env,
                                              self.timeout)
            except TimeoutError:  # an OSError too: first
                raise NetworkError(f"{what}: no answer within {self.timeout:g} s") from None
            except OSError as exc:
                raise NetworkError(f"{what}: cannot run it: {exc}") from None
        try:
            answer = json.loads(out[:MAX_PLUGIN_OUTPUT]) if out.strip() else None
        except ValueError:
            answer = None
        if status:
            if isinstance(answer, dict) and isinstance(answer.get("msg"), str):
                details = answer.get("details")
                message = answer["msg"] + (f" ({details})" if isinstance(details, str) and details else "")
                message += f" [code {answer.get('code')}]"
            else:
                message = (err or out).decode(errors="replace").strip()[-500:] or f"exit status {status}"
            raise NetworkError(f"{what} failed: {message}")
        if command == "ADD" and not isinstance(answer, dict):
            raise NetworkError(f"{what}: the result is not a JSON object: {out[:200]!r}")
        return answer

    # -- detach --------------------------------------------------------------------------------------

    async def detach(self, container_id: str) -> None:
        """DEL every network (reverse order), delete the namespace and the state; a no-op when gone."""
        if container_id in self._busy:
            raise NetworkError(f"container {container_id!r} is being attached or detached")
        self._busy.add(container_id)
        try:
            await self._detach(container_id)
        finally:
            self._busy.discard(container_id)

    async def _detach(self, container_id: str) -> None:
        directory = self._dir(container_id)
        if not directory.exists():
            return
        await self._undo(directory, container_id)

    async def _undo(self, directory: Path, container_id: str) -> None:
        meta = _read_json(directory / "attachment.json") or {}
        name = meta.get("netns_name") or self._netns_name(container_id)
        netns = Path("/run/netns") / name
        requests = [_request_from(r) for r in meta.get("requests") or ()]
        errors: list[str] = []
        for net_dir in sorted((d for d in directory.iterdir() if d.is_dir() and d.name[:1].isdigit()),
                              key=lambda d: int(d.name.split("-", 1)[0]), reverse=True):
            try:
                index = int(net_dir.name.split("-", 1)[0])
                request = requests[index] if index < len(requests) else None
                await self._del(container_id, netns if netns.exists() else None, net_dir, request)
            except (NetworkError, CniConfigError) as exc:
                errors.append(str(exc))
        if netns.exists():
            try:
                await _ip("netns", "del", name)
            except NetworkError as exc:
                errors.append(str(exc))
        if errors:
            raise NetworkError(f"container {container_id!r}: detach failed (state kept for a retry): "
                               + "; ".join(errors))
        shutil.rmtree(directory, ignore_errors=True)

    async def _del(self, container_id: str, netns: Path | None, net_dir: Path,
                   request: NetworkRequest | None) -> None:
        raw = _read_json(net_dir / "network.conf")
        if raw is None:
            return  # made, crashed before the config was stored: no plugin ran
        network = parse_network(net_dir.name, json.dumps(raw), None)
        result = _read_json(net_dir / "result.json")
        ifname = f"eth{net_dir.name.split('-', 1)[0]}"
        prev = del_prev_result(network, result)
        for index in reversed(range(len(network.plugins))):
            stdin = plugin_stdin(network, index, mappings=request.port_mappings if request else (),
                                 labels=request.labels if request else None, prev_result=prev)  # as for ADD
            await self._plugin("DEL", container_id, netns, ifname, network, index, stdin)

    # -- reading back --------------------------------------------------------------------------------

    def attachment(self, container_id: str) -> Attachment | None:
        """The stored attachment (after an agent restart too), or None."""
        directory = self._dir(container_id)
        meta = _read_json(directory / "attachment.json")
        if not isinstance(meta, dict) or not (directory / "etc" / "hosts").exists():
            return None
        requests = [_request_from(r) for r in meta["requests"]]
        infos = []
        for index, request in enumerate(requests):
            result = _read_json(directory / f"{index}-{request.name}" / "result.json")
            if result is None:
                return None
            infos.append(network_info(request.name, request.port_mappings, request.labels, result))
        return Attachment(Path(meta["netns"]), infos, {n: directory / "etc" / n for n in ETC_FILES})

    def stored(self) -> dict[str, Path]:
        """container id -> its state dir, for every container in the state dir."""
        found: dict[str, Path] = {}
        if not self.state_dir.is_dir():
            return found
        for directory in self.state_dir.iterdir():
            if directory.is_dir():
                meta = _read_json(directory / "attachment.json")
                cid = meta.get("container_id") if isinstance(meta, dict) else None
                found[cid if isinstance(cid, str) else directory.name] = directory
        return found

    async def recover(self, live: set[str]) -> dict[str, Attachment]:
        """Detach every stored container not in ``live``; the live ones' attachments."""
        kept: dict[str, Attachment] = {}
        for container_id, directory in self.stored().items():
            if container_id in live:
                attachment = self.attachment(container_id)
                if attachment is not None:
                    kept[container_id] = attachment
                    continue
                log.warning("cni: %s is live but its attachment is incomplete: detaching it", container_id)
            try:
                await self._undo(directory, container_id)
            except NetworkError as exc:
                log.error("cni: recovery: %s", exc)
        return kept
