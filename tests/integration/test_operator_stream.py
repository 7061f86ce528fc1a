"""The master's operator event stream (SUBSCRIBE on /api/v1, spec 3.3) and the GET_* calls, against
real `meseta master` and `meseta agent` processes: read by pymesos' MesosOperatorMasterDriver, by
``meseta.client.operator_stream``, and by a raw socket that never reads."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pymesos = pytest.importorskip("pymesos")
from pymesos import MesosOperatorMasterDriver, OperatorMaster  # noqa: E402

from meseta.client.operator_stream import OperatorStreamClosed, operator_events  # noqa: E402
from meseta.protocol.recordio import RecordIODecoder  # noqa: E402
from meseta.runtime.serve import free_port  # noqa: E402
from meseta.testing.clusters import FAST_ALLOCATION, start_daemon, wait_for_agents  # noqa: E402
from meseta.testing.ha_cluster import HaCluster  # noqa: E402
from meseta.testing.mutations import Mutation, mutated  # noqa: E402
from meseta.testing.processes import stop_processes  # noqa: E402
from meseta.testing.pymesos_recorder import Recorder, driver_for, task  # noqa: E402
from meseta.testing.waiting import wait_until  # noqa: E402
from meseta.testing.zookeeper import Ensemble  # noqa: E402

FAST_PINGS = ("--agent-ping-timeout", "0.3", "--max-agent-ping-timeouts", "2")


class Operator(OperatorMaster):  # type: ignore[misc]
    """Records what pymesos' operator driver delivers, in order, on its thread."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.events: list[tuple[str, Any]] = []

    def _add(self, kind: str, payload: Any) -> None:
        with self.lock:
            self.events.append((kind, payload))
            self.lock.notify_all()

    def taskAdded(self, task_info: Any) -> None:
        self._add("TASK_ADDED", task_info)

    def taskUpdated(self, task_info: Any) -> None:
        self._add("TASK_UPDATED", task_info)

    def frameworkAdded(self, framework_info: Any) -> None:
        self._add("FRAMEWORK_ADDED", framework_info)

    def frameworkUpdated(self, framework_info: Any) -> None:
        self._add("FRAMEWORK_UPDATED", framework_info)

    def frameworkRemoved(self, framework_info: Any) -> None:
        self._add("FRAMEWORK_REMOVED", framework_info)

    def agentAdded(self, agent: Any) -> None:
        self._add("AGENT_ADDED", agent)

    def agentRemoved(self, agent_id: Any) -> None:
        self._add("AGENT_REMOVED", agent_id)

    def wait(self, what: str, predicate: Any, timeout: float = 30.0) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: predicate(self.events), timeout), f"{what}: {self.kinds()}"

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@pytest.fixture
def master(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"), *FAST_ALLOCATION,
                         *FAST_PINGS, "--max-operator-event-stream-subscribers", "3"], tmp_path / "master.log")
    address = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(address), 20, "the master to answer")
        yield address
    finally:
        stop_processes([proc])


def _healthy(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_agent(master: str, tmp_path: Path, name: str) -> Any:
    return start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                         str(tmp_path / name), "--resources", "cpus:2;mem:512;disk:512", "--no-switch-user"],
                        tmp_path / f"{name}.log")


