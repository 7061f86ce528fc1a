"""A deployment that cannot make progress: reported with its reason after
--deployment-stall-timeout, and rolled back on its own when the app asks for it with the label
MESETA_ROLLBACK_ON_STALL=true; the rollback leaves instances already on the old version alone."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meseta.daemons import free_port

from .conftest import _stop, wait_for_agents
from .test_services_marathon import RESOURCES, _deployed, _pings, _proc, _until

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MarathonClient]:
    master = f"127.0.0.1:{free_port()}"
    port = free_port()
    procs = [_proc(["master", "--port", master.split(":")[1], "--work-dir", str(tmp_path / "m"),
                    "--allocation-interval", "0.2"], tmp_path / "master.log"),
             _proc(["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp_path / "a"),
                    "--no-switch-user", "--resources", RESOURCES], tmp_path / "agent.log"),
             _proc(["services", "--master", master, "--port", str(port), "--work-dir", str(tmp_path / "s"),
                    "--deployment-stall-timeout", "3"], tmp_path / "services.log")]
    try:
        wait_for_agents(master, 1)
        _until(lambda: _pings(f"http://127.0.0.1:{port}"), 30, "services")
        yield MarathonClient(f"http://127.0.0.1:{port}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        _stop(procs)


def _stalls(client: MarathonClient) -> dict[str, str]:
    answer = httpx.get(f"{client.servers[0]}/v2/deployments?embed=stall").json()
    return {d["affectedApps"][0]: d["stallReason"] for d in answer if "stallReason" in d}


def test_stalled_deployment_is_reported_and_rolled_back_when_asked(client: MarathonClient) -> None:
    labels = {"MESETA_ROLLBACK_ON_STALL": "true"}
    client.create_app("careful", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=2, labels=labels))
    client.create_app("plain", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=1))
    before = {t.id for t in _deployed(client, "careful", 2).tasks}
    good_version = client.get_app("careful").version
    _deployed(client, "plain", 1)

    # a new version that no offer can hold
    client.update_app("careful", MarathonApp(cmd="sleep 3601", mem=100_000), force=True)
    client.update_app("plain", MarathonApp(cmd="sleep 3601", mem=100_000), force=True)
    stalls = _until(lambda: (found := _stalls(client)) and "/plain" in found and found, 30, "a stall reported")
    assert "InsufficientMemory" in stalls["/plain"], stalls

    app = _until(lambda: (a := client.get_app("careful", embed_tasks=True)).mem == 16 and not a.deployments and a,
                 30, "the careful app rolled back")
    assert app.cmd == "sleep 3600" and app.tasks_running == 2
    assert {t.id for t in app.tasks} == before, "instances on the good version were left alone"
    assert client.get_version("careful", good_version).cmd == "sleep 3600"
    assert client.get_app("plain").mem == 100_000, "an app without the label waits, reported"
