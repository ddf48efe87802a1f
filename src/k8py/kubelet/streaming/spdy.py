"""SPDY/3.1 as Kubernetes uses it (docker/spdystream under k8s.io/apimachinery's
httpstream/spdy): a multiplex of byte streams over one connection.

Usage (server side, after the HTTP 101 answer)::

    conn = SpdyConnection(reader, write)       # reader: asyncio.StreamReader; write: async (bytes)
    runner = asyncio.create_task(conn.run())
    stream = await conn.accept()              # the next SYN_STREAM, replied to; None at the end
    stream.headers["streamtype"]              # header names are lower case on the wire
    data = await stream.read()                # b"" once the peer half-closed (FIN) or reset
    await stream.write(b"...")
    await stream.close()                      # our FIN
    await conn.close()                        # GOAWAY, then the caller closes the transport

Frames (SPDY/3): a control frame is ``1 | version(15)=3 | type(16) | flags(8) |
length(24) | data``; a data frame is ``0 | stream id(31) | flags(8) |
length(24) | data``.  Header blocks are ``count(32) (len(32) name len(32)
value)*``, compressed with one zlib stream per direction whose dictionary is
the SPDY/3 one, flushed with Z_SYNC_FLUSH after each block.  spdystream does
no flow control, so neither do we: WINDOW_UPDATE frames are read and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from typing import Awaitable, Callable

log = logging.getLogger("k8py.kubelet.spdy")

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5

MAX_DATA = 32 * 1024  # bytes per data frame we send

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]

_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)

# The zlib dictionary of SPDY/3 header compression (draft 3, section 2.6.10.1).
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    """The peer broke the protocol."""


# ---- framing -------------------------------------------------------------------

def control_frame(ftype: int, flags: int, data: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(data)) + data


def data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


def pack_header_block(headers: list[tuple[str, str]]) -> bytes:
    """The uncompressed block; values of a repeated name are joined by NUL."""
    merged: dict[str, list[str]] = {}
    for k, v in headers:
        merged.setdefault(k.lower(), []).append(v)
    out = [struct.pack(">I", len(merged))]
    for k, vs in merged.items():
        kb, vb = k.encode(), "\0".join(vs).encode()
        out += [struct.pack(">I", len(kb)), kb, struct.pack(">I", len(vb)), vb]
    return b"".join(out)


def unpack_header_block(block: bytes) -> dict[str, list[str]]:
    try:
        (n,) = struct.unpack_from(">I", block, 0)
        pos, out = 4, {}
        for _ in range(n):
            (ln,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + ln].decode().lower()
            pos += 4 + ln
            (lv,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + lv].decode()
            pos += 4 + lv
            out.setdefault(name, []).extend(value.split("\0"))
        return out
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyError(f"bad header block: {e}") from None


class HeaderCompressor:
    """One direction's zlib stream (kept for the whole connection)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                   zdict=DICTIONARY)

    def compress(self, headers: list[tuple[str, str]]) -> bytes:
        return self._z.compress(pack_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, data: bytes) -> dict[str, list[str]]:
        try:
            return unpack_header_block(self._z.decompress(data))
        except zlib.error as e:
            raise SpdyError(f"bad compressed header block: {e}") from None


# ---- connection ------------------------------------------------------------------

Write = Callable[[bytes], Awaitable[None]]


