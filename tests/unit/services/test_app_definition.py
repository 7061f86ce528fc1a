"""App definition normalisation: Marathon's defaults, rules and 422 messages, updates and service ports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meseta.services.model import App
from meseta.services.spec.app_definition import (
    CMD_ARGS_CONTAINER,
    ServicePortsExhausted,
    apply_partial_update,
    assign_service_ports,
    carry_version_info,
    changed_service_ports,
    is_scale_only,
    normalise,
    rollback_target,
    service_port_owners,
    service_ports,
)
from meseta.services.spec.app_fields import UNSUPPORTED

V1, V2 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


def ok(raw: dict[str, Any], base: str = "/") -> App:
    app, problems = normalise(raw, now_version=V1, base=base)
    assert problems == [] and app is not None, problems
    again, more = normalise(app, now_version=V1)
    assert more == [] and again == app, "a normalised app must normalise to itself"
    return app


def errors(raw: Any) -> dict[str, list[str]]:
    app, problems = normalise(raw, now_version=V1)
    assert app is None and problems
    grouped: dict[str, list[str]] = {}
    for path, message in problems:
        grouped.setdefault(path, []).append(message)
    return grouped


def cmd_app(**fields: Any) -> dict[str, Any]:
    return {"id": "/web", "cmd": "sleep 1000", **fields}


def test_defaults_are_filled() -> None:
    assert ok({"id": "web", "cmd": "sleep 1"}) == {
        "id": "/web", "cmd": "sleep 1", "instances": 1, "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0,
        "executor": "", "env": {}, "secrets": {}, "labels": {}, "constraints": [], "fetch": [],
        "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
        "networks": [{"mode": "host"}], "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
        "requirePorts": False, "healthChecks": [], "readinessChecks": [], "dependencies": [],
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "killSelection": "YOUNGEST_FIRST", "version": V1,
        "versionInfo": {"lastScalingAt": V1, "lastConfigChangeAt": V1},
    }


def test_keys_meseta_does_not_read_are_refused_naming_them() -> None:
    """No silent fallback: a field Meseta does not implement is a 422, not ignored."""
    assert errors(cmd_app(tty=True, check={"tcp": {}}, resourceLimits={"cpus": 2}, storeUrls=["x"])) == {
        "/tty": [UNSUPPORTED], "/check": [UNSUPPORTED], "/resourceLimits": [UNSUPPORTED], "/storeUrls": [UNSUPPORTED]}
    assert errors(cmd_app(container={"type": "MESOS", "linuxInfo": {}})) == {"/container/linuxInfo": [UNSUPPORTED]}
    assert errors(cmd_app(healthChecks=[{"protocol": "TCP", "ipProtocol": "IPv6"}])) == {
        "/healthChecks(0)/ipProtocol": [UNSUPPORTED]}
    assert errors(cmd_app(portDefinitions=[{"port": 0, "hostname": "x"}])) == {
        "/portDefinitions(0)/hostname": [UNSUPPORTED]}


def test_what_get_adds_is_ignored_and_never_stored() -> None:
    """A client PUTs back what it read: the counts and tasks GET added are not definition."""
    app = ok(cmd_app(tasksRunning=3, tasksStaged=0, deployments=[], tasks=[], lastTaskFailure=None))
    assert not {"tasksRunning", "tasksStaged", "deployments", "tasks", "lastTaskFailure"} & set(app)


def test_not_an_object() -> None:
    assert errors([1, 2]) == {"/": ["error.expected.jsobject"]}
    assert errors({"cmd": "x"}) == {"/id": ["error.path.missing"]}


@pytest.mark.parametrize("raw", [
    {"id": "/a"},
    {"id": "/a", "cmd": "x", "args": ["y"]},
    {"id": "/a", "cmd": "x", "args": ["y"], "container": {"docker": {"image": "busybox"}}},
    {"id": "/a", "container": {"type": "MESOS"}},
])
def test_cmd_args_or_container(raw: dict[str, Any]) -> None:
    assert CMD_ARGS_CONTAINER in errors(raw)["/"]


def test_args_alone_or_an_image_alone_is_enough() -> None:
    assert ok({"id": "/a", "args": ["/bin/sleep", "1"]})["args"] == ["/bin/sleep", "1"]
    docker = ok({"id": "/a", "container": {"docker": {"image": "busybox"}}})
    assert docker["container"] == {"type": "DOCKER", "volumes": [], "docker": {
        "image": "busybox", "forcePullImage": False, "privileged": False, "parameters": []}}
    mesos = ok({"id": "/a", "cmd": "x", "container": {"type": "MESOS", "docker": {"image": "alpine:3"}}})
    assert mesos["container"]["docker"] == {"image": "alpine:3", "forcePullImage": False}
    assert errors({"id": "/a", "cmd": ""})["/cmd"] == ["must not be an empty string"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("cpus", 0, "is less than 0.001"),
    ("mem", -1, "is less than 0"),
    ("disk", "10", "error.expected.jsnumber"),
    ("instances", -1, "is less than 0"),
    ("instances", 1.5, "error.expected.int"),
    ("instances", True, "error.expected.jsnumber"),
    ("gpus", -2, "is less than 0"),
    ("backoffSeconds", -1, "is less than 0"),
    ("backoffFactor", 0.9, "is less than 1"),
    ("maxLaunchDelaySeconds", "long", "error.expected.jsnumber"),
    ("killSelection", "RANDOM", "must be one of YOUNGEST_FIRST, OLDEST_FIRST"),
    ("requirePorts", "yes", "error.expected.jsboolean"),
    ("taskKillGracePeriodSeconds", -5, "is less than 0"),
    ("user", 7, "error.expected.jsstring"),
    ("labels", {"a": 1}, "error.expected.jsstring"),
    ("acceptedResourceRoles", [], "must not be empty"),
    ("env", [], "error.expected.jsobject"),
])
def test_field_rules(field: str, value: Any, message: str) -> None:
    found = errors(cmd_app(**{field: value}))
    assert any(message in m for msgs in found.values() for m in msgs), found


def test_integral_floats_are_integers_and_numbers_are_floats() -> None:
    app = ok(cmd_app(instances=3.0, cpus=2, mem=64, taskKillGracePeriodSeconds=5, user="nobody", role="web",
                     acceptedResourceRoles=["*", "web", "*"], executor="//cmd", labels={"team": "a"}))
    assert (app["instances"], app["cpus"], app["mem"]) == (3, 2.0, 64.0)
    assert isinstance(app["instances"], int) and isinstance(app["cpus"], float)
    assert (app["user"], app["role"], app["acceptedResourceRoles"]) == ("nobody", "web", ["*", "web"])
    assert (app["taskKillGracePeriodSeconds"], app["executor"], app["labels"]) == (5, "//cmd", {"team": "a"})
    assert "role" in errors(cmd_app(role="/bad"))["/role"][0]


def test_upgrade_and_unreachable_strategies() -> None:
    assert errors(cmd_app(upgradeStrategy={"minimumHealthCapacity": 1.5})) == {
        "/upgradeStrategy/minimumHealthCapacity": ["is greater than 1"]}
    assert ok(cmd_app(upgradeStrategy={"maximumOverCapacity": 0}))["upgradeStrategy"] == {
        "minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0}
    assert ok(cmd_app(unreachableStrategy="disabled"))["unreachableStrategy"] == "disabled"
    given = {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 600}
    assert ok(cmd_app(unreachableStrategy=given))["unreachableStrategy"] == given
    assert "/unreachableStrategy/inactiveAfterSeconds" in errors(cmd_app(unreachableStrategy={
        "inactiveAfterSeconds": 10}))
    assert errors(cmd_app(unreachableStrategy="sometimes")) == {"/unreachableStrategy": ["error.expected.jsobject"]}


@pytest.mark.parametrize(("constraint", "stored"), [
    (["hostname", "UNIQUE"], ["hostname", "UNIQUE"]),
    (["rack", "CLUSTER", "r1"], ["rack", "CLUSTER", "r1"]),
    (["rack", "CLUSTER"], ["rack", "CLUSTER"]),
    (["rack", "GROUP_BY"], ["rack", "GROUP_BY"]),
    (["rack", "GROUP_BY", "3"], ["rack", "GROUP_BY", "3"]),
    (["hostname", "LIKE", "web-[0-9]+"], ["hostname", "LIKE", "web-[0-9]+"]),
    (["hostname", "UNLIKE", "db.*"], ["hostname", "UNLIKE", "db.*"]),
    (["hostname", "MAX_PER", 2], ["hostname", "MAX_PER", "2"]),
    (["@zone", "IS", "a"], ["@zone", "IS", "a"]),
])
def test_valid_constraints(constraint: list[Any], stored: list[str]) -> None:
    assert ok(cmd_app(constraints=[constraint]))["constraints"] == [stored]


@pytest.mark.parametrize(("constraint", "message"), [
    (["hostname"], "Each constraint must have either 2 or 3 fields"),
    (["hostname", "UNIQUE", "x", "y"], "Each constraint must have either 2 or 3 fields"),
    ("hostname:UNIQUE", "Each constraint must have either 2 or 3 fields"),
    (["hostname", "NEAR"], "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, "
                           "UNLIKE, MAX_PER or IS"),
    (["hostname", "UNIQUE", "x"], "Value specified but not used"),
    (["hostname", "LIKE"], "A regular expression value must be provided"),
    (["hostname", "UNLIKE", "(unclosed"], "'(unclosed' is not a valid regular expression"),
    (["rack", "GROUP_BY", "many"], "Value was specified but is not a number"),
    (["rack", "MAX_PER"], "Value was not specified or is not a number"),
    (["rack", "MAX_PER", "two"], "Value was not specified or is not a number"),
    (["rack", "IS"], "Missing value"),
    (["", "UNIQUE"], "Missing field and operator"),
    ([1, {}], "Each constraint field must be a string"),
])
def test_invalid_constraints(constraint: Any, message: str) -> None:
    assert errors(cmd_app(constraints=[["hostname", "UNIQUE"], constraint])) == {"/constraints(1)": [message]}


def test_env_and_secrets() -> None:
    app = ok(cmd_app(env={"A": "1", "DB_PASSWORD": {"secret": "db"}}, secrets={"db": {"source": "/vault/db"}}))
    assert app["env"] == {"A": "1", "DB_PASSWORD": {"secret": "db"}}
    assert app["secrets"] == {"db": {"source": "/vault/db"}}
    assert errors(cmd_app(env={"X": {"secret": "nope"}})) == {"/env/X": ["references an undefined secret"]}
    assert "/env/X" in errors(cmd_app(env={"X": 3}))
    assert errors(cmd_app(secrets={"db": {}})) == {"/secrets/db/source": ["error.path.missing"]}


def test_fetch_and_uris() -> None:
    app = ok(cmd_app(uris=["http://x/app.tgz", "http://x/run.sh"]))
    assert "uris" not in app
    assert app["fetch"] == [{"uri": "http://x/app.tgz", "extract": True, "executable": False, "cache": False},
                            {"uri": "http://x/run.sh", "extract": False, "executable": False, "cache": False}]
    fetched = ok(cmd_app(fetch=[{"uri": "http://x/y", "executable": True, "destPath": "bin/y"}]))
    assert fetched["fetch"] == [{"uri": "http://x/y", "extract": True, "executable": True, "cache": False,
                                 "destPath": "bin/y"}]
    assert errors(cmd_app(uris=["a"], fetch=[{"uri": "b"}])) == {"/uris": ["cannot specify both uris and fetch fields"]}
    assert errors(cmd_app(fetch=[{}])) == {"/fetch(0)/uri": ["error.path.missing"]}


def test_dependencies_resolve_against_the_parent_group() -> None:
    app = ok({"id": "/prod/web", "cmd": "x", "dependencies": ["db", "../shared/cache", "/infra/dns"]})
    assert app["dependencies"] == ["/prod/db", "/shared/cache", "/infra/dns"]
    assert "/dependencies(0)" in errors({"id": "/prod/web", "cmd": "x", "dependencies": ["Bad"]})


def test_ids_relative_to_a_group() -> None:
    assert ok({"id": "web", "cmd": "x"}, base="/prod")["id"] == "/prod/web"
    app, problems = normalise({"id": "/other/web", "cmd": "x"}, now_version=V1, base="/prod")
    assert app is None and problems[0].path == "/id" and "is not child of /prod" in problems[0].message


# ----------------------------------------------------------------------------- ports and networks


def test_host_ports() -> None:
    assert ok(cmd_app(portDefinitions=[]))["portDefinitions"] == []
    assert ok(cmd_app(ports=[]))["portDefinitions"] == []
    assert ok(cmd_app(ports=[0, 8080]))["portDefinitions"] == [{"port": 0, "protocol": "tcp"},
                                                                {"port": 8080, "protocol": "tcp"}]
    defs = [{"port": 0, "name": "http", "protocol": "udp,tcp", "labels": {"VIP_0": "/web:80"}}, {"port": 9000}]
    app = ok(cmd_app(portDefinitions=defs, requirePorts=True))
    assert app["portDefinitions"] == [{"port": 0, "protocol": "udp,tcp", "name": "http",
                                       "labels": {"VIP_0": "/web:80"}}, {"port": 9000, "protocol": "tcp"}]
    assert app["requirePorts"] is True
    assert ok(cmd_app(ports=[80], portDefinitions=[{"port": 80}]))["portDefinitions"] == [
        {"port": 80, "protocol": "tcp"}]


@pytest.mark.parametrize(("fields", "path", "message"), [
    ({"ports": [80, 80]}, "/ports", "ports must be unique"),
    ({"ports": [70000]}, "/ports(0)/port", "is greater than 65535"),
    ({"portDefinitions": [{"port": 80}, {"port": 80}]}, "/portDefinitions", "Ports must be unique."),
    ({"portDefinitions": [{"port": 0, "name": "a"}, {"port": 0, "name": "a"}]}, "/portDefinitions",
     "Port names must be unique."),
    ({"portDefinitions": [{"port": 0, "name": "Bad_Name"}]}, "/portDefinitions(0)/name",
     "must fully match regular expression '^[a-z0-9-]+$'"),
    ({"portDefinitions": [{"port": 0, "protocol": "sctp"}]}, "/portDefinitions(0)/protocol",
     "must be one of tcp, udp, udp,tcp"),
    ({"portDefinitions": [{"name": "x"}]}, "/portDefinitions(0)/port", "error.path.missing"),
    ({"ports": [80], "portDefinitions": [{"port": 81}]}, "/", "cannot specify both ports and port definitions"),
])
def test_host_port_rules(fields: dict[str, Any], path: str, message: str) -> None:
    assert message in errors(cmd_app(**fields)).get(path, []), errors(cmd_app(**fields))


def test_legacy_bridge_networking_is_normalised() -> None:
    legacy = {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                                           "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}}
    app = ok({"id": "/web", "container": legacy})
    assert app["networks"] == [{"mode": "container/bridge"}]
    assert app["portDefinitions"] == [] and app["requirePorts"] is False
    assert app["container"]["portMappings"] == [{"containerPort": 80, "hostPort": 0, "servicePort": 0,
                                                 "protocol": "tcp"}]
    assert "network" not in app["container"]["docker"] and "portMappings" not in app["container"]["docker"]


def test_networks_and_port_mappings() -> None:
    bridge = ok({"id": "/w", "networks": [{"mode": "container/bridge"}], "container": {
        "docker": {"image": "nginx"}, "portMappings": [{"containerPort": 80, "name": "http", "servicePort": 10080}]}})
    assert bridge["container"]["portMappings"] == [{"containerPort": 80, "hostPort": 0, "servicePort": 10080,
                                                    "protocol": "tcp", "name": "http"}]
    overlay = ok({"id": "/w", "cmd": "x", "networks": [{"mode": "container", "name": "dcos"}],
                  "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "networkNames": ["dcos"]}]}})
    assert overlay["container"]["portMappings"] == [{"containerPort": 80, "servicePort": 0, "protocol": "tcp",
                                                     "networkNames": ["dcos"]}]
    implicit = ok({"id": "/w", "cmd": "x", "networks": [{"mode": "container/bridge"}]})
    assert implicit["container"] == {"type": "MESOS", "volumes": [], "portMappings": [
        {"containerPort": 0, "servicePort": 0, "protocol": "tcp", "name": "default", "hostPort": 0}]}
    none = ok({"id": "/w", "cmd": "x", "networks": [{"mode": "container/bridge"}],
               "container": {"type": "MESOS", "portMappings": []}})
    assert none["container"]["portMappings"] == []


@pytest.mark.parametrize(("raw", "path", "message"), [
    ({"id": "/w", "container": {"docker": {"image": "x", "network": "BRIDGE", "portMappings": [{}]},
                                "portMappings": [{}]}}, "/container/portMappings",
     "cannot specify both portMappings and docker.portMappings"),
    ({"id": "/w", "cmd": "x", "container": {"type": "MESOS", "portMappings": [{"containerPort": 80}]}},
     "/container/portMappings", "portMappings are not allowed with host-networking"),
    ({"id": "/w", "cmd": "x", "networks": [{"mode": "container/bridge"}], "portDefinitions": [{"port": 80}]},
     "/", "portDefinitions are only allowed with host-networking"),
    ({"id": "/w", "networks": [{"mode": "host"}], "container": {"docker": {"image": "x", "network": "HOST"}}},
     "/", "must not specify both container.docker.network and networks"),
    ({"id": "/w", "container": {"docker": {"image": "x", "network": "NONE"}}}, "/container/docker/network",
     "must be one of HOST, BRIDGE, USER"),
    ({"id": "/w", "cmd": "x", "networks": [{"mode": "host"}, {"mode": "container", "name": "a"}]}, "/networks",
     "host and container/bridge networks cannot be combined with other networks"),
    ({"id": "/w", "cmd": "x", "networks": [{"mode": "wifi"}]}, "/networks(0)/mode",
     "must be one of host, container/bridge, container"),
    ({"id": "/w", "cmd": "x", "networks": [{"mode": "container", "name": "a"}],
      "container": {"type": "MESOS", "portMappings": [{"networkNames": ["b"]}]}},
     "/container/portMappings(0)/networkNames", "must name container networks of the app"),
    ({"id": "/w", "container": {"type": "DOCKER"}}, "/container/docker", "must be defined for container type DOCKER"),
    ({"id": "/w", "container": {"docker": {"image": ""}}}, "/container/docker/image", "must not be empty"),
    ({"id": "/w", "container": {"type": "LXC", "docker": {"image": "x"}}}, "/container/type",
     "must be one of DOCKER, MESOS"),
    ({"id": "/w", "container": {"type": "MESOS", "docker": {"image": "x", "parameters": [{"key": "a",
                                                                                          "value": "b"}]}}},
     "/container/docker/parameters", "is not supported by the Mesos containerizer"),
    ({"id": "/w", "container": {"type": "MESOS", "appc": {"image": "x"}}}, "/container/appc",
     "appc images are not supported"),
    ({"id": "/w", "container": {"docker": {"image": "x", "pullConfig": {"secret": "s"}}}},
     "/container/docker/pullConfig", "pullConfig is not supported with Docker containerizer"),
    ({"id": "/w", "gpus": 1, "container": {"docker": {"image": "x"}}}, "/gpus",
     "GPU resources only work with the Mesos containerizer"),
    ({"id": "/w", "cmd": "x", "ipAddress": {"networkName": "a", "groups": ["g"]}}, "/ipAddress/groups",
     "network security groups are not supported"),
    ({"id": "/w", "cmd": "x", "ipAddress": {}}, "/ipAddress/networkName",
     "must be given (Meseta has no --default_network_name)"),
    ({"id": "/w", "cmd": "x", "ipAddress": {"networkName": "a"}, "networks": [{"mode": "host"}]}, "/",
     "must not specify both ipAddress and networks"),
    ({"id": "/w", "ipAddress": {"networkName": "a"}, "container": {"docker": {"image": "x", "network": "BRIDGE"}}},
     "/container/docker/network", "must be USER (or absent) with ipAddress"),
    ({"id": "/w", "cmd": "x", "ipAddress": {"networkName": "a", "discovery": {"ports": [{"name": "p"}]}}},
     "/ipAddress/discovery/ports(0)/number", "error.path.missing"),
    ({"id": "/w", "cmd": "x", "ipAddress": {"networkName": "a", "discovery": {"ports": [{"number": 1}]}},
      "container": {"type": "MESOS", "portMappings": [{"containerPort": 2}]}}, "/container/portMappings",
     "cannot specify both portMappings and ipAddress.discovery.ports"),
    ({"id": "/w", "container": {"docker": {"image": "x", "network": "USER"}}}, "/container/docker/network",
     "USER needs ipAddress.networkName or networks [{mode: container, name}]"),
    ({"id": "/w", "cmd": "x", "networks": [{"mode": "container"}]}, "/networks(0)/name",
     "must be given for container networks (Meseta has no --default_network_name)"),
    ({"id": "/w", "networks": [{"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}],
      "container": {"docker": {"image": "x"}}}, "/networks", "Docker containers can join only one container network"),
    ({"id": "/w", "container": {"docker": {"image": "x", "parameters": [{"key": "a", "value": "b"}]}}},
     "/container/docker/parameters", "Docker parameters are not supported: Meseta runs Docker images with the "
                                     "Mesos containerizer, which has no docker run options"),
    ({"id": "/w", "container": {"docker": {"image": "x", "privileged": True}}}, "/container/docker/privileged",
     "privileged containers are not supported"),
    ({"id": "/w", "container": {"type": "MESOS", "docker": {"image": "x", "pullConfig": {"secret": "s"}}},
      "secrets": {"s": {"source": "x"}}}, "/container/docker/pullConfig",
     "pullConfig (registry credentials from a secret) is not supported: the agent pulls without credentials"),
])
def test_container_and_network_rules(raw: dict[str, Any], path: str, message: str) -> None:
    found = errors(raw)
    assert message in found.get(path, []), found


def test_volumes_and_resident_apps() -> None:
    app = ok({"id": "/w", "cmd": "x", "container": {"type": "MESOS", "volumes": [
        {"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}]}})
    assert app["container"]["volumes"] == [{"containerPath": "/data", "hostPath": "/srv/data", "mode": "RO"}]
    assert "residency" not in app and app["upgradeStrategy"]["maximumOverCapacity"] == 1.0
    resident = errors({"id": "/db", "cmd": "x", "container": {"type": "MESOS", "volumes": [
        {"containerPath": "data", "mode": "RW", "persistent": {"size": 100}}]}})
    assert resident == {"/container/volumes(0)/persistent": [
        "persistent volumes (resident apps) are not supported: Meseta does not reserve and create volumes "
        "(RESERVE/CREATE) for services"]}
    bad = errors({"id": "/db", "cmd": "x", "container": {"type": "MESOS", "volumes": [
        {"containerPath": "a/b", "persistent": {"size": 0}}]}})
    assert bad["/container/volumes(0)/containerPath"] == ['value must not contain "/"']
    assert bad["/container/volumes(0)/persistent/size"] == ["is less than 1"]
    assert errors(cmd_app(residency={})) == {"/": ["App must contain persistent volumes and define residency"]}
    assert "/container/volumes(0)/secret" in errors({"id": "/w", "cmd": "x", "container": {
        "type": "MESOS", "volumes": [{"containerPath": "s", "secret": "x"}]}})


# ----------------------------------------------------------------------------- checks


def test_health_check_defaults() -> None:
    app = ok(cmd_app(healthChecks=[{}, {"protocol": "TCP", "portIndex": 0}, {"command": {"value": "true"}},
                                   {"protocol": "MESOS_HTTP", "port": 8080, "path": "/ping"}]))
    timing = {"gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20, "maxConsecutiveFailures": 3,
              "delaySeconds": 15}
    assert app["healthChecks"] == [
        {"protocol": "HTTP", **timing, "portIndex": 0, "path": "/", "ignoreHttp1xx": False},
        {"protocol": "TCP", **timing, "portIndex": 0},
        {"protocol": "COMMAND", **timing, "command": {"value": "true"}},
        {"protocol": "MESOS_HTTP", **timing, "port": 8080, "path": "/ping"},
    ]


@pytest.mark.parametrize(("checks", "path", "message"), [
    ([{"portIndex": 1}], "/healthChecks(0)", "Health check port indices must address an element of the ports "
                                             "array or container port mappings."),
    ([{"protocol": "UDP"}], "/healthChecks(0)/protocol", "must be one of HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, "
                                                         "MESOS_HTTPS, MESOS_TCP"),
    ([{"protocol": "COMMAND"}], "/healthChecks(0)/command", "error.path.missing"),
    ([{"intervalSeconds": 0}], "/healthChecks(0)/intervalSeconds", "is less than 1"),
    ([{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP"}], "/",
     "AppDefinition can contain at most one Mesos health check"),
])
def test_health_check_rules(checks: list[Any], path: str, message: str) -> None:
    found = errors(cmd_app(healthChecks=checks))
    assert message in found.get(path, []), found


def test_health_checks_need_a_port() -> None:
    assert "/healthChecks(0)" in errors(cmd_app(portDefinitions=[], healthChecks=[{"protocol": "TCP"}]))
    assert ok(cmd_app(portDefinitions=[], healthChecks=[{"protocol": "TCP", "port": 22}]))["healthChecks"][0][
        "port"] == 22
    assert ok(cmd_app(portDefinitions=[], healthChecks=[{"protocol": "COMMAND", "command": {"value": "true"}}]))
    two = ok(cmd_app(ports=[0, 0], healthChecks=[{"portIndex": 1}]))
    assert two["healthChecks"][0]["portIndex"] == 1


def test_readiness_checks() -> None:
    app = ok(cmd_app(portDefinitions=[{"port": 0, "name": "http-api"}], readinessChecks=[{}]))
    assert app["readinessChecks"] == [{"name": "readinessCheck", "protocol": "HTTP", "path": "/",
                                       "portName": "http-api", "intervalSeconds": 30, "timeoutSeconds": 10,
                                       "httpStatusCodesForReady": [200], "preserveLastResponse": False}]
    found = errors(cmd_app(readinessChecks=[{"portName": "web", "timeoutSeconds": 30}, {}]))
    assert found["/readinessChecks"] == ["got 2, expected 1 or less"]
    assert found["/readinessChecks(0)/portName"] == ["No port definition reference for portName web"]
    assert found["/readinessChecks(0)/timeoutSeconds"] == ["got 30, expected less than 30"]
    assert "/readinessChecks(0)/httpStatusCodesForReady(0)" in errors(cmd_app(
        portDefinitions=[{"port": 0, "name": "http-api"}], readinessChecks=[{"httpStatusCodesForReady": [42]}]))


# ----------------------------------------------------------------------------- updates


def test_partial_update_keeps_absent_fields() -> None:
    old = assign_service_ports(ok(cmd_app(instances=2, labels={"a": "b"}, env={"X": "1"})), set())
    merged = apply_partial_update(old, {"instances": 5, "id": "/elsewhere", "version": V2, "env": None})
    new = ok(merged)
    assert new["instances"] == 5 and new["id"] == "/web" and new["labels"] == {"a": "b"} and new["env"] == {"X": "1"}
    assert is_scale_only(old, new)
    assert old["instances"] == 2, "the old app is not touched"


def test_partial_update_replaces_exclusive_pairs() -> None:
    old = ok(cmd_app(uris=["http://x/a.sh"], ports=[0]))
    new = ok(apply_partial_update(old, {"args": ["a"], "fetch": [{"uri": "http://x/b"}], "ports": [0, 0]}))
    assert "cmd" not in new and new["args"] == ["a"]
    assert [f["uri"] for f in new["fetch"]] == ["http://x/b"]
    assert len(new["portDefinitions"]) == 2
    assert not is_scale_only(old, new)
    assert "args" not in ok(apply_partial_update(new, {"cmd": "y"}))


def test_partial_update_changing_network_mode() -> None:
    host = ok({"id": "/w", "container": {"docker": {"image": "nginx"}}})
    bridged = ok(apply_partial_update(host, {"container": {"docker": {"image": "nginx", "network": "BRIDGE"}}}))
    assert bridged["networks"] == [{"mode": "container/bridge"}] and bridged["portDefinitions"] == []
    back = ok(apply_partial_update(bridged, {"networks": [{"mode": "host"}]}))
    assert "portMappings" not in back["container"] and back["portDefinitions"][0]["name"] == "default"
    legacy = ok(apply_partial_update(bridged, {"ipAddress": {"networkName": "n", "discovery": {
        "ports": [{"number": 53, "name": "dns", "protocol": "udp"}]}}}))
    assert legacy["networks"] == [{"mode": "container", "name": "n"}]
    assert legacy["container"]["portMappings"] == [{"containerPort": 53, "servicePort": 0, "protocol": "udp",
                                                    "name": "dns"}], "the discovery ports replace the mappings"
    assert errors(apply_partial_update(bridged, {"ipAddress": {"networkName": "n", "discovery": [1]}})) == {
        "/ipAddress/discovery": ["error.expected.jsobject"]}


def test_scale_only_and_version_info() -> None:
    old = ok(cmd_app())
    scaled, _ = normalise(apply_partial_update(old, {"instances": 3}), now_version=V2)
    changed, _ = normalise(apply_partial_update(old, {"labels": {"x": "y"}}), now_version=V2)
    assert scaled is not None and changed is not None
    assert is_scale_only(old, scaled) and not is_scale_only(old, changed)
    assert carry_version_info(old, scaled)["versionInfo"] == {"lastScalingAt": V2, "lastConfigChangeAt": V1}
    assert carry_version_info(old, changed)["versionInfo"] == {"lastScalingAt": V2, "lastConfigChangeAt": V2}
    assert carry_version_info(None, scaled)["versionInfo"] == {"lastScalingAt": V2, "lastConfigChangeAt": V2}


def test_rollback_target() -> None:
    assert rollback_target({"version": V1}) == (V1, [])
    assert rollback_target({"version": V1, "id": "/web"}) == (V1, [])
    assert rollback_target({"instances": 2}) == (None, [])
    version, problems = rollback_target({"version": V1, "cmd": "x"})
    assert version is None and problems == [("/", "The 'version' field may only be combined with the 'id' field.")]


# ----------------------------------------------------------------------------- service ports


def test_assign_service_ports_lowest_free_first() -> None:
    taken = {10000, 10002}
    app = ok(cmd_app(ports=[0, 10001, 0]))
    assigned = assign_service_ports(app, taken)
    assert service_ports(assigned) == [10003, 10001, 10004]
    assert service_ports(app) == [0, 10001, 0], "the input app is not touched"
    assert {10001, 10003, 10004} <= taken
    bridge = ok({"id": "/b", "container": {"docker": {"image": "x", "network": "BRIDGE", "portMappings": [
        {"containerPort": 80}]}}})
    assert service_ports(assign_service_ports(bridge, set(), low=31000, high=32000)) == [31000]
    with pytest.raises(ServicePortsExhausted):
        assign_service_ports(ok(cmd_app(ports=[0, 0])), set(), low=5, high=5)


def test_assign_service_ports_keeps_the_previous_ones() -> None:
    previous = assign_service_ports(ok(cmd_app(ports=[0, 0])), set())
    update = ok(cmd_app(ports=[0, 0, 0]))
    assert service_ports(assign_service_ports(update, set(), previous=previous)) == [10000, 10001, 10002]
    assert service_ports(assign_service_ports(update, {10001}, previous=previous)) == [10000, 10002, 10003], \
        "a previous port another app holds now is not reused"


def test_changed_service_ports_across_apps() -> None:
    a = assign_service_ports(ok({"id": "/a", "cmd": "x", "ports": [10005]}), set())
    b = ok({"id": "/b", "cmd": "x", "ports": [0, 10005]})
    c = ok({"id": "/c", "container": {"docker": {"image": "x", "network": "BRIDGE", "portMappings": [
        {"containerPort": 80, "servicePort": 10005}]}}})
    owners = service_port_owners([a])
    assert owners == {10005: "/a"}
    _, problems = changed_service_ports(owners, {"/a": a}, {"/b": b, "/c": c}, ())
    assert problems == [
        ("/portDefinitions(1)/port", "Requested service port 10005 conflicts with a service port in use by app /a"),
        ("/container/portMappings(0)/servicePort",
         "Requested service port 10005 conflicts with a service port in use by app /a"),
    ]
    assert changed_service_ports(owners, {"/a": a}, {"/a": copy.deepcopy(a)}, ())[1] == [], \
        "an app does not conflict with itself"
    freed, problems = changed_service_ports(owners, {"/a": a}, {"/c": c}, ["/a"])
    assert problems == [] and freed == {10005: "/c"}, "a removed app frees its ports"
    moved, problems = changed_service_ports(owners, {"/a": a}, {"/a": {**a, "portDefinitions": []}, "/c": c}, ())
    assert problems == [] and moved == {10005: "/c"}, "an app changed to other ports frees the old ones"


def test_a_readiness_check_without_host_port_is_made_at_the_container() -> None:
    container = {"type": "MESOS", "docker": {"image": "x"},
                 "portMappings": [{"containerPort": 80, "name": "http-api"}]}
    app, problems = normalise({"id": "/c", "cmd": "x", "networks": [{"mode": "container", "name": "n"}],
                               "container": container, "readinessChecks": [{}]}, now_version="v")
    assert problems == [] and app is not None
    mapped = {**container, "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http-api"}]}
    app, problems = normalise({"id": "/c", "cmd": "x", "networks": [{"mode": "container/bridge"}],
                               "container": mapped, "readinessChecks": [{}]}, now_version="v")
    assert problems == [] and app is not None


def test_legacy_ip_address_becomes_container_networking() -> None:
    app = ok({"id": "/w", "cmd": "x", "ipAddress": {
        "networkName": "overlay", "labels": {"k": "v"},
        "discovery": {"ports": [{"number": 80, "name": "http", "protocol": "tcp,udp", "labels": {"l": "1"}}]}}})
    assert app["networks"] == [{"mode": "container", "name": "overlay", "labels": {"k": "v"}}]
    assert app["container"] == {"type": "MESOS", "volumes": [], "portMappings": [
        {"containerPort": 80, "servicePort": 0, "protocol": "udp,tcp", "name": "http", "labels": {"l": "1"}}]}
    assert "ipAddress" not in app and app["portDefinitions"] == []
    docker = ok({"id": "/d", "ipAddress": {"networkName": "n"},
                 "container": {"docker": {"image": "x", "network": "USER",
                                          "portMappings": [{"containerPort": 8080, "hostPort": 0}]}}})
    assert docker["networks"] == [{"mode": "container", "name": "n"}]
    assert docker["container"]["portMappings"] == [{"containerPort": 8080, "hostPort": 0, "servicePort": 0,
                                                    "protocol": "tcp"}]
    assert ok({"id": "/e", "cmd": "x", "ipAddress": None})["networks"] == [{"mode": "host"}], "null is absent"
