"""The masters' znodes under the ``--zk`` path, as Mesos lays them out (spec 4.1), and who leads.

    <path>/
      json.info_0000000007   EPHEMERAL|SEQUENTIAL, one per contending master: MasterInfo JSON
      json.info_0000000009   the lowest sequence leads; the rest stand by
      log_replicas/          skipped by every detector (Mesos keeps its replicated log here);
        ...                  Meseta keeps its ZooKeeper registry under it (registry.zk_storage)

Detectors also accept the legacy ``info_`` label (binary MasterInfo, which we cannot read and
therefore skip) and ignore any child without a numeric sequence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

CONTENDER_LABEL = "json.info_"
LEGACY_LABEL = "info_"
REGISTRY_CHILD = "log_replicas"


def sequence_of(child: str) -> int | None:
    """The sequence number of a contender znode, or None for anything else."""
    for label in (CONTENDER_LABEL, LEGACY_LABEL):
        if child.startswith(label):
            digits = child[len(label):]
            return int(digits) if digits.isdigit() else None
    return None


def leader_child(children: Iterable[str]) -> str | None:
    """The contender with the lowest sequence (only ``json.info_`` ones carry readable data)."""
    ranked = sorted((seq, child) for child in children if (seq := sequence_of(child)) is not None)
    return ranked[0][1] if ranked else None


def parse_master_info(child: str, data: bytes) -> dict[str, Any] | None:
    """A leader's MasterInfo, or None when it is unreadable (legacy protobuf, bad JSON)."""
    if not child.startswith(CONTENDER_LABEL):
        return None
    try:
        info = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, dict) or "port" not in address or not (address.get("hostname") or address.get("ip")):
        return None
    return dict(info)


def master_address(info: dict[str, Any]) -> str:
    """``host:port`` to reach a master at: the advertised hostname, else its IP."""
    address = info["address"]
    return f"{address.get('hostname') or address['ip']}:{address['port']}"


def encode_master_info(info: dict[str, Any]) -> bytes:
    return json.dumps(info, separators=(",", ":")).encode()
