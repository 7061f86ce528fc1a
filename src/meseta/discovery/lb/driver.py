"""The ``meseta lb`` loop: services scheduler state in, HAProxy changes out (asyncio).

    start: HAProxy with no apps -> register with the services scheduler (drain API)
    events (SSE) --any trigger--> dirty --sync--> GET /v2/apps -> model.build -> plan.place
        same structure:  runtime mode: runtime API commands      reload mode: seamless reload
        new structure:   haproxy -c the candidate (invalid: add the apps one by one, leave out and
                         report each that breaks it) -> runtime commands for the slots that stay
                         -> save server state -> seamless reload
    draining task: its slots go to state drain -> current sessions 0 (or its deadline) -> state
                   maint -> POST /v2/loadbalancers/<id>/drained
    exit: DELETE the registration, stop HAProxy

Latency recorded per applied change: from the first event that triggered it to HAProxy's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import ipaddress
import logging
import socket
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from meseta.discovery.lb import model as lbmodel
from meseta.discovery.lb.feed import DRAINING, TTL_SECONDS, Feed
from meseta.discovery.lb.haproxy import HAProxy, HAProxyError, ReloadFailed
from meseta.discovery.lb.model import Model, Settings
from meseta.discovery.lb.plan import Placement, diff, place, slot_name
from meseta.discovery.lb.render import Files, render, structure

log = logging.getLogger(__name__)
DEFAULT_DRAIN_SECONDS = 10.0
DRAIN_MARGIN = 0.5
MAX_EVENTS = 200


@dataclass(frozen=True, slots=True)
class Options:
    marathon: tuple[str, ...]
    groups: tuple[str, ...]
    work_dir: Path
    haproxy: str = "/usr/sbin/haproxy"
    bind_addr: str = "127.0.0.1"
    port_range: tuple[int, int] = (10000, 20000)
    stats_port: int | None = None
    http_port: int | None = None
    mode: str = "runtime"  # or "reload": every change by a seamless reload (the comparison run)
    min_slots: int = 8
    lb_id: str = ""
    resync_seconds: float = 30.0


@dataclass
class Driver:
    options: Options
    model: Model = field(default_factory=Model)
    placement: Placement = field(default_factory=dict)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))  # s, event -> HAProxy changed
    events: list[dict[str, Any]] = field(default_factory=list)  # rejected apps and drains (bounded)
    syncs: int = 0

    def __post_init__(self) -> None:
        o = self.options
        self.lb_id = o.lb_id or f"lb-{uuid.uuid4().hex[:12]}"
        self.settings = Settings(groups=o.groups, bind_addr=o.bind_addr, port_range=o.port_range,
                                 reserved_ports=frozenset(p for p in (o.stats_port,) if p), http_port=o.http_port)
        self.haproxy = HAProxy(o.haproxy, o.work_dir)
        self.files = Files(socket=str(self.haproxy.socket), state_file=str(self.haproxy.state_file),
                           load_state=o.mode == "runtime", stats_port=o.stats_port)
        self.feed = Feed(o.marathon, self.lb_id, o.groups)
        self.dirty = asyncio.Event()
        self.triggered_at: float | None = None
        self.deadlines: dict[str, float] = {}
        self.draining: set[str] = set()  # drains in progress or confirmed
        self.hosts: dict[str, str] = {}
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        await self.haproxy.start(render(self.model, self.placement, self.settings, self.files))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._events())
                group.create_task(self._syncs())
                group.create_task(self._registration())
                group.create_task(self._resync())
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    async def _shutdown(self) -> None:
        if self.feed.drain_supported:
            await self.feed.deregister()
        await self.feed.close()
        await self.haproxy.stop()

    def status(self) -> dict[str, Any]:
        return {"lbId": self.lb_id, "mode": self.options.mode, "reloads": self.haproxy.reloads, "syncs": self.syncs,
                "drainSupported": self.feed.drain_supported,
                "services": [{"name": s.name, "appId": s.app_id, "port": s.port, "mode": s.mode,
                              "servers": [{"taskId": v.task_id, "address": f"{v.ip}:{v.port}",
                                           "draining": v.draining} for v in s.servers]}
                             for s in self.model.services],
                "rejected": [{"appId": a, "reason": r} for a, r in sorted(self.model.rejected.items())],
                "events": list(self.events)}

    def _event(self, kind: str, **payload: Any) -> None:
        self.events.append({"eventType": kind, "timestamp": time.time(), **payload})
        del self.events[:-MAX_EVENTS]

    # ------------------------------------------------------------------ inputs

    async def _events(self) -> None:
        backoff = 0.2
        while True:
            try:
                async for event in self.feed.events():
                    backoff = 0.2
                    kind = event.get("eventType")
                    if kind == DRAINING:
                        self.deadlines[str(event.get("taskId"))] = _deadline(event.get("deadline"))
                    self._trigger()
            except (httpx.HTTPError, OSError) as error:
                log.warning("event stream from %s: %s", self.feed.url, error)
                self.feed._rotate()
            self._trigger()  # resync after any reconnect
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.options.resync_seconds)
            self.dirty.set()

    async def _registration(self) -> None:
        while True:
            try:
                if not await self.feed.register():
                    return
            except httpx.HTTPError as error:
                log.warning("registration with %s failed: %s", self.feed.url, error)
            await asyncio.sleep(TTL_SECONDS / 3)

    def _trigger(self) -> None:
        if self.triggered_at is None:
            self.triggered_at = time.monotonic()
        self.dirty.set()

    async def _syncs(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            started, self.triggered_at = self.triggered_at, None
            try:
                apps = await self.feed.apps()
            except ConnectionError as error:
                log.warning("%s", error)
                await asyncio.sleep(1)
                self.dirty.set()
                continue
            try:
                changed = await self.apply(apps)
            except HAProxyError as error:
                log.error("HAProxy change failed (retrying): %s", error)
                await asyncio.sleep(1)
                self.dirty.set()
                continue
            self.syncs += 1
            self.ready.set()
            if changed and started is not None:
                self.latencies.append(time.monotonic() - started)

    # ------------------------------------------------------------------ decisions applied

    async def apply(self, apps: list[dict[str, Any]]) -> bool:
        """Bring HAProxy to the apps' model; True if HAProxy was changed."""
        model = self._bindable(lbmodel.build(apps, self.settings, await self._addresses(apps)))
        placement = place(model, self.placement, self.options.min_slots)
        reload = structure(model, placement, self.settings, self.files) != \
            structure(self.model, self.placement, self.settings, self.files)
        change = diff(self.placement, placement, reload)
        old_placement = self.placement
        if change.commands or reload:
            log.info("apply: %d runtime commands%s", len(change.commands), ", reload" if reload else "")
        if self.options.mode == "runtime" and change.commands:
            await self.haproxy.run(change.commands)  # slots the running config has: no need to wait for -c
        if reload:
            model, placement = await self._valid(model)
            reload = structure(model, placement, self.settings, self.files) != \
                structure(self.model, self.placement, self.settings, self.files)
        if self.options.mode == "runtime":
            if reload:
                model, placement = await self._reload(model, placement, save_state=True)
        elif reload or placement != old_placement:
            model, placement = await self._reload(model, placement, save_state=False)
        self._report(model)
        self.model, self.placement = model, placement
        self._start_drains()
        return bool(change.commands) or reload or (self.options.mode == "reload" and placement != old_placement)

    def _bindable(self, model: Model) -> Model:
        """Leave out apps whose new frontend cannot bind (a port in use): HAProxy 2.6 would fail the
        reload, and its old worker refuses connections until the next good reload."""
        bound = {(s.bind_addr, s.port) for s in self.model.services}
        busy: dict[str, str] = {}
        for service in model.services:
            if (service.bind_addr, service.port) in bound or service.app_id in busy:
                continue
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((service.bind_addr, service.port))
                except OSError as error:
                    busy[service.app_id] = f"port {service.port} on {service.bind_addr} cannot be bound: {error}"
        return model.without(set(busy), busy) if busy else model

    async def _reload(self, model: Model, placement: dict[str, Any], save_state: bool) -> tuple[Model, dict[str, Any]]:
        """Reload; if HAProxy cannot load the configuration (a port in use...), leave out the apps this
        change brought in, report them, and reload without them."""
        try:
            await self.haproxy.reload(render(model, placement, self.settings, self.files), save_state=save_state)
            return model, placement
        except ReloadFailed as error:
            new = {s.app_id for s in model.services} - {s.app_id for s in self.model.services}
            if not new:
                raise
            model = model.without(new, {a: f"HAProxy could not load it (a port in use?): {error}" for a in new})
            placement = place(model, self.placement, self.options.min_slots)
            await self.haproxy.reload(render(model, placement, self.settings, self.files), save_state=save_state)
            return model, placement

    async def _valid(self, model: Model) -> tuple[Model, dict[str, Any]]:
        """The model, or the largest prefix-built model HAProxy accepts, leaving out apps one by one."""
        placement = place(model, self.placement, self.options.min_slots)
        if await self.haproxy.validate(render(model, placement, self.settings, self.files)) is None:
            return model, placement
        accepted: set[str] = set()
        reasons: dict[str, str] = {}
        for app_id in sorted({s.app_id for s in model.services}):
            trial = model.without({s.app_id for s in model.services} - accepted - {app_id}, {})
            trial_placement = place(trial, self.placement, self.options.min_slots)
            problem = await self.haproxy.validate(render(trial, trial_placement, self.settings, self.files))
            if problem is None:
                accepted.add(app_id)
            else:
                reasons[app_id] = f"HAProxy refused its configuration: {problem[:500]}"
        valid = model.without({s.app_id for s in model.services} - accepted, reasons)
        return valid, place(valid, self.placement, self.options.min_slots)

    def _report(self, model: Model) -> None:
        for app_id, reason in model.rejected.items():
            if self.model.rejected.get(app_id) != reason:
                log.warning("app %s is not load balanced: %s", app_id, reason)
                self._event("lb_app_rejected_event", appId=app_id, reason=reason)

    async def _addresses(self, apps: list[dict[str, Any]]) -> Mapping[str, str]:
        loop = asyncio.get_running_loop()
        for app in apps:
            for task in app.get("tasks") or ():
                host = str(task.get("host", ""))
                if host and host not in self.hosts and not _is_ip(host):
                    try:
                        info = await loop.getaddrinfo(host, None, family=2)  # AF_INET
                        self.hosts[host] = str(info[0][4][0])
                    except OSError:
                        log.warning("agent host %s does not resolve; its tasks are left out", host)
        return self.hosts

    # ------------------------------------------------------------------ drains

    def _start_drains(self) -> None:
        self.draining &= set(self.model.draining)
        for task_id in sorted(self.model.draining - self.draining):
            self.draining.add(task_id)
            asyncio.get_running_loop().create_task(self._drain(task_id))

    async def _drain(self, task_id: str) -> None:
        deadline = self.deadlines.pop(task_id, time.time() + DEFAULT_DRAIN_SECONDS) - DRAIN_MARGIN
        slots = [f"{name}/{slot_name(i)}" for name, servers in self.placement.items()
                 for i, s in enumerate(servers) if s is not None and s.task_id == task_id]
        try:
            while slots and time.time() < deadline and await self._sessions(slots) > 0:
                await asyncio.sleep(0.05)
            if slots and self.options.mode == "runtime":
                await self.haproxy.run([f"set server {s} state maint" for s in slots])
            if self.feed.drain_supported:
                await self.feed.drained([task_id])
            self._event("lb_drained_event", taskId=task_id, servers=slots)
        except (HAProxyError, httpx.HTTPError, OSError) as error:
            log.warning("drain of %s: %s", task_id, error)

    async def _sessions(self, slots: list[str]) -> int:
        wanted = set(slots)
        rows = csv.reader(io.StringIO((await self.haproxy.command("show stat")).lstrip("# ")))
        header = next(rows, [])
        if "scur" not in header:
            return 0
        at = header.index("scur")
        return sum(int(r[at] or 0) for r in rows if len(r) > at and f"{r[0]}/{r[1]}" in wanted)


def _deadline(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() + DEFAULT_DRAIN_SECONDS


def _is_ip(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True
