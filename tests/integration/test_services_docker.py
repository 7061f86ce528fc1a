"""Marathon apps of container.type DOCKER: once they ran on the host without a word; now the
agent runs the image as the task's root filesystem (no Docker daemon), and what it cannot honour
(here a bridge network, on an agent started without CNI networks) fails the task with a message
naming it. Bridged apps on an agent with networks: test_containers_e2e.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from meseta.testing.images import BUSYBOX, docker_archive
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def test_a_docker_app_runs_on_its_image_and_a_bridge_one_fails_saying_why(tmp_path: Path) -> None:
    if not BUSYBOX.exists():
        pytest.skip("needs Debian's busybox-static (scripts/install-test-system.sh)")
    image = str(docker_archive(tmp_path / "tiny.tar"))
    with LocalCluster(tmp_path / "cluster", agents=1, services=True) as cluster:
        boxed = {"id": "/boxed", "cmd": "cat /etc/os-release /hello.txt && sleep 3600", "cpus": 0.1, "mem": 16,
                 "instances": 1, "container": {"type": "DOCKER", "docker": {"image": image}}}
        assert httpx.post(f"{cluster.services_url}/v2/apps", json=boxed).status_code == 201

        def output() -> str:
            found = list(cluster.work_dir.glob("agent0/slaves/*/frameworks/*/executors/boxed.*/runs/latest/stdout"))
            return found[0].read_text() if found else ""

        wait_until(lambda: output() == "tiny-image\nfrom layer 2\n", 30, "the app's output, from its image")

        bridged = {"id": "/bridged", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 1,
                   "networks": [{"mode": "container/bridge"}],
                   "container": {"type": "DOCKER", "docker": {"image": image},
                                 "portMappings": [{"containerPort": 80, "hostPort": 0}]}}
        assert httpx.post(f"{cluster.services_url}/v2/apps", json=bridged).status_code == 201

        def failure() -> str:
            app = httpx.get(f"{cluster.services_url}/v2/apps/bridged").json()["app"]
            return str((app.get("lastTaskFailure") or {}).get("message", ""))

        wait_until(lambda: "this agent has no container networks" in failure(), 30, "the bridge app's failure")
        assert cluster.logged_errors() == []
