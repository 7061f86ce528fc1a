"""Fuzzing the wire parsers: any input either decodes or fails with the parser's own error."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.core.resources import ResourceError, Resources
from meseta.protocol.recordio import RecordIODecoder, RecordIOError, encode_event
from meseta.protocol.scheduler_calls import CallError, decode_call
from meseta.runtime.streams import EventStream

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["value", "offer_ids", "task_id", "uuid", "tasks", "framework_info", "x"]),
                      children, max_size=3),
    max_leaves=6,
)
call_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["SUBSCRIBE", "ACCEPT", "DECLINE", "KILL", "ACKNOWLEDGE", "RECONCILE", "FLY", 3])},
    optional={"framework_id": json_values, "accept": json_values, "kill": json_values, "subscribe": json_values,
              "acknowledge": json_values, "reconcile": json_values},
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), call_like.map(lambda c: json.dumps(c).encode())))
def test_decode_call_fails_only_with_call_error(body: bytes) -> None:
    try:
        decode_call(body)
    except CallError as exc:
        assert exc.status in (400, 501) and str(exc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_recordio_decoder_fails_only_with_recordio_error(data: bytes) -> None:
    try:
        RecordIODecoder().feed(data)
    except RecordIOError:
        pass


@given(st.lists(json_values, max_size=5))
def test_resources_from_arbitrary_json_fail_only_with_resource_error(items: list[object]) -> None:
    try:
        Resources.from_json(items)  # type: ignore[arg-type]
    except ResourceError:
        pass


@given(st.text(max_size=60))
def test_resource_text_fails_only_with_resource_error(text: str) -> None:
    try:
        Resources.parse(text)
    except ResourceError:
        pass


async def test_idle_stream_sends_heartbeats_then_closes() -> None:
    stream = EventStream("s", heartbeat_interval=0.05)
    body = stream.body()
    assert await anext(body) == encode_event({"type": "HEARTBEAT"})
    stream.send({"type": "OFFERS"})
    assert await anext(body) == encode_event({"type": "OFFERS"})
    stream.close()
    assert await asyncio.wait_for(anext(body, None), 1) is None
