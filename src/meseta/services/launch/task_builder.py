"""An app instance as a Mesos ``TaskInfo`` (pure): what Marathon's TaskBuilder puts in it.

    TaskInfo
      name          app id segments reversed, joined by dots (/prod/web -> web.prod)
      task_id       <safeAppId>.<uuid> (app_ids.new_task_id)
      resources     the placement's share of the offer (offer_matching.Placement)
      command       cmd under /bin/sh -c, or args without a shell; fetch -> uris; user
        environment app env + MARATHON_APP_ID/VERSION/RESOURCE_*/LABELS, HOST, PORT, PORTS,
                    PORT0..n, PORT_<port>, PORT_<NAME>, MARATHON_APP_LABEL_<NAME>
      container     MESOS with an image (container.type MESOS + docker.image), or DOCKER with
                    docker.image (the agent runs it with the Mesos containerizer)
      health_check  the app's first health check, run by the agent (Mesos-native): HTTP, TCP,
                    COMMAND and their MESOS_* spellings all become agent-side checks; only
                    MESOS_* and COMMAND wait delaySeconds (HTTP/HTTPS/TCP probe at once, as
                    Marathon-level checks do)
      kill_policy   taskKillGracePeriodSeconds
      labels        the app's labels
      discovery     name and ports (for service discovery)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from meseta.services.launch.offer_matching import Placement
from meseta.services.spec.app_ids import new_task_id, task_name

_ENV_NAME = re.compile(r"[^A-Za-z0-9_]")


def env_name(text: str) -> str:
    return _ENV_NAME.sub("_", text).upper()


def environment(app: dict[str, Any], task_id: str, host: str, ports: Sequence[int]) -> dict[str, str]:
    env: dict[str, str] = {k: v for k, v in (app.get("env") or {}).items() if isinstance(v, str)}
    env.update({
        "MESOS_TASK_ID": task_id,
        "MARATHON_APP_ID": app["id"],
        "MARATHON_APP_VERSION": str(app.get("version", "")),
        "MARATHON_APP_RESOURCE_CPUS": str(app.get("cpus", 1.0)),
        "MARATHON_APP_RESOURCE_MEM": str(app.get("mem", 128.0)),
        "MARATHON_APP_RESOURCE_DISK": str(app.get("disk", 0.0)),
        "MARATHON_APP_RESOURCE_GPUS": str(app.get("gpus", 0)),
        "HOST": host,
    })
    labels = app.get("labels") or {}
    env["MARATHON_APP_LABELS"] = " ".join(env_name(k) for k in sorted(labels))
    for key, value in labels.items():
        env[f"MARATHON_APP_LABEL_{env_name(key)}"] = str(value)
    if ports:
        env["PORT"] = str(ports[0])
        env["PORTS"] = ",".join(str(p) for p in ports)
    names = _port_names(app)
    for index, port in enumerate(ports):
        env[f"PORT{index}"] = str(port)
        env[f"PORT_{port}"] = str(port)
        if index < len(names) and names[index]:
            env[f"PORT_{env_name(names[index])}"] = str(port)
    return env


def _port_names(app: dict[str, Any]) -> list[str]:
    mappings = (app.get("container") or {}).get("portMappings")
    definitions = mappings if mappings else app.get("portDefinitions") or []
    return [str(d.get("name") or "") for d in definitions]


def health_check(app: dict[str, Any], ports: Sequence[int]) -> dict[str, Any] | None:
    """The app's first health check as a Mesos HealthCheck, run by the agent."""
    checks = app.get("healthChecks") or []
    if not checks:
        return None
    check = checks[0]
    spelled = str(check.get("protocol", "HTTP"))
    protocol = spelled.removeprefix("MESOS_")
    # delaySeconds is Mesos-level only (MESOS_*, COMMAND); Marathon probes HTTP(S)/TCP from the start
    delayed = spelled.startswith("MESOS_") or protocol == "COMMAND"
    out: dict[str, Any] = {
        "delay_seconds": float(check.get("delaySeconds", 15)) if delayed else 0.0,
        "interval_seconds": float(check.get("intervalSeconds", 60)),
        "timeout_seconds": float(check.get("timeoutSeconds", 20)),
        "consecutive_failures": int(check.get("maxConsecutiveFailures", 3)) or 1_000_000,
        "grace_period_seconds": float(check.get("gracePeriodSeconds", 300)),
    }
    if protocol == "COMMAND":
        command = check.get("command") or {}
        out.update(type="COMMAND", command={"shell": True, "value": str(command.get("value", ""))})
        return out
    port = check.get("port")
    if port is None:
        index = int(check.get("portIndex", 0) or 0)
        port = ports[index] if index < len(ports) else None
    if port is None:
        return None
    if protocol == "TCP":
        out.update(type="TCP", tcp={"port": int(port)})
    else:
        out.update(type="HTTP", http={"port": int(port), "path": str(check.get("path", "/")),
                                      "scheme": "https" if protocol == "HTTPS" else "http"})
    return out


