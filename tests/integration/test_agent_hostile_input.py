"""The agent's edges assume a hostile client: the executor API and /files against a live agent.

One ``LocalCluster`` for the module; a pymesos framework keeps two tasks running throughout:
``held``, run by a real custom executor (``pymesos_executor.py``, subscribed to the agent), and
``files``, a command task whose sandbox holds what a task may leave there to trip the agent up
(a FIFO, a socket, a name that is not UTF-8). Each probe found by hand (R4, R6 and the 500s of
issue 14) is a regression test; then a structure-aware hypothesis fuzz sends valid calls with one
field mutated (``meseta.testing.mutations``) to every surface (executor API, /files, the other
endpoints), and the last test checks the invariants: nothing answered >= 500, nothing logged an
error, both tasks still run, the executor is still subscribed, and a new task launches and finishes.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pymesos")

from meseta.client import new_uuid
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.mutations import encode, mutated
from meseta.testing.pymesos_recorder import Recorder, start_driver, task
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.integration

EXECUTOR = Path(__file__).with_name("pymesos_executor.py")
JSON = {"Content-Type": "application/json"}
# What a task may leave in its sandbox: a FIFO (a read blocks until a writer comes), a socket,
# a file whose name is byte 0xff (not UTF-8), a directory; then it runs until killed.
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]  # deeper than the JSON gate's 32 levels
SANDBOX_SCRIPT = ("mkfifo fifo && mkdir sub && echo hello > sub/greeting && touch \"$(printf '\\377')\" && "
                  f"{sys.executable} -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\" && "
                  "echo ready && exec sleep 3600")


@dataclass
class Live:
    cluster: LocalCluster
    driver: Any
    recorder: Recorder
    agent: str  # the agent's URL
    framework_id: str
    executor_id: str
    sandbox: str  # of the command task "files"

    def ids(self) -> dict[str, Any]:
        return {"framework_id": {"value": self.framework_id}, "executor_id": {"value": self.executor_id}}

    def update(self, **status: Any) -> dict[str, Any]:
        base = {"task_id": {"value": "held"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR",
                "uuid": new_uuid()}
        return {"type": "UPDATE", **self.ids(), "update": {"status": {**base, **status}}}

    def executor_call(self, body: bytes | dict[str, Any]) -> httpx.Response:
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return httpx.post(f"{self.agent}/api/v1/executor", content=content, headers=JSON, timeout=10)

    def fence(self) -> int:
        """A valid update from the executor, once the scheduler has it: its index among the
        scheduler's updates of ``held`` (updates of one task arrive in order)."""
        marker = new_uuid()
        assert self.executor_call(self.update(message=marker)).status_code == 202
        self.recorder.wait(lambda: any(u.get("message") == marker for u in self.recorder.updates), 10, "the fence")
        with self.recorder.lock:
            held = [u for u in self.recorder.updates if u["task_id"]["value"] == "held"]
        return next(i for i, u in enumerate(held) if u.get("message") == marker)

    def master_task(self, task_id: str) -> dict[str, Any]:
        tasks = httpx.get(f"http://{self.cluster.master}/master/tasks", timeout=5).json()["tasks"]
        return next(t for t in tasks if t["id"] == task_id)

    def agent_task_state(self, task_id: str) -> str:
        state = httpx.get(f"{self.agent}/state", timeout=5).json()
        return next(t["state"] for f in state["frameworks"] for e in f["executors"] for t in e["tasks"]
                    if t["id"] == task_id)


