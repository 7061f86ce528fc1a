"""ContainerInfo fuzzed on real offers: a raw v1 scheduler over a LocalCluster whose agent pulls from
a loopback docker-registry and joins a CNI bridge network of the test's own ACCEPTs each offer with
one task carrying a generated ContainerInfo: both types, every docker network, port mappings inside
and outside the offered ports, named network_infos, volumes with hostile paths, and one member
anywhere made hostile (wrong types, huge, lone surrogates, NUL, nesting).

Checked per call: an answer below 500; a call refused (400) or a task that ends TASK_ERROR names the
field; an accepted one ends (its command is ``true``). Afterwards: the agent's resources are all
offered again, no container runs on the agent, no netns, veth, rule, lease or mount is left, and
nothing was logged at ERROR.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.agent.containerizer.cni import netns_name
from meseta.protocol.task_states import TERMINAL
from meseta.testing.bridge_network import BridgeNetwork, cni_available
from meseta.testing.images import BUSYBOX, docker_archive
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.mutations import HOSTILE, encode, mutated
from meseta.testing.raw_framework import RawFramework
from meseta.testing.registry import LocalRegistry
from meseta.testing.waiting import wait_until

pytestmark = [
    pytest.mark.integration, pytest.mark.timeout(300),
    pytest.mark.skipif(not cni_available() or not BUSYBOX.exists(),
                       reason="needs root, containernetworking-plugins and busybox-static"),
]
EXAMPLES = int(os.environ.get("MESETA_FUZZ_EXAMPLES", "150"))  # ~15 s each on a quiet host
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
RESOURCES = "cpus:2;mem:1024;disk:256;ports:[31000-31009]"
OFFERED, OUTSIDE = 31003, 31500  # a port of the agent's, and one it does not have
NUMBERED = itertools.count()
CONTAINER_IDS: set[str] = set()  # every container the agent made for the fuzz (their netns are checked)
OUTCOMES: Counter[str] = Counter()  # "400", "TASK_ERROR", "TASK_FINISHED", "TASK_FAILED", "bridged"
FIELD = ("container", "port mapping", "volume", "network")  # what a refusal's message starts from

PATHS = ["data", "/data", "..", "../..", "a/../../b", "/", "/etc", "/proc/self", "x" * 5000, "\ud800",
         "a\x00b", "\u202e\U0001f600", "", " ", "/tmp/../..", "./.", "//", "a" * 255 + "/b"]
CANARY = f"/tmp/meseta-fuzz-canary-{os.getpid()}"  # a host directory the volumes bind: left as it was
HOST_PATHS = [CANARY, f"{CANARY}/keep", "/etc", "/nonexistent", "rel", "..", "/", "x" * 5000, "\ud800", "a\x00b",
              " /a", "/proc/1/root"]
IMAGES = ["web:1", "nope:1", "", "../x", "WEB:1", "web@sha256:" + "0" * 64, "x" * 5000, "\ud800"]
NETWORK_NAMES = ["mesos-bridge", "nope", "", "x" * 200, "a/b", "\ud800"]
PORTS = [OFFERED, OUTSIDE, 0, 80, -1, 65536, 2**64, 1.5, "31003", None]
JUNK = st.sampled_from(HOSTILE)


def mapping() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"host_port": st.sampled_from(PORTS),
                                  "container_port": st.sampled_from([80, 0, 8080])},
                                 optional={"protocol": st.sampled_from(["tcp", "udp", "sctp", "TCP", "tcp,udp", 6])})


def volume() -> st.SearchStrategy[dict[str, Any]]:
    source = st.one_of(
        st.fixed_dictionaries({"type": st.just("HOST_PATH"), "host_path": st.fixed_dictionaries(
            {"path": st.sampled_from(HOST_PATHS)})}),
        st.fixed_dictionaries({"type": st.just("SANDBOX_PATH"), "sandbox_path": st.fixed_dictionaries(
            {"type": st.sampled_from(["SELF", "PARENT"]), "path": st.sampled_from(PATHS)})}),
        st.fixed_dictionaries({"type": st.sampled_from(["SECRET", "DOCKER_VOLUME", "CSI_VOLUME", "junk"])}))
    return st.fixed_dictionaries({"container_path": st.sampled_from(PATHS),
                                  "mode": st.sampled_from(["RW", "RO", "rw"])},
                                 optional={"host_path": st.sampled_from(HOST_PATHS), "source": source})


def network_info() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(NETWORK_NAMES), "port_mappings": st.lists(mapping(), max_size=2),
        "labels": st.sampled_from([{"labels": [{"key": "k", "value": "v"}]}, {"labels": [{"key": 1}]}, []]),
        "ip_addresses": st.sampled_from([[{"protocol": "IPv4"}], [{"ip_address": "10.0.0.1"}]]),
        "groups": st.just(["g"])})


@st.composite
def container_infos(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["DOCKER", "DOCKER", "MESOS", "MESOS", "APPC", 7]))
    info: dict[str, Any] = {"type": kind}
    if kind == "DOCKER" or draw(st.booleans()):
        docker: dict[str, Any] = {"image": draw(st.sampled_from(IMAGES))}
        if draw(st.booleans()):
            docker["network"] = draw(st.sampled_from(["HOST", "BRIDGE", "BRIDGE", "USER", "NONE", "bogus", 2]))
        if draw(st.booleans()):
            docker["port_mappings"] = draw(st.lists(mapping(), max_size=3))
        if draw(st.booleans()):
            docker["force_pull_image"] = draw(st.sampled_from([True, False, "yes"]))
        if draw(st.integers(0, 9)) == 0:
            docker[draw(st.sampled_from(["parameters", "privileged", "volume_driver", "junk"]))] = True
        info["docker"] = docker
    if kind == "MESOS" and draw(st.booleans()):
        info["mesos"] = {"image": {"type": draw(st.sampled_from(["DOCKER", "APPC"])),
                                   "docker": {"name": draw(st.sampled_from(IMAGES))}}}
    if draw(st.booleans()):
        info["network_infos"] = draw(st.lists(network_info(), max_size=2))
    if draw(st.booleans()):
        info["volumes"] = draw(st.lists(volume(), max_size=3))
    return info


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, BridgeNetwork, RawFramework]]:
    tmp = tmp_path_factory.mktemp("container-fuzz")
    Path(CANARY).mkdir()
    (Path(CANARY) / "keep").write_text("k\n")
    with LocalRegistry(tmp) as registry, BridgeNetwork(tmp) as network:
        registry.push(docker_archive(tmp / "web.tar", tag="web:1", config={"Env": ["PATH=/bin"]}), "web:1")
        with LocalCluster(tmp / "cluster", agent_resources=RESOURCES,
                          agent_options={"docker_registry": registry.url, **network.agent_options()}) as cluster, \
                RawFramework(cluster.master, {"user": "", "name": "container-fuzz"}) as raw:
            yield cluster, network, raw
    shutil.rmtree(CANARY)


def _holds(offer: dict[str, Any], port: int) -> bool:
    return any(r["name"] == "ports" and any(x["begin"] <= port <= x["end"] for x in r["ranges"]["range"])
               for r in offer["resources"])


def _offer(raw: RawFramework, port: int = OFFERED) -> dict[str, Any]:
    """An offer holding ``port`` (the previous task's may still be on their way back); the others
    declined at once. A port never offered again fails here, naming it."""
    for _ in range(20):
        offers = [o for event in raw.events_now("OFFERS") for o in event["offers"]["offers"]]
        if not offers:
            raw.call("REVIVE")
            offers = raw.next_event("OFFERS", 20.0)["offers"]["offers"]
        chosen = next((o for o in offers if _holds(o, port)), None)
        spare = [o["id"] for o in offers if o is not chosen]
        if spare:
            raw.call("DECLINE", decline={"offer_ids": spare, "filters": {"refuse_seconds": 0}})
        if chosen is not None:
            return chosen
    tasks = httpx.get(raw.url.replace("/api/v1/scheduler", "/master/tasks"), timeout=10).json()["tasks"]
    raise AssertionError(f"port {port} was not offered again; tasks not ended: "
                         f"{[t for t in tasks if t['state'] not in TERMINAL]}")


def _acknowledged(raw: RawFramework, status: dict[str, Any]) -> dict[str, Any]:
    if status.get("uuid"):
        answer = raw.call("ACKNOWLEDGE", acknowledge={"agent_id": status["agent_id"], "task_id": status["task_id"],
                                                      "uuid": status["uuid"]})
        assert answer.status_code == 202, answer.text
    return status


def _launch(raw: RawFramework, container: Any, long: bool) -> tuple[str, str]:
    """ACCEPT an offer with one task in ``container``: ``true``, or (``long``) a sleep killed once it runs;
    how it ended ("400" or the terminal state) and the message."""
    offer = _offer(raw)
    task_id = f"cf-{next(NUMBERED)}"
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
            "command": {"value": "exec sleep 30" if long else "true", "shell": True}, "container": container,
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}},
                          {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": OFFERED,
                                                                                    "end": OFFERED}]}}]}
    call = {"type": "ACCEPT", "framework_id": {"value": raw.framework_id}, "accept": {
        "offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}
    answer = raw.post(encode(call))
    shown = encode(container)[:300]
    assert answer.status_code < 500, (shown, answer.status_code, answer.text[:300])
    if answer.status_code != 202:
        assert answer.status_code == 400 and any(f in answer.text for f in (*FIELD, "JSON")), (shown, answer.text)
        raw.call("DECLINE", decline={"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}})
        OUTCOMES["400"] += 1
        return "400", answer.text
    while True:  # every update acknowledged, up to the terminal one
        status = _acknowledged(raw, raw.update_for(task_id, 60.0))
        container_status = status.get("container_status") or {}
        OUTCOMES["networked"] += bool(container_status.get("network_infos"))
        if container_status.get("container_id"):
            CONTAINER_IDS.add(container_status["container_id"]["value"])
        if status["state"] == "TASK_RUNNING" and long:
            answer = raw.call("KILL", kill={"task_id": status["task_id"], "agent_id": status["agent_id"]})
            assert answer.status_code == 202, answer.text
        if status["state"] in TERMINAL:
            break
    OUTCOMES[status["state"]] += 1
    if status["state"] == "TASK_ERROR":
        assert any(f in status.get("message", "") for f in FIELD), (shown, status)
    else:  # the master took it: the agent ran it, or refused it naming what it could not do
        assert status["state"] in ("TASK_KILLED" if long else "TASK_FINISHED", "TASK_FAILED"), (
            shown, long, status)
        if status["state"] == "TASK_FAILED":  # what only the agent knows: its images, host paths, networks
            assert any(f in status.get("message", "") for f in ("image", "volume", "network")), (
                shown, long, status.get("message"))
    return status["state"], status.get("message", "")


@SETTINGS
@given(container=container_infos(), long=st.booleans())
def test_generated_container_infos(world: tuple[LocalCluster, BridgeNetwork, RawFramework],
                                   container: dict[str, Any], long: bool) -> None:
    _launch(world[2], container, long)


@SETTINGS
@given(data=st.data(), long=st.booleans())
def test_one_member_made_hostile(world: tuple[LocalCluster, BridgeNetwork, RawFramework], data: st.DataObject,
                                 long: bool) -> None:
    _launch(world[2], data.draw(mutated(data.draw(container_infos()), JUNK)).value, long)


@pytest.mark.parametrize(("container", "ended", "named"), [
    ({"type": "DOCKER", "docker": {"image": "web:1", "network": "NONE"}, "volumes": [
        {"container_path": "/", "host_path": CANARY, "mode": "RW"}]},
     "TASK_ERROR", "container.volumes[0].container_path /: a volume cannot cover the whole root filesystem"),
    ({"type": "MESOS", "volumes": [{"container_path": "d", "host_path": "/nonexistent/x", "mode": "RO"}]},
     "TASK_FAILED", "volume container.volumes[0] at d: host path /nonexistent/x does not exist"),
    ({"type": "MESOS", "network_infos": [{"name": "nope"}]}, "TASK_FAILED", "network 'nope' is unknown"),
    ({"type": "DOCKER", "docker": {"image": "web:1", "network": "BRIDGE", "port_mappings": [
        {"host_port": OUTSIDE, "container_port": 80}]}}, "TASK_ERROR", f"host_port {OUTSIDE}"),
    ({"type": "DOCKER", "docker": {"image": "nope:1"}}, "TASK_FAILED", "nope:1"),
])
def test_what_cannot_run_ends_naming_it(world: tuple[LocalCluster, BridgeNetwork, RawFramework],
                                        container: dict[str, Any], ended: str, named: str) -> None:
    state, message = _launch(world[2], container, long=False)
    assert state == ended and named in message, (state, message)


def test_afterwards_nothing_is_stranded_or_left(world: tuple[LocalCluster, BridgeNetwork, RawFramework]) -> None:
    cluster, network, raw = world
    assert all(OUTCOMES[k] for k in ("400", "TASK_ERROR", "TASK_FINISHED", "TASK_KILLED", "networked")), OUTCOMES
    assert sorted(p.name for p in Path(CANARY).iterdir()) == ["keep"] and (Path(CANARY) / "keep").read_text() == "k\n"
    agent = httpx.get(f"{cluster.agent_url(0)}/state", timeout=10).json()
    assert not [e for f in agent["frameworks"] for e in f["executors"] if e["tasks"]], "a container still runs"
    mine = {f"netns: {netns_name(i)}" for i in CONTAINER_IDS}

    def leaks() -> list[str]:  # other tests on the host make namespaces too: only ours count
        return [leak for leak in network.leaks() if not leak.startswith("netns: ") or leak in mine]
    wait_until(lambda: leaks() == [], 30, "no netns, veth, rule, lease or mount left", describe=leaks)
    overlays = cluster.work_dir / "agent0" / "provisioner" / "containers"
    wait_until(lambda: not overlays.exists() or not any(overlays.iterdir()), 10, "no container overlay left",
               describe=lambda: list(overlays.iterdir()))  # (none is made when no image task got that far)

    seen: list[Any] = []

    def all_offered() -> bool:
        """Every offer outstanding (the agent's resources may come back in more than one), summed."""
        offers = [o for event in raw.events_now("OFFERS") for o in event["offers"]["offers"]]
        if not offers:
            raw.call("REVIVE")
            offers = raw.next_event("OFFERS", 20.0)["offers"]["offers"]
        raw.call("DECLINE", decline={"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}})
        scalars: dict[str, float] = {}
        ports: list[tuple[int, int]] = []
        for resource in (r for o in offers for r in o["resources"]):
            if resource["type"] == "SCALAR":
                scalars[resource["name"]] = round(scalars.get(resource["name"], 0) + resource["scalar"]["value"], 3)
            elif resource["name"] == "ports":
                ports += [(x["begin"], x["end"]) for x in resource["ranges"]["range"]]
        seen[:] = [scalars, sorted(ports)]
        return scalars == {"cpus": 2, "mem": 1024, "disk": 256} and sum(e - b + 1 for b, e in ports) == 10
    master = raw.url.replace("/api/v1/scheduler", "")
    wait_until(all_offered, 30, "every resource of the agent offered again", describe=lambda: (
        seen, httpx.get(f"{master}/master/slaves").json()["slaves"][0].get("used_resources"),
        [t for t in httpx.get(f"{master}/master/tasks").json()["tasks"] if t["state"] not in TERMINAL]))
    assert cluster.logged_errors() == []
