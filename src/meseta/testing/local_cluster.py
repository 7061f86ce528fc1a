"""``meseta local`` inside a test: a master, agents and (optionally) the services and jobs schedulers on one
event loop in a background thread, serving real HTTP on loopback, with every error they log kept.

    with LocalCluster(tmp_path, agents=1, services=True) as cluster:
        httpx.post(f"http://{cluster.master}/api/v1/scheduler", ...)      # real sockets, real protocols
        assert cluster.logged_errors() == []                              # no traceback, no ERROR

Lifecycle::

    __enter__: thread starts -> loop builds master (SQLite registry), agents, services, jobs; serves them
               -> waits until every agent is registered (and services and jobs answer /ping)
    __exit__:  the loop cancels every server and stops the actors (agents kill their tasks), thread joins

Everything runs in this process, so fuzzing a surface costs a request, not a process start; the
processes tasks start are real and are stopped with the agents.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from meseta.core.resources import Resources, share_of_ranges
from meseta.runtime.serve import free_port, server
from meseta.testing.clusters import DEFAULT_AGENT_RESOURCES
from meseta.testing.waiting import wait_until

T = TypeVar("T")


class ErrorRecords(logging.Handler):
    """Keeps every record at ERROR and above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def describe(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" + (f"\n{logging.Formatter().formatException(r.exc_info)}"
                                                  if r.exc_info else "") for r in self.records]


@dataclass
class LocalCluster:
    work_dir: Path
    agents: int = 1
    agent_resources: str = DEFAULT_AGENT_RESOURCES
    services: bool = False
    allocation_interval: float = 0.1
    master_port: int = field(default_factory=free_port)
    agent_ports: list[int] = field(default_factory=list)
    services_port: int | None = None
    jobs: bool = False
    jobs_port: int | None = None
    jobs_epsilon: float = 60.0
    agent_options: dict[str, Any] = field(default_factory=dict)  # more AgentOptions (images, CNI networks...)
    errors: ErrorRecords = field(default_factory=ErrorRecords)
    deposed: list[str] = field(default_factory=list)  # why the master stopped acting, if it did
    master_actor: Any = None
    agent_nodes: list[Any] = field(default_factory=list)
    services_actor: Any = None
    jobs_actor: Any = None

    def __post_init__(self) -> None:
        self.agent_ports = [free_port() for _ in range(self.agents)]
        self.services_port = free_port() if self.services else None
        self.jobs_port = free_port() if self.jobs else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="local-cluster", daemon=True)
        self._failure: BaseException | None = None

    @property
    def master(self) -> str:
        return f"127.0.0.1:{self.master_port}"

    @property
    def services_url(self) -> str:
        assert self.services_port is not None, "this cluster runs no services scheduler"
        return f"http://127.0.0.1:{self.services_port}"

    @property
    def jobs_address(self) -> str:
        """host:port of the jobs API (what chronos-python takes)."""
        assert self.jobs_port is not None, "this cluster runs no jobs scheduler"
        return f"127.0.0.1:{self.jobs_port}"

    def agent_url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.agent_ports[index]}"

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalCluster:
        logging.getLogger().addHandler(self.errors)
        self._thread.start()
        try:
            wait_until(self._ready, 30, f"{self.agents} agent(s) registered"
                       + (" and services answering" if self.services else "")
                       + (" and jobs answering" if self.jobs else ""))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        logging.getLogger().removeHandler(self.errors)

    def _ready(self) -> bool:
        if self._failure is not None:
            raise AssertionError(f"the local cluster failed to start: {self._failure!r}")
        slaves = httpx.get(f"http://{self.master}/master/slaves", timeout=2).json()["slaves"]
        if len(slaves) < self.agents:
            return False
        if self.jobs and httpx.get(f"http://{self.jobs_address}/ping", timeout=2).status_code != 200:
            return False
        return not self.services or httpx.get(f"{self.services_url}/ping", timeout=2).status_code == 200

    def logged_errors(self) -> list[str]:
        """Every ERROR (or traceback) any part of the cluster logged so far."""
        return self.errors.describe()

    def on_loop(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """``function()`` run on the cluster's event loop (so it sees a state no handler is
        changing), its result returned here."""
        assert self._loop is not None
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:  # handed to the caller's thread
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        return result.result(timeout)

    # ------------------------------------------------------------- the loop's side
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to __enter__ (or lost at exit, when it is expected)
            self._failure = exc

    async def _main(self) -> None:
        from meseta.agent.daemon import build_agent, run_agent
        from meseta.agent.options import AgentOptions
        from meseta.master.daemon import MasterOptions, build_master

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        options = MasterOptions("127.0.0.1", self.master_port, self.work_dir / "master",
                                allocation_interval=self.allocation_interval)
        # A deposed master would exit the process (abort_process): here it is recorded instead.
        self.master_actor, master_app = build_master(options, on_deposed=self.deposed.append)
        self.master_actor.run(self.master_actor.machine.handle_start)
        master_server = server(master_app, "127.0.0.1", self.master_port)
        serving = asyncio.create_task(master_server.serve())
        agents = []
        for index, port in enumerate(self.agent_ports):
            mine = share_of_ranges(Resources.parse(self.agent_resources), index, self.agents).to_text()
            node, agent_app = build_agent(AgentOptions(self.master, "127.0.0.1", port, self.work_dir / f"agent{index}",
                                                       mine, f"index:{index}", None, False,
                                                       **self.agent_options))
            self.agent_nodes.append(node)
            agents.append(asyncio.create_task(run_agent(node, agent_app, "127.0.0.1", port)))
        services_server, services_serving = None, None
        if self.services_port is not None:
            from meseta.services.daemon import ServicesOptions, build_services

            self.services_actor, services_app = build_services(
                ServicesOptions(self.master, "127.0.0.1", self.services_port, self.work_dir / "services"))
            await self.services_actor.start()
            services_server = server(services_app, "127.0.0.1", self.services_port)
            services_serving = asyncio.create_task(services_server.serve())
        jobs_server, jobs_serving = None, None
        if self.jobs_port is not None:
            from meseta.jobs.daemon import JobsOptions, build_jobs

            self.jobs_actor, jobs_app = build_jobs(JobsOptions(self.master, "127.0.0.1", self.jobs_port,
                                                               self.work_dir / "jobs", task_epsilon=self.jobs_epsilon))
            await self.jobs_actor.start()
            jobs_server = server(jobs_app, "127.0.0.1", self.jobs_port)
            jobs_serving = asyncio.create_task(jobs_server.serve())
        try:
            await self._stop.wait()
        finally:
            # Clients first, the master last, so that no stream is cut while a request is in flight.
            if self.jobs_actor is not None:
                await self.jobs_actor.stop()
            if jobs_server is not None and jobs_serving is not None:
                jobs_server.should_exit = True
                await asyncio.gather(jobs_serving, return_exceptions=True)
            if self.services_actor is not None:
                await self.services_actor.stop()
            if services_server is not None and services_serving is not None:
                services_server.should_exit = True
                await asyncio.gather(services_serving, return_exceptions=True)
            for run in agents:
                run.cancel()
            await asyncio.gather(*agents, return_exceptions=True)
            await self.master_actor.stop()
            master_server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)

def clusters(work_dir: Path, **options: Any) -> Iterator[LocalCluster]:
    """A pytest fixture body: ``yield from clusters(tmp_path, services=True)``."""
    with LocalCluster(work_dir, **options) as cluster:
        yield cluster
