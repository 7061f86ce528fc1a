"""The master's surfaces fuzzed live: valid calls with one field made hostile, against a real cluster.

One LocalCluster for the module (a master, one agent, real HTTP on loopback) with a bystander: a
pymesos framework whose task runs throughout. Every surface gets a few hundred mutated calls
(meseta.testing.mutations); each answer must be below 500. Afterwards: nothing logged an error or
a traceback, the master was never deposed, its invariants hold (checked on its own loop), the
bystander's task still runs, and a new framework still gets offers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.master.invariants import validate
from meseta.protocol.agent_wire import AGENT_CALL_PATH, AGENT_STREAM_PATH, STREAM_ID_HEADER
from meseta.protocol.recordio import RecordIODecoder
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.mutations import Mutation, mutated
from meseta.testing.raw_framework import RawFramework
from meseta.testing.waiting import wait_until

pymesos = pytest.importorskip("pymesos")
from meseta.testing.pymesos_recorder import Recorder, start_driver, task  # noqa: E402

pytestmark = pytest.mark.integration
FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSON = {"Content-Type": "application/json"}
NOBODY = {"value": "no-such-agent"}  # calls that would act on an agent name none: only parsing is fuzzed


class Bystander:
    """A pymesos framework with one task running, and the cluster around it."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.recorder = Recorder()
        self.driver = start_driver(cluster.master, self.recorder)
        offer = self.recorder.take_offers()[0]
        self.agent_id = offer["agent_id"]["value"]
        self.driver.launchTasks(offer["id"], [task("bystander", offer, command={"value": "sleep 600"})])
        self.recorder.wait(lambda: "TASK_RUNNING" in self.recorder.states("bystander"), what="the bystander")
        self.recorder.on_offers = lambda driver, offers: driver.declineOffer(  # keeps nothing it is offered
            [o["id"] for o in offers], {"refuse_seconds": 3600})
        self.client = httpx.Client(base_url=f"http://{cluster.master}", timeout=30)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        response = self.client.post(path, content=body, headers={**JSON, **(headers or {})})
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
        return response


@pytest.fixture(scope="module")
def bystander(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bystander]:
    with LocalCluster(Path(tmp_path_factory.mktemp("fuzz-master"))) as cluster:
        watched = Bystander(cluster)
        try:
            yield watched
            check_the_cluster_is_whole(watched)
        finally:
            watched.driver.stop()
            watched.driver.join()
            watched.client.close()


def check_the_cluster_is_whole(bystander: Bystander) -> None:
    cluster = bystander.cluster
    machine = cluster.master_actor.machine
    assert cluster.on_loop(lambda: validate(machine.books, machine.core.allocator)) == []
    assert cluster.logged_errors() == [] and cluster.deposed == []
    tasks = bystander.client.get("/master/tasks").json()["tasks"]
    assert [t["state"] for t in tasks if t["id"] == "bystander"] == ["TASK_RUNNING"]
    newcomer = Recorder()
    driver = start_driver(cluster.master, newcomer)
    try:
        assert newcomer.take_offers(), "a new framework got no offer after the fuzzing"
    finally:
        driver.stop()
        driver.join()


# ----------------------------------------------------------------------------- operator API

OPERATOR_CALLS: list[dict[str, Any]] = [
    {"type": "GET_AGENTS"},
    {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "fuzz", "weight": 2.0}]}},
    {"type": "UPDATE_QUOTA", "update_quota": {"force": False, "quota_configs": [
        {"role": "fuzzq", "guarantees": {"cpus": {"value": 0.1}}, "limits": {"cpus": {"value": 1.0}}}]}},
    {"type": "SET_QUOTA", "set_quota": {"quota_request": {"role": "fuzzs", "force": True, "guarantee": [
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}]}}},
    {"type": "REMOVE_QUOTA", "remove_quota": {"role": "fuzzs"}},
    {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": [
        {"machine_ids": [{"hostname": "nowhere", "ip": "10.0.0.9"}],
         "unavailability": {"start": {"nanoseconds": 10**18}, "duration": {"nanoseconds": 10**9}}}]}}},
    {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [{"hostname": "nowhere", "ip": "10.0.0.9"}]}},
    {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": NOBODY, "max_grace_period": {"seconds": 1, "nanos": 5},
                                            "mark_gone": False}},
    {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": NOBODY}},
    {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": NOBODY}},
    {"type": "RESERVE_RESOURCES", "reserve_resources": {"agent_id": NOBODY, "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}, "role": "fuzz",
         "reservations": [{"type": "DYNAMIC", "role": "fuzz", "principal": "p"}]}]}},
    {"type": "CREATE_VOLUMES", "create_volumes": {"agent_id": NOBODY, "volumes": [
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 1}, "role": "fuzz",
         "reservations": [{"type": "DYNAMIC", "role": "fuzz"}],
         "disk": {"persistence": {"id": "v"}, "volume": {"container_path": "v", "mode": "RW"}}}]}},
    {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "no-such-framework"}}},
]


