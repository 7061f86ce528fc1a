"""A CNI bridge network of a test's own, for agents started by the test: its own bridge device,
subnet, IPAM directory and netns prefix, so that what it leaves behind can be told apart from
anything else on the host.

    with BridgeNetwork(tmp_path) as net:          # <tmp>/cni/mesos-bridge.conflist, bridge mb<pid><n>b
        LocalCluster(..., agent_options=net.agent_options())
        ...
        assert net.leaks() == []                  # no netns, veth, iptables rule, lease or mount of ours

The bridge device itself is deleted on close (the CNI bridge plugin keeps it after the last DEL).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from meseta.agent.containerizer.cni_config import default_bridge_network
from meseta.testing.leaks import PORTMAP_SHARED, Snapshot, snapshot

PLUGINS = Path("/usr/lib/cni")
_COUNTER = itertools.count()


def answer(url: str) -> str | None:
    """What a container serves at ``url`` (a 200's body), or None: not up, refused, or another status."""
    try:
        with httpx.Client(trust_env=False, timeout=2) as client:
            response = client.get(url)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def cni_available() -> bool:
    return os.geteuid() == 0 and (PLUGINS / "bridge").exists() and (PLUGINS / "portmap").exists()


class BridgeNetwork:
    def __init__(self, tmp: Path, name: str = "mesos-bridge") -> None:
        serial = next(_COUNTER)
        self.tag = f"mb{os.getpid() % 10000}{serial}"
        self.bridge = f"{self.tag}b"
        a, b = 200 + os.getpid() % 30, (os.getpid() // 30 + 7 * serial) % 250
        self.subnet_prefix = f"10.{a}.{b}."
        self.dir = tmp / f"net-{self.tag}"
        self.config_dir = self.dir / "cni"
        self.lease_dir = self.dir / "ipam"
        self.config_dir.mkdir(parents=True)
        config = default_bridge_network(name, self.bridge, f"{self.subnet_prefix}0/24", str(self.lease_dir))
        (self.config_dir / f"{name}.conflist").write_text(json.dumps(config, indent=2))
        self.before = self.snapshot()

    def agent_options(self, cgroups: bool = False) -> dict[str, Any]:
        """AgentOptions for this network; ``cgroups``: cpu/mem/pids cgroups under a root of ours."""
        options: dict[str, Any] = {"network_cni_config_dir": self.config_dir, "network_cni_plugins_dir": PLUGINS}
        if cgroups:
            options.update(isolation="cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid", cgroups_root=self.tag)
        return options

    def snapshot(self) -> Snapshot:
        return snapshot(lease_dirs=[self.lease_dir], mount_roots=[self.dir.parent],
                        cgroup_roots=[root / self.tag for root in Path("/sys/fs/cgroup").iterdir()])

    def leaks(self, mentioning: tuple[str, ...] = ()) -> list[str]:
        """What is new since the network was made and is ours: namespaces of Meseta's agents,
        veths on our bridge, iptables rules of our subnet, leases, mounts under the test's dir."""
        return self.before.diff(self.snapshot(), allow=[*PORTMAP_SHARED, rf"^link: {self.bridge}$",
                                                        rf"^cgroup: /sys/fs/cgroup/\w+/{self.tag}$"],
                                mentioning=[self.bridge, self.subnet_prefix, "meseta-", str(self.dir.parent),
                                            f"/{self.tag}/", *mentioning])

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        for root in Path("/sys/fs/cgroup").iterdir():  # the agents' cgroup roots (empty once they stopped)
            with contextlib.suppress(OSError):
                (root / self.tag).rmdir()

    def __enter__(self) -> BridgeNetwork:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
