"""The agent's v1 executor endpoint: each invalid call gets the status the spec gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from meseta.agent.actor import AgentActor
from meseta.agent.containerizer.launcher import PosixLauncher
from meseta.agent.http.app import build_agent_app
from meseta.agent.options import AgentOptions
from meseta.agent.runs import CustomRun
from meseta.agent.seams import AgentSeams
from meseta.client import new_uuid
from meseta.core.resources import Resources

FRAMEWORK = {"id": {"value": "fw"}, "user": "", "name": "f"}
EXECUTOR = {"executor_id": {"value": "ex"}, "command": {"value": "sleep 30"}}
IDS = {"framework_id": {"value": "fw"}, "executor_id": {"value": "ex"}}


def make_agent(tmp_path: Path) -> AgentActor:
    """An agent (not connected to any master) running one custom executor that has not subscribed."""
    options = AgentOptions("127.0.0.1:1", work_dir=tmp_path, switch_user=False)
    agent = AgentActor(options, Resources.parse("cpus:1;mem:128"), AgentSeams(launcher=PosixLauncher(), seed=1))
    agent.machine.agent_id = "agent-1"
    task = {"task_id": {"value": "t1"}, "name": "t1", "agent_id": {"value": "agent-1"}, "executor": EXECUTOR}
    agent.run(agent.machine.handle_master_message, {"type": "RUN_TASK", "framework_info": FRAMEWORK, "task": task})
    return agent


def update(**status: Any) -> dict[str, Any]:
    base = {"task_id": {"value": "t1"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR", "uuid": new_uuid()}
    return {"type": "UPDATE", **IDS, "update": {"status": {**base, **status}}}


async def test_executor_calls_are_validated(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    transport = httpx.ASGITransport(app=build_agent_app(agent, {}))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as http:
        async def post(body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
            return await http.post("/api/v1/executor", json=body, headers=headers)

        assert (await http.post("/api/v1/executor", content=b"{", headers={"Content-Type": "application/json"})
                ).status_code == 400
        assert (await http.post("/api/v1/executor", content=b"{}", headers={"Content-Type": "text/xml"})
                ).status_code == 415
        assert (await http.get("/api/v1/executor")).status_code == 405
        assert (await post({"type": "UPDATE"})).status_code == 400  # no ids
        unknown = await post({"type": "HEARTBEAT", "framework_id": {"value": "fw"}, "executor_id": {"value": "x"}})
        assert unknown.status_code == 400 and "Executor cannot be found" in unknown.text
        not_subscribed = await post(update())
        assert not_subscribed.status_code == 403 and "not subscribed" in not_subscribed.text

        run = agent.machine.executors[("fw", "ex")]
        assert isinstance(run, CustomRun)
        agent.open_executor_stream(run.key)  # as a SUBSCRIBE would
        agent.run(agent.machine.handle_executor_subscribed, run.key, [])
        for bad, fragment in (({"source": "SOURCE_MASTER"}, "SOURCE_EXECUTOR"), ({"state": "TASK_STAGING"},
                              "TASK_STAGING"), ({"uuid": "bm90LTE2"}, "16 bytes"), ({"uuid": None}, "uuid")):
            response = await post(update(**bad))
            assert response.status_code == 400 and fragment in response.text, (bad, response.text)
        good = await post(update())
        assert good.status_code == 202
        assert agent.machine.book.has_pending("fw", "t1")
        assert (await post({"type": "MESSAGE", **IDS, "message": {}})).status_code == 400
    await agent.stop()
