"""The DNS wire format (RFC 1035, 2782, 3596, 6891), written out by hand:
it is small, and the server needs exact control over bytes to answer from
precomputed responses.

Names are plain ``str`` without the trailing dot (the root is ``""``);
labels are decoded as latin-1 so that any byte survives a round trip.
:class:`Message` parses and builds whole messages, compressing names
(RFC 1035 4.1.4) on the way out; :func:`build` also reports where each
record ends and where its TTL sits, which the zone's response templates
(truncation) and the forwarder's cache (TTL aging) need."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

# record types
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", MX: "MX", TXT: "TXT",
              AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY"}
CLASS_IN = 1

# response codes (RFC 1035, 6891 for the extended BADVERS)
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16

# header flag bits
QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010

MAX_POINTER = 0x3FFF


class WireError(ValueError):
    """A message that cannot be parsed (the server answers FORMERR)."""


@dataclass
class Question:
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass
class RR:
    """One resource record.  ``data`` depends on the type: A/AAAA the
    address as text; NS/CNAME/PTR a name; MX ``(preference, name)``; SRV
    ``(priority, weight, port, target)``; SOA ``(mname, rname, serial,
    refresh, retry, expire, minimum)``; TXT a tuple of byte strings; OPT and
    anything else the raw rdata bytes.  For OPT, ``rclass`` is the UDP
    payload size and ``ttl`` holds extended rcode, version and flags."""

    name: str
    rtype: int
    ttl: int
    data: Any
    rclass: int = CLASS_IN


@dataclass
class Edns:
    udp_size: int = 1232
    ext_rcode: int = 0
    version: int = 0
    do: bool = False
    options: bytes = b""

    def to_rr(self) -> RR:
        ttl = (self.ext_rcode << 24) | (self.version << 16) | (0x8000 if self.do else 0)
        return RR("", OPT, ttl, self.options, rclass=self.udp_size)

    @classmethod
    def from_rr(cls, rr: RR) -> "Edns":
        return cls(udp_size=max(rr.rclass, 512), ext_rcode=(rr.ttl >> 24) & 0xFF, version=(rr.ttl >> 16) & 0xFF,
                   do=bool(rr.ttl & 0x8000), options=bytes(rr.data))


@dataclass
class Message:
    id: int = 0
    flags: int = 0
    question: list[Question] = field(default_factory=list)
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)

    @property
    def rcode(self) -> int:
        """The full rcode: the header's four bits plus the OPT record's
        upper eight (RFC 6891 6.1.3)."""
        e = self.edns
        return (self.flags & 0xF) | ((e.ext_rcode << 4) if e else 0)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def edns(self) -> Edns | None:
        for rr in self.additional:
            if rr.rtype == OPT:
                return Edns.from_rr(rr)
        return None

    def to_wire(self, compress: bool = True) -> bytes:
        return build(self, compress).wire

    @classmethod
    def from_wire(cls, data: bytes) -> "Message":
        return parse(data)


# ---------------------------------------------------------------- names


def name_to_wire(name: str) -> bytes:
    """Uncompressed wire form of a name (used as dictionary keys, lowered)."""
    if not name or name == ".":
        return b"\x00"
    out = bytearray()
    for label in name.rstrip(".").split("."):
        b = label.encode("latin-1")
        if not b or len(b) > 63:
            raise WireError(f"bad label in {name!r}")
        out.append(len(b))
        out += b
    out.append(0)
    if len(out) > 255:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def wire_to_name(wire: bytes) -> str:
    labels = []
    i = 0
    while wire[i]:
        n = wire[i]
        labels.append(wire[i + 1:i + 1 + n].decode("latin-1"))
        i += 1 + n
    return ".".join(labels)


def read_name(data: bytes, off: int) -> tuple[str, int]:
    """Reads a possibly compressed name at ``off``; returns it and the
    offset just past its first (in-place) part.  Pointers must point
    backwards, which also rules out loops."""
    labels: list[str] = []
    end = -1
    pos = off
    total = 0
    n = len(data)
    while True:
        if pos >= n:
            raise WireError("name runs past the message")
        ln = data[pos]
        if ln & 0xC0 == 0xC0:
            if pos + 1 >= n:
                raise WireError("truncated pointer")
            ptr = ((ln & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            if ptr >= pos:
                raise WireError("compression pointer does not point backwards")
            pos = ptr
            continue
        if ln & 0xC0:
            raise WireError("unknown label type")
        if ln == 0:
            if end < 0:
                end = pos + 1
            break
        if pos + 1 + ln > n:
            raise WireError("label runs past the message")
        labels.append(data[pos + 1:pos + 1 + ln].decode("latin-1"))
        total += ln + 1
        if total > 255:
            raise WireError("name too long")
        pos += 1 + ln
    return ".".join(labels), end


class _Writer:
    def __init__(self, compress: bool):
        self.buf = bytearray()
        self.compress = compress
        self.names: dict[str, int] = {}

    def name(self, name: str, compress: bool = True) -> None:
        labels = name.split(".") if name else []
        buf = self.buf
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if self.compress and compress:
                ptr = self.names.get(suffix)
                if ptr is not None:
                    buf += struct.pack(">H", 0xC000 | ptr)
                    return
            if len(buf) <= MAX_POINTER:
                self.names.setdefault(suffix, len(buf))
            b = labels[i].encode("latin-1")
            if not b or len(b) > 63:
                raise WireError(f"bad label in {name!r}")
            buf.append(len(b))
            buf += b
        buf.append(0)


@dataclass
class Built:
    wire: bytes
    # end offset of each record, per section (answer, authority, additional)
    ends: tuple[list[int], list[int], list[int]]
    # offsets of the TTL field of every record except OPT
    ttl_offsets: list[int]


def _rdata(w: _Writer, rr: RR) -> None:
    t, d = rr.rtype, rr.data
    buf = w.buf
    if t == A:
        buf += ipaddress.IPv4Address(d).packed
    elif t == AAAA:
        buf += ipaddress.IPv6Address(d).packed
    elif t in (NS, CNAME, PTR):
        w.name(d)
    elif t == MX:
        buf += struct.pack(">H", d[0])
        w.name(d[1])
    elif t == SRV:
        buf += struct.pack(">HHH", d[0], d[1], d[2])
        w.name(d[3], compress=False)  # RFC 2782: the target is not compressed
    elif t == SOA:
        w.name(d[0])
        w.name(d[1])
        buf += struct.pack(">IIIII", *d[2:7])
    elif t == TXT:
        for s in d:
            if len(s) > 255:
                raise WireError("TXT string too long")
            buf.append(len(s))
            buf += s
    else:
        buf += bytes(d)


def build(msg: Message, compress: bool = True) -> Built:
    w = _Writer(compress)
    buf = w.buf
    buf += struct.pack(">HHHHHH", msg.id & 0xFFFF, msg.flags & 0xFFFF, len(msg.question), len(msg.answer),
                       len(msg.authority), len(msg.additional))
    for q in msg.question:
        w.name(q.name)
        buf += struct.pack(">HH", q.qtype, q.qclass)
    ends: tuple[list[int], list[int], list[int]] = ([], [], [])
    ttls: list[int] = []
    for sec, rrs in enumerate((msg.answer, msg.authority, msg.additional)):
        for rr in rrs:
            w.name(rr.name)
            if rr.rtype != OPT:
                ttls.append(len(buf) + 4)
            buf += struct.pack(">HHIH", rr.rtype, rr.rclass, rr.ttl & 0xFFFFFFFF, 0)
            start = len(buf)
            _rdata(w, rr)
            rdlen = len(buf) - start
            if rdlen > 0xFFFF:
                raise WireError("rdata too long")
            struct.pack_into(">H", buf, start - 2, rdlen)
            ends[sec].append(len(buf))
    if len(buf) > 0xFFFF:
        raise WireError("message too long")
    return Built(bytes(buf), ends, ttls)


def _parse_rdata(data: bytes, rtype: int, off: int, rdlen: int) -> Any:
    end = off + rdlen
    if rtype == A:
        if rdlen != 4:
            raise WireError("bad A rdata")
        return str(ipaddress.IPv4Address(data[off:end]))
    if rtype == AAAA:
        if rdlen != 16:
            raise WireError("bad AAAA rdata")
        return str(ipaddress.IPv6Address(data[off:end]))
    if rtype in (NS, CNAME, PTR):
        name, p = read_name(data, off)
        if p != end:
            raise WireError("bad name rdata")
        return name
    if rtype == MX:
        (pref,) = struct.unpack_from(">H", data, off)
        name, p = read_name(data, off + 2)
        if p != end:
            raise WireError("bad MX rdata")
        return (pref, name)
    if rtype == SRV:
        prio, weight, port = struct.unpack_from(">HHH", data, off)
        name, p = read_name(data, off + 6)
        if p != end:
            raise WireError("bad SRV rdata")
        return (prio, weight, port, name)
    if rtype == SOA:
        mname, p = read_name(data, off)
        rname, p = read_name(data, p)
        if p + 20 != end:
            raise WireError("bad SOA rdata")
        return (mname, rname, *struct.unpack_from(">IIIII", data, p))
    if rtype == TXT:
        out = []
        p = off
        while p < end:
            n = data[p]
            if p + 1 + n > end:
                raise WireError("bad TXT rdata")
            out.append(bytes(data[p + 1:p + 1 + n]))
            p += 1 + n
        return tuple(out)
    return bytes(data[off:end])


def parse(data: bytes) -> Message:
    if len(data) < 12:
        raise WireError("short header")
    mid, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", data, 0)
    msg = Message(mid, flags)
    off = 12
    for _ in range(qd):
        name, off = read_name(data, off)
        if off + 4 > len(data):
            raise WireError("truncated question")
        qtype, qclass = struct.unpack_from(">HH", data, off)
        off += 4
        msg.question.append(Question(name, qtype, qclass))
    for count, sec in ((an, msg.answer), (ns, msg.authority), (ar, msg.additional)):
        for _ in range(count):
            name, off = read_name(data, off)
            if off + 10 > len(data):
                raise WireError("truncated record")
            rtype, rclass, ttl, rdlen = struct.unpack_from(">HHIH", data, off)
            off += 10
            if off + rdlen > len(data):
                raise WireError("rdata runs past the message")
            sec.append(RR(name, rtype, ttl, _parse_rdata(data, rtype, off, rdlen), rclass))
            off += rdlen
    if sum(1 for rr in msg.additional if rr.rtype == OPT) > 1:
        raise WireError("more than one OPT record")  # RFC 6891 6.1.1: FORMERR
    return msg


def make_query(name: str, qtype: int, mid: int = 0, rd: bool = True, edns: Edns | None = None) -> bytes:
    msg = Message(mid, RD if rd else 0, [Question(name, qtype)])
    if edns is not None:
        msg.additional.append(edns.to_rr())
    return msg.to_wire()


def reverse_name(ip: str) -> str:
    """``10.43.0.10`` -> ``10.0.43.10.in-addr.arpa`` (and ip6.arpa nibbles)."""
    return ipaddress.ip_address(ip).reverse_pointer


def dashed_ip(ip: str) -> str:
    """The label kube DNS uses for an address: dots (or colons) to dashes."""
    return ip.replace(":", "-") if ":" in ip else ip.replace(".", "-")
