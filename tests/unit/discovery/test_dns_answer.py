"""The answerer (spec 1.5): sections, rcodes, SOA, truncation; and a fuzz of names and bytes."""

from __future__ import annotations

from typing import Any

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.discovery.dns import answer as ans
from meseta.discovery.dns import wire
from meseta.discovery.dns.book import RecordBook
from meseta.discovery.dns.server import Answerer

from . import events as ev

CONFIG = ans.AnswerConfig(ttl=7)


def sample_book(count: int = 3) -> RecordBook:
    book = RecordBook()
    agents = [ev.agent(f"a-S{i}", f"10.0.0.{i + 1}") for i in range(count)]
    tasks = [ev.task(f"web.{i}", agent_id=f"a-S{i}", host_ports=((31000 + i, 31000 + i),)) for i in range(count)]
    book.replace(*wire.parse_state(ev.subscribed(tasks, agents=agents)["subscribed"]["get_state"]))
    book.set_masters(("10.0.0.100", 5050), [])
    return book


def ask(book: RecordBook, name: str, qtype: str, config: ans.AnswerConfig = CONFIG, rotation: int = 0,
        limit: int = 512) -> DNSRecord:
    reply = ans.answer(DNSRecord.question(name, qtype), book, config, rotation)
    assert reply is not None
    return DNSRecord.parse(ans.encode(reply, limit, config.set_truncate_bit))


def values(reply: DNSRecord, section: str = "rr") -> list[str]:
    return sorted(str(rr.rdata) for rr in getattr(reply, section))


def test_a_records_are_authoritative_with_the_ttl() -> None:
    reply = ask(sample_book(), "WEB.Marathon.meseta.", "A")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1 and reply.header.ra == 0
    assert values(reply) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {rr.ttl for rr in reply.rr} == {7}


def test_answers_rotate_per_query() -> None:
    book = sample_book()
    firsts = {str(ask(book, "web.marathon.meseta.", "A", rotation=r).rr[0].rdata) for r in range(3)}
    assert firsts == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}


