"""An image's runtime configuration (the ``config`` object of a Docker or OCI image config blob),
read strictly: what the docker/runtime isolator applies to a container.

    {"config": {"Entrypoint": [...], "Cmd": [...], "Env": ["K=V"], "WorkingDir": "/",
                "User": "uid[:gid]", "ExposedPorts": {"80/tcp": {}}}, "os": ..., "architecture": ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()  # "NAME=value", in the image's order
    working_dir: str | None = None
    user: str | None = None
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    return tuple(value)


def image_config(blob: Mapping[str, Any]) -> ImageConfig:
    """The runtime part of a config blob; ValueError names a malformed field."""
    config = blob.get("config") or {}
    if not isinstance(config, Mapping):
        raise ValueError("config: must be an object")
    fields: dict[str, Any] = {}
    for key, name in (("Entrypoint", "entrypoint"), ("Cmd", "cmd"), ("Env", "env")):
        try:
            fields[name] = _strings(config.get(key))
        except ValueError as exc:
            raise ValueError(f"config.{key}: {exc}") from None
    for key, name in (("WorkingDir", "working_dir"), ("User", "user")):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"config.{key}: must be a string")
        fields[name] = value or None
    ports = config.get("ExposedPorts") or {}
    if not isinstance(ports, Mapping):
        raise ValueError("config.ExposedPorts: must be an object")
    return ImageConfig(entrypoint=fields["entrypoint"], cmd=fields["cmd"], env=fields["env"] or (),
                       working_dir=fields["working_dir"], user=fields["user"],
                       exposed_ports=tuple(str(port) for port in ports))