def call(master: str, kind: str, **payload: Any) -> dict[str, Any]:
    response = httpx.post(f"http://{master}/api/v1", json={"type": kind, **payload}, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def metric(master: str, name: str) -> float:
    return float(httpx.get(f"http://{master}/metrics/snapshot", timeout=5).json()[name])


def test_pymesos_operator_sees_the_cluster_change_in_order(master: str, tmp_path: Path) -> None:
    operator = Operator()
    driver = MesosOperatorMasterDriver(master, operator)
    driver.start()
    agent = None
    try:
        wait_until(lambda: metric(master, "master/operator_event_stream_subscribers") == 1, 20, "the subscription")
        agent = start_agent(master, tmp_path, "agent0")
        operator.wait("AGENT_ADDED", lambda ev: ("AGENT_ADDED" in [k for k, _ in ev]))
        recorder = Recorder()
        with driver_for(master, recorder) as scheduler:
            offer = recorder.take_offers()[0]
            scheduler.launchTasks(offer["id"], [task("t1", offer, command={"value": "sleep 0.3"})])
            recorder.final("t1")
            operator.wait("t1 finished", lambda ev: any(k == "TASK_UPDATED" and p["state"] == "TASK_FINISHED"
                                                        for k, p in ev))
            scheduler.launchTasks(recorder.take_offers()[0]["id"],
                                  [task("t2", offer, command={"value": "sleep 60"})])
            recorder.wait(lambda: "TASK_RUNNING" in recorder.states("t2"), what="t2 running")
            scheduler.killTask({"value": "t2"})
            operator.wait("t2 killed", lambda ev: any(k == "TASK_UPDATED" and p["state"] == "TASK_KILLED"
                                                      for k, p in ev))
        operator.wait("FRAMEWORK_REMOVED", lambda ev: "FRAMEWORK_REMOVED" in [k for k, _ in ev])
        stop_processes([agent])
        operator.wait("AGENT_REMOVED", lambda ev: "AGENT_REMOVED" in [k for k, _ in ev])
    finally:
        driver.stop()
        driver.join()
        if agent is not None:
            stop_processes([agent])

    kinds = operator.kinds()
    agent_id = operator.events[kinds.index("AGENT_ADDED")][1]["agent_info"]["id"]["value"]
    assert operator.events[kinds.index("AGENT_REMOVED")][1] == agent_id
    assert kinds.index("AGENT_ADDED") < kinds.index("FRAMEWORK_ADDED") < kinds.index("TASK_ADDED")
    assert kinds.index("FRAMEWORK_REMOVED") < kinds.index("AGENT_REMOVED")
    framework = operator.events[kinds.index("FRAMEWORK_ADDED")][1]
    assert framework["framework_info"]["name"] == "pymesos-test" and framework["active"]
    for task_id, expected in (("t1", ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]),
                              ("t2", ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"])):
        added = [i for i, (k, p) in enumerate(operator.events)
                 if k == "TASK_ADDED" and p["task_id"]["value"] == task_id]
        updates = [(i, p) for i, (k, p) in enumerate(operator.events)
                   if k == "TASK_UPDATED" and p["status"]["task_id"]["value"] == task_id]
        assert len(added) == 1 and all(i > added[0] for i, _ in updates)
        assert operator.events[added[0]][1]["state"] == "TASK_STAGING"
        states = [p["state"] for _, p in updates]
        assert [s for s in states if s != "TASK_KILLING"] == [s for s in expected if s != "TASK_KILLING"], states
        assert all(p["framework_id"]["value"] == framework["framework_info"]["id"]["value"] for _, p in updates)


def test_get_calls_answer_the_state_and_the_client_follows_the_stream(master: str, tmp_path: Path) -> None:
    agent = start_agent(master, tmp_path, "agent0")
    try:
        wait_for_agents(master, 1)
        recorder = Recorder()
        with driver_for(master, recorder) as scheduler:
            offer = recorder.take_offers()[0]
            scheduler.launchTasks(offer["id"], [task("t1", offer, command={"value": "sleep 60"})])
            recorder.wait(lambda: "TASK_RUNNING" in recorder.states("t1"), what="t1 running")
            state = call(master, "GET_STATE")
            assert state["type"] == "GET_STATE"
            (listed,) = state["get_state"]["get_tasks"]["tasks"]
            assert (listed["task_id"], listed["state"]) == ({"value": "t1"}, "TASK_RUNNING")
            assert listed["statuses"][-1]["state"] == "TASK_RUNNING"
            assert call(master, "GET_TASKS")["get_tasks"]["tasks"][0]["task_id"] == {"value": "t1"}
            (framework,) = call(master, "GET_FRAMEWORKS")["get_frameworks"]["frameworks"]
            assert framework["framework_info"]["id"]["value"] == recorder.framework_id and framework["connected"]
            assert call(master, "GET_EXECUTORS")["get_executors"] == {"executors": []}  # a command task

            events = asyncio.run(_first_events(master, lambda: scheduler.killTask({"value": "t1"})))
            assert [e["type"] for e in events[:2]] == ["SUBSCRIBED", "HEARTBEAT"]
            snapshot = events[0]["subscribed"]
            assert snapshot["heartbeat_interval_seconds"] == 15
            assert snapshot["get_state"]["get_tasks"]["tasks"][0]["task_id"] == {"value": "t1"}
            assert events[-1]["type"] == "TASK_UPDATED" and events[-1]["task_updated"]["state"] == "TASK_KILLED"
    finally:
        stop_processes([agent])


async def _first_events(master: str, then: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async for event in operator_events(master):
        seen.append(event)
        if event["type"] == "HEARTBEAT":
            await asyncio.to_thread(then)
        if event["type"] == "TASK_UPDATED" and event["task_updated"]["state"] == "TASK_KILLED":
            return seen
    raise AssertionError("the stream ended")


def test_a_subscriber_that_never_reads_is_cut_off(master: str, tmp_path: Path) -> None:
    """Many events while one subscriber reads nothing: it is cut off (the subscriber count drops),
    a reading subscriber gets every event, and the master answers all along."""
    host, port = master.split(":")
    body = b'{"type": "SUBSCRIBE"}'
    stalled = socket.create_connection((host, int(port)))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Accept: application/recordio\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        wait_until(lambda: metric(master, "master/operator_event_stream_subscribers") == 1, 10, "the stalled one")
        sent, got = asyncio.run(_updates_while_reading(master, UPDATES))
        assert got == sent == UPDATES  # the reader saw every FRAMEWORK_UPDATED, as the master made them
        wait_until(lambda: metric(master, "master/operator_event_stream_subscribers") == 0, 10,
                   "the stalled subscriber to be cut off")
        assert call(master, "GET_HEALTH")["get_health"] == {"healthy": True}
        stalled.settimeout(10)  # the master reset the connection, dropping what it still buffered
        with pytest.raises(ConnectionResetError):
            while stalled.recv(1 << 20):
                pass
    finally:
        stalled.close()


UPDATES = 1600  # of ~20 KB each: more than a subscriber may leave unread (16 MiB), with the socket buffers
AHEAD = 200  # calls the framework may be ahead of the reading subscriber (4 MB of events)


async def _updates_while_reading(master: str, count: int) -> tuple[int, int]:
    """A reading operator subscriber; a framework that sends ``count`` UPDATE_FRAMEWORK calls (one
    FRAMEWORK_UPDATED each). Returns (calls accepted, FRAMEWORK_UPDATED events read)."""
    got = 0
    ready = asyncio.Event()

    async def read() -> None:
        nonlocal got
        async for event in operator_events(master):
            if event["type"] == "HEARTBEAT":
                ready.set()
            elif event["type"] == "FRAMEWORK_UPDATED":
                got += 1
                if got == count:
                    return

    reading = asyncio.create_task(read())
    await asyncio.wait_for(ready.wait(), 10)
    info = {"user": "u", "name": "churn", "labels": {"labels": [{"key": "pad", "value": "x" * 20_000}]}}
    subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    async with (httpx.AsyncClient(base_url=f"http://{master}", timeout=httpx.Timeout(10, read=None)) as http,
                http.stream("POST", "/api/v1/scheduler", json=subscribe, headers={"Accept": "application/json"})
                as stream):
            stream_id = stream.headers["mesos-stream-id"]
            chunks = stream.aiter_raw()
            first = await anext(chunks)
            framework_id = first.split(b'"framework_id":{"value":"', 1)[1].split(b'"', 1)[0].decode()
            update = {"type": "UPDATE_FRAMEWORK", "framework_id": {"value": framework_id}, "update_framework": {
                "framework_info": {**info, "id": {"value": framework_id}}}}
            headers = {"Mesos-Stream-Id": stream_id}
            sent = 0

            async def post(n: int) -> None:
                nonlocal sent
                for _ in range(n):
                    while sent - got > AHEAD:  # the reader keeps up (a busy machine may slow it)
                        await asyncio.sleep(0.01)
                    response = await http.post("/api/v1/scheduler", json=update, headers=headers)
                    sent += response.status_code == 200

            await asyncio.gather(*(post(count // 8) for _ in range(8)))
            await asyncio.wait_for(reading, 60)
    return sent, got


# ----------------------------------------------------------------------------- hostile callers

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEMPLATES = [{"type": "SUBSCRIBE"}, {"type": "GET_STATE"}, {"type": "GET_TASKS", "get_tasks": {}},
             {"type": "GET_FRAMEWORKS"}, {"type": "GET_EXECUTORS", "get_executors": {}}]
ACCEPTS = [None, "application/json", "application/recordio", "*/*", "text/plain", "application/x-protobuf"]


@pytest.fixture(scope="module")
def fuzz_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("operator-fuzz")
    port = free_port()
    proc = start_daemon(["master", "--port", str(port), "--work-dir", str(base / "master"),
                         "--max-operator-event-stream-subscribers", "2"], base / "master.log")
    address = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(address), 20, "the master to answer")
        yield address, base / "master.log"
    finally:
        stop_processes([proc])


@FUZZ
@given(mutation=st.sampled_from(TEMPLATES).flatmap(mutated), accept=st.sampled_from(ACCEPTS),
       message_accept=st.sampled_from([None, "application/json", "application/x-protobuf"]))
def test_hostile_subscribe_and_get_calls(fuzz_master: tuple[str, Path], mutation: Mutation, accept: str | None,
                                         message_accept: str | None) -> None:
    master, _ = fuzz_master
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    if message_accept is not None:
        headers["Message-Accept"] = message_accept
    with httpx.stream("POST", f"http://{master}/api/v1", content=mutation.body, headers=headers,
                      timeout=10) as response:
        assert response.status_code < 500, (mutation, response.status_code)
        if response.status_code != 200:
            assert response.read(), "a refusal says why"
            return
        media = response.headers["content-type"]
        if not media.startswith(("application/recordio", "application/json")):
            raise AssertionError(media)
        parsed = json.loads(mutation.body)
        if not isinstance(parsed, dict) or parsed.get("type") != "SUBSCRIBE":
            assert media.startswith("application/json")
            return
        if accept == "application/recordio":
            assert media.startswith("application/recordio")
            assert response.headers["message-content-type"] == "application/json"
            assert message_accept != "application/x-protobuf"
        else:
            assert accept in (None, "application/json", "*/*")
        decoder = RecordIODecoder()
        records: list[bytes] = []
        chunks = response.iter_raw()
        while not records:
            records = decoder.feed(next(chunks))
        assert json.loads(records[0])["type"] == "SUBSCRIBED"


def test_beyond_the_limit_the_oldest_subscriber_is_cut_off(fuzz_master: tuple[str, Path]) -> None:
    master, _ = fuzz_master  # --max-operator-event-stream-subscribers 2

    async def run() -> None:
        streams = [operator_events(master) for _ in range(3)]
        for stream in streams:
            assert (await anext(stream))["type"] == "SUBSCRIBED"
        async def drain_oldest() -> None:
            while True:  # what was already on its way, then the end
                await anext(streams[0])

        with pytest.raises(OperatorStreamClosed):
            await asyncio.wait_for(drain_oldest(), 20)  # a stream never cut off fails, not hangs
        assert await asyncio.to_thread(metric, master, "master/operator_event_stream_subscribers") == 2
        for stream in streams[1:]:
            assert (await anext(stream))["type"] == "HEARTBEAT"
            await stream.aclose()

    asyncio.run(run())


def test_after_the_fuzzing_nothing_is_left_behind(fuzz_master: tuple[str, Path]) -> None:
    master, log = fuzz_master
    wait_until(lambda: metric(master, "master/operator_event_stream_subscribers") == 0, 10, "every stream closed")
    assert call(master, "GET_STATE")["get_state"]["get_tasks"]["tasks"] == []
    text = log.read_text()
    assert "Traceback" not in text and "deposed" not in text, text[-2000:]


# ----------------------------------------------------------------------------- stand-by masters


def test_the_client_follows_a_standby_or_zookeeper_to_the_leader(tmp_path: Path, single_node: Ensemble) -> None:
    with HaCluster(tmp_path, single_node.hosts, masters=2, agents=0) as cluster:
        cluster.wait(lambda s: True, 60, "a leader")
        leader = cluster.leader()
        assert leader is not None
        standby = f"127.0.0.1:{cluster.master_ports[1 - leader]}"
        wait_until(lambda: _healthy(standby), 30, "the stand-by to answer")
        raw = httpx.post(f"http://{standby}/api/v1", json={"type": "SUBSCRIBE"}, timeout=10)
        assert raw.status_code == 307  # as every other operator call
        assert raw.headers["location"].startswith(f"//127.0.0.1:{cluster.master_ports[leader]}/api/v1")

        async def first() -> dict[str, Any]:
            async for event in operator_events(standby):
                return event
            raise AssertionError("no event")

        event = asyncio.run(first())
        assert event["type"] == "SUBSCRIBED" and "get_agents" in event["subscribed"]["get_state"]

        async def through_zookeeper() -> dict[str, Any]:
            async for event in operator_events(cluster.zk_url):
                return event
            raise AssertionError("no event")

        assert asyncio.run(through_zookeeper())["type"] == "SUBSCRIBED"


def test_calls_that_take_no_fields_refuse_them_by_name(fuzz_master: tuple[str, Path]) -> None:
    """SUBSCRIBE and the GET_* state calls take no fields: a payload with any is refused, not ignored."""
    master, _ = fuzz_master
    for kind in ("SUBSCRIBE", "GET_STATE", "GET_TASKS", "GET_FRAMEWORKS", "GET_EXECUTORS"):
        answer = httpx.post(f"http://{master}/api/v1", json={"type": kind, kind.lower(): {"x": 1}}, timeout=10)
        assert answer.status_code == 400 and f"'{kind.lower()}' takes no fields" in answer.text, answer.text
        if kind != "SUBSCRIBE":  # (its answer is a stream) an empty object is no field
            assert httpx.post(f"http://{master}/api/v1", json={"type": kind, kind.lower(): {}},
                              timeout=10).status_code == 200
