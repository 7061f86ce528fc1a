"""What ``meseta submit`` is asked to run: one typed, frozen ``Job``, checked at the edge; pure.

Where a job comes from::

    command line flags ----\\
                            +--> merge --> check_job --> Job, or JobError(field, why)
    --file job.json -------/     a flag given wins over the file (--env adds to its env, a
                                 name given twice keeps the last); defaults fill the rest

The job file is one JSON object; every member is optional except ``command`` (unless COMMAND is
given on the command line), and any other member is refused by name::

    command       str      run with ``sh -c`` in the task's sandbox
    cpus          number   > 0                          (default 1)
    mem           number   MB, >= 0                     (default 128)
    disk          number   MB, >= 0                     (default 0)
    env           object   {"NAME": "value"}; MESETA_TASK_INDEX is set by submit and refused here
    uris          list     "http://..." or {"value", "extract", "executable", "cache", "output_file"}
    image         str      a MESOS container image (a tarball path, or NAME:TAG under the agents'
                           --docker-registry)
    role          str      (default "*")
    constraints   list     ["FIELD", "OPERATOR"] / ["FIELD", "OPERATOR", "VALUE"], or "FIELD:OP[:VALUE]"
    count         int      1 .. MAX_COUNT tasks; task i gets MESETA_TASK_INDEX=i   (default 1)
    max_parallel  int      at most this many run at once, 0 = no limit           (default 0)
    retries       int      re-launches of a failed task                          (default 0)
    name          str      the framework's name and the tasks' name prefix (default "meseta-submit")

Every string must be valid Unicode without NUL and within its size bound; every number finite and
within its range. An error names the flag (``--cpus``) or the file member (``job.json: cpus``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meseta.batch.constraints import Constraint, parse_constraint
from meseta.core.resources import validate_role

MAX_COUNT = 100_000  # tasks in one submission: the plan keeps one slot per task in memory
MAX_RETRIES = 1_000
MAX_CPUS = 1_000_000.0  # beyond any agent; what an offer can hold is checked per offer
MAX_MB = 2.0**40  # a terabyte of terabytes: a typo, not a request
MAX_COMMAND_BYTES = 1024 * 1024  # Mesos keeps a TaskInfo well under the 2 GB protobuf limit; so do we
MAX_VALUE_BYTES = 64 * 1024  # one environment value, URI or image name
MAX_NAME_BYTES = 200  # framework and task names appear in every state endpoint
MAX_ITEMS = 1_000  # env variables, URIs or constraints in one job
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}")
TASK_INDEX_VARIABLE = "MESETA_TASK_INDEX"
URI_SCHEMES = ("http://", "https://", "file://", "/")  # what the agents' fetcher takes
URI_MEMBERS = {"value": str, "extract": bool, "executable": bool, "cache": bool, "output_file": str}
FILE_MEMBERS = ("command", "cpus", "mem", "disk", "env", "uris", "image", "role", "constraints", "count",
                "max_parallel", "retries", "name")
FLAG_NAMES = {"command": "COMMAND", "uris": "--uri", "constraints": "--constraint"}  # the rest: --member
DEFAULTS: dict[str, Any] = {"cpus": 1.0, "mem": 128.0, "disk": 0.0, "env": {}, "uris": [], "image": None,
                            "role": "*", "constraints": [], "count": 1, "max_parallel": 0, "retries": 0,
                            "name": "meseta-submit"}


class JobError(ValueError):
    """A value of the job is refused; ``where`` names the flag or file member."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where


@dataclass(frozen=True, slots=True)
class Uri:
    value: str
    extract: bool = True
    executable: bool = False
    cache: bool = False
    output_file: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    command: str
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    env: tuple[tuple[str, str], ...] = ()
    uris: tuple[Uri, ...] = ()
    image: str | None = None
    role: str = "*"
    constraints: tuple[Constraint, ...] = ()
    count: int = 1
    max_parallel: int = 0
    retries: int = 0
    name: str = "meseta-submit"


# --------------------------------------------------------------------- field checks