def _sandbox_of(agent: str, executor_id: str) -> str | None:
    state = httpx.get(f"{agent}/state", timeout=5).json()
    return next((e["directory"] for f in state["frameworks"] for e in f["executors"] if e["id"] == executor_id),
                None)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with LocalCluster(tmp_path_factory.mktemp("hostile")) as cluster:
        recorder = Recorder()
        driver = start_driver(cluster.master, recorder)
        try:
            offer = recorder.take_offers()[0]
            executor = {"executor_id": {"value": "holder"}, "command": {"value": f"{sys.executable} {EXECUTOR}"},
                        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
            driver.launchTasks(offer["id"], [task("held", offer, executor=executor),
                                             task("files", offer, command={"value": SANDBOX_SCRIPT})])
            for task_id in ("held", "files"):
                recorder.wait(lambda t=task_id: "TASK_RUNNING" in recorder.states(t), 30,  # type: ignore[misc]
                              f"{task_id} running")
            agent = cluster.agent_url()
            sandbox = wait_until(lambda: _sandbox_of(agent, "files"), 10, "the files task's sandbox")
            wait_until(lambda: (Path(sandbox) / "sock").exists(), 10, "the sandbox's FIFO, socket and files")
            assert recorder.framework_id is not None
            yield Live(cluster, driver, recorder, agent, recorder.framework_id, "holder", sandbox)
        finally:
            driver.stop()
            driver.join()


def test_an_update_with_a_list_as_its_state_is_refused_and_the_master_keeps_a_state(live: Live) -> None:
    """R4: ``"state": ["TASK_RUNNING"]`` was accepted (202) and the master stored the list."""
    response = live.executor_call(live.update(state=["TASK_RUNNING"]))
    assert response.status_code == 400 and "state" in response.text, response.text
    assert live.master_task("held")["state"] == "TASK_RUNNING"
    assert httpx.get(f"http://{live.cluster.master}/metrics/snapshot", timeout=5).status_code == 200
    assert live.executor_call(live.update()).status_code == 202  # the executor itself still may


@pytest.mark.parametrize(("status", "fragment"), [
    ({"state": "TASK_BOGUS"}, "state"),
    ({"uuid": "bm90LTE2"}, "16 bytes"),
    ({"data": "%%%not base64"}, "data"),
    ({"timestamp": "soon"}, "timestamp"),
    ({"message": 5}, "message"),
    ({"task_id": {"value": ["held"]}}, "task_id"),
    ({"labels": {"labels": [{"key": 1}]}}, "labels"),
    ({"check_status": {"nested": DEEP}}, "nested"),
    # beyond int64: the master would refuse the update the agent had taken, and hold up the task's
    # stream behind it for good
    ({"unreachable_time": {"nanoseconds": 2**70}}, "unreachable_time"),
])
def test_every_field_of_an_update_is_checked_before_anything_changes(
        live: Live, status: dict[str, Any], fragment: str) -> None:
    before = live.fence()
    response = live.executor_call(live.update(**status))
    assert response.status_code == 400 and fragment in response.text, (status, response.text)
    after = live.fence()
    assert after == before + 1  # nothing reached the scheduler between the two fences


def test_an_executor_speaks_only_for_its_own_tasks(live: Live) -> None:
    """The custom executor may not end the command task ``files`` (nor name another executor)."""
    response = live.executor_call(live.update(task_id={"value": "files"}, state="TASK_FAILED"))
    assert response.status_code == 400 and "files" in response.text
    mismatched = live.executor_call(live.update(executor_id={"value": "files"}))
    assert mismatched.status_code == 400 and "mismatched" in mismatched.text
    posing = live.executor_call({"type": "UPDATE", "framework_id": {"value": live.framework_id},
                                 "executor_id": {"value": "files"}, "update": live.update()["update"]})
    assert posing.status_code == 403  # a command task's executor has no subscription to speak through
    assert live.master_task("files")["state"] == "TASK_RUNNING"
    assert live.agent_task_state("files") == "TASK_RUNNING"


def test_json_nested_a_thousand_deep_is_a_400(live: Live) -> None:
    deep = b'{"type": "UPDATE", "framework_id": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert live.executor_call(deep).status_code == 400
    message = {"type": "MESSAGE", **live.ids(), "message": {"data": "aGk="}}
    body = httpx.Request("POST", "/", json=message).content[:-1] + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert live.executor_call(body).status_code == 400


def test_a_fifo_in_a_sandbox_is_refused_without_blocking_anything(live: Live) -> None:
    """R6: 60 reads of a FIFO held every worker thread and froze /health, /master/state and /state."""
    fifo = f"{live.sandbox}/fifo"
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=60))

    def read() -> httpx.Response:
        return client.get(f"{live.agent}/files/read", params={"path": fifo, "offset": 0})

    with client, concurrent.futures.ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(lambda _: read(), range(60)))
        for url in (f"{live.agent}/health", f"http://{live.cluster.master}/master/state", f"{live.agent}/state"):
            assert client.get(url).status_code == 200
    assert {a.status_code for a in answers} == {400}
    assert "fifo" in answers[0].text and "FIFO" in answers[0].text
    download = httpx.get(f"{live.agent}/files/download", params={"path": fifo}, timeout=10)
    assert download.status_code == 400 and "FIFO" in download.text
    socket = httpx.get(f"{live.agent}/files/read", params={"path": f"{live.sandbox}/sock", "offset": 0}, timeout=10)
    assert socket.status_code == 400 and "socket" in socket.text


