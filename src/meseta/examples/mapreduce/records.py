"""The worker side's formats: reading a split as lines, partitioning keys, and the files between
the phases. One module owns the layout::

    map output (a sandbox's map-out/, or <shuffle-dir>/<job>/<attempt>/)
      part-00000 ... part-<R-1>       JSON lines ["key", value], sorted by key; written to
                                      .tmp-<pid>/ first and renamed, so a directory that exists
                                      is complete
    <output>/
      _temporary/<attempt>.inputs.json    a reduce attempt's inputs: [{agent_url, directory}, ...]
      _temporary/<attempt>/part-r-<r>     a reduce attempt's output, before its commit
      part-r-00000 ... part-r-<R-1>       the committed output: "key<TAB>value-as-JSON" lines
      _SUCCESS                            written last, when every partition is committed
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

MAX_LINE_BYTES = 16 << 20  # a longer input line fails the map, naming its offset


def part_name(partition: int) -> str:
    return f"part-{partition:05d}"


def output_name(partition: int) -> str:
    return f"part-r-{partition:05d}"


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes and hosts (Python's own hash() is salted per process)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def load_function(name: str) -> Callable[..., Any]:
    """``package.module:function`` imported; an error names what is missing."""
    module_name, _, attribute = name.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{name}: {module_name} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


def split_lines(source: BinaryIO, offset: int, length: int) -> Iterator[str]:
    """The lines of the split [offset, offset + length) by the rule in ``splits``, decoded as
    UTF-8 (bytes that are not become U+FFFD), without their line ending."""
    end = offset + length
    position = offset
    if offset > 0:
        source.seek(offset - 1)
        skipped = source.readline(MAX_LINE_BYTES + 1)
        position = offset - 1 + len(skipped)
    else:
        source.seek(0)
    while position < end:
        line = source.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise ValueError(f"input line at byte {position} is longer than {MAX_LINE_BYTES} bytes")
        position += len(line)
        yield line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")


def encode_pair(key: object, value: object) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"map output key {key!r} is a {type(key).__name__}, not a str")
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


def decode_pair(line: bytes) -> tuple[str, Any]:
    pair = json.loads(line)
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
        raise ValueError(f"intermediate record {line[:80]!r} is not [key, value]")
    return pair[0], pair[1]


def output_line(key: str, value: object) -> bytes:
    if "\t" in key or "\n" in key or "\r" in key:
        raise ValueError(f"reduce output key {key!r} contains a tab or a line break")
    return f"{key}\t{json.dumps(value, ensure_ascii=False)}\n".encode("utf-8", "surrogatepass")


def read_output_line(line: str) -> tuple[str, Any]:
    """One line of a committed output file back as (key, value)."""
    key, _, value = line.rstrip("\n").partition("\t")
    return key, json.loads(value)
