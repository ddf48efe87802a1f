"""Forwarding names outside the cluster to the host's resolvers, with a
cache: CoreDNS's ``forward . /etc/resolv.conf`` and ``cache 30`` as k3s
configures them.

- Upstreams come from ``/etc/resolv.conf``; when that names only
  systemd-resolved's stub (127.0.0.53), ``/run/systemd/resolve/resolv.conf``
  is read instead, as the kubelet does (the stub would answer from the host's
  view and forwarding to it from a cluster DNS invites loops).
- Queries go over UDP on one socket per upstream (ids matched to waiters),
  retried over TCP when the answer comes back truncated; the next upstream
  is tried on a timeout or SERVFAIL/REFUSED.  Identical questions in flight
  share one upstream query.
- Answers are cached positive and negative (RFC 2308: the SOA's TTL and
  minimum, whichever is lower), each TTL capped at ``max_ttl`` and counted
  down while served.  The cached bytes have no id and no OPT record, so a
  hit is served by patching id, RD, the question's case and the TTLs."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

from . import wire
from .wire import SOA, Edns, Message, Question

log = logging.getLogger(__name__)

CacheKey = tuple[str, int, int, bool]


def parse_upstream(spec: str, default_port: int = 53) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``[::1]:53`` or ``::1``."""
    s = spec.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if s.count(":") == 1:
        host, _, port = s.partition(":")
        return host, int(port)
    return s, default_port


def resolv_conf_nameservers(path: str) -> list[str]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1].split("%")[0])
    except OSError:
        pass
    return out


def host_upstreams(resolv_conf: str = "/etc/resolv.conf",
                   systemd_resolv_conf: str = "/run/systemd/resolve/resolv.conf") -> list[tuple[str, int]]:
    """The host's resolvers, as the kubelet picks them for ``dnsPolicy:
    Default`` pods: the systemd-resolved stub is replaced by the real
    upstreams it uses."""
    ns = resolv_conf_nameservers(resolv_conf)
    if ns and all(ip == "127.0.0.53" for ip in ns) and os.path.exists(systemd_resolv_conf):
        ns = resolv_conf_nameservers(systemd_resolv_conf)
    good = []
    for ip in ns:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            continue
        good.append((ip, 53))
    return good


@dataclass
class Entry:
    """One cached upstream answer (id 0, lowercase question, no OPT)."""

    wire: bytes
    ttl_offsets: list[int]
    ttls: list[int]
    answer_ends: list[int]
    qlen: int
    stored: float
    expires: float
    rcode: int

    def serve(self, mid: bytes, rd: int, question: bytes, now: float) -> bytearray:
        buf = bytearray(self.wire)
        buf[0:2] = mid
        buf[2] = (buf[2] & 0xFE) | rd
        buf[12:12 + self.qlen] = question
        age = int(now - self.stored)
        if age:
            for off, ttl in zip(self.ttl_offsets, self.ttls):
                struct.pack_into(">I", buf, off, max(ttl - age, 0))
        return buf


class UpstreamError(Exception):
    pass


