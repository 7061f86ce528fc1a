"""Operator events as the master sends them (mesos-api 3.3, v1 JSON), written out by hand."""

from __future__ import annotations

from typing import Any

AGENT_ID = "7f3c0b8e-1d2a-4c55-9a0b-2b7e3f9d1c44-S1"
FRAMEWORK_ID = "7f3c0b8e-1d2a-4c55-9a0b-2b7e3f9d1c44-0000"


def agent(agent_id: str = AGENT_ID, ip: str = "10.0.0.1", port: int = 5051) -> dict[str, Any]:
    return {"agent_info": {"id": {"value": agent_id}, "hostname": f"host-{ip}", "port": port},
            "active": True, "pid": f"slave(1)@{ip}:{port}", "version": "1.11.0"}


def framework(name: str = "marathon", framework_id: str = FRAMEWORK_ID, hostname: str = "10.0.0.9") -> dict[str, Any]:
    return {"framework_info": {"id": {"value": framework_id}, "name": name, "user": "root", "hostname": hostname},
            "active": True, "connected": True, "recovered": False}


def ports(*spans: tuple[int, int]) -> dict[str, Any]:
    return {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": b, "end": e} for b, e in spans]}}


def status(task_id: str, state: str = "TASK_RUNNING", healthy: bool | None = None, timestamp: float = 1.0,
           ips: tuple[str, ...] = (), labels: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": {"value": task_id}, "state": state, "timestamp": timestamp,
                           "agent_id": {"value": AGENT_ID}, "source": "SOURCE_EXECUTOR"}
    if healthy is not None:
        out["healthy"] = healthy
    if ips:
        out["container_status"] = {"network_infos": [{"ip_addresses": [{"ip_address": ip} for ip in ips]}]}
    if labels:
        out["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
    return out


def task(task_id: str = "web.1", name: str = "web", state: str = "TASK_RUNNING", agent_id: str = AGENT_ID,
         framework_id: str = FRAMEWORK_ID, host_ports: tuple[tuple[int, int], ...] = ((31000, 31000),),
         discovery: dict[str, Any] | None = None, statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": {"value": task_id}, "name": name, "framework_id": {"value": framework_id},
        "agent_id": {"value": agent_id}, "state": state,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}, ports(*host_ports)],
        "statuses": statuses if statuses is not None else ([status(task_id)] if state == "TASK_RUNNING" else []),
    }
    if discovery is not None:
        out["discovery"] = discovery
    return out


def subscribed(tasks: list[dict[str, Any]], agents: list[dict[str, Any]] | None = None,
               frameworks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "SUBSCRIBED", "subscribed": {"heartbeat_interval_seconds": 15, "get_state": {
        "get_tasks": {"tasks": tasks},
        "get_executors": {"executors": []},
        "get_frameworks": {"frameworks": [framework()] if frameworks is None else frameworks},
        "get_agents": {"agents": [agent()] if agents is None else agents},
    }}}


def task_added(body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "TASK_ADDED", "task_added": {"task": body}}


def task_updated(task_id: str, state: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": "TASK_UPDATED", "task_updated": {"framework_id": {"value": FRAMEWORK_ID},
                                                     "status": status(task_id, state, **kwargs), "state": state}}
