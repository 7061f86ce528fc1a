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

import base64
import hashlib

RFC1123_MAX = 63
RFC952_MAX = 24
# z-base-32 (human-oriented base-32) in the order of the standard alphabet it replaces.
_ZBASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"ybndrfg8ejkmcpqxot1uwisza345h769")
_HASH_CHARS = 5  # Mesos-DNS keeps the first 5 characters: enough to tell instances apart


def _mapped(name: str) -> str:
    out = []
    for char in name.lower():
        if ("a" <= char <= "z") or ("0" <= char <= "9"):
            out.append(char)
        elif char in "-._":
            out.append("-")
    return "".join(out)


def sanitise_label(name: str, rfc952: bool = False) -> str:
    """One DNS label from any text ("" when nothing usable is left)."""
    label = _mapped(name)
    if rfc952:
        return label.lstrip("-0123456789")[:RFC952_MAX].rstrip("-")
    return label.lstrip("-")[:RFC1123_MAX].rstrip("-")


def sanitise_framework(name: str, rfc952: bool = False) -> str:
    """A framework name keeps its dots: each part is one label; empty parts are dropped."""
    parts = (sanitise_label(part, rfc952) for part in name.split("."))
    return ".".join(part for part in parts if part)


def task_hash(task_id: str) -> str:
    digest = hashlib.sha1(task_id.encode()).digest()  # a name, not a security hash
    return base64.b32encode(digest).translate(_ZBASE32).decode()[:_HASH_CHARS]


def agent_suffix(agent_id: str) -> str:
    """The last ``-``-separated part of an agent id, lower-cased (``...-S3`` -> ``s3``)."""
    return sanitise_label(agent_id.rsplit("-", 1)[-1])


def canonical_label(task_label: str, task_id: str, agent_id: str) -> str:
    """``T-H-S``: unique per task instance, stable for its life."""
    return f"{task_label}-{task_hash(task_id)}-{agent_suffix(agent_id)}"