@settings(FUZZ, max_examples=400)
@given(mutation=st.sampled_from(OPERATOR_CALLS).flatmap(mutated))
def test_operator_api(bystander: Bystander, mutation: Mutation) -> None:
    bystander.post("/api/v1", mutation.body)


LEGACY = {
    "/weights": [{"role": "fuzz", "weight": 3.0}],
    "/quota": {"role": "fuzzl", "force": True, "guarantee": [{"name": "cpus", "type": "SCALAR",
                                                               "scalar": {"value": 0.1}}]},
    "/maintenance/schedule": {"windows": [{"machine_ids": [{"hostname": "nowhere"}],
                                           "unavailability": {"start": {"nanoseconds": 1}}}]},
    "/machine/up": [{"hostname": "nowhere"}],
}


@FUZZ
@given(path=st.sampled_from(sorted(LEGACY)), data=st.data())
def test_legacy_operator_endpoints(bystander: Bystander, path: str, data: st.DataObject) -> None:
    mutation = data.draw(mutated(LEGACY[path]))
    bystander.post(path, mutation.body)
    form = {"slaveId": "no-such-agent", "resources": '[{"name": "cpus", "scalar": {"value": 1}}]'}
    for path in ("/reserve", "/unreserve", "/create-volumes", "/destroy-volumes"):
        for name, hostile in (("resources", mutation.body.decode()), ("slaveId", mutation.where)):
            answer = bystander.client.post(path, data={**form, name: hostile})
            assert answer.status_code < 500, (path, answer.text[:300])


HOSTILE_ROLES = ["", "*", ".", "..", "a b", "%ED%A0%80", "%00", "%FF%FE", "a%2Fb", "x" * 8_000, "-r", "\u00e9"]


@FUZZ
@given(role=st.one_of(st.sampled_from(HOSTILE_ROLES),
                      st.text(max_size=40).map(lambda text: quote(text, safe="/%", errors="surrogatepass"))))
def test_quota_removal_by_path(bystander: Bystander, role: str) -> None:
    """DELETE /quota/<role> with the role in the path: a 4xx (or a 200 for a role that has one),
    and the quota of every other role kept."""
    before = bystander.client.get("/quota").json()
    answer = bystander.client.delete("/quota/" + role)
    assert answer.status_code < 500, (role[:40], answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert bystander.client.get("/quota").json() == before


# ----------------------------------------------------------------------------- the agent protocol

@pytest.fixture(scope="module")
def fake_agent(bystander: Bystander) -> Iterator[FakeAgent]:
    """A simulated agent (the real protocol) registered with the cluster's master, on its loop."""
    cluster = bystander.cluster
    runs: list[Any] = []

    def start() -> FakeAgent:
        agent = FakeAgent(cluster.master, "fuzz-agent", "cpus:0.5;mem:64",
                          httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)))
        runs.append(asyncio.ensure_future(agent.run()))
        return agent

    agent = cluster.on_loop(start)
    wait_until(lambda: agent.agent_id and agent.stream_id, 10, "the fake agent registered")
    yield agent
    cluster.on_loop(runs[0].cancel)


def agent_calls(agent_id: str, framework_id: str) -> list[dict[str, Any]]:
    ids = {"agent_id": {"value": agent_id}}
    status = {"task_id": {"value": "fuzz-task"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR",
              "uuid": "AAAAAAAAAAAAAAAAAAAAAA==", "timestamp": 1.0, "message": "m", "healthy": True}
    return [
        {"type": "STATUS_UPDATE", **ids, "update": {"framework_id": {"value": framework_id}, "status": status,
                                                     "latest_state": "TASK_RUNNING"}},
        {"type": "PONG", **ids},
        {"type": "EXECUTOR_MESSAGE", **ids, "framework_id": {"value": framework_id},
         "executor_id": {"value": "e"}, "data": "aGk="},
        {"type": "EXECUTOR_EXITED", **ids, "framework_id": {"value": framework_id}, "executor_id": {"value": "e"},
         "status": 0, "custom": True},
    ]


@FUZZ
@given(mutation=st.sampled_from(agent_calls("{agent}", "{framework}")).flatmap(mutated))
def test_agent_calls(bystander: Bystander, fake_agent: FakeAgent, mutation: Mutation) -> None:
    """Calls on a registered agent's stream (the fake agent's: a real one's are the real agent's)."""
    assert fake_agent.agent_id is not None and bystander.recorder.framework_id is not None
    body = mutation.body.replace(b"{agent}", fake_agent.agent_id.encode())
    body = body.replace(b"{framework}", bystander.recorder.framework_id.encode())
    bystander.post(AGENT_CALL_PATH, body, headers={STREAM_ID_HEADER: fake_agent.stream_id})


REGISTRATIONS = [
    {"type": "REGISTER", "agent_info": {"hostname": "fuzz-h", "port": 5051, "attributes": [
        {"name": "rack", "type": "TEXT", "text": {"value": "a"}}],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}}]}},
    {"type": "REREGISTER", "agent_info": {"hostname": "fuzz-h", "port": 5051, "id": {"value": "no-such-agent"}},
     "frameworks": [{"user": "u", "name": "f", "id": {"value": "f"}}],
     "executor_infos": [{"executor_id": {"value": "e"}, "framework_id": {"value": "f"}, "command": {"value": "x"}}],
     "tasks": [{"framework_id": {"value": "f"}, "state": "TASK_RUNNING", "executor_id": "",
                "info": {"name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "no-such-agent"}},
                "resources": []}]},
]


