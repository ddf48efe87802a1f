"""Port forwarding into a pod's network namespace, in the three forms clients use
(k8s.io/kubelet/pkg/cri/streaming/portforward, client-go tools/portforward).

Usage (in the kubelet server's handler)::

    return await serve(request, netns_path_or_None, pod_label="ns/name")

Forms:
- SPDY (``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version: portforward.k8s.io``):
  for each connection the client opens two streams with headers
  ``streamType`` (error | data), ``port`` and ``requestID``; we pair them by
  requestID, connect to localhost:port inside the pod, copy both ways and say
  what went wrong on the error stream.
- SPDY tunnelled in a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``,
  kubectl >= 1.31): the same SPDY byte stream cut into binary messages.
- WebSocket channels (``v4.channel.k8s.io``, the Python client): ports from the
  ``port``/``ports`` query; port i has data channel 2i and error channel 2i+1,
  and the first message on each is the port number, 2 bytes little-endian.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import struct
import threading

from aiohttp import WSMsgType, web

from . import wsstream
from .remotecommand import forbidden_protocol, is_spdy, is_websocket, negotiate, open_spdy
from .spdy import SpdyConnection, SpdyStream

log = logging.getLogger("k8py.kubelet.portforward")

PROTOCOL_V1 = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL_V1
CLONE_NEWNET = 0x40000000
PAIR_TIMEOUT = 30.0


class DialError(OSError):
    pass


def _connect_in_netns(netns: str | None, port: int) -> socket.socket:
    """Connect to localhost:port from inside `netns` (runs in its own thread:
    setns changes the calling thread's namespace only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    orig = target = -1
    try:
        if netns:
            orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(netns, os.O_RDONLY)
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise DialError(err, f"setns {netns}: {os.strerror(err)}")
        last: OSError | None = None
        for family, addr in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(addr)
                s.setblocking(False)
                return s
            except OSError as e:
                s.close()
                last = e
        raise DialError(last.errno if last else 0, f"failed to connect to localhost:{port} inside namespace "
                        f"\"{netns or 'host'}\": {last}")
    finally:
        if orig >= 0:
            if libc.setns(orig, CLONE_NEWNET) != 0:  # never leave the thread in the pod's namespace
                os.abort()
            os.close(orig)
        if target >= 0:
            os.close(target)


async def dial(netns: str | None, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[socket.socket] = loop.create_future()

    def work() -> None:
        try:
            s = _connect_in_netns(netns, port)
        except BaseException as e:  # noqa: BLE001
            loop.call_soon_threadsafe(lambda err=e: fut.done() or fut.set_exception(err))
            return
        loop.call_soon_threadsafe(lambda: fut.set_result(s) if not fut.done() else s.close())

    # a fresh thread: a pool thread could be reused while it sits in the pod's namespace
    threading.Thread(target=work, name=f"portforward-dial-{port}", daemon=True).start()
    sock = await fut
    return await asyncio.open_connection(sock=sock)


# ---- SPDY ---------------------------------------------------------------------------

async def _forward_pair(netns: str | None, pod: str, port: int, data: SpdyStream, error: SpdyStream) -> None:
    try:
        reader, writer = await dial(netns, port)
    except OSError as e:
        msg = f"error forwarding port {port} to pod {pod}: {e}"
        log.info("%s", msg)
        try:
            await error.write(msg.encode())
        except ConnectionError:
            pass
        await error.close()
        await data.close()
        return

    async def to_pod() -> None:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    up = asyncio.create_task(to_pod())
    try:
        while chunk := await reader.read(65536):
            await data.write(chunk)
    except (ConnectionError, OSError):
        pass
    finally:
        up.cancel()
        writer.close()
        await data.close()
        await error.close()


def _request_id(s: SpdyStream) -> str:
    rid = s.headers.get("requestid", "")
    if rid:
        return rid
    # clients older than requestID: one pair per connection, error first
    return str(s.id if s.headers.get("streamtype") == "error" else s.id - 2)


async def _serve_spdy(conn: SpdyConnection, netns: str | None, pod: str) -> None:
    pending: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while (s := await conn.accept()) is not None:
            stype = s.headers.get("streamtype", "")
            if stype not in ("data", "error"):
                await s.reset()
                continue
            pair = pending.setdefault(_request_id(s), {})
            pair[stype] = s
            if len(pair) < 2:
                continue
            del pending[_request_id(s)]
            try:
                port = int(pair["data"].headers.get("port", ""))
                if not 0 < port < 65536:
                    raise ValueError
            except ValueError:
                await pair["error"].write(f"invalid port: {pair['data'].headers.get('port', '')!r}".encode())
                await pair["error"].close()
                await pair["data"].close()
                continue
            t = asyncio.create_task(_forward_pair(netns, pod, port, pair["data"], pair["error"]))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
    finally:
        for t in list(tasks):
            t.cancel()


class _WsByteStream:
    """The SPDY tunnel: WebSocket binary messages as one byte stream."""

    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws
        self.reader = asyncio.StreamReader(limit=2 ** 20)

    async def pump(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    self.reader.feed_data(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            self.reader.feed_eof()

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")
        await self.ws.send_bytes(data)


# ---- WebSocket channels -------------------------------------------------------------------

def _ports(request: web.BaseRequest) -> list[int]:
    out: list[int] = []
    for name in ("port", "ports"):
        for v in request.query.getall(name, []):
            for p in v.split(","):
                p = p.strip()
                if p:
                    n = int(p)
                    if not 0 < n < 65536:
                        raise ValueError(p)
                    out.append(n)
    return out


async def _serve_channels(ch: wsstream.ChannelConn, ports: list[int], netns: str | None, pod: str) -> None:
    async def one(i: int, port: int) -> None:
        data_ch, err_ch = 2 * i, 2 * i + 1
        prefix = struct.pack("<H", port)
        await ch.write(data_ch, prefix)
        await ch.write(err_ch, prefix)
        try:
            reader, writer = await dial(netns, port)
        except OSError as e:
            await ch.write(err_ch, f"error forwarding port {port} to pod {pod}: {e}".encode())
            return

        async def to_pod() -> None:
            while chunk := await ch.read(data_ch):
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        up = asyncio.create_task(to_pod())
        try:
            while chunk := await reader.read(65536):
                await ch.write(data_ch, chunk)
        except (ConnectionError, OSError, RuntimeError):
            pass
        finally:
            up.cancel()
            writer.close()

    await asyncio.gather(*(one(i, p) for i, p in enumerate(ports)), return_exceptions=True)


# ---- entry point ----------------------------------------------------------------------------

async def serve(request: web.BaseRequest, netns: str | None, pod: str) -> web.StreamResponse:
    if is_websocket(request):
        try:
            ports = _ports(request)
        except ValueError as e:
            return web.Response(status=400, text=f"invalid port: {e}")
        ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,) + wsstream.PORTFORWARD_PROTOCOLS,
                                   max_msg_size=0, compress=False)
        await ws.prepare(request)  # type: ignore[arg-type]
        if ws.ws_protocol == TUNNEL_PROTOCOL:
            bs = _WsByteStream(ws)
            pump = asyncio.create_task(bs.pump())
            conn = SpdyConnection(bs.reader, bs.write)
            runner = asyncio.create_task(conn.run())
            try:
                await _serve_spdy(conn, netns, pod)
            finally:
                runner.cancel()
                pump.cancel()
                await ws.close()
            return ws
        if not ports:
            await ws.close(message=b"at least one port must be specified")
            return ws
        ch = wsstream.ChannelConn(ws)
        reader_task = asyncio.create_task(ch.run())
        serving = asyncio.create_task(_serve_channels(ch, ports, netns, pod))
        try:
            await asyncio.wait([serving, asyncio.ensure_future(ch.closed.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            serving.cancel()
            await ch.close()
            reader_task.cancel()
        return ws
    if is_spdy(request):
        protocol = negotiate(request, (PROTOCOL_V1,))
        if protocol is None:
            return forbidden_protocol(request, (PROTOCOL_V1,))
        resp, conn, raw, runner = await open_spdy(request, protocol or PROTOCOL_V1)
        try:
            await _serve_spdy(conn, netns, pod)
        finally:
            await conn.close()
            raw.close()
            runner.cancel()
        return resp
    return web.Response(status=400, text="Upgrade request required")


__all__ = ["serve", "dial", "PROTOCOL_V1", "TUNNEL_PROTOCOL"]
