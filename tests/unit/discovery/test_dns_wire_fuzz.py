"""Hostile operator events: whatever JSON arrives, the book either applies it or refuses it with
WireError (naming the field), and a refused event changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.discovery.dns import wire
from meseta.discovery.dns.book import RecordBook

from . import events as ev

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def mutated(value: Any, data: st.DataObject) -> Any:
    """``value`` with some of its fields replaced by arbitrary JSON."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        replacement = data.draw(json_values) if data.draw(st.booleans()) else mutated(value[key], data)
        return {**value, key: replacement}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutated(value[index], data), *value[index + 1:]]
    return data.draw(json_values) if data.draw(st.integers(0, 5)) == 0 else value


SAMPLES = [
    ev.task_added(ev.task("web.9", discovery={"name": "x", "ports": {"ports": [{"number": 80, "protocol": "tcp"}]}})),
    ev.task_updated("web.1", "TASK_RUNNING", healthy=True, ips=("10.1.1.1",), labels={"a": "b"}),
    {"type": "AGENT_ADDED", "agent_added": {"agent": ev.agent("x-S5", "10.0.0.7")}},
    {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": ev.AGENT_ID}}},
    {"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": ev.framework("other")}},
    {"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": {"id": {"value": ev.FRAMEWORK_ID}}}},
]


@given(st.sampled_from(SAMPLES), st.data())
@settings(max_examples=600, deadline=None)
def test_mutated_events_are_applied_or_refused_by_field(event: dict[str, Any], data: st.DataObject) -> None:
    book = RecordBook()
    book.replace(*wire.parse_state(ev.subscribed([ev.task()])["subscribed"]["get_state"]))
    before = {key: dict(values) for key, values in book.records.items()}
    hostile = mutated(event, data)
    try:
        book.apply(hostile)
    except wire.WireError as exc:
        assert str(exc)
        assert {key: dict(values) for key, values in book.records.items()} == before


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_states_are_parsed_or_refused_by_field(data: st.DataObject) -> None:
    state = ev.subscribed([ev.task(), ev.task("db.1", "db", statuses=[ev.status("db.1", ips=("10.2.2.2",))])])
    hostile = mutated(state["subscribed"]["get_state"], data)
    try:
        RecordBook().replace(*wire.parse_state(hostile))
    except wire.WireError:
        pass


def test_a_task_id_with_a_lone_surrogate_is_refused_by_field_and_changes_nothing() -> None:
    """A name or hash of it cannot be made: it once escaped as UnicodeEncodeError and stopped the feed."""
    book = RecordBook()
    book.replace(*wire.parse_state(ev.subscribed([ev.task()])["subscribed"]["get_state"]))
    before = {key: dict(values) for key, values in book.records.items()}
    for task_id in ("web.\ud800", "\udfff"):
        try:
            book.apply(ev.task_added(ev.task(task_id=task_id)))
        except wire.WireError as exc:
            assert "not valid Unicode" in str(exc)
        else:
            raise AssertionError(f"{task_id!r} was applied")
        assert {key: dict(values) for key, values in book.records.items()} == before
