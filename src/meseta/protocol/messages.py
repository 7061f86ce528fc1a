"""Typed mirrors of the ``mesos.v1`` messages Meseta reads, for checking JSON at the edge.

Each Struct lists the fields some part of Meseta interprets, with the proto's JSON types (lax, as
Mesos parses: numeric strings for numbers, "true"/"false" for bools); other fields are ignored
here and travel on untouched in the original JSON. ``conform(raw, TaskInfo, where)`` says whether
a JSON value would parse into the message, naming the first field that would not::

    TaskInfo      name task_id agent_id|slave_id resources command|executor container health_check
                  kill_policy data labels discovery check limits max_completion_time
    ExecutorInfo  type executor_id framework_id command container resources name source data
                  shutdown_grace_period labels discovery
    CommandInfo   value shell arguments user uris environment       ContainerInfo  type mesos docker ...
    FrameworkInfo user name id failover_timeout checkpoint role roles hostname principal webui_url
                  capabilities labels offer_filters
    Resource      name type scalar ranges set role reservation reservations allocation_info disk ...
    AgentInfo     hostname port id resources attributes             TaskStatus  task_id state ...

Every field is optional here: what is required is a rule of whoever reads the message (the
master's ``validation`` package says which problem each missing field is).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from meseta.protocol.task_states import TaskState

T = TypeVar("T")
# The proto's integer widths: a value outside them would not parse in Mesos either.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
# uint64 fields (range bounds) are held to int64's upper half: msgspec checks no wider bound, and no
# port or range a machine has comes near 2^63.
UInt64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    """Base of the mirrors: frozen, and written back without the fields left unset."""


class ID(Message, frozen=True):
    value: str | None = None


class Duration(Message, frozen=True):
    nanoseconds: Int64 | None = None


class TimeInfo(Message, frozen=True):
    nanoseconds: Int64 | None = None


class Label(Message, frozen=True):
    key: str | None = None
    value: str | None = None


class Labels(Message, frozen=True):
    labels: list[Label] = []


# ----------------------------------------------------------------------------- resources


class Scalar(Message, frozen=True):
    value: float | None = None


class Range(Message, frozen=True):
    begin: UInt64 | None = None
    end: UInt64 | None = None


class Ranges(Message, frozen=True):
    range: list[Range] = []


class ValueSet(Message, frozen=True):
    item: list[str] = []


class AllocationInfo(Message, frozen=True):
    role: str | None = None


class ReservationInfo(Message, frozen=True):
    type: str | None = None
    role: str | None = None
    principal: str | None = None
    labels: Labels | None = None


class Resource(Message, frozen=True):
    name: str | None = None
    type: str | None = None
    scalar: Scalar | None = None
    ranges: Ranges | None = None
    set: ValueSet | None = None
    role: str | None = None
    allocation_info: AllocationInfo | None = None
    reservation: dict[str, Any] | None = None
    reservations: list[ReservationInfo] = []
    disk: dict[str, Any] | None = None
    revocable: dict[str, Any] | None = None
    shared: dict[str, Any] | None = None


class Attribute(Message, frozen=True):
    name: str | None = None
    type: str | None = None
    scalar: Scalar | None = None
    ranges: Ranges | None = None
    set: ValueSet | None = None
    text: dict[str, str] | None = None


# ----------------------------------------------------------------------------- commands and containers


class URI(Message, frozen=True):
    value: str | None = None
    executable: bool | None = None
    extract: bool | None = None
    cache: bool | None = None
    output_file: str | None = None


class Variable(Message, frozen=True):
    name: str | None = None
    type: str | None = None
    value: str | None = None
    secret: dict[str, Any] | None = None


class Environment(Message, frozen=True):
    variables: list[Variable] = []


class CommandInfo(Message, frozen=True):
    value: str | None = None
    shell: bool | None = None
    arguments: list[str] = []
    user: str | None = None
    uris: list[URI] = []
    environment: Environment | None = None


class DockerImage(Message, frozen=True):
    name: str | None = None


class Image(Message, frozen=True):
    type: str | None = None
    docker: DockerImage | None = None
    appc: dict[str, Any] | None = None
    cached: bool | None = None


class MesosContainer(Message, frozen=True):
    image: Image | None = None


class ContainerInfo(Message, frozen=True):
    type: str | None = None
    mesos: MesosContainer | None = None
    docker: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] = []
    hostname: str | None = None
    network_infos: list[dict[str, Any]] = []


class HttpCheck(Message, frozen=True):
    protocol: str | None = None
    scheme: str | None = None
    port: UInt32 | None = None
    path: str | None = None
    statuses: list[UInt32] = []


class TcpCheck(Message, frozen=True):
    protocol: str | None = None
    port: UInt32 | None = None


class HealthCheck(Message, frozen=True):
    type: str | None = None
    command: CommandInfo | None = None
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    delay_seconds: float | None = None
    interval_seconds: float | None = None
    timeout_seconds: float | None = None
    consecutive_failures: UInt32 | None = None
    grace_period_seconds: float | None = None


class KillPolicy(Message, frozen=True):
    grace_period: Duration | None = None


# ----------------------------------------------------------------------------- executors and tasks


class ExecutorInfo(Message, frozen=True):
    type: str | None = None
    executor_id: ID | None = None
    framework_id: ID | None = None
    command: CommandInfo | None = None
    container: ContainerInfo | None = None
    resources: list[Resource] = []
    name: str | None = None
    source: str | None = None
    data: str | None = None
    shutdown_grace_period: Duration | None = None
    labels: Labels | None = None
    discovery: dict[str, Any] | None = None


class TaskInfo(Message, frozen=True):
    name: str | None = None
    task_id: ID | None = None
    agent_id: ID | None = None
    slave_id: ID | None = None
    resources: list[Resource] = []
    command: CommandInfo | None = None
    executor: ExecutorInfo | None = None
    container: ContainerInfo | None = None
    health_check: HealthCheck | None = None
    check: dict[str, Any] | None = None
    kill_policy: KillPolicy | None = None
    data: str | None = None
    labels: Labels | None = None
    discovery: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    max_completion_time: Duration | None = None


# ----------------------------------------------------------------------------- frameworks and agents


class Capability(Message, frozen=True):
    type: str | None = None


class FrameworkInfo(Message, frozen=True):
    user: str | None = None
    name: str | None = None
    id: ID | None = None
    failover_timeout: float | None = None
    checkpoint: bool | None = None
    role: str | None = None
    roles: list[str] = []
    hostname: str | None = None
    principal: str | None = None
    webui_url: str | None = None
    capabilities: list[Capability] = []
    labels: Labels | None = None
    offer_filters: dict[str, Any] | None = None


class AgentInfo(Message, frozen=True):
    hostname: str | None = None
    port: UInt32 | None = None
    id: ID | None = None
    resources: list[Resource] = []
    attributes: list[Attribute] = []
    domain: dict[str, Any] | None = None


class TaskStatus(Message, frozen=True):
    task_id: ID | None = None
    state: TaskState | None = None
    message: str | None = None
    source: str | None = None
    reason: str | None = None
    data: str | None = None
    agent_id: ID | None = None
    executor_id: ID | None = None
    timestamp: float | None = None
    uuid: str | None = None
    healthy: bool | None = None
    labels: Labels | None = None
    container_status: dict[str, Any] | None = None
    unreachable_time: TimeInfo | None = None
    check_status: dict[str, Any] | None = None
    limitation: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- checking


class NonConforming(ValueError):
    """A JSON value would not parse into the message; the text names the field."""


def conform(raw: Any, kind: type[T], where: str) -> T:
    """``raw`` (JSON from the network) as the typed message ``kind``, or NonConforming naming
    ``where`` and the field, e.g. ``task_infos[0]: Expected `object`, got `float` - at `$.resources[0].scalar```."""
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise NonConforming(f"{where}: {exc}") from None
