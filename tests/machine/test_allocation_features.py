"""Reservations, volumes, weights, quota, maintenance, draining and offer timeouts in the world."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.core.reservations import volume_of
from meseta.core.resources import Resources
from meseta.master.effects import SaveSetting, StartTimer, ToAgent, ToFramework
from meseta.master.validation.errors import CallRejected
from meseta.testing.master_world import World, offers_in, register_agent, subscribe


def _subscribe(world: World, name: str, role: str, capabilities: tuple[str, ...] = ()) -> str:
    info = {"user": "u", "name": name, "role": role, "capabilities": [{"type": c} for c in capabilities]}
    effects = world.subscribe(info, None, f"s-{name}", [], 0.0)
    event = next(e.event for e in effects if isinstance(e, ToFramework))
    return str(event["subscribed"]["framework_id"]["value"])


def _dynamic(text: str, role: str) -> list[dict[str, Any]]:
    items = Resources.parse(text).to_json()
    for item in items:
        item["role"] = role
        item["reservations"] = [{"type": "DYNAMIC", "role": role, "principal": "ops"}]
    return items


def _volume(role: str, mb: int, persistence_id: str, path: str = "data") -> list[dict[str, Any]]:
    (item,) = _dynamic(f"disk:{mb}", role)
    item["disk"] = {"persistence": {"id": persistence_id, "principal": "ops"},
                    "volume": {"container_path": path, "mode": "RW"}}
    return [item]


def _checkpoints(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.message for e in effects if isinstance(e, ToAgent) and e.message["type"] == "CHECKPOINT_RESOURCES"]


def test_reserve_then_create_a_volume_in_one_accept_and_get_it_back_for_the_role_only() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:4;mem:1024;disk:1000")
    db = _subscribe(world, "db", "db")
    (offer,) = offers_in(world.allocate(1.0))[db]
    operations = [
        {"type": "RESERVE", "reserve": {"resources": _dynamic("cpus:1;mem:128;disk:100", "db")}},
        {"type": "CREATE", "create": {"volumes": _volume("db", 100, "pg")}},
    ]
    effects = world.accept(db, [offer["id"]["value"]], operations, 0.0, 2.0)
    *_, last = _checkpoints(effects)
    kept = Resources.from_json(last["resources"])
    assert [volume_of(k) for k in kept if k.name == "disk"] == [{"id": "pg", "container_path": "data", "mode": "RW"}]
    assert world.agents[agent_id].total.reserved("db").scalar("cpus") == 1.0
    other = _subscribe(world, "web", "web")
    offers = offers_in(world.allocate(3.0))
    assert all(k.role == "*" for o in offers.get(other, []) for k in Resources.from_json(o["resources"]))
    (again,) = offers[db]
    volume_keys = [k for k in Resources.from_json(again["resources"]) if volume_of(k) is not None]
    assert len(volume_keys) == 1 and volume_keys[0].role == "db"


def test_operator_reserve_rejects_what_is_not_there_and_changes_nothing() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:2;mem:512")
    before = world.agents[agent_id].total
    with pytest.raises(CallRejected) as too_much:
        world.operator("RESERVE_RESOURCES", {"agent_id": {"value": agent_id},
                                                           "resources": _dynamic("cpus:3", "ads")}, 1.0)
    assert too_much.value.status == 409
    with pytest.raises(CallRejected) as star:
        world.operator("RESERVE_RESOURCES", {"agent_id": {"value": agent_id},
                                                           "resources": Resources.parse("cpus:1").to_json()}, 1.0)
    assert star.value.status == 400 and "DYNAMIC" in star.value.message
    with pytest.raises(CallRejected) as unknown:
        world.operator("UNRESERVE_RESOURCES", {"agent_id": {"value": "nope"}, "resources": []}, 1.0)
    assert unknown.value.status == 400 and "nope" in unknown.value.message
    assert world.agents[agent_id].total == before
    effects = world.operator("RESERVE_RESOURCES", {"agent_id": {"value": agent_id},
                                                                 "resources": _dynamic("cpus:1", "ads")}, 1.0)
    assert _checkpoints(effects) and world.agents[agent_id].total.reserved("ads").scalar("cpus") == 1.0
    world.operator("UNRESERVE_RESOURCES", {"agent_id": {"value": agent_id},
                                                         "resources": _dynamic("cpus:1", "ads")}, 2.0)
    assert world.agents[agent_id].total == before


def test_a_volume_in_use_cannot_be_destroyed() -> None:
    world = World()
    agent_id = register_agent(world, "cpus:4;mem:1024;disk:1000")
    target = {"agent_id": {"value": agent_id}}
    world.operator("RESERVE_RESOURCES", {**target, "resources": _dynamic("disk:100;cpus:1;mem:64",
                                                                                        "db")}, 1.0)
    world.operator("CREATE_VOLUMES", {**target, "volumes": _volume("db", 100, "pg")}, 1.0)
    db = _subscribe(world, "db", "db")
    (offer,) = offers_in(world.allocate(2.0))[db]
    task = {"name": "t", "task_id": {"value": "t"}, "agent_id": offer["agent_id"], "command": {"value": "true"},
            "resources": _dynamic("cpus:1;mem:64", "db") + _volume("db", 100, "pg")}
    effects = world.accept(db, [offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                                    0.0, 3.0)
    assert any(isinstance(e, ToAgent) and e.message["type"] == "RUN_TASK" for e in effects)
    with pytest.raises(CallRejected) as busy:
        world.operator("DESTROY_VOLUMES", {**target, "volumes": _volume("db", 100, "pg")}, 4.0)
    assert busy.value.status == 409


def test_weights_and_quota_are_validated_then_applied_after_the_registry_write() -> None:
    world = World()
    register_agent(world, "cpus:8;mem:4096")
    with pytest.raises(CallRejected, match=r"weight_infos\[0\]\.weight' must be positive"):
        world.setting("UPDATE_WEIGHTS", {"weight_infos": [{"role": "eng", "weight": 0}]})
    with pytest.raises(CallRejected, match="top-level"):
        world.setting("UPDATE_QUOTA", {"quota_configs": [{"role": "eng/web", "guarantees": {"cpus": {"value": 1}}}]})
    with pytest.raises(CallRejected, match="exceed the cluster"):
        world.setting("UPDATE_QUOTA", {"quota_configs": [{"role": "eng", "guarantees": {"cpus": {"value": 9}}}]})
    setting = world.setting("UPDATE_WEIGHTS", {"weight_infos": [{"role": "eng", "weight": 3}]})
    assert world.machine.settings.weights == {}  # nothing changes before the registry has it
    world.persisted(setting, 1.0)
    assert world.allocator.weights() == {"eng": 3.0}
    quota = world.setting("UPDATE_QUOTA", {"quota_configs": [{"role": "eng", "guarantees": {"cpus": {"value": 2}},
                                                              "limits": {"cpus": {"value": 4}}}]})
    world.persisted(quota, 1.0)
    assert world.machine.settings.quota_json()["configs"] == [
        {"role": "eng", "guarantees": {"cpus": {"value": 2.0}}, "limits": {"cpus": {"value": 4.0}}}]
    restarted = World(settings={"weights": setting.value, "quota": quota.value})
    assert restarted.allocator.weights() == {"eng": 3.0} and "eng" in restarted.allocator.quotas()


def test_quota_limit_caps_what_a_role_is_offered() -> None:
    world = World()
    register_agent(world, "cpus:8;mem:4096")
    world.persisted(SaveSetting("quota", {"eng": {"guarantees": {}, "limits": {"cpus": 3}}}), 0.0)
    eng = _subscribe(world, "eng", "eng")
    (offer,) = offers_in(world.allocate(1.0))[eng]
    assert Resources.from_json(offer["resources"]).scalar("cpus") == 3.0


def _one_running_task() -> tuple[World, str, str]:
    """An agent (hostname h1) with one task of framework A on it."""
    world = World()
    agent_id = register_agent(world, "cpus:4;mem:1024")
    fid = subscribe(world, "A")
    (offer,) = offers_in(world.allocate(1.0))[fid]
    task = {"name": "t", "task_id": {"value": "t"}, "agent_id": offer["agent_id"], "command": {"value": "sleep 9"},
            "resources": Resources.parse("cpus:1;mem:64").to_json()}
    world.accept(fid, [offer["id"]["value"]], [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                          0.0, 1.5)
    return world, agent_id, fid


def test_maintenance_schedule_marks_offers_and_sends_inverse_offers() -> None:
    world, agent_id, fid = _one_running_task()  # agent hostname h1
    schedule = {"windows": [{"machine_ids": [{"hostname": "h1"}],
                             "unavailability": {"start": {"nanoseconds": 10**18}}}]}
    effects = world.persisted(world.setting("UPDATE_MAINTENANCE_SCHEDULE", {"schedule": schedule}), 2.0)
    (inverse,) = [e.event["inverse_offers"]["inverse_offers"][0] for e in effects
                  if isinstance(e, ToFramework) and e.event["type"] == "INVERSE_OFFERS"]
    assert inverse["agent_id"] == {"value": agent_id}
    assert inverse["unavailability"] == {"start": {"nanoseconds": 10**18}}
    (again,) = offers_in(world.allocate(3.0))[fid]
    assert again["unavailability"] == {"start": {"nanoseconds": 10**18}}
    world.inverse_answer(fid, [inverse["id"]["value"]], True, None, 4.0)
    (draining,) = world.machine.schedule.status_json()["draining_machines"]
    assert draining["id"] == {"hostname": "h1"} and draining["statuses"][0]["status"] == "ACCEPT"
    effects = world.persisted(world.setting("START_MAINTENANCE", {"machines": [{"hostname": "h1"}]}), 5.0)
    assert agent_id not in world.agents
    assert world.machine.schedule.status_json()["down_machines"] == [{"hostname": "h1"}]
    with pytest.raises(CallRejected, match="DOWN"):
        world.register_agent({"hostname": "h1", "port": 5051, "resources": []}, "again", 6.0)
    with pytest.raises(CallRejected, match="is not DOWN"):
        world.setting("STOP_MAINTENANCE", {"machines": [{"hostname": "h2"}]})


def test_drain_kills_everything_then_drained_and_no_offers() -> None:
    world, agent_id, fid = _one_running_task()
    offers_in(world.allocate(1.8))
    effects = world.operator("DRAIN_AGENT", {"agent_id": {"value": agent_id},
                                                           "max_grace_period": "2s"}, 2.0)
    (drain,) = [e.message for e in effects if isinstance(e, ToAgent) and e.message["type"] == "DRAIN"]
    assert drain["drain_config"]["max_grace_period"] == {"nanoseconds": 2_000_000_000}
    assert [e.event["type"] for e in effects if isinstance(e, ToFramework)] == ["RESCIND"]
    assert world.agents[agent_id].drain_info["state"] == "DRAINING"
    assert not offers_in(world.allocate(3.0))
    update = {"framework_id": {"value": fid}, "status": {"task_id": {"value": "t"}, "state": "TASK_KILLED",
                                                         "reason": "REASON_AGENT_DRAINING",
                                                         "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="}}
    world.status_update(agent_id, update, 4.0)
    assert world.agents[agent_id].drain_info["state"] == "DRAINED"
    world.operator("REACTIVATE_AGENT", {"agent_id": {"value": agent_id}}, 5.0)
    assert offers_in(world.allocate(6.0))[fid]


def test_offer_timeout_rescinds_without_a_filter() -> None:
    world = World(offer_timeout=30.0)
    register_agent(world, "cpus:4;mem:1024")
    fid = subscribe(world, "A")
    effects = world.allocate(1.0)
    (offer,) = offers_in(effects)[fid]
    assert StartTimer(("offer-timeout", offer["id"]["value"]), 31.0) in effects
    rescinded = world.timer(("offer-timeout", offer["id"]["value"]), 31.0)
    assert [e.event["type"] for e in rescinded if isinstance(e, ToFramework)] == ["RESCIND"]
    assert offers_in(world.allocate(31.5))[fid]  # offered again at once: no filter


def test_revocable_resources_go_only_to_frameworks_that_take_them() -> None:
    from meseta.core.reservations import as_revocable

    world = World()
    effects = world.register_agent(
        {"hostname": "h1", "port": 5051,
         "resources": (Resources.parse("cpus:2;mem:512") + as_revocable(Resources.parse("cpus:3"))).to_json()},
        "agent-stream", 0.0)
    world.persisted(next(e.operation for e in effects if hasattr(e, "operation")), 0.0)
    plain = _subscribe(world, "plain", "*")
    (offer,) = offers_in(world.allocate(1.0))[plain]
    assert not any("revocable" in r for r in offer["resources"])
    taker = _subscribe(world, "taker", "*", ("REVOCABLE_RESOURCES",))
    (rev,) = offers_in(world.allocate(2.0))[taker]
    assert [r["scalar"]["value"] for r in rev["resources"] if "revocable" in r] == [3.0]
