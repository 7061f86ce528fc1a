"""The hand-written scheduler the bad-input tests and fuzzers use: a refused SUBSCRIBE fails at once
naming the master's ERROR, events wait for their caller by type, and close() disconnects."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from meseta.testing.local_cluster import LocalCluster
from meseta.testing.raw_framework import RawFramework
from meseta.testing.waiting import wait_until


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalCluster(tmp_path_factory.mktemp("raw")) as cluster:
        yield cluster.master
        assert cluster.logged_errors() == []


def _connected(master: str, framework_id: str) -> bool:
    frameworks = httpx.get(f"http://{master}/master/state", timeout=5).json()["frameworks"]
    return any(f["id"] == framework_id and f["connected"] for f in frameworks)


def test_events_wait_by_type_and_close_disconnects(master: str) -> None:
    raw = RawFramework(master, {"user": "", "name": "raw-test", "failover_timeout": 60})
    assert _connected(master, raw.framework_id)
    offer = raw.next_event("OFFERS")["offers"]["offers"][0]
    decline = {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}}
    assert raw.call("DECLINE", decline=decline).status_code == 202
    assert raw.post(b"{not json").status_code == 400
    with pytest.raises(AssertionError, match=r"no RESCIND event in 0\.2 s; got"):
        raw.next_event("RESCIND", timeout=0.2)
    raw.close()
    assert raw.ended.is_set() and raw.stream_error is None
    wait_until(lambda: not _connected(master, raw.framework_id), 10, "the master to see the framework disconnect")
    with pytest.raises(AssertionError, match="the stream ended"):
        raw.next_event("OFFERS", where=lambda e: False)


def test_a_refused_subscribe_names_the_masters_error(master: str) -> None:
    with pytest.raises(AssertionError, match=r"SUBSCRIBE refused: .*MULTI_ROLE"):
        RawFramework(master, {"user": "", "name": "raw-test", "roles": ["a", "b"]})
