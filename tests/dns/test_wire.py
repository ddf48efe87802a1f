"""The DNS wire format: round trips, name compression, EDNS0."""

from __future__ import annotations

import struct

import pytest

from k8py.dns import wire
from k8py.dns.wire import RR, Edns, Message, Question


def sample() -> Message:
    n = "web.default.svc.cluster.local"
    return Message(0x1234, wire.QR | wire.AA | wire.RD | wire.RA, [Question(n, wire.SRV)], [
        RR(n, wire.SRV, 5, (0, 50, 80, "a.web.default.svc.cluster.local")),
        RR(n, wire.SRV, 5, (0, 50, 80, "b.web.default.svc.cluster.local")),
    ], [RR("cluster.local", wire.SOA, 5, ("ns.dns.cluster.local", "hostmaster.cluster.local", 7, 7200, 1800,
                                            86400, 5))], [
        RR("a.web.default.svc.cluster.local", wire.A, 5, "10.42.0.5"),
        RR("b.web.default.svc.cluster.local", wire.AAAA, 5, "fd00::1"),
        RR("x.cluster.local", wire.CNAME, 30, "web.default.svc.cluster.local"),
        RR("x.cluster.local", wire.MX, 30, (10, "mail.example.com")),
        RR("x.cluster.local", wire.TXT, 30, (b"hello", b"")),
        RR("x.cluster.local", wire.PTR, 30, "y.example"),
        RR("x.cluster.local", 99, 30, b"\x01\x02"),  # unknown type: raw rdata
        Edns(4096, do=True, options=b"\x00\x0a\x00\x08" + b"c" * 8).to_rr(),
    ])


def test_round_trip_with_and_without_compression() -> None:
    m = sample()
    for compress in (True, False):
        data = m.to_wire(compress)
        back = wire.parse(data)
        assert back == m
        assert back.to_wire(compress) == data
    assert len(m.to_wire(True)) < len(m.to_wire(False))


def test_compression_points_at_the_question() -> None:
    n = "web.default.svc.cluster.local"
    data = Message(1, wire.QR, [Question(n, wire.A)], [RR(n, wire.A, 5, "10.43.0.1")]).to_wire()
    # the answer's owner name is a pointer to offset 12, the question's name
    qend = 12 + len(wire.name_to_wire(n)) + 4
    assert data[qend:qend + 2] == b"\xc0\x0c"
    # a suffix shared with an earlier name is a pointer into it
    data2 = Message(1, 0, [Question(n, wire.A)], [RR("other.svc.cluster.local", wire.A, 5, "1.2.3.4")]).to_wire()
    off = n.index("svc") + 12
    assert b"\x05other" + struct.pack(">H", 0xC000 | off) in data2
    # case is preserved in the data, but compression is case-insensitive
    data3 = Message(1, 0, [Question("WEB.Default.svc.cluster.local", wire.A)],
                    [RR("web.default.svc.cluster.local", wire.A, 5, "1.2.3.4")]).to_wire()
    assert wire.parse(data3).answer[0].name == "WEB.Default.svc.cluster.local"


def test_srv_target_is_not_compressed() -> None:
    n = "_http._tcp.web.default.svc.cluster.local"
    data = Message(1, 0, [Question(n, wire.SRV)], [RR(n, wire.SRV, 5, (0, 100, 80, "web.default.svc.cluster.local"))]
                   ).to_wire()
    assert wire.name_to_wire("web.default.svc.cluster.local") in data[data.index(b"\x00\x50", 60):]


def test_bad_messages_are_rejected() -> None:
    q = wire.make_query("a.b", wire.A)
    with pytest.raises(wire.WireError):
        wire.parse(q[:10])
    with pytest.raises(wire.WireError):
        wire.parse(q[:-3])  # question cut short
    # a pointer to itself (a loop) and a forward pointer
    looped = q[:12] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(wire.WireError):
        wire.parse(looped)
    fwd = q[:12] + b"\xc0\x20" + b"\x00\x01\x00\x01"
    with pytest.raises(wire.WireError):
        wire.parse(fwd)
    # two OPT records: FORMERR (RFC 6891 6.1.1)
    two = Message(1, 0, [Question("a", wire.A)], additional=[Edns().to_rr(), Edns().to_rr()]).to_wire()
    with pytest.raises(wire.WireError):
        wire.parse(two)
    with pytest.raises(wire.WireError):
        wire.name_to_wire("a" * 64 + ".b")
    with pytest.raises(wire.WireError):
        wire.name_to_wire(".".join(["abcdefgh"] * 40))


def test_edns_opt_record() -> None:
    q = wire.make_query("example.com", wire.AAAA, 9, edns=Edns(1400, do=True, options=b"\x00\x0a\x00\x08abcdefgh"))
    m = wire.parse(q)
    e = m.edns
    assert e is not None and e.udp_size == 1400 and e.do and e.version == 0
    assert e.options.startswith(b"\x00\x0a")
    # the OPT record's fields: root name, type 41, class = size, ttl = ext rcode/version/flags
    assert q[-23:-12] == b"\x00\x00\x29\x05\x78\x00\x00\x80\x00\x00\x0c"
    # extended rcode: BADVERS = 16 is 0 in the header and 1 in the OPT record
    r = Message(9, wire.QR, m.question, additional=[Edns(1232, ext_rcode=1).to_rr()])
    assert wire.parse(r.to_wire()).rcode == wire.BADVERS


def test_helpers() -> None:
    assert wire.reverse_name("10.43.0.10") == "10.0.43.10.in-addr.arpa"
    assert wire.reverse_name("fd00::1").endswith(".ip6.arpa")
    assert wire.dashed_ip("10.42.0.5") == "10-42-0-5"
    assert wire.dashed_ip("fd00::1") == "fd00--1"
    assert wire.wire_to_name(wire.name_to_wire("a.b.c")) == "a.b.c"
    assert wire.name_to_wire("") == b"\x00"
