"""The map and reduce workers: what a task's command runs (``sys.executable -m
meseta.examples.mapreduce.worker map|reduce ...``), in the task's sandbox.

    map     read split [offset, offset+length) of --input as lines -> map function -> (key, value)
            -> partition_of(key) -> (combiner per key) -> --out/part-<r>, sorted by key
    reduce  fetch part-<partition> of every map output in --inputs (an agent's /files/download,
            or a shared directory) -> group by key -> reduce function -> --out, sorted by key

Exit status: 0 done; 75 (FETCH_FAILED_EXIT) a map output could not be fetched (the tracker
checks the agents and re-runs lost maps, without counting it as the reducer's failure); anything
else is a failure of this attempt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from meseta.examples.mapreduce.records import (
    decode_pair,
    encode_pair,
    load_function,
    output_line,
    part_name,
    partition_of,
    split_lines,
)
from meseta.examples.mapreduce.tracker import FETCH_FAILED_EXIT

FETCH_TIMEOUT = 60.0  # seconds an agent may take to answer a download


class FetchFailed(RuntimeError):
    pass


def run_map(args: argparse.Namespace) -> None:
    mapper = load_function(args.map)
    combiner = load_function(args.combiner) if args.combiner else None
    grouped: dict[str, list[Any]] = defaultdict(list)
    with open(args.input, "rb") as source:
        for line in split_lines(source, args.offset, args.length):
            for key, value in mapper(line):
                grouped[key].append(value)
    partitions: list[list[str]] = [[] for _ in range(args.reducers)]
    for key in grouped:  # each distinct key once, not every occurrence
        if not isinstance(key, str):
            raise TypeError(f"{args.map} yielded the key {key!r}, a {type(key).__name__}, not a str")
        partitions[partition_of(key, args.reducers)].append(key)
    out = Path(args.out)
    staging = out.parent / f".tmp-{out.name}-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    for partition, keys in enumerate(partitions):
        with open(staging / part_name(partition), "wb") as sink:
            for key in sorted(keys):
                values = [combiner(key, grouped[key])] if combiner is not None else grouped[key]
                for value in values:
                    sink.write(encode_pair(key, value))
    staging.rename(out)


def fetched_lines(place: dict[str, Any], partition: int) -> Iterator[bytes]:
    """The lines of one map's partition: from its agent's /files/download, or a shared directory.
    (urllib rather than httpx, imported here: a map task starts in half the time without them.)"""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    path = f"{place['directory']}/{part_name(partition)}"
    if not place.get("agent_url"):
        try:
            with open(path, "rb") as source:
                yield from source
        except OSError as exc:
            raise FetchFailed(f"{path}: {exc}") from None
        return
    url = f"{place['agent_url']}/files/download?" + urllib.parse.urlencode({"path": path})
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            yield from response
    except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:  # 404: the sandbox is gone;
        # IncompleteRead: the agent went away in the middle
        raise FetchFailed(f"{url}: {exc!r}") from None


def run_reduce(args: argparse.Namespace) -> None:
    reducer: Callable[[str, list[Any]], Any] = load_function(args.reduce)
    places = json.loads(Path(args.inputs).read_text())
    grouped: dict[str, list[Any]] = defaultdict(list)
    for place in places:
        for line in fetched_lines(place, args.partition):
            if line.strip():
                key, value = decode_pair(line)
                grouped[key].append(value)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as sink:
        for key in sorted(grouped):
            sink.write(output_line(key, reducer(key, grouped[key])))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m meseta.examples.mapreduce.worker")
    phases = top.add_subparsers(dest="phase", required=True)
    map_ = phases.add_parser("map", help="run one map split")
    map_.add_argument("--input", required=True)
    map_.add_argument("--offset", type=int, required=True)
    map_.add_argument("--length", type=int, required=True)
    map_.add_argument("--reducers", type=int, required=True)
    map_.add_argument("--map", required=True)
    map_.add_argument("--combiner", default="")
    map_.add_argument("--out", required=True)
    reduce = phases.add_parser("reduce", help="run one reduce partition")
    reduce.add_argument("--partition", type=int, required=True)
    reduce.add_argument("--inputs", required=True, help="a JSON file: [{agent_url, directory}, ...]")
    reduce.add_argument("--reduce", required=True)
    reduce.add_argument("--out", required=True)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run_map(args) if args.phase == "map" else run_reduce(args)
    except FetchFailed as exc:
        print(f"fetch failed: {exc}", file=sys.stderr)
        return FETCH_FAILED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
