"""Job definitions: defaults, every refusal naming its field, the GET round trip, and fuzzing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.jobs.spec import JobRejected, JobSpec, job_json, parse_job

NOW = 1_700_000_000.0
SCHEDULED = {"name": "myjob", "command": "echo 1", "owner": "", "disabled": False,
             "schedule": "R0/2014-01-01T00:00:00Z/PT60M"}
DEPENDENT = {"name": "child", "command": "echo 2", "owner": "", "disabled": False, "parents": ["myjob"]}
FULL = {
    "name": "camus_kafka2hdfs", "command": "/srv/kafka_hdfs_job.bash", "arguments": ["-verbose", "-debug"],
    "shell": False, "epsilon": "PT30M", "executor": "", "executorFlags": "", "taskInfoData": "", "retries": 3,
    "owner": "bofh@example.com", "ownerName": "BOFH", "description": "kafka to hdfs", "async": False,
    "successCount": 190, "errorCount": 3, "lastSuccess": "2014-03-08T16:57:17.507Z",
    "lastError": "2014-03-01T00:10:15.957Z", "errorsSinceLastSuccess": 0, "cpus": 1.0, "disk": 10240, "mem": 1024,
    "disabled": False, "concurrent": True, "softError": True, "highPriority": True, "dataProcessingJobType": False,
    "maxCompletionTime": 3600, "runAsUser": "nobody",
    "fetch": [{"uri": "https://example.com/job.tgz", "cache": True, "extract": True, "executable": False,
               "outputFile": "job.tgz"}],
    "schedule": "R/2014-03-08T20:00:00.000Z/PT2H", "scheduleTimeZone": "Europe/Berlin",
    "environmentVariables": [{"name": "JVMOPTS", "value": "-Xmx1000m"}, {"name": "EMPTY", "value": ""}],
    "constraints": [["rack", "EQUALS", "rack-1"], ["hostname", "LIKE", "node-[1-3]"], ["zone", "UNLIKE", "b"]],
    "container": {"type": "mesos", "image": "busybox:latest", "network": "HOST", "forcePullImage": True,
                  "volumes": []},
}


def scheduled(**changes: Any) -> JobSpec:
    return parse_job({**SCHEDULED, **changes}, dependent=False, legacy=False, now=NOW)


def shown(spec: JobSpec) -> dict[str, Any]:
    return job_json(spec, schedule=spec.schedule, success_count=4, error_count=1, last_success=NOW,
                    last_error=None, errors_since_last_success=0)


# ----------------------------------------------------------------------------- defaults and round trips


def test_the_chronos_python_itest_job_gets_chronos_3_defaults() -> None:
    spec = scheduled()
    assert (spec.shell, spec.retries, spec.epsilon, spec.cpus, spec.mem, spec.disk) == (True, 2, None, 0, 0, 0)
    assert (spec.parents, spec.container, spec.fetch, spec.run_as_user, spec.max_completion_time) == ((), None, (),
                                                                                                      "", 0)
    assert not (spec.disabled or spec.concurrent or spec.soft_error or spec.high_priority or spec.legacy_async)


def test_a_full_job_is_read_and_shown_with_chronos_field_names() -> None:
    spec = parse_job(FULL, dependent=False, legacy=False, now=NOW)
    assert (spec.epsilon, spec.arguments, spec.max_completion_time) == (1800.0, ("-verbose", "-debug"), 3600.0)
    assert spec.container == {"type": "MESOS", "image": "busybox:latest", "network": "HOST", "forcePullImage": True,
                              "volumes": [], "parameters": []}
    assert spec.constraints[1] == ("hostname", "LIKE", "node-[1-3]")
    body = job_json(spec, schedule="R/2014-03-08T22:00:00.000+01:00/PT2H", success_count=190, error_count=3,
                    last_success=1394297837.507, last_error=None, errors_since_last_success=0)
    assert body["schedule"] == "R/2014-03-08T22:00:00.000+01:00/PT2H" and body["scheduleTimeZone"] == "Europe/Berlin"
    assert (body["lastSuccess"], body["lastError"], body["epsilon"]) == ("2014-03-08T16:57:17.507Z", "", "PT1800S")
    assert body["uris"] == ["https://example.com/job.tgz"] and body["fetch"][0]["outputFile"] == "job.tgz"
    assert "parents" not in body
    json.dumps(body, allow_nan=False)


def test_uris_fold_into_fetch_and_a_get_entry_posts_back_unchanged() -> None:
    spec = scheduled(uris=["http://example.com/a.tgz", "/opt/b"])
    assert spec.fetch == ({"uri": "http://example.com/a.tgz", "cache": False, "extract": True, "executable": False},
                          {"uri": "/opt/b", "cache": False, "extract": True, "executable": False})
    body = shown(spec)
    assert body["uris"] == ["http://example.com/a.tgz", "/opt/b"] and len(body["fetch"]) == 2
    assert parse_job(body, dependent=False, legacy=False, now=0) == spec


def test_a_dependent_job_shows_parents_and_no_schedule() -> None:
    spec = parse_job(DEPENDENT, dependent=True, legacy=False, now=NOW)
    body = shown(spec)
    assert body["parents"] == ["myjob"] and "schedule" not in body and spec.schedule is None
    assert parse_job(body, dependent=True, legacy=False, now=0) == spec


def test_legacy_paths_take_names_with_spaces_and_async() -> None:
    spec = parse_job({**SCHEDULED, "name": "job with spaces", "async": True, "epsilon": "PT5M"},
                     dependent=False, legacy=True, now=NOW)
    assert (spec.name, spec.legacy_async, spec.epsilon) == ("job with spaces", True, 300.0)
    with pytest.raises(JobRejected) as refused:
        parse_job({**SCHEDULED, "name": "job with spaces"}, dependent=False, legacy=False, now=NOW)
    assert refused.value.field == "name"


def test_cron_schedules_and_empty_starts_are_accepted() -> None:
    assert scheduled(schedule="*/5 * * * *", scheduleTimeZone="America/New_York").schedule == "*/5 * * * *"
    assert scheduled(schedule="R5//P1D").schedule == "R5//P1D"


# ----------------------------------------------------------------------------- refusals

REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"name": None}, "name", "is required"),
    ({"name": ""}, "name", "must not be empty"),
    ({"name": "job with spaces"}, "name", r"[\w.-]+"),
    ({"name": "jöb"}, "name", r"[\w.-]+"),
    ({"name": "a/b"}, "name", r"[\w.-]+"),
    ({"name": "x" * 201}, "name", "at most 200"),
    ({"name": 7}, "name", "must be a string"),
    ({"command": None}, "command", "is required"),
    ({"command": ""}, "command", "must not be empty"),
    ({"command": "echo \x00"}, "command", "NUL"),
    ({"command": "echo \ud800"}, "command", "lone surrogate"),
    ({"command": "x" * 65_537}, "command", "at most 65536"),
    ({"schedule": None}, "schedule", "is required"),
    ({"schedule": "every day"}, "schedule", "Cannot parse schedule 'every day'"),
    ({"schedule": "R/1969-01-01T00:00:00Z/PT1H"}, "schedule", "Cannot parse schedule"),
    ({"schedule": 5}, "schedule", "must be a string"),
    ({"scheduleTimeZone": "Mars/Olympus"}, "scheduleTimeZone", "Unknown time zone"),
    ({"scheduleTimeZone": "../etc/passwd"}, "scheduleTimeZone", "Unknown time zone"),
    ({"parents": ["a"]}, "parents", "a scheduled job has no parents"),
    ({"unknown": 1}, "unknown", "is not a job field Meseta knows"),
    ({"dataJob": True}, "dataJob", "is not a job field"),
    ({"shell": "true"}, "shell", "true or false"),
    ({"arguments": ["-v"]}, "arguments", "only passed when shell is false"),
    ({"shell": False, "arguments": "-v"}, "arguments", "must be a list"),
    ({"shell": False, "arguments": ["-v", 3]}, "arguments[1]", "must be a string"),
    ({"shell": False, "arguments": ["x"] * 1001}, "arguments", "at most 1000"),
    ({"epsilon": "PT"}, "epsilon", "ISO 8601 duration"),
    ({"epsilon": 60}, "epsilon", "must be a string"),
    ({"epsilon": "P1M"}, "epsilon", "years or months"),
    ({"epsilon": "PT\u0666\u0660S"}, "epsilon", "not ASCII"),
    ({"epsilon": "PT0.0001S"}, "epsilon", "whole milliseconds"),
    ({"epsilon": "P5000D"}, "epsilon", "ten years"),
    ({"retries": -1}, "retries", "between 0 and 1000"),
    ({"retries": 1.5}, "retries", "whole number"),
    ({"retries": True}, "retries", "whole number"),
    ({"retries": 10**400}, "retries", "whole number"),
    ({"cpus": -0.1}, "cpus", "between 0"),
    ({"cpus": float("nan")}, "cpus", "finite"),
    ({"mem": float("inf")}, "mem", "finite"),
    ({"disk": "10"}, "disk", "finite"),
    ({"maxCompletionTime": -1}, "maxCompletionTime", "between 0"),
    ({"owner": ["a"]}, "owner", "must be a string"),
    ({"description": "x" * 4097}, "description", "at most 4096"),
    ({"runAsUser": "root; rm -rf /"}, "runAsUser", "user name"),
    ({"executor": "/usr/bin/thermos"}, "executor", "custom executors are not supported"),
    ({"executorFlags": "-x"}, "executorFlags", "custom executors"),
    ({"taskInfoData": "{}"}, "taskInfoData", "custom executors"),
    ({"async": "no"}, "async", "true or false"),
    ({"successCount": -1}, "successCount", "between 0"),
    ({"lastError": 5}, "lastError", "must be a string"),
    ({"environmentVariables": {"A": "1"}}, "environmentVariables", "must be a list"),
    ({"environmentVariables": ["A=1"]}, "environmentVariables[0]", "must be an object"),
    ({"environmentVariables": [{"name": "A"}]}, "environmentVariables[0].value", "is required"),
    ({"environmentVariables": [{"name": "A=B", "value": "1"}]}, "environmentVariables[0].name", "'='"),
    ({"environmentVariables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
     "environmentVariables[1].name", "given twice"),
    ({"environmentVariables": [{"name": "A", "value": "1", "secret": "s"}]}, "environmentVariables[0].secret",
     "is not an environment variable field"),
    ({"fetch": [{"uri": "s3://bucket/key"}]}, "fetch[0].uri", "only http, https and file"),
    ({"fetch": [{"uri": "relative/path"}]}, "fetch[0].uri", "only http, https and file"),
    ({"fetch": [{"uri": "http://[::1"}]}, "fetch[0].uri", "is not a URI"),
    ({"fetch": [{}]}, "fetch[0].uri", "is required"),
    ({"fetch": [{"uri": "http://a/b", "extract": "yes"}]}, "fetch[0].extract", "true or false"),
    ({"fetch": [{"uri": "http://a/b", "outputFile": "../../etc/cron.d/x"}]}, "fetch[0].outputFile", "relative"),
    ({"fetch": [{"uri": "http://a/b", "destPath": "x"}]}, "fetch[0].destPath", "is not a fetch field"),
    ({"fetch": [{"uri": "http://a/b"}], "uris": ["http://c/d"]}, "uris", "not both"),
    ({"uris": ["hdfs://nn/x"]}, "uris[0]", "only http, https and file"),
    ({"uris": [""]}, "uris[0]", "must not be empty"),
    ({"constraints": [["rack", "GROUP_BY", "2"]]}, "constraints[0]", "not one of EQUALS, LIKE, UNLIKE"),
    ({"constraints": [["rack", "EQUALS"]]}, "constraints[0]", "three strings"),
    ({"constraints": [["rack", "EQUALS", 1]]}, "constraints[0]", "three strings"),
    ({"constraints": [["", "EQUALS", "a"]]}, "constraints[0]", "attribute must not be empty"),
    ({"constraints": [["rack", "LIKE", "("]]}, "constraints[0]", "not a valid regular expression"),
    ({"constraints": "rack:EQUALS:a"}, "constraints", "must be a list"),
    ({"container": "busybox"}, "container", "must be an object"),
    ({"container": {"image": "busybox", "parameters": [{"key": "a", "value": "b"}]}}, "container.parameters",
     "not supported"),
    ({"container": {"type": "APPC", "image": "busybox"}}, "container.type", "DOCKER or MESOS"),
    ({"container": {"type": "MESOS"}}, "container.image", "is required"),
    ({"container": {"type": "MESOS", "image": "b", "network": "USER"}}, "container.networkName", "USER network"),
    ({"container": {"type": "MESOS", "image": "b", "network": "NONE"}}, "container.network", "one of BRIDGE"),
    ({"container": {"type": "MESOS", "image": "b", "networkName": "dcos"}}, "container.networkName", "only with"),
    ({"container": {"type": "MESOS", "image": "b", "portMappings": [{"containerPort": 80}]}},
     "container.portMappings", "maps no ports"),
    ({"container": {"type": "MESOS", "image": "b", "parameters": [{"key": "a", "value": "b"}]}},
     "container.parameters", "Docker parameters"),
    ({"container": {"type": "MESOS", "image": "b", "forcePullImage": "true"}}, "container.forcePullImage",
     "true or false"),
    ({"container": {"type": "MESOS", "image": "b", "privileged": True}}, "container.privileged",
     "is not a container field"),
    ({"container": {"type": "MESOS", "image": "b", "volumes": [{"containerPath": "/d"}]}},
     "container.volumes[0].hostPath", "is required"),
    ({"container": {"type": "MESOS", "image": "b", "volumes": [{"containerPath": "/d", "hostPath": "d"}]}},
     "container.volumes[0].hostPath", "absolute"),
    ({"container": {"type": "MESOS", "image": "b", "volumes": [{"containerPath": "/d", "hostPath": "/d",
                                                                 "mode": "RX"}]}},
     "container.volumes[0].mode", "RO or RW"),
    ({"container": {"type": "MESOS", "image": "b", "volumes": [{"containerPath": "d", "persistent": {"size": 1}}]}},
     "container.volumes[0].persistent", "not supported"),
    ({"container": {"type": "MESOS", "image": "b", "volumes": [{"containerPath": "/d", "external": {}}]}},
     "container.volumes[0].external", "not supported"),
]


@pytest.mark.parametrize(("changes", "field", "says"), REFUSALS, ids=[f"{f}-{i}" for i, (_, f, _) in
                                                                      enumerate(REFUSALS)])
def test_every_refusal_names_its_field(changes: dict[str, Any], field: str, says: str) -> None:
    body = {key: value for key, value in {**SCHEDULED, **changes}.items() if value is not None}
    with pytest.raises(JobRejected) as refused:
        parse_job(body, dependent=False, legacy=False, now=NOW)
    assert refused.value.field == field
    assert says in refused.value.problem
    assert str(refused.value) == f"{field}: {refused.value.problem}"


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"parents": None}, "parents", "at least one parent"),
    ({"parents": []}, "parents", "at least one parent"),
    ({"parents": ["child"]}, "parents[0]", "its own parent"),
    ({"parents": ["a", "a"]}, "parents[1]", "given twice"),
    ({"parents": ["a b"]}, "parents[0]", r"[\w.-]+"),
    ({"parents": [1]}, "parents[0]", "must be a string"),
    ({"parents": [f"p{i}" for i in range(101)]}, "parents", "at most 100"),
    ({"schedule": "R/2014-01-01T00:00:00Z/PT1H"}, "schedule", "a dependent job has parents"),
    ({"scheduleTimeZone": "UTC"}, "scheduleTimeZone", "no schedule"),
])
def test_dependent_job_refusals_name_their_field(changes: dict[str, Any], field: str, says: str) -> None:
    body = {key: value for key, value in {**DEPENDENT, **changes}.items() if value is not None}
    with pytest.raises(JobRejected) as refused:
        parse_job(body, dependent=True, legacy=False, now=NOW)
    assert (refused.value.field, says in refused.value.problem) == (field, True)


@pytest.mark.parametrize("body", [None, [], "job", 5, True])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(JobRejected) as refused:
        parse_job(body, dependent=False, legacy=False, now=NOW)
    assert refused.value.field == "job"


# ----------------------------------------------------------------------------- properties

names = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
artifacts = st.fixed_dictionaries({"uri": st.sampled_from(["http://a/x.tgz", "https://b/y", "file:///z", "/opt/w"])},
                                  optional={"cache": st.booleans(), "extract": st.booleans(),
                                            "executable": st.booleans(), "outputFile": st.sampled_from(["o", "d/o"])})
containers = st.fixed_dictionaries(
    {"type": st.sampled_from(["MESOS", "mesos"]), "image": st.sampled_from(["busybox", "alpine:3"])},
    optional={"network": st.just("HOST"), "forcePullImage": st.booleans(), "parameters": st.just([]),
              "volumes": st.just([])})
OPTIONAL = {
    "shell": st.booleans(), "epsilon": st.sampled_from(["PT60S", "PT30M", "P1D", "PT0.5S", "P1W", "PT0S"]),
    "retries": st.integers(0, 1000), "owner": texts, "ownerName": texts, "description": texts,
    "cpus": st.floats(0, 64) | st.integers(0, 64), "mem": st.floats(0, 1e6), "disk": st.integers(0, 10**6),
    "disabled": st.booleans(), "concurrent": st.booleans(), "softError": st.booleans(),
    "highPriority": st.booleans(), "dataProcessingJobType": st.booleans(), "async": st.booleans(),
    "maxCompletionTime": st.floats(0, 1e6), "runAsUser": st.sampled_from(["", "nobody", "www-data"]),
    "environmentVariables": st.lists(st.fixed_dictionaries({"name": st.from_regex(r"[A-Z_]{1,8}", fullmatch=True),
                                                            "value": texts}), max_size=3,
                                     unique_by=lambda entry: entry["name"]),
    "fetch": st.lists(artifacts, max_size=3), "container": containers,
    "constraints": st.lists(st.tuples(st.sampled_from(["rack", "hostname"]),
                                      st.sampled_from(["EQUALS", "LIKE", "UNLIKE"]),
                                      st.sampled_from(["a", "rack-[1-3]", ".*"])).map(list), max_size=3),
    "scheduleTimeZone": st.sampled_from(["", "UTC", "Europe/Berlin"]), "successCount": st.integers(0, 10),
    "lastError": st.sampled_from(["", "2014-03-01T00:10:15.957Z"]), "executor": st.just(""),
}
scheduled_jobs = st.fixed_dictionaries(
    {"name": names, "command": texts.filter(bool),
     "schedule": st.sampled_from(["R/2014-03-08T20:00:00.000Z/PT2H", "R5//P1D", "R0/2014-01-01T00:00:00Z/PT60M",
                                  "*/5 * * * *", "R3/2030-01-31T10:00:00+01:00/P1M"])},
    optional=OPTIONAL)
dependent_jobs = st.fixed_dictionaries(
    {"name": names, "command": texts.filter(bool), "parents": st.lists(names, min_size=1, max_size=3, unique=True)},
    optional={key: value for key, value in OPTIONAL.items() if key != "scheduleTimeZone"})


def with_arguments_only_without_shell(job: dict[str, Any], arguments: list[str]) -> dict[str, Any]:
    return {**job, "arguments": arguments} if job.get("shell") is False else job


def parse_or_refuse(body: Any, dependent: bool, legacy: bool = False) -> JobSpec | None:
    """The property every input must have: a JobSpec, or JobRejected naming a field; nothing else."""
    try:
        spec = parse_job(body, dependent=dependent, legacy=legacy, now=NOW)
    except JobRejected as refused:
        assert refused.field and isinstance(refused.problem, str)
        return None
    assert isinstance(spec, JobSpec)
    json.dumps(shown(spec), allow_nan=False)
    return spec


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scheduled_jobs, st.lists(texts, max_size=3))
def test_a_scheduled_job_round_trips_through_get(job: dict[str, Any], arguments: list[str]) -> None:
    body = with_arguments_only_without_shell(job, arguments)
    spec = parse_or_refuse(body, dependent=False)
    if spec is None:  # a name the generator drew that is its own parent, etc. cannot happen here
        pytest.fail(f"a valid job was refused: {body}")
    assert parse_job(shown(spec), dependent=False, legacy=False, now=0) == spec


@PROPERTY
@given(dependent_jobs)
def test_a_dependent_job_round_trips_through_get(job: dict[str, Any]) -> None:
    spec = parse_or_refuse(job, dependent=True)
    if spec is None:
        assert job["name"] in job["parents"]
        return
    assert parse_job(shown(spec), dependent=True, legacy=False, now=0) == spec


scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.sampled_from([10**400, "", "R/2014-01-01T00:00:00Z/PT1H", "MESOS", "DOCKER", "HOST", "EQUALS",
                              "LIKE", "(", "http://a/b", "\ud800", "a\x00b", "x" * 5000, "PT1M", "Europe/Berlin"])
           | st.text(max_size=8))
json_like = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                         | st.dictionaries(st.sampled_from([*sorted(OPTIONAL), "name", "type", "image", "uri"])
                                           | st.text(max_size=4), children, max_size=5), max_leaves=12)


@PROPERTY
@given(json_like, st.booleans(), st.booleans())
def test_any_json_is_a_job_or_a_refusal(body: Any, dependent: bool, legacy: bool) -> None:
    parse_or_refuse(body, dependent, legacy)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


@st.composite
def mutated_jobs(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A valid job with one or two of its values (at any depth) removed or replaced by arbitrary JSON."""
    dependent = draw(st.booleans())
    job = copy.deepcopy(draw(dependent_jobs if dependent else scheduled_jobs))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths(job)))
        holder = job
        for key in path[:-1]:
            holder = holder[key]
        if draw(st.booleans()):
            del holder[path[-1]]
        else:
            holder[path[-1]] = draw(json_like)
    return job, dependent


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_jobs(), st.booleans())
def test_a_mutated_valid_job_is_a_job_or_a_refusal(case: tuple[dict[str, Any], bool], legacy: bool) -> None:
    job, dependent = case
    spec = parse_or_refuse(job, dependent, legacy)
    if spec is not None:
        assert parse_job(shown(spec), dependent=dependent, legacy=legacy, now=0) == spec


