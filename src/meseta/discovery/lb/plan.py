"""Server slots, and what it takes to go from one model to the next; pure.

Each backend has a fixed number of server slots ``s1..sN``: N = max(--slots, the power of two that holds
twice the app's instances), so a rolling upgrade (old and new instances together) fits without a reload.
A server keeps its slot for life, so adding or removing one only fills or empties a slot::

    empty slot  --set server b/sK addr IP port P; set server b/sK state ready-->  in rotation
    in rotation --set server b/sK state drain-->  draining (no new sessions)  --state maint-->  empty
    in rotation --state maint-->  empty          (the task is gone or no longer healthy/ready)

``diff`` answers with the runtime API commands for every slot that exists before and after, and
whether a reload is needed: a new or removed service, a changed frontend/backend setting, or a
backend that outgrew its slots (it then gets twice the slots it needs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meseta.discovery.lb.model import Model, Server

Slots = tuple[Server | None, ...]
Placement = Mapping[str, Slots]


@dataclass(frozen=True, slots=True)
class Change:
    commands: tuple[str, ...]
    reload: bool


def slot_name(index: int) -> str:
    return f"s{index + 1}"


def place(model: Model, previous: Placement, min_slots: int = 8) -> dict[str, Slots]:
    """Slots for every service: servers stay where they were, new ones take the lowest free slots."""
    placement: dict[str, Slots] = {}
    for service in model.services:
        old = previous.get(service.name, ())
        wanted = {s.key: s for s in service.servers}
        slots: list[Server | None] = [wanted.pop(s.key) if s is not None and s.key in wanted else None for s in old]
        size = max(min_slots, _power_of_two(2 * max(len(service.servers), service.instances)))
        slots += [None] * (size - len(slots) if not old else 0)
        newcomers = list(wanted.values())
        free = [i for i, s in enumerate(slots) if s is None]
        if len(newcomers) > len(free):
            slots += [None] * (size - len(slots))
            free = [i for i, s in enumerate(slots) if s is None]
        for index, server in zip(free, newcomers, strict=False):
            slots[index] = server
        placement[service.name] = tuple(slots)
    return placement


def _power_of_two(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


def diff(old: Placement, new: Placement, reload: bool) -> Change:
    """Commands for the slots both sides have; ``reload`` says whether the structure changed."""
    commands: list[str] = []
    for name, slots in new.items():
        before = old.get(name, ())
        for index in range(min(len(before), len(slots))):
            commands += slot_commands(f"{name}/{slot_name(index)}", before[index], slots[index])
    return Change(tuple(commands), reload)


def slot_commands(server: str, old: Server | None, new: Server | None) -> list[str]:
    if new is None:
        return [] if old is None else [f"set server {server} state maint"]
    state = "drain" if new.draining else "ready"
    if old is None or (old.key, old.ip, old.port) != (new.key, new.ip, new.port):
        moved = [] if old is None else [f"set server {server} state maint"]
        return [*moved, f"set server {server} addr {new.ip} port {new.port}", f"set server {server} state {state}"]
    return [] if old.draining == new.draining else [f"set server {server} state {state}"]
