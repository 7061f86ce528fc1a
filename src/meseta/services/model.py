"""The records the services scheduler (Marathon-compatible) decides over; pure data, no I/O.

An app definition is kept as its *normalised* Marathon JSON (camelCase keys, every default
filled in, ids absolute), produced by ``services.app_definition.normalise``: that one dict is
what is stored, diffed, rendered and versioned. Its ``version`` is a Marathon timestamp.

An :class:`Instance` is one task of an app, as the scheduler tracks it::

    queued -> launched (TASK_STAGING) -> TASK_STARTING -> TASK_RUNNING [healthy?, ready?]
                                            |                 |
                                            +-> terminal <----+   (killed, failed, finished, lost...)
       TASK_UNREACHABLE (agent partitioned) -> RUNNING again, or replaced after inactiveAfterSeconds
    TASK_RUNNING --kill decided, app behind a load balancer--> draining (killing) --drained
       or deadline--> Kill sent

``agent_fields`` holds the constraint fields of the agent it runs on, formatted as strings
(``hostname``, ``@hostname``, ``@region``, ``@zone`` and every attribute name), so that
constraint checks need nothing but instances and an offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meseta.protocol.task_states import ALL_STATES, TERMINAL, TaskState

App = dict[str, Any]  # a normalised app definition (see module docstring)

# Marathon counts TASK_UNKNOWN as terminal too: the master no longer knows the task, so it is gone.
TERMINAL_STATES = TERMINAL | {TaskState.TASK_UNKNOWN}
ACTIVE_STATES = frozenset(ALL_STATES) - TERMINAL_STATES  # staging, starting, running, killing, unreachable


@dataclass(slots=True)
class Instance:
    task_id: str
    app_id: str  # absolute, e.g. "/prod/web"
    version: str  # the app version it was launched with (a Marathon timestamp)
    agent_id: str
    host: str
    state: str = "TASK_STAGING"
    staged_at: float = 0.0  # epoch seconds
    started_at: float | None = None  # first TASK_RUNNING
    healthy: bool | None = None  # None: the app has no health checks, or no result yet
    ready: bool | None = None  # readiness (only checked during deployments)
    host_ports: list[int] = field(default_factory=list)
    agent_fields: dict[str, str] = field(default_factory=dict)
    killing: bool = False  # a kill was decided (sent, or waiting for its load balancers to drain it)
    draining: bool = False  # its kill waits for the load balancers to drain it (services.deploy.drain)
    kill_sent_at: float | None = None  # when (sent again if the task is still there 10 s later)
    unreachable_since: float | None = None
    health_first_success: float | None = None  # health as the agent's checks reported it (epoch s)
    health_last_success: float | None = None
    health_last_failure: float | None = None
    health_failures: int = 0  # unhealthy reports since the last healthy one
    health_failure_cause: str | None = None
    message: str = ""  # the last status message (for lastTaskFailure)
    # from the latest status's container_status.network_infos: [{ipAddress, protocol, networkName?}]
    ip_addresses: list[dict[str, str]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def running(self) -> bool:
        return self.state == "TASK_RUNNING"
