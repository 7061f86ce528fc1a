"""The HAProxy configuration of a model and its slots; pure. Layout of the file::

    global     master-worker; stats socket <run>/haproxy.sock level admin expose-fd listeners;
               server-state-file <run>/servers.state; hard-stop-after
    defaults   mode tcp; [load-server-state-from-file global]; retries 3; option redispatch; timeouts
    listen meseta_stats          <bind>:<stats port>  /haproxy?stats, monitor-uri /_haproxy_health_check
    frontend meseta_http_in      <bind>:<http port>   Host (and path) ACLs -> use_backend, weight order
    frontend <app>_<port>        <bind addr>:<port>   -> backend <app>_<port>
    backend <app>_<port>         mode, balance, [option httpchk], server s1..sN (empty: 127.0.0.1:1 disabled)

``structure`` renders the same file with every server's address and state blanked: two placements
with the same structure differ only in what the runtime API can change, so no reload is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from meseta.discovery.lb.model import Model, Server, Service, Settings
from meseta.discovery.lb.plan import Placement, slot_name

EMPTY_SLOT = "127.0.0.1:1"


@dataclass(frozen=True, slots=True)
class Files:
    """Where the I/O shell keeps HAProxy's files (paths are rendered verbatim)."""

    socket: str
    state_file: str
    hard_stop_after: int = 30
    load_state: bool = True  # runtime mode: a reload re-applies the runtime state (drain...) from the file
    stats_port: int | None = None


def render(model: Model, placement: Placement, settings: Settings, files: Files) -> str:
    return _render(model, placement, settings, files, blank=False)


def structure(model: Model, placement: Placement, settings: Settings, files: Files) -> str:
    return _render(model, placement, settings, files, blank=True)


def _render(model: Model, placement: Placement, settings: Settings, files: Files, blank: bool) -> str:
    lines = [
        "global",
        "    master-worker",
        f"    stats socket {files.socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    server-state-file {files.state_file}",
        f"    hard-stop-after {files.hard_stop_after}s",
        "",
        "defaults",
        "    mode tcp",
        *(["    load-server-state-from-file global"] if files.load_state else []),
        "    log global",
        "    retries 3",
        "    option redispatch",
        "    timeout connect 3s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout tunnel 3600s",
        "",
    ]
    if files.stats_port is not None:
        lines += ["listen meseta_stats", f"    bind {settings.bind_addr}:{files.stats_port}", "    mode http",
                  "    stats enable", "    stats uri /haproxy?stats", "    monitor-uri /_haproxy_health_check", ""]
    lines += _vhost_frontend(model, settings)
    for service in model.services:
        lines += [f"frontend {service.name}", f"    bind {service.bind_addr}:{service.port}",
                  f"    mode {service.mode}", f"    default_backend {service.name}", ""]
        lines += _backend(service, placement.get(service.name, ()), files.load_state, blank)
    return "\n".join(lines) + "\n"


def _vhost_frontend(model: Model, settings: Settings) -> list[str]:
    routed = sorted((s for s in model.services if s.vhosts), key=lambda s: (-s.weight, s.name))
    if not routed or settings.http_port is None:
        return []
    lines = ["frontend meseta_http_in", f"    bind {settings.bind_addr}:{settings.http_port}", "    mode http"]
    for service in routed:
        exact = [h for h in service.vhosts if not h.startswith("*.")]
        wild = [h[1:] for h in service.vhosts if h.startswith("*.")]
        if exact:
            lines.append(f"    acl host_{service.name} hdr(host),field(1,:) -i {' '.join(exact)}")
        if wild:
            lines.append(f"    acl host_{service.name} hdr(host),field(1,:) -m end -i {' '.join(wild)}")
        if service.paths:
            lines.append(f"    acl path_{service.name} path_beg {' '.join(service.paths)}")
    for service in routed:
        condition = f"host_{service.name}" + (f" path_{service.name}" if service.paths else "")
        if service.redirect_https:
            lines.append(f"    http-request redirect scheme https code 301 if {condition} !{{ ssl_fc }}")
        lines.append(f"    use_backend {service.name} if {condition}")
    return [*lines, ""]


def _backend(service: Service, slots: tuple[Server | None, ...], load_state: bool, blank: bool) -> list[str]:
    lines = [f"backend {service.name}", f"    mode {service.mode}", f"    balance {service.balance}"]
    if service.mode == "http":
        lines.append("    retry-on conn-failure empty-response response-timeout")
    if service.hsts:
        lines.append('    http-response set-header Strict-Transport-Security "max-age=15768000"')
    options = ""
    if service.check is not None:
        check = service.check
        if check.http_path is not None:
            lines.append(f"    option httpchk GET {check.http_path}")
        lines.append(f"    timeout check {check.timeout}s")
        # a refused connection marks the server down at once (the retry goes elsewhere) until a check passes
        options = f" check inter {check.interval}s fall {check.fall} observe layer4 error-limit 1 on-error mark-down"
    for index, server in enumerate(slots):
        if blank:
            where = "<slot>"
        elif server is None:
            where = f"{EMPTY_SLOT} disabled"
        else:  # without the state file a draining server keeps its sessions but gets no new ones
            where = f"{server.ip}:{server.port}" + (" weight 0" if server.draining and not load_state else "")
        lines.append(f"    server {slot_name(index)} {where}{options}")
    return [*lines, ""]
