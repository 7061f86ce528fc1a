"""A deployment that cannot make progress: reported with its reason after
--deployment-stall-timeout, and rolled back on its own when the app asks for it with the label
MESETA_ROLLBACK_ON_STALL=true; the rollback leaves instances already on the old version alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meseta.testing.clusters import services_cluster
from meseta.testing.services_api import deployed
from meseta.testing.waiting import wait_until

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MarathonClient]:
    with services_cluster(tmp_path, 1, ["--deployment-stall-timeout", "3"]) as (_, url):
        yield MarathonClient(url)


def _stalls(client: MarathonClient) -> dict[str, str]:
    answer = httpx.get(f"{client.servers[0]}/v2/deployments?embed=stall").json()
    return {d["affectedApps"][0]: d["stallReason"] for d in answer if "stallReason" in d}


def test_stalled_deployment_is_reported_and_rolled_back_when_asked(client: MarathonClient) -> None:
    labels = {"MESETA_ROLLBACK_ON_STALL": "true"}
    client.create_app("careful", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=2, labels=labels))
    client.create_app("plain", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=1))
    before = {t.id for t in deployed(client, "careful", 2).tasks}
    good_version = client.get_app("careful").version
    deployed(client, "plain", 1)

    # a new version that no offer can hold
    client.update_app("careful", MarathonApp(cmd="sleep 3601", mem=100_000), force=True)
    client.update_app("plain", MarathonApp(cmd="sleep 3601", mem=100_000), force=True)
    stalls = wait_until(lambda: (found := _stalls(client)) and "/plain" in found and found, 30, "a stall reported")
    assert "InsufficientMemory" in stalls["/plain"], stalls

    app = wait_until(lambda: (a := client.get_app("careful", embed_tasks=True)).mem == 16 and not a.deployments and a,
                     30, "the careful app rolled back")
    assert app.cmd == "sleep 3600" and app.tasks_running == 2
    assert {t.id for t in app.tasks} == before, "instances on the good version were left alone"
    assert client.get_version("careful", good_version).cmd == "sleep 3600"
    assert client.get_app("plain").mem == 100_000, "an app without the label waits, reported"
