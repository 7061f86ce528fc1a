"""``meseta``: run a master, an agent, or a whole local cluster on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from meseta import __version__
from meseta.cli.run_lb import _port_range, lb, local_lb, parse_port_range

if TYPE_CHECKING:
    from meseta.agent.options import AgentOptions
    from meseta.jobs.daemon import JobsOptions
    from meseta.master.daemon import MasterOptions
    from meseta.runtime.kv_store import ZooKeeperKvStore
    from meseta.services.daemon import ServicesOptions

app = typer.Typer(
    help="Meseta: a datacenter resource manager, wire-compatible with the Apache Mesos v1 APIs.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _checked_by(parse: Callable[[str], object]) -> Callable[[str | None], str | None]:
    """A typer callback: the flag's value, or a usage error with the parser's message."""

    def check(value: str | None) -> str | None:
        if value:
            try:
                parse(value)
            except ValueError as exc:  # ResourceError is a ValueError
                raise typer.BadParameter(str(exc)) from None
        return value

    return check


# Each parser is imported when its flag is given, so that a command loads only what it runs
# (`meseta version` loads no daemon).
def _resources(value: str) -> object:
    from meseta.core.resources import Resources

    return Resources.parse(value)


def _attributes(value: str) -> object:
    from meseta.core.resources import parse_attributes

    return parse_attributes(value)


def _isolation(value: str) -> object:
    from meseta.agent.containerizer.cgroup_limits import parse_isolation

    return parse_isolation(value)


def _weights(value: str) -> object:
    from meseta.protocol.flags import parse_weights_flag

    return parse_weights_flag(value)


def _percentage(value: str) -> float:
    from meseta.protocol.flags import parse_percentage

    return parse_percentage(value)


def _rate_limit(value: str) -> object:
    from meseta.protocol.flags import parse_rate_limit

    return parse_rate_limit(value)


def _zk_url(value: str) -> object:
    from meseta.runtime.zk import parse_zk_url

    return parse_zk_url(value)


def _recover_mode(value: str) -> str:
    if value not in ("reconnect", "cleanup"):
        raise ValueError(f"--recover: '{value}' is not one of reconnect, cleanup")
    return value


def _network_name(value: str) -> str:
    if not value or value != value.strip() or "/" in value:
        raise ValueError(f"--mesos-bridge-name: '{value}' is not a CNI network name")
    return value


_check_resources = _checked_by(_resources)
_check_recover = _checked_by(_recover_mode)
_check_isolation = _checked_by(_isolation)
_check_weights = _checked_by(_weights)
_check_attributes = _checked_by(_attributes)
_check_zk = _checked_by(_zk_url)


def _check_network_name(value: str) -> str:
    """Even an empty value is checked: a NetworkInfo without name would mean the host network."""
    try:
        return _network_name(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _run(main: object) -> None:
    from meseta.runtime.serve import tune_gc

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tune_gc()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_signalled(main))


async def _until_signalled(main: object) -> None:
    task = asyncio.ensure_future(main)  # type: ignore[call-overload]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


@app.command()
def master(
    ip: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(5050, help="Port to listen on."),
    work_dir: Path = typer.Option(Path("/tmp/meseta/master"), help="Directory for the registry (SQLite)."),
    hostname: str = typer.Option(None, help="Hostname to advertise (default: the ip)."),
    allocation_interval: float = typer.Option(1.0, help="Seconds between batch allocations."),
    agent_ping_timeout: float = typer.Option(15.0, help="Seconds between pings to each agent."),
    max_agent_ping_timeouts: int = typer.Option(5, help="Missed pongs before an agent is removed."),
    weights: str = typer.Option("", help='Role weights, e.g. "eng=3,ads=1" (the operator API overrides).',
                                callback=_check_weights),
    role_sorter: str = typer.Option("drf", help="drf or random (must equal --framework-sorter)."),
    framework_sorter: str = typer.Option("drf", help="drf or random (must equal --role-sorter)."),
    offer_timeout: float = typer.Option(None, help="Seconds after which unused offers are rescinded."),
    zk: str = typer.Option(None, help="zk://host:port,.../path: elect a leader among masters and keep the "
                           "registry in ZooKeeper (default: standalone, registry in SQLite).",
                           callback=_check_zk),
    quorum: int = typer.Option(None, help="Required with --zk: a majority of the masters.", min=1),
    zk_session_timeout: float = typer.Option(10.0, help="ZooKeeper session timeout (s).", min=0.5),
    agent_reregister_timeout: float = typer.Option(
        600.0, help="After a failover, seconds agents have to re-register before they are marked unreachable.",
        min=0.1),
    recovery_agent_removal_limit: str = typer.Option(
        "100%", help="After a failover, the most recovered agents that may be marked unreachable; beyond it "
        "the master exits.", callback=_checked_by(_percentage)),
    agent_removal_rate_limit: str = typer.Option(
        None, help='Pace agents marked unreachable, e.g. "1/10mins" (default: no limit).',
        callback=_checked_by(_rate_limit)),
    max_operator_event_stream_subscribers: int = typer.Option(
        1000, help="Operator event stream subscribers (SUBSCRIBE on /api/v1) at most; beyond it the oldest is "
        "cut off.", min=1),
) -> None:
    """Run a master: the scheduler API, the agent endpoint and the state endpoints."""
    if role_sorter not in ("drf", "random") or role_sorter != framework_sorter:
        raise typer.BadParameter("--role-sorter and --framework-sorter must both be drf or both be random")
    if zk and quorum is None:
        raise typer.BadParameter("--quorum is required with --zk")
    from meseta.master.daemon import MasterOptions

    options = MasterOptions(ip, port, work_dir, hostname, allocation_interval, agent_ping_timeout,
                            max_agent_ping_timeouts, weights, role_sorter, framework_sorter, offer_timeout,
                            zk=zk, quorum=quorum, zk_session_timeout=zk_session_timeout,
                            agent_reregister_timeout=agent_reregister_timeout,
                            recovery_agent_removal_limit=_percentage(recovery_agent_removal_limit),
                            agent_removal_rate_limit=agent_removal_rate_limit,
                            max_operator_event_stream_subscribers=max_operator_event_stream_subscribers)
    _run(_serve_master(options))


async def _serve_master(options: MasterOptions) -> None:
    if options.zk:
        from meseta.master.election import HaMaster

        console.print(f"meseta master {__version__} on http://{options.ip}:{options.port}, contending in {options.zk}")
        await HaMaster(options).serve()
        return
    from meseta.master.daemon import build_master
    from meseta.runtime.serve import server

    actor, asgi = build_master(options)
    actor.run(actor.machine.handle_start)
    console.print(f"meseta master {__version__} on http://{options.ip}:{options.port}")
    try:
        await server(asgi, options.ip, options.port).serve()
    finally:
        await actor.stop()


def _check_docker_config(value: Path | None) -> Path | None:
    from meseta.agent.containerizer.images import ImageError, read_docker_config

    if value is not None:
        try:
            read_docker_config(value)
        except ImageError as exc:
            raise typer.BadParameter(str(exc), param_hint="--docker-config") from None
    return value


def _docker_config_option() -> Any:
    """``--docker-config`` of ``meseta agent`` and ``meseta local``: read (and refused by name) at start."""
    return typer.Option(None, help="Docker config.json with registry credentials (auths).",
                        callback=_check_docker_config, exists=True, dir_okay=False)


@app.command()
def agent(
    master: str = typer.Option(..., help="The master as HOST:PORT, or zk://host:port,.../path to follow the "
                               "leading master."),
    ip: str = typer.Option("127.0.0.1", help="Address to listen on (executors connect here)."),
    port: int = typer.Option(5051, help="Port to listen on."),
    work_dir: Path = typer.Option(Path("/tmp/meseta/agent"), help="Directory for sandboxes."),
    resources: str = typer.Option(None, help='e.g. "cpus:4;mem:4096;ports:[31000-32000]"; the rest is detected.',
                                  callback=_check_resources),
    attributes: str = typer.Option("", help='e.g. "rack:a;zone:west".', callback=_check_attributes),
    hostname: str = typer.Option(None, help="Hostname to advertise (default: the ip)."),
    switch_user: bool = typer.Option(True, help="Run tasks as the framework's user when we are root."),
    oversubscribed_resources: str = typer.Option(
        "", help='A fixed estimate offered as revocable, e.g. "cpus:2".', callback=_check_resources),
    qos_load_threshold_5min: float = typer.Option(
        None, "--qos-load-threshold-5min", help="Preempt revocable executors while the 5-minute load exceeds this.",
        min=0),
    qos_load_threshold_15min: float = typer.Option(
        None, "--qos-load-threshold-15min", help="Preempt revocable executors while the 15-minute load exceeds this.",
        min=0),
    qos_correction_interval: float = typer.Option(1.0, help="Seconds between QoS load checks.", min=0.05),
    isolation: str = typer.Option("posix/cpu,posix/mem", help="Isolators: posix/cpu, posix/mem, cgroups/cpu, "
                                  "cgroups/mem, cgroups/pids, namespaces/pid, disk/du.", callback=_check_isolation),
    cgroups_root: str = typer.Option("meseta", help="Name of the cgroup under each hierarchy that holds containers."),
    cgroups_enable_cfs: bool = typer.Option(False, help="Cap CPU time at the cpus requested (CFS quota)."),
    cgroups_limit_pids: int = typer.Option(None, help="pids.max of each container (cgroups/pids).", min=1),
    fetcher_cache_dir: Path = typer.Option(None, help="Where cached downloads go (default: <work-dir>/fetch)."),
    fetcher_cache_size: int = typer.Option(2 * 1024**3, help="Bytes of cached downloads to keep.", min=0),
    gc_delay: float = typer.Option(7 * 24 * 3600.0, help="Seconds a finished sandbox is kept on an empty disk.",
                                   min=0),
    gc_disk_headroom: float = typer.Option(0.1, help="Disk fraction kept free: sandboxes go sooner as it fills.",
                                           min=0, max=1),
    disk_watch_interval: float = typer.Option(60.0, help="Seconds between disk checks for garbage collection.",
                                              min=0.05),
    enforce_container_disk_quota: bool = typer.Option(False, help="disk/du: destroy containers over their disk."),
    container_disk_watch_interval: float = typer.Option(15.0, help="disk/du: seconds between sandbox checks.",
                                                        min=0.05),
    docker_registry: str = typer.Option(None, help="Default registry URL (http(s)://HOST[:PORT]) or a directory of "
                                        "image tarballs (docker-archive or OCI) named NAME:TAG.tar."),
    docker_config: Path = _docker_config_option(),
    docker_store_dir: Path = typer.Option(None, help="Image layer store (default: <work-dir>/provisioner)."),
    docker_insecure_registry: list[str] = typer.Option(
        [], help="HOST[:PORT] of a registry pulled over plain HTTP (repeatable)."),
    image_gc: str = typer.Option(None, help="Bytes of images to keep, e.g. 2GB (least recently used go first)."),
    network_cni_config_dir: Path = typer.Option(None, help="Directory of CNI network configs (single-plugin "
                                                "files or .conflist lists): turns on the network/cni isolator."),
    network_cni_plugins_dir: Path = typer.Option(None, help="Where the CNI plugin binaries are (default "
                                                 "/usr/lib/cni when a config dir is given)."),
    docker_bridge_network: str = typer.Option("mesos-bridge", help="The CNI network that a DOCKER container's "
                                              "BRIDGE network joins."),
    executor_reregistration_timeout: float = typer.Option(
        2.0, help="After a restart, seconds a custom executor has to subscribe again.", min=0.1),
    recover: str = typer.Option("reconnect", help="After a restart: reconnect (find the tasks again) or "
                                "cleanup (kill what the previous run left).", callback=_check_recover),
    status_update_retry_min: float = typer.Option(10.0, help="First resend of an unacknowledged update (s).",
                                                  min=0.01),
    status_update_retry_max: float = typer.Option(600.0, help="Longest wait between resends (s); doubling.",
                                                  min=0.01),
) -> None:
    """Run an agent that registers with MASTER and runs the tasks it is given."""
    from meseta.agent.options import AgentOptions

    options = AgentOptions(master, ip, port, work_dir, resources, attributes, hostname, switch_user,
                           oversubscribed_resources=oversubscribed_resources or "",
                           qos_load_threshold_5min=qos_load_threshold_5min,
                           qos_load_threshold_15min=qos_load_threshold_15min,
                           qos_correction_interval=qos_correction_interval, isolation=isolation,
                           cgroups_root=cgroups_root, cgroups_enable_cfs=cgroups_enable_cfs,
                           cgroups_limit_pids=cgroups_limit_pids, fetcher_cache_dir=fetcher_cache_dir,
                           fetcher_cache_size=fetcher_cache_size, gc_delay=gc_delay,
                           gc_disk_headroom=gc_disk_headroom, disk_watch_interval=disk_watch_interval,
                           enforce_container_disk_quota=enforce_container_disk_quota,
                           container_disk_watch_interval=container_disk_watch_interval,
                           docker_registry=_registry_option(docker_registry), docker_config=docker_config,
                           docker_store_dir=docker_store_dir,
                           docker_insecure_registry=tuple(docker_insecure_registry),
                           image_gc=_size_option("--image-gc", image_gc),
                           network_cni_config_dir=network_cni_config_dir,
                           network_cni_plugins_dir=network_cni_plugins_dir,
                           docker_bridge_network=docker_bridge_network,
                           executor_reregistration_timeout=executor_reregistration_timeout, recover=recover,
                           status_update_retry_min=status_update_retry_min,
                           status_update_retry_max=status_update_retry_max)
    _run(_serve_agent(options))


def _registry_option(value: str | None) -> Path | str | None:
    if value is None or value.startswith(("http://", "https://")):
        return value
    if "://" in value:
        raise typer.BadParameter(f"'{value}': a registry URL must be http:// or https://",
                                 param_hint="--docker-registry")
    return Path(value)


def _size_option(flag: str, value: str | None) -> int | None:
    from meseta.agent.containerizer.image_refs import parse_size

    try:
        return None if value is None else parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


async def _serve_agent(options: AgentOptions) -> None:
    from meseta.agent.daemon import build_agent, run_agent

    node, asgi = build_agent(options)
    console.print(f"meseta agent {__version__} on http://{options.ip}:{options.port} -> master {options.master}")
    await run_agent(node, asgi, options.ip, options.port)


@app.command()
def local(
    work_dir: Path = typer.Option(Path("./work"), help="Directory for the registry and the agents' sandboxes."),
    ip: str = typer.Option("127.0.0.1", help="Address for every server."),
    port: int = typer.Option(5050, help="The master's port; agents take the next free ports."),
    agents: int = typer.Option(3, help="How many agents to run."),
    agent_resources: str = typer.Option("cpus:2;mem:2048;disk:4096;ports:[31000-32000]",
                                        help="Resources of each agent (port ranges are split among them: "
                                        "they share this host).", callback=_check_resources),
    switch_user: bool = typer.Option(False, help="Run tasks as the framework's user."),
    isolation: str = typer.Option("posix/cpu,posix/mem", help="The agents' isolators (see `meseta agent --help`).",
                                  callback=_check_isolation),
    services_port: int = typer.Option(8080, help="Port of the Marathon-compatible services API (0: none)."),
    jobs_port: int = typer.Option(4400, help="Port of the Chronos-compatible jobs API (0: none)."),
    network_cni_config_dir: Path = typer.Option(None, help="The agents' CNI network configs (default: "
                                                "<work-dir>/cni with the bridge network mesos-bridge)."),
    network_cni_plugins_dir: Path = typer.Option(None, help="Where the CNI plugin binaries are (default "
                                                 "/usr/lib/cni)."),
    cni: bool = typer.Option(True, help="Give the agents CNI networks (--no-cni: host networking only)."),
    docker_registry: str = typer.Option(None, help="The agents' default image registry URL (default: Docker Hub) "
                                        "or a directory of image tarballs."),
    docker_config: Path = _docker_config_option(),
    image_gc: str = typer.Option(None, help="Bytes of images each agent keeps, e.g. 2GB."),
    dns_port: int = typer.Option(8053, help="Port of the Mesos-DNS server, UDP and TCP (0: none); its HTTP API "
                                 "takes the next free port from 8123."),
    lb_port_range: str = typer.Option("10000-20000", help="Service ports the built-in `meseta lb` binds (it runs "
                                      "when haproxy is on PATH and the services API is on).", callback=_port_range),
) -> None:
    """Run a master, AGENTS agents, the services and the jobs schedulers on one event loop: a whole cluster here."""
    work_dir = work_dir.resolve()
    cni_dir = (network_cni_config_dir or _default_cni_configs(work_dir)) if cni else None
    images = {"docker_registry": _registry_option(docker_registry), "docker_config": docker_config,
              "image_gc": _size_option("--image-gc", image_gc)}
    _run(_serve_local(work_dir, ip, port, agents, agent_resources, switch_user, isolation, services_port,
                      jobs_port, cni_dir, network_cni_plugins_dir if cni else None, images, dns_port,
                      lb_port_range=parse_port_range(lb_port_range)))


def _default_cni_configs(work_dir: Path) -> Path:
    """<work-dir>/cni/mesos-bridge.conflist (bridge meseta0, 10.220.0.0/16), written once: edits are kept."""
    from meseta.agent.containerizer.cni_config import default_bridge_network

    config_dir = work_dir / "cni"
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "mesos-bridge.conflist"
    if not path.exists():
        network = default_bridge_network(data_dir=str(work_dir / "network" / "ipam"))
        path.write_text(json.dumps(network, indent=2) + "\n")
    return config_dir


def _next_free_port(ip: str, start: int, taken: set[int]) -> int:
    candidate = start
    while True:
        if candidate not in taken:
            with socket.socket() as sock:
                try:
                    sock.bind((ip, candidate))
                    return candidate
                except OSError:
                    pass
        candidate += 1


async def _serve_local(work_dir: Path, ip: str, port: int, count: int, resources: str, switch_user: bool,
                       isolation: str = "posix/cpu,posix/mem", services_port: int = 0, jobs_port: int = 0,
                       cni_config_dir: Path | None = None, cni_plugins_dir: Path | None = None,
                       images: dict[str, Any] | None = None, dns_port: int = 0,
                       lb_port_range: tuple[int, int] | None = None) -> None:
    from meseta.agent.daemon import build_agent, run_agent
    from meseta.agent.options import AgentOptions
    from meseta.core.resources import Resources, share_of_ranges
    from meseta.master.daemon import MasterOptions, build_master
    from meseta.runtime.serve import run_together, server

    actor, master_app = build_master(MasterOptions(ip, port, work_dir / "master"))
    actor.run(actor.machine.handle_start)
    master_server = server(master_app, ip, port)
    runs = [asyncio.create_task(master_server.serve())]
    taken = {port}
    console.print(f"[bold]meseta local[/bold] {__version__}")
    console.print(f"  master    http://{ip}:{port}   (state: http://{ip}:{port}/master/state)")
    for index in range(count):
        agent_port = _next_free_port(ip, port + 1 + index, taken)
        taken.add(agent_port)
        mine = share_of_ranges(Resources.parse(resources), index, count).to_text()  # one host: ports split
        options = AgentOptions(f"{ip}:{port}", ip, agent_port, work_dir / f"agent{index}", mine,
                               f"index:{index}", None, switch_user, isolation=isolation,
                               network_cni_config_dir=cni_config_dir, network_cni_plugins_dir=cni_plugins_dir,
                               **(images or {}))
        node, agent_app = build_agent(options)
        runs.append(asyncio.create_task(run_agent(node, agent_app, ip, agent_port)))
        console.print(f"  agent {index}   http://{ip}:{agent_port}")
    services_actor = None
    if services_port:
        from meseta.services.daemon import ServicesOptions, build_services

        services_port = _next_free_port(ip, services_port, taken)
        taken.add(services_port)
        services_actor, services_app = build_services(ServicesOptions(f"{ip}:{port}", ip, services_port,
                                                                      work_dir / "services"))
        await services_actor.start()
        runs.append(asyncio.create_task(server(services_app, ip, services_port).serve()))
        console.print(f"  services  http://{ip}:{services_port}   (Marathon API: /v2/apps, /v2/deployments, ...)")
        services_url = f"http://{ip}:{services_port}"
        if lb_port_range is not None and (balancer := local_lb(work_dir, ip, services_url, lb_port_range, taken)):
            runs.append(asyncio.create_task(balancer.run()))
    jobs_actor = None
    if jobs_port:
        from meseta.jobs.daemon import JobsOptions, build_jobs

        jobs_port = _next_free_port(ip, jobs_port, taken)
        taken.add(jobs_port)
        jobs_actor, jobs_app = build_jobs(JobsOptions(f"{ip}:{port}", ip, jobs_port, work_dir / "jobs"))
        await jobs_actor.start()
        runs.append(asyncio.create_task(server(jobs_app, ip, jobs_port).serve()))
        console.print(f"  jobs      http://{ip}:{jobs_port}   (Chronos API: /v1/scheduler/jobs, /v1/scheduler/iso8601)")
    if dns_port:
        runs.append(asyncio.create_task(_local_dns(ip, port, dns_port, taken)))
    console.print(f"  frameworks: point pymesos (or any Mesos v1 client) at {ip}:{port}")
    try:
        await run_together(runs)
    finally:
        if jobs_actor is not None:
            await jobs_actor.stop()
        if services_actor is not None:
            await services_actor.stop()
        await actor.stop()


async def _local_dns(ip: str, master_port: int, dns_port: int, taken: set[int]) -> None:
    """`meseta local`'s DNS server, on the first free ports from ``dns_port`` (DNS) and 8123 (HTTP API):
    another process may take a port between the check and the bind, so a bind error tries the next."""
    from meseta.discovery.dns.daemon import running
    from meseta.discovery.dns.flags import build_options

    if not 0 < dns_port < 65536:
        raise typer.BadParameter(f"--dns-port {dns_port} is not a port (1-65535, or 0 for no DNS server)")
    http_port = 8123
    for _ in range(LOCAL_DNS_BIND_ATTEMPTS):
        dns_port = _next_free_port(ip, dns_port, taken)
        http_port = _next_free_port(ip, http_port, taken | {dns_port})
        try:
            async with running(build_options(f"{ip}:{master_port}", listen=ip, port=dns_port,
                                             http_port=http_port)) as daemon:
                taken.update((dns_port, http_port))
                console.print(f"  dns       {ip}:{dns_port} (udp, tcp; domain meseta.)   "
                              f"HTTP API http://{ip}:{http_port}")
                await daemon.feeding
                return
        except OSError:
            dns_port, http_port = dns_port + 1, http_port + 1
    raise OSError(f"meseta local: no free DNS port after {LOCAL_DNS_BIND_ATTEMPTS} tries")


LOCAL_DNS_BIND_ATTEMPTS = 20  # ports taken by others between our check and our bind


@app.command()
def services(
    master: str = typer.Option("127.0.0.1:5050", help="The master as HOST:PORT, or zk://.../path."),
    ip: str = typer.Option("127.0.0.1", help="Address for the REST API."),
    port: int = typer.Option(8080, help="Port for the REST API (Marathon's default)."),
    work_dir: Path = typer.Option(Path("/tmp/meseta/services"), help="Directory for the state (SQLite)."),
    framework_name: str = typer.Option("marathon", help="The framework's name at the master."),
    role: str = typer.Option("*", help="The role the framework subscribes with."),
    deployment_stall_timeout: float = typer.Option(
        None, help="Report a deployment that makes no progress for this many seconds (and roll it back when "
        "its app has the label MESETA_ROLLBACK_ON_STALL=true).", min=1),
    zk: str = typer.Option(None, help="zk://host:port,.../path: elect a leader among services instances and "
                           "keep the state in ZooKeeper (default: one instance, state in SQLite).",
                           callback=_check_zk),
    zk_session_timeout: float = typer.Option(10.0, help="ZooKeeper session timeout (s).", min=0.5),
    min_revive_offers_interval: float = typer.Option(
        1.0, help="At most one REVIVE per this many seconds: new launches wanted meanwhile wait for it "
        "(Marathon's --min_revive_offers_interval, 5 s there, in seconds here).", min=0),
    mesos_bridge_name: str = typer.Option(
        "mesos-bridge", help="The CNI network that MESOS containers in container/bridge mode join (Marathon's "
        "--mesos_bridge_name); the agents must have a CNI network of that name.", callback=_check_network_name),
) -> None:
    """Run the Marathon-compatible service scheduler: apps, deployments, health checks, /v2 API."""
    from meseta.services.daemon import ServicesOptions

    options = ServicesOptions(master, ip, port, work_dir, framework_name, role, zk=zk,
                              zk_session_timeout=zk_session_timeout,
                              deployment_stall_timeout=deployment_stall_timeout,
                              min_revive_offers_interval=min_revive_offers_interval,
                              mesos_bridge_name=mesos_bridge_name)
    _run(_serve_services(options))


async def _serve_services(options: ServicesOptions) -> None:
    from meseta.runtime.serve import server
    from meseta.services.daemon import build_services

    if options.zk:
        from meseta.runtime.framework_election import HaFramework
        from meseta.services.effects import KINDS

        async def build(store: ZooKeeperKvStore) -> tuple[Any, Any]:
            return build_services(options, store)

        console.print(f"meseta services {__version__} on http://{options.ip}:{options.port}, "
                      f"contending in {options.zk}")
        await HaFramework("services", options.zk, options.ip, options.port, KINDS, build,
                          session_timeout=options.zk_session_timeout, redirected=("/v2/events",)).serve()
        return
    actor, asgi = build_services(options)
    await actor.start()
    console.print(f"meseta services {__version__} on http://{options.ip}:{options.port} -> master {options.master}")
    try:
        await server(asgi, options.ip, options.port).serve()
    finally:
        await actor.stop()


@app.command()
def jobs(
    master: str = typer.Option("127.0.0.1:5050", help="The master as HOST:PORT, or zk://.../path."),
    ip: str = typer.Option("127.0.0.1", help="Address for the REST API."),
    port: int = typer.Option(4400, help="Port for the REST API (Chronos's default)."),
    work_dir: Path = typer.Option(Path("/tmp/meseta/jobs"), help="Directory for the state (SQLite)."),
    framework_name: str = typer.Option("chronos", help="The framework's name at the master."),
    role: str = typer.Option("*", help="The role the framework subscribes with."),
    user: str = typer.Option("root", help="The user runs of jobs without runAsUser run as (Chronos's --user)."),
    zk: str = typer.Option(None, help="zk://host:port,.../path: elect a leader among jobs instances and keep the "
                           "state in ZooKeeper (default: one instance, state in SQLite).", callback=_check_zk),
    zk_session_timeout: float = typer.Option(10.0, help="ZooKeeper session timeout (s).", min=0.5),
    task_epsilon: float = typer.Option(60.0, help="How late (s) a due run may still start; later, it is recorded "
                                       "as missed (Chronos's --task_epsilon; a job's epsilon overrides it).", min=0),
    mesos_task_cpu: float = typer.Option(0.1, help="CPUs of a run whose job asks for 0.", min=0.001),
    mesos_task_mem: float = typer.Option(128.0, help="Memory (MB) of a run whose job asks for 0.", min=1),
    mesos_task_disk: float = typer.Option(256.0, help="Disk (MB) of a run whose job asks for 0.", min=0),
) -> None:
    """Run the Chronos-compatible job scheduler: ISO 8601 and cron schedules, dependent jobs, /v1/scheduler API."""
    from meseta.jobs.daemon import JobsOptions

    options = JobsOptions(master, ip, port, work_dir, framework_name, role, user, zk=zk,
                          zk_session_timeout=zk_session_timeout, task_epsilon=task_epsilon, task_cpus=mesos_task_cpu,
                          task_mem=mesos_task_mem, task_disk=mesos_task_disk)
    _run(_serve_jobs(options))


async def _serve_jobs(options: JobsOptions) -> None:
    from meseta.jobs.daemon import build_jobs
    from meseta.runtime.serve import server

    if options.zk:
        from meseta.jobs.effects import KINDS
        from meseta.runtime.framework_election import HaFramework

        async def build(store: ZooKeeperKvStore) -> tuple[Any, Any]:
            return build_jobs(options, store)

        console.print(f"meseta jobs {__version__} on http://{options.ip}:{options.port}, contending in {options.zk}")
        await HaFramework("jobs", options.zk, options.ip, options.port, KINDS, build,
                          session_timeout=options.zk_session_timeout).serve()
        return
    actor, asgi = build_jobs(options)
    await actor.start()
    console.print(f"meseta jobs {__version__} on http://{options.ip}:{options.port} -> master {options.master}")
    try:
        await server(asgi, options.ip, options.port).serve()
    finally:
        await actor.stop()


@app.command()
def dns(
    master: str = typer.Option("127.0.0.1:5050", help="The masters as HOST:PORT[,HOST:PORT...] (asked in turn; a "
                               "standby redirects to the leader), or zk://host:port,.../path to follow the leader."),
    domain: str = typer.Option("meseta", help="The domain served (Mesos-DNS's 'domain')."),
    listen: str = typer.Option("127.0.0.1", help="Address of the DNS (UDP and TCP) and HTTP servers."),
    port: int = typer.Option(8053, help="DNS port, UDP and TCP."),
    http_port: int = typer.Option(8123, help="Port of the HTTP API (/v1/hosts, /v1/services, ...)."),
    ttl: int = typer.Option(5, help="TTL (s) of every answer."),
    resolver: list[str] = typer.Option(None, help="Upstream for names outside the domain, IP or IP:PORT "
                                       "(repeatable, tried in order); none: such queries are REFUSED."),
    ip_sources: str = typer.Option("netinfo,mesos,host", help="Where a task's IPs come from, in priority order "
                                   "(netinfo, mesos, docker, host)."),
    enforce_rfc952: bool = typer.Option(False, help="RFC 952 labels (24 chars, no leading digits)."),
    truncate_bit: bool = typer.Option(True, help="Set TC on truncated UDP answers (--no-truncate-bit for clients "
                                      "that mishandle it)."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for an upstream resolver."),
) -> None:
    """Serve Mesos-DNS names (A, SRV, leader, agents) pushed live from the master's operator event stream."""
    from meseta.discovery.dns.flags import build_options

    try:
        options = build_options(master, domain=domain, listen=listen, port=port, http_port=http_port, ttl=ttl,
                                resolvers=resolver or [], ip_sources=ip_sources, enforce_rfc952=enforce_rfc952,
                                set_truncate_bit=truncate_bit, timeout=timeout)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _run(_serve_dns(options))


async def _serve_dns(options: Any) -> None:
    from meseta.discovery.dns.daemon import running

    async with running(options) as daemon:
        console.print(f"meseta dns {__version__} on {options.listen}:{options.port} (udp, tcp), HTTP API "
                      f"http://{options.listen}:{options.http_port}, domain {options.domain}.")
        await daemon.feeding


@app.command()
def version() -> None:
    """Print Meseta's version and the Mesos API version it speaks."""
    from meseta import MESOS_COMPAT_VERSION

    console.print(f"meseta {__version__} (Mesos API {MESOS_COMPAT_VERSION})")


from meseta.cli.submit import submit  # noqa: E402  (its module loads no daemon)

app.command()(submit)

app.command(name="lb")(lb)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def mapreduce(ctx: typer.Context) -> None:
    """Run a MapReduce job on a cluster (word count by default); `meseta mapreduce --help` for more."""
    from meseta.examples.mapreduce.cli import main

    main(ctx.args, "meseta mapreduce")


if __name__ == "__main__":
    app()
