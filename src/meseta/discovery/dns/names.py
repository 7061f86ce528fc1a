"""Mesos-DNS names: label sanitising and the canonical per-task label ``T-H-S`` (spec 1.3, 1.4).

    sanitise_label("apiserver.myservice")   -> "apiserver-myservice"   (one label, dots -> '-')
    sanitise_framework("Marathon.Prod")     -> "marathon.prod"         (dots survive: two labels)
    canonical_label("web", "web.1a2b", "20231207-0000-S3") -> "web-<5 z-base-32 chars>-s3"

Per character: upper case is lowered; ``a-z0-9`` are kept; ``-``, ``.`` and ``_`` become ``-``;
everything else is dropped. RFC 1123 labels (the default) hold at most 63 characters with no
leading or trailing ``-``; RFC 952 labels hold at most 24 and also lose leading digits. A cut that
ends on ``-`` loses those hyphens (the label is then shorter than the limit).
"""

from __future__ import annotations

import functools
import hashlib

RFC1123_MAX = 63
RFC952_MAX = 24
_ZBASE32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"  # z-base-32: digit value -> character
LABEL_CACHE = 4096  # app and framework names repeat across many tasks
_HASH_CHARS = 5  # Mesos-DNS keeps the first 5 characters: enough to tell instances apart


def _mapped(name: str) -> str:
    out = []
    for char in name.lower():
        if ("a" <= char <= "z") or ("0" <= char <= "9"):
            out.append(char)
        elif char in "-._":
            out.append("-")
    return "".join(out)


@functools.lru_cache(maxsize=LABEL_CACHE)
def sanitise_label(name: str, rfc952: bool = False) -> str:
    """One DNS label from any text ("" when nothing usable is left)."""
    label = _mapped(name)
    if rfc952:
        return label.lstrip("-0123456789")[:RFC952_MAX].rstrip("-")
    return label.lstrip("-")[:RFC1123_MAX].rstrip("-")


@functools.lru_cache(maxsize=LABEL_CACHE)
def sanitise_framework(name: str, rfc952: bool = False) -> str:
    """A framework name keeps its dots: each part is one label; empty parts are dropped."""
    parts = (sanitise_label(part, rfc952) for part in name.split("."))
    return ".".join(part for part in parts if part)


def task_hash(task_id: str) -> str:
    digest = hashlib.sha1(task_id.encode()).digest()  # a name, not a security hash
    bits = int.from_bytes(digest[:4], "big") >> (32 - 5 * _HASH_CHARS)  # the first 25 bits, 5 at a time
    return "".join(_ZBASE32_ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(_HASH_CHARS)))


def agent_suffix(agent_id: str) -> str:
    """The last ``-``-separated part of an agent id, lower-cased (``...-S3`` -> ``s3``)."""
    return sanitise_label(agent_id.rsplit("-", 1)[-1])


def canonical_label(task_label: str, task_id: str, agent_id: str) -> str:
    """``T-H-S``: unique per task instance, stable for its life."""
    return f"{task_label}-{task_hash(task_id)}-{agent_suffix(agent_id)}"
