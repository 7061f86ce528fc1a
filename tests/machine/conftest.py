"""Machine tests check the master's invariants after every handler call (ARCHITECTURE 6.2)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from meseta.master.invariants import validate
from meseta.master.machine import MasterMachine


@pytest.fixture(autouse=True)
def validate_after_every_event(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in dir(MasterMachine) if n.startswith("handle_")]:
        original = getattr(MasterMachine, name)

        @functools.wraps(original)
        def checked(self: MasterMachine, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            result = __original(self, *args, **kwargs)
            problems = validate(self)
            assert not problems, f"after {__original.__name__}: {problems}"
            return result

        monkeypatch.setattr(MasterMachine, name, checked)
    yield
