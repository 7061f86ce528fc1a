"""The ZooKeeper registry against real ensembles: every operation as MemoryStorage does it,
settings of several MB, fencing by a newer claim, and a killed ZooKeeper leader."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient, KazooState

from meseta.master.effects import (
    AdmitAgent,
    MarkAgentGone,
    MarkAgentUnreachable,
    RegistryOperation,
    RemoveAgent,
    SaveSetting,
)
from meseta.master.registry.storage import MemoryStorage
from meseta.master.registry.zk_storage import Fenced, ZooKeeperStorage, json_bytes
from meseta.runtime import zk_blobs
from meseta.testing.zookeeper import Ensemble

pytestmark = pytest.mark.integration

AGENT_IDS = st.sampled_from(["S0", "S1", "2b1f-S7", "odd/id", ".", "ünï"])
TIMES = st.floats(min_value=0, max_value=2e9)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
OPERATIONS = st.one_of(
    st.builds(AdmitAgent, AGENT_IDS, st.dictionaries(st.text(max_size=5), JSON, max_size=3)),
    st.builds(RemoveAgent, AGENT_IDS),
    st.builds(MarkAgentUnreachable, AGENT_IDS, TIMES),
    st.builds(MarkAgentGone, AGENT_IDS, TIMES),
    st.builds(SaveSetting, st.sampled_from(["weights", "quota", "maintenance", "a/b"]), JSON),
)


def storage(client: KazooClient, root: str, master_id: str | None = "master-1") -> ZooKeeperStorage:
    store = ZooKeeperStorage(client, root)
    if master_id is not None:
        store.claim(master_id)
    return store


def loads(store: Any) -> tuple[Any, ...]:
    return store.load_agents(), store.load_unreachable(), store.load_gone(), store.load_settings()


def big_value(megabytes: float) -> dict[str, str]:
    return {"blob": os.urandom(int(megabytes * 1024 * 1024) // 2).hex()}


def fresh_root() -> str:
    return f"/meseta/test-{uuid.uuid4().hex[:12]}/registry"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPERATIONS, max_size=25))
def test_operations_round_trip_as_in_memory(zk_client: KazooClient, operations: list[RegistryOperation]) -> None:
    root = fresh_root()
    store, expected = storage(zk_client, root), MemoryStorage()
    for operation in operations:
        store.apply(operation)
        expected.apply(operation)
    assert loads(store) == loads(expected)
    assert loads(ZooKeeperStorage(zk_client, root)) == loads(expected)  # read back, not remembered


def test_loads_of_an_empty_root_are_empty(zk_client: KazooClient) -> None:
    assert loads(ZooKeeperStorage(zk_client, fresh_root())) == ({}, {}, {}, {})


def test_a_setting_of_several_megabytes_stores_loads_and_is_replaced(zk_client: KazooClient) -> None:
    root = fresh_root()
    store = storage(zk_client, root)
    first, second = big_value(3), big_value(1.5)
    store.apply(SaveSetting("maintenance", first))
    assert store.load_settings() == {"maintenance": first}
    chunks = zk_client.get_children(f"{root}/settings/maintenance")
    assert len(chunks) == -(-len(json_bytes(first)) // zk_blobs.CHUNK_SIZE) == 7
    store.apply(SaveSetting("maintenance", second))
    assert ZooKeeperStorage(zk_client, root).load_settings() == {"maintenance": second}
    store.apply(SaveSetting("maintenance", {"small": True}))
    assert store.load_settings() == {"maintenance": {"small": True}}
    assert zk_client.get_children(f"{root}/settings/maintenance") == []  # old chunks swept


def test_a_newer_claim_fences_the_old_leader(zk_client: KazooClient) -> None:
    root = fresh_root()
    old = storage(zk_client, root, "master-1")
    old.apply(AdmitAgent("S0", {"hostname": "a"}))
    old.apply(SaveSetting("weights", {"dev": 2.0}))
    new = storage(zk_client, root, "master-2")
    assert zk_client.get(f"{root}/epoch")[0] == b"master-2"
    before = loads(new), sorted(zk_client.get_children(f"{root}/settings"))
    for operation in [AdmitAgent("S1", {}), RemoveAgent("S0"), MarkAgentUnreachable("S0", 5.0),
                      MarkAgentGone("S0", 6.0), SaveSetting("weights", {"dev": 3.0}),
                      SaveSetting("quota", big_value(2))]:
        with pytest.raises(Fenced):
            old.apply(operation)
    assert (loads(new), sorted(zk_client.get_children(f"{root}/settings"))) == before
    assert zk_client.get_children(f"{root}/settings/weights") == []  # no chunks staged
    new.apply(RemoveAgent("S0"))
    assert new.load_agents() == {}


def test_apply_before_claim_or_after_close_is_fenced(zk_client: KazooClient) -> None:
    root = fresh_root()
    with pytest.raises(Fenced):
        ZooKeeperStorage(zk_client, root).apply(AdmitAgent("S0", {}))
    store = storage(zk_client, root)
    store.close()
    with pytest.raises(Fenced):
        store.apply(AdmitAgent("S0", {}))
    assert store.load_agents() == {}


def test_a_blob_staged_by_a_writer_fenced_before_its_commit_stays_invisible(zk_client: KazooClient) -> None:
    fence = f"/meseta/test-{uuid.uuid4().hex[:12]}/fence"
    zk_client.ensure_path(fence)
    path = f"{fence}-blob"

    def guard(txn: Any) -> None:
        txn.check(fence, version=0)

    staged = zk_blobs.stage_blob(zk_client, path, os.urandom(1_500_000), guard)
    assert staged.chunks == 3 and len(zk_client.get_children(path)) == 3
    zk_client.set(fence, b"someone else")
    with pytest.raises(zk_blobs.TransactionFailed):
        zk_blobs.write_blob(zk_client, path, b"small", guard)
    txn = zk_blobs.transaction(zk_client, guard)
    staged.add_commit(txn)
    with pytest.raises(zk_blobs.TransactionFailed):
        zk_blobs.commit(txn)
    zk_blobs.discard_blob(zk_client, staged)
    assert zk_blobs.read_blob(zk_client, path) is None
    assert zk_client.get_children(path) == []


def test_blobs_write_read_and_delete(zk_client: KazooClient) -> None:
    path = f"/meseta/test-{uuid.uuid4().hex[:12]}-blob"
    zk_client.ensure_path(path.rsplit("/", 1)[0])
    for data in [b"", b"tiny", os.urandom(zk_blobs.INLINE_LIMIT), os.urandom(2 * zk_blobs.CHUNK_SIZE + 1)]:
        zk_blobs.write_blob(zk_client, path, data)
        assert zk_blobs.read_blob(zk_client, path) == data
    assert len(zk_client.get_children(path)) == 3
    zk_blobs.delete_blob(zk_client, path)
    assert zk_blobs.read_blob(zk_client, path) is None and zk_client.exists(path) is None


def test_the_registry_survives_its_zookeeper_leader_being_killed(ensemble: Ensemble,
                                                                  zk_client: KazooClient) -> None:
    root = fresh_root()
    store, expected = storage(zk_client, root), MemoryStorage()
    before = [AdmitAgent(f"S{i}", {"hostname": f"h{i}"}) for i in range(20)] + [SaveSetting("quota", big_value(2))]
    after = [MarkAgentUnreachable("S3", 10.0), MarkAgentGone("S4", 11.0), RemoveAgent("S5"),
             SaveSetting("weights", {"dev": 1.5}), AdmitAgent("S3", {"hostname": "back"})]
    for operation in before:
        store.apply(operation)
        expected.apply(operation)
    leader = ensemble.leader_index()
    assert leader is not None
    states: list[str] = []
    zk_client.add_listener(states.append)
    ensemble.kill(leader)
    try:
        for operation in after:
            store.apply(operation)  # waits out the election and the reconnection
            expected.apply(operation)
        assert loads(store) == loads(expected)
        assert ensemble.leader_index() not in (None, leader)
        assert KazooState.SUSPENDED in states and states[-1] == KazooState.CONNECTED
    finally:
        zk_client.remove_listener(states.append)
        ensemble.start_node(leader)
    assert loads(ZooKeeperStorage(zk_client, root)) == loads(expected)


def test_stop_leaves_no_zookeeper_process(tmp_path: Path) -> None:
    zk = Ensemble(tmp_path, size=3).start()
    pids = zk.pids()
    assert len(pids) == 3 and sorted(zk.mode(i) or "" for i in range(3)) == ["follower", "follower", "leader"]
    zk.kill(0)
    zk.start_node(0)
    pids += zk.pids()
    zk.stop()
    zk.stop()  # idempotent
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    found = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert found.stdout == ""


def test_a_single_node_is_standalone(single_node: Ensemble) -> None:
    assert single_node.mode(0) == "standalone" and single_node.leader_index() == 0
    assert single_node.url("meseta") == f"zk://{single_node.hosts}/meseta"
