"""A job's fields are checked at the edge: a bad one is refused with its name, in the API and in
`meseta mapreduce`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from meseta.cli.main import app
from meseta.examples.mapreduce.job import InputFile, JobError, JobSpec

INPUTS = (InputFile("/in/a", 10),)


@pytest.mark.parametrize(("fields", "message"), [
    ({"inputs": ()}, "inputs: expected at least one"),
    ({"output": "out"}, "output: 'out' is not an absolute path"),
    ({"output": "/o\x00"}, "output: '/o\\x00' contains a NUL byte"),
    ({"output": "/\udcff"}, "output: '/\\udcff' is not valid Unicode"),
    ({"output": "/" + "o" * 5000}, "output: longer than 4096 bytes"),
    ({"output": "/in"}, "output: '/in' holds the input '/in/a'"),
    ({"reducers": 0}, "reducers: 0 is not in 1..1000"),
    ({"reducers": True}, "reducers: True is not an integer"),
    ({"split_bytes": 10}, "split_bytes: 10 is not in 1024.."),
    ({"map_function": "wordcount"}, "map_function: 'wordcount' is not 'module:function'"),
    ({"reduce_function": "a.b:c d"}, "reduce_function: 'a.b:c d' is not 'module:function'"),
    ({"combiner": "1x:y"}, "combiner: '1x:y' is not"),
    ({"cpus": float("nan")}, "cpus: nan is not a finite number"),
    ({"cpus": 0}, "cpus: 0 is not in 0.01..1024"),
    ({"mem": 1e30}, "mem: 1e+30 is not in 8.."),
    ({"tasks_per_agent": 0}, "tasks_per_agent: 0 is not in 1..1024"),
    ({"max_attempts": 1000}, "max_attempts: 1000 is not in 1..100"),
    ({"speculative_factor": 0.5}, "speculative_factor: 0.5 is not in 1..1000"),
    ({"speculative_min_seconds": -1}, "speculative_min_seconds: -1 is not in 0..86400"),
    ({"shuffle_dir": "rel"}, "shuffle_dir: 'rel' is not an absolute path"),
    ({"python_path": ("/a:b",)}, "python_path: '/a:b' contains ':'"),
    ({"inputs": ("/in/a",)}, "inputs: '/in/a' is not an InputFile"),
])
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(JobError) as caught:
        JobSpec(**{"inputs": INPUTS, "output": "/out", **fields})
    assert str(caught.value).startswith(message), str(caught.value)


def test_input_files_are_checked_too() -> None:
    with pytest.raises(JobError, match="input: 'rel' is not an absolute path"):
        InputFile("rel", 1)
    with pytest.raises(JobError, match="input '/a' size: -1 is not in"):
        InputFile("/a", -1)


def test_the_command_line_names_the_bad_flag_and_the_missing_input(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "in.txt").write_text("a b\n")
    result = runner.invoke(app, ["mapreduce", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"),
                                 "--reducers", "0"])
    assert result.exit_code == 2 and "reducers: 0 is not in 1..1000" in result.output, result.output
    result = runner.invoke(app, ["mapreduce", str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "neither a file nor a directory" in result.output, result.output
    result = runner.invoke(app, ["mapreduce", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"),
                                 "--map", "nocolon"])
    assert result.exit_code == 2 and "map_function: 'nocolon'" in result.output, result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    result = runner.invoke(app, ["mapreduce", str(tmp_path / "in.txt"), "-o", str(tmp_path / "full"),
                                 "--master", "127.0.0.1:9"])
    assert result.exit_code == 2 and "already exists and is not an empty directory" in result.output, result.output
    result = runner.invoke(app, ["mapreduce", "--help"])
    assert result.exit_code == 0 and "--shuffle-dir" in result.output and "meseta mapreduce" in result.output
