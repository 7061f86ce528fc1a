"""Deactivation, draining and reactivation show in every view of the master: /master/state,
/master/slaves, the operator API's GET_AGENTS and the metrics (Mesos sets a deactivated agent
inactive; an agent was once shown active after DEACTIVATE_AGENT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.testing.local_cluster import LocalCluster
from meseta.testing.waiting import wait_until

pytest.importorskip("pymesos")
from meseta.testing.pymesos_recorder import Recorder, driver_for, task


def views(master: str) -> dict[str, Any]:
    """What every view says of the one agent: (active, deactivated, drain state) and the counts."""
    state = httpx.get(f"http://{master}/master/state").json()
    (slave,) = state["slaves"]
    (listed,) = httpx.get(f"http://{master}/master/slaves").json()["slaves"]
    agents = httpx.post(f"http://{master}/api/v1", json={"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
    metrics = httpx.get(f"http://{master}/metrics/snapshot").json()
    drain = slave.get("drain_info", {}).get("state")
    return {
        "state": (slave["active"], slave["deactivated"], drain),
        "slaves": (listed["active"], listed["deactivated"], listed.get("drain_info", {}).get("state")),
        "operator": (agents[0]["active"], agents[0]["deactivated"], agents[0].get("drain_info", {}).get("state")),
        "counts": (state["activated_slaves"], state["deactivated_slaves"],
                   metrics["master/slaves_active"], metrics["master/slaves_inactive"]),
    }


def everywhere(active: bool, deactivated: bool, drain: str | None) -> dict[str, Any]:
    one = (active, deactivated, drain)
    return {"state": one, "slaves": one, "operator": one,
            "counts": (1, 0, 1, 0) if active else (0, 1, 0, 1)}


def operator(master: str, kind: str, agent_id: str, **extra: Any) -> None:
    call = {"type": kind, kind.lower(): {"agent_id": {"value": agent_id}, **extra}}
    response = httpx.post(f"http://{master}/api/v1", json=call)
    assert response.status_code == 200, response.text


@pytest.mark.integration
def test_deactivate_drain_and_reactivate_show_everywhere(tmp_path: Path) -> None:
    with LocalCluster(tmp_path) as cluster:
        master = cluster.master
        (agent_id,) = [a["id"] for a in httpx.get(f"http://{master}/master/slaves").json()["slaves"]]
        assert views(master) == everywhere(True, False, None)

        operator(master, "DEACTIVATE_AGENT", agent_id)
        assert views(master) == everywhere(False, True, None)
        operator(master, "REACTIVATE_AGENT", agent_id)
        assert views(master) == everywhere(True, False, None)

        recorder = Recorder()
        with driver_for(master, recorder) as driver:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task("sleeper", offer, command={"value": "sleep 60"})])
            recorder.wait(lambda: "TASK_RUNNING" in recorder.states("sleeper"), what="the task running")
            operator(master, "DRAIN_AGENT", agent_id, max_grace_period={"nanoseconds": 1_000_000_000})
            seen = views(master)
            assert seen["state"][:2] == (False, True) and seen["state"][2] in ("DRAINING", "DRAINED")
            recorder.wait(lambda: "TASK_KILLED" in recorder.states("sleeper"), what="the drained task killed")
            wait_until(lambda: views(master) == everywhere(False, True, "DRAINED"), 10, "the agent DRAINED",
                       describe=lambda: views(master))
            operator(master, "REACTIVATE_AGENT", agent_id)
            assert views(master) == everywhere(True, False, None)
        assert cluster.logged_errors() == [] and cluster.deposed == []
