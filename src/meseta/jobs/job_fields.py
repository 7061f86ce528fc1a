"""Typed, bounded reading of Chronos job JSON, one field at a time; pure.

:class:`Fields` wraps one JSON object and raises :class:`JobRejected` naming the first bad field
by its path in the job::

    name                          a member of the job
    container.volumes[0].mode     a member of an element of a member
    constraints[2]                an element as a whole

``null`` counts as absent (as in Chronos, which reads a missing and a null field alike). Every
string is checked for type, length, valid Unicode (no lone surrogates) and NUL characters (which no
process argument, environment variable or path can hold); every number for type (never a boolean),
finiteness and range; every list for length. The readers of the nested objects (container, fetch,
environment, constraints) are here too, each returning the normalised wire form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

MAX_TEXT = 4_096  # owner, description, image, paths, values: longer is a mistake or an attack
MAX_COMMAND = 65_536  # a shell script inlined in the job
MAX_ITEMS = 1_000  # arguments, environment, fetch, constraints, volumes
MAX_REGEX = 1_024  # LIKE / UNLIKE patterns are compiled: keep them small
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")  # an unknown key is named as is if plain, else quoted
CONSTRAINT_OPERATORS = ("EQUALS", "LIKE", "UNLIKE")
NETWORK_MODES = ("BRIDGE", "HOST", "USER")  # Chronos's: BRIDGE joins the agents' mesos-bridge, USER networkName
VOLUME_MODES = ("RO", "RW")
FETCH_SCHEMES = ("http", "https", "file")  # what the agent's fetcher downloads (or an absolute path)
CONTAINER_KEYS = frozenset({"type", "image", "network", "networkName", "networkInfos", "volumes", "forcePullImage",
                            "parameters", "portMappings"})
VOLUME_KEYS = frozenset({"containerPath", "hostPath", "mode", "persistent", "external"})
FETCH_KEYS = frozenset({"uri", "cache", "extract", "executable", "outputFile"})


class JobRejected(ValueError):
    """A job Meseta will not take: ``field`` names the culprit, ``problem`` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt(value: float) -> str:
    """Numbers in messages: ``1`` not ``1.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


class Fields:
    """Typed access to the members of one JSON object whose field names start with ``prefix``."""

    __slots__ = ("data", "prefix")

    def __init__(self, data: Mapping[Any, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def reject(self, key: str, problem: str) -> NoReturn:
        raise JobRejected(self.path(key), problem)

    def only(self, known: frozenset[str], what: str) -> None:
        """Refuse every member Meseta does not read: nothing a user writes is silently ignored."""
        for key in self.data:
            if key not in known:
                plain = isinstance(key, str) and _PLAIN_KEY.fullmatch(key)
                field = self.path(key if plain else ascii(key)[:64])
                raise JobRejected(field, f"is not {_article(what)} {what} field Meseta knows")

    def present(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: str = "", *, limit: int = MAX_TEXT, required: bool = False,
             non_empty: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.reject(key, "is required")
            return default
        problem = text_problem(value, limit)
        if problem:
            self.reject(key, problem)
        if non_empty and not value:
            self.reject(key, "must not be empty")
        return str(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.reject(key, "must be true or false")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if not is_number(value) or not _finite(value):
            self.reject(key, "must be a finite number")
        if not low <= value <= high:
            self.reject(key, f"must be between {fmt(low)} and {fmt(high)}")
        return float(value)

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if not is_number(value) or not _finite(value) or not float(value).is_integer():
            self.reject(key, "must be a whole number")
        if not low <= value <= high:
            self.reject(key, f"must be between {low} and {high}")
        return int(value)

    def items(self, key: str, limit: int = MAX_ITEMS) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.reject(key, "must be a list")
        if len(value) > limit:
            self.reject(key, f"must have at most {limit} entries")
        return value

    def texts(self, key: str, *, limit: int = MAX_TEXT, non_empty: bool = False) -> tuple[str, ...]:
        result = []
        for index, item in enumerate(self.items(key)):
            problem = text_problem(item, limit) or ("must not be empty" if non_empty and not item else None)
            if problem:
                raise JobRejected(f"{self.path(key)}[{index}]", problem)
            result.append(str(item))
        return tuple(result)

    def objects(self, key: str) -> list[Fields]:
        result = []
        for index, item in enumerate(self.items(key)):
            if not isinstance(item, Mapping):
                raise JobRejected(f"{self.path(key)}[{index}]", "must be an object")
            result.append(Fields(item, f"{self.path(key)}[{index}]."))
        return result

    def obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.reject(key, "must be an object")
        return Fields(value, f"{self.path(key)}.")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def text_problem(value: Any, limit: int) -> str | None:
    """Why ``value`` is not an acceptable string, or None."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it has a lone surrogate)"
    return None


# ----------------------------------------------------------------------------- nested members


def read_environment(job: Fields) -> tuple[tuple[str, str], ...]:
    """``environmentVariables`` ``[{name, value}]`` as (name, value) pairs, in order, names unique."""
    result: list[tuple[str, str]] = []
    for entry in job.objects("environmentVariables"):
        entry.only(frozenset({"name", "value"}), "environment variable")
        name = entry.text("name", required=True, non_empty=True, limit=255)
        if "=" in name:
            entry.reject("name", "must not contain '='")
        if any(name == seen for seen, _ in result):
            entry.reject("name", f"{name!r} is given twice")
        result.append((name, entry.text("value", required=True, limit=MAX_COMMAND)))
    return tuple(result)


