"""Health checks of all three kinds on real tasks: each goes healthy, then unhealthy when its
service stops answering, and is killed after its consecutive failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import master_and_agent
from meseta.testing.pymesos_recorder import Recorder, driver_for, task

pytestmark = pytest.mark.integration

TIMING = {"delay_seconds": 0, "interval_seconds": 0.5, "timeout_seconds": 2, "consecutive_failures": 2,
          "grace_period_seconds": 10}


def test_command_http_and_tcp_checks_go_healthy_then_unhealthy(tmp_path: Path) -> None:
    http_port, tcp_port = free_port(), free_port()
    serve = ("python3 -m http.server --bind 127.0.0.1 {port} >/dev/null 2>&1 & server=$!; "
             "sleep 4; kill $server; sleep 60")
    checks: dict[str, tuple[str, dict[str, Any]]] = {
        "command": ("touch alive; sleep 4; rm alive; sleep 60",
                    {"type": "COMMAND", "command": {"value": "test -f alive"}}),
        "http": (serve.format(port=http_port), {"type": "HTTP", "http": {"port": http_port, "path": "/"}}),
        "tcp": (serve.format(port=tcp_port), {"type": "TCP", "tcp": {"port": tcp_port}}),
    }
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:4;mem:1024;disk:256") as (master, _), \
            driver_for(master, recorder) as driver:
        offer = recorder.take_offers()[0]
        driver.launchTasks(offer["id"], [task(name, offer, command={"value": command},
                                              health_check={**check, **TIMING})
                                         for name, (command, check) in checks.items()])
        for name in checks:
            killed = recorder.final(name, 40)
            with recorder.lock:
                mine = [u for u in recorder.updates if u["task_id"]["value"] == name]
            health = [u.get("healthy") for u in mine if u["state"] == "TASK_RUNNING" and "healthy" in u]
            assert health[0] is True and False in health, (name, health)
            assert health[health.index(False):] == [False] * (len(health) - health.index(False)), (name, health)
            assert all(u["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" for u in mine if "healthy" in u)
            assert killed["state"] == "TASK_KILLED" and killed["healthy"] is False, killed
