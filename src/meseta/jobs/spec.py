"""Job definitions: Chronos job JSON in, a frozen :class:`JobSpec` out, and back; pure.

Lifecycle of a definition::

    POST /v1/scheduler/iso8601 | /dependency (JSON)  --parse_job-->  JobSpec  (or JobRejected(field, problem))
    JobSpec + counters + current schedule  --job_json-->  GET /v1/scheduler/jobs entry
    a GET entry POSTed back  --parse_job-->  the same JobSpec (read-only counters are accepted and ignored)

Defaults are Chronos 3.x's: shell true, retries 2, no epsilon (the scheduler's ``--task-epsilon``, 60 s,
as 3.x's global ``--task_epsilon``; the 2.x ``epsilon`` field, an ISO duration, overrides it for the
job), cpus/mem/disk 0 meaning the scheduler's defaults,
every flag false, runAsUser "" meaning the scheduler's user. Every member Meseta does not read is
refused naming it, and so is every value it cannot honour: a custom executor, Docker parameters
and host volumes (DOCKER and MESOS containers both run their image with the Mesos containerizer),
networks other than HOST, operators other than EQUALS, LIKE and UNLIKE. Whether parents exist is
the machine's business, not this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meseta.jobs.job_fields import (
    MAX_COMMAND,
    Fields,
    JobRejected,
    fmt,
    read_constraints,
    read_container,
    read_environment,
    read_fetch,
)
from meseta.jobs.schedule import ScheduleError, parse_schedule, period_parts
from meseta.jobs.wall_clock import UnknownTimeZone, format_ms, lookup_zone

__all__ = ["JobRejected", "JobSpec", "duration_text", "job_json", "parse_job"]

MAX_NAME = 200  # job names appear in URL paths and task ids
MAX_PARENTS = 100  # a join of more parents than this is a graph mistake
MAX_RETRIES = 1_000  # more retries than any job could use
MAX_RESOURCE = 2.0**40  # cpus, MB of memory or disk: far more than any agent has, still exact in a float
MAX_SECONDS = 10 * 366 * 86_400.0  # epsilon, maxCompletionTime: ten years
DEFAULT_RETRIES = 2
NAME = re.compile(r"[\w.-]+", re.ASCII)  # Chronos 3.x (Java's \w: ASCII letters, digits, _)
LEGACY_NAME = re.compile(r"[\w.-](?:[\w. -]*[\w.-])?", re.ASCII)  # 2.x allowed spaces inside names
USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")  # a POSIX login name
JOB_KEYS = frozenset({
    "name", "command", "shell", "arguments", "schedule", "scheduleTimeZone", "parents", "epsilon", "retries",
    "owner", "ownerName", "description", "cpus", "mem", "disk", "disabled", "concurrent", "softError",
    "highPriority", "dataProcessingJobType", "maxCompletionTime", "runAsUser", "container",
    "environmentVariables", "fetch", "uris", "constraints", "async", "executor", "executorFlags", "taskInfoData",
})
READ_ONLY_KEYS = frozenset({"successCount", "errorCount", "lastSuccess", "lastError", "errorsSinceLastSuccess"})


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job as defined (not its run state); see the module docstring for defaults."""

    name: str
    command: str
    shell: bool
    arguments: tuple[str, ...]
    schedule: str | None  # the ISO 8601 or cron text as given; None for a dependent job
    schedule_time_zone: str
    parents: tuple[str, ...]  # () for a scheduled job
    epsilon: float | None  # seconds a missed run may still start late; None: the scheduler's --task-epsilon
    retries: int
    owner: str
    owner_name: str
    description: str
    cpus: float  # as given (0 = use the scheduler's defaults)
    mem: float
    disk: float
    disabled: bool
    concurrent: bool
    soft_error: bool
    high_priority: bool
    data_processing_job_type: bool
    max_completion_time: float  # seconds, 0 = unlimited
    run_as_user: str  # "" = the scheduler's default user
    container: dict[str, Any] | None  # normalised wire form (see job_fields.read_container)
    environment: tuple[tuple[str, str], ...]
    fetch: tuple[dict[str, Any], ...]  # [{uri, cache, extract, executable, outputFile?}]; `uris` folded in
    constraints: tuple[tuple[str, str, str], ...]  # (attribute, EQUALS|LIKE|UNLIKE, value)
    legacy_async: bool  # 2.x "async": the job reports its own end
    executor: str = ""  # custom executors are refused: always "" today, kept for the wire
    executor_flags: str = ""
    task_info_data: str = ""


