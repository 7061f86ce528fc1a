"""Splits, the line rule, the partitioner and the workers' files (the map and reduce workers run
here on a shared directory, as their tasks would)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.examples.mapreduce import worker
from meseta.examples.mapreduce.job import WORDCOUNT_MAP, WORDCOUNT_REDUCE, InputFile, JobError
from meseta.examples.mapreduce.records import (
    decode_pair,
    encode_pair,
    output_line,
    part_name,
    partition_of,
    read_output_line,
    split_lines,
)
from meseta.examples.mapreduce.splits import compute_splits

line_text = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_text, max_size=40), st.booleans(), st.integers(1024, 1100), st.integers(0, 3))
def test_every_line_is_read_by_exactly_one_split(lines: list[str], final_newline: bool, split_bytes: int,
                                                 padding: int) -> None:
    lines = ["x" * (padding * 400) + line for line in lines]  # long lines straddle split boundaries
    data = "\n".join(lines).encode() + (b"\n" if final_newline and lines else b"")
    splits = compute_splits((InputFile("/in", len(data)),), split_bytes)
    assert sum(s.length for s in splits) == len(data)
    read = [line for s in splits for line in split_lines(io.BytesIO(data), s.offset, s.length)]
    expected = data.decode().split("\n")
    if expected[-1] == "":  # a file's last line ends at its last newline (or the file is empty)
        expected.pop()
    assert read == expected


def test_a_split_starting_right_after_a_newline_keeps_its_first_line() -> None:
    data = b"aaaa\nbbbb\ncccc\n"
    assert list(split_lines(io.BytesIO(data), 0, 5)) == ["aaaa"]
    assert list(split_lines(io.BytesIO(data), 5, 5)) == ["bbbb"]
    assert list(split_lines(io.BytesIO(data), 6, 9)) == ["cccc"]
    assert list(split_lines(io.BytesIO(b"\xff\xfeok\r\n"), 0, 6)) == ["\ufffd\ufffdok"]


def test_partitions_are_stable_and_in_range() -> None:
    assert partition_of("hello", 7) == partition_of("hello", 7) == 2  # crc32, not the salted hash()
    assert {partition_of(str(i), 5) for i in range(200)} == set(range(5))


def test_intermediate_and_output_records_round_trip_and_refuse_what_they_cannot_carry() -> None:
    assert decode_pair(encode_pair("wörd\t\n", [1, {"a": None}])) == ("wörd\t\n", [1, {"a": None}])
    with pytest.raises(TypeError, match="not a str"):
        encode_pair(3, 1)
    with pytest.raises(ValueError, match="not \\[key, value\\]"):
        decode_pair(b'{"a": 1}')
    assert read_output_line(output_line("wörd", 12).decode()) == ("wörd", 12)
    with pytest.raises(ValueError, match="tab or a line break"):
        output_line("a\tb", 1)


def test_the_workers_count_words_through_a_shared_directory(tmp_path: Path) -> None:
    text = "the cat sat\non the mat\n\nthe end\n"
    (tmp_path / "in.txt").write_text(text)
    outputs = []
    for index, split in enumerate(compute_splits((InputFile(str(tmp_path / "in.txt"), len(text)),), 1024)):
        out = tmp_path / f"m{index}"
        assert worker.main(["map", "--input", split.path, "--offset", str(split.offset), "--length",
                            str(split.length), "--reducers", "2", "--map", WORDCOUNT_MAP, "--combiner",
                            WORDCOUNT_REDUCE, "--out", str(out)]) == 0
        assert sorted(p.name for p in out.iterdir()) == [part_name(0), part_name(1)]
        outputs.append({"agent_url": None, "directory": str(out)})
    (tmp_path / "inputs.json").write_text(json.dumps(outputs))
    found: Counter[str] = Counter()
    for partition in range(2):
        result = tmp_path / f"r{partition}"
        assert worker.main(["reduce", "--partition", str(partition), "--inputs", str(tmp_path / "inputs.json"),
                            "--reduce", WORDCOUNT_REDUCE, "--out", str(result)]) == 0
        found.update(dict(read_output_line(line) for line in result.read_text().splitlines()))
    assert found == Counter(text.split())


def test_a_reducer_that_cannot_fetch_exits_75(tmp_path: Path) -> None:
    (tmp_path / "inputs.json").write_text(json.dumps([{"agent_url": "http://127.0.0.1:9", "directory": "/x"}]))
    result = subprocess.run([sys.executable, "-m", "meseta.examples.mapreduce.worker", "reduce", "--partition", "0",
                             "--inputs", str(tmp_path / "inputs.json"), "--reduce", WORDCOUNT_REDUCE,
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 75 and "fetch failed" in result.stderr


def test_a_map_function_that_yields_a_bad_key_fails_the_attempt_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in.txt").write_text("a\n")
    (tmp_path / "bad_keys.py").write_text("def numbers(line):\n    return [(1, 1)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # as --python-path puts a user's directory on a task's path
    with pytest.raises(TypeError, match="yielded the key 1, a int"):
        worker.main(["map", "--input", str(tmp_path / "in.txt"), "--offset", "0", "--length", "2", "--reducers",
                     "1", "--map", "bad_keys:numbers", "--out", str(tmp_path / "o")])
    with pytest.raises(ModuleNotFoundError):
        worker.main(["map", "--input", str(tmp_path / "in.txt"), "--offset", "0", "--length", "2", "--reducers",
                     "1", "--map", "no_such_module:f", "--out", str(tmp_path / "o")])


def test_split_count_is_bounded() -> None:
    with pytest.raises(JobError, match="split_bytes"):
        compute_splits((InputFile("/big", 1 << 40),), 1024)
