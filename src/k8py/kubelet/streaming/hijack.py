"""Taking over an aiohttp server connection after an HTTP upgrade (as Go's
http.Hijacker): answer 101 with the given headers, then the raw bytes of the
connection are ours in both directions.

Usage (in an aiohttp handler)::

    resp, conn = await hijack(request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    data = await conn.reader.read(65536)    # bytes the client sent after its request
    await conn.write(b"...")
    conn.close()
    return resp                             # aiohttp then drops the connection

``status`` may be other than 101 (the API server relays the kubelet's own
answer head verbatim with ``raw_head``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from aiohttp import web


class _FeedParser:
    """Stands where aiohttp's WebSocket reader would: every byte after the
    request goes to a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class RawConnection:
    def __init__(self, request: web.BaseRequest, reader: asyncio.StreamReader, writer: Any):
        self.request = request
        self.reader = reader
        self._writer = writer  # aiohttp's payload writer: used for drain() only
        self.transport = request.transport

    async def write(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            raise ConnectionResetError("connection closed")
        t.write(data)
        await self._writer.drain()

    def write_eof(self) -> None:
        t = self.transport
        if t is not None and not t.is_closing() and t.can_write_eof():
            try:
                t.write_eof()
            except (OSError, RuntimeError):
                pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def hijack(request: web.BaseRequest, headers: Mapping[str, str] | list[tuple[str, str]],
                 status: int = 101, reason: str | None = None) -> tuple[web.StreamResponse, RawConnection]:
    resp = web.StreamResponse(status=status, reason=reason)
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        resp.headers.add(k, v)
    resp.force_close()
    writer = await resp.prepare(request)
    reader = asyncio.StreamReader(limit=2 ** 20)
    request.protocol.set_parser(_FeedParser(reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    return resp, RawConnection(request, reader, writer)
