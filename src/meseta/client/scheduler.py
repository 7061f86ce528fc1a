"""An asyncio scheduler driver for the Mesos v1 scheduler API.

Subscription lifecycle (``run``)::

    SUBSCRIBE --200 stream--> SUBSCRIBED: registered() | reregistered()
        events -> callbacks, one at a time, in order; UPDATEs with a uuid acknowledged after
        status_update() returns (implicit acknowledgements, sent in the background)
        307 -> follow Location (//host:port/...)    503 -> retry with backoff
        zk://... master: subscribe to the leader the znodes name; a new leader -> SUBSCRIBE there
        stream ends or is silent for 5 heartbeats, or a callback raises (logged with its
            traceback) -> disconnected() -> backoff -> SUBSCRIBE (with the framework id)
        ERROR "Framework has been removed" -> error() and stop
    ``connected`` says whether subscribed; ``last_error`` why not (a new reason is logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from meseta.client.scheduler_protocol import (
    Error,
    Failure,
    Heartbeat,
    Intent,
    InverseOffers,
    Message,
    Offers,
    Rescind,
    SchedulerProtocol,
    Subscribed,
    Update,
)
from meseta.runtime.fast_http import FastHttpError, FastPoster
from meseta.runtime.leader import locate_masters, while_leading
from meseta.runtime.zk import is_zk_url

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 15.0
MISSED_HEARTBEATS = 5


class CallError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"master answered {status}: {body}")
        self.status = status
        self.body = body


class NotConnected(RuntimeError):
    pass


class Scheduler:
    """Override the callbacks you need; every one is a coroutine and defaults to doing nothing."""

    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None: ...
    async def reregistered(self, driver: SchedulerDriver, master_info: dict[str, Any]) -> None: ...
    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None: ...
    async def inverse_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None: ...
    async def offer_rescinded(self, driver: SchedulerDriver, offer_id: str) -> None: ...
    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None: ...
    async def framework_message(self, driver: SchedulerDriver, executor_id: str, agent_id: str,
                                data: bytes) -> None: ...
    async def disconnected(self, driver: SchedulerDriver) -> None: ...
    async def agent_lost(self, driver: SchedulerDriver, agent_id: str) -> None: ...
    async def executor_lost(self, driver: SchedulerDriver, executor_id: str, agent_id: str, status: int) -> None: ...
    async def error(self, driver: SchedulerDriver, message: str) -> None: ...


def _base_url(master: str) -> str:
    return master.rstrip("/") if master.startswith("http") else f"http://{master}"


class SchedulerDriver:
    def __init__(
        self,
        scheduler: Scheduler,
        framework_info: dict[str, Any],
        master: str,
        *,
        implicit_acknowledgements: bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.protocol = SchedulerProtocol(dict(framework_info))
        self.master = master  # HOST:PORT, a URL, or zk://.../path (the leader is followed)
        self.base = "" if is_zk_url(master) else _base_url(master)
        self.implicit_acknowledgements = implicit_acknowledgements
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._owns_client = client is None
        self.connected = False
        self.last_error: str | None = "not subscribed yet"  # why not connected (None while connected)
        self.master_info: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._poster: FastPoster | None = None  # for calls, on the current base
        self._acks: set[asyncio.Task[None]] = set()
        self._poster_base = ""

    @property
    def framework_id(self) -> str | None:
        return self.protocol.framework_id

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def join(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def stop(self, failover: bool = False) -> None:
        self._stopping = True
        if not failover and self.connected:
            with contextlib.suppress(CallError, httpx.HTTPError):
                await self.teardown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._owns_client:
            await self._client.aclose()
        if self._poster is not None:
            await self._poster.close()

    async def run(self) -> None:
        backoff = BACKOFF_INITIAL
        masters = await locate_masters(self.master) if is_zk_url(self.master) else None
        while not self._stopping:
            refused = False
            try:
                if masters is None:
                    refused = await self._subscribe_once()
                else:  # follow the leader: drop the subscription when another master leads
                    address = await masters.wait_leader()
                    self.base = f"http://{address}"
                    _, ended = await while_leading(masters, address, self._subscribe_once())
                    refused = bool(ended)
                if refused and not self._stopping:  # last_error holds the master's ERROR message
                    log.warning("refused by the master for good (%s)", self.last_error)
                elif self.connected:
                    self._lost(f"the event stream from {self.base} ended")
                backoff = BACKOFF_INITIAL
            except (httpx.HTTPError, OSError, TimeoutError) as exc:
                self._lost(f"subscription to {self.base} failed: {exc or type(exc).__name__}")
            except Exception as exc:  # a callback raised: say so loudly and subscribe again (not die silently)
                log.exception("scheduler callback failed; subscribing again")
                self._lost(f"scheduler callback failed: {exc!r}")
            if self.connected:
                self.connected = False
                await self.scheduler.disconnected(self)
            if refused or self._stopping:
                return  # refused for good
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _lost(self, reason: str) -> None:
        """Note why there is no subscription (``last_error``); a new reason is logged, as a
        warning when a subscription was lost."""
        if self.last_error != reason and not self._stopping:
            log.log(logging.WARNING if self.connected else logging.INFO, "%s", reason)
        self.last_error = reason

    async def _subscribe_once(self) -> bool:
        """One subscription; True when the master refused the framework for good."""
        body = self.protocol.subscribe_body()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        async with self._client.stream("POST", self.base + "/api/v1/scheduler", json=body,
                                       headers=headers) as response:
            if response.status_code == 307:
                self._follow(response.headers.get("location", ""))
                return False
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                raise httpx.HTTPError(f"SUBSCRIBE answered {response.status_code}: {text}")
            self.protocol.new_stream(response.headers.get("mesos-stream-id"))
            chunks = response.aiter_raw()
            while True:
                timeout = self.protocol.heartbeat_interval * MISSED_HEARTBEATS
                try:
                    chunk = await asyncio.wait_for(anext(chunks), timeout)
                except StopAsyncIteration:
                    return False
                for intent in self.protocol.receive(chunk):
                    if await self._dispatch(intent):
                        return True

    def _follow(self, location: str) -> None:
        netloc = urlsplit(location).netloc or location
        self.base = f"http://{netloc}"

    async def _dispatch(self, intent: Intent) -> bool:
        sched = self.scheduler
        if isinstance(intent, Subscribed):
            self.connected = True
            self.last_error = None
            self.master_info = intent.master_info
            if intent.first_time:
                await sched.registered(self, intent.framework_id, intent.master_info)
            else:
                await sched.reregistered(self, intent.master_info)
        elif isinstance(intent, Offers):
            await sched.resource_offers(self, intent.offers)
        elif isinstance(intent, InverseOffers):
            await sched.inverse_offers(self, intent.offers)
        elif isinstance(intent, Rescind):
            await sched.offer_rescinded(self, intent.offer_id)
        elif isinstance(intent, Update):
            await sched.status_update(self, intent.status)
            if self.implicit_acknowledgements and intent.ack_needed:
                status = intent.status  # acknowledged in the background: the stream reads on
                ack = asyncio.get_running_loop().create_task(
                    self._acknowledge_quietly(status["agent_id"]["value"], status["task_id"]["value"], status["uuid"]))
                self._acks.add(ack)
                ack.add_done_callback(self._acks.discard)
        elif isinstance(intent, Message):
            await sched.framework_message(self, intent.executor_id, intent.agent_id, intent.data)
        elif isinstance(intent, Failure):
            if intent.executor_id is None:
                await sched.agent_lost(self, intent.agent_id)
            else:
                await sched.executor_lost(self, intent.executor_id, intent.agent_id, intent.status or 0)
        elif isinstance(intent, Error):
            self.last_error = f"the master says: {intent.message}"
            await sched.error(self, intent.message)
            return "removed" in intent.message
        elif isinstance(intent, Heartbeat):
            pass
        return False

    # ------------------------------------------------------------ calls
    async def _send(self, body: dict[str, Any]) -> bytes:
        """One call on a keep-alive connection to the current master (runtime.fast_http: httpx
        costs about a millisecond of CPU per request, which a busy scheduler feels)."""
        if not self.connected:
            raise NotConnected(f"{body['type']}: not subscribed")
        poster = self._poster_of_base()
        headers = self.protocol.headers()
        del headers["Content-Type"]  # FastPoster sends it
        try:
            status, data = await poster.post("/api/v1/scheduler", body, headers)
        except FastHttpError as exc:
            raise CallError(0, str(exc)) from None
        if not 200 <= status < 300:
            raise CallError(status, data.decode(errors="replace"))
        return data

    def _poster_of_base(self) -> FastPoster:
        if self._poster is None or self._poster_base != self.base:
            if self._poster is not None:
                old = self._poster
                asyncio.get_running_loop().create_task(old.close())
            netloc = urlsplit(self.base).netloc
            host, _, port = netloc.rpartition(":")
            self._poster, self._poster_base = FastPoster(host, int(port), connections=8), self.base
        return self._poster

    async def launch(self, offer_ids: list[str], tasks: list[dict[str, Any]],
                     filters: dict[str, Any] | None = None) -> None:
        await self._send(self.protocol.launch(offer_ids, tasks, filters))

    async def accept(self, offer_ids: list[str], operations: list[dict[str, Any]],
                     filters: dict[str, Any] | None = None) -> None:
        await self._send(self.protocol.accept(offer_ids, operations, filters))

    async def decline(self, offer_ids: list[str], filters: dict[str, Any] | None = None) -> None:
        await self._send(self.protocol.decline(offer_ids, filters))

    async def kill(self, task_id: str, agent_id: str | None = None,
                   kill_policy: dict[str, Any] | None = None) -> None:
        await self._send(self.protocol.kill(task_id, agent_id, kill_policy))

    async def reconcile(self, tasks: list[dict[str, Any]] | None = None) -> None:
        await self._send(self.protocol.reconcile(list(tasks or [])))

    async def _acknowledge_quietly(self, agent_id: str, task_id: str, uuid: str) -> None:
        """An implicit acknowledgement; a lost one is harmless (the agent resends the update)."""
        try:
            await self.acknowledge(agent_id, task_id, uuid)
        except (CallError, NotConnected) as exc:
            log.info("acknowledgement of %s not sent: %s", task_id, exc)

    async def acknowledge(self, agent_id: str, task_id: str, uuid: str) -> None:
        await self._send(self.protocol.acknowledge(agent_id, task_id, uuid))

    async def suppress(self, roles: list[str] | None = None) -> None:
        await self._send(self.protocol.roles_call("SUPPRESS", roles))

    async def revive(self, roles: list[str] | None = None) -> None:
        await self._send(self.protocol.roles_call("REVIVE", roles))

    async def message(self, agent_id: str, executor_id: str, data: bytes) -> None:
        await self._send(self.protocol.message(agent_id, executor_id, data))

    async def shutdown(self, executor_id: str, agent_id: str) -> None:
        await self._send(self.protocol.shutdown(executor_id, agent_id))

    async def teardown(self) -> None:
        await self._send(self.protocol.call("TEARDOWN"))

    async def update_framework(self, framework_info: dict[str, Any]) -> None:
        await self._send(self.protocol.update_framework(framework_info))
