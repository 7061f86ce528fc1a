"""Waiting on `meseta services` through its Marathon API, for tests that drive it with the
unmodified marathon client (``MarathonClient``; any object with its ``get_app``, ``list_apps``,
``delete_app``, ``list_deployments`` and ``servers`` will do, so this module needs no marathon)::

    wait_until(lambda: pings(url), 30, "services to answer /ping")
    app = deployed(client, "/web", 3)     # 3 running, no deployment left; the app as the client parses it
    remove_all_apps(client)               # a test's clean-up: every app deleted (force), nothing deploying
"""

from __future__ import annotations

from typing import Any

import httpx

from meseta.testing.waiting import wait_until


def pings(url: str) -> bool:
    """Whether the services API at ``url`` ("http://host:port") answers /ping with 200."""
    try:
        return httpx.get(f"{url}/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def deployed(client: Any, app_id: str, running: int, timeout: float = 60) -> Any:
    """The app once exactly ``running`` of its tasks run and no deployment is left; on time-out the
    error shows the last (running, tasks, deployments, instances) seen and the launch queue."""
    seen: list[Any] = []

    def done() -> Any:
        app = client.get_app(app_id, embed_tasks=True)
        seen[:] = [(app.tasks_running, len(app.tasks), app.deployments, app.instances)]
        return app if app.tasks_running == running and not app.deployments and len(app.tasks) == running else None

    def describe() -> str:
        queue = httpx.get(f"{client.servers[0]}/v2/queue", timeout=5).json()
        return f"(running, tasks, deployments, instances) {seen}; queue {queue}"

    return wait_until(done, timeout, f"{app_id} with {running} running and no deployment", describe=describe)


def remove_all_apps(client: Any, timeout: float = 60) -> None:
    """Delete every app (force: whatever deploys is cancelled) and wait until no app and no deployment
    is left, as marathon-python's own integration tests clean up."""
    for app in client.list_apps():
        client.delete_app(app.id, force=True)
    wait_until(lambda: not client.list_apps() and not client.list_deployments(), timeout, "apps and deployments gone")
