"""Word count, the shipped job: words are what ``str.split()`` separates (runs of whitespace).

A map function takes one input line and yields (key, value) pairs, keys being str and values
anything JSON can carry; a reduce function (and a combiner) takes a key and the list of its
values and returns one value.
"""

from __future__ import annotations

from collections.abc import Iterator


def map_words(line: str) -> Iterator[tuple[str, int]]:
    for word in line.split():
        yield word, 1


def sum_counts(word: str, counts: list[int]) -> int:
    return sum(counts)
