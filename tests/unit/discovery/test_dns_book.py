"""The record book: spec 1.4's rows for a sample state, and per-event updates equal a rebuild."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.discovery.dns import wire
from meseta.discovery.dns.book import BookConfig, RecordBook
from meseta.discovery.dns.names import task_hash

from . import events as ev

H = task_hash("web.1")
C = f"web-{H}-s1"


def booked(*tasks: dict[str, Any], config: BookConfig | None = None, **state: Any) -> RecordBook:
    book = RecordBook(config or BookConfig())
    book.replace(*wire.parse_state(ev.subscribed(list(tasks), **state)["subscribed"]["get_state"]))
    return book


def records(book: RecordBook) -> dict[tuple[str, str], set[Any]]:
    return {(name, rtype): set(values) for name, rtype, values in book.all_records()}


def test_a_task_without_discovery_info_gets_every_row_of_the_table() -> None:
    book = booked(ev.task(host_ports=((31000, 31001),)))
    on_agent = f"{C}.marathon.slave.meseta."
    srv = {(on_agent, 31000), (on_agent, 31001)}
    assert records(book) == {
        ("ns1.meseta.", "A"): {"127.0.0.1"},
        ("marathon.meseta.", "A"): {"10.0.0.9"},
        ("slave.meseta.", "A"): {"10.0.0.1"},
        ("_slave._tcp.meseta.", "SRV"): {("slave.meseta.", 5051)},
        ("web.marathon.meseta.", "A"): {"10.0.0.1"},
        (f"{C}.marathon.meseta.", "A"): {"10.0.0.1"},
        ("web.marathon.slave.meseta.", "A"): {"10.0.0.1"},
        (f"{C}.marathon.slave.meseta.", "A"): {"10.0.0.1"},
        ("_web._tcp.marathon.slave.meseta.", "SRV"): srv,
        ("_web._udp.marathon.slave.meseta.", "SRV"): srv,
        ("_web._tcp.marathon.meseta.", "SRV"): srv,
        ("_web._udp.marathon.meseta.", "SRV"): srv,
    }


def test_discovery_info_names_ports_and_protocols() -> None:
    discovery = {"visibility": "FRAMEWORK", "name": "Api.Server", "ports": {"ports": [
        {"number": 8080, "name": "http", "protocol": "tcp"}, {"number": 53, "protocol": ""}]}}
    book = booked(ev.task(discovery=discovery, statuses=[ev.status("web.1", ips=("172.17.0.5",))]))
    canonical = f"api-server-{H}-s1"
    target = f"{canonical}.marathon.meseta."
    assert book.lookup("_api-server._tcp.marathon.meseta.", "SRV") == [(target, 8080), (target, 53)]
    assert book.lookup("_http._api-server._tcp.marathon.meseta.", "SRV") == [(target, 8080)]
    assert book.lookup("_api-server._udp.marathon.meseta.", "SRV") == [(target, 53)]
    assert book.lookup("_http._api-server._udp.marathon.meseta.", "SRV") == []
    assert book.lookup("api-server.marathon.meseta.", "A") == ["172.17.0.5"]  # netinfo first
    assert book.lookup(target, "A") == ["172.17.0.5"]
    assert book.lookup("api-server.marathon.slave.meseta.", "A") == ["10.0.0.1"]
    # host ports still get slave SRVs, but no _T._tcp.F.D. ones (the task has DiscoveryInfo)
    on_agent = f"{canonical}.marathon.slave.meseta."
    assert book.lookup("_api-server._tcp.marathon.slave.meseta.", "SRV") == [(on_agent, 31000)]
    assert book.lookup("web.marathon.meseta.", "A") == []


@pytest.mark.parametrize(("sources", "expected"), [
    (("netinfo", "mesos", "host"), ["172.17.0.5", "fd00::5"]),
    (("mesos", "netinfo", "host"), ["10.1.1.1"]),
    (("host", "netinfo"), ["10.0.0.1"]),
    (("docker", "host"), ["10.0.0.1"]),  # no docker label: the next source
])
def test_ip_sources_in_the_configured_order(sources: tuple[str, ...], expected: list[str]) -> None:
    running = ev.status("web.1", ips=("172.17.0.5", "fd00::5"),
                        labels={"MesosContainerizer.NetworkSettings.IPAddress": "10.1.1.1"})
    book = booked(ev.task(statuses=[running]), config=BookConfig(ip_sources=sources))
    found = book.lookup("web.marathon.meseta.", "A") + book.lookup("web.marathon.meseta.", "AAAA")
    assert found == expected


def test_netinfo_comes_from_the_newest_running_status() -> None:
    old = ev.status("web.1", ips=("172.17.0.5",), timestamp=1.0)
    new = ev.status("web.1", ips=("172.17.0.6",), timestamp=2.0)
    book = booked(ev.task(statuses=[new, old]))
    assert book.lookup("web.marathon.meseta.", "A") == ["172.17.0.6"]


def test_only_running_healthy_tasks_on_known_agents_are_published() -> None:
    book = booked(ev.task("a.1", "a", state="TASK_STAGING"),
                  ev.task("b.1", "b", statuses=[ev.status("b.1", healthy=False)]),
                  ev.task("c.1", "c", agent_id="unknown-S9"),
                  ev.task("d.1", "d", statuses=[ev.status("d.1", healthy=True)]))
    names = {name for name, _, _ in book.all_records()}
    assert "d.marathon.meseta." in names
    assert not {"a.marathon.meseta.", "b.marathon.meseta.", "c.marathon.meseta."} & names


def test_events_follow_start_health_and_kill() -> None:
    book = booked()
    serial = book.serial
    assert book.apply(ev.task_added(ev.task(state="TASK_STAGING"))) is False
    assert book.serial == serial  # nothing published yet: nothing changed
    assert book.apply(ev.task_updated("web.1", "TASK_RUNNING"))
    assert book.lookup("web.marathon.meseta.", "A") == ["10.0.0.1"] and book.serial > serial
    assert book.apply(ev.task_updated("web.1", "TASK_RUNNING", healthy=False))
    assert book.lookup("web.marathon.meseta.", "A") == []
    assert book.apply(ev.task_updated("web.1", "TASK_RUNNING", healthy=True))
    assert book.lookup("web.marathon.meseta.", "A") == ["10.0.0.1"]
    assert book.apply(ev.task_updated("web.1", "TASK_KILLED"))
    assert not book.exists("web.marathon.meseta.") and "web.1" not in book.tasks


def test_two_tasks_on_one_host_share_an_address_until_both_go() -> None:
    book = booked(ev.task("web.1"), ev.task("web.2"))
    assert book.lookup("web.marathon.meseta.", "A") == ["10.0.0.1"]
    book.apply(ev.task_updated("web.1", "TASK_FAILED"))
    assert book.lookup("web.marathon.meseta.", "A") == ["10.0.0.1"]
    book.apply(ev.task_updated("web.2", "TASK_FINISHED"))
    assert book.lookup("web.marathon.meseta.", "A") == []


def test_agent_and_framework_events() -> None:
    book = booked(ev.task())
    book.apply({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": ev.AGENT_ID}}})
    assert not book.exists("web.marathon.meseta.") and not book.exists("slave.meseta.")
    book.apply({"type": "AGENT_ADDED", "agent_added": {"agent": ev.agent(ip="10.0.0.2")}})
    assert book.lookup("web.marathon.meseta.", "A") == ["10.0.0.2"]
    book.apply({"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": ev.framework("Marathon.Prod")}})
    assert book.lookup("web.marathon.prod.meseta.", "A") == ["10.0.0.2"] and not book.exists("web.marathon.meseta.")
    book.apply({"type": "FRAMEWORK_REMOVED",
                "framework_removed": {"framework_info": {"id": {"value": ev.FRAMEWORK_ID}, "name": "x"}}})
    assert book.tasks == {} and not book.exists("web.marathon.prod.meseta.")


def test_masters_leader_first_configured_in_order() -> None:
    book = RecordBook()
    book.set_masters(("10.0.0.3", 5050), [("10.0.0.1", 5050), ("10.0.0.2", 5050)])
    assert book.lookup("leader.meseta.", "A") == ["10.0.0.3"]
    assert book.lookup("_leader._tcp.meseta.", "SRV") == [("leader.meseta.", 5050)]
    assert book.lookup("_leader._udp.meseta.", "SRV") == [("leader.meseta.", 5050)]
    assert book.lookup("master.meseta.", "A") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [book.lookup(f"master{i}.meseta.", "A") for i in range(3)] == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"]]
    book.set_masters(("10.0.0.1", 5050), [("10.0.0.1", 5050), ("10.0.0.2", 5050)])
    assert book.lookup("leader.meseta.", "A") == ["10.0.0.1"] and not book.exists("master2.meseta.")


@pytest.mark.parametrize("event", [
    {"type": "TASK_ADDED", "task_added": {"task": {"name": "x"}}},
    {"type": "TASK_UPDATED", "task_updated": {"status": {"task_id": {"value": "x"}}}},
    {"type": "AGENT_ADDED", "agent_added": {}},
    {"type": "TASK_ADDED", "task_added": {"task": ev.task(host_ports=((5, 2),))}},
    {"type": "TASK_UPDATED", "task_updated": {"status": {**ev.status("x"), "healthy": "yes"}}},
])
def test_a_payload_without_what_dns_needs_is_refused_by_field(event: dict[str, Any]) -> None:
    book = booked(ev.task())
    before = records(book)
    with pytest.raises(wire.WireError):
        book.apply(event)
    assert records(book) == before


# ---------------------------------------------------------------- property: per-event == rebuild

STATES = ["TASK_STAGING", "TASK_RUNNING", "TASK_KILLED", "TASK_FAILED", "TASK_UNREACHABLE"]
AGENTS = [f"agent-S{i}" for i in range(3)]
event_strategy = st.one_of(
    st.builds(lambda i, a, n, p: ev.task_added(ev.task(f"t{i}", n, "TASK_STAGING", agent_id=a,
                                                       host_ports=((p, p + 1),))),
              st.integers(0, 5), st.sampled_from(AGENTS), st.sampled_from(["web", "db", "Web.App"]),
              st.integers(1000, 1010)),
    st.builds(lambda i, s, h, ip: ev.task_updated(f"t{i}", s, healthy=h, ips=ip),
              st.integers(0, 5), st.sampled_from(STATES), st.sampled_from([None, True, False]),
              st.sampled_from([(), ("172.17.0.2",), ("fd00::1",)])),
    st.builds(lambda a, ip: {"type": "AGENT_ADDED", "agent_added": {"agent": ev.agent(a, ip)}},
              st.sampled_from(AGENTS), st.sampled_from(["10.0.0.1", "10.0.0.2"])),
    st.builds(lambda a: {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": a}}},
              st.sampled_from(AGENTS)),
    st.builds(lambda n: {"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": ev.framework(n)}},
              st.sampled_from(["marathon", "Marathon.Prod", "x"])),
    st.just({"type": "HEARTBEAT"}),
)


@given(st.lists(event_strategy, max_size=40))
@settings(max_examples=150, deadline=None)
def test_events_applied_one_by_one_equal_a_fresh_build(events: list[dict[str, Any]]) -> None:
    book = booked(agents=[ev.agent(a) for a in AGENTS])
    for event in events:
        serial = book.serial
        changed = book.apply(event)
        assert (book.serial != serial) == changed
    fresh = RecordBook()
    fresh.replace(list(book.frameworks.values()), list(book.agents.values()), list(book.tasks.values()))
    assert records(book) == records(fresh)
    assert book.names == fresh.names


def test_the_task_address_survives_health_updates_without_network_info() -> None:
    book = booked(ev.task(statuses=[ev.status("web.1", ips=("172.17.0.5",), timestamp=1.0)]))
    for i in range(10):  # health updates: RUNNING, no container_status
        book.apply(ev.task_updated("web.1", "TASK_RUNNING", healthy=True, timestamp=2.0 + i))
    assert book.lookup("web.marathon.meseta.", "A") == ["172.17.0.5"]
    assert len(book.tasks["web.1"].statuses) <= 5


def test_a_book_built_aside_and_adopted_equals_one_replaced() -> None:
    state = ev.subscribed([ev.task(), ev.task("db.1", "db", statuses=[ev.status("db.1", ips=("10.2.2.2",))])])
    old = booked(ev.task("gone.1", "gone"))
    old.set_masters(("10.0.0.3", 5050), [])
    replaced = booked(ev.task("gone.1", "gone"))
    replaced.set_masters(("10.0.0.3", 5050), [])
    replaced.replace(*wire.parse_state(state["subscribed"]["get_state"]))
    fresh = old.fresh()
    fresh.replace(*wire.parse_state(state["subscribed"]["get_state"]))
    assert records(old) != records(fresh)  # the old book answers unchanged while the fresh one is built
    serial = old.serial
    old.take_changed()
    old.adopt(fresh)
    assert records(old) == records(replaced) and old.lookup("leader.meseta.", "A") == ["10.0.0.3"]
    assert old.serial == serial + 1
    assert {"gone.marathon.meseta.", "db.marathon.meseta."} <= old.take_changed()
