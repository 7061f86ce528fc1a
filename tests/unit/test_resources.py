"""Resources: parsing, JSON round trips and the algebra's laws (hypothesis)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meseta.core.resources import (
    ResourceError,
    ResourceKey,
    Resources,
    attributes_summary,
    parse_attributes,
    validate_role,
)


def test_parse_text_scalars_ranges_sets_and_roles() -> None:
    r = Resources.parse("cpus:4;mem:1024;disk:2048;ports:[31000-32000, 5-9];zones:{a,b};cpus(ads):2")
    assert r.scalar("cpus") == 6.0
    assert r[ResourceKey("cpus", "ads")] == 2000
    assert r.ranges("ports") == ((5, 9), (31000, 32000))
    assert r[ResourceKey("zones")] == frozenset({"a", "b"})
    assert r.unreserved().scalar("cpus") == 4.0
    assert r.reserved("ads").scalar("cpus") == 2.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cpus", "name(role):value"),
        ("cpus:abc", "not a number"),
        ("cpus:-1", "non-negative"),
        ("ports:[5-1]", "empty or negative"),
        ("ports:[1-2", "must end"),
        ("cpus(a//b):1", "'//'"),
        ("cpus(-x):1", "starting with '-'"),
    ],
)
def test_parse_text_rejects_with_named_problem(text: str, problem: str) -> None:
    with pytest.raises(ResourceError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Resources.parse(text)


def test_json_round_trip_keeps_roles_and_extra_fields() -> None:
    items = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 64}, "reservations": [{"type": "STATIC", "role": "db"}],
         "disk": {"persistence": {"id": "v1"}}},
    ]
    r = Resources.from_json(items)
    assert Resources.from_json(r.to_json()) == r
    out = {d["name"]: d for d in r.to_json(allocation_role="*")}
    assert out["cpus"]["scalar"] == {"value": 1.5}
    assert out["cpus"]["allocation_info"] == {"role": "*"}
    assert out["disk"]["role"] == "db" and out["disk"]["disk"] == {"persistence": {"id": "v1"}}


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"type": "SCALAR", "scalar": {"value": 1}}, r"resources\[0\]\.name is required"),
        ({"name": "cpus", "type": "SCALAR"}, r"scalar\.value is required"),
        ({"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}, "non-negative"),
        ({"name": "cpus", "type": "BOGUS"}, "not one of SCALAR"),
        ({"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1}]}}, "integer begin and end"),
    ],
)
def test_json_rejects_with_field_path(item: dict, problem: str) -> None:
    with pytest.raises(ResourceError, match=problem):
        Resources.from_json([item])


def test_scalars_keep_three_decimals_exactly() -> None:
    a = Resources.parse("cpus:0.1")
    total = Resources()
    for _ in range(10):
        total = total + a
    assert total == Resources.parse("cpus:1")
    assert Resources.parse("cpus:0.0004").is_empty()


def test_summary_and_attributes() -> None:
    r = Resources.parse("cpus:2;mem:512;ports:[1-2,4-4]")
    assert r.summary() == {"cpus": 2.0, "gpus": 0.0, "mem": 512.0, "disk": 0.0, "ports": "[1-2, 4-4]"}
    attrs = parse_attributes("rack:abc;level:10;ports:[1000-1500]")
    assert attributes_summary(attrs) == {"rack": "abc", "level": 10.0, "ports": "[1000-1500]"}
    with pytest.raises(ResourceError, match="name:value"):
        parse_attributes("rack")


def test_roles() -> None:
    assert validate_role("eng/backend") is None
    assert validate_role("*") is None
    assert validate_role("eng/../x") is not None
    assert validate_role("a b") is not None
    for control in ("\x00", "a\x01b", "\x1b[31m", "x\x7f"):  # NUL slipped through once (DELETE /quota/%00)
        assert validate_role(control) is not None, repr(control)


# --------------------------------------------------------------------- laws

names = st.sampled_from(["cpus", "mem", "disk", "gpus"])
roles = st.sampled_from(["*", "ads", "eng/web"])
scalar_items = st.builds(
    lambda n, r, v: f"{n}({r}):{v}" if r != "*" else f"{n}:{v}",
    names, roles, st.integers(0, 100_000).map(lambda x: x / 1000),
)
range_pairs = st.tuples(st.integers(0, 500), st.integers(0, 50)).map(lambda p: (p[0], p[0] + p[1]))
ports_items = st.lists(range_pairs, min_size=1, max_size=4).map(
    lambda rs: "ports:[" + ",".join(f"{b}-{e}" for b, e in rs) + "]"
)
set_items = st.sets(st.sampled_from("abcdef"), min_size=1).map(lambda s: "zones:{" + ",".join(s) + "}")
resources = st.lists(st.one_of(scalar_items, ports_items, set_items), max_size=8).map(
    lambda items: Resources.parse(";".join(items))
)


@given(resources, resources)
def test_add_then_subtract_is_identity(a: Resources, b: Resources) -> None:
    # Sets and ranges are unions, so the law holds exactly for parts of b that a does not hold.
    scalars = b.filter(lambda k: isinstance(b[k], int))
    disjoint = scalars + (b.filter(lambda k: not isinstance(b[k], int)) - a)
    assert (a + disjoint) - disjoint == a


@given(resources, resources)
def test_scalar_add_subtract_identity_exact(a: Resources, b: Resources) -> None:
    sa = a.filter(lambda k: isinstance(a[k], int))
    sb = b.filter(lambda k: isinstance(b[k], int))
    assert (sa + sb) - sb == sa


@given(resources, resources)
def test_sum_contains_both_parts(a: Resources, b: Resources) -> None:
    assert (a + b).contains(a) and (a + b).contains(b)
    assert a + b == b + a


@given(resources, resources)
def test_subtraction_never_negative_and_contained(a: Resources, b: Resources) -> None:
    diff = a - b
    assert a.contains(diff)
    for key in diff:
        q = diff[key]
        assert q if not isinstance(q, int) else q > 0


@given(resources)
def test_text_and_json_round_trips(a: Resources) -> None:
    assert Resources.parse(a.to_text()) == a
    assert Resources.from_json(a.to_json()) == a


@given(resources, resources)
def test_containment_matches_subtraction(a: Resources, b: Resources) -> None:
    if a.contains(b):
        assert (a - b) + b == a


def test_range_shares_split_ports_among_agents_of_one_host() -> None:
    from meseta.core.resources import share_of_ranges

    whole = Resources.parse("cpus:2;mem:1024;ports:[31000-31009,32000-32001]")
    shares = [share_of_ranges(whole, i, 3) for i in range(3)]
    assert [s.ranges("ports") for s in shares] == [((31000, 31003),), ((31004, 31007),),
                                                   ((31008, 31009), (32000, 32001))]
    assert all(s.scalar_totals() == whole.scalar_totals() for s in shares), "scalars stay whole"
    assert "ports" not in share_of_ranges(Resources.parse("cpus:1;ports:[1-1]"), 1, 2).names(), "an empty share goes"


@pytest.mark.parametrize("item, problem", [
    ({"name": "cpus", "type": "SCALAR", "scalar": 0.1}, "resources[0].scalar must be an object"),
    ({"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.7976931348623157e308}}, "at most 9.0072e+12"),
    ({"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}, "non-negative"),
    ({"name": "ports", "type": "RANGES", "ranges": [31000]}, "resources[0].ranges must be an object"),
    ({"name": "ports", "type": "RANGES", "ranges": {"range": 5}}, "must be a list"),
    ({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2**64}]}}, "2^64-1"),
    ({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1.5, "end": 2}]}}, "integer begin"),
    ({"name": "zones", "type": "SET", "set": "a"}, "resources[0].set must be an object"),
    ({"name": "zones", "type": "SET", "set": {"item": "a"}}, "must be a list of strings"),
])
def test_malformed_json_resources_are_refused_naming_the_field(item: dict[str, Any], problem: str) -> None:
    with pytest.raises(ResourceError, match=re.escape(problem)):
        Resources.from_json([item])
