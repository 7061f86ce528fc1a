"""disk/du: the quota leaves persistent volumes out; only usage above it is a limitation."""

from __future__ import annotations

from pathlib import Path

from meseta.agent.disk_quota import disk_limitation, quota_bytes
from meseta.agent.paths import disk_usage
from meseta.core.resources import Resources

VOLUME = {"name": "disk", "type": "SCALAR", "scalar": {"value": 100}, "role": "db",
          "reservations": [{"type": "DYNAMIC", "role": "db"}],
          "disk": {"persistence": {"id": "v1"}, "volume": {"container_path": "data", "mode": "RW"}}}


def test_quota_excludes_volumes() -> None:
    plain = Resources.parse("cpus:1;disk:10")
    assert quota_bytes(plain) == 10 << 20
    assert quota_bytes(plain + Resources.from_json([VOLUME])) == 10 << 20
    assert quota_bytes(Resources.parse("cpus:1")) is None


def test_only_usage_over_the_quota_is_a_limitation() -> None:
    assert disk_limitation(10 << 20, 10 << 20) is None
    assert disk_limitation(10 << 20, None) is None
    assert disk_limitation(12 << 20, 10 << 20) == "Disk usage (12.0MB) exceeds quota (10.0MB)"


def test_usage_counts_files_not_linked_volumes(tmp_path: Path) -> None:
    sandbox, volume = tmp_path / "sandbox", tmp_path / "volume"
    (sandbox / "sub").mkdir(parents=True)
    volume.mkdir()
    (sandbox / "sub" / "data").write_bytes(b"x" * (1 << 20))
    (volume / "big").write_bytes(b"x" * (4 << 20))
    (sandbox / "data").symlink_to(volume)
    assert (1 << 20) <= disk_usage(sandbox) < (2 << 20)