# ----------------------------------------------------------------------------- chronos-python's own checks


@pytest.mark.parametrize("legacy", [False, True])
def test_chronos_python_accepts_what_get_shows_for_adding_back(legacy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """chronos-python 1.2.1 checks a job before it POSTs it (required fields, exactly one of schedule
    and parents, container type and image): a GET entry must pass, so that a listed job can be added
    back. Its legacy client extends a class-level list in place, hence the copy."""
    import chronos

    monkeypatch.setattr(chronos.ChronosJob, "fields", list(chronos.ChronosJob.fields))
    client = chronos.ChronosClient("127.0.0.1:1", scheduler_api_version=None if legacy else "v1")
    full = parse_job(FULL, dependent=False, legacy=legacy, now=NOW)
    child = parse_job(DEPENDENT, dependent=True, legacy=legacy, now=NOW)
    for spec in (scheduled(), full, child):
        client._check_fields(shown(spec))
    with pytest.raises(chronos.ChronosValidationError):  # the check can fail
        client._check_fields({**shown(full), "parents": ["x"]})


def test_job_containers_become_container_infos_the_agent_reads() -> None:
    """BRIDGE joins the agents' mesos-bridge, USER its networkName; host volumes are bound."""
    from meseta.jobs import task_builder
    from meseta.protocol.container_info import NetworkRequest, VolumeMount, container_spec

    def built(container: dict[str, Any]) -> Any:
        spec = parse_job({**SCHEDULED, "container": container}, dependent=False, legacy=False, now=0.0)
        return container_spec(task_builder.container(spec))

    volume = {"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}
    docker = built({"type": "DOCKER", "image": "b:1", "network": "BRIDGE", "volumes": [volume]})
    assert docker.image == "b:1" and docker.networks == (NetworkRequest("mesos-bridge"),)
    assert docker.volumes == (VolumeMount("/data", "/srv/data", "HOST_PATH", True),)
    assert built({"type": "DOCKER", "image": "b:1", "network": "USER", "networkName": "blue"}).networks == (
        NetworkRequest("blue"),)
    mesos = built({"type": "MESOS", "image": "b:1", "network": "BRIDGE", "forcePullImage": True})
    assert mesos.networks == (NetworkRequest("mesos-bridge"),) and mesos.force_pull
    assert built({"type": "MESOS", "image": "b:1"}).networks is None
