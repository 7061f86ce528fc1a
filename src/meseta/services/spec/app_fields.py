"""Typed reading of app JSON with Marathon-style problems, and the simpler app fields; pure.

Every reader records a :class:`Problem` (JSON path, message) instead of raising, and falls
back to the default, so one pass reports every bad field. Paths follow Marathon's 422 body::

    /upgradeStrategy/minimumHealthCapacity      object member
    /healthChecks(0)/portIndex                  array element 0, then a member
    /                                           the app as a whole

``null`` counts as absent everywhere (Marathon's optional fields read it so, and the
marathon client never sends it). Type errors use Play JSON's codes (``error.expected.js*``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from meseta.services.spec import app_ids


class Problem(NamedTuple):
    path: str  # e.g. "/upgradeStrategy/minimumHealthCapacity"
    message: str


MISSING = "error.path.missing"
EXPECTED_STRING = "error.expected.jsstring"
EXPECTED_NUMBER = "error.expected.jsnumber"
EXPECTED_BOOLEAN = "error.expected.jsboolean"
EXPECTED_ARRAY = "error.expected.jsarray"
EXPECTED_OBJECT = "error.expected.jsobject"
NOT_INTEGER = "error.expected.int"
UNSUPPORTED = "is not supported by Meseta"
INT_MAX = 2**31 - 1  # Marathon reads integer fields as Java ints


def fmt(value: float) -> str:
    """Numbers in messages: ``1`` not ``1.0``."""
    return str(value) if isinstance(value, int) or not value.is_integer() else str(int(value))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A JSON number a double can hold: not NaN, not infinite, no int beyond the float range."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def is_whole(value: Any) -> bool:
    return is_finite_number(value) and float(value).is_integer()


class Reader:
    """Typed access to one JSON object at ``path``, appending problems to a shared list."""

    __slots__ = ("data", "path", "problems")

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
        self.data = data
        self.path = path
        self.problems = problems

    def at(self, key: str) -> str:
        return f"{self.path}/{key}"

    def problem(self, key: str | None, message: str) -> None:
        self.problems.append(Problem(self.at(key) if key is not None else self.path or "/", message))

    def only(self, known: frozenset[str]) -> None:
        """Refuse every key Meseta does not read here: nothing a user writes is silently ignored."""
        for key in self.data:
            if key not in known:
                self.problem(str(key), UNSUPPORTED)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str, default: str | None = None, *, required: bool = False,
               non_empty: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, MISSING)
            return default
        if not isinstance(value, str):
            self.problem(key, EXPECTED_STRING)
            return default
        if non_empty and not value:
            self.problem(key, "must not be empty")
            return default
        return value

    def number(self, key: str, default: float, *, low: float | None = None, high: float | None = None,
               integer: bool = False) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if not is_finite_number(value):
            self.problem(key, EXPECTED_NUMBER)
            return default
        if integer and not is_whole(value):
            self.problem(key, NOT_INTEGER)
            return default
        if integer:
            low = -INT_MAX - 1 if low is None else low
            high = INT_MAX if high is None else high
        if low is not None and value < low:
            self.problem(key, f"is less than {fmt(low)}")
            return default
        if high is not None and value > high:
            self.problem(key, f"is greater than {fmt(high)}")
            return default
        return int(value) if integer else float(value)

    def integer(self, key: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
        return int(self.number(key, default, low=low, high=high, integer=True))

    def optional_integer(self, key: str, *, low: int | None = None, high: int | None = None) -> int | None:
        """The integer at ``key``; None when absent or when it had a problem."""
        if not self.has(key):
            return None
        before = len(self.problems)
        value = self.integer(key, 0, low=low, high=high)
        return None if len(self.problems) > before else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, EXPECTED_BOOLEAN)
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key)
        if value is None:
            return default
        if value not in choices:
            self.problem(key, "must be one of " + ", ".join(choices))
            return default
        return value

    def array(self, key: str) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.problem(key, EXPECTED_ARRAY)
            return None
        return value

    def strings(self, key: str) -> list[str] | None:
        items = self.array(key)
        if items is None:
            return None
        good = [item for item in items if isinstance(item, str)]
        for index, item in enumerate(items):
            if not isinstance(item, str):
                self.problems.append(Problem(f"{self.at(key)}({index})", EXPECTED_STRING))
        return good

    def objects(self, key: str) -> list[Reader] | None:
        """The array ``key`` as one Reader per element (non-objects are reported and skipped)."""
        items = self.array(key)
        if items is None:
            return None
        readers = []
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                readers.append(Reader(item, f"{self.at(key)}({index})", self.problems))
            else:
                self.problems.append(Problem(f"{self.at(key)}({index})", EXPECTED_OBJECT))
        return readers

    def obj(self, key: str) -> Reader | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, EXPECTED_OBJECT)
            return None
        return Reader(value, self.at(key), self.problems)

    def string_map(self, key: str) -> dict[str, str]:
        """A JSON object of string values (labels); bad entries are reported and dropped."""
        mapping = self.obj(key)
        if mapping is None:
            return {}
        result: dict[str, str] = {}
        for name, value in mapping.data.items():
            if isinstance(name, str) and isinstance(value, str):
                result[name] = value
            else:
                mapping.problem(str(name), EXPECTED_STRING)
        return result


# ----------------------------------------------------------------------------- constraints

CONSTRAINT_OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
_BAD_OPERATOR = ("Constraint operator must be one of the following "
                 "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER or IS")


def regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):
        return f"'{pattern}' is not a valid regular expression"
    return None


def _is_int_text(text: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", text.strip()) is not None


def constraint_problem(field: str, operator: str, value: str | None) -> str | None:
    """Marathon's verdict on one ``[field, OPERATOR(, value)]`` constraint."""
    if not field:
        return "Missing field and operator"
    if operator not in CONSTRAINT_OPERATORS:
        return _BAD_OPERATOR
    if operator == "UNIQUE" and value is not None:
        return "Value specified but not used"
    if operator in ("LIKE", "UNLIKE"):
        return "A regular expression value must be provided" if value is None else regex_problem(value)
    if operator == "GROUP_BY" and value is not None and not _is_int_text(value):
        return "Value was specified but is not a number"
    if operator == "MAX_PER" and (value is None or not _is_int_text(value)):
        return "Value was not specified or is not a number"
    if operator == "IS" and value is None:
        return "Missing value"
    return None