class SpdyStream:
    def __init__(self, conn: "SpdyConnection", stream_id: int, headers: dict[str, list[str]], fin: bool):
        self.conn = conn
        self.id = stream_id
        self.all_headers = headers
        self.headers = {k: v[0] if v else "" for k, v in headers.items()}
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        if fin:
            self._remote_fin()

    def _feed(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self._queue.put_nowait(data)

    def _remote_fin(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._queue.put_nowait(b"")

    async def read(self) -> bytes:
        """The next data the peer sent; b"" at its FIN (then always b"")."""
        data = await self._queue.get()
        if not data:
            self._queue.put_nowait(b"")  # stay at end of stream for later readers
        return data

    async def read_all(self) -> bytes:
        out = []
        while data := await self.read():
            out.append(data)
        return b"".join(out)

    async def write(self, data: bytes) -> None:
        if self.local_closed:
            raise ConnectionResetError("write on a closed SPDY stream")
        view = memoryview(data)
        for i in range(0, len(view), MAX_DATA):
            await self.conn._send(data_frame(self.id, 0, bytes(view[i:i + MAX_DATA])))

    async def close(self) -> None:
        """Half-close: our FIN (an empty data frame with FLAG_FIN)."""
        if self.local_closed:
            return
        self.local_closed = True
        try:
            await self.conn._send(data_frame(self.id, FLAG_FIN, b""))
        except (ConnectionError, RuntimeError):
            pass

    async def reset(self, status: int = CANCEL) -> None:
        self.local_closed = True
        self._remote_fin()
        try:
            await self.conn._send(control_frame(RST_STREAM, 0, struct.pack(">II", self.id, status)))
        except (ConnectionError, RuntimeError):
            pass


class SpdyConnection:
    """The server side of a SPDY/3.1 connection: the peer opens the streams."""

    def __init__(self, reader: asyncio.StreamReader, write: Write):
        self._reader = reader
        self._write = write
        self._lock = asyncio.Lock()
        self._zout = HeaderCompressor()
        self._zin = HeaderDecompressor()
        self.streams: dict[int, SpdyStream] = {}
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self.closed = asyncio.Event()  # set once the peer is gone (EOF, GOAWAY, error)
        self._goaway_sent = False

    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            await self._write(frame)

    async def _send_headers_frame(self, ftype: int, flags: int, prefix: bytes,
                                  headers: list[tuple[str, str]]) -> None:
        # compress under the lock: the zlib stream's order must be the wire's order
        async with self._lock:
            block = self._zout.compress(headers)
            await self._write(control_frame(ftype, flags, prefix + block))

    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opened (already replied to); None once the connection ended."""
        s = await self._incoming.get()
        if s is None:
            self._incoming.put_nowait(None)
        return s

    async def run(self) -> None:
        """Read frames until the peer goes away; then end every stream."""
        try:
            while True:
                head = await self._reader.readexactly(8)
                w1, w2 = struct.unpack(">II", head)
                flags, length = w2 >> 24, w2 & 0xFFFFFF
                payload = await self._reader.readexactly(length) if length else b""
                if w1 & 0x80000000:
                    if not await self._control((w1 >> 16) & 0x7FFF, w1 & 0xFFFF, flags, payload):
                        break
                else:
                    s = self.streams.get(w1 & 0x7FFFFFFF)
                    if s is None:
                        continue  # data for a stream we reset or never saw
                    s._feed(payload)
                    if flags & FLAG_FIN:
                        s._remote_fin()
        except (asyncio.IncompleteReadError, ConnectionError, SpdyError) as e:
            if isinstance(e, SpdyError):
                log.warning("SPDY connection: %s", e)
        finally:
            self.closed.set()
            for s in self.streams.values():
                s._remote_fin()
            self._incoming.put_nowait(None)

    async def _control(self, version: int, ftype: int, flags: int, payload: bytes) -> bool:
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        if ftype == SYN_STREAM:
            if len(payload) < 10:
                raise SpdyError("short SYN_STREAM")
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            headers = self._zin.decompress(payload[10:])
            s = SpdyStream(self, sid, headers, bool(flags & FLAG_FIN))
            self.streams[sid] = s
            # kube's connection replies as soon as its handler accepted the stream
            await self._send_headers_frame(SYN_REPLY, 0, struct.pack(">I", sid), [])
            self._incoming.put_nowait(s)
        elif ftype == SYN_REPLY or ftype == HEADERS:
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            self._zin.decompress(payload[4:])  # keep the zlib stream in step
            s = self.streams.get(sid)
            if s is not None and flags & FLAG_FIN:
                s._remote_fin()
        elif ftype == RST_STREAM:
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            s = self.streams.get(sid)
            if s is not None:
                s.local_closed = True
                s._remote_fin()
        elif ftype == PING:
            await self._send(control_frame(PING, 0, payload[:4]))
        elif ftype == GOAWAY:
            return False
        # SETTINGS, WINDOW_UPDATE: nothing to do (spdystream does no flow control)
        return True

    async def close(self) -> None:
        """GOAWAY (once); the caller then closes the transport."""
        for s in list(self.streams.values()):
            await s.close()
        if not self._goaway_sent:
            self._goaway_sent = True
            try:
                await self._send(control_frame(GOAWAY, 0, struct.pack(">II", 0, 0)))
            except (ConnectionError, RuntimeError):
                pass