@FUZZ
@given(mutation=st.sampled_from(REGISTRATIONS).flatmap(mutated))
def test_agent_registration(bystander: Bystander, mutation: Mutation) -> None:
    """REGISTER and REREGISTER; an accepted one's stream is closed at once (the agent then counts
    as disconnected, as one that died would)."""
    with bystander.client.stream("POST", AGENT_STREAM_PATH, content=mutation.body, headers=JSON) as answer:
        assert answer.status_code < 500, (mutation.where, answer.status_code)


# ----------------------------------------------------------------------------- the scheduler API

class Fuzzer:
    """A framework speaking the wire by hand (kept for an hour if its stream breaks), and the
    newest offer it holds."""

    def __init__(self, master: str) -> None:
        self.raw = RawFramework(master, {"user": "", "name": "fuzzer", "failover_timeout": 3600.0,
                                         "capabilities": [{"type": "PARTITION_AWARE"}]})
        self.offer: dict[str, Any] | None = None
        self.used = False  # the offer went with a call the master took (202): its resources moved on

    def current_offer(self) -> dict[str, Any]:
        """An offer this framework holds and has not used yet: the newest one the master sent, or,
        once the last one was used (or the fuzz suppressed the framework), a fresh one asked for
        with REVIVE (an ACCEPT or DECLINE here refuses for 0 s, so it comes within an allocation).
        Every other offer it was sent is declined at once: one kept unanswered would hold its
        agent's resources, and with both agents' resources held so, a REVIVE brings nothing."""
        fresh = [offer for event in self.raw.events_now("OFFERS") for offer in event["offers"]["offers"]]
        if not fresh and (self.offer is None or self.used):
            self.raw.call("REVIVE")
            fresh = self.raw.next_event("OFFERS", 10.0)["offers"]["offers"]
        if fresh:
            spare = fresh[:-1] + ([self.offer] if self.offer is not None and not self.used else [])
            if spare:
                self.raw.call("DECLINE", decline={"offer_ids": [offer["id"] for offer in spare],
                                                  "filters": {"refuse_seconds": 0.0}})
            self.offer, self.used = fresh[-1], False
        assert self.offer is not None
        return self.offer

    def fill(self, body: bytes, offer: dict[str, Any]) -> bytes:
        for placeholder, value in (("{offer}", offer["id"]["value"]), ("{agent}", offer["agent_id"]["value"]),
                                   ("{framework}", self.raw.framework_id)):
            body = body.replace(placeholder.encode(), value.encode())
        return body


@pytest.fixture(scope="module")
def fuzzer(bystander: Bystander) -> Iterator[Fuzzer]:
    fuzzing = Fuzzer(bystander.cluster.master)
    yield fuzzing
    fuzzing.raw.close()


