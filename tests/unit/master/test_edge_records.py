"""The master's edge: every hostile call becomes one CallRejected naming the field (or, for a
SUBSCRIBE whose FrameworkInfo breaks a rule, a refusal), before anything changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meseta.master.validation import agents as agent_calls
from meseta.master.validation import operator as ops
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected
from meseta.master.validation.tasks import InvalidTask, TaskSpec
from meseta.protocol.scheduler_calls import CallError, decode_call

FID = {"value": "f1"}
TASK = {"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "a1"}, "command": {"value": "true"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}


def parse(body: dict[str, Any]) -> calls.SchedulerCall:
    return calls.parse_call(decode_call(json.dumps(body).encode()))


def accept(*operations: Any) -> dict[str, Any]:
    return {"type": "ACCEPT", "framework_id": FID,
            "accept": {"offer_ids": [{"value": "o1"}], "operations": list(operations)}}


@pytest.mark.parametrize("operation, field", [
    ({"type": "LAUNCH", "launch": {"task_infos": [{**TASK, "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": 0.1}]}]}}, "$.resources[0].scalar"),  # R1
    ({"type": "LAUNCH_GROUP", "launch_group": {"executor": {"executor_id": {"value": "e"}, "type": "DEFAULT"},
                                               "task_group": 1}}, "task_group' must be an object"),  # R1
    ({"type": "LAUNCH", "launch": {"task_infos": [{**TASK, "name": 7}]}}, "$.name"),
    ({"type": "LAUNCH", "launch": {"task_infos": "t"}}, "task_infos' must be a list"),
    ({"type": "LAUNCH", "launch": {"task_infos": [{**TASK, "kill_policy": {"grace_period": {"nanoseconds": 2**70}}}]}},
     "$.kill_policy.grace_period.nanoseconds"),
    ({"type": "RESERVE", "reserve": {"resources": [{"name": "cpus", "scalar": "x"}]}}, "$.scalar"),
    (7, "$.accept.operations[0]"),
    ({"type": "GROW_VOLUME", "grow_volume": {}}, "'accept.operations[0].type' 'GROW_VOLUME' is not supported"),
    ({"type": "CREATE_DISK"}, "'accept.operations[0].type' 'CREATE_DISK' is not supported"),
])
def test_accept_that_would_not_parse_is_refused_whole(operation: Any, field: str) -> None:
    with pytest.raises((CallRejected, CallError)) as refused:
        parse(accept(operation))
    status, message = getattr(refused.value, "status", None), str(refused.value)
    assert status == 400 and field in message
    assert message.startswith(("Failed to validate scheduler::Call: ", "Failed to parse body into Call: "))


@pytest.mark.parametrize("task, problem", [
    ({**TASK, "name": None}, "Task 'name' is required"),
    ({**TASK, "task_id": {"value": "a/b"}}, "Task has an invalid ID"),
    ({**TASK, "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.7976931348623157e308}}]},
     "Task has invalid resources"),
    ({**TASK, "resources": []}, "Task uses no resources"),
    ({**TASK, "executor": {"executor_id": {"value": "e"}, "command": {"value": "x"}}}, "not both"),
    ({**TASK, "data": "%%%"}, "'data' is not valid base64"),
    ({**TASK, "container": {"type": "DOCKER", "docker": {"image": "a", "privileged": True}}},
     "container.docker.privileged"),
    ({**TASK, "command": None, "executor": {"executor_id": {"value": "e"}, "command": {"value": "x"},
                                            "container": {"type": "APPC"}}}, "Executor's ContainerInfo"),
])
def test_tasks_that_break_a_rule_become_task_errors(task: dict[str, Any], problem: str) -> None:
    record = parse(accept({"type": "LAUNCH", "launch": {"task_infos": [task, TASK]}}))
    assert isinstance(record, calls.Accept)
    launch = record.operations[0]
    assert isinstance(launch, calls.Launch)
    bad, good = launch.tasks
    assert isinstance(bad, InvalidTask) and problem in bad.message
    assert isinstance(good, TaskSpec) and good.resources.scalar("cpus") == 0.1


@pytest.mark.parametrize("info, status", [
    ({"user": "u", "name": "x", "roles": 5}, 400),  # would not parse: a 400
    ({"user": "u", "name": "x", "failover_timeout": "soon"}, 400),
    ({"user": "u", "name": "x", "role": "a b"}, None),  # parses, breaks a rule: refused (200, ERROR)
    ({"user": "u", "name": "x", "failover_timeout": 1e300}, None),
    ({"user": "u"}, None),
    ({"user": "u", "name": "x", "offer_filters": {"web": {"min_allocatable_resources": {}}}}, None),
])
def test_subscribe_with_a_bad_framework_info(info: dict[str, Any], status: int | None) -> None:
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if status is not None:
        with pytest.raises(CallRejected) as refused:
            parse(body)
        assert refused.value.status == status and "framework_info" in refused.value.message
        return
    record = parse(body)
    assert isinstance(record, calls.Subscribe) and record.info is None and record.refusal


def test_subscribe_refusal_names_offer_filters() -> None:
    info = {"user": "u", "name": "x", "offer_filters": {"web": {}}}
    record = parse({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}})
    assert isinstance(record, calls.Subscribe) and record.refusal is not None
    assert "'subscribe.framework_info.offer_filters' is not supported" in record.refusal
    assert isinstance(parse({"type": "SUBSCRIBE", "subscribe": {"framework_info": {**info, "offer_filters": {}}}}),
                      calls.Subscribe)  # an empty map asks for nothing


@pytest.mark.parametrize("body, field", [
    ({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "x"},
                                         "offer_constraints": {"role_constraints": {}}}},
     "'subscribe.offer_constraints' is not supported"),
    ({"type": "UPDATE_FRAMEWORK", "framework_id": FID,
      "update_framework": {"framework_info": {"user": "u", "name": "x", "id": FID},
                           "offer_constraints": {"role_constraints": {"*": {}}}}},
     "'update_framework.offer_constraints' is not supported"),
    ({"type": "UPDATE_FRAMEWORK", "framework_id": FID,
      "update_framework": {"framework_info": {"user": "u", "name": "x", "id": FID, "offer_filters": {"*": {}}}}},
     "'update_framework.framework_info.offer_filters' is not supported"),
])
def test_what_meseta_does_not_carry_out_is_refused_by_name(body: dict[str, Any], field: str) -> None:
    with pytest.raises(CallRejected) as refused:
        parse(body)
    assert refused.value.status == 400 and field in refused.value.message


def test_deep_json_is_a_400_not_a_recursion_error() -> None:
    with pytest.raises(CallError) as refused:
        decode_call(b'{"type": "REVIVE", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert refused.value.status == 400 and "nested deeper" in str(refused.value)


@pytest.mark.parametrize("kind, payload, field", [
    ("DRAIN_AGENT", {"agent_id": "x"}, "drain_agent.agent_id"),
    ("DRAIN_AGENT", {"agent_id": {"value": "a"}, "max_grace_period": {"nanoseconds": 1e30}}, "max_grace_period"),
    ("DRAIN_AGENT", {"agent_id": {"value": "a"}, "mark_gone": "yes"}, "mark_gone"),
    ("RESERVE_RESOURCES", {"agent_id": {"value": "a"}, "resources": [{"name": "cpus", "scalar": 5}]}, "scalar"),
    ("TEARDOWN", {"framework_id": 3}, "teardown.framework_id"),
])
def test_operator_actions_name_the_bad_field(kind: str, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(CallRejected) as refused:
        ops.parse_agent_action(kind, payload)
    assert refused.value.status == 400 and field in refused.value.message


@pytest.mark.parametrize("kind, payload, field", [
    ("UPDATE_QUOTA", {"quota_configs": [{"role": "r", "limits": {"cpus": {"value": 1.7976931348623157e308}}}]},
     "limits.cpus.value"),
    ("UPDATE_WEIGHTS", {"weight_infos": [{"role": "r", "weight": -1}]}, "weight"),
    ("SET_QUOTA", {"quota_request": {"role": "*", "force": True, "guarantee": [  # found by the fuzz: it capped
        {"name": "mem", "scalar": {"value": 16}}]}}, "default role '*'"),  # every framework in '*'
    ("UPDATE_QUOTA", {"quota_configs": [{"role": "*", "limits": {"cpus": {"value": 1}}}]}, "default role '*'"),
    ("SET_QUOTA", {"quota_request": {"role": "r", "guarantee": [{"name": "cpus", "scalar": 1}]}}, "scalar.value"),
    ("UPDATE_MAINTENANCE_SCHEDULE", {"schedule": {"windows": [{"machine_ids": [{"hostname": "h"}],
                                                               "unavailability": {"start": {"nanoseconds": 2**70}}}]}},
     "unavailability.start"),
])
def test_settings_name_the_bad_field(kind: str, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(CallRejected) as refused:
        ops.parse_setting(kind, payload)
    assert refused.value.status == 400 and field in refused.value.message


@pytest.mark.parametrize("body, field", [
    ({"type": "STATUS_UPDATE", "update": {"framework_id": FID, "status": {
        "task_id": {"value": "t"}, "state": ["TASK_RUNNING"]}}}, "$.state"),  # R4, as the master sees it
    ({"type": "STATUS_UPDATE", "update": {"framework_id": FID, "status": {
        "task_id": {"value": "t"}, "state": "TASK_RUNNING", "uuid": "short"}}}, "uuid"),
    ({"type": "STATUS_UPDATE", "update": {"framework_id": FID, "latest_state": ["x"], "status": {
        "task_id": {"value": "t"}, "state": "TASK_RUNNING"}}}, "latest_state"),
    ({"type": "EXECUTOR_EXITED", "framework_id": FID, "executor_id": {"value": "e"}, "status": 2**40},
     "status"),
])
def test_agent_calls_name_the_bad_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(CallRejected) as refused:
        agent_calls.parse_agent_call({**body, "agent_id": {"value": "a1"}})
    assert refused.value.status == 400 and field in refused.value.message


def test_agent_info_is_kept_in_its_checked_form() -> None:
    """The fuzzer found `"port": null` admitted and every later offer from that agent failing."""
    call = agent_calls.parse_stream_call({"type": "REGISTER", "agent_info": {
        "hostname": "h", "port": None, "attributes": [{"name": "rack", "text": {"value": "a"}}],
        "resources": [{"name": "cpus", "scalar": {"value": "2"}}]}})
    assert isinstance(call, agent_calls.Registration)
    assert call.info["port"] == 5051 and call.info["attributes"] == [
        {"name": "rack", "type": "TEXT", "text": {"value": "a"}}]
    assert call.total.scalar("cpus") == 2.0
    for attribute, problem in (({"name": "rack", "type": "SCALAR"}, "needs its scalar value"),
                               ({"type": "TEXT", "text": {"value": "a"}}, "name' is required")):
        with pytest.raises(CallRejected, match=problem):
            agent_calls.parse_stream_call({"type": "REGISTER", "agent_info": {"hostname": "h",
                                                                               "attributes": [attribute]}})


@pytest.mark.parametrize("executor, task, problem", [
    ({"executor_id": {"value": "e"}, "type": "DEFAULT", "container": {"type": "MESOS", "network_infos": [
        {"name": "n"}]}}, {}, "'container' is not supported for a DEFAULT executor"),
    ({"executor_id": {"value": "e"}, "type": "DEFAULT"},
     {"container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "a"}}}}},
     "in a task group: 'container' is not supported"),
])
def test_containers_a_task_group_cannot_have_are_refused(executor: dict[str, Any], task: dict[str, Any],
                                                         problem: str) -> None:
    """The default executor runs a group's tasks on the host: an image or network there is refused,
    not ignored."""
    group = {"executor": executor, "task_group": {"tasks": [{**TASK, **task}]}}
    record = parse(accept({"type": "LAUNCH_GROUP", "launch_group": group}))
    assert isinstance(record, calls.Accept)
    launch = record.operations[0]
    assert isinstance(launch, calls.LaunchGroup) and launch.group.problem is not None
    assert problem in launch.group.problem