def test_srv_answers_carry_each_targets_address() -> None:
    reply = ask(sample_book(), "_web._tcp.marathon.meseta.", "SRV")
    assert sorted(rr.rdata.port for rr in reply.rr) == [31000, 31001, 31002]
    targets = {str(rr.rdata.target) for rr in reply.rr}
    assert {str(rr.rname) for rr in reply.ar} == targets
    assert values(reply, "ar") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_missing_name_is_nxdomain_with_soa_and_other_type_is_nodata() -> None:
    book = sample_book()
    missing = ask(book, "nope.marathon.meseta.", "A")
    assert missing.header.rcode == RCODE.NXDOMAIN and missing.rr == []
    assert [QTYPE.get(rr.rtype) for rr in missing.auth] == ["SOA"]
    soa = missing.auth[0].rdata
    assert (soa.times[0], soa.times[4]) == (book.serial, 7) and str(soa.mname) == "ns1.meseta."
    nodata = ask(book, "web.marathon.meseta.", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and nodata.rr == [] and len(nodata.auth) == 1
    srv_missing = ask(book, "_nope._tcp.marathon.meseta.", "SRV")
    assert srv_missing.header.rcode == RCODE.NXDOMAIN


def test_soa_ns_and_any_at_the_apex_and_leader() -> None:
    book = sample_book()
    assert [QTYPE.get(rr.rtype) for rr in ask(book, "meseta.", "SOA").rr] == ["SOA"]
    assert values(ask(book, "meseta.", "NS")) == ["ns1.meseta."]
    assert values(ask(book, "leader.meseta.", "A")) == ["10.0.0.100"]
    assert values(ask(book, "ns1.meseta.", "A")) == ["127.0.0.1"]
    kinds = sorted(QTYPE.get(rr.rtype) for rr in ask(book, "_leader._tcp.meseta.", "ANY").rr)
    assert kinds == ["SRV"]


def test_out_of_domain_is_for_the_shell_and_bad_queries_are_refused() -> None:
    book = sample_book()
    assert ans.answer(DNSRecord.question("example.com.", "A"), book, CONFIG) is None
    assert ans.answer(DNSRecord.question("meseta.example.", "A"), book, CONFIG) is None
    response = DNSRecord.question("web.marathon.meseta.", "A").reply()
    assert ans.answer(response, book, CONFIG).header.rcode == RCODE.FORMERR  # type: ignore[union-attr]
    notify = DNSRecord.question("meseta.", "SOA")
    notify.header.opcode = 4
    assert ans.answer(notify, book, CONFIG).header.rcode == RCODE.NOTIMP  # type: ignore[union-attr]


def test_udp_truncation_keeps_the_limit_and_sets_tc_and_tcp_does_not() -> None:
    book = sample_book(60)
    udp = ask(book, "_web._tcp.marathon.meseta.", "SRV")
    assert udp.header.tc == 1 and 0 < len(udp.rr) < 60 and udp.ar == []
    assert len(udp.pack()) <= 512
    tcp = ask(book, "_web._tcp.marathon.meseta.", "SRV", limit=65535)
    assert tcp.header.tc == 0 and len(tcp.rr) == 60 and len(tcp.ar) == 60
    quiet = ask(book, "_web._tcp.marathon.meseta.", "SRV", config=ans.AnswerConfig(set_truncate_bit=False))
    assert quiet.header.tc == 0 and len(quiet.rr) < 60


def test_edns0_size_is_honoured_and_echoed() -> None:
    book = sample_book(60)
    query = DNSRecord.question("web.marathon.meseta.", "A")
    query.add_ar(EDNS0(udp_len=4096))
    limit = ans.size_limit(query, tcp=False)
    assert limit == 4096
    reply = ans.answer(query, book, CONFIG)
    assert reply is not None
    parsed = DNSRecord.parse(ans.encode(ans.with_edns(query, reply), limit))
    assert len(parsed.rr) == 60 and parsed.header.tc == 0
    assert [rr.rtype for rr in parsed.ar] == [QTYPE.OPT]
    query.ar[0].rclass = 100  # below the minimum: 512
    assert ans.size_limit(query, tcp=False) == 512


def test_the_server_refuses_foreign_names_without_resolvers_and_answers_garbage_with_formerr() -> None:
    answerer = Answerer(sample_book(), CONFIG, (), 1.0)
    response, forward = answerer.decide(DNSRecord.question("example.com.", "A").pack(), tcp=False)
    assert forward is None and response is not None and DNSRecord.parse(response).header.rcode == RCODE.REFUSED
    garbage = b"\x12\x34" + b"\xff" * 20
    response, _ = answerer.decide(garbage, tcp=False)
    assert response is not None and response[:2] == b"\x12\x34"
    assert DNSRecord.parse(response).header.rcode == RCODE.FORMERR
    assert answerer.decide(b"\x01", tcp=True) == (None, None)


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_*.ABC", min_size=1, max_size=20)
names = st.builds(lambda parts, tail: ".".join([*parts, tail]), st.lists(label, max_size=4),
                  st.sampled_from(["marathon.meseta", "meseta", "slave.meseta", "com", "meseta.org"]))
qtypes = st.sampled_from(["A", "AAAA", "SRV", "SOA", "NS", "ANY", "MX", "TXT", "PTR", "CNAME"])


@given(names, qtypes, st.integers(0, 100), st.booleans())
@settings(max_examples=300, deadline=None)
def test_fuzz_any_query_gets_a_well_formed_answer(name: str, qtype: str, rotation: int, tcp: bool) -> None:
    book = sample_book(20)
    try:
        query = DNSRecord.question(name, qtype)
    except Exception:
        return
    answerer = Answerer(book, CONFIG, (), 1.0)
    response, forward = answerer.decide(query.pack(), tcp)
    assert forward is None and response is not None
    assert len(response) <= (65535 if tcp else 512)
    parsed = DNSRecord.parse(response)
    assert parsed.header.id == query.header.id and parsed.header.qr == 1
    in_domain = CONFIG.in_domain(str(query.q.qname).lower().replace(".*", ""))
    expected: Any = (RCODE.NOERROR, RCODE.NXDOMAIN) if in_domain else (RCODE.REFUSED,)
    assert parsed.header.rcode in expected


@given(st.binary(max_size=600), st.booleans())
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes_never_break_the_server(data: bytes, tcp: bool) -> None:
    answerer = Answerer(sample_book(3), CONFIG, (), 1.0)
    response, forward = answerer.decide(data, tcp)
    assert forward is None or response is None
    assert answerer.counters["failures"] == 0
    if response is not None:
        DNSRecord.parse(response)


CHANGES = [
    lambda i: ev.task_updated(f"web.{i % 5}", "TASK_KILLED"),
    lambda i: {"type": "AGENT_ADDED", "agent_added": {"agent": ev.agent(f"a-S{i % 5}", f"10.9.0.{i % 7 + 1}")}},
    lambda i: ev.task_added(ev.task(f"new.{i}", "web", agent_id=f"a-S{i % 5}", host_ports=((40000 + i, 40000 + i),))),
    lambda i: ev.task_updated(f"web.{i % 5}", "TASK_RUNNING", healthy=bool(i % 2)),
    lambda i: {"type": "FRAMEWORK_UPDATED",
               "framework_updated": {"framework": ev.framework(["marathon", "m2"][i % 2])}},
]
QUERIES = ["web.marathon.meseta.", "_web._tcp.marathon.meseta.", "x.meseta.", "meseta.", "slave.meseta.",
           "_web._udp.marathon.slave.meseta.", "web.m2.meseta."]


@given(st.lists(st.tuples(st.sampled_from(QUERIES), st.sampled_from(["A", "SRV", "SOA", "AAAA", "ANY"]),
                          st.sampled_from([None, *range(len(CHANGES))])), min_size=1, max_size=40))
@settings(max_examples=100, deadline=None)
def test_the_answer_cache_answers_as_the_answerer_and_forgets_what_changed(
        queries: list[tuple[str, str, int | None]]) -> None:
    cached_book, plain_book = sample_book(5), sample_book(5)
    cached = Answerer(cached_book, CONFIG, (), 1.0)
    plain = Answerer(plain_book, CONFIG, (), 1.0, cache_entries=0)
    for index, (name, qtype, change) in enumerate(queries):
        if change is not None:  # the same change to both books: a cached answer must not outlive it
            for book in (cached_book, plain_book):
                book.apply(CHANGES[change](index))
        query = DNSRecord.question(name, qtype)
        query.header.id = index
        assert cached.decide(query.pack(), False) == plain.decide(query.pack(), False)
        assert cached.decide(query.pack(), True) == plain.decide(query.pack(), True)


@given(st.integers(1, 80), st.integers(512, 4096), st.booleans(), st.sampled_from(["SRV", "A", "ANY"]))
@settings(max_examples=60, deadline=None)
def test_truncation_keeps_a_prefix_of_the_answers_within_the_limit(count: int, limit: int, edns: bool,
                                                                     qtype: str) -> None:
    book = sample_book(count)
    query = DNSRecord.question("_web._tcp.marathon.meseta." if qtype != "A" else "web.marathon.meseta.", qtype)
    if edns:
        query.add_ar(EDNS0(udp_len=limit))
    full = ans.answer(query, book, CONFIG)
    assert full is not None
    full = ans.with_edns(query, full)
    whole = DNSRecord.parse(full.pack())
    packed = ans.encode(full, limit)
    assert len(packed) <= limit
    cut = DNSRecord.parse(packed)
    assert [str(rr) for rr in cut.rr] == [str(rr) for rr in whole.rr[:len(cut.rr)]]
    assert cut.header.tc == (len(cut.rr) < len(whole.rr))
    assert [rr.rtype == QTYPE.OPT for rr in cut.ar].count(True) == int(edns)
    if not cut.header.tc and len(cut.ar) < len(whole.ar):
        assert [rr.rtype for rr in cut.ar] == ([QTYPE.OPT] if edns else [])  # additional dropped whole
