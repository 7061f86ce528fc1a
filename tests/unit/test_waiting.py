"""wait_until and async_wait_until: return the first truthy answer, treat connection errors as "not yet",
and say what they waited for (and what they last saw) when time runs out."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meseta.testing.waiting import async_wait_until, wait_until


def test_returns_the_first_truthy_answer_and_retries_connection_errors() -> None:
    answers = iter([httpx.ConnectError("starting"), None, 0, {"ready": True}])

    def ask() -> object:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(ask, 5, "readiness", interval=0.001) == {"ready": True}


def test_timing_out_names_what_was_awaited_and_the_last_state() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the moon; last seen: \[1, 2\]"):
        wait_until(lambda: False, 0.05, "the moon", interval=0.01, describe=lambda: [1, 2])


def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, 1, "arithmetic")


async def test_async_awaits_a_coroutine_predicate_and_retries_connection_errors() -> None:
    answers = iter([httpx.ConnectError("starting"), None, {"ready": True}])

    async def ask() -> object:
        await asyncio.sleep(0)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await async_wait_until(ask, 5, "readiness", interval=0.001) == {"ready": True}
    assert await async_wait_until(lambda: 7, 1, "a plain value") == 7


async def test_async_timing_out_names_what_was_awaited_and_passes_other_errors() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the tide; last seen: low"):
        await async_wait_until(lambda: False, 0.05, "the tide", interval=0.01, describe=lambda: "low")
    with pytest.raises(ZeroDivisionError):
        await async_wait_until(lambda: 1 / 0, 1, "arithmetic")
