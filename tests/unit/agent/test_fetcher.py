"""Fetcher decisions (which URIs, under which name, extracted or not) and its LRU cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from meseta.agent.fetcher import FetcherCache, FetchError, plan


def test_a_plan_per_uri() -> None:
    item = plan({"value": "http://h:1/dist/app-1.2.tar.gz"})
    assert (item.name, item.extract, item.executable, item.cache) == ("app-1.2.tar.gz", True, False, False)
    assert not plan({"value": "http://h/app.tgz", "extract": False}).extract
    tool = plan({"value": "file:///opt/bin/tool.zip", "executable": True, "output_file": "tool"})
    assert (tool.name, tool.extract, tool.executable) == ("tool", False, True)
    assert plan({"value": "/srv/data.csv", "cache": True}).cache
    assert not plan({"value": "https://h/readme.txt"}).extract


@pytest.mark.parametrize(("uri", "problem"), [
    ({"value": "hdfs://nn/app.jar"}, "only http, https, file"),
    ({"value": "relative/path.txt"}, "only http, https, file"),
    ({"value": "http://h/"}, "no file name"),
    ({"value": "http://h/x", "output_file": "../escape"}, "no file name"),
])
def test_bad_uris_are_named(uri: dict[str, str], problem: str) -> None:
    with pytest.raises(FetchError, match=problem) as caught:
        plan(uri)
    assert uri["value"] in str(caught.value)


def test_the_cache_keeps_the_most_recently_used_within_its_size(tmp_path: Path) -> None:
    cache = FetcherCache(tmp_path / "cache", capacity=250)
    blobs = {}
    for name, size in (("a", 100), ("b", 100), ("c", 100), ("huge", 300)):
        blobs[name] = tmp_path / name
        blobs[name].write_bytes(b"x" * size)
    keys = {name: FetcherCache.key("u", name) for name in blobs}
    cache.admit(keys["a"], blobs["a"])
    cache.admit(keys["b"], blobs["b"])
    assert cache.lookup(keys["a"]) is not None  # a is now the most recent
    cache.admit(keys["c"], blobs["c"])  # 300 > 250: b, the least recent, goes
    assert cache.lookup(keys["b"]) is None and cache.lookup(keys["a"]) is not None
    cache.admit(keys["huge"], blobs["huge"])  # bigger than the cache: never kept
    assert cache.lookup(keys["huge"]) is None and sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [keys["a"], keys["c"]])
    assert FetcherCache.key("other", "a") != keys["a"]  # keyed by user too
