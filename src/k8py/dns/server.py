"""The DNS server: UDP and TCP listeners in front of one :class:`Resolver`.

The hot path (:meth:`Resolver.fast`) handles the common query shape (one
question, class IN, at most one OPT record) for names that have a
compiled template, with no parsing beyond walking the question's labels:
the query's first question bytes, lowered, are the table key.  Everything
else (NXDOMAIN/NODATA, pod names, CNAMEs, EDNS versions, malformed
messages, forwarding) takes :meth:`Resolver.slow`, which parses the
message; only an upstream round trip makes it asynchronous.

UDP answers respect the client's payload size (512 bytes without EDNS,
RFC 1035; the OPT record's size otherwise): longer answers are cut to
whole answer records with TC set so the client retries over TCP."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Awaitable, Union

from . import wire
from .forward import Entry, Forwarder, UpstreamError
from .records import Answer, Zone
from .wire import RR, Edns, Message

log = logging.getLogger(__name__)

OUR_UDP_SIZE = 1232  # the DNS flag day 2020 default
_OPT = b"\x00\x00\x29" + struct.pack(">H", OUR_UDP_SIZE) + b"\x00\x00\x00\x00\x00\x00"
_OPT_DO = b"\x00\x00\x29" + struct.pack(">H", OUR_UDP_SIZE) + b"\x00\x00\x80\x00\x00\x00"

Reply = Union[bytes, None, Awaitable[Union[bytes, None]]]


class Resolver:
    def __init__(self, zone: Zone, forwarder: Forwarder | None = None):
        self.zone = zone
        self.forwarder = forwarder
        self.stats = {"queries": 0, "fast": 0}

    # ------------------------------------------------------------ fast path

    def fast(self, data: bytes, tcp: bool) -> bytes | None:
        n = len(data)
        # a query (QR 0, opcode 0), one question, no answer/authority records
        if n < 17 or data[2] & 0xF8 or data[4] or data[5] != 1 or data[6] or data[7] or data[8] or data[9]:
            return None
        i = 12
        while True:
            ln = data[i]
            if not ln:
                break
            if ln > 63:
                return None
            i += ln + 1
            if i >= n:
                return None
        qend = i + 5
        if qend > n or data[i + 3] or data[i + 4] != 1:
            return None
        t = self.zone.template(data[12:i + 3].lower())
        if t is None:
            return None
        ar = data[10] << 8 | data[11]
        rd = data[2] & 1
        if ar == 0:
            if qend != n:
                return None
            resp = b"".join((data[:2], t.flags[rd], t.counts, data[12:qend], t.tail))
            if len(resp) > 512 and not tcp:
                return t.truncated(data[:2], rd, data[12:qend], 512, b"")
            return resp
        if ar != 1 or n < qend + 11 or data[qend] or data[qend + 1] or data[qend + 2] != 41 or data[qend + 6] \
                or n != qend + 11 + (data[qend + 9] << 8 | data[qend + 10]):
            return None  # not a lone, well-formed version-0 OPT: the slow path decides
        opt = _OPT_DO if data[qend + 7] & 0x80 else _OPT
        resp = b"".join((data[:2], t.flags[rd], t.counts_edns, data[12:qend], t.tail, opt))
        if not tcp:
            limit = max(512, data[qend + 3] << 8 | data[qend + 4])
            if len(resp) > limit:
                return t.truncated(data[:2], rd, data[12:qend], limit, opt)
        return resp

    # ------------------------------------------------------------ slow path

    def handle(self, data: bytes, tcp: bool) -> Reply:
        """The reply to one message: bytes, None (drop it), or an awaitable
        when the answer needs an upstream."""
        self.stats["queries"] += 1
        try:
            r = self.fast(data, tcp)
        except IndexError:
            r = None
        if r is not None:
            self.stats["fast"] += 1
            return r
        return self.slow(data, tcp)

    def slow(self, data: bytes, tcp: bool) -> Reply:
        if len(data) < 12 or data[2] & 0x80:
            return None  # not even a header, or a response: ignore
        try:
            msg = wire.parse(data)
        except (wire.WireError, UnicodeError, ValueError, struct.error):
            return _error(data[:2], (data[2] & 0x79) << 8, wire.FORMERR)
        rd = msg.flags & wire.RD
        if msg.opcode != 0:
            return _error(data[:2], (msg.flags & 0x7900), wire.NOTIMP)
        if len(msg.question) != 1:
            return _error(data[:2], rd, wire.FORMERR)
        edns = msg.edns
        if edns is not None and edns.version != 0:
            return self._respond(msg, Answer(rcode=wire.BADVERS), 65535, edns)
        limit = 65535 if tcp else (max(512, edns.udp_size) if edns else 512)
        q = msg.question[0]
        if q.qclass != wire.CLASS_IN:
            return self._respond(msg, Answer(rcode=wire.REFUSED), limit, edns)
        name = q.name.lower()
        if self.zone.in_zone(name):
            ans = self.zone.lookup(name, q.qtype)
            if ans.chase is not None and q.qtype in (wire.A, wire.AAAA) and self.forwarder is not None:
                return self._chase(msg, ans, limit, edns)
            return self._respond(msg, ans, limit, edns)
        if self.forwarder is None or not self.forwarder.upstreams:
            return self._respond(msg, Answer(rcode=wire.SERVFAIL), limit, edns)
        do = bool(edns and edns.do)
        hit = self.forwarder.cached((name, q.qtype, q.qclass, do))
        if hit is not None:
            return self._from_entry(data, hit, limit, edns)
        return self._forward(data, msg, name, limit, edns)

    def _respond(self, msg: Message, ans: Answer, limit: int, edns: Edns | None) -> bytes:
        flags = wire.QR | wire.RA | (msg.flags & wire.RD)
        if ans.rcode in (wire.NOERROR, wire.NXDOMAIN):
            flags |= wire.AA
        if ans.template is not None:  # in the table, but a shape the fast path left alone (e.g. options)
            q = msg.question[0]
            t = ans.template
            qb = wire.name_to_wire(q.name) + struct.pack(">HH", q.qtype, q.qclass)
            opt = _opt(edns)
            rd = 1 if msg.flags & wire.RD else 0
            resp = b"".join((struct.pack(">H", msg.id), t.flags[rd], t.counts_edns if opt else t.counts, qb,
                             t.tail, opt))
            if len(resp) > limit:
                return t.truncated(struct.pack(">H", msg.id), rd, qb, limit, opt)
            return resp
        rcode = ans.rcode
        out = Message(msg.id, flags | (rcode & 0xF), msg.question, ans.answer, ans.authority, list(ans.additional))
        if edns is not None:
            out.additional.append(Edns(OUR_UDP_SIZE, ext_rcode=rcode >> 4, do=edns.do).to_rr())
        built = wire.build(out)
        if len(built.wire) <= limit:
            return built.wire
        return _truncate(out, built, limit, edns)

    def _from_entry(self, data: bytes, e: Entry, limit: int, edns: Edns | None) -> bytes:
        import time
        qend = 12 + e.qlen
        buf = e.serve(data[:2], data[2] & 1, data[12:qend], time.monotonic())
        if edns is not None:
            struct.pack_into(">H", buf, 10, (buf[10] << 8 | buf[11]) + 1)  # OPT goes last
            buf += _opt(edns)
        if len(buf) <= limit:
            return bytes(buf)
        msg = wire.parse(bytes(buf))
        return _truncate(msg, wire.build(msg), limit, edns)

    async def _forward(self, data: bytes, msg: Message, name: str, limit: int, edns: Edns | None) -> bytes | None:
        q = msg.question[0]
        assert self.forwarder is not None
        try:
            e = await self.forwarder.resolve(name, q.qtype, q.qclass, bool(edns and edns.do))
        except UpstreamError as err:
            log.debug("forwarding %s: %s", name, err)
            return self._respond(msg, Answer(rcode=wire.SERVFAIL), limit, edns)
        return self._from_entry(data, e, limit, edns)

    async def _chase(self, msg: Message, ans: Answer, limit: int, edns: Edns | None) -> bytes:
        """An ExternalName's CNAME, followed by its target's records from
        upstream (CoreDNS resolves the target the same way)."""
        q = msg.question[0]
        assert self.forwarder is not None and ans.chase is not None
        try:
            e = await self.forwarder.resolve(ans.chase.lower(), q.qtype, q.qclass, False)
            reply = wire.parse(e.wire)
            ans.answer += reply.answer
        except (UpstreamError, wire.WireError) as err:
            log.debug("resolving ExternalName target %s: %s", ans.chase, err)
        return self._respond(msg, ans, limit, edns)


def _opt(edns: Edns | None) -> bytes:
    if edns is None:
        return b""
    return _OPT_DO if edns.do else _OPT


def _error(mid: bytes, flags: int, rcode: int) -> bytes:
    """A header-only reply (FORMERR, NOTIMP) for messages we cannot or will
    not read further."""
    return mid + struct.pack(">HHHHH", wire.QR | wire.RA | (flags & (wire.RD | 0x7800)) | rcode, 0, 0, 0, 0)


def _truncate(msg: Message, built: wire.Built, limit: int, edns: Edns | None) -> bytes:
    opt = [rr for rr in msg.additional if rr.rtype == wire.OPT][:1]
    room = limit - (11 if opt else 0)
    k = sum(1 for end in built.ends[0] if end <= room)
    out = Message(msg.id, msg.flags | wire.TC, msg.question, msg.answer[:k], [], opt)
    return out.to_wire()


# ---------------------------------------------------------------- transports


class _UDPServer(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        try:
            r = self.resolver.handle(data, False)
        except Exception:  # noqa: BLE001 - one bad query must not stop the server
            log.exception("query from %s failed", addr)
            r = _error(data[:2], 0, wire.SERVFAIL) if len(data) >= 12 else None
        if r is None:
            return
        if isinstance(r, bytes):
            assert self.transport is not None
            self.transport.sendto(r, addr)
            return
        t = asyncio.ensure_future(self._later(r, addr))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _later(self, r: Awaitable[bytes | None], addr: tuple) -> None:  # type: ignore[type-arg]
        try:
            resp = await r
        except Exception:  # noqa: BLE001
            log.exception("query from %s failed", addr)
            return
        if resp is not None and self.transport is not None:
            self.transport.sendto(resp, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %s", exc)


class DNSServer:
    """Listens on one address over UDP and TCP."""

    TCP_IDLE = 10.0  # seconds an idle TCP connection is kept (RFC 7766 suggests seconds)

    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_proto: _UDPServer | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for opt, size in ((socket.SO_RCVBUF, 4 << 20), (socket.SO_SNDBUF, 4 << 20)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
            except OSError:
                pass
        sock.bind((host, port))
        self.port = sock.getsockname()[1]
        self._udp, self._udp_proto = await loop.create_datagram_endpoint(  # type: ignore[assignment]
            lambda: _UDPServer(self.resolver), sock=sock)
        self._tcp = await asyncio.start_server(self._serve_tcp, host, self.port, reuse_address=True)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            try:
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
        if self._udp_proto is not None:
            for t in list(self._udp_proto.tasks):
                t.cancel()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: length-prefixed messages, several per connection,
        answered in order."""
        try:
            while True:
                try:
                    hdr = await asyncio.wait_for(reader.readexactly(2), self.TCP_IDLE)
                    (n,) = struct.unpack(">H", hdr)
                    data = await asyncio.wait_for(reader.readexactly(n), self.TCP_IDLE)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    r = self.resolver.handle(data, True)
                    if r is not None and not isinstance(r, bytes):
                        r = await r
                except Exception:  # noqa: BLE001
                    log.exception("tcp query failed")
                    r = _error(data[:2], 0, wire.SERVFAIL) if len(data) >= 12 else None
                if r is None:
                    continue
                writer.write(struct.pack(">H", len(r)) + r)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


__all__ = ["DNSServer", "Resolver", "RR"]