class _UDPClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 12:
            return
        fut = self.pending.get(data[0] << 8 | data[1])
        if fut is not None and not fut.done():
            fut.set_result(data)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(UpstreamError(str(exc)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class Forwarder:
    def __init__(self, upstreams: list[tuple[str, int]], *, max_ttl: int = 30, size: int = 9984,
                 timeout: float = 2.0):
        self.upstreams = upstreams
        self.max_ttl = max_ttl
        self.size = size
        self.timeout = timeout
        self.cache: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._udp: dict[tuple[str, int], _UDPClient] = {}
        self._inflight: dict[CacheKey, asyncio.Future[Entry]] = {}
        self.stats = {"hits": 0, "misses": 0, "upstream_queries": 0}

    def close(self) -> None:
        for c in self._udp.values():
            if c.transport is not None:
                c.transport.close()
        self._udp.clear()

    def cached(self, key: CacheKey) -> Entry | None:
        e = self.cache.get(key)
        if e is None:
            return None
        if e.expires <= time.monotonic():
            del self.cache[key]
            return None
        self.stats["hits"] += 1
        return e

    async def resolve(self, name: str, qtype: int, qclass: int = wire.CLASS_IN, do: bool = False) -> Entry:
        """The answer for a question (lowercase name), from the cache or
        upstream.  Raises UpstreamError when no upstream answered."""
        key = (name, qtype, qclass, do)
        e = self.cached(key)
        if e is not None:
            return e
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            e = await self._resolve(key)
            fut.set_result(e)
            return e
        except BaseException as exc:
            fut.set_exception(exc if isinstance(exc, Exception) else UpstreamError("cancelled"))
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._inflight[key]

    async def _resolve(self, key: CacheKey) -> Entry:
        self.stats["misses"] += 1
        name, qtype, qclass, do = key
        if not self.upstreams:
            raise UpstreamError("no upstream resolvers")
        last: Exception | None = None
        reply: Message | None = None
        for up in self.upstreams:
            try:
                reply = await self._exchange(up, name, qtype, qclass, do)
            except (UpstreamError, OSError, asyncio.TimeoutError, wire.WireError) as e:
                last = e
                log.debug("upstream %s:%d for %s: %s", up[0], up[1], name, e)
                continue
            if reply.rcode in (wire.SERVFAIL, wire.REFUSED):
                last = UpstreamError(f"upstream answered rcode {reply.rcode}")
                continue
            break
        else:
            if reply is None:
                raise UpstreamError(str(last))
        assert reply is not None
        return self._store(key, reply)

    async def _exchange(self, up: tuple[str, int], name: str, qtype: int, qclass: int, do: bool) -> Message:
        self.stats["upstream_queries"] += 1
        client = self._udp.get(up)
        if client is None or client.transport is None:
            loop = asyncio.get_running_loop()
            _, client = await loop.create_datagram_endpoint(_UDPClient, remote_addr=up)
            self._udp[up] = client
        mid = random.randrange(0x10000)
        while mid in client.pending:
            mid = random.randrange(0x10000)
        q = Message(mid, wire.RD, [Question(name, qtype, qclass)], additional=[Edns(1232, do=do).to_rr()])
        data = q.to_wire()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        client.pending[mid] = fut
        try:
            assert client.transport is not None
            client.transport.sendto(data)
            raw = await asyncio.wait_for(fut, self.timeout)
        finally:
            client.pending.pop(mid, None)
        reply = wire.parse(raw)
        if not (reply.flags & wire.QR) or len(reply.question) != 1 or \
                reply.question[0].name.lower() != name or reply.question[0].qtype != qtype:
            raise UpstreamError("reply does not match the question")
        if reply.flags & wire.TC:
            reply = await self._exchange_tcp(up, data)
        return reply

    async def _exchange_tcp(self, up: tuple[str, int], data: bytes) -> Message:
        async def go() -> Message:
            reader, writer = await asyncio.open_connection(up[0], up[1])
            try:
                writer.write(struct.pack(">H", len(data)) + data)
                (n,) = struct.unpack(">H", await reader.readexactly(2))
                return wire.parse(await reader.readexactly(n))
            finally:
                writer.close()
        return await asyncio.wait_for(go(), self.timeout)

    def _store(self, key: CacheKey, reply: Message) -> Entry:
        name, qtype, qclass, _ = key
        rcode = reply.rcode & 0xF
        if reply.answer:
            ttl = min(rr.ttl for rr in reply.answer)
        else:
            soas = [rr for rr in reply.authority if rr.rtype == SOA]
            ttl = min(soas[0].ttl, soas[0].data[6]) if soas else 0  # RFC 2308 5
        ttl = min(ttl, self.max_ttl)
        for rr in reply.answer + reply.authority + reply.additional:
            rr.ttl = min(rr.ttl, self.max_ttl)
        msg = Message(0, (reply.flags & ~(wire.TC | wire.AA | 0xF)) | rcode | wire.QR | wire.RA,
                      [Question(name, qtype, qclass)], reply.answer, reply.authority,
                      [rr for rr in reply.additional if rr.rtype != wire.OPT])
        built = wire.build(msg)
        qlen = len(wire.name_to_wire(name)) + 4
        now = time.monotonic()
        e = Entry(built.wire, built.ttl_offsets,
                  [struct.unpack_from(">I", built.wire, o)[0] for o in built.ttl_offsets],
                  built.ends[0], qlen, now, now + ttl, rcode)
        if ttl > 0 and rcode in (wire.NOERROR, wire.NXDOMAIN):
            self.cache[key] = e
            self.cache.move_to_end(key)
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return e
