"""One health probe (the I/O half of ``meseta.agent.health``): True when the task answered."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import httpx

from meseta.agent.containerizer.launcher import Launcher, LaunchError, LaunchSpec, ProcessHandle
from meseta.agent.health import HealthPolicy, http_success


async def probe(policy: HealthPolicy, launcher: Launcher, env: Mapping[str, str], cwd: Path,
                host: str = "127.0.0.1") -> bool:
    """Run one check, bounded by the policy's timeout (a timed-out check is a failure); HTTP and TCP
    checks reach ``host`` (the container's own address when the port is not a host port)."""
    try:
        return await asyncio.wait_for(_probe(policy, launcher, env, cwd, host), policy.timeout or None)
    except TimeoutError:
        return False


async def _probe(policy: HealthPolicy, launcher: Launcher, env: Mapping[str, str], cwd: Path, host: str) -> bool:
    if policy.kind == "COMMAND":
        return await _command(policy.command, launcher, env, cwd)
    if policy.kind == "TCP":
        try:
            _, writer = await asyncio.open_connection(host, policy.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    try:
        async with httpx.AsyncClient(verify=False) as client:
            response = await client.get(f"{policy.scheme}://{_url_host(host)}:{policy.port}{policy.path}")
    except httpx.HTTPError:
        return False
    return http_success(response.status_code)


async def _command(command: str, launcher: Launcher, env: Mapping[str, str], cwd: Path) -> bool:
    devnull = Path(os.devnull)
    try:
        spec = LaunchSpec(("/bin/sh", "-c", command), env, cwd, devnull, devnull)
        handle: ProcessHandle = await launcher.launch(spec)
    except LaunchError:
        return False
    try:
        return (await handle.wait()).succeeded
    finally:
        if handle.exit_status is None:  # timed out: the check's processes go
            await handle.terminate(0)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
