"""ZooKeeper for integration tests: real ensembles (``meseta.testing.zookeeper``) and clients.

A module imports the fixtures it needs (``from .zk_fixtures import ensemble_fixture``); pytest
knows each by its ``name`` (``ensemble``), so test parameters do not shadow the import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from meseta.runtime.zk import make_client, parse_zk_url
from meseta.testing.zookeeper import Ensemble

SESSION_TIMEOUT = 4.0  # the longest the test ensembles allow (20 ticks of 200 ms)


@contextmanager
def running(base_dir: Path, size: int) -> Iterator[Ensemble]:
    with Ensemble(base_dir, size=size) as zk:
        yield zk


@contextmanager
def connected(zk: Ensemble, session_timeout: float = SESSION_TIMEOUT) -> Iterator[KazooClient]:
    """A started client of ``zk`` (every node in its host list), stopped and closed afterwards."""
    client = make_client(parse_zk_url(zk.url("meseta")), session_timeout)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@pytest.fixture(scope="module", name="ensemble")
def ensemble_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    """Three nodes shared by a module's tests; a test that kills a node starts it again."""
    with running(tmp_path_factory.mktemp("zk"), 3) as zk:
        yield zk


@pytest.fixture(name="single_node")
def single_node_fixture(tmp_path: Path) -> Iterator[Ensemble]:
    """One standalone node for this test alone (starts in well under a second)."""
    with running(tmp_path / "zk", 1) as zk:
        yield zk


@pytest.fixture(scope="module", name="zk_client")
def zk_client_fixture(ensemble: Ensemble) -> Iterator[KazooClient]:
    """A client of the module's ensemble, shared by its tests."""
    with connected(ensemble) as client:
        yield client
