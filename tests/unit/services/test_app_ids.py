"""Marathon path ids: canonical form, validation, Mesos task names and task ids."""

from __future__ import annotations

import pytest

from meseta.services.spec import app_ids


@pytest.mark.parametrize(("raw", "base", "expected"), [
    ("foo", "/", "/foo"),
    ("/prod/web/", "/", "/prod/web"),
    ("//prod//web", "/", "/prod/web"),
    ("web", "/prod", "/prod/web"),
    ("../db", "/prod/web", "/prod/db"),
    ("./a/./b/../c", "/g", "/g/a/c"),
    ("/abs", "/prod", "/abs"),
    ("../../..", "/a", "/"),
    ("", "/", "/"),
])
def test_canonical(raw: str, base: str, expected: str) -> None:
    assert app_ids.canonical(raw, base) == expected


def test_parent_and_child() -> None:
    assert app_ids.parent("/prod/web") == "/prod"
    assert app_ids.parent("/web") == "/"
    assert app_ids.parent("/") == "/"
    assert app_ids.is_child_of("/prod/web", "/prod") and app_ids.is_child_of("/prod/web", "/")
    assert not app_ids.is_child_of("/prod", "/prod") and not app_ids.is_child_of("/production/x", "/prod")


@pytest.mark.parametrize("good", ["web", "/prod/web", "a.b-c.d", "x1", "/a/../b", "../sibling", "a-b"])
def test_valid_ids(good: str) -> None:
    assert app_ids.validate_id(good) == []


@pytest.mark.parametrize(("bad", "fragment"), [
    ("Web", "must fully match regular expression"),
    ("a b", "must fully match regular expression"),
    ("-dash", "must fully match regular expression"),
    ("dash-", "must fully match regular expression"),
    ("a_b", "must fully match regular expression"),
    ("a..b", "must fully match regular expression"),
    ("/prod/tasks", "reserved keywords: restart, tasks, versions, ., .."),
    ("/web/restart", "reserved keywords"),
    ("versions", "reserved keywords"),
    ("/", "must not be root"),
    ("a/..", "must not be root"),
])
def test_invalid_ids(bad: str, fragment: str) -> None:
    assert any(fragment in error for error in app_ids.validate_id(bad))


def test_the_regex_in_the_message_is_marathons() -> None:
    (error,) = app_ids.validate_id("UPPER")
    assert error == ("must fully match regular expression "
                     "'^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'")


def test_ids_inside_a_group() -> None:
    assert app_ids.validate_id("web", base="/prod") == []
    assert app_ids.validate_id("/prod/web", base="/prod") == []
    assert app_ids.validate_id("/app", base="/group") == [
        "identifier /app is not child of /group. Hint: use relative paths."]
    assert app_ids.validate_id("/app", base="/group", anywhere=True) == []
    assert app_ids.validate_id("/", allow_root=True) == []


def test_task_names_reverse_the_path() -> None:
    assert app_ids.task_name("/prod/web") == "web.prod"
    assert app_ids.task_name("/a.b/c") == "c.a.b"
    assert app_ids.safe_app_id("/prod/web") == "prod_web"


def test_new_task_ids_round_trip() -> None:
    task_id = app_ids.new_task_id("/prod/web.v2", "4f0c7e408f4c11e68a560242ac110002")
    assert task_id == "prod_web.v2.4f0c7e40-8f4c-11e6-8a56-0242ac110002"
    assert app_ids.app_of_task(task_id) == "/prod/web.v2"
    assert app_ids.new_task_id("/x", "ABC-1") == "x.abc-1"  # not a bare hex uuid: used as given


@pytest.mark.parametrize(("task_id", "app_id"), [
    ("web.4f0c7e40-8f4c-11e6-8a56-0242ac110002", "/web"),
    ("prod_web_4f0c7e40-8f4c-11e6-8a56-0242ac110002", "/prod/web"),
    ("a.b.c.uuid", "/a.b.c"),
    ("prod_web.instance-4f0c7e40-8f4c-11e6-8a56-0242ac110002._app", "/prod/web"),
    ("prod_web.instance-4f0c7e40-8f4c-11e6-8a56-0242ac110002._app.3", "/prod/web"),
    ("pod.instance-abc.container1", "/pod"),
])
def test_app_of_task(task_id: str, app_id: str) -> None:
    assert app_ids.app_of_task(task_id) == app_id


@pytest.mark.parametrize("bad", ["", "nouuid", ".uuid", "web.", "Web.uuid", "a__b.uuid", "_x.uuid", "web/x.uuid"])
def test_unparseable_task_ids(bad: str) -> None:
    assert app_ids.app_of_task(bad) is None
