"""Hostile calls on the jobs API of a live cluster: every mutated job, search and run-now is
answered below 500; a refused call leaves the stored jobs as they were; the jobs that pass run on
real offers without stranding anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.testing.local_cluster import LocalCluster, clusters
from meseta.testing.mutations import mutated

pytestmark = pytest.mark.timeout(300)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

SCHEDULED = {"name": "fuzzed", "command": "true", "owner": "o@example.com", "disabled": False,
             "schedule": "R2//PT1S", "scheduleTimeZone": "Europe/Berlin", "retries": 1, "cpus": 0.1, "mem": 16,
             "disk": 0, "concurrent": False, "maxCompletionTime": 60, "runAsUser": "",
             "environmentVariables": [{"name": "A", "value": "b"}],
             "fetch": [{"uri": "file:///etc/hostname", "cache": False, "extract": False, "executable": False}],
             "constraints": [["hostname", "LIKE", ".*"]], "description": "d", "ownerName": "n", "arguments": ["x"]}
DEPENDENT = {"name": "fuzzed-child", "command": "true", "owner": "", "disabled": False, "parents": ["anchor"],
             "cpus": 0.1, "mem": 16}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from clusters(tmp_path_factory.mktemp("jobs-fuzz"), agents=1, jobs=True)


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{cluster.jobs_address}", timeout=30) as client:
        anchor = {"name": "anchor", "command": "true", "owner": "", "disabled": False,
                  "schedule": "R0/2014-01-01T00:00:00Z/PT1H"}
        assert client.post("/v1/scheduler/iso8601", json=anchor).status_code == 204
        yield client


def _jobs(api: httpx.Client) -> list[dict[str, Any]]:
    jobs = api.get("/v1/scheduler/jobs").json()
    for job in jobs:  # what runs on its own changes between two reads
        for moving in ("schedule", "successCount", "errorCount", "lastSuccess", "lastError",
                       "errorsSinceLastSuccess"):
            job.pop(moving, None)
    return sorted(jobs, key=lambda j: j["name"])


@FUZZ
@given(st.sampled_from([("iso8601", SCHEDULED), ("dependency", DEPENDENT)])
       .flatmap(lambda pair: mutated(pair[1]).map(lambda m: (pair[0], m))))
def test_mutated_jobs(api: httpx.Client, case: tuple[str, Any]) -> None:
    path, mutation = case
    before = _jobs(api)
    answer = api.post(f"/v1/scheduler/{path}", content=mutation.body, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (mutation.where, answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert answer.json()["message"], mutation.where
        assert _jobs(api) == before, f"a refused call changed the jobs: {mutation.where}"
    else:
        assert answer.status_code == 204 and answer.content == b""


@FUZZ
@given(name=st.text(max_size=40), query=st.dictionaries(st.sampled_from(["name", "command", "any", "limit", "offset",
                                                                         "arguments"]), st.text(max_size=20)))
def test_hostile_names_and_queries(api: httpx.Client, name: str, query: dict[str, str]) -> None:
    quoted = quote(name, safe="", errors="surrogatepass")
    for method, path in (("GET", "/v1/scheduler/jobs/search"), ("GET", f"/v1/scheduler/job/{quoted}"),
                         ("GET", f"/v1/scheduler/job/stat/{quoted}"), ("GET", f"/v1/scheduler/stats/{quoted}"),
                         ("PUT", f"/v1/scheduler/job/{quoted}"), ("DELETE", f"/v1/scheduler/task/kill/{quoted}"),
                         ("PUT", f"/scheduler/job/success/{quoted}")):
        answer = api.request(method, path, params=query)
        assert answer.status_code < 500, (method, path, query, answer.status_code, answer.text[:300])


def test_what_the_fuzz_let_in_ran_and_left_the_agent_whole(api: httpx.Client, cluster: LocalCluster) -> None:
    """After the fuzz: nothing is stranded; the agent's resources come back to the framework."""
    from meseta.testing.waiting import wait_until

    for job in api.get("/v1/scheduler/jobs").json():
        api.delete(f"/v1/scheduler/job/{quote(job['name'], safe='')}")

    def idle() -> bool:
        state = httpx.get(f"http://{cluster.master}/master/state", timeout=5).json()
        used = sum(f["used_resources"]["cpus"] for f in state["frameworks"])
        return used == 0

    wait_until(idle, 60, "every run of a fuzzed job to end")
    assert cluster.logged_errors() == []