def checked_text(where: str, value: Any, limit: int = MAX_VALUE_BYTES, *, empty: bool = False) -> str:
    """A string that is valid UTF-8 (no lone surrogate from an undecodable argv byte), has no NUL,
    is at most ``limit`` bytes and (unless ``empty``) is not empty."""
    if not isinstance(value, str):
        raise JobError(where, f"must be a string, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise JobError(where, "is not valid Unicode") from None
    if "\x00" in value:
        raise JobError(where, "must not contain a NUL character")
    if size > limit:
        raise JobError(where, f"is longer than {limit} bytes")
    if not empty and not value.strip():
        raise JobError(where, "must not be empty")
    return value


def checked_name(where: str, value: Any) -> str:
    """A name shown in every state endpoint and in task names: printable, no '/'."""
    name = checked_text(where, value, MAX_NAME_BYTES)
    if not name.isprintable() or "/" in name:
        raise JobError(where, "must be printable characters without '/'")
    return name


def checked_number(where: str, value: Any, low: float, high: float, *, above_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobError(where, f"must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < low or number > high or (above_low and number == low):
        bound = f"more than {low:g}" if above_low else f"at least {low:g}"
        raise JobError(where, f"must be {bound} and at most {high:g}, not {value!r}")
    return number


def checked_int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(where, f"must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise JobError(where, f"must be between {low} and {high}, not {value}")
    return value


def checked_list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise JobError(where, f"must be a list, not {type(value).__name__}")
    if len(value) > MAX_ITEMS:
        raise JobError(where, f"has more than {MAX_ITEMS} items")
    return value


def parse_env_flag(text: str) -> tuple[str, str]:
    """``--env K=V``: the pair, or JobError naming --env."""
    checked_text("--env", text, MAX_VALUE_BYTES + 256)
    name, sep, value = text.partition("=")
    if not sep:
        raise JobError("--env", f"'{text[:64]}' is not NAME=VALUE")
    return checked_env("--env", name, value)


def checked_env(where: str, name: Any, value: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise JobError(where, f"'{str(name)[:64]}' is not a variable name (letters, digits, _; not first a digit)")
    if name == TASK_INDEX_VARIABLE:
        raise JobError(where, f"{TASK_INDEX_VARIABLE} is set by meseta submit for each task")
    return name, checked_text(f"{where} {name}", value, empty=True)


def checked_uri(where: str, value: Any) -> Uri:
    if isinstance(value, str):
        value = {"value": value}
    if not isinstance(value, dict):
        raise JobError(where, "must be a URI string or an object with 'value'")
    for member, kind in URI_MEMBERS.items():
        if member in value and not isinstance(value[member], kind):
            raise JobError(f"{where}.{member}", f"must be a {kind.__name__}")
    unknown = sorted(set(value) - set(URI_MEMBERS))
    if unknown:
        raise JobError(where, f"unknown member '{unknown[0]}' (known: {', '.join(URI_MEMBERS)})")
    text = checked_text(where, value.get("value"))
    if not text.startswith(URI_SCHEMES):
        raise JobError(where, f"'{text[:64]}' is not http://, https://, file:// or an absolute path")
    output = value.get("output_file")
    if output is not None and (checked_text(f"{where}.output_file", output, 255) in (".", "..") or "/" in output):
        raise JobError(f"{where}.output_file", "must be a plain file name")
    return Uri(text, value.get("extract", True), value.get("executable", False), value.get("cache", False), output)


# --------------------------------------------------------------------- the whole job


def merge(given: Mapping[str, Any], from_file: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's members (a flag given wins over the file, --env variables are added to the file's
    ``env``; defaults fill the rest) and how to name each one in an error."""
    flags = {name: FLAG_NAMES.get(name, f"--{name.replace('_', '-')}") for name in FILE_MEMBERS}
    merged: dict[str, Any] = dict(DEFAULTS)
    where = dict(flags)
    for name, value in from_file.items():
        merged[name], where[name] = value, f"job file: {name}"
    for name, value in given.items():
        if value is None:
            continue
        if name == "env" and isinstance(from_file.get("env"), Mapping):  # --env adds to the file's
            value = [*from_file["env"].items(), *value]
        merged[name], where[name] = value, flags[name]
    return merged, where


def check_job_file(document: Any) -> dict[str, Any]:
    """The members of a parsed job file, unknown ones refused by name."""
    if not isinstance(document, dict):
        raise JobError("job file", "must be a JSON object")
    unknown = sorted(set(document) - set(FILE_MEMBERS))
    if unknown:
        raise JobError(f"job file: {unknown[0]}", f"is not a job member (known: {', '.join(FILE_MEMBERS)})")
    return dict(document)


def check_job(members: Mapping[str, Any], where: Mapping[str, str]) -> Job:
    """The ``Job`` the merged members describe, or JobError naming the first bad one."""
    if members.get("command") is None:
        raise JobError("COMMAND", "give a command to run, or --file with a 'command' member")
    count = checked_int(where["count"], members["count"], 1, MAX_COUNT)
    max_parallel = checked_int(where["max_parallel"], members["max_parallel"], 0, MAX_COUNT)
    role = checked_text(where["role"], members["role"], MAX_NAME_BYTES)
    problem = validate_role(role)
    if problem is not None:
        raise JobError(where["role"], problem)
    return Job(
        command=checked_text(where["command"], members["command"], MAX_COMMAND_BYTES),
        cpus=checked_number(where["cpus"], members["cpus"], 0.0, MAX_CPUS, above_low=True),
        mem=checked_number(where["mem"], members["mem"], 0.0, MAX_MB),
        disk=checked_number(where["disk"], members["disk"], 0.0, MAX_MB),
        env=_env(where["env"], members["env"]),
        uris=tuple(checked_uri(f"{where['uris']}[{i}]", u) for i, u in enumerate(checked_list(where["uris"],
                                                                                            members["uris"]))),
        image=None if members["image"] is None else checked_text(where["image"], members["image"]),
        role=role,
        constraints=_constraints(where["constraints"], members["constraints"]),
        count=count,
        max_parallel=max_parallel,
        retries=checked_int(where["retries"], members["retries"], 0, MAX_RETRIES),
        name=checked_name(where["name"], members["name"]),
    )


def _env(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        pairs = list(value)  # from the flags: already checked (name, value) pairs
    else:
        raise JobError(where, "must be an object of NAME: value")
    if len(pairs) > MAX_ITEMS:
        raise JobError(where, f"has more than {MAX_ITEMS} variables")
    checked = dict(checked_env(where, name, text) for name, text in pairs)  # a name given again: the last
    return tuple(checked.items())


def _constraints(where: str, value: Any) -> tuple[Constraint, ...]:
    out = []
    for index, item in enumerate(checked_list(where, value)):
        label = where if where.startswith("--") else f"{where}[{index}]"
        if isinstance(item, list):
            if not 2 <= len(item) <= 3 or not all(isinstance(part, str) for part in item):
                raise JobError(label, "must be [FIELD, OPERATOR] or [FIELD, OPERATOR, VALUE] of strings")
            item = ":".join(item)
        try:
            out.append(parse_constraint(checked_text(label, item, MAX_VALUE_BYTES)))
        except ValueError as exc:
            raise JobError(label, str(exc)) from None
    return tuple(out)
