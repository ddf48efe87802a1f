"""Kubernetes' WebSocket channel protocols (k8s.io/apimachinery wsstream).

Every message carries one channel: in the binary protocols the first byte is
the channel number and the rest the data; in the base64 ones the message is
text, its first character the channel as an ASCII digit and the rest the data
in base64.  Versions:

    channel.k8s.io, base64.channel.k8s.io        v1: error channel carries text
    v2.channel.k8s.io                            same framing, kubectl's v2
    v3.channel.k8s.io                            + resize channel 4
    v4.channel.k8s.io, v4.base64.channel.k8s.io  error channel carries a JSON metav1.Status
    v5.channel.k8s.io                            + the close signal: [255, channel] half-closes

Usage::

    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0, compress=False)
    await ws.prepare(request)
    ch = ChannelConn(ws)                  # reads ws messages into per-channel queues
    asyncio.create_task(ch.run())
    await ch.write(STDOUT, b"hi")
    data = await ch.read(STDIN)           # b"" at end (v5 close signal, or the socket closed)
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_CHANNEL = 255

V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V5 = "v5.channel.k8s.io"

# in the kubelet's order of preference when a client offers several (the
# client's order decides, as kube's negotiation does)
EXEC_PROTOCOLS = (V5, V4, V4_BASE64, V3, V2, V1, V1_BASE64)
PORTFORWARD_PROTOCOLS = (V4, V4_BASE64)


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int      # 1..5
    base64: bool

    @property
    def json_status(self) -> bool:
        return self.version >= 4

    @property
    def resize(self) -> bool:
        return self.version >= 3

    @property
    def close_signal(self) -> bool:
        return self.version >= 5


def parse_protocol(name: str | None) -> Protocol:
    name = name or ""
    if name in (V5, V4, V3, V2):
        return Protocol(name, int(name[1]), False)
    if name == V4_BASE64:
        return Protocol(name, 4, True)
    if name == V1_BASE64:
        return Protocol(name, 1, True)
    return Protocol(name, 1, False)  # "channel.k8s.io" or none at all


def encode(proto: Protocol, channel: int, data: bytes) -> bytes | str:
    if proto.base64:
        return chr(ord("0") + channel) + base64.b64encode(data).decode()
    return bytes((channel,)) + data


def decode(proto: Protocol, msg: bytes | str) -> tuple[int, bytes]:
    """(channel, data) of one message.  A binary protocol reads text messages
    the same way (the Python client sends str data as text frames)."""
    if isinstance(msg, str):
        if not msg:
            raise ValueError("empty message")
        if proto.base64:
            return ord(msg[0]) - ord("0"), base64.b64decode(msg[1:])
        msg = msg.encode()
    if not msg:
        raise ValueError("empty message")
    return msg[0], msg[1:]


class ChannelConn:
    """A negotiated WebSocket seen as numbered channels."""

    def __init__(self, ws: web.WebSocketResponse, proto: Protocol | None = None):
        self.ws = ws
        self.proto = proto or parse_protocol(ws.ws_protocol)
        self._queues: dict[int, asyncio.Queue[bytes]] = {}
        self._ended: set[int] = set()
        self.closed = asyncio.Event()   # the client went away
        self._lock = asyncio.Lock()

    def _queue(self, channel: int) -> asyncio.Queue[bytes]:
        q = self._queues.get(channel)
        if q is None:
            q = self._queues[channel] = asyncio.Queue()
        return q

    def _end(self, channel: int) -> None:
        if channel not in self._ended:
            self._ended.add(channel)
            self._queue(channel).put_nowait(b"")

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY or msg.type == WSMsgType.TEXT:
                    try:
                        channel, data = decode(self.proto, msg.data)
                    except ValueError:
                        continue
                    if channel == CLOSE_CHANNEL and self.proto.close_signal:
                        if data:
                            self._end(data[0])
                        continue
                    if data and channel not in self._ended:
                        self._queue(channel).put_nowait(data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed.set()
            for ch in list(self._queues):
                self._end(ch)
            self._end(STDIN)
            self._end(RESIZE)

    async def read(self, channel: int) -> bytes:
        """The next data on `channel`; b"" once it was closed (then always b"")."""
        q = self._queue(channel)
        data = await q.get()
        if not data:
            q.put_nowait(b"")
        return data

    async def write(self, channel: int, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")
        msg = encode(self.proto, channel, data)
        async with self._lock:
            if isinstance(msg, str):
                await self.ws.send_str(msg)
            else:
                await self.ws.send_bytes(msg)

    async def close_channel(self, channel: int) -> None:
        """Our half-close of a channel (v5 only; earlier versions have no way to say it)."""
        if self.proto.close_signal and not self.ws.closed:
            try:
                await self.write(CLOSE_CHANNEL, bytes((channel,)))
            except (ConnectionError, RuntimeError):
                pass

    async def close(self) -> None:
        if not self.ws.closed:
            try:
                await self.ws.close()
            except (ConnectionError, RuntimeError):
                pass
