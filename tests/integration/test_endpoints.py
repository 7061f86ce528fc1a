"""The read-only endpoints of master and agent, with a task running."""

from __future__ import annotations

import httpx
import pytest

from meseta.testing.pymesos_recorder import Recorder, launch_running, start_driver


@pytest.mark.integration
def test_master_and_agent_endpoints(separate_processes: str) -> None:
    master = f"http://{separate_processes}"
    recorder = Recorder()
    driver = start_driver(separate_processes, recorder)
    try:
        offer = launch_running(driver, recorder, "watched", "echo hello-sandbox; sleep 30")
        with httpx.Client(timeout=10) as http:
            version = http.get(f"{master}/version").json()["version"]
            assert all(part.isdigit() for part in version.split("."))
            assert http.get(f"{master}/health").status_code == 200
            redirect = http.get(f"{master}/master/redirect", follow_redirects=False)
            assert redirect.status_code == 307 and redirect.headers["location"].startswith("//")
            for path in ("/master/state", "/state", "/master/state.json"):
                state = http.get(master + path).json()
                assert len(state["slaves"]) == 2 and state["frameworks"][0]["tasks"][0]["id"] == "watched"
            assert http.get(f"{master}/master/frameworks").json()["frameworks"][0]["name"] == "pymesos-test"
            assert len(http.get(f"{master}/master/slaves").json()["slaves"]) == 2
            tasks = http.get(f"{master}/master/tasks", params={"limit": 5}).json()["tasks"]
            assert [t["state"] for t in tasks if t["id"] == "watched"] == ["TASK_RUNNING"]
            assert http.get(f"{master}/master/tasks", params={"limit": "x"}).status_code == 400
            metrics = http.get(f"{master}/metrics/snapshot").json()
            assert metrics["master/elected"] == 1 and metrics["master/tasks_running"] == 1
            assert metrics["master/cpus_total"] == 8.0

            slave = next(s for s in state["slaves"] if s["id"] == offer["agent_id"]["value"])
            agent = f"http://{slave['hostname']}:{slave['port']}"
            agent_state = http.get(f"{agent}/state").json()
            executor = agent_state["frameworks"][0]["executors"][0]
            sandbox = executor["directory"]
            listing = http.get(f"{agent}/files/browse", params={"path": sandbox}).json()
            assert {entry["path"].rsplit("/", 1)[1] for entry in listing} >= {"stdout", "stderr"}
            size = http.get(f"{agent}/files/read", params={"path": f"{sandbox}/stdout", "offset": -1}).json()
            assert size["offset"] > 0 and size["data"] == ""
            read = http.get(f"{agent}/files/read", params={"path": f"{sandbox}/stdout", "offset": 0}).json()
            assert "hello-sandbox" in read["data"]
            assert http.get(f"{agent}/files/read", params={"path": "/etc/passwd", "offset": 0}).status_code == 404
            escape = f"{sandbox}/../../../../../../../../../../etc/passwd"
            assert http.get(f"{agent}/files/read", params={"path": escape, "offset": 0}).status_code == 404
            stats = http.get(f"{agent}/monitor/statistics").json()
            assert stats[0]["statistics"]["processes"] >= 1 and stats[0]["statistics"]["mem_rss_bytes"] > 0
    finally:
        driver.stop()
        driver.join()
