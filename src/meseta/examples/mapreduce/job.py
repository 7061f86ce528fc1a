"""A MapReduce job as the user asks for it, every field checked at the edge (pure).

    JobSpec(inputs=(InputFile("/data/a.txt", 1_048_576), ...), output="/data/out", reducers=4, ...)
        -> JobError("reducers: 0 is not in 1..1000") for a bad field, naming it

The input listing (sizes) comes from the shell (``meseta.examples.mapreduce.inputs``); nothing
here touches the file system. Paths must be absolute and shared: map tasks read their split and
reduce tasks write their output by path, so every agent must see the same files (NFS, or one host).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

WORDCOUNT_MAP = "meseta.examples.mapreduce.wordcount:map_words"
WORDCOUNT_REDUCE = "meseta.examples.mapreduce.wordcount:sum_counts"
MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_INPUTS = 10_000  # files in one job; more would make a launch plan nobody reads
MAX_SPLITS = 10_000  # map tasks in one job
MAX_REDUCERS = 1000
MAX_PYTHON_PATH = 32  # directories added to the tasks' PYTHONPATH
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


class JobError(ValueError):
    """A field of the job is unusable; the message starts with the field's name."""


def check_path(name: str, value: object) -> str:
    """An absolute path of valid Unicode, no NUL, at most PATH_MAX bytes."""
    if not isinstance(value, str) or not value:
        raise JobError(f"{name}: expected a non-empty path")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise JobError(f"{name}: {value!r} is not valid Unicode") from None
    if "\x00" in value:
        raise JobError(f"{name}: {value!r} contains a NUL byte")
    if size > MAX_PATH_BYTES:
        raise JobError(f"{name}: longer than {MAX_PATH_BYTES} bytes")
    if not value.startswith("/"):
        raise JobError(f"{name}: {value!r} is not an absolute path (tasks run in their own sandboxes)")
    return value


def check_function(name: str, value: object) -> str:
    """``package.module:function``, importable in the tasks' Python."""
    if not isinstance(value, str) or len(value) > 512 or not _FUNCTION.fullmatch(value):
        raise JobError(f"{name}: {value!r} is not 'module:function' (a dotted module path, a colon, a name)")
    return value


def check_number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JobError(f"{name}: {value!r} is not a finite number")
    if not low <= value <= high:
        raise JobError(f"{name}: {value} is not in {low:g}..{high:g}")
    return float(value)


def check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(f"{name}: {value!r} is not an integer")
    if not low <= value <= high:
        raise JobError(f"{name}: {value} is not in {low}..{high}")
    return value


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    size: int

    def __post_init__(self) -> None:
        check_path("input", self.path)
        check_int(f"input {self.path!r} size", self.size, 0, 2**62)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to run and how. Defaults run word count with modest tasks."""

    inputs: tuple[InputFile, ...]
    output: str
    reducers: int = 4
    split_bytes: int = 1 << 20
    map_function: str = WORDCOUNT_MAP
    reduce_function: str = WORDCOUNT_REDUCE
    combiner: str | None = None  # run on each map's output per key before the shuffle
    cpus: float = 0.25  # per task
    mem: float = 64.0  # MB per task
    tasks_per_agent: int = 2  # at most this many of the job's tasks at once on one agent (slots)
    max_attempts: int = 4  # failed attempts of one task before the job fails
    speculation: bool = True
    speculative_factor: float = 3.0  # a task running this many times the phase's median is copied
    speculative_min_seconds: float = 5.0  # ... and never before it has run this long
    shuffle_dir: str | None = None  # map outputs here (shared) instead of in the map tasks' sandboxes
    python_path: tuple[str, ...] = field(default=())  # directories put on the tasks' PYTHONPATH

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, tuple) or not self.inputs:
            raise JobError("inputs: expected at least one input file")
        if len(self.inputs) > MAX_INPUTS:
            raise JobError(f"inputs: {len(self.inputs)} files, more than {MAX_INPUTS}")
        check_path("output", self.output)
        check_int("reducers", self.reducers, 1, MAX_REDUCERS)
        check_int("split_bytes", self.split_bytes, 1024, 1 << 40)
        check_function("map_function", self.map_function)
        check_function("reduce_function", self.reduce_function)
        if self.combiner is not None:
            check_function("combiner", self.combiner)
        check_number("cpus", self.cpus, 0.01, 1024)
        check_number("mem", self.mem, 8, 1 << 24)
        check_int("tasks_per_agent", self.tasks_per_agent, 1, 1024)
        check_int("max_attempts", self.max_attempts, 1, 100)
        check_number("speculative_factor", self.speculative_factor, 1, 1000)
        check_number("speculative_min_seconds", self.speculative_min_seconds, 0, 86_400)
        if self.shuffle_dir is not None:
            check_path("shuffle_dir", self.shuffle_dir)
        if len(self.python_path) > MAX_PYTHON_PATH:
            raise JobError(f"python_path: more than {MAX_PYTHON_PATH} directories")
        for directory in self.python_path:
            check_path("python_path", directory)
            if ":" in directory:
                raise JobError(f"python_path: {directory!r} contains ':' (the PYTHONPATH separator)")
        for entry in self.inputs:
            if not isinstance(entry, InputFile):
                raise JobError(f"inputs: {entry!r} is not an InputFile")
            if entry.path == self.output or entry.path.startswith(self.output.rstrip("/") + "/"):
                raise JobError(f"output: {self.output!r} holds the input {entry.path!r}")
