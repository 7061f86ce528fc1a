"""The CLI rejects bad resource and attribute flags with a message naming the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from meseta.agent.daemon import detect_resources
from meseta.cli.main import app


def test_bad_flags_are_rejected_with_the_problem_named() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["agent", "--master", "127.0.0.1:1", "--resources", "cpus:abc"])
    assert result.exit_code == 2 and "'abc' is not a number" in result.output
    result = runner.invoke(app, ["agent", "--master", "127.0.0.1:1", "--attributes", "rack"])
    assert result.exit_code == 2 and "name:value" in result.output
    result = runner.invoke(app, ["local", "--agent-resources", "ports:[5-1]"])
    assert result.exit_code == 2 and "empty or negative" in result.output
    result = runner.invoke(app, ["agent", "--master", "127.0.0.1:1", "--isolation", "cgroups/cpu,docker/runtime"])
    assert result.exit_code == 2 and "unknown isolator" in result.output and "'docker/runtime'" in result.output
    result = runner.invoke(app, ["agent", "--master", "127.0.0.1:1", "--recover", "sometimes"])
    assert result.exit_code == 2 and "'sometimes'" in result.output and "not one of" in result.output
    result = runner.invoke(app, ["dns", "--master", "127.0.0.1:1", "--ip-sources", "host,dns"])
    assert result.exit_code == 2 and "--ip-sources" in result.output


def test_detection_fills_in_what_resources_leave_out(tmp_path: Path) -> None:
    resources = detect_resources(tmp_path, "cpus:3")
    assert resources.scalar("cpus") == 3.0
    assert resources.scalar("mem") > 0 and resources.scalar("disk") > 0
    assert resources.ranges("ports") == ((31000, 32000),)


def test_each_command_loads_only_what_it_runs() -> None:
    """`meseta version` (and the CLI module itself) load no daemon: a fresh interpreter shows it."""
    probe = ("import sys; from typer.testing import CliRunner; from meseta.cli.main import app; "
             "result = CliRunner().invoke(app, ['version']); assert result.exit_code == 0, result.output; "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('meseta'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    # client commands live in modules of their own under meseta.cli (typer + the standard library)
    assert loaded[:3] == ["meseta", "meseta.cli", "meseta.cli.main"], loaded
    assert all(m.startswith("meseta.cli.") for m in loaded[3:]), loaded