def scheduler_call(kind: str) -> dict[str, Any]:
    """A valid call of ``kind``, with placeholders for the ids known only when it is sent."""
    agent, task_id, offer_ids = {"value": "{agent}"}, {"value": "fuzz-task"}, [{"value": "{offer}"}]
    task = {"name": "fuzz", "task_id": task_id, "agent_id": agent, "command": {"value": "true", "shell": True},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}],
            "labels": {"labels": [{"key": "k", "value": "v"}]}, "kill_policy": {"grace_period": {"nanoseconds": 1}}}
    payloads: dict[str, dict[str, Any]] = {
        "ACCEPT": {"accept": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 0.0}, "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}},
        "LAUNCH_GROUP": {"accept": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 0.0}, "operations": [
            {"type": "LAUNCH_GROUP", "launch_group": {
                "executor": {"type": "DEFAULT", "executor_id": {"value": "fuzz-group"},
                             "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]},
                "task_group": {"tasks": [{**task, "task_id": {"value": "fuzz-member"}}]}}}]}},
        "DECLINE": {"decline": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 0.0}}},
        "REVIVE": {"revive": {"roles": ["*"]}},
        "SUPPRESS": {"suppress": {"roles": ["other"]}},
        "KILL": {"kill": {"task_id": task_id, "agent_id": agent, "kill_policy": {"grace_period": {"nanoseconds": 5}}}},
        "SHUTDOWN": {"shutdown": {"executor_id": {"value": "none"}, "agent_id": agent}},
        "ACKNOWLEDGE": {"acknowledge": {"agent_id": agent, "task_id": task_id, "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="}},
        "RECONCILE": {"reconcile": {"tasks": [{"task_id": task_id, "agent_id": agent}]}},
        "MESSAGE": {"message": {"agent_id": agent, "executor_id": {"value": "none"}, "data": "aGk="}},
        "UPDATE_FRAMEWORK": {"update_framework": {"framework_info": {
            "user": "", "name": "fuzzer", "id": {"value": "{framework}"}, "failover_timeout": 3600.0,
            "capabilities": [{"type": "PARTITION_AWARE"}]}, "suppressed_roles": []}},
        "ACCEPT_INVERSE_OFFERS": {"accept_inverse_offers": {"inverse_offer_ids": [{"value": "none"}]}},
    }
    call_type = "ACCEPT" if kind == "LAUNCH_GROUP" else kind
    return {"type": call_type, "framework_id": {"value": "{framework}"}, **payloads[kind]}


SCHEDULER_CALLS = ["ACCEPT", "ACCEPT", "LAUNCH_GROUP", "DECLINE", "REVIVE", "SUPPRESS", "KILL", "SHUTDOWN",
                   "ACKNOWLEDGE", "RECONCILE", "MESSAGE", "UPDATE_FRAMEWORK", "ACCEPT_INVERSE_OFFERS"]


@settings(FUZZ, max_examples=600)
@given(mutation=st.sampled_from(SCHEDULER_CALLS).map(scheduler_call).flatmap(mutated))
def test_scheduler_calls_on_real_offers(bystander: Bystander, fuzzer: Fuzzer, mutation: Mutation) -> None:
    """Every call type, on the fuzzing framework's real offer (the bystander's task is on the
    same agent); the fuzzing framework keeps its stream throughout."""
    offer = fuzzer.current_offer()
    answer = fuzzer.raw.post(fuzzer.fill(mutation.body, offer))
    assert answer.status_code < 500, (mutation.where, answer.status_code, answer.text[:300])
    fuzzer.used = fuzzer.used or (answer.status_code == 202 and offer["id"]["value"].encode() in
                                  fuzzer.fill(mutation.body, offer))
    assert not fuzzer.raw.ended.is_set(), f"the fuzzing framework's stream ended after {mutation.where}"


def test_the_fuzzer_launched_on_real_offers(bystander: Bystander, fuzzer: Fuzzer) -> None:
    """(After the fuzz above: the mutations that left an ACCEPT valid launched real tasks.)"""
    frameworks = bystander.client.get("/master/frameworks").json()["frameworks"]
    (mine,) = [f for f in frameworks if f["id"] == fuzzer.raw.framework_id]
    launched = {t["id"] for t in mine["tasks"] + mine["completed_tasks"]}
    assert launched & {"fuzz-task", "fuzz-member"}, "no mutated ACCEPT launched anything"


SUBSCRIBE = {"type": "SUBSCRIBE", "subscribe": {"suppressed_roles": ["*"], "framework_info": {
    "user": "", "name": "sub", "failover_timeout": 0.0, "checkpoint": False, "role": "*", "hostname": "h",
    "principal": "p", "webui_url": "http://h", "capabilities": [{"type": "MULTI_ROLE"}], "roles": ["*", "r"],
    "labels": {"labels": [{"key": "k", "value": "v"}]}}}}


@FUZZ
@given(mutation=mutated(SUBSCRIBE))
def test_subscribe(bystander: Bystander, mutation: Mutation) -> None:
    """A SUBSCRIBE is answered 4xx, or 200 with SUBSCRIBED or one ERROR; its stream is then closed."""
    with bystander.client.stream("POST", "/api/v1/scheduler", content=mutation.body, headers=JSON) as answer:
        assert answer.status_code < 500, (mutation.where, answer.status_code)
        if answer.status_code == 200:
            decoder, records = RecordIODecoder(), []
            for chunk in answer.iter_raw():
                records += decoder.feed(chunk)
                if records:
                    break
            assert json.loads(records[0])["type"] in ("SUBSCRIBED", "ERROR"), mutation.where
