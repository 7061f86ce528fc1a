"""Map splits: the inputs cut by size (pure). Each split is a byte range of one file; the map
worker turns it into whole lines by one rule, so every line is read exactly once::

    file  |----------- split 0 -----------|----------- split 1 -----------|-- split 2 --|
    lines  aaaa\\n bbbbbbbbbb\\n cccccccc\\n dddddd|dddd\\n eeee\\n ...
                                                ^ split 1 starts inside line d

    A line belongs to the split holding its first byte. A split that starts at offset > 0
    skips up to and including the first newline at or after offset - 1 (so a split that
    starts right after a newline skips nothing), then reads whole lines while a line starts
    before offset + length; the last line may run past the split's end.
"""

from __future__ import annotations

from dataclasses import dataclass

from meseta.examples.mapreduce.job import MAX_SPLITS, InputFile, JobError


@dataclass(frozen=True, slots=True)
class Split:
    index: int
    path: str
    offset: int
    length: int


def compute_splits(inputs: tuple[InputFile, ...], split_bytes: int) -> tuple[Split, ...]:
    """Every non-empty file cut into ranges of at most ``split_bytes``, in input order."""
    splits: list[Split] = []
    for entry in inputs:
        for offset in range(0, entry.size, split_bytes):
            splits.append(Split(len(splits), entry.path, offset, min(split_bytes, entry.size - offset)))
            if len(splits) > MAX_SPLITS:
                raise JobError(f"split_bytes: {split_bytes} cuts the inputs into more than {MAX_SPLITS} splits")
    return tuple(splits)
