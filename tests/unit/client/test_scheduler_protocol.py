"""The client's sans-I/O scheduler protocol: call bodies and event decoding."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from meseta.client import SchedulerProtocol, decode_data, parse_duration
from meseta.client.scheduler_protocol import Error, Failure, Message, Offers, Subscribed, Update
from meseta.protocol.recordio import encode_event

EVENTS = [
    {"type": "SUBSCRIBED", "subscribed": {"framework_id": {"value": "f-1"}, "heartbeat_interval_seconds": 15}},
    {"type": "OFFERS", "offers": {"offers": [{"id": {"value": "o1"}}]}},
    {"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_RUNNING", "uuid": "AAAA"}}},
    {"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_LOST"}}},
    {"type": "MESSAGE", "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "aGk="}},
    {"type": "FAILURE", "failure": {"agent_id": {"value": "a"}}},
    {"type": "HEARTBEAT"},
    {"type": "ERROR", "error": {"message": "Framework has been removed"}},
]
STREAM = b"".join(encode_event(e) for e in EVENTS)


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_events_decode_identically_however_the_stream_is_split(cuts: list[int]) -> None:
    protocol = SchedulerProtocol({"user": "", "name": "x"})
    intents = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        intents += protocol.receive(STREAM[start:end])
    kinds = [type(i).__name__ for i in intents]
    assert kinds == ["Subscribed", "Offers", "Update", "Update", "Message", "Failure", "Heartbeat", "Error"]
    assert isinstance(intents[0], Subscribed) and intents[0].first_time and protocol.framework_id == "f-1"
    assert isinstance(intents[1], Offers) and intents[1].offers[0]["id"]["value"] == "o1"
    assert isinstance(intents[2], Update) and intents[2].ack_needed
    assert isinstance(intents[3], Update) and not intents[3].ack_needed  # master-made: never acked
    assert isinstance(intents[4], Message) and intents[4].data == b"hi"
    assert isinstance(intents[5], Failure) and intents[5].executor_id is None
    assert isinstance(intents[7], Error) and "removed" in intents[7].message


def test_call_bodies_wrap_ids_and_encode_data() -> None:
    protocol = SchedulerProtocol({"user": "", "name": "x", "id": {"value": "f-9"}})
    assert protocol.subscribe_body()["framework_id"] == {"value": "f-9"}
    body = protocol.launch(["o1"], [{"name": "t"}], {"refuse_seconds": 1})
    assert body["type"] == "ACCEPT" and body["accept"]["offer_ids"] == [{"value": "o1"}]
    assert body["accept"]["operations"][0]["type"] == "LAUNCH"
    assert protocol.launch(["o1"], [])["type"] == "DECLINE"
    message = protocol.message("a", "e", b"\x00\x01")
    assert decode_data(message["message"]["data"]) == b"\x00\x01"
    assert protocol.roles_call("REVIVE", None) == {"type": "REVIVE", "framework_id": {"value": "f-9"}}
    assert protocol.kill("t")["kill"] == {"task_id": {"value": "t"}}


def test_stout_durations() -> None:
    assert parse_duration("5secs") == 5.0
    assert parse_duration("2.5mins") == 150.0
    assert parse_duration("100ms") == 0.1
    assert parse_duration("bogus", 3.0) == 3.0
