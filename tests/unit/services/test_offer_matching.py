"""Offer matching: how many instances fit, what each takes, and why an offer is declined."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.core.resources import to_milli
from meseta.services.launch.constraints import Placed
from meseta.services.launch.offer_matching import REASONS, Match, accepted_roles, match, port_requests, rest_of_offer
from meseta.services.model import Instance


def scalar(name: str, value: float, role: str = "*", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": role, **extra}


def ports(*ranges: tuple[int, int], role: str = "*", **extra: Any) -> dict[str, Any]:
    return {"name": "ports", "type": "RANGES", "role": role,
            "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]}, **extra}


def offer(*resources: dict[str, Any], hostname: str = "h1", oid: str = "O1", role: str = "*",
          **extra: Any) -> dict[str, Any]:
    if not resources:
        resources = (scalar("cpus", 4), scalar("mem", 4096), scalar("disk", 10000), ports((31000, 31009)))
    return {"id": {"value": oid}, "agent_id": {"value": "S-" + hostname}, "hostname": hostname,
            "resources": list(resources), "allocation_info": {"role": role}, **extra}


def app(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "/web", "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0, "instances": 1,
                            "constraints": [], "role": "*", "requirePorts": False,
                            "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http", "labels": {}}]}
    base.update(fields)
    return base


def used(m: Match, name: str) -> list[dict[str, Any]]:
    return [r for p in m.placements for r in p.resources if r["name"] == name]


# --------------------------------------------------------------------- fitting


def test_places_up_to_count_and_slices_each_resource() -> None:
    m = match(app(), offer(), [], count=3)
    assert m.used and len(m.placements) == 3 and m.reasons == ()
    assert (m.offer_id, m.agent_id, m.hostname) == ("O1", "S-h1", "h1")
    for p in m.placements:
        by_name = {r["name"]: r for r in p.resources}
        assert by_name["cpus"]["scalar"] == {"value": 1.0} and by_name["mem"]["scalar"] == {"value": 128.0}
        assert "disk" not in by_name  # the app needs none
        assert len(p.host_ports) == 1 and 31000 <= p.host_ports[0] <= 31009
        assert by_name["ports"]["ranges"] == {"range": [{"begin": p.host_ports[0], "end": p.host_ports[0]}]}
    assert len({p.host_ports[0] for p in m.placements}) == 3


def test_at_most_max_per_offer() -> None:
    assert len(match(app(cpus=0.1), offer(), [], count=20).placements) == 5
    assert len(match(app(cpus=0.1), offer(), [], count=20, max_per_offer=2).placements) == 2
    nothing = match(app(), offer(), [], count=0)
    assert not nothing.used and nothing.reasons == ()


def test_fractional_cpus_add_up_exactly() -> None:
    m = match(app(cpus=0.1, portDefinitions=[]), offer(scalar("cpus", 0.3), scalar("mem", 1024)), [], count=5)
    assert len(m.placements) == 3 and m.reasons == ("InsufficientCpus",)


def test_a_partial_fit_says_why_the_rest_did_not_fit() -> None:
    m = match(app(cpus=1.0), offer(scalar("cpus", 2.5), scalar("mem", 4096), ports((1, 100))), [], count=4)
    assert len(m.placements) == 2 and m.reasons == ("InsufficientCpus",)


def test_a_scalar_need_may_span_several_items_and_reserved_goes_first() -> None:
    dynamic = {"reservations": [{"type": "DYNAMIC", "role": "ads", "principal": "ops"}],
               "allocation_info": {"role": "ads"}}
    o = offer(scalar("cpus", 1.0, allocation_info={"role": "ads"}), scalar("cpus", 0.5, role="ads", **dynamic),
              scalar("mem", 512, role="ads", allocation_info={"role": "ads"}), role="ads")
    m = match(app(cpus=1.2, mem=100, role="ads", portDefinitions=[]), o, [], count=1)
    cpus = used(m, "cpus")
    assert [c["scalar"]["value"] for c in cpus] == [0.5, 0.7]
    assert cpus[0]["reservations"] == dynamic["reservations"] and cpus[0]["role"] == "ads"
    assert cpus[0]["allocation_info"] == {"role": "ads"}
    assert cpus[1]["role"] == "*" and "reservations" not in cpus[1]


# --------------------------------------------------------------------- roles


def test_accepted_resource_roles_star_means_unreserved_only() -> None:
    o = offer(scalar("cpus", 4, role="ads"), scalar("mem", 1024, role="ads"), scalar("mem", 1024), ports((1, 9)),
              role="ads")
    m = match(app(role="ads", acceptedResourceRoles=["*"]), o, [], count=1)
    assert not m.used and set(m.reasons) == {"UnfulfilledRole", "InsufficientCpus"}


def test_absent_accepted_roles_means_unreserved_and_the_frameworks_roles() -> None:
    o = offer(scalar("cpus", 4, role="ads"), scalar("mem", 1024), ports((1, 9)), role="ads")
    assert match(app(role="ads"), o, [], count=1).used
    assert accepted_roles(app(role="ads")) == {"*", "ads"}
    assert accepted_roles(app(), framework_roles=["ads", "*"]) == {"*", "ads"}
    assert accepted_roles(app(acceptedResourceRoles=["ads"])) == {"ads"}


def test_resources_reserved_to_an_ancestor_role_are_usable() -> None:
    o = offer(scalar("cpus", 4, role="eng"), scalar("mem", 1024), ports((1, 9)), role="eng/web")
    assert match(app(role="eng/web"), o, [], count=1).used


def test_an_offer_allocated_to_another_role_is_unfulfilled_role() -> None:
    m = match(app(role="ads"), offer(role="*"), [], count=1)
    assert m.reasons == ("UnfulfilledRole",)
    m = match(app(), offer(role="ads"), [], count=1, framework_roles=["*"])
    assert m.reasons == ("UnfulfilledRole",)


# --------------------------------------------------------------------- each reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"cpus": 8.0}, "InsufficientCpus"),
        ({"mem": 8192.0}, "InsufficientMemory"),
        ({"disk": 20000.0}, "InsufficientDisk"),
        ({"gpus": 1}, "InsufficientGpus"),
        ({"portDefinitions": [{"port": 0}] * 11}, "InsufficientPorts"),
        ({"requirePorts": True, "portDefinitions": [{"port": 8080}]}, "InsufficientPorts"),
        ({"acceptedResourceRoles": ["ads"]}, "UnfulfilledRole"),
        ({"constraints": [["rack", "IS", "r1"]]}, "UnfulfilledConstraint"),
    ],
)
def test_each_reason(fields: dict[str, Any], reason: str) -> None:
    m = match(app(**fields), offer(), [], count=1)
    assert not m.used and reason in m.reasons


def test_all_reasons_that_apply_are_given_in_funnel_order() -> None:
    m = match(app(cpus=8.0, mem=8192.0, constraints=[["rack", "IS", "r1"]]), offer(), [], count=1)
    assert m.reasons == ("UnfulfilledConstraint", "InsufficientCpus", "InsufficientMemory")
    assert m.refused_by == (["rack", "IS", "r1"],)
    assert list(m.reasons) == [r for r in REASONS if r in m.reasons]


def test_agent_maintenance() -> None:
    window = {"start": {"nanoseconds": 100 * 10**9}, "duration": {"nanoseconds": 50 * 10**9}}
    o = offer(unavailability=window)
    assert match(app(), o, [], count=1).reasons == ("AgentMaintenance",)
    assert match(app(), o, [], count=1, now=120.0).reasons == ("AgentMaintenance",)
    assert match(app(), o, [], count=1, now=10.0).reasons == ("AgentMaintenance",)  # coming soon: keep off
    assert match(app(), o, [], count=1, now=151.0).used  # the window is over
    forever = offer(unavailability={"start": {"nanoseconds": 0}})
    assert match(app(), forever, [], count=1, now=1e9).reasons == ("AgentMaintenance",)


def test_restricted_gpus_keep_plain_apps_off_gpu_agents() -> None:
    o = offer(scalar("cpus", 4), scalar("mem", 4096), scalar("gpus", 2), ports((1, 9)))
    assert match(app(), o, [], count=1).used
    assert match(app(), o, [], count=1, restrict_gpus=True).reasons == ("DeclinedScarceResources",)
    gpu = match(app(gpus=1), o, [], count=1, restrict_gpus=True)
    assert gpu.used and used(gpu, "gpus")[0]["scalar"] == {"value": 1.0}


def test_revocable_resources_and_volumes_are_not_used() -> None:
    o = offer(scalar("cpus", 4, revocable={}), scalar("mem", 4096),
              scalar("disk", 500, disk={"persistence": {"id": "v"}, "volume": {"container_path": "d", "mode": "RW"}}),
              scalar("disk", 500, disk={"source": {"type": "MOUNT", "mount": {"root": "/mnt"}}}), ports((1, 9)))
    assert set(match(app(disk=10.0), o, [], count=1).reasons) == {"InsufficientCpus", "InsufficientDisk"}


# --------------------------------------------------------------------- ports


def test_require_ports_takes_the_declared_ports() -> None:
    a = app(requirePorts=True, portDefinitions=[{"port": 31005}, {"port": 31002}])
    m = match(a, offer(), [], count=3)
    assert len(m.placements) == 1 and m.placements[0].host_ports == [31005, 31002]
    assert m.reasons == ("InsufficientPorts",)  # the second instance would need the same ports


def test_without_require_ports_declared_ports_are_only_service_ports() -> None:
    m = match(app(portDefinitions=[{"port": 8080}, {"port": 8081}]), offer(), [], count=1)
    assert all(31000 <= p <= 31009 for p in m.placements[0].host_ports)


def test_no_ports_needed() -> None:
    m = match(app(portDefinitions=[]), offer(scalar("cpus", 1), scalar("mem", 128)), [], count=1)
    assert m.used and m.placements[0].host_ports == [] and not used(m, "ports")


def test_bridge_mode_maps_dynamic_and_fixed_host_ports_and_skips_unexposed() -> None:
    a = app(networks=[{"mode": "container/bridge"}], container={"type": "DOCKER", "portMappings": [
        {"containerPort": 80, "hostPort": 0, "servicePort": 10000, "protocol": "tcp", "name": "http"},
        {"containerPort": 443, "hostPort": 31001, "servicePort": 10001, "protocol": "tcp", "name": "https"},
        {"containerPort": 9000, "protocol": "tcp", "name": "internal"},
    ]})
    a.pop("portDefinitions")
    assert [(r.index, r.port) for r in port_requests(a)] == [(0, 0), (1, 31001)]
    m = match(a, offer(), [], count=1)
    dynamic, fixed = m.placements[0].host_ports
    assert fixed == 31001 and dynamic != 31001 and 31000 <= dynamic <= 31009


def test_ports_come_from_several_ranges_and_items() -> None:
    o = offer(scalar("cpus", 4), scalar("mem", 4096), ports((100, 100), role="ads"), ports((200, 201)), role="ads")
    m = match(app(role="ads", portDefinitions=[{"port": 0}] * 3), o, [], count=1)
    assert sorted(m.placements[0].host_ports) == [100, 200, 201]
    assert {r["role"] for r in used(m, "ports")} == {"ads", "*"}


def test_legacy_ports_list_when_no_port_definitions() -> None:
    a = app(ports=[0, 0])
    a.pop("portDefinitions")
    assert len(port_requests(a)) == 2


# --------------------------------------------------------------------- constraints inside one offer


def test_constraints_are_rechecked_against_placements_in_the_same_offer() -> None:
    m = match(app(constraints=[["hostname", "UNIQUE"]]), offer(), [], count=3)
    assert len(m.placements) == 1 and m.reasons == ("UnfulfilledConstraint",)
    m = match(app(constraints=[["hostname", "MAX_PER", "2"]]), offer(), [], count=5)
    assert len(m.placements) == 2


def test_running_instances_and_precomputed_counts_both_work() -> None:
    a = app(constraints=[["hostname", "MAX_PER", "2"]])
    running = [Instance("t1", "/web", "v", "S-h1", "h1", state="TASK_RUNNING", agent_fields={"hostname": "h1"})]
    assert len(match(a, offer(), running, count=5).placements) == 1
    counts = Placed.of(a["constraints"], running)
    assert len(match(a, offer(), counts, count=5).placements) == 1
    assert counts.counts["hostname"]["h1"] == 1  # the caller's counts are not changed


def test_agent_fields_come_with_the_match() -> None:
    o = offer(attributes=[{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}])
    assert match(app(constraints=[["rack", "IS", "r1"]]), o, [], count=1).agent_fields["rack"] == "r1"


# --------------------------------------------------------------------- properties


_AMOUNTS = {"cpus": (0, 8), "mem": (0, 8192), "disk": (0, 8192), "gpus": (0, 2)}


@st.composite
def offers(draw: st.DrawFn, roomy: bool = False) -> dict[str, Any]:
    """Random offers; ``roomy`` ones carry plenty of everything in both roles, so most apps fit."""
    items: list[dict[str, Any]] = []
    some_roles = st.lists(st.sampled_from(["*", "ads"]), min_size=1, max_size=2, unique=True)
    for name, (low, high) in _AMOUNTS.items():
        roles = ["*", "ads"] if roomy else draw(some_roles if name != "gpus" else some_roles | st.just([]))
        for role in roles:
            exact = st.integers(low, high) if name != "cpus" else st.integers(0, high * 1000).map(lambda n: n / 1000)
            amount = high if roomy and role == "*" else draw(st.one_of(st.sampled_from([high, high / 2]), exact))
            items.append(scalar(name, amount, role))
    for role in ["*", "ads"] if roomy else draw(some_roles):
        starts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True))
        items.append(ports(*[(s * 10, s * 10 + draw(st.integers(0 if not roomy else 4, 6))) for s in sorted(starts)],
                           role=role))
    return offer(*items, oid=draw(st.text("abc", min_size=1, max_size=4)), role="ads")


@st.composite
def apps(draw: st.DrawFn) -> dict[str, Any]:
    definitions = [{"port": draw(st.sampled_from([0, 0, 10, 11, 20, 1000]))} for _ in range(draw(st.integers(0, 3)))]
    return app(cpus=draw(st.integers(1, 2000)) / 1000, mem=float(draw(st.integers(0, 1024))),
               disk=float(draw(st.sampled_from([0, 0, 100, 5000]))), gpus=draw(st.sampled_from([0, 0, 0, 1])),
               role="ads", requirePorts=draw(st.booleans()), portDefinitions=definitions,
               acceptedResourceRoles=draw(st.sampled_from([None, None, ["*"], ["ads"], ["*", "ads"]])))


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return resource["name"], resource["role"]


@given(apps(), offers() | offers(roomy=True), st.integers(0, 8))
@settings(max_examples=400, deadline=None)
def test_a_match_never_uses_more_than_the_offer_has(a: dict[str, Any], o: dict[str, Any], count: int) -> None:
    m = match(a, o, [], count=count)
    assert len(m.placements) <= min(count, 5)
    assert m.used or count == 0 or m.reasons  # a refusal always says why
    offered_scalars: dict[tuple[str, str], int] = defaultdict(int)
    offered_ports: dict[str, set[int]] = defaultdict(set)
    for r in o["resources"]:
        if r["type"] == "SCALAR":
            offered_scalars[_key(r)] += to_milli(r["scalar"]["value"])
        else:
            for rng in r["ranges"]["range"]:
                offered_ports[r["role"]].update(range(rng["begin"], rng["end"] + 1))
    taken_scalars: dict[tuple[str, str], int] = defaultdict(int)
    all_ports: list[int] = []
    roles = accepted_roles(a)
    for p in m.placements:
        for r in p.resources:
            assert r["role"] in roles
            if r["type"] == "SCALAR":
                taken_scalars[_key(r)] += to_milli(r["scalar"]["value"])
            else:
                for rng in r["ranges"]["range"]:
                    got = set(range(rng["begin"], rng["end"] + 1))
                    assert got <= offered_ports[r["role"]]
        for name in ("cpus", "mem", "disk", "gpus"):
            assert sum(to_milli(r["scalar"]["value"]) for r in p.resources if r["name"] == name) == to_milli(a[name])
        assert len(p.host_ports) == len(port_requests(a))
        assert sorted(p.host_ports) == sorted(
            x for r in p.resources if r["name"] == "ports" for g in r["ranges"]["range"]
            for x in range(g["begin"], g["end"] + 1))
        for request, port in zip(port_requests(a), p.host_ports, strict=True):
            assert request.port in (0, port)
        all_ports.extend(p.host_ports)
    assert all(taken_scalars[k] <= offered_scalars[k] for k in taken_scalars)
    assert len(all_ports) == len(set(all_ports))  # distinct across every placement of the offer


@given(st.lists(st.sampled_from(["h1", "h2", "h3"]), max_size=20), st.integers(1, 3))
@settings(max_examples=100, deadline=None)
def test_max_per_holds_over_a_sequence_of_offers(hosts: list[str], limit: int) -> None:
    a = app(cpus=0.1, constraints=[["hostname", "MAX_PER", str(limit)]])
    instances: list[Instance] = []
    for n, host in enumerate(hosts):
        m = match(a, offer(hostname=host, oid=f"O{n}"), instances, count=5)
        instances += [Instance(f"t{n}-{i}", "/web", "v", m.agent_id, host, state="TASK_STAGING",
                               agent_fields=m.agent_fields) for i in range(len(m.placements))]
    per_host: dict[str, int] = defaultdict(int)
    for i in instances:
        per_host[i.host] += 1
    assert all(n == limit for n in per_host.values())


def test_rest_of_offer_is_what_the_placements_left() -> None:
    whole = offer(scalar("cpus", 2), scalar("mem", 256), ports((31000, 31001)))
    first = match(app(), whole, [], count=1)
    rest = rest_of_offer(whole, first.placements)
    left = {r["name"]: r for r in rest["resources"]}
    assert left["cpus"]["scalar"] == {"value": 1.0} and left["mem"]["scalar"] == {"value": 128.0}
    port = first.placements[0].host_ports[0]
    assert left["ports"]["ranges"]["range"] == [{"begin": 31001 - (port - 31000), "end": 31001 - (port - 31000)}]
    second = match(app(), rest, [], count=5)
    assert len(second.placements) == 1 and second.placements[0].host_ports != [port]
    assert rest_of_offer(rest, second.placements)["resources"] == [], "nothing left: no resource is kept"
    assert whole["resources"][0]["scalar"] == {"value": 2}, "the offer itself is not changed"


def test_rest_of_offer_takes_each_slice_from_an_entry_that_holds_it() -> None:
    twice = offer(scalar("cpus", 0.5), scalar("cpus", 2), scalar("mem", 1024))
    first = match(app(cpus=1.5, portDefinitions=[]), twice, [], count=1)
    rest = rest_of_offer(twice, first.placements)
    cpus = sorted(r["scalar"]["value"] for r in rest["resources"] if r["name"] == "cpus")
    assert all(c >= 0 for c in cpus) and abs(sum(cpus) - 1.0) < 1e-9, cpus
