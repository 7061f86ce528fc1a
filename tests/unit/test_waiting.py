"""wait_until: returns the first truthy answer, treats connection errors as "not yet", and says what it
waited for (and what it last saw) when time runs out."""

from __future__ import annotations

import httpx
import pytest

from meseta.testing.waiting import wait_until


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
