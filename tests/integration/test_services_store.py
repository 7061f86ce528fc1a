"""The services store on SQLite and on a real ZooKeeper: the same batches give the same state,
values far above ZooKeeper's 1 MiB node limit store, and a newer claimant fences the older."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meseta.runtime import zk_blobs
from meseta.runtime.fencing import Fenced
from meseta.runtime.kv_store import KvStore, SqliteKvStore, ZooKeeperKvStore
from meseta.services.effects import KINDS
from meseta.testing.waiting import async_wait_until
from meseta.testing.zookeeper import Ensemble, connected

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "zookeeper"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KvStore]:
    if request.param == "sqlite":
        sqlite = SqliteKvStore(tmp_path / "services.sqlite")
        yield sqlite
        sqlite.close()
        return
    zk: Ensemble = request.getfixturevalue("single_node")
    with connected(zk) as client:
        store = ZooKeeperKvStore(client, f"/services-{uuid.uuid4().hex[:8]}", KINDS)
        store.claim("test")
        yield store


def _snapshot(store: KvStore) -> dict[str, dict[str, Any]]:
    return {kind: store.load(kind) for kind in KINDS}


def test_batches_round_trip(store: KvStore) -> None:
    app = {"id": "/prod/web", "cmd": "sleep 1", "instances": 2, "labels": {"a/b": "c d"}}
    store.write([("app", "/prod/web", app), ("app_version", "/prod/web@2026-12-01T00:00:00.000Z", app),
                 ("meta", "framework_id", {"value": "f-1"})])
    store.write([("instance", "prod_web.1234", {"task_id": "prod_web.1234"}), ("app", "/prod/web", None)])
    assert _snapshot(store) == {
        "app": {}, "app_version": {"/prod/web@2026-12-01T00:00:00.000Z": app}, "group": {}, "group_version": {},
        "deployment": {},
        "instance": {"prod_web.1234": {"task_id": "prod_web.1234"}}, "meta": {"framework_id": {"value": "f-1"}}}


def test_a_2000_app_deployment_plan_stores(store: KvStore) -> None:
    apps = [{"id": f"/bulk/app-{i}", "cmd": "sleep 3600", "cpus": 0.01, "mem": 16, "instances": 1,
             "env": {f"VAR{j}": "x" * 40 for j in range(20)}} for i in range(2000)]
    plan = {"id": "plan-1", "original": {"apps": []}, "target": {"apps": apps}}
    assert len(str(plan)) > 2_000_000
    store.write([("deployment", "plan-1", plan)])
    assert store.load("deployment")["plan-1"] == plan


def test_a_newer_claim_fences_the_older(single_node: Ensemble) -> None:
    root = f"/services-{uuid.uuid4().hex[:8]}"
    with connected(single_node) as first_client, connected(single_node) as second_client:
        first, second = ZooKeeperKvStore(first_client, root, KINDS), ZooKeeperKvStore(second_client, root, KINDS)
        first.claim("a")
        first.write([("app", "/x", {"id": "/x"})])
        second.claim("b")
        with pytest.raises(Fenced):
            first.write([("app", "/x", None)])
        with pytest.raises(Fenced):
            first.write([("app", "/big", {"blob": "y" * 2_000_000})])
        assert second.load("app") == {"/x": {"id": "/x"}}
        second.write([("app", "/x", None)])
        assert second.load("app") == {}


def test_small_values_of_a_batch_share_one_transaction(single_node: Ensemble) -> None:
    """The fast path: one fenced transaction for a batch of small values (counted through the
    client's transactions), also after a restart from what load() saw; big values and nodes
    changed behind the store's back still come out right."""
    root = f"/services-{uuid.uuid4().hex[:8]}"
    with connected(single_node) as client:
        store = ZooKeeperKvStore(client, root, KINDS)
        store.claim("a")
        for kind in KINDS:
            store.load(kind)
        commits: list[int] = []
        real = client.transaction

        def counting() -> Any:
            txn = real()
            original = txn.commit
            txn.commit = lambda: (commits.append(len(txn.operations)), original())[1]  # type: ignore[method-assign]
            return txn

        client.transaction = counting  # type: ignore[method-assign]
        store.write([("instance", f"t{i}", {"task_id": f"t{i}", "state": "TASK_STAGING"}) for i in range(5)])
        assert commits == [6], "the guard and five creates"
        commits.clear()
        store.write([("instance", "t0", {"task_id": "t0", "state": "TASK_RUNNING"}), ("instance", "t1", None),
                     ("instance", "t0", {"task_id": "t0", "state": "TASK_KILLING"})])
        assert commits == [3], "the guard, one set (the last change to t0 wins), one delete"
        for i in range(100):  # nodes the store does not know of (as after a retried commit that applied)
            client.create(f"{root}/instance/x{i}", zk_blobs.inline_header(b'{"old": true}'))
        commits.clear()
        store.write([("instance", f"x{i}", {"task_id": f"x{i}"}) for i in range(100)])
        assert commits == [101, 101], "refused once, looked at again, committed as sets: not 100 slow writes"
        assert store.load("instance")["x7"] == {"task_id": "x7"}
        store.write([("instance", f"x{i}", None) for i in range(100)])
        client.transaction = real  # type: ignore[method-assign]
        client.delete(f"{root}/instance/t2")  # behind the store's back: its transaction fails, the slow path mends
        store.write([("instance", "t2", {"task_id": "t2", "state": "TASK_RUNNING"}), ("instance", "t3", None),
                     ("app", "/big", {"blob": "z" * 1_500_000})])
        assert store.load("instance") == {"t0": {"task_id": "t0", "state": "TASK_KILLING"},
                                          "t2": {"task_id": "t2", "state": "TASK_RUNNING"},
                                          "t4": {"task_id": "t4", "state": "TASK_STAGING"}}
        store.write([("app", "/big", {"blob": "small now"})])
        assert store.load("app") == {"/big": {"blob": "small now"}}
        assert client.get_children(f"{root}/app/%2Fbig") == [], "the old chunks were swept"
        restarted = ZooKeeperKvStore(client, root, KINDS)
        restarted.claim("b")
        assert restarted.load("instance")["t0"]["state"] == "TASK_KILLING"
        restarted.write([("instance", "t0", None), ("instance", "t9", {"task_id": "t9"})])
        assert set(restarted.load("instance")) == {"t2", "t4", "t9"}
        with pytest.raises(Fenced):
            store.write([("instance", "t4", None)])


def test_batches_stay_well_below_zookeepers_request_limit() -> None:
    from meseta.runtime.kv_store import BATCH_BYTES, OPERATION_OVERHEAD, _batches

    items = [(f"/s/instance/t{i}", None) for i in range(20_000)]  # deletes: nearly all framing
    batches = _batches(items)
    assert sum(len(b) for b in batches) == 20_000
    assert all(sum(len(p) + OPERATION_OVERHEAD for p, _ in b) <= BATCH_BYTES for b in batches)
    assert BATCH_BYTES <= 1024 * 1024 // 2
    assert _batches([]) == []


def test_the_actor_writes_unsynced_changes_in_order_and_before_the_next_synced(tmp_path: Path) -> None:
    """Status updates' records (Store sync=False) are group-committed, yet never overtake or
    trail a later synced write: the store ends as the effects say, in their order."""
    import asyncio

    from meseta.services.effects import Store
    from meseta.services.machine import ServicesMachine
    from meseta.services.shell.actor import ServicesActor

    store = SqliteKvStore(tmp_path / "services.sqlite")
    actor = ServicesActor(ServicesMachine(new_uuid=lambda: "u"), store, "127.0.0.1:1")

    async def scenario() -> dict[str, Any]:
        await actor.execute([Store((("instance", "t1", {"state": "TASK_RUNNING"}),), sync=False),
                             Store((("instance", "t2", {"state": "TASK_RUNNING"}),), sync=False)])
        await actor.execute([Store((("instance", "t1", {"state": "TASK_KILLED"}),), sync=False)])
        await actor.execute([Store((("instance", "t1", None), ("instance", "t3", {"state": "TASK_STAGING"})))])
        assert store.load("instance") == {"t2": {"state": "TASK_RUNNING"}, "t3": {"state": "TASK_STAGING"}}, \
            "a synced write lands after the unsynced ones before it"
        await actor.execute([Store((("instance", "t2", None),), sync=False)])
        await async_wait_until(lambda: "t2" not in store.load("instance"), 1, "the unsynced delete written",
                               interval=0.01)
        return store.load("instance")

    assert asyncio.run(scenario()) == {"t3": {"state": "TASK_STAGING"}}, "and an unsynced one is written soon"
    store.close()
