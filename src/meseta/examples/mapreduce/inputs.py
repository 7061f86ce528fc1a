"""The job's edge with the file system (shell side): input files listed with their sizes, the
output directory prepared, and a finished reducer's file committed.

    inputs   a file, or a directory's regular files (not its sub-directories, not names starting
             with '.' or '_', as Hadoop skips them), sorted by name
    output   must not exist, or be empty: a job never mixes its output with another's
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from meseta.examples.mapreduce.effects import OutputPlace
from meseta.examples.mapreduce.job import InputFile, JobError, JobSpec, check_path
from meseta.examples.mapreduce.records import output_name
from meseta.examples.mapreduce.tasks import inputs_file, reduce_output_file, temporary_dir


def list_inputs(paths: Sequence[str]) -> tuple[InputFile, ...]:
    found: list[InputFile] = []
    for raw in paths:
        path = Path(check_path("input", os.path.abspath(raw)))
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and not child.name.startswith((".", "_")):
                    found.append(InputFile(str(child), child.stat().st_size))
        elif path.is_file():
            found.append(InputFile(str(path), path.stat().st_size))
        else:
            raise JobError(f"input: {raw!r} is neither a file nor a directory")
    if not found:
        raise JobError(f"input: no files in {', '.join(map(repr, paths))}")
    return tuple(found)


def prepare_output(spec: JobSpec) -> None:
    output = Path(spec.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise JobError(f"output: {spec.output!r} already exists and is not an empty directory")
    Path(temporary_dir(spec)).mkdir(parents=True, exist_ok=True)


def write_reduce_inputs(spec: JobSpec, attempt_id: str, places: Sequence[OutputPlace]) -> None:
    rows = [{"agent_url": p.agent_url, "directory": p.directory} for p in places]
    Path(inputs_file(spec, attempt_id)).write_text(json.dumps(rows))


def commit_reduce(spec: JobSpec, attempt_id: str, partition: int) -> None:
    """The attempt's file becomes the partition's output (an atomic rename on one file system)."""
    os.replace(reduce_output_file(spec, attempt_id, partition), f"{spec.output.rstrip('/')}/{output_name(partition)}")


def finish_output(spec: JobSpec) -> None:
    shutil.rmtree(temporary_dir(spec), ignore_errors=True)
    Path(spec.output, "_SUCCESS").write_bytes(b"")
