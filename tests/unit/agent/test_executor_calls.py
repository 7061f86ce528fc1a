"""Executor calls at the agent's edge (``meseta.agent.executor_calls``), held to the master's.

The agent acknowledges an executor's update at once and then owes the master that update, in
order, until it is acknowledged: an update the agent takes but the master refuses would hold up
every later update of its task for good. So whatever the edge and the machine accept must pass
the master's own parser of agent calls, whichever field a hostile executor bends.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from meseta.agent.effects import ToMaster
from meseta.agent.executor_calls import CallInvalid, decode_call, status_json
from meseta.agent.machine import AgentMachine, ExecutorCallRejected
from meseta.agent.options import AgentOptions
from meseta.core.resources import Resources
from meseta.master.validation.agents import parse_agent_call
from meseta.protocol.json_edge import decode_json
from meseta.testing.mutations import Mutation, encode, mutated, nested

AGENT, FID, EXECUTOR, TASK = "agent-1", "fw-1", "ex", "held"
IDS = {"framework_id": {"value": FID}, "executor_id": {"value": EXECUTOR}}
# A valid UPDATE with every TaskStatus member the agent takes, so that each can be mutated.
UPDATE = {"type": "UPDATE", **IDS, "update": {"status": {
    "task_id": {"value": TASK}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR",
    "uuid": "AAAAAAAAAAAAAAAAAAAAAA==", "message": "m", "reason": "REASON_RECONCILIATION", "data": "aGk=",
    "agent_id": {"value": AGENT}, "executor_id": {"value": EXECUTOR}, "timestamp": 1.5e9, "healthy": True,
    "labels": {"labels": [{"key": "k", "value": "v"}]}, "check_status": {"type": "COMMAND"},
    "container_status": {"executor_pid": 7}, "unreachable_time": {"nanoseconds": 5},
    "limitation": {"resources": []}}}}


def subscribed_machine() -> AgentMachine:
    """A machine whose custom executor runs the task ``held`` and has subscribed."""
    machine = AgentMachine(AgentOptions(), Resources.parse("cpus:4;mem:1024"), [], agent_id=AGENT, seed=1)
    task = {"task_id": {"value": TASK}, "name": TASK, "agent_id": {"value": AGENT},
            "executor": {"executor_id": {"value": EXECUTOR}, "command": {"value": "./executor"}}}
    framework = {"id": {"value": FID}, "user": "", "name": "f"}
    machine.handle_master_message({"type": "RUN_TASK", "framework_info": framework, "task": task}, 0.0)
    run = machine.executors[(FID, EXECUTOR)]
    machine.handle_executor_launched(run.key, 0.0)
    machine.handle_executor_subscribed(run.key, [], 0.0)
    return machine


def forwarded(body: bytes) -> list[dict[str, Any]] | None:
    """The agent calls the update becomes (as the actor posts them), or None when it is refused."""
    try:
        call = decode_call(body)
    except CallInvalid:
        return None
    if call.update is None:
        return None
    machine = subscribed_machine()
    try:
        run = machine.executor_for_call(call.framework_id.value, call.executor_id.value)
        effects = machine.handle_executor_update(run, status_json(call.update.status), 1.0)
    except ExecutorCallRejected:
        return None
    return [{**e.call, "agent_id": {"value": AGENT}} for e in effects if isinstance(e, ToMaster)]


def test_the_template_itself_reaches_the_master() -> None:
    [call] = forwarded(encode(UPDATE)) or [None]
    assert call is not None and parse_agent_call(call)[1].task_id == TASK  # type: ignore[union-attr]


def test_a_time_beyond_int64_is_refused_at_the_edge() -> None:
    bent = json.loads(json.dumps(UPDATE))
    bent["update"]["status"]["unreachable_time"] = {"nanoseconds": 2**70}
    try:
        decode_call(encode(bent))
    except CallInvalid as exc:
        assert "unreachable_time" in exc.message
    else:
        raise AssertionError("an int64 field beyond int64 was accepted")


def test_free_form_members_are_bounded_with_the_whole_body() -> None:
    """check_status, container_status, limitation and unacknowledged_tasks are any JSON: the
    body's depth bound and msgspec's finite-number and Unicode rules cover them too."""
    subscribe = {"type": "SUBSCRIBE", **IDS, "subscribe": {"unacknowledged_tasks": [{"task_id": {"value": TASK}}]}}
    for template, where in ((UPDATE, ("update", "status", "check_status")),
                            (UPDATE, ("update", "status", "container_status")),
                            (UPDATE, ("update", "status", "limitation")),
                            (subscribe, ("subscribe", "unacknowledged_tasks", 0))):
        for hostile in (nested(40), {"x": float("inf")}, {"x": "\ud800"}, {"x": float("nan")}):
            bent = json.loads(json.dumps(template))
            parent = bent
            for step in where[:-1]:
                parent = parent[step]
            parent[where[-1]] = hostile
            try:
                decode_call(encode(bent))
            except CallInvalid:
                continue
            raise AssertionError(f"{where} = {hostile!r:.40} was accepted")


def test_an_unknown_reason_is_dropped_as_mesos_drops_an_unknown_enum_name() -> None:
    for reason, kept in (("REASON_RECONCILIATION", True), ("REASON_TASK_UNKNOWN", True), ("REASON_BOGUS", False),
                         ("REASON_REASON_", False)):
        bent = json.loads(json.dumps(UPDATE))
        bent["update"]["status"]["reason"] = reason
        call = decode_call(encode(bent))
        assert call.update is not None
        assert ("reason" in status_json(call.update.status)) is kept, reason


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(UPDATE))
def test_what_the_agent_accepts_the_master_accepts(mutation: Mutation) -> None:
    for call in forwarded(mutation.body) or []:
        parse_agent_call(decode_json(json.dumps(call).encode(), "agent message"))  # raises on a refusal
