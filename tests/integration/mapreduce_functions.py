"""Map and reduce functions for tests, imported by the tasks (the job's python_path names this
directory). Each task is a process of its own, so "once per task" is once per process.

    words_slowly                 word count's map, one second late per split: the map phase lasts
                                 long enough for a test to kill an agent in its middle
    words_on_slow_host           word count's map that hangs for SLOW_SECONDS on any agent whose
                                 work directory holds a file named SLOW: a straggler machine
    words_except_on_broken_host  word count's map that raises on agents marked BROKEN
    sum_slowly                   word count's reduce, REDUCE_DELAY late per reducer
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from meseta.examples.mapreduce.wordcount import map_words

SLOW_SECONDS = 120.0  # far longer than a copy on a healthy agent takes
REDUCE_DELAY = 6.0  # seconds; well over the two an agent killed takes to be declared lost
_started: set[str] = set()


def words_slowly(line: str) -> Iterator[tuple[str, int]]:
    if "split" not in _started:  # one process runs one split
        _started.add("split")
        time.sleep(1.0)
    yield from map_words(line)


def words_on_slow_host(line: str) -> Iterator[tuple[str, int]]:
    if "split" not in _started:
        _started.add("split")
        here = Path(os.getcwd())
        if any((parent / "SLOW").exists() for parent in here.parents):
            time.sleep(SLOW_SECONDS)
    yield from map_words(line)


def words_except_on_broken_host(line: str) -> Iterator[tuple[str, int]]:
    """Word count's map that raises on any agent whose work directory holds a file named BROKEN."""
    if any((parent / "BROKEN").exists() for parent in Path(os.getcwd()).parents):
        raise RuntimeError("this host is broken")
    yield from map_words(line)


def sum_slowly(word: str, counts: list[int]) -> int:
    """Word count's reduce, REDUCE_DELAY late per reducer: the reduce phase outlasts the master's
    verdict on an agent killed in its middle (the test's ping timeouts: about two seconds)."""
    if "reduce" not in _started:
        _started.add("reduce")
        time.sleep(REDUCE_DELAY)
    return sum(counts)
