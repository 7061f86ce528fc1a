"""``meseta lb``: HAProxy driven from the services scheduler (see meseta.discovery.lb)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console()


def _port_range(value: str) -> str:
    try:
        parse_port_range(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


def parse_port_range(value: str) -> tuple[int, int]:
    """``LOW-HIGH`` (1..65535, LOW <= HIGH): the service ports this LB binds; others are refused per app."""
    low, sep, high = value.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--lb-port-range {value!r} is not LOW-HIGH")
    lo, hi = int(low), int(high)
    if not 1 <= lo <= hi <= 65535:
        raise ValueError(f"--lb-port-range {value!r} must be within 1-65535, LOW <= HIGH")
    return lo, hi


def _groups(values: list[str]) -> list[str]:
    """Each --group must be a name an app's HAPROXY_GROUP label can carry (or *): another matches nothing."""
    from meseta.discovery.lb.labels import GROUP_NAME

    for value in values:
        if not GROUP_NAME.fullmatch(value):
            raise typer.BadParameter(f"{value!r} is not a group name ([A-Za-z0-9_.*-], 1-64)", param_hint="--group")
    return values


def lb(
    marathon: list[str] = typer.Option(["http://127.0.0.1:8080"], help="Services scheduler URL (repeat: tried "
                                       "in order)."),
    group: list[str] = typer.Option(["external"], help="HAPROXY_GROUP(s) this LB serves (repeat; * = every app).",
                                    callback=_groups),
    lb_port_range: str = typer.Option("10000-20000", help="Service ports this LB binds, LOW-HIGH; an app port "
                                      "outside is refused (reported per app).", callback=_port_range),
    haproxy: str = typer.Option("/usr/sbin/haproxy", help="The HAProxy binary (2.6+)."),
    work_dir: Path = typer.Option(Path("/tmp/meseta/lb"), help="HAProxy's config, sockets and state file."),
    bind_addr: str = typer.Option("127.0.0.1", help="Address of every frontend (HAPROXY_{n}_BIND_ADDR overrides)."),
    stats_port: int = typer.Option(None, help="HAProxy stats page port (/haproxy?stats).", min=1, max=65535),
    http_port: int = typer.Option(None, help="Port of the shared frontend routing HAPROXY_{n}_VHOST host names "
                                  "(none: VHOST labels are refused).", min=1, max=65535),
    api_port: int = typer.Option(None, help="Port of the LB's status API (/v1/status).", min=1, max=65535),
    mode: str = typer.Option("runtime", help="runtime: backend changes by the runtime API; reload: every change "
                             "by a seamless reload (for comparison)."),
    slots: int = typer.Option(8, help="Server slots per backend (grown by a reload when exceeded).", min=1, max=1024),
) -> None:
    """Run HAProxy for the apps of GROUP: frontends on their service ports, healthy and ready tasks as servers."""
    from meseta.cli.main import _run
    from meseta.discovery.lb.driver import Options

    if mode not in ("runtime", "reload"):
        raise typer.BadParameter(f"--mode {mode!r} is not runtime or reload")
    if shutil.which(haproxy) is None:
        raise typer.BadParameter(f"--haproxy {haproxy} is not an executable")
    options = Options(marathon=tuple(marathon), groups=tuple(group), work_dir=work_dir.resolve(), haproxy=haproxy,
                      bind_addr=bind_addr, port_range=parse_port_range(lb_port_range), stats_port=stats_port,
                      http_port=http_port, mode=mode, min_slots=slots)
    _run(serve_lb(options, api_port))


def local_lb(work_dir: Path, ip: str, services_url: str, port_range: tuple[int, int], taken: set[int]) -> Any:
    """`meseta local`'s LB (group external, on ``ip``) when haproxy is on PATH, else None; prints its URLs."""
    from meseta.discovery.lb.driver import Driver, Options
    from meseta.runtime.serve import free_port

    binary = shutil.which("haproxy") or (shutil.which("/usr/sbin/haproxy"))
    if binary is None:
        console.print("  lb        (no haproxy on PATH: no load balancer)")
        return None
    stats, http = free_port(ip), free_port(ip)
    taken.update((stats, http))
    driver = Driver(Options(marathon=(services_url,), groups=("external",), work_dir=work_dir / "lb", haproxy=binary,
                            bind_addr=ip, port_range=port_range, stats_port=stats, http_port=http))
    console.print(f"  lb        http://{ip}:{stats}/haproxy?stats   (HAPROXY_GROUP external on service ports "
                  f"{port_range[0]}-{port_range[1]}; vhosts on :{http})")
    return driver


async def serve_lb(options: Any, api_port: int | None) -> None:
    from meseta.discovery.lb.api import build_lb_app
    from meseta.discovery.lb.driver import Driver
    from meseta.runtime.serve import run_together, server

    driver = Driver(options)
    console.print(f"meseta lb ({options.mode} mode) for groups {', '.join(options.groups)} -> "
                  f"{', '.join(options.marathon)}")
    if options.stats_port:
        console.print(f"  HAProxy stats http://{options.bind_addr}:{options.stats_port}/haproxy?stats")
    runs = [asyncio.create_task(driver.run())]
    if api_port:
        runs.append(asyncio.create_task(server(build_lb_app(driver), options.bind_addr, api_port).serve()))
        console.print(f"  status http://{options.bind_addr}:{api_port}/v1/status")
    await run_together(runs)
