"""The master actor with real and failing registries: admission waits for the registrar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from meseta.core.resources import Resources
from meseta.master.actor import Deposed, MasterActor
from meseta.master.machine import MasterMachine
from meseta.master.registry.storage import FailingStorage, MemoryStorage, SqliteStorage
from meseta.master.validation.agents import parse_stream_call
from meseta.master.validation.errors import CallRejected
from meseta.testing.master_world import MASTER_INFO

AGENT = {"hostname": "h1", "port": 5051, "resources": Resources.parse("cpus:1;mem:256").to_json()}


async def register(actor: MasterActor) -> list[dict]:
    stream = actor.open_agent_stream()
    actor.run(actor.machine.handle_register_agent, parse_stream_call({"type": "REGISTER", "agent_info": AGENT}),
              stream.stream_id, attach=lambda agent_id: actor.attach_agent_stream(agent_id, stream))
    await asyncio.sleep(0.2)  # the registrar writes in a thread, then posts the result back
    stream.close()
    return [record async for record in stream.body()]  # type: ignore[misc]


async def test_agent_is_admitted_only_after_the_registry_write(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "registry.sqlite")
    actor = MasterActor(MasterMachine(MASTER_INFO), storage)
    records = await register(actor)
    assert any(b'"REGISTERED"' in r for r in records)
    stored = SqliteStorage(tmp_path / "registry.sqlite").load_agents()
    assert list(stored) == list(actor.machine.books.agents.registered)
    await actor.stop()


async def test_a_failing_registry_admits_nobody() -> None:
    actor = MasterActor(MasterMachine(MASTER_INFO), FailingStorage("disk on fire"))
    records = await register(actor)
    assert not any(b'"REGISTERED"' in r for r in records)
    assert not actor.machine.books.agents.registered
    await actor.stop()


async def test_an_unexpected_exception_deposes_the_master_instead_of_running_on() -> None:
    """The error contract: a refusal passes through untouched; any other exception in a handler (a
    bug, which may have left a change half-made) deposes the master, which then refuses to act."""
    reasons: list[str] = []
    actor = MasterActor(MasterMachine(MASTER_INFO), MemoryStorage(), on_deposed=reasons.append)

    def refuses(now: float) -> list[Any]:
        raise CallRejected(409, "not now")

    def breaks(now: float) -> list[Any]:
        raise KeyError("half-made")

    with pytest.raises(CallRejected):
        actor.run(refuses)
    assert not actor.deposed and reasons == []
    with pytest.raises(Deposed):
        actor.run(breaks)
    assert actor.deposed and reasons == ["unexpected KeyError in breaks"]
    with pytest.raises(Deposed):  # and acts no more
        actor.run(actor.machine.handle_allocate)
    await actor.stop()
