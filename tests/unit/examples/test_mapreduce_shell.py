"""What the scheduler shell reads from the master and the agents: offers, exit statuses, sandboxes."""

from __future__ import annotations

from meseta.examples.mapreduce.effects import OfferView
from meseta.examples.mapreduce.scheduler import exit_code, find_sandbox, offer_view


def test_an_offer_is_seen_as_its_agent_address_cpus_and_mem() -> None:
    offer = {"id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "h",
             "url": {"scheme": "http", "address": {"hostname": "h", "ip": "127.0.0.1", "port": 5052}},
             "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}},
                           {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "r"},
                           {"name": "mem", "type": "SCALAR", "scalar": {"value": 512}},
                           {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}}]}
    assert offer_view(offer) == OfferView("o1", "a1", "http://127.0.0.1:5052", 2.0, 512.0)
    bare = {"id": {"value": "o2"}, "agent_id": {"value": "a2"}, "hostname": "box"}
    assert offer_view(bare) == OfferView("o2", "a2", "http://box:5051", 0.0, 0.0)


def test_the_exit_status_is_read_from_the_command_executors_message() -> None:
    assert exit_code("Command exited with status 75") == 75
    assert exit_code("Command terminated with signal Killed") is None


def test_a_sandbox_is_found_among_running_and_completed_executors() -> None:
    state = {"frameworks": [{"id": "other", "executors": [{"id": "t1", "directory": "/wrong"}]}],
             "completed_frameworks": [{"id": "fw", "executors": [],
                                       "completed_executors": [{"id": "t1", "directory": "/sb/t1"}]}]}
    assert find_sandbox(state, "fw", "t1") == "/sb/t1"
    assert find_sandbox(state, "fw", "t2") is None
