"""Stored forms: values an older version wrote are repaired on load (codec.repaired)."""

from __future__ import annotations

import json

from meseta.services import codec


def test_a_clean_value_is_returned_as_it_is() -> None:
    value = json.loads('{"cmd": "sleep 1 # \\u00e9 \\ud83d\\ude00", "labels": {"a": "b"}, "ports": [1, 2.5, null]}')
    fixed, places = codec.repaired(value)
    assert fixed is value and places == []


def test_each_lone_surrogate_becomes_one_replacement_character_and_its_place_is_named() -> None:
    value = json.loads('{"cmd": "x\\ud800y", "labels": {"\\udfff": "a"}, "args": ["ok", "\\udc00"], "n": 1}')
    fixed, places = codec.repaired(value)
    assert fixed == {"cmd": "x\ufffdy", "labels": {"\ufffd": "a"}, "args": ["ok", "\ufffd"], "n": 1}
    assert places == ["/cmd", "/labels/<key>", "/args(1)"]
    assert value["cmd"] == "x\ud800y", "the value read is not changed in place"
    json.dumps(fixed).encode("utf-8")