@pytest.mark.parametrize("params", [
    {"path": "\x00"},
    {"path": "\x00", "offset": "0"},
    {"path": "STDOUT", "offset": str(10**23)},
    {"path": "STDOUT", "offset": "0", "length": str(10**23)},
    {"path": "STDOUT", "offset": "-2"},
    {"path": "STDOUT", "offset": "1e3"},
    {"path": "STDOUT", "offset": "9" * 5000},
    {"path": "SANDBOX/" + "x" * 5000},
    {"path": "SANDBOX/../../../../../../etc/passwd", "offset": "0"},
])
def test_odd_query_parameters_are_4xx(live: Live, params: dict[str, str]) -> None:
    params = {k: v.replace("STDOUT", f"{live.sandbox}/stdout").replace("SANDBOX", live.sandbox)
              for k, v in params.items()}
    for endpoint in ("browse", "read", "download"):  # (download reads no offset: stdout itself is fine)
        response = httpx.get(f"{live.agent}/files/{endpoint}", params=params, timeout=10)
        assert response.status_code < 500, (endpoint, params, response.status_code, response.text)
        assert response.status_code >= 400 or (endpoint == "download" and "offset" in params), endpoint


def test_reads_within_a_sandbox_still_work(live: Live) -> None:
    listing = httpx.get(f"{live.agent}/files/browse", params={"path": live.sandbox}, timeout=10)
    assert listing.status_code == 200
    names = {Path(entry["path"]).name for entry in listing.json()}
    assert {"fifo", "sock", "sub", "stdout", "\\xff"} <= names  # the 0xff name, escaped
    greeting = f"{live.sandbox}/sub/greeting"
    size = httpx.get(f"{live.agent}/files/read", params={"path": greeting}, timeout=10).json()
    assert size == {"offset": 6, "data": ""}
    part = httpx.get(f"{live.agent}/files/read", params={"path": greeting, "offset": 1, "length": 3}, timeout=10)
    assert part.json() == {"offset": 1, "data": "ell"}
    for offset in (2**62, 2**63 - 1):  # (the kernel refuses a pread that far: EINVAL)
        past_end = httpx.get(f"{live.agent}/files/read", params={"path": greeting, "offset": offset}, timeout=10)
        assert past_end.json() == {"offset": offset, "data": ""}, past_end.text
    download = httpx.get(f"{live.agent}/files/download", params={"path": greeting}, timeout=10)
    assert download.status_code == 200 and download.content == b"hello\n"


