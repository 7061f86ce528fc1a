"""The one error style of the master's edge: raise where the problem is found, naming the field.

    CallRejected(status, message)   the call changes nothing and is answered ``status`` (400 by
                                    default; 403, 404, 409, 501 where the spec says so)
    SubscribeRefused(message)       SUBSCRIBE is answered 200, one ERROR event, then the stream
                                    closes (Mesos semantics for a framework it will not take)

Inside ACCEPT, a task that breaks the master's rules is not a rejected call but an outcome
(TASK_ERROR): the parsers catch CallRejected for that task and keep its message as data.
"""

from __future__ import annotations


class CallRejected(Exception):
    """A call is invalid (in itself or for the current state); nothing has changed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SubscribeRefused(Exception):
    """SUBSCRIBE was refused: answer 200, one ERROR event, then close (Mesos semantics)."""


def invalid(message: str) -> CallRejected:
    """A 400 naming the field and the problem (the common case)."""
    return CallRejected(400, message)
