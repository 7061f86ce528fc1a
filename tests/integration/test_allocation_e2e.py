"""Allocation features end to end, with real processes and the unmodified pymesos client.

* A framework reserves resources, creates a persistent volume and writes into it; a later task
  on the re-offered volume reads the data, also after the master and then the agent restart.
* Two frameworks in roles weighted 1 and 3 fill a cluster to a 1:3 dominant-share ratio.
* Maintenance: a scheduled machine yields inverse offers; DRAIN_AGENT kills its task with
  REASON_AGENT_DRAINING and the agent offers nothing more.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import kill9, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes
from meseta.testing.pymesos_recorder import Recorder, scalar, start_driver

pytestmark = pytest.mark.integration

ROLE = "db"


def _reserved(text_items: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": ROLE,
             "reservations": [{"type": "DYNAMIC", "role": ROLE, "principal": "test"}]} for name, value in text_items]


def _volume() -> dict[str, Any]:
    (disk,) = _reserved([("disk", 64)])
    disk["disk"] = {"persistence": {"id": "pg-data", "principal": "test"},
                    "volume": {"container_path": "data", "mode": "RW"}}
    return disk


def _has_volume(offer: dict[str, Any]) -> bool:
    return any((r.get("disk") or {}).get("persistence", {}).get("id") == "pg-data" for r in offer["resources"])


class VolumeUser:
    """Runs tasks on the volume whenever an offer carries it, one command at a time."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.queue: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def on_offers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            with self.lock:
                job = self.queue.pop(0) if self.queue and _has_volume(offer) else None
            if job is None:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 0.2})
                continue
            task_id, command = job
            resources = [*_reserved([("cpus", 0.1), ("mem", 32)]), _volume()]
            info = {"task_id": {"value": task_id}, "agent_id": offer["agent_id"], "name": task_id,
                    "command": {"value": command}, "resources": resources}
            driver.launchTasks(offer["id"], [info], filters={"refuse_seconds": 0.2})

    def run(self, task_id: str, command: str) -> str:
        with self.lock:
            self.queue.append((task_id, command))
        self.recorder.wait(lambda: any(s in {"TASK_FINISHED", "TASK_FAILED", "TASK_ERROR", "TASK_LOST"}
                                       for s in self.recorder.states(task_id)), 60, f"{task_id} to end")
        return self.recorder.states(task_id)[-1]


