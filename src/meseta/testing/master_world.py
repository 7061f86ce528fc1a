"""The machine-test World: a MasterMachine driven as the actor drives it, with wire-shaped input.

Every call goes through the real edge (JSON bodies decoded and parsed into records by
``meseta.master.validation``) into the machine's handler, and the master's invariants
(``meseta.master.invariants``) are checked after every event, in a ``finally``: also after a
rejected one, which must have changed nothing::

    world = World(agent_ping_timeout=1.0)
    agent_id = register_agent(world, "cpus:4;mem:1024")
    framework_id = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[framework_id]
    world.accept(framework_id, [offer["id"]["value"]], [launch(task)], None, 2.0)

Methods take the arguments the wire gives (dicts as JSON has them) and ``now`` last, and
return the effects. ``world.machine`` is the machine itself, for reading its books.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meseta.core.resources import Resources
from meseta.master.core import MasterConfig
from meseta.master.effects import Effect, Persist, RegistryOperation, SaveSetting, ToFramework
from meseta.master.invariants import validate
from meseta.master.machine import MasterMachine
from meseta.master.validation import agents as agent_calls
from meseta.master.validation import operator as ops
from meseta.master.validation import scheduler as calls
from meseta.protocol.scheduler_calls import decode_call

MASTER_INFO = {"id": "m1", "hostname": "localhost", "port": 5050, "version": "1.11.0", "pid": "master@localhost:5050"}
CONFIG_FIELDS = set(MasterConfig.__dataclass_fields__)


def _id(value: str) -> dict[str, str]:
    return {"value": value}


class World:
    def __init__(self, master_info: Mapping[str, Any] = MASTER_INFO, **options: Any) -> None:
        config = MasterConfig(**{k: v for k, v in options.items() if k in CONFIG_FIELDS})
        rest = {k: v for k, v in options.items() if k not in CONFIG_FIELDS}
        self.machine = MasterMachine(dict(master_info), config, **rest)

    # ------------------------------------------------------------- reading (never changing) the books
    @property
    def agents(self) -> dict[str, Any]:
        return self.machine.books.agents.registered

    @property
    def frameworks(self) -> dict[str, Any]:
        return self.machine.books.frameworks.by_id

    @property
    def offers(self) -> dict[str, Any]:
        return self.machine.books.offers.by_id

    @property
    def recovered_agents(self) -> dict[str, dict[str, Any]]:
        return self.machine.books.agents.recovered

    @property
    def unreachable_agents(self) -> dict[str, float]:
        return self.machine.books.agents.unreachable

    @property
    def gone_agents(self) -> dict[str, float]:
        return self.machine.books.agents.gone

    @property
    def allocator(self) -> Any:
        return self.machine.core.allocator

    @property
    def metrics(self) -> dict[str, int]:
        return self.machine.core.metrics

    # ------------------------------------------------------------- the one way in
    def run(self, handler: Callable[..., Any], *args: Any) -> Any:
        """``handler(*args)`` with the invariants checked afterwards, whatever happened; its effects
        end with the operator events of what it changed, as the actor sends them (only while
        ``machine.watch_operator_events(True)``)."""
        try:
            result = handler(*args)
            if self.machine.journal.notes:
                published = self.machine.take_operator_events(args[-1])
                if isinstance(result, list):
                    result = [*result, *published]
                elif isinstance(result, tuple):
                    result = (result[0], [*result[1], *published])
            return result
        finally:
            problems = validate(self.machine.books, self.machine.core.allocator)
            assert not problems, f"after {getattr(handler, '__name__', handler)}: {problems}"

    def call(self, framework_id: str | None, kind: str, now: float, **payload: Any) -> list[Effect]:
        """A scheduler call as a framework sends it (through the JSON edge)."""
        body: dict[str, Any] = {"type": kind, **payload}
        if framework_id is not None:
            body["framework_id"] = _id(framework_id)
        record = calls.parse_call(decode_call(json.dumps(body).encode()))
        if isinstance(record, calls.Subscribe):
            raise TypeError("use subscribe()")
        effects: list[Effect] = self.run(self.machine.handle_call, framework_id, record, now)
        return effects

    # ------------------------------------------------------------- frameworks
    def subscribe(self, info: dict[str, Any], framework_id: str | None, stream_id: str, suppressed: Iterable[str],
                  now: float) -> list[Effect]:
        body: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info,
                                                                   "suppressed_roles": list(suppressed)}}
        if framework_id is not None:
            body["framework_id"] = _id(framework_id)
        record = calls.parse_call(decode_call(json.dumps(body).encode()))
        assert isinstance(record, calls.Subscribe)
        _, effects = self.run(self.machine.handle_subscribe, record, stream_id, now)
        return list(effects)

    def framework_disconnected(self, framework_id: str, stream_id: str, now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_framework_disconnected, framework_id, stream_id, now))

    def accept(self, framework_id: str, offer_ids: list[str], operations: list[dict[str, Any]],
               refuse: float | None, now: float) -> list[Effect]:
        accept: dict[str, Any] = {"offer_ids": [_id(o) for o in offer_ids], "operations": operations}
        if refuse is not None:
            accept["filters"] = {"refuse_seconds": refuse}
        return self.call(framework_id, "ACCEPT", now, accept=accept)

    def decline(self, framework_id: str, offer_ids: list[str], refuse: float | None, now: float) -> list[Effect]:
        decline: dict[str, Any] = {"offer_ids": [_id(o) for o in offer_ids]}
        if refuse is not None:
            decline["filters"] = {"refuse_seconds": refuse}
        return self.call(framework_id, "DECLINE", now, decline=decline)

    def revive(self, framework_id: str, roles: list[str], now: float) -> list[Effect]:
        return self.call(framework_id, "REVIVE", now, revive={"roles": roles})

    def suppress(self, framework_id: str, roles: list[str], now: float) -> list[Effect]:
        return self.call(framework_id, "SUPPRESS", now, suppress={"roles": roles})

    def kill(self, framework_id: str, task_id: str, kill_policy: dict[str, Any] | None, now: float) -> list[Effect]:
        kill: dict[str, Any] = {"task_id": _id(task_id)}
        if kill_policy is not None:
            kill["kill_policy"] = kill_policy
        return self.call(framework_id, "KILL", now, kill=kill)

    def acknowledge(self, framework_id: str, agent_id: str, task_id: str, uuid: str, now: float) -> list[Effect]:
        return self.call(framework_id, "ACKNOWLEDGE", now,
                         acknowledge={"agent_id": _id(agent_id), "task_id": _id(task_id), "uuid": uuid})

    def reconcile(self, framework_id: str, tasks: list[tuple[str, str | None]], now: float) -> list[Effect]:
        listed = [{"task_id": _id(t), **({"agent_id": _id(a)} if a is not None else {})} for t, a in tasks]
        return self.call(framework_id, "RECONCILE", now, reconcile={"tasks": listed})

    def teardown(self, framework_id: str, now: float) -> list[Effect]:
        return self.call(framework_id, "TEARDOWN", now)

    def inverse_answer(self, framework_id: str, ids: list[str], accept: bool, refuse: float | None,
                       now: float) -> list[Effect]:
        kind = "ACCEPT_INVERSE_OFFERS" if accept else "DECLINE_INVERSE_OFFERS"
        payload: dict[str, Any] = {"inverse_offer_ids": [_id(i) for i in ids]}
        if refuse is not None:
            payload["filters"] = {"refuse_seconds": refuse}
        return self.call(framework_id, kind, now, **{kind.lower(): payload})

    # ------------------------------------------------------------- agents
    def register_agent(self, info: dict[str, Any], stream_id: str, now: float) -> list[Effect]:
        call = agent_calls.parse_stream_call({"type": "REGISTER", "agent_info": info})
        assert isinstance(call, agent_calls.Registration)
        _, effects = self.run(self.machine.handle_register_agent, call, stream_id, now)
        return list(effects)

    def reregister_agent(self, info: dict[str, Any], tasks: list[dict[str, Any]], executors: list[dict[str, Any]],
                         frameworks: list[dict[str, Any]], stream_id: str, now: float) -> list[Effect]:
        call = agent_calls.parse_stream_call({"type": "REREGISTER", "agent_info": info, "tasks": tasks,
                                              "executor_infos": executors, "frameworks": frameworks})
        assert isinstance(call, agent_calls.Reregistration)
        return list(self.run(self.machine.handle_reregister_agent, call, stream_id, now))

    def agent_call(self, agent_id: str, body: dict[str, Any], now: float) -> list[Effect]:
        parsed_id, call = agent_calls.parse_agent_call({**body, "agent_id": _id(agent_id)})
        return list(self.run(self.machine.handle_agent_call, parsed_id, call, now))

    def status_update(self, agent_id: str, update: dict[str, Any], now: float) -> list[Effect]:
        return self.agent_call(agent_id, {"type": "STATUS_UPDATE", "update": update}, now)

    def pong(self, agent_id: str, now: float) -> list[Effect]:
        return self.agent_call(agent_id, {"type": "PONG"}, now)

    def agent_disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_agent_disconnected, agent_id, stream_id, now))

    # ------------------------------------------------------------- operator, registry, time
    def operator(self, kind: str, payload: dict[str, Any], now: float) -> list[Effect]:
        """An agent action of the operator API (DRAIN_AGENT, RESERVE_RESOURCES, ...)."""
        return list(self.run(self.machine.handle_operator_action, ops.parse_agent_action(kind, payload), now))

    def setting(self, kind: str, payload: dict[str, Any]) -> SaveSetting:
        """A settings call prepared for the registry (nothing changes until ``persisted``)."""
        setting: SaveSetting = self.run(self.machine.prepare_setting, ops.parse_setting(kind, payload))
        return setting

    def persisted(self, operation: RegistryOperation, now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_persisted, operation, now))

    def timer(self, key: tuple[str, ...], now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_timer, key, now))

    def allocate(self, now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_allocate, now))

    def start(self, now: float) -> list[Effect]:
        return list(self.run(self.machine.handle_start, now))


# ----------------------------------------------------------------------------- builders


def agent_info(resources: str, hostname: str = "h1", **extra: Any) -> dict[str, Any]:
    return {"hostname": hostname, "port": 5051, "resources": Resources.parse(resources).to_json(), **extra}


def register_agent(world: World, resources: str, hostname: str = "h1", now: float = 0.0,
                   stream_id: str = "agent-stream") -> str:
    """An agent registered and admitted (its registry write done): its id."""
    effects = world.register_agent(agent_info(resources, hostname), stream_id, now)
    (persist,) = [e for e in effects if isinstance(e, Persist)]
    world.persisted(persist.operation, now)
    return persist.operation.agent_id  # type: ignore[union-attr]


def subscribe(world: World, name: str, now: float = 0.0, **info: Any) -> str:
    """A framework subscribed (FrameworkInfo user "u", name ``name`` and ``info``): its id."""
    effects = world.subscribe({"user": "u", "name": name, **info}, None, f"s-{name}", [], now)
    event = next(e.event for e in effects if isinstance(e, ToFramework) and e.event["type"] == "SUBSCRIBED")
    return str(event["subscribed"]["framework_id"]["value"])


def offers_in(effects: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for e in effects:
        if isinstance(e, ToFramework) and e.event["type"] == "OFFERS":
            found.setdefault(e.framework_id, []).extend(e.event["offers"]["offers"])
    return found


def events(effects: Iterable[Any], kind: str) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, ToFramework) and e.event["type"] == kind]


def launch(*tasks: dict[str, Any]) -> dict[str, Any]:
    """A LAUNCH operation."""
    return {"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}


def command_task(task_id: str, agent_id: str, resources: str, command: str = "true", **extra: Any) -> dict[str, Any]:
    return {"name": task_id, "task_id": _id(task_id), "agent_id": _id(agent_id), "command": {"value": command},
            "resources": Resources.parse(resources).to_json(), **extra}
