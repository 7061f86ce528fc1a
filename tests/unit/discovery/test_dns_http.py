"""The HTTP API (spec 1.6) on a sample book, and a fuzz of its paths."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from meseta.discovery.dns.feed import FeedStatus
from meseta.discovery.dns.flags import build_options
from meseta.discovery.dns.http import build_app
from meseta.discovery.dns.names import task_hash

from .test_dns_answer import sample_book

OPTIONS = build_options("10.0.0.100:5050,10.0.0.101:5050", resolvers=["10.0.0.53"], ttl=9)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(build_app(OPTIONS, sample_book(), FeedStatus(), {"udp_queries": 3}))


def test_version_and_config(client: TestClient) -> None:
    assert client.get("/v1/version").json()["Service"] == "Mesos-DNS"
    config = client.get("/v1/config").json()
    assert (config["TTL"], config["Domain"], config["Port"], config["HttpPort"]) == (9, "meseta", 8053, 8123)
    assert config["Resolvers"] == ["10.0.0.53:53"] and config["IPSources"] == ["netinfo", "mesos", "host"]
    assert config["Masters"] == ["10.0.0.100:5050", "10.0.0.101:5050"] and config["RefreshSeconds"] == 0


def test_hosts_and_services(client: TestClient) -> None:
    hosts = client.get("/v1/hosts/Web.Marathon.meseta").json()
    assert sorted(h["ip"] for h in hosts) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {h["host"] for h in hosts} == {"web.marathon.meseta."}
    assert client.get("/v1/hosts/nope.meseta.").json() == [{"host": "", "ip": ""}]
    services = client.get("/v1/services/_web._tcp.marathon.meseta.").json()
    assert {(s["host"], s["ip"], s["port"]) for s in services} == {
        (f"web-{task_hash(f'web.{i}')}-s{i}.marathon.slave.meseta.", f"10.0.0.{i + 1}", str(31000 + i))
        for i in range(3)}
    assert {s["service"] for s in services} == {"_web._tcp.marathon.meseta."}
    assert client.get("/v1/services/_x._tcp.meseta.").json() == [{"service": "", "host": "", "ip": "", "port": ""}]
    assert client.get("/v1/hosts/web.marathon.meseta/ports").status_code == 501


def test_enumerate_axfr_and_metrics(client: TestClient) -> None:
    frameworks = client.get("/v1/enumerate").json()["frameworks"]
    assert [f["name"] for f in frameworks] == ["marathon"]
    assert sorted(t["id"] for t in frameworks[0]["tasks"]) == ["web.0", "web.1", "web.2"]
    record = frameworks[0]["tasks"][0]["records"][0]
    assert set(record) == {"name", "host", "rtype"}
    axfr = client.get("/v1/axfr").json()
    assert axfr["Domain"] == "meseta" and axfr["TTL"] == 9
    assert sorted(axfr["Records"]["As"]["web.marathon.meseta."]) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert axfr["Records"]["As"]["leader.meseta."] == ["10.0.0.100"]
    assert "slave.meseta.:5051" in axfr["Records"]["SRVs"]["_slave._tcp.meseta."]
    metrics = client.get("/metrics/snapshot").json()
    assert metrics["dns/stale"] == 1 and metrics["dns/udp_queries"] == 3 and metrics["dns/tasks"] == 3


def test_wrong_method_unknown_path_and_overlong_name(client: TestClient) -> None:
    assert client.post("/v1/config").status_code == 405
    assert client.get("/v1/nothing").status_code == 404
    long = client.get("/v1/hosts/" + "a" * 2000)
    assert long.status_code == 400 and "'host'" in long.text


@given(st.sampled_from(["/v1/hosts/", "/v1/services/", "/v1/", "/", "/v1/hosts/x/"]), st.text(max_size=80),
       st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
@settings(max_examples=200, deadline=None)
def test_fuzz_paths_never_answer_500(prefix: str, tail: str, method: str) -> None:
    client = TestClient(build_app(OPTIONS, sample_book(1), FeedStatus(), {}))
    response = client.request(method, prefix + quote(tail, safe="/"))
    assert response.status_code in (200, 400, 404, 405, 501)
    if response.status_code == 200 and method == "GET":
        response.json()


@pytest.mark.parametrize(("flags", "named"), [
    ({"master": "nohost"}, "--master"),
    ({"master": "https://10.0.0.1:5050"}, "--master"),
    ({"master": "zk://x"}, "zk://"),
    ({"master": "a:1", "domain": "bad_domain"}, "--domain"),
    ({"master": "a:1", "resolvers": ["8.8.8.8:99999"]}, "--resolver"),
    ({"master": "a:1", "resolvers": ["dns.google"]}, "--resolver"),
    ({"master": "a:1", "ip_sources": "netinfo,magic"}, "--ip-sources"),
    ({"master": "a:1", "listen": "localhost"}, "--listen"),
    ({"master": "a:1", "ttl": -1}, "--ttl"),
    ({"master": "a:1", "port": 0}, "--port"),
])
def test_bad_flags_are_refused_by_name(flags: dict[str, object], named: str) -> None:
    master = str(flags.pop("master"))
    with pytest.raises(ValueError, match=named):
        build_options(master, **flags)  # type: ignore[arg-type]


def test_ns1_names_the_listen_address_or_every_interface() -> None:
    assert build_options("a:1", listen="127.0.0.2").book_config().ns_ips == ("127.0.0.2",)
    everywhere = build_options("a:1", listen="0.0.0.0").book_config().ns_ips
    assert everywhere and "0.0.0.0" not in everywhere
