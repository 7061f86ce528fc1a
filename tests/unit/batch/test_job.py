"""The job edge: flags and job files checked into a Job, every refusal naming its flag or member."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.batch.job import JobError, check_job, check_job_file, merge, parse_env_flag


def job(given: dict[str, Any], from_file: dict[str, Any] | None = None) -> Any:
    return check_job(*merge(given, check_job_file(from_file) if from_file is not None else {}))


@pytest.mark.parametrize(("given", "where", "problem"), [
    ({"count": -1}, "--count", "between 1 and"),
    ({"count": True}, "--count", "whole number"),
    ({"cpus": 0}, "--cpus", "more than 0"),
    ({"cpus": float("nan")}, "--cpus", "at most"),
    ({"mem": -5}, "--mem", "at least 0"),
    ({"max_parallel": -1}, "--max-parallel", "between 0"),
    ({"retries": 10_000}, "--retries", "between 0 and 1000"),
    ({"command": "echo \x00"}, "COMMAND", "NUL"),
    ({"command": "echo \udcff"}, "COMMAND", "not valid Unicode"),
    ({"command": "  "}, "COMMAND", "empty"),
    ({"role": "a//b"}, "--role", "'//'"),
    ({"uris": ["ftp://x/y"]}, "--uri[0]", "not http://"),
    ({"constraints": ["hostname:GROUP_BY"]}, "--constraint", "GROUP_BY is not supported"),
    ({"constraints": ["hostname:NEAR"]}, "--constraint", "unknown operator 'NEAR'"),
    ({"constraints": ["rack:LIKE"]}, "--constraint", "needs a regular expression"),
    ({"constraints": ["rack:LIKE:("]}, "--constraint", "not a regular expression"),
    ({"constraints": ["hostname:UNIQUE:x"]}, "--constraint", "takes no value"),
])
def test_bad_values_are_refused_naming_the_flag(given: dict[str, Any], where: str, problem: str) -> None:
    with pytest.raises(JobError) as caught:
        job({"command": "true", **given})
    assert caught.value.where == where and problem in str(caught.value)


def test_env_flags_are_name_equals_value() -> None:
    assert parse_env_flag("A_1=x=y") == ("A_1", "x=y")
    for bad, problem in (("FOO", "not NAME=VALUE"), ("1A=x", "not a variable name"),
                         ("MESETA_TASK_INDEX=3", "set by meseta submit")):
        with pytest.raises(JobError, match=problem) as caught:
            parse_env_flag(bad)
        assert caught.value.where == "--env"


def test_a_job_file_fills_in_and_flags_given_win() -> None:
    env = job({"env": [("B", "2"), ("A", "3")]}, {"command": "x", "env": {"A": "1", "C": "4"}}).env
    assert env == (("A", "3"), ("C", "4"), ("B", "2"))  # --env adds to the file's, the last value wins
    made = job({"cpus": 2}, {"command": "make", "cpus": 0.5, "mem": 64, "env": {"A": "1"}, "count": 3,
                            "uris": [{"value": "http://h/f.tgz", "extract": False}],
                            "constraints": [["rack", "CLUSTER", "r1"], "hostname:UNIQUE"]})
    assert (made.command, made.cpus, made.mem, made.count, made.env) == ("make", 2.0, 64.0, 3, (("A", "1"),))
    assert made.uris[0].extract is False and [c.text() for c in made.constraints] == ["rack:CLUSTER:r1",
                                                                                      "hostname:UNIQUE"]


@pytest.mark.parametrize(("document", "where", "problem"), [
    ([], "job file", "JSON object"),
    ({"command": "x", "instances": 3}, "job file: instances", "not a job member"),
    ({"command": "x", "cpus": "2"}, "job file: cpus", "must be a number"),
    ({"command": "x", "env": {"A": 1}}, "job file: env A", "must be a string"),
    ({"command": "x", "uris": [{"value": "http://h/x", "shell": True}]}, "job file: uris[0]", "unknown member"),
    ({"command": "x", "constraints": [["rack"]]}, "job file: constraints[0]", "FIELD, OPERATOR"),
    ({}, "COMMAND", "give a command"),
])
def test_job_file_members_are_checked_by_name(document: Any, where: str, problem: str) -> None:
    with pytest.raises(JobError) as caught:
        job({}, document)
    assert caught.value.where == where and problem in str(caught.value)
