"""What the agent actor is given besides its options: the seams tests replace.

    Clock       wall-clock seconds: every ``now`` the machine sees, every timer the actor arms
    Launcher    forks processes (``meseta.agent.containerizer.launcher``: posix, failing)
    cgroups     the cgroups/* isolators found on this host, or None
    fetcher     CommandInfo.uris into sandboxes (default: a cache under <work-dir>/fetch)
    load        the 5- and 15-minute load averages the QoS controller compares
    seed        the machine's uuids and container ids (random unless a test fixes it)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from meseta.agent.containerizer.cgroups import CgroupIsolation
from meseta.agent.containerizer.launcher import Launcher
from meseta.agent.fetcher import Fetcher


class Clock(Protocol):
    def time(self) -> float: ...


class WallClock:
    def time(self) -> float:
        return time.time()


def load_averages() -> tuple[float, float]:
    _, five, fifteen = os.getloadavg()
    return five, fifteen


@dataclass
class AgentSeams:
    launcher: Launcher
    clock: Clock = field(default_factory=WallClock)
    cgroups: CgroupIsolation | None = None
    fetcher: Fetcher | None = None
    load: Callable[[], tuple[float, float]] = load_averages
    seed: int | None = None
