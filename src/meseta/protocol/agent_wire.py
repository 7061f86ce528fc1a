"""The master <-> agent protocol (Meseta's own; Mesos uses libprocess messages here).

Agent-initiated, one persistent connection, modelled on the v1 scheduler API::

    agent                                         master
      | POST /internal/agent   REGISTER | REREGISTER  |
      |---------------------------------------------->|  200, chunked RecordIO stream,
      |<======== REGISTERED {agent_id, ...} ==========|  header Meseta-Agent-Stream-Id
      |<======== RUN_TASK / RUN_TASK_GROUP ===========|
      |<======== KILL_TASK / ACKNOWLEDGE / PING ======|
      |<======== FRAMEWORK_MESSAGE / SHUTDOWN_* ======|
      | POST /internal/agent/call  (202)              |
      |   STATUS_UPDATE | PONG | EXECUTOR_MESSAGE     |
      |   | EXECUTOR_EXITED                           |
      |---------------------------------------------->|

Records on the stream are ``{"type": T, ...fields}``; calls are ``{"type": T, "agent_id": {...},
...fields}`` and carry the stream id header. A broken stream marks the agent disconnected; the
agent re-registers with its id (REREGISTER, reporting its frameworks, executors and tasks).
The master pings every ``ping_interval_seconds``; an agent that misses ``max_ping_timeouts``
PONGs in a row is removed, and an agent that hears no PING for that long re-registers.
"""

from __future__ import annotations

AGENT_STREAM_PATH = "/internal/agent"
AGENT_CALL_PATH = "/internal/agent/call"
STREAM_ID_HEADER = "Meseta-Agent-Stream-Id"

AGENT_CALLS = ("STATUS_UPDATE", "PONG", "EXECUTOR_MESSAGE", "EXECUTOR_EXITED")
MASTER_MESSAGES = (
    "REGISTERED",
    "REREGISTERED",
    "RUN_TASK",
    "RUN_TASK_GROUP",
    "KILL_TASK",
    "ACKNOWLEDGE",
    "FRAMEWORK_MESSAGE",
    "SHUTDOWN_EXECUTOR",
    "SHUTDOWN_FRAMEWORK",
    "PING",
    "SHUTDOWN",
)