def read_constraints(app: Reader) -> list[list[str]]:
    """``constraints`` as lists of 2 or 3 strings (numeric values are taken as their text)."""
    result: list[list[str]] = []
    for index, item in enumerate(app.array("constraints") or []):
        path = f"{app.at('constraints')}({index})"
        if not isinstance(item, list) or not 2 <= len(item) <= 3:
            app.problems.append(Problem(path, "Each constraint must have either 2 or 3 fields"))
            continue
        parts = [fmt(part) if is_finite_number(part) else part for part in item]
        if not all(isinstance(part, str) for part in parts):
            app.problems.append(Problem(path, "Each constraint field must be a string"))
            continue
        field, operator, value = parts[0], parts[1], (parts[2] if len(parts) == 3 else None)
        problem = constraint_problem(field, operator, value)
        if problem:
            app.problems.append(Problem(path, problem))
            continue
        result.append(parts)
    return result


# ----------------------------------------------------------------------------- env, secrets, labels


def read_secrets(app: Reader) -> dict[str, dict[str, str]]:
    """``secrets``: name -> ``{"source": "..."}``."""
    result: dict[str, dict[str, str]] = {}
    secrets = app.obj("secrets")
    for name, value in (secrets.data if secrets else {}).items():
        if not isinstance(name, str) or not name:
            app.problem("secrets", "secret names must not be empty")
            continue
        if not isinstance(value, Mapping):
            app.problems.append(Problem(f"{app.at('secrets')}/{name}", EXPECTED_OBJECT))
            continue
        source = Reader(value, f"{app.at('secrets')}/{name}", app.problems).string("source", required=True,
                                                                                    non_empty=True)
        if source is not None:
            result[name] = {"source": source}
    return result


def read_env(app: Reader, secrets: Mapping[str, Any]) -> dict[str, Any]:
    """``env``: name -> string, or -> ``{"secret": name}`` naming an entry of ``secrets``."""
    result: dict[str, Any] = {}
    env = app.obj("env")
    for name, value in (env.data if env else {}).items():
        path = f"{app.at('env')}/{name}"
        if not isinstance(name, str) or not name or len(name) >= 255:
            app.problem("env", "environment variable names must be 1 to 254 characters long")
        elif isinstance(value, str):
            result[name] = value
        elif isinstance(value, Mapping) and isinstance(value.get("secret"), str) and len(value) == 1:
            if value["secret"] in secrets:
                result[name] = {"secret": value["secret"]}
            else:
                app.problems.append(Problem(path, "references an undefined secret"))
        else:
            app.problems.append(Problem(path, 'must be a string or {"secret": "<secret name>"}'))
    return result


