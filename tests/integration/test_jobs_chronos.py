"""The real chronos-python 1.2.1 client against ``meseta jobs`` inside a local cluster: the
client's own itest scenarios (spec marathon-chronos.md 7.2), then jobs that really run on the
agents (each run appends a line to a file, so runs are counted where they happen)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.testing.local_cluster import LocalCluster, clusters
from meseta.testing.waiting import wait_until

chronos = pytest.importorskip("chronos")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from clusters(tmp_path_factory.mktemp("jobs"), agents=2, jobs=True)


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Any]:
    client = chronos.connect([cluster.jobs_address])
    yield client
    for job in client.list():  # as the client's itests clean up: delete until none is left
        client.delete(job["name"])
    assert client.list() == []


@pytest.fixture
def legacy(cluster: LocalCluster) -> Iterator[Any]:
    """A 2.x client. (chronos-python extends its class-wide list of required fields with 'async'
    when a 2.x client adds a job, so that every client after it demands 'async': the list is put
    back afterwards, as a fresh process would have it.)"""
    required = list(chronos.ChronosJob.fields)
    yield chronos.connect([cluster.jobs_address], scheduler_api_version=None)
    chronos.ChronosJob.fields[:] = required


def soon(seconds: float = 1.0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def job(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "owner": "", "disabled": False, **fields}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# ------------------------------------------------------------------ the client's own itests

def test_trivial_interaction_r0_in_the_past_is_accepted_and_listed(client: Any) -> None:
    client.add(job("myjob", "echo 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    assert [j["name"] for j in client.list()] == ["myjob"]


def test_spaces_in_names_are_refused_in_3x_and_accepted_in_2x(client: Any, legacy: Any) -> None:
    with pytest.raises(chronos.ChronosAPIError):
        client.add(job("job with spaces", "echo 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    assert client.list() == []
    legacy.add({**job("job with spaces", "echo 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"), "async": False})
    assert [j["name"] for j in legacy.list()] == ["job with spaces"]


def test_job_stats_of_a_job_never_run(client: Any) -> None:
    client.add(job("myjob", "echo 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    assert client.job_stat("myjob") == {"histogram": {"median": 0.0, "98thPercentile": 0.0, "75thPercentile": 0.0,
                                                      "95thPercentile": 0.0, "99thPercentile": 0.0, "count": 0,
                                                      "mean": 0.0}, "taskStatHistory": []}
    for stat in (client.scheduler_stat_99th, client.scheduler_stat_98th, client.scheduler_stat_95th,
                 client.scheduler_stat_75th, client.scheduler_stat_median, client.scheduler_stat_mean):
        assert stat() == [{"jobNameLabel": "myjob", "time": 0.0}]


def test_graph_metrics_and_search(client: Any) -> None:
    client.add(job("myjob", "echo 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    client.add(job("myotherjob", "sleep 1", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    rows = [line for line in client.scheduler_graph().splitlines() if line]
    assert sorted(rows) == ["node,myjob,fresh,idle", "node,myotherjob,fresh,idle"]
    metrics = client.metrics()
    assert "version" in metrics and "gauges" in metrics
    assert [j["name"] for j in client.search(name="myjob")] == ["myjob"]
    assert [j["name"] for j in client.search(command="echo")] == ["myjob"]


# ------------------------------------------------------------------ runs on the agents

def test_a_scheduled_job_runs_every_period_and_run_now_adds_a_run(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "ticks"
    client.add(job("ticker", f"echo $mesos_task_id >> {out}", schedule=f"R3/{soon(1)}/PT2S"))
    wait_until(lambda: len(lines(out)) == 3, 30, "three scheduled runs")
    time.sleep(2.5)
    assert len(lines(out)) == 3, "R3: three runs, no more"
    assert len({line.split(":")[1] for line in lines(out)}) == 3, "three distinct due times"
    client.run("ticker")
    wait_until(lambda: len(lines(out)) == 4, 30, "the run asked for")
    ticker = next(j for j in client.list() if j["name"] == "ticker")
    wait_until(lambda: next(j for j in client.list() if j["name"] == "ticker")["successCount"] == 4, 10,
               "four successes counted")
    assert ticker["schedule"].startswith("R0/")
    history = client.job_stat("ticker")
    assert history["histogram"]["count"] == 4 and len(history["taskStatHistory"]) == 4


def test_a_failing_job_is_retried_retries_times(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "attempts"
    client.add(job("flaky", f"echo x >> {out}; exit 3", schedule=f"R1/{soon(0.5)}/PT1H", retries=2))
    wait_until(lambda: next(j for j in client.list() if j["name"] == "flaky")["errorCount"] == 1, 30,
               "the run failed after its retries")
    assert len(lines(out)) == 3, "one attempt and two retries"
    flaky = next(j for j in client.list() if j["name"] == "flaky")
    assert flaky["successCount"] == 0 and flaky["errorsSinceLastSuccess"] == 1 and flaky["lastError"]


def test_a_child_runs_after_both_its_parents(client: Any, tmp_path: Path) -> None:
    out = tmp_path / "order"
    client.add(job("first", f"sleep 0.5; echo first >> {out}", schedule=f"R1/{soon(0.5)}/PT1H"))
    client.add(job("second", f"sleep 1.5; echo second >> {out}", schedule=f"R1/{soon(0.5)}/PT1H"))
    client.add(job("child", f"echo child >> {out}", parents=["first", "second"]))
    wait_until(lambda: "child" in lines(out), 30, "the child to run")
    assert lines(out) == ["first", "second", "child"]
    assert "link,first,child" in client.scheduler_graph() and "link,second,child" in client.scheduler_graph()


def test_a_disabled_job_never_runs(client: Any, tmp_path: Path, cluster: LocalCluster) -> None:
    out = tmp_path / "never"
    client.add(job("off", f"echo x >> {out}", schedule=f"R/{soon(0.2)}/PT1S", disabled=True))
    with pytest.raises(chronos.ChronosAPIError):
        client.run("off")
    time.sleep(3)
    assert not out.exists()
    answer = httpx.put(f"http://{cluster.jobs_address}/v1/scheduler/job/off")
    assert answer.status_code == 400 and "disabled" in answer.json()["message"]


def test_kill_stops_a_running_job_and_delete_removes_it(client: Any, cluster: LocalCluster) -> None:
    client.add(job("sleeper", "sleep 600", schedule=f"R1/{soon(0.2)}/PT1H"))
    wait_until(lambda: "sleeper:running" in _states(cluster), 30, "the run to start")
    client.delete_tasks("sleeper")
    wait_until(lambda: "sleeper:idle" in _states(cluster), 30, "the run killed")
    assert next(j for j in client.list() if j["name"] == "sleeper")["errorCount"] == 0, "a kill is no failure"
    client.delete("sleeper")
    assert client.list() == []
    with pytest.raises(chronos.ChronosAPIError):
        client.delete("sleeper")


def test_a_job_runs_on_its_mesos_image(client: Any, cluster: LocalCluster, tmp_path: Path) -> None:
    from meseta.testing.images import BUSYBOX, docker_archive

    if not BUSYBOX.exists():
        pytest.skip("needs Debian's busybox-static (scripts/install-test-system.sh)")
    image = docker_archive(tmp_path / "tiny.tar")
    for kind in ("MESOS", "DOCKER"):  # Chronos's default type is DOCKER; both run the image here
        name = f"boxed-{kind.lower()}"
        client.add(job(name, "cat /etc/os-release /hello.txt", schedule=f"R1/{soon(0.2)}/PT1H",
                       container={"type": kind, "image": str(image)}))
        wait_until(lambda n=name: next(j for j in client.list() if j["name"] == n)["successCount"] == 1, 30,
                   f"the {kind} run on the image")
        (stdout,) = cluster.work_dir.glob(f"agent*/slaves/*/frameworks/*/executors/ct:*:{name}:/runs/latest/stdout")
        assert stdout.read_text() == "tiny-image\nfrom layer 2\n", "the image's files, not the host's"


def _states(cluster: LocalCluster) -> set[str]:
    summary = httpx.get(f"http://{cluster.jobs_address}/v1/scheduler/jobs/summary").json()["jobs"]
    return {f"{j['name']}:{j['state']}" for j in summary}


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("path", "body", "named"), [
    ("iso8601", job("bad", "true", schedule="every tuesday"), "schedule"),
    ("iso8601", job("bad one", "true", schedule="R/2030-01-01T00:00:00Z/PT1H"), "name"),
    ("dependency", job("orphan", "true", parents=["nobody"]), "parents"),
    ("iso8601", job("both", "true", schedule="R/2030-01-01T00:00:00Z/PT1H", parents=["x"]), "parents"),
])
def test_bad_jobs_get_400_naming_the_field_and_nothing_is_stored(
        client: Any, cluster: LocalCluster, path: str, body: dict[str, Any], named: str) -> None:
    client.add(job("keeper", "true", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    before = client.list()
    answer = httpx.post(f"http://{cluster.jobs_address}/v1/scheduler/{path}", json=body)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"] and answer.json()["status"] == "Bad Request"
    assert client.list() == before


def test_a_dependency_cycle_is_refused(client: Any, cluster: LocalCluster) -> None:
    client.add(job("a", "true", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    client.add(job("b", "true", parents=["a"]))
    answer = httpx.post(f"http://{cluster.jobs_address}/v1/scheduler/dependency", json=job("a", "true", parents=["b"]))
    assert answer.status_code == 400 and "cycle" in answer.json()["message"]
    a = next(j for j in client.list() if j["name"] == "a")
    assert "parents" not in a and a["schedule"].startswith("R0/"), "a is still the scheduled job it was"
