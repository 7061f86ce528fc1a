"""The master's share of the probe that found ~250 answers of 500 (issue 14), each a regression test
against a live cluster: the call is refused naming the field, nothing is logged, and nothing is lost
(R1 stranded an agent's resources for good)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.core.resources import Resources
from meseta.protocol.agent_wire import AGENT_CALL_PATH, STREAM_ID_HEADER
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.raw_framework import RawFramework

pytestmark = pytest.mark.integration
DEEP = b'{"type": "GET_HEALTH", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(Path(tmp_path_factory.mktemp("hostile-master"))) as running:
        yield running
        assert running.logged_errors() == [] and running.deposed == []


def offered(raw: RawFramework) -> Resources:
    offers = raw.next_event("OFFERS")["offers"]["offers"]
    return sum((Resources.from_json(o["resources"]) for o in offers), Resources())


def test_r1_a_malformed_accept_is_refused_and_strands_nothing(cluster: LocalCluster) -> None:
    with RawFramework(cluster.master) as raw:
        offer = raw.next_event("OFFERS")["offers"]["offers"][0]
        task = {"name": "t", "task_id": {"value": "t1"}, "agent_id": offer["agent_id"], "command": {"value": "true"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": 0.1}]}
        for operation, field in (
                ({"type": "LAUNCH", "launch": {"task_infos": [task]}}, "$.resources[0].scalar"),
                ({"type": "LAUNCH_GROUP", "launch_group": {"task_group": 1}}, "task_group"),
        ):
            answer = raw.call("ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [operation]})
            assert answer.status_code == 400 and field in answer.text, answer.text
        held = Resources.from_json(offer["resources"])
        assert raw.call("DECLINE", decline={"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}}
                        ).status_code == 202  # the offer was still the framework's: nothing was used
        assert raw.call("TEARDOWN").status_code == 202
    with RawFramework(cluster.master) as newcomer:
        assert offered(newcomer).contains(held), "the agent's resources were stranded"


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/scheduler", AGENT_CALL_PATH])
def test_json_nested_a_thousand_deep_is_a_400(cluster: LocalCluster, path: str) -> None:
    answer = httpx.post(f"http://{cluster.master}{path}", content=DEEP, headers=JSON)
    assert answer.status_code == 400 and "nested deeper" in answer.text


@pytest.mark.parametrize("call, field", [
    ({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": "x"}}, "drain_agent.agent_id"),
    ({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [
        {"role": "r", "limits": {"cpus": {"value": 1.7976931348623157e308}}}]}}, "limits.cpus.value"),
    ({"type": "SET_QUOTA", "set_quota": {"quota_request": {"role": "*", "force": True, "guarantee": [
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}]}}}, "default role"),
])
def test_operator_calls_that_answered_500(cluster: LocalCluster, call: dict[str, Any], field: str) -> None:
    answer = httpx.post(f"http://{cluster.master}/api/v1", json=call)
    assert answer.status_code == 400 and field in answer.text, answer.text
    assert httpx.post(f"http://{cluster.master}/api/v1", json={"type": "GET_QUOTA"}).json()["get_quota"][
        "status"].get("configs", []) == []  # nothing was stored


def test_subscribe_with_roles_a_number_is_a_400(cluster: LocalCluster) -> None:
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "", "name": "x", "roles": 5}}}
    answer = httpx.post(f"http://{cluster.master}/api/v1/scheduler", json=body)
    assert answer.status_code == 400 and "$.roles" in answer.text


def test_r4_a_list_as_a_task_state_never_reaches_the_master(cluster: LocalCluster) -> None:
    """The agent refuses it from its executor (agent tests); the master refuses it from an agent."""
    node = cluster.agent_nodes[0]
    call = {"type": "STATUS_UPDATE", "agent_id": {"value": node.machine.agent_id}, "update": {
        "framework_id": {"value": "f"}, "status": {"task_id": {"value": "t"}, "state": ["TASK_RUNNING"]}}}
    answer = httpx.post(f"http://{cluster.master}{AGENT_CALL_PATH}", json=call,
                        headers={STREAM_ID_HEADER: node.stream_id or ""})
    assert answer.status_code == 400 and "$.state" in answer.text
    metrics = httpx.get(f"http://{cluster.master}/metrics/snapshot")
    assert metrics.status_code == 200