def parse_job(body: object, *, dependent: bool, legacy: bool, now: float) -> JobSpec:
    """body: decoded JSON of POST /v1/scheduler/iso8601 (dependent=False: `schedule` required, `parents`
    refused) or POST /v1/scheduler/dependency (dependent=True: `parents` required, non-empty, `schedule`
    refused). legacy=True: 2.x paths (names may contain spaces). Validates every field's type and range
    (finite numbers, bounded string and list lengths, valid Unicode, name `[\\w.-]+` in 3.x), parses the
    schedule with schedule.parse_schedule(schedule, scheduleTimeZone, now) so that a bad schedule is
    JobRejected('schedule', 'Cannot parse schedule ...'), and refuses with JobRejected naming the field:
    unknown keys; values Meseta does not support (a non-empty custom `executor`, Docker `parameters`,
    host volumes, unknown constraint operators, network modes it cannot honour...). The read-only
    fields a GET returns (successCount, errorCount, lastSuccess, lastError, errorsSinceLastSuccess,
    ...) are accepted and ignored so that a GET's job can be POSTed back. It does
    NOT check that parents exist (the machine does)."""
    if not isinstance(body, dict):
        raise JobRejected("job", "must be a JSON object")
    job = Fields(body)
    job.only(JOB_KEYS | READ_ONLY_KEYS, "job")
    _check_read_only(job)
    name = _read_name(job, "name", legacy)
    schedule, zone = _read_schedule(job, dependent=dependent, now=now)
    parents = _read_parents(job, name, dependent=dependent, legacy=legacy)
    shell = job.flag("shell", True)
    arguments = job.texts("arguments")
    if shell and arguments:
        job.reject("arguments", "are only passed when shell is false (a shell command is run as written)")
    for key in ("executor", "executorFlags", "taskInfoData"):
        if job.text(key):
            job.reject(key, "custom executors are not supported: Meseta runs jobs with the command executor")
    return JobSpec(
        name=name, command=job.text("command", required=True, non_empty=True, limit=MAX_COMMAND), shell=shell,
        arguments=arguments, schedule=schedule, schedule_time_zone=zone, parents=parents,
        epsilon=_read_epsilon(job), retries=job.integer("retries", DEFAULT_RETRIES, low=0, high=MAX_RETRIES),
        owner=job.text("owner"), owner_name=job.text("ownerName"), description=job.text("description"),
        cpus=job.number("cpus", 0.0, low=0, high=MAX_RESOURCE), mem=job.number("mem", 0.0, low=0, high=MAX_RESOURCE),
        disk=job.number("disk", 0.0, low=0, high=MAX_RESOURCE), disabled=job.flag("disabled", False),
        concurrent=job.flag("concurrent", False), soft_error=job.flag("softError", False),
        high_priority=job.flag("highPriority", False),
        data_processing_job_type=job.flag("dataProcessingJobType", False),
        max_completion_time=job.number("maxCompletionTime", 0.0, low=0, high=MAX_SECONDS),
        run_as_user=_read_user(job), container=read_container(job), environment=read_environment(job),
        fetch=read_fetch(job), constraints=read_constraints(job), legacy_async=job.flag("async", False),
    )


def _check_read_only(job: Fields) -> None:
    """The counters a GET shows: typed, then ignored (the machine keeps the real ones)."""
    for key in ("successCount", "errorCount", "errorsSinceLastSuccess"):
        job.integer(key, 0, low=0, high=2**63 - 1)
    for key in ("lastSuccess", "lastError"):
        job.text(key, limit=64)


def _read_name(job: Fields, key: str, legacy: bool) -> str:
    name = job.text(key, required=True, non_empty=True, limit=MAX_NAME)
    _check_name(job, key, name, legacy)
    return name


def _check_name(job: Fields, key: str, name: str, legacy: bool) -> None:
    if legacy and not LEGACY_NAME.fullmatch(name):
        job.reject(key, "must be letters, digits, '_', '.', '-' and inner spaces")
    if not legacy and not NAME.fullmatch(name):
        job.reject(key, r"must match [\w.-]+ (letters, digits, '_', '.' and '-'; no spaces)")


def _read_schedule(job: Fields, *, dependent: bool, now: float) -> tuple[str | None, str]:
    zone = job.text("scheduleTimeZone", limit=64)
    if dependent:
        if job.present("schedule"):
            job.reject("schedule", "a dependent job has parents, not a schedule (POST /v1/scheduler/iso8601)")
        if zone:
            job.reject("scheduleTimeZone", "a dependent job has no schedule to apply it to")
        return None, ""
    text = job.text("schedule", required=True, limit=256)
    if zone:
        try:
            lookup_zone(zone)
        except UnknownTimeZone as error:
            job.reject("scheduleTimeZone", str(error))
    try:
        parse_schedule(text, zone, now)
    except ScheduleError as error:
        job.reject("schedule", str(error))
    return text, zone


