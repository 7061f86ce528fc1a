import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.discovery.dns.names import (
    agent_suffix,
    canonical_label,
    sanitise_framework,
    sanitise_label,
    task_hash,
)


@pytest.mark.parametrize(("name", "label"), [
    ("apiserver.myservice", "apiserver-myservice"),  # the spec's example: one label
    ("Web_App", "web-app"),
    ("--edge--", "edge"),
    ("a b!c/d", "abcd"),
    ("ünïcode-ok", "ncode-ok"),
    ("x" * 70, "x" * 63),
    ("a" * 62 + "-b", "a" * 62),  # the cut lands on a hyphen: it goes
    ("", ""),
    ("!!!", ""),
])
def test_rfc1123_labels(name: str, label: str) -> None:
    assert sanitise_label(name) == label


@pytest.mark.parametrize(("name", "label"), [
    ("123abc", "abc"),
    ("-9lives", "lives"),
    ("a" * 30, "a" * 24),
    ("Web.App", "web-app"),
])
def test_rfc952_labels(name: str, label: str) -> None:
    assert sanitise_label(name, rfc952=True) == label


@pytest.mark.parametrize(("name", "fqdn_part"), [
    ("marathon", "marathon"),
    ("marathon.prod", "marathon.prod"),  # dots survive: two labels
    ("Marathon..Prod_1.", "marathon.prod-1"),  # empty parts dropped
    ("my framework", "myframework"),
])
def test_framework_names_keep_their_dots(name: str, fqdn_part: str) -> None:
    assert sanitise_framework(name) == fqdn_part


def _zbase32_by_bits(data: bytes) -> str:
    """An independent z-base-32: 5 bits at a time, most significant first."""
    alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(alphabet[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_task_hash_is_five_zbase32_chars_of_sha1(task_id: str) -> None:
    expected = _zbase32_by_bits(hashlib.sha1(task_id.encode()).digest())[:5]
    assert task_hash(task_id) == expected


def test_canonical_label_t_h_s() -> None:
    assert agent_suffix("20231207-0000-S3") == "s3"
    label = canonical_label("web", "web.1", "20231207-0000-S3")
    assert label == f"web-{task_hash('web.1')}-s3"
    assert canonical_label("web", "web.2", "x-S3") != label


@given(st.text(max_size=200), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_valid_label(name: str, rfc952: bool) -> None:
    label = sanitise_label(name, rfc952)
    assert len(label) <= (24 if rfc952 else 63)
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in label)
    assert not label.startswith("-") and not label.endswith("-")
    assert label == label.lower()
    if rfc952:
        assert not label[:1].isdigit()
