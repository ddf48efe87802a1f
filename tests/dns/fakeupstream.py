"""A tiny authoritative DNS server on loopback for tests: fixed records,
a query log, and knobs (truncate over UDP, stay silent)."""

from __future__ import annotations

import asyncio
import socket
import struct

from k8py.dns import wire
from k8py.dns.wire import RR, Message


async def udp_query(port: int, data: bytes, timeout: float = 3.0, host: str = "127.0.0.1") -> bytes:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, data)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
    finally:
        sock.close()


async def tcp_query(port: int, *datas: bytes, host: str = "127.0.0.1") -> list[bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for d in datas:
            writer.write(struct.pack(">H", len(d)) + d)
        await writer.drain()
        out = []
        for _ in datas:
            (n,) = struct.unpack(">H", await reader.readexactly(2))
            out.append(await reader.readexactly(n))
        return out
    finally:
        writer.close()


class FakeUpstream(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[RR]] = {}
        self.soa = RR("example.com", wire.SOA, 60, ("ns.example.com", "admin.example.com", 1, 2, 3, 4, 7))
        self.log: list[tuple[str, str, int]] = []   # (transport, name, type)
        self.truncate_udp: set[str] = set()
        self.silent = False
        self.port = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> "FakeUpstream":
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", self.port)
        return self

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self._tcp is not None:
            self._tcp.close()

    def answer(self, data: bytes, tcp: bool) -> bytes:
        q = wire.parse(data)
        qq = q.question[0]
        self.log.append(("tcp" if tcp else "udp", qq.name.lower(), qq.qtype))
        rrs = self.records.get((qq.name.lower(), qq.qtype))
        exists = any(n == qq.name.lower() for n, _ in self.records)
        r = Message(q.id, wire.QR | wire.RA | (q.flags & wire.RD), q.question)
        if rrs:
            r.answer = list(rrs)
        else:
            r.flags |= wire.NOERROR if exists else wire.NXDOMAIN
            r.authority = [self.soa]
        if q.edns is not None:
            r.additional.append(wire.Edns(1232).to_rr())
        if not tcp and qq.name.lower() in self.truncate_udp:
            r.flags |= wire.TC
            r.answer = []
        return r.to_wire()

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        if not self.silent and self.transport is not None:
            self.transport.sendto(self.answer(data, False), addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (n,) = struct.unpack(">H", await reader.readexactly(2))
            resp = self.answer(await reader.readexactly(n), True)
            writer.write(struct.pack(">H", len(resp)) + resp)
            await writer.drain()
        finally:
            writer.close()