# ====================================================================== the fuzz
# A few hundred examples per surface keep `make test` short; raise them for a deeper look
# (MESETA_FUZZ_EXAMPLES=2000 pytest tests/integration/test_agent_hostile_input.py).
EXAMPLES = int(os.environ.get("MESETA_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def _base_calls(live: Live) -> list[dict[str, Any]]:
    # every TaskStatus member an executor may send, so that a mutation can reach each of them
    status = {**live.update(message="fuzz", data="aGVsbG8=", timestamp=1.5e9, healthy=True,
                            labels={"labels": [{"key": "k", "value": "v"}]}, reason="REASON_RECONCILIATION",
                            agent_id={"value": "whoever"}, executor_id={"value": live.executor_id},
                            check_status={"type": "COMMAND"}, container_status={"executor_pid": 1},
                            unreachable_time={"nanoseconds": 5}, limitation={"resources": []})["update"]["status"]}
    return [
        {"type": "UPDATE", **live.ids(), "update": {"status": status}},
        {"type": "MESSAGE", **live.ids(), "message": {"data": "aGk="}},
        {"type": "HEARTBEAT", **live.ids()},
        # aimed at no executor, so that no mutation can take the real executor's subscription
        {"type": "SUBSCRIBE", "framework_id": {"value": live.framework_id}, "executor_id": {"value": "nobody"},
         "subscribe": {"unacknowledged_tasks": [{"task_id": {"value": "held"}, "name": "x"}],
                       "unacknowledged_updates": [{"status": status}]}},
    ]


def executor_calls(bases: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """One valid call with one member made hostile (``meseta.testing.mutations``), or its body
    broken as raw bytes: cut, not JSON, not UTF-8, over the size bound, NaN, empty."""
    def raw(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
        body = encode(base)
        return st.sampled_from([body[: len(body) // 2], body.replace(b"{", b"[", 1), b"\xff\xfe" + body,
                                body[:-1] + b', "padding": "' + b"x" * (5 * 1024 * 1024) + b'"}',
                                body.replace(b'"aGk="', b"NaN"), b"", b"null", b"[]", b"1e999"])

    fields = st.one_of(*(mutated(base).map(lambda m: m.body) for base in bases))
    return st.one_of(fields, fields, fields, st.sampled_from(bases).flatmap(raw))


def test_fuzz_the_executor_api(live: Live) -> None:
    client = httpx.Client(timeout=10)
    bases = _base_calls(live)
    statuses: list[int] = []

    @FUZZ
    @given(executor_calls(bases), st.sampled_from([JSON] * 8 + [{"Content-Type": "text/plain"}, {}]))
    def one(body: bytes, headers: dict[str, str]) -> None:
        response = client.post(f"{live.agent}/api/v1/executor", content=body, headers=headers)
        statuses.append(response.status_code)
        assert response.status_code < 500, (body[:300], response.status_code, response.text)

    try:
        one()
    finally:
        client.close()
    assert {400, 202} <= set(statuses)  # the fuzz hit both sides of the gate


FILE_ENDPOINTS = ["browse", "read", "download", "browse.json", "read.json", "download.json"]
PATH_SUFFIXES = ["", "/", "/.", "/..", "/../..", "/../../../../etc/passwd", "/sub", "/sub/greeting", "/fifo",
                 "/sock", "/stdout", "/nope", "//", "/\x00", "%00", "/\ud800", "/" + "x" * 300, "/" + "y/" * 2100,
                 "\\", "/\u202e", "\n", "/ÿ", "/\udcff"]


@st.composite
def file_requests(draw: st.DrawFn, sandbox: str) -> tuple[str, list[tuple[str, str]]]:
    endpoint = draw(st.sampled_from(FILE_ENDPOINTS))
    params = [("path", sandbox + draw(st.sampled_from(PATH_SUFFIXES))), ("offset", "0"), ("length", "16")]
    which = draw(st.integers(0, len(params)))
    odd = draw(st.one_of(st.text(max_size=12), st.integers(-(2**80), 2**80).map(str),
                         st.sampled_from(["-1", "1e3", "0x10", "", " 1", "1.5", "NaN", "9" * 5000, str(2**63)])))
    if which == len(params):
        params.append((draw(st.sampled_from(["path", "offset", "length", "jsonp", "x"])), odd))  # repeated or extra
    elif draw(st.booleans()):
        params[which] = (params[which][0], odd if which else sandbox + odd)
    else:
        del params[which]
    return endpoint, params


def _query(params: list[tuple[str, str]]) -> str:
    """Percent-encoded as bytes: a surrogate-escaped name becomes its raw byte (``%FF``)."""
    def raw(text: str) -> bytes:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")
    return "&".join(f"{quote_from_bytes(raw(k), safe='')}={quote_from_bytes(raw(v), safe='')}" for k, v in params)


def test_fuzz_the_files_endpoints(live: Live) -> None:
    client = httpx.Client(timeout=10)
    statuses: list[int] = []

    @FUZZ
    @given(file_requests(live.sandbox))
    def one(request: tuple[str, list[tuple[str, str]]]) -> None:
        endpoint, params = request
        response = client.get(f"{live.agent}/files/{endpoint}?{_query(params)}")
        statuses.append(response.status_code)
        assert response.status_code < 500, (endpoint, params, response.status_code, response.text[:300])
        path = dict(params).get("path", "")
        if path in (f"{live.sandbox}/fifo", f"{live.sandbox}/sock") and "browse" not in endpoint:
            assert response.status_code == 400, (endpoint, params)

    try:
        one()
    finally:
        client.close()
    assert {200, 400, 404} <= set(statuses)


OTHER_ENDPOINTS = ["/state", "/state.json", "/slave(1)/state", "/monitor/statistics", "/monitor/statistics.json",
                   "/flags", "/flags.json", "/metrics/snapshot", "/health", "/slave(1)/health", "/version",
                   "/api/v1/executor", "/files/debug", "/nope"]


def test_fuzz_the_other_endpoints(live: Live) -> None:
    client = httpx.Client(timeout=10)

    @settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
    @given(st.sampled_from(OTHER_ENDPOINTS), st.sampled_from(["GET", "GET", "POST", "PUT", "DELETE", "HEAD"]),
           st.lists(st.tuples(st.text(max_size=8), st.text(max_size=16)), max_size=4))
    def one(endpoint: str, method: str, params: list[tuple[str, str]]) -> None:
        response = client.request(method, f"{live.agent}{endpoint}?{_query(params)}",
                                  headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (method, endpoint, params, response.status_code, response.text[:300])

    try:
        one()
    finally:
        client.close()


def test_afterwards_the_agent_is_whole(live: Live) -> None:
    """Last: no traceback, both tasks still run, the executor is subscribed, a new task finishes."""
    assert live.cluster.logged_errors() == []
    for task_id in ("held", "files"):
        assert live.master_task(task_id)["state"] == "TASK_RUNNING"
        assert live.agent_task_state(task_id) == "TASK_RUNNING"
    assert live.executor_call({"type": "HEARTBEAT", **live.ids()}).status_code == 202
    live.fence()  # and its updates still reach the scheduler
    offer = live.recorder.take_offers()[0]
    live.driver.launchTasks(offer["id"], [task("fresh", offer, command={"value": "true"})])
    assert live.recorder.final("fresh")["state"] == "TASK_FINISHED"
    assert live.cluster.logged_errors() == []
