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


class LaunchCommandError(ValueError):
    """Neither the task's CommandInfo nor the image says what to run."""


def launch_argv(command: Mapping[str, Any], config: ImageConfig | None) -> tuple[str, ...]:
    """What a task runs, from its CommandInfo and its image's Entrypoint/Cmd (the docker/runtime
    rules of Mesos)::

        shell=true,  value               /bin/sh -c value            (the image's Entrypoint/Cmd unused)
        shell=false, value, arguments    value arguments[1:]         (arguments[0] is argv[0])
        shell=false, no value, arguments Entrypoint + arguments, or Cmd[0] + arguments
        shell=false, no value, none      Entrypoint + Cmd, or Cmd
    """
    shell = command.get("shell", True)
    value = command.get("value")
    arguments = tuple(str(a) for a in command.get("arguments") or [])
    if shell:
        if not value:
            raise LaunchCommandError("command.value: a shell command needs a value")
        return ("/bin/sh", "-c", str(value))
    if value:
        return (str(value), *arguments[1:])
    entrypoint = (config.entrypoint if config else None) or ()
    cmd = (config.cmd if config else None) or ()
    if entrypoint:
        return (*entrypoint, *(arguments or cmd))
    if cmd:
        return (cmd[0], *(arguments or cmd[1:]))
    raise LaunchCommandError("command.value: neither the task's command nor its image (Entrypoint, Cmd) says "
                             "what to run")


def image_env(config: ImageConfig | None) -> dict[str, str]:
    """The image's Env as a mapping (a later duplicate wins, as in Docker)."""
    env: dict[str, str] = {}
    for item in config.env if config else ():
        name, sep, value = item.partition("=")
        if name and sep:
            env[name] = value
    return env