# ----------------------------------------------------------------------------- fetch

_EXTRACTABLE = (".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")  # Mesos fetcher archives


def read_fetch(app: Reader) -> list[dict[str, Any]]:
    """``fetch`` artifacts with defaults; deprecated ``uris`` become artifacts (and are never echoed)."""
    uris = app.strings("uris") or []
    fetch = app.objects("fetch") or []
    if uris and fetch:
        app.problem("uris", "cannot specify both uris and fetch fields")
    result = [{"uri": uri, "extract": uri.endswith(_EXTRACTABLE), "executable": False, "cache": False}
              for uri in uris if uri] if not fetch else []
    for artifact in fetch:
        uri = artifact.string("uri", required=True, non_empty=True)
        entry: dict[str, Any] = {"uri": uri or "", "extract": artifact.boolean("extract", True),
                                 "executable": artifact.boolean("executable", False),
                                 "cache": artifact.boolean("cache", False)}
        dest = artifact.string("destPath", non_empty=True)
        if dest is not None:
            entry["destPath"] = dest
        if uri:
            result.append(entry)
    return result


# ----------------------------------------------------------------------------- strategies

KILL_SELECTIONS = ("YOUNGEST_FIRST", "OLDEST_FIRST")
UNREACHABLE_DISABLED = "disabled"
TASK_LOST_BEHAVIORS = ("WAIT_FOREVER", "RELAUNCH_AFTER_TIMEOUT")


def read_upgrade_strategy(app: Reader, *, resident: bool) -> dict[str, float]:
    """``upgradeStrategy``: both capacities in 0..1; resident apps default to 0.5/0 and keep 0 over."""
    default_min, default_over = (0.5, 0.0) if resident else (1.0, 1.0)
    strategy = app.obj("upgradeStrategy") or Reader({}, app.at("upgradeStrategy"), app.problems)
    result = {"minimumHealthCapacity": strategy.number("minimumHealthCapacity", default_min, low=0, high=1),
              "maximumOverCapacity": strategy.number("maximumOverCapacity", default_over, low=0, high=1)}
    if resident and result["maximumOverCapacity"] != 0:
        strategy.problem("maximumOverCapacity", f"got {fmt(result['maximumOverCapacity'])}, expected 0")
    return result


def read_unreachable_strategy(app: Reader, *, resident: bool) -> dict[str, int] | str:
    """``unreachableStrategy``: ``"disabled"`` or seconds until inactive / expunged (default 0/0)."""
    value = app.data.get("unreachableStrategy")
    if value is None:
        return UNREACHABLE_DISABLED if resident else {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    if value == UNREACHABLE_DISABLED:
        return UNREACHABLE_DISABLED
    if resident:
        app.problem("unreachableStrategy", "unreachableStrategy must be disabled for resident tasks")
    strategy = app.obj("unreachableStrategy")
    if strategy is None:
        return {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    inactive = strategy.integer("inactiveAfterSeconds", 0, low=0)
    expunge = strategy.integer("expungeAfterSeconds", 0, low=0)
    if inactive > expunge:
        strategy.problem("inactiveAfterSeconds", "inactiveAfterSeconds must be less or equal to expungeAfterSeconds")
    return {"inactiveAfterSeconds": inactive, "expungeAfterSeconds": expunge}


def read_residency(app: Reader, *, resident: bool) -> dict[str, Any] | None:
    """``residency`` (a no-op kept for resident apps, which are those with persistent volumes)."""
    residency = app.obj("residency")
    if residency is not None and not resident:
        app.problem(None, "App must contain persistent volumes and define residency")
        return None
    if not resident:
        return None
    residency = residency or Reader({}, app.at("residency"), app.problems)
    return {"relaunchEscalationTimeoutSeconds": residency.integer("relaunchEscalationTimeoutSeconds", 3600, low=0),
            "taskLostBehavior": residency.choice("taskLostBehavior", "WAIT_FOREVER", TASK_LOST_BEHAVIORS)}


def read_dependencies(app: Reader, app_id: str) -> list[str]:
    """``dependencies``, absolute, resolved against the app's parent group."""
    result = []
    base = app_ids.parent(app_id)
    for index, dep in enumerate(app.strings("dependencies") or []):
        errors = app_ids.validate_id(dep, base=base, anywhere=True) if dep else ["must not be empty"]
        for error in errors:
            app.problems.append(Problem(f"{app.at('dependencies')}({index})", error))
        if not errors:
            result.append(app_ids.canonical(dep, base))
    return result
