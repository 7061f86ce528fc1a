"""A rolling upgrade of `meseta services` on real processes with agent-side HTTP health checks
(issue 6 acceptance): ten `busybox httpd` instances are replaced while the test samples the app
every ~100 ms, and at no sample do fewer than minimumHealthCapacity of them answer healthy or
more than maximumOverCapacity extra of them exist; then a new version whose health path 404s
never finishes deploying, and DELETE of its deployment rolls it back, leaving the instances
still on the good version alone."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from meseta.testing.clusters import services_cluster
from meseta.testing.services_api import remove_all_apps
from meseta.testing.waiting import wait_until

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp, MarathonHealthCheck  # noqa: E402
from marathon.models.app import MarathonUpgradeStrategy  # noqa: E402

pytestmark = pytest.mark.timeout(240)

APP = "/rolling"
N = 10
MIN_HEALTH, MAX_OVER = 0.5, 0.2
MIN_HEALTHY = math.ceil(N * MIN_HEALTH)  # 5
MAX_CAPACITY = math.floor(N * (1 + MAX_OVER))  # 12
if MAX_CAPACITY == MIN_HEALTHY:  # Marathon's extra instance so that the restart can progress
    MAX_CAPACITY += 1


def _cmd(content: str | None) -> str:
    """busybox httpd on $PORT0 serving ./www; /health exists only when ``content`` is given."""
    write = f"echo {content} > www/health && " if content is not None else ""
    return f"mkdir -p www && {write}exec busybox httpd -f -p $PORT0 -h www"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services_cluster(tmp_path_factory.mktemp("rolling")) as (_, url):
        yield url


@dataclass
class Sample:
    at: float
    total: int  # active tasks; one being killed still holds capacity until it is gone (as in Marathon)
    healthy: int  # TASK_RUNNING with healthCheckResults[0].alive
    tasks_healthy: int  # the app's own count
    versions: dict[str, int]
    deployments: list[str]


@dataclass
class Sampler:
    """GET /v2/apps/<id>?embed=apps.tasks every ~100 ms in a thread, until stopped."""

    url: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_until(lambda: self.samples, 10, "the first sample")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                try:
                    app = http.get(f"{self.url}/v2/apps{APP}", params={"embed": "apps.tasks"}).json()["app"]
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    self.errors.append(repr(exc))
                else:
                    self.samples.append(_sample(app))
                self._stop.wait(0.1)

    def check(self, what: str) -> None:
        """Every sample so far kept minHealthy healthy and at most maxCapacity instances."""
        assert not self.errors, f"{what}: sampling failed: {self.errors[:3]}"
        low = [s for s in self.samples if s.healthy < MIN_HEALTHY or s.tasks_healthy < MIN_HEALTHY]
        assert not low, f"{what}: fewer than {MIN_HEALTHY} healthy at {len(low)} of {len(self.samples)} " \
                        f"samples, first: {low[0]}; timeline:\n{self.timeline()}"
        high = [s for s in self.samples if s.total > MAX_CAPACITY]
        assert not high, f"{what}: more than {MAX_CAPACITY} instances at {len(high)} of {len(self.samples)} " \
                         f"samples, first: {high[0]}; timeline:\n{self.timeline()}"

    def timeline(self) -> str:
        """The samples where anything changed, one line each."""
        lines, last = [], None
        for s in self.samples:
            key = (s.total, s.healthy, sorted(s.versions.items()), s.deployments)
            if key != last:
                lines.append(f"  +{s.at - self.samples[0].at:6.2f}s total={s.total} healthy={s.healthy} "
                             f"versions={sorted(s.versions.values())} deployments={s.deployments}")
                last = key
        return "\n".join(lines)


def _sample(app: dict[str, Any]) -> Sample:
    tasks = app.get("tasks", [])
    versions: dict[str, int] = {}
    for task in tasks:
        versions[task["version"]] = versions.get(task["version"], 0) + 1
    healthy = sum(1 for t in tasks if t["state"] == "TASK_RUNNING"
                  and (t.get("healthCheckResults") or [{}])[0].get("alive") is True)
    return Sample(time.monotonic(), len(tasks), healthy, app["tasksHealthy"], versions,
                  [d["id"] for d in app["deployments"]])


def _settled(client: MarathonClient, timeout: float = 60) -> Any:
    """The app with N tasks, all running and healthy on its version, and no deployment."""
    seen: list[Any] = []

    def done() -> Any:
        app = client.get_app(APP, embed_tasks=True)
        on_version = sum(1 for t in app.tasks if t.version == app.version)
        seen[:] = [(app.tasks_running, app.tasks_healthy, len(app.tasks), on_version, app.deployments)]
        settled = (app.tasks_running == N and app.tasks_healthy == N and len(app.tasks) == N
                   and on_version == N and not app.deployments)
        return app if settled else None
    return wait_until(done, timeout, f"{APP}: {N} tasks running, healthy, on its version, no deployment",
                      describe=lambda: f"(running, healthy, tasks, on version, deployments) {seen}")


@pytest.fixture
def client(services: str) -> Iterator[MarathonClient]:
    c = MarathonClient(services)
    yield c
    remove_all_apps(c)


def test_rolling_upgrade_keeps_capacity_and_a_failing_version_rolls_back(client: MarathonClient,
                                                                          services: str) -> None:
    check = MarathonHealthCheck(protocol="HTTP", path="/health", port_index=0, grace_period_seconds=5,
                                interval_seconds=1, timeout_seconds=1, max_consecutive_failures=3)
    client.create_app(APP, MarathonApp(
        cmd=_cmd("v1"), cpus=0.05, mem=16, instances=N, health_checks=[check],
        upgrade_strategy=MarathonUpgradeStrategy(minimum_health_capacity=MIN_HEALTH,
                                                 maximum_over_capacity=MAX_OVER)))
    first = _settled(client)
    assert first.upgrade_strategy.minimum_health_capacity == MIN_HEALTH
    assert all(t.health_check_results and t.health_check_results[0].alive for t in first.tasks)
    v1_ids = {t.id for t in first.tasks}

    # ---- 2. a rolling upgrade to a good new version, sampled throughout
    with Sampler(services) as sampler:
        answer = client.update_app(APP, MarathonApp(cmd=_cmd("v2")))
        assert answer["deploymentId"]
        good = _settled(client)
    sampler.check("upgrade to v2")
    assert good.cmd == _cmd("v2") and good.version != first.version
    assert not v1_ids & {t.id for t in good.tasks}, "every v1 instance was replaced"
    mixed = [s for s in sampler.samples if len(s.versions) > 1]
    assert mixed, f"the upgrade was rolling: some samples saw both versions; timeline:\n{sampler.timeline()}"
    good_ids = {t.id for t in good.tasks}

    # ---- 3. a failing version: the health path 404s; its deployment never finishes
    with Sampler(services) as sampler:
        answer = client.update_app(APP, MarathonApp(cmd=_cmd(None)))
        plan_id = answer["deploymentId"]

        def failing_seen() -> Any:
            app = client.get_app(APP, embed_tasks=True)
            new = [t for t in app.tasks if t.version == app.version]
            unhealthy = [t for t in new if t.health_check_results and not t.health_check_results[0].alive]
            return app if unhealthy else None
        bad = wait_until(failing_seen, 30, "a new instance reported unhealthy")
        assert bad.cmd == _cmd(None) and [d.id for d in bad.deployments] == [plan_id]
        assert any(d.id == plan_id for d in client.list_deployments()), "the deployment is still running"
        survivors = {t.id for t in bad.tasks if t.version == good.version}
        assert len(survivors) >= MIN_HEALTHY and survivors <= good_ids

        # ---- DELETE without force: a rollback deployment restores the good version
        revert = client.delete_deployment(plan_id)
        assert revert["deploymentId"] != plan_id
        final = _settled(client)
    sampler.check("failing version and its rollback")
    assert final.cmd == _cmd("v2") and final.version == good.version
    assert all(t.version == good.version for t in final.tasks)
    assert survivors <= {t.id for t in final.tasks}, "instances still on the good version were left alone"
    assert plan_id not in {d.id for d in client.list_deployments()}
