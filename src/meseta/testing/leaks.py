"""What a container could leave behind on the host, as a comparable snapshot: network namespaces
(``ip netns list``), links (``ip -o link``: name and bridge master), iptables rules of the nat and
filter tables (``iptables-save``, counters dropped), host-local lease files under given dirs,
mounts (``/proc/self/mountinfo`` mount points under given roots) and cgroups under given roots.

``before.diff(snapshot())`` lists what is new, one ``"<kind>: <item>"`` string each. Some things are
left on purpose and may be allowed by pattern: portmap's shared chains and their hooks
(``PORTMAP_SHARED``) stay after the first container that maps a port, and the bridge plugin's bridge
stays after its last container (allow ``rf"link: {bridge}\\b"``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

COUNTERS = re.compile(r" \S+ \[\d+:\d+\]$")  # ":CHAIN POLICY [packets:bytes]"
KINDS = {"netns": "netns", "links": "link", "iptables": "iptables", "leases": "lease", "mounts": "mount",
         "cgroups": "cgroup"}
PORTMAP_SHARED = (r"^iptables: nat .*CNI-HOSTPORT-(DNAT|SETMARK|MASQ)\b(?!.*CNI-DN-)",)


def _run(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def _netns() -> frozenset[str]:
    return frozenset(line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line.strip())


def _links() -> frozenset[str]:
    links = set()
    for line in _run(["ip", "-o", "link"]).splitlines():
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name = parts[1].split("@", 1)[0]
        master = re.search(r"\bmaster (\S+)", parts[2])
        links.add(f"{name} master {master.group(1)}" if master else name)
    return frozenset(links)


def _iptables() -> frozenset[str]:
    rules = set()
    for table in ("nat", "filter"):
        for line in _run(["iptables-save", "-t", table]).splitlines():
            if line.startswith(("-A", ":")):
                rules.add(f"{table} {COUNTERS.sub('', line)}")
    return frozenset(rules)


def _files(roots: Iterable[Path]) -> frozenset[str]:
    return frozenset(str(p) for root in roots if Path(root).is_dir() for p in Path(root).rglob("*")
                     if p.is_file() and p.name not in ("lock", "last_reserved_ip.0"))


def _mounts(roots: Iterable[Path]) -> frozenset[str]:
    prefixes = [str(Path(root)) for root in roots]
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.add(f"{point} {fields[fields.index('-') + 1]}")
    return frozenset(found)


def _cgroups(roots: Iterable[Path]) -> frozenset[str]:
    return frozenset(str(p) for root in roots if Path(root).is_dir() for p in Path(root).rglob("*") if p.is_dir())


@dataclass(frozen=True)
class Snapshot:
    netns: frozenset[str]
    links: frozenset[str]
    iptables: frozenset[str]
    leases: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]

    def items(self) -> frozenset[str]:
        return frozenset(f"{label}: {item}" for kind, label in KINDS.items() for item in getattr(self, kind))

    def diff(self, later: Snapshot, allow: Iterable[str] = (), mentioning: Iterable[str] = ()) -> list[str]:
        """What ``later`` has that this snapshot has not, minus items matching an ``allow`` pattern;
        with ``mentioning``, only items containing one of those strings (to ignore other users of
        the host)."""
        patterns = [re.compile(p) for p in allow]
        tags = list(mentioning)
        return sorted(item for item in later.items() - self.items()
                      if not any(p.search(item) for p in patterns) and (not tags or any(t in item for t in tags)))


def snapshot(lease_dirs: Iterable[Path] = (), mount_roots: Iterable[Path] = (),
             cgroup_roots: Iterable[Path] = ()) -> Snapshot:
    """The host now; lease files (host-local's per-IP files) under ``lease_dirs``."""
    return Snapshot(_netns(), _links(), _iptables(), _files(lease_dirs), _mounts(mount_roots), _cgroups(cgroup_roots))