DOCKER_NETWORKS = {"host": "HOST", "container/bridge": "BRIDGE", "container": "USER"}


def container_info(app: dict[str, Any], ports: Sequence[int]) -> dict[str, Any] | None:
    """The app's ContainerInfo: MESOS with its image, or DOCKER as Marathon builds it (the agent
    runs a DOCKER container's image with the Mesos containerizer and refuses, naming them, the
    Docker features it cannot honour: a network other than HOST, parameters, privileged)."""
    container = app.get("container") or {}
    docker = container.get("docker") or {}
    image = docker.get("image")
    if container.get("type") == "MESOS" and image:
        return {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}}
    if container.get("type") != "DOCKER" or not image:
        return None
    networks = app.get("networks") or [{"mode": "host"}]
    out: dict[str, Any] = {"image": image, "network": DOCKER_NETWORKS.get(str(networks[0].get("mode")), "HOST"),
                           "force_pull_image": bool(docker.get("forcePullImage", False))}
    if docker.get("privileged"):
        out["privileged"] = True
    if docker.get("parameters"):
        out["parameters"] = [{"key": p["key"], "value": p["value"]} for p in docker["parameters"]]
    mappings = container.get("portMappings") or []
    if out["network"] != "HOST" and mappings:
        out["port_mappings"] = [{"host_port": port, "container_port": int(m.get("containerPort", 0)),
                                 "protocol": str(m.get("protocol", "tcp"))}
                                for m, port in zip(mappings, ports, strict=False)]
    return {"type": "DOCKER", "docker": out}


def task_info(app: dict[str, Any], placement: Placement, *, agent_id: str, host: str, uuid: str) -> dict[str, Any]:
    task_id = new_task_id(app["id"], uuid)
    ports = list(placement.host_ports)
    variables = [{"name": k, "value": v} for k, v in sorted(environment(app, task_id, host, ports).items())]
    command: dict[str, Any] = {"environment": {"variables": variables}}
    if app.get("cmd"):
        command.update(shell=True, value=app["cmd"])
    elif app.get("args"):
        command.update(shell=False, value=app["args"][0], arguments=list(app["args"]))
    else:
        command.update(shell=False)
    uris = [{"value": f["uri"], "extract": bool(f.get("extract", True)), "executable": bool(f.get("executable", False)),
             "cache": bool(f.get("cache", False)), **({"output_file": f["destPath"]} if f.get("destPath") else {})}
            for f in app.get("fetch") or []]
    if uris:
        command["uris"] = uris
    if app.get("user"):
        command["user"] = app["user"]
    info: dict[str, Any] = {
        "name": task_name(app["id"]),
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": placement.resources,
        "command": command,
        "labels": {"labels": [{"key": k, "value": str(v)} for k, v in sorted((app.get("labels") or {}).items())]},
        "discovery": {"visibility": "FRAMEWORK", "name": task_name(app["id"]),
                      "ports": {"ports": [{"number": p, "protocol": "tcp"} for p in ports]}},
    }
    box = container_info(app, ports)
    if box is not None:
        info["container"] = box
    check = health_check(app, ports)
    if check is not None:
        info["health_check"] = check
    grace = app.get("taskKillGracePeriodSeconds")
    if grace:
        info["kill_policy"] = {"grace_period": {"nanoseconds": int(float(grace) * 1e9)}}
    return info