def _read_parents(job: Fields, name: str, *, dependent: bool, legacy: bool) -> tuple[str, ...]:
    parents = job.texts("parents", limit=MAX_NAME)
    if not dependent:
        if parents:
            job.reject("parents", "a scheduled job has no parents (POST /v1/scheduler/dependency)")
        return ()
    if not parents:
        job.reject("parents", "a dependent job needs at least one parent")
    if len(parents) > MAX_PARENTS:
        job.reject("parents", f"must have at most {MAX_PARENTS} entries")
    for index, parent in enumerate(parents):
        _check_name(job, f"parents[{index}]", parent, legacy)
        if parent == name:
            job.reject(f"parents[{index}]", "a job cannot be its own parent")
        if parent in parents[:index]:
            job.reject(f"parents[{index}]", f"{parent!r} is given twice")
    return parents


def _read_epsilon(job: Fields) -> float | None:
    """``epsilon``: an ISO 8601 duration of weeks, days and time (``PT30M``); years and months vary.
    None when not given: the scheduler's ``--task-epsilon`` applies (Chronos 3.x's global one)."""
    if not job.present("epsilon"):
        return None
    text = job.text("epsilon", limit=64)
    try:
        months, days, exact_ms = period_parts(text)
    except ValueError as error:
        job.reject("epsilon", f"must be an ISO 8601 duration such as PT60S ({error})")
    if months:
        job.reject("epsilon", "must not count years or months (their length varies)")
    seconds = days * 86_400 + exact_ms / 1000
    if seconds > MAX_SECONDS:
        job.reject("epsilon", "must be at most ten years")
    return seconds


def _read_user(job: Fields) -> str:
    user = job.text("runAsUser", limit=32)
    if user and not USER.fullmatch(user):
        job.reject("runAsUser", "must be a user name (letters, digits, '_', '.', '-'; at most 32)")
    return user


def job_json(spec: JobSpec, *, schedule: str | None, success_count: int, error_count: int,
             last_success: float | None, last_error: float | None, errors_since_last_success: int) -> dict[str, Any]:
    """The job as GET /v1/scheduler/jobs shows it (Chronos's field names and defaults; fetch and uris
    both present; timestamps ISO 8601 UTC with milliseconds and Z, or ""; `schedule` is the given
    current schedule text)."""
    result: dict[str, Any] = {
        "name": spec.name, "command": spec.command, "shell": spec.shell,
        "executor": spec.executor, "executorFlags": spec.executor_flags, "taskInfoData": spec.task_info_data,
        "retries": spec.retries, "owner": spec.owner, "ownerName": spec.owner_name, "description": spec.description,
        "async": spec.legacy_async, "successCount": success_count, "errorCount": error_count,
        "lastSuccess": _timestamp(last_success), "lastError": _timestamp(last_error),
        "cpus": spec.cpus, "disk": spec.disk, "mem": spec.mem, "disabled": spec.disabled,
        "concurrent": spec.concurrent, "softError": spec.soft_error,
        "dataProcessingJobType": spec.data_processing_job_type, "errorsSinceLastSuccess": errors_since_last_success,
        "maxCompletionTime": spec.max_completion_time,
        "fetch": [dict(artifact) for artifact in spec.fetch], "uris": [artifact["uri"] for artifact in spec.fetch],
        "environmentVariables": [{"name": name, "value": value} for name, value in spec.environment],
        "arguments": list(spec.arguments), "highPriority": spec.high_priority, "runAsUser": spec.run_as_user,
        "constraints": [list(constraint) for constraint in spec.constraints],
    }
    if spec.epsilon is not None:  # (not shown when not given: a GET POSTed back keeps following the flag)
        result["epsilon"] = duration_text(spec.epsilon)
    if spec.container is not None:
        result["container"] = {**spec.container, "volumes": [dict(v) for v in spec.container["volumes"]],
                               "parameters": list(spec.container["parameters"])}
    if spec.schedule is None:
        result["parents"] = list(spec.parents)
    else:
        result["schedule"] = spec.schedule if schedule is None else schedule
        result["scheduleTimeZone"] = spec.schedule_time_zone
    return result


def duration_text(seconds: float) -> str:
    """Seconds as an ISO 8601 duration, as Joda prints a period of seconds: ``PT60S``, ``PT0.5S``."""
    return f"PT{fmt(round(seconds, 3))}S"


def _timestamp(seconds: float | None) -> str:
    return "" if seconds is None else format_ms(round(seconds * 1000))