def test_volume_outlives_tasks_and_restarts_of_master_and_agent(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    master_args = ["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                   "--allocation-interval", "0.2"]
    agent_args = ["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp_path / "agent"),
                  "--resources", "cpus:2;mem:1024;disk:1024;ports:[31000-31100]", "--no-switch-user"]
    master_proc = start_daemon(master_args, tmp_path / "master.log")
    agent_proc = start_daemon(agent_args, tmp_path / "agent.log")
    procs = [master_proc, agent_proc]
    recorder = Recorder()
    driver = None
    try:
        wait_for_agents(master, 1)
        driver = start_driver(master, recorder, role=ROLE, failover_timeout=600)
        offer = recorder.take_offers()[0]
        operations = [
            {"type": "RESERVE", "reserve": {"resources": _reserved([("cpus", 0.5), ("mem", 128), ("disk", 64)])}},
            {"type": "CREATE", "create": {"volumes": [_volume()]}},
            {"type": "LAUNCH", "launch": {"task_infos": [{
                "task_id": {"value": "writer"}, "agent_id": offer["agent_id"], "name": "writer",
                "command": {"value": "echo persisted > data/hello"},
                "resources": [*_reserved([("cpus", 0.1), ("mem", 32)]), _volume()]}]}},
        ]
        driver.acceptOffers([offer["id"]], operations, filters={"refuse_seconds": 0.2})
        recorder.wait(lambda: "TASK_FINISHED" in recorder.states("writer"), 30, "the writer")
        user = VolumeUser(recorder)
        recorder.on_offers = user.on_offers
        with recorder.lock:
            held, recorder.offers = recorder.offers, []
        for stale in held:  # offers that came before the handler: give them back
            driver.declineOffer(stale["id"], filters={"refuse_seconds": 0})
        assert user.run("reader-1", 'test "$(cat data/hello)" = persisted') == "TASK_FINISHED"
        assert user.run("negative-control", 'test "$(cat data/hello)" = something-else') == "TASK_FAILED"

        kill9(master_proc)  # the master forgets everything but its registry...
        procs.append(start_daemon(master_args, tmp_path / "master.log"))
        assert user.run("reader-2", 'test "$(cat data/hello)" = persisted') == "TASK_FINISHED"

        kill9(agent_proc)  # ...and the agent keeps its reservations and volume in meta/
        procs.append(start_daemon(agent_args, tmp_path / "agent.log"))
        assert user.run("reader-3", 'test "$(cat data/hello)" = persisted') == "TASK_FINISHED"

        (slave,) = httpx.get(f"http://{master}/master/slaves").json()["slaves"]
        assert slave["reserved_resources"][ROLE]["cpus"] == 0.5
        assert slave["reserved_resources"][ROLE]["disk"] == 64
        checkpointed = (tmp_path / "agent" / "meta" / "resources" / "resources.info").read_text()
        assert "pg-data" in checkpointed
        assert (tmp_path / "agent" / "volumes" / "roles" / ROLE / "pg-data" / "hello").read_text() == "persisted\n"
    finally:
        if driver is not None:
            driver.stop()
            driver.join()
        stop_processes(procs)


def test_weights_one_to_three_give_a_one_to_three_dominant_share(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                           "--allocation-interval", "0.1"], tmp_path / "master.log")]
    for index in range(2):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                                   str(tmp_path / f"agent{index}"), "--resources", "cpus:8;mem:8192;disk:1024",
                                   "--no-switch-user"], tmp_path / f"agent{index}.log"))
    drivers = []
    try:
        wait_for_agents(master, 2)
        update = {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
            {"role": "light", "weight": 1.0}, {"role": "heavy", "weight": 3.0}]}}
        assert httpx.post(f"http://{master}/api/v1", json=update).status_code == 200
        assert httpx.get(f"http://{master}/weights").json() == [{"role": "heavy", "weight": 3.0},
                                                                 {"role": "light", "weight": 1.0}]
        counts = {"light": 0, "heavy": 0}

        def greedy(role: str) -> Any:
            def on_offers(driver: Any, offers: list[dict[str, Any]]) -> None:
                for offer in offers:  # one small task per offer, the rest back at once
                    if scalar(offer, "cpus") < 0.1 or scalar(offer, "mem") < 32:
                        driver.declineOffer(offer["id"], filters={"refuse_seconds": 0})
                        continue
                    counts[role] += 1
                    task_id = f"{role}-{counts[role]}"
                    info = {"task_id": {"value": task_id}, "agent_id": offer["agent_id"], "name": task_id,
                            "command": {"value": "sleep 300"},
                            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
                    driver.launchTasks(offer["id"], [info], filters={"refuse_seconds": 0})
            return on_offers

        recorders = {}
        for role in ("light", "heavy"):
            recorder = Recorder()
            recorder.on_offers = greedy(role)
            recorders[role] = recorder
            drivers.append(start_driver(master, recorder, role=role, name=role))
        recorders["heavy"].wait(lambda: counts["light"] + counts["heavy"] >= 160, 120, "a full cluster")
        for role, recorder in recorders.items():
            recorder.wait(lambda r=recorder, n=counts[role]: sum(  # type: ignore[misc]
                s["state"] == "TASK_RUNNING" for s in r.updates) >= n, 60, f"{role} tasks running")
        roles = {r["name"]: r for r in httpx.get(f"http://{master}/roles").json()["roles"]}
        share = {role: max(roles[role]["allocated"]["cpus"] / 16, roles[role]["allocated"]["mem"] / 16384)
                 for role in ("light", "heavy")}
        ratio = share["heavy"] / share["light"]
        assert abs(ratio / 3 - 1) <= 0.05, (ratio, counts)
    finally:
        for driver in drivers:
            driver.stop()
            driver.join()
        stop_processes(procs)


class MaintenanceRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.inverse: list[dict[str, Any]] = []

    def inverseOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        with self.lock:
            self.inverse.extend(offers)
            self.lock.notify_all()


def test_maintenance_inverse_offers_and_drain(separate_processes: str) -> None:
    master = separate_processes
    recorder = MaintenanceRecorder()
    driver = start_driver(master, recorder)
    try:
        offer, *others = recorder.take_offers()
        for other in others:
            driver.declineOffer(other["id"], filters={"refuse_seconds": 0})
        agent_id = offer["agent_id"]["value"]
        info = {"task_id": {"value": "victim"}, "agent_id": offer["agent_id"], "name": "victim",
                "command": {"value": "sleep 300"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                              {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
        driver.launchTasks(offer["id"], [info])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("victim"), what="victim running")
        hostname = offer["hostname"]
        schedule = {"windows": [{"machine_ids": [{"hostname": hostname}],
                                 "unavailability": {"start": {"nanoseconds": 4_000_000_000_000_000_000}}}]}
        call = {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": schedule}}
        assert httpx.post(f"http://{master}/api/v1", json=call).status_code == 200
        recorder.wait(lambda: bool(recorder.inverse), what="an inverse offer")
        assert recorder.inverse[0]["agent_id"]["value"] == agent_id
        driver.acceptInverseOffers([recorder.inverse[0]["id"]])
        status = httpx.post(f"http://{master}/api/v1", json={"type": "GET_MAINTENANCE_STATUS"}).json()
        machines = status["get_maintenance_status"]["status"]["draining_machines"]
        assert machines[0]["id"] == {"hostname": hostname}
        assert httpx.get(f"http://{master}/maintenance/schedule").json() == schedule

        bad = httpx.post(f"http://{master}/api/v1", json={"type": "DRAIN_AGENT", "drain_agent": {
            "agent_id": {"value": agent_id}, "max_grace_period": "soon"}})
        assert bad.status_code == 400 and "max_grace_period" in bad.text
        drain = {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id},
                                                        "max_grace_period": "1s"}}
        assert httpx.post(f"http://{master}/api/v1", json=drain).status_code == 200
        recorder.wait(lambda: "TASK_KILLED" in recorder.states("victim"), what="the drained task killed")
        killed = [u for u in recorder.updates if u["task_id"]["value"] == "victim" and u["state"] == "TASK_KILLED"]
        assert killed[0]["reason"] == "REASON_AGENT_DRAINING"
        agents = httpx.post(f"http://{master}/api/v1", json={"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
        (drained,) = [a for a in agents if a["agent_info"]["id"]["value"] == agent_id]
        assert drained["deactivated"] is True
        with recorder.lock:
            held, recorder.offers = recorder.offers, []
        for stale in held:
            driver.declineOffer(stale["id"], filters={"refuse_seconds": 0})
        driver.reviveOffers()
        recorder.wait(lambda: bool(recorder.offers), what="offers from the other agent")
        assert all(o["agent_id"]["value"] != agent_id for o in recorder.take_offers())
        assert _drain_state(master, agent_id) == "DRAINED"  # its last task ended before we heard of it
    finally:
        driver.stop()
        driver.join()


def _drain_state(master: str, agent_id: str) -> str | None:
    for slave in httpx.get(f"http://{master}/slaves").json()["slaves"]:
        if slave["id"] == agent_id:
            return (slave.get("drain_info") or {}).get("state")
    return None