def read_fetch(job: Fields) -> tuple[dict[str, Any], ...]:
    """``fetch`` artifacts (defaults as Chronos: nothing cached, extracted or executable); the
    deprecated ``uris`` become artifacts extracted as Mesos does by default. Both may be given only
    when ``uris`` repeats the URIs of ``fetch`` (as a GET shows a job)."""
    uris = job.texts("uris", non_empty=True)
    artifacts = [_read_artifact(entry) for entry in job.objects("fetch")]
    if artifacts and uris and list(uris) != [artifact["uri"] for artifact in artifacts]:
        job.reject("uris", "give fetch or uris, not both (uris may only repeat the URIs in fetch)")
    if not artifacts:
        for index, uri in enumerate(uris):
            _check_uri(job, f"uris[{index}]", uri)
        artifacts = [{"uri": uri, "cache": False, "extract": True, "executable": False} for uri in uris]
    return tuple(artifacts)


def _read_artifact(entry: Fields) -> dict[str, Any]:
    entry.only(FETCH_KEYS, "fetch")
    uri = entry.text("uri", required=True, non_empty=True)
    _check_uri(entry, "uri", uri)
    artifact: dict[str, Any] = {"uri": uri, "cache": entry.flag("cache", False),
                                "extract": entry.flag("extract", False), "executable": entry.flag("executable", False)}
    output = entry.text("outputFile", non_empty=True, limit=255) if entry.present("outputFile") else ""
    if output.startswith("/") or ".." in output.split("/"):
        entry.reject("outputFile", "must be a relative path inside the sandbox")
    if output:
        artifact["outputFile"] = output
    return artifact


def _check_uri(fields: Fields, key: str, uri: str) -> None:
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:
        fields.reject(key, "is not a URI")
    if scheme not in FETCH_SCHEMES and not (not scheme and uri.startswith("/")):
        fields.reject(key, "Meseta fetches only http, https and file URIs and absolute paths")


def read_constraints(job: Fields) -> tuple[tuple[str, str, str], ...]:
    """``constraints`` ``[[attribute, EQUALS|LIKE|UNLIKE, value]]``; LIKE and UNLIKE values are regexes."""
    result = []
    for index, item in enumerate(job.items("constraints")):
        field = f"{job.path('constraints')}[{index}]"
        if not isinstance(item, list) or len(item) != 3 or any(text_problem(part, MAX_TEXT) for part in item):
            raise JobRejected(field, "must be [attribute, operator, value], three strings")
        attribute, operator, value = item
        if not attribute:
            raise JobRejected(field, "the attribute must not be empty")
        if operator not in CONSTRAINT_OPERATORS:
            raise JobRejected(field, f"operator {operator[:32]!r} is not one of {', '.join(CONSTRAINT_OPERATORS)}")
        if operator != "EQUALS" and (problem := regex_problem(value)):
            raise JobRejected(field, problem)
        result.append((attribute, operator, value))
    return tuple(result)


def regex_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_REGEX:
        return f"the regular expression must be at most {MAX_REGEX} characters"
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):
        return f"{pattern[:64]!r} is not a valid regular expression"
    return None


def read_container(job: Fields) -> dict[str, Any] | None:
    """``container`` in its normalised wire form, or None; only what Meseta can run is accepted::

        {"type": "MESOS", "image": str, "network": "HOST"|"BRIDGE"|"USER", "networkName"?, "forcePullImage": bool,
         "volumes": [{"containerPath", "hostPath", "mode": "RO"|"RW"}], "parameters": []}
    """
    container = job.obj("container")
    if container is None:
        return None
    container.only(CONTAINER_KEYS, "container")
    kind = container.text("type", "DOCKER", limit=16).upper()  # Chronos's default type is DOCKER
    if kind not in ("DOCKER", "MESOS"):  # (both run the image with the Mesos containerizer: no Docker daemon)
        container.reject("type", "must be DOCKER or MESOS")
    image = container.text("image", required=True, non_empty=True)
    network = container.text("network", "HOST", limit=16)
    if network not in NETWORK_MODES:
        container.reject("network", f"must be one of {', '.join(NETWORK_MODES)}")
    network_name = container.text("networkName", "", limit=128)
    if network == "USER" and not network_name:
        container.reject("networkName", "a USER network needs the name of a CNI network of the agents")
    if network != "USER" and network_name:
        container.reject("networkName", f"names a network only with network USER, not {network}")
    for key in ("networkInfos", "portMappings"):
        if container.present(key) and container.data[key] not in ("", []):
            container.reject(key, "is not supported: a job joins one network (network, networkName) and maps no "
                                  "ports")
    if container.items("parameters"):
        container.reject("parameters", "Docker parameters are not supported: the image runs with the Mesos "
                                       "containerizer, without a Docker daemon")
    volumes = [_read_volume(volume) for volume in container.objects("volumes")]
    out = {"type": kind, "image": image, "network": network, "forcePullImage": container.flag("forcePullImage", False),
           "volumes": volumes, "parameters": []}
    if network_name:
        out["networkName"] = network_name
    return out


def _read_volume(volume: Fields) -> dict[str, Any]:
    volume.only(VOLUME_KEYS, "volume")
    for kind in ("persistent", "external"):
        if volume.present(kind):
            volume.reject(kind, f"{kind} volumes are not supported for jobs: use a hostPath")
    container_path = volume.text("containerPath", required=True, non_empty=True)
    host_path = volume.text("hostPath", required=True, non_empty=True)
    if not host_path.startswith("/"):
        volume.reject("hostPath", "must be an absolute path")
    mode = volume.text("mode", "RW", limit=8).upper()
    if mode not in VOLUME_MODES:
        volume.reject("mode", "must be RO or RW")
    return {"containerPath": container_path, "hostPath": host_path, "mode": mode}
