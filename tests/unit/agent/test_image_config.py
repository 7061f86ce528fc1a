"""What an image task runs: CommandInfo over the image's Entrypoint/Cmd (Mesos's docker/runtime table)."""

from __future__ import annotations

import pytest

from meseta.agent.containerizer.image_config import (
    ImageConfig,
    LaunchCommandError,
    image_config,
    image_env,
    launch_argv,
)

ENTRY = ImageConfig(entrypoint=("httpd", "-f"), cmd=("-p", "80"))
CMD = ImageConfig(cmd=("sh", "-c", "echo hi"))


@pytest.mark.parametrize(("command", "config", "argv"), [
    ({"shell": True, "value": "echo $HOME"}, ENTRY, ("/bin/sh", "-c", "echo $HOME")),
    ({"shell": False, "value": "/bin/ls", "arguments": ["ls", "-l"]}, ENTRY, ("/bin/ls", "-l")),
    ({"shell": False}, ENTRY, ("httpd", "-f", "-p", "80")),
    ({"shell": False, "arguments": ["-p", "8080"]}, ENTRY, ("httpd", "-f", "-p", "8080")),
    ({"shell": False}, CMD, ("sh", "-c", "echo hi")),
    ({"shell": False, "arguments": ["-c", "echo bye"]}, CMD, ("sh", "-c", "echo bye")),
])
def test_the_launch_command_table(command: dict, config: ImageConfig, argv: tuple[str, ...]) -> None:
    assert launch_argv(command, config) == argv


@pytest.mark.parametrize("command", [{"shell": True}, {"shell": False}])
def test_nothing_to_run_is_an_error_naming_the_value(command: dict) -> None:
    with pytest.raises(LaunchCommandError, match=r"command\.value"):
        launch_argv(command, ImageConfig())


def test_config_blob_read_strictly() -> None:
    config = image_config({"config": {"Entrypoint": ["a"], "Cmd": None, "Env": ["A=1", "B=x=y", "A=2"],
                                      "WorkingDir": "/srv", "User": "1000:1000", "ExposedPorts": {"80/tcp": {}}}})
    assert config == ImageConfig(("a",), None, ("A=1", "B=x=y", "A=2"), "/srv", "1000:1000", ("80/tcp",))
    assert image_env(config) == {"A": "2", "B": "x=y"}
    with pytest.raises(ValueError, match=r"config\.Cmd"):
        image_config({"config": {"Cmd": "echo"}})
