"""The services event stream (``GET /v2/events``, Server-Sent Events), Marathon's event bus.

    publisher (the scheduler) --publish(event)--> EventBus --> one bounded queue per subscriber
                                                            --> "event: <type>\\ndata: <json>\\n\\n"

Every event is ``{"eventType": T, "timestamp": "<Marathon time>", ...payload}``. Subscribers
that pass no ``event_type`` filter only ever get the types marathon-python 0.13.0 knows
(``CLIENT_KNOWN_TYPES``): an unknown type raises inside its generator and kills the stream.
A subscriber that stops reading until its queue is full is dropped (it reconnects), so a slow
client never holds the scheduler up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

CLIENT_KNOWN_TYPES = frozenset({
    "api_post_event", "status_update_event", "framework_message_event", "subscribe_event",
    "unsubscribe_event", "add_health_check_event", "remove_health_check_event", "failed_health_check_event",
    "health_status_changed_event", "unhealthy_task_kill_event", "unhealthy_instance_kill_event",
    "group_change_success", "group_change_failed", "deployment_success", "deployment_failed", "deployment_info",
    "deployment_step_success", "deployment_step_failure", "event_stream_attached", "event_stream_detached",
    "app_terminated_event", "instance_changed_event", "unknown_instance_terminated_event",
    "instance_health_changed_event", "pod_created_event", "pod_updated_event", "pod_deleted_event",
})
# Every type Marathon 1.10 has (a subscription may filter on any; another name is a mistake: 400).
# Meseta's instance_draining_event (services.deploy.drain) only reaches those that ask for it by name.
EVENT_TYPES = CLIENT_KNOWN_TYPES | {"scheduler_registered_event", "scheduler_reregistered_event",
                                    "scheduler_disconnected_event", "instance_draining_event"}
QUEUE_LIMIT = 10_000


def sse_frame(item: dict[str, Any]) -> bytes:
    return f"event: {item['eventType']}\ndata: {json.dumps(item, separators=(',', ':'))}\n\n".encode()


class Subscriber:
    def __init__(self, types: frozenset[str] | None) -> None:
        self.types = types if types else CLIENT_KNOWN_TYPES
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = False

    def offer(self, item: dict[str, Any], frame: bytes) -> None:
        if item["eventType"] not in self.types or self.dropped:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped = True
            self.queue.get_nowait()
            self.queue.put_nowait(None)  # ends its stream

    async def frames(self) -> AsyncIterator[bytes]:
        while (frame := await self.queue.get()) is not None:
            yield frame


class EventBus:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()

    def subscribe(self, types: Iterable[str] = ()) -> Subscriber:
        subscriber = Subscriber(frozenset(types) or None)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, item: dict[str, Any]) -> None:
        if not self.subscribers:
            return  # nobody listens: no need to serialise (this runs for every status update)
        frame = sse_frame(item)
        for subscriber in list(self.subscribers):
            subscriber.offer(item, frame)
            if subscriber.dropped:
                self.subscribers.discard(subscriber)
