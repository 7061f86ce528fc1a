"""The answerer: (query, book, config) -> response, decided without I/O (spec 1.5).

    in the domain D.       AA; RA when upstream resolvers are configured
      A AAAA SRV ANY       the name's records, rotated per query; SRV adds each target's first address
      SOA NS at D.         in the answer section (a SOA/NS at another in-domain name: as any empty answer)
      empty answer         NOERROR (NODATA) when the name has records of another type, else NXDOMAIN;
                           both with the SOA in the authority section (negative caching, RFC 2308)
    outside D.             ``None``: the shell forwards it to the resolvers, or answers REFUSED
    malformed              FORMERR (no question, a response, several questions); other opcodes NOTIMP

Size (``encode``): 512 bytes over UDP, or the EDNS0 size the client advertises (up to 4096), 65535
over TCP. An oversized response drops the additional section first, then answers from the end,
and sets TC (unless ``set_truncate_bit`` is off) so the client retries over TCP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from dnslib import AAAA, EDNS0, NS, OPCODE, QTYPE, RCODE, RR, SOA, SRV, A, DNSBuffer, DNSHeader, DNSRecord

UDP_DEFAULT = 512
UDP_MAX = 4096  # the largest EDNS0 size we honour (and advertise): a common resolver default
TCP_MAX = 65535
ADDRESS_TYPES = ("A", "AAAA")


class Lookup(Protocol):
    serial: int

    def lookup(self, name: str, rtype: str) -> list[str | tuple[str, int]]: ...

    def exists(self, name: str) -> bool: ...


@dataclass(frozen=True)
class AnswerConfig:
    domain: str = "meseta"
    ttl: int = 60
    mname: str = "ns1.meseta."
    rname: str = "root.ns1.meseta."
    refresh: int = 60
    retry: int = 600
    expire: int = 86400
    recurse: bool = False
    set_truncate_bit: bool = True

    def in_domain(self, name: str) -> bool:
        apex = f"{self.domain}."
        return name == apex or name.endswith(f".{apex}")


def query_name(query: DNSRecord) -> str:
    """Lower-cased, ``.*`` wildcard fragments removed (as Mesos-DNS)."""
    return str(query.q.qname).lower().replace(".*", "")


def _rdata(rtype: str, value: str | tuple[str, int]) -> A | AAAA | SRV:
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    assert isinstance(value, tuple)
    target, port = value
    return SRV(priority=0, weight=1, port=port, target=target)


def _rotated(values: list[str | tuple[str, int]], rotation: int) -> list[str | tuple[str, int]]:
    if len(values) < 2:
        return values
    cut = rotation % len(values)
    return values[cut:] + values[:cut]


def soa_rr(config: AnswerConfig, serial: int) -> RR:
    times = (serial, config.refresh, config.retry, config.expire, config.ttl)
    return RR(f"{config.domain}.", QTYPE.SOA, ttl=config.ttl, rdata=SOA(config.mname, config.rname, times))


def _header(query: DNSRecord, config: AnswerConfig, rcode: int = RCODE.NOERROR, aa: bool = True) -> DNSHeader:
    return DNSHeader(id=query.header.id, qr=1, aa=int(aa), ra=int(config.recurse), rd=query.header.rd,
                     opcode=query.header.opcode, rcode=rcode)


def error(query: DNSRecord, config: AnswerConfig, rcode: int) -> DNSRecord:
    reply = DNSRecord(_header(query, config, rcode, aa=False))
    if query.questions[:1]:
        reply.add_question(query.q)
    return reply


def answer(query: DNSRecord, book: Lookup, config: AnswerConfig, rotation: int = 0) -> DNSRecord | None:
    """The response to ``query``, or None when the name is outside the domain (to forward)."""
    if query.header.qr or len(query.questions) != 1:
        return error(query, config, RCODE.FORMERR)
    if query.header.opcode != OPCODE.QUERY:
        return error(query, config, RCODE.NOTIMP)
    name, qtype = query_name(query), QTYPE.get(query.q.qtype)
    if not config.in_domain(name):
        return None
    reply = DNSRecord(_header(query, config), q=query.q)
    wanted = {"A": ("A",), "AAAA": ("AAAA",), "SRV": ("SRV",), "ANY": ("A", "AAAA", "SRV")}.get(qtype, ())
    targets: set[str] = set()
    for rtype in wanted:
        code = getattr(QTYPE, rtype)
        for value in _rotated(book.lookup(name, rtype), rotation):
            reply.rr.append(RR(name, code, ttl=config.ttl, rdata=_rdata(rtype, value)))
            if isinstance(value, tuple) and value[0] not in targets:
                targets.add(value[0])
                _add_target(reply, book, config, value[0])
    if name == f"{config.domain}.":
        if qtype in ("SOA", "ANY"):
            reply.rr.append(soa_rr(config, book.serial))
        if qtype in ("NS", "ANY"):
            reply.rr.append(RR(name, QTYPE.NS, ttl=config.ttl, rdata=NS(config.mname)))
    if not reply.rr:
        if not book.exists(name) and name != f"{config.domain}.":
            reply.header.rcode = RCODE.NXDOMAIN
        reply.auth.append(soa_rr(config, book.serial))
    reply.set_header_qa()
    return reply


def _add_target(reply: DNSRecord, book: Lookup, config: AnswerConfig, target: str) -> None:
    """The target's first address (A, else AAAA) in the additional section."""
    for rtype in ADDRESS_TYPES:
        values = book.lookup(target, rtype)
        if values:
            reply.ar.append(RR(target, getattr(QTYPE, rtype), ttl=config.ttl, rdata=_rdata(rtype, values[0])))
            return


