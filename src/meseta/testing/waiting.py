"""The one way tests and benchmarks wait for something outside them to happen.

    state = wait_until(lambda: leader_state() or None, 30, "a leader")   # returns the truthy value
    await async_wait_until(lambda: agent.registered, 5, "the agent to register")
    await async_wait_until(lambda: client.get(url), 5, "an answer")     # a coroutine's result is awaited

A predicate that raises one of ``ignore`` (default: connection and HTTP errors, so a server that
is still starting counts as "not yet") is asked again. On time-out the AssertionError names
``what`` and, when given, ``describe()`` of the last state seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")
POLL_SECONDS = 0.05  # short enough to add no visible latency to a test, long enough to cost nothing
IGNORED = (httpx.HTTPError, OSError)


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str, *,
               interval: float = POLL_SECONDS, ignore: tuple[type[BaseException], ...] = IGNORED,
               describe: Callable[[], object] | None = None) -> T:
    """Ask ``predicate`` until it returns something truthy (returned), for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value: T | None = predicate()
        except ignore:
            value = None  # not answering yet counts as "not yet"
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(what, timeout, describe))
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], T | Awaitable[T | None] | None], timeout: float, what: str, *,
                           interval: float = POLL_SECONDS, ignore: tuple[type[BaseException], ...] = IGNORED,
                           describe: Callable[[], object] | None = None) -> T:
    """``wait_until`` for code on an event loop: sleeps without blocking the loop; a predicate may be
    a coroutine function (its result is awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = predicate()
            value = await answer if inspect.isawaitable(answer) else answer
        except ignore:
            value = None  # not answering yet counts as "not yet"
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(what, timeout, describe))
        await asyncio.sleep(interval)


def _timed_out(what: str, timeout: float, describe: Callable[[], object] | None) -> str:
    message = f"timed out after {timeout:g} s waiting for {what}"
    if describe is not None:
        try:
            message += f"; last seen: {describe()}"
        except Exception as exc:  # the description is a courtesy: never hide the time-out behind it
            message += f"; (describing the last state failed: {exc!r})"
    return message