def size_limit(query: DNSRecord, tcp: bool) -> int:
    if tcp:
        return TCP_MAX
    for rr in query.ar:
        if rr.rtype == QTYPE.OPT:
            return max(UDP_DEFAULT, min(int(rr.rclass), UDP_MAX))
    return UDP_DEFAULT


def with_edns(query: DNSRecord, reply: DNSRecord) -> DNSRecord:
    """Echo EDNS0 (RFC 6891) when the query used it."""
    if any(rr.rtype == QTYPE.OPT for rr in query.ar):
        reply.add_ar(EDNS0(udp_len=UDP_MAX))
    return reply


def encode(reply: DNSRecord, limit: int, set_truncate_bit: bool = True) -> bytes:
    """Pack ``reply`` within ``limit`` bytes: drop the additional section, then answers, then TC.

    One pass: every record is packed once and its end offset noted; a message over the limit is
    cut at a record boundary (names only point backwards, so what is kept stays valid), its
    counts rewritten, and the EDNS0 OPT record (no compressed names) appended again."""
    reply.set_header_qa()
    buffer = DNSBuffer()
    reply.header.pack(buffer)
    for question in reply.questions:
        question.pack(buffer)
    question_end = buffer.offset
    ends = []
    for rr in (*reply.rr, *reply.auth, *reply.ar):
        rr.pack(buffer)
        ends.append(buffer.offset)
    packed = bytes(buffer.data)
    if len(packed) <= limit:
        return packed
    opt = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    opt_bytes = b"".join(bytes(_packed(rr)) for rr in opt)
    answers, authority = len(reply.rr), len(reply.auth)
    cut_all = ends[answers + authority - 1] if answers + authority else None
    if cut_all is not None and cut_all + len(opt_bytes) <= limit:
        return _counts(packed[:cut_all] + opt_bytes, answers, authority, len(opt), tc=False)
    kept = 0
    while kept < answers and ends[kept] + len(opt_bytes) <= limit:
        kept += 1
    start = ends[kept - 1] if kept else question_end
    return _counts(packed[:start] + opt_bytes, kept, 0, len(opt), tc=set_truncate_bit)


def _packed(rr: RR) -> bytes:
    buffer = DNSBuffer()
    rr.pack(buffer)
    return bytes(buffer.data)


def _counts(message: bytes, answers: int, authority: int, additional: int, tc: bool) -> bytes:
    flags = (message[2] | 0x02) if tc else (message[2] & ~0x02)
    return (message[:2] + bytes([flags]) + message[3:6] + struct.pack("!HHH", answers, authority, additional)
            + message[12:])
