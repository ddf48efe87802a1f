"""The reverse proxy: HTTP/1.1 on asyncio streams, with a small parser of
its own (the head is split on CRLF; bodies are relayed as they are framed).

Why not aiohttp's server and client: a proxied request through them costs
two full request/response objects and the proxy then runs at about a third
of the backend's rate; relaying bytes costs a few awaits per request.

What it does, as ingress-nginx does:

- keep-alive to clients, and a pool of keep-alive connections to each pod;
  a pooled connection the pod closed meanwhile is retried once on a fresh
  one (only when the request body is held in memory, so nothing is lost);
- connecting to a pod fails: the next endpoint is tried (up to three);
- ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` / ``-Port`` and
  ``X-Real-IP`` are set (not appended: a client cannot forge them);
  ``Host`` is passed through; hop-by-hop headers are dropped;
- ``Upgrade`` (WebSocket) requests are relayed and, after a ``101``, the
  connection becomes a byte pipe both ways;
- ``Expect: 100-continue`` and large or chunked bodies are streamed while
  the response is read, so a backend may answer early;
- TLS: one listening socket, the certificate chosen by SNI from the current
  table (``SSLContext.sni_callback``), a self-signed default otherwise.

The table is read once per request from ``self.table``; swapping it is one
assignment (see :mod:`k8py.ingress.rules`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
import time
from typing import Any

from .rules import Backend, RoutingTable, self_signed_pem, server_context, split_host

log = logging.getLogger(__name__)

BUFFER_BODY = 64 * 1024  # request bodies up to this size are read before sending (retryable)
INLINE_BODY = 256 * 1024  # response bodies up to this size are sent with their head in one write
CHUNK = 64 * 1024
HEAD_LIMIT = 64 * 1024

# dropped from requests (set by us) and from responses (hop-by-hop)
_REQ_DROP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade",
                       b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                       b"x-real-ip", b"host"))
_RESP_DROP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"trailer", b"upgrade"))


class BadRequest(Exception):
    def __init__(self, status: int = 400, reason: str = "Bad Request"):
        self.status, self.reason = status, reason
        super().__init__(f"{status} {reason}")


class _Stale(Exception):
    """A pooled connection turned out closed before answering."""


def response(status: int, reason: str, body: bytes = b"", *, close: bool = False,
             extra: bytes = b"") -> bytes:
    head = (f"HTTP/1.1 {status} {reason}\r\nServer: k8py-ingress\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


NOT_FOUND = response(404, "Not Found", b"default backend - 404\n")


def parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes, bytes]]]:
    """(start line, [(lowercased name, name, value)]) of a message head that
    ends with CRLF CRLF.  Obsolete line folding and spaces before the colon
    are refused, as RFC 9112 asks of a proxy."""
    lines = head[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1:] in b" \t" or name[:1] in b" \t":
            raise BadRequest()
        headers.append((name.lower(), name, value.strip(b" \t")))
    return lines[0], headers


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


class Upstream:
    """One connection to a pod."""

    __slots__ = ("key", "reader", "writer", "idle_since")

    def __init__(self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.key = key
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class UpstreamPool:
    """Idle keep-alive connections per endpoint (ingress-nginx keeps 320 per
    worker; a pod's own idle timeout usually closes them first)."""

    def __init__(self, max_idle: int = 64, idle_timeout: float = 60.0, connect_timeout: float = 5.0):
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], collections.deque[Upstream]] = {}

    def take(self, key: tuple[str, int]) -> Upstream | None:
        q = self._idle.get(key)
        while q:
            up = q.pop()
            if up.usable():
                return up
            up.close()
        return None

    async def connect(self, key: tuple[str, int]) -> Upstream:
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(key[0], key[1], limit=HEAD_LIMIT)
        return Upstream(key, reader, writer)

    def put(self, up: Upstream) -> None:
        if not up.usable():
            up.close()
            return
        q = self._idle.setdefault(up.key, collections.deque())
        if len(q) >= self.max_idle:
            up.close()
            return
        up.idle_since = time.monotonic()
        q.append(up)

    def sweep(self) -> None:
        """Close connections idle too long, and forget emptied endpoints."""
        limit = time.monotonic() - self.idle_timeout
        for key in list(self._idle):
            q = self._idle[key]
            while q and (q[0].idle_since < limit or not q[0].usable()):
                q.popleft().close()
            if not q:
                del self._idle[key]

    def close(self) -> None:
        for q in self._idle.values():
            for up in q:
                up.close()
        self._idle.clear()


class _Deadline:
    """Aborts a transport when time runs out.  One TimerHandle per request:
    ``asyncio.timeout`` costs several times more, and on the hot path that
    showed (about a tenth of the proxy's CPU)."""

    __slots__ = ("handle", "expired")

    def __init__(self, delay: float, transport: asyncio.BaseTransport):
        self.expired = False
        self.handle = asyncio.get_running_loop().call_later(delay, self._fire, transport)

    def _fire(self, transport: asyncio.WriteTransport) -> None:
        self.expired = True
        transport.abort()

    def cancel(self) -> None:
        self.handle.cancel()


class _Request:
    """What one request needs carried between its steps."""

    __slots__ = ("method", "target", "version", "headers", "host", "length", "chunked", "expect",
                 "upgrade", "keep_alive")


class IngressProxy:
    def __init__(self, table: RoutingTable | None = None, *, read_timeout: float = 60.0,
                 keepalive_timeout: float = 75.0, connect_timeout: float = 5.0):
        self.table = table or RoutingTable()
        self.read_timeout = read_timeout
        self.keepalive_timeout = keepalive_timeout
        self.pool = UpstreamPool(connect_timeout=connect_timeout)
        self.servers: list[asyncio.base_events.Server] = []
        self._clients: set[asyncio.StreamWriter] = set()
        self._busy: set[asyncio.StreamWriter] = set()
        self._sweeper: asyncio.Task[None] | None = None
        cert, key = self_signed_pem()
        self.default_context = server_context(cert, key)
        self.default_context.sni_callback = self._sni

    def swap(self, table: RoutingTable) -> None:
        """Use ``table`` from the next request on; requests in flight finish
        with the backend they already picked."""
        self.table = table

    # -- servers --------------------------------------------------------------

    async def start(self, bind: str, http_port: int | None, https_port: int | None) -> list[int]:
        """Listen; returns the ports bound (useful with port 0)."""
        ports: list[int] = []
        if http_port is not None:
            srv = await asyncio.start_server(lambda r, w: self._client(r, w, b"http"), bind or None, http_port,
                                             limit=HEAD_LIMIT, reuse_address=True, backlog=1024)
            self.servers.append(srv)
            ports.append(srv.sockets[0].getsockname()[1])
        if https_port is not None:
            srv = await asyncio.start_server(lambda r, w: self._client(r, w, b"https"), bind or None,
                                             https_port, ssl=self.default_context, limit=HEAD_LIMIT,
                                             reuse_address=True, backlog=1024, ssl_handshake_timeout=10)
            self.servers.append(srv)
            ports.append(srv.sockets[0].getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep())
        return ports

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(15)
            self.pool.sweep()

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening, close idle client connections, let requests in
        flight finish for up to ``grace`` seconds, then close the rest."""
        for srv in self.servers:
            srv.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for w in list(self._clients - self._busy):
            w.close()
        deadline = time.monotonic() + grace
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for w in list(self._clients):
            w.close()
        self.pool.close()
        for srv in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1)
        self.servers = []

    def _sni(self, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ctx = self.table.ssl_context(server_name)
        if ctx is not None:
            sslobj.context = ctx

    # -- one client connection -------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: bytes) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = (peer[0] if peer else "").encode()
        local = writer.get_extra_info("sockname")
        local_port = str(local[1]).encode() if local else b""
        self._clients.add(writer)
        loop = asyncio.get_running_loop()
        transport = writer.transport
        try:
            while True:
                idle = loop.call_later(self.keepalive_timeout, transport.abort)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed between requests
                except asyncio.LimitOverrunError:
                    writer.write(response(431, "Request Header Fields Too Large", close=True))
                    return
                except (TimeoutError, ConnectionError, ssl.SSLError):
                    return
                finally:
                    idle.cancel()
                self._busy.add(writer)
                try:
                    keep = await self._request(reader, writer, head, scheme, client_ip, local_port)
                finally:
                    self._busy.discard(writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError) as e:
            log.debug("client %s: %s", peer, e)
        except Exception:  # noqa: BLE001 - one connection's bug must not kill the listener
            log.exception("client %s", peer)
        finally:
            self._clients.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _parse_request(self, head: bytes) -> _Request:
        start, headers = parse_head(head)
        parts = start.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise BadRequest()
        rq = _Request()
        rq.method, rq.target, rq.version = parts
        rq.host = b""
        rq.length = 0
        rq.chunked = False
        rq.expect = False
        rq.upgrade = b""
        conn: set[bytes] = set()
        lengths = set()
        out = []
        for lk, name, value in headers:
            if lk in _REQ_DROP:
                if lk == b"host":
                    if rq.host:
                        raise BadRequest()
                    rq.host = value
                elif lk == b"connection":
                    conn |= _tokens(value)
                elif lk == b"upgrade":
                    rq.upgrade = value
                continue
            if lk == b"content-length":
                lengths.add(value)
            elif lk == b"transfer-encoding":
                codings = [c.strip().lower() for c in value.split(b",")]
                if codings[-1] != b"chunked":
                    raise BadRequest(501, "Not Implemented")
                rq.chunked = True
            elif lk == b"expect" and value.lower() == b"100-continue":
                rq.expect = True
            out.append((lk, name, value))
        if lengths:
            if len(lengths) > 1 or rq.chunked:
                raise BadRequest()  # request smuggling: never guess which framing the backend sees
            try:
                rq.length = int(lengths.pop())
            except ValueError:
                raise BadRequest() from None
            if rq.length < 0:
                raise BadRequest()
        if rq.version == b"HTTP/1.1":
            if not rq.host:
                raise BadRequest()
            rq.keep_alive = b"close" not in conn
        else:
            rq.keep_alive = b"keep-alive" in conn
        if b"upgrade" not in conn:
            rq.upgrade = b""
        # headers the client named in Connection are hop-by-hop too
        rq.headers = [name + b": " + value for lk, name, value in out if lk not in conn]
        if rq.target[:1] != b"/" and rq.target != b"*":
            # absolute form (http://host/path): the host there wins over Host
            scheme_end = rq.target.find(b"://")
            if scheme_end < 0:
                raise BadRequest()
            rest = rq.target[scheme_end + 3:]
            slash = rest.find(b"/")
            rq.host = rest if slash < 0 else rest[:slash]
            rq.target = b"/" if slash < 0 else rest[slash:]
        return rq

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes,
                       scheme: bytes, client_ip: bytes, local_port: bytes) -> bool:
        """Serves one request; True when the client connection stays open."""
        try:
            rq = self._parse_request(head)
        except BadRequest as e:
            writer.write(response(e.status, e.reason, f"{e.status} {e.reason}\n".encode(), close=True))
            return False
        has_body = rq.chunked or rq.length > 0
        target = rq.target
        q = target.find(b"?")
        path = (target if q < 0 else target[:q]).decode("latin-1")
        host = split_host(rq.host.decode("latin-1"))
        backend = self.table.route(host, path)
        if backend is None:
            writer.write(NOT_FOUND if rq.keep_alive and not has_body else
                         response(404, "Not Found", b"default backend - 404\n", close=True))
            return rq.keep_alive and not has_body
        if not backend.endpoints:
            writer.write(response(503, "Service Unavailable", b"503 Service Temporarily Unavailable\n",
                                  close=not rq.keep_alive or has_body))
            return rq.keep_alive and not has_body
        out = [rq.method + b" " + target + b" HTTP/1.1", b"Host: " + rq.host, *rq.headers,
               b"X-Real-IP: " + client_ip, b"X-Forwarded-For: " + client_ip,
               b"X-Forwarded-Proto: " + scheme, b"X-Forwarded-Host: " + rq.host,
               b"X-Forwarded-Port: " + local_port]
        if rq.upgrade:
            out += [b"Connection: upgrade", b"Upgrade: " + rq.upgrade]
        else:
            out.append(b"Connection: keep-alive")
        up_head = b"\r\n".join(out) + b"\r\n\r\n"
        body = b""
        streamed = rq.chunked or rq.expect or rq.length > BUFFER_BODY
        if has_body and not streamed:
            async with asyncio.timeout(self.read_timeout):
                body = await reader.readexactly(rq.length)
        return await self._forward(reader, writer, rq, backend, up_head + body, streamed)

    async def _connect(self, backend: Backend) -> tuple[Upstream, bool] | None:
        for key in backend.attempts():
            up = self.pool.take(key)
            if up is not None:
                return up, True
            try:
                return await self.pool.connect(key), False
            except (OSError, TimeoutError) as e:
                log.info("%s: connecting to %s:%d: %s", backend.name, key[0], key[1], e or type(e).__name__)
        return None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rq: _Request,
                       backend: Backend, data: bytes, streamed: bool) -> bool:
        got = await self._connect(backend)
        if got is None:
            writer.write(response(502, "Bad Gateway", b"502 Bad Gateway\n", close=True))
            return False
        up, reused = got
        body_task: asyncio.Task[None] | None = None
        deadline = _Deadline(self.read_timeout, up.writer.transport)
        try:
            while True:
                up.writer.write(data)
                if streamed:
                    body_task = asyncio.create_task(self._send_body(reader, up.writer, rq))
                try:
                    rhead = await self._response_head(up, writer, rq, reused and not streamed)
                    break
                except _Stale:
                    up.close()
                    deadline.cancel()
                    up = await self.pool.connect(up.key)
                    deadline = _Deadline(self.read_timeout, up.writer.transport)
                    reused = False
            return await self._relay(reader, writer, rq, up, rhead, body_task, deadline)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadRequest) as e:
            up.close()
            if body_task is not None:
                body_task.cancel()
            if isinstance(e, TimeoutError) or deadline.expired:
                writer.write(response(504, "Gateway Timeout", b"504 Gateway Time-out\n", close=True))
            elif not writer.is_closing():
                log.info("%s: %s:%d: %r", backend.name, up.key[0], up.key[1], e)
                writer.write(response(502, "Bad Gateway", b"502 Bad Gateway\n", close=True))
            return False
        finally:
            deadline.cancel()

    async def _response_head(self, up: Upstream, writer: asyncio.StreamWriter, rq: _Request,
                             retryable: bool) -> bytes:
        """The final response head; interim 1xx answers (but 101) go to the
        client as they come."""
        while True:
            try:
                rhead = await up.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if retryable and not e.partial:
                    raise _Stale() from None
                raise
            except ConnectionResetError:
                if retryable:
                    raise _Stale() from None
                raise
            status = rhead[9:12]
            if status[:1] == b"1" and status != b"101":
                if rq.version == b"HTTP/1.1":
                    writer.write(rhead)
                continue
            return rhead

    async def _send_body(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter, rq: _Request) -> None:
        """A streamed request body, as framed by the client."""
        if rq.chunked:
            await _copy_chunked(reader, w, True, self.read_timeout)
        else:
            await _copy_length(reader, w, rq.length, self.read_timeout)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rq: _Request,
                     up: Upstream, rhead: bytes, body_task: asyncio.Task[None] | None,
                     deadline: _Deadline) -> bool:
        start, headers = parse_head(rhead)
        status = int(start[9:12])
        if status == 101 and rq.upgrade:
            deadline.cancel()  # a tunnel may stay quiet for long
            writer.write(rhead)
            await self._tunnel(reader, writer, up)
            return False
        up_keep = start.startswith(b"HTTP/1.1")
        length = -1
        chunked = False
        out = [start]
        for lk, name, value in headers:
            if lk in _RESP_DROP:
                if lk == b"connection":
                    t = _tokens(value)
                    up_keep = (up_keep and b"close" not in t) or (not up_keep and b"keep-alive" in t)
                continue
            if lk == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise BadRequest() from None
            elif lk == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
                if rq.version != b"HTTP/1.1":
                    continue  # an HTTP/1.0 client gets the body unchunked, ended by close
            out.append(name + b": " + value)
        no_body = rq.method == b"HEAD" or status in (204, 304) or 100 <= status < 200
        if no_body:
            mode = "none"
        elif chunked:
            mode = "chunked"
            length = -1
        elif length >= 0:
            mode = "length"
        else:
            mode = "close"
            up_keep = False
        keep = rq.keep_alive and (mode != "close") and not (mode == "chunked" and rq.version != b"HTTP/1.1")
        if body_task is not None and not body_task.done():
            keep = False  # the backend answered before the body was read: the rest of it is unframed now
        if not keep:
            out.append(b"Connection: close")
        elif rq.version != b"HTTP/1.1":
            out.append(b"Connection: keep-alive")
        head = b"\r\n".join(out) + b"\r\n\r\n"
        if mode == "none":
            writer.write(head)
        elif mode == "length":
            if length <= INLINE_BODY:  # under the response deadline
                writer.write(head + await up.reader.readexactly(length))
            else:
                deadline.cancel()  # from here each read has its own timeout
                writer.write(head)
                await _copy_length(up.reader, writer, length, self.read_timeout)
        elif mode == "chunked":
            deadline.cancel()
            writer.write(head)
            await _copy_chunked(up.reader, writer, rq.version == b"HTTP/1.1", self.read_timeout)
        else:
            deadline.cancel()
            writer.write(head)
            while True:
                async with asyncio.timeout(self.read_timeout):
                    data = await up.reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        await writer.drain()
        if body_task is not None:
            if body_task.done():
                try:
                    body_task.result()
                except Exception:  # noqa: BLE001 - the body failed: neither side is reusable
                    up_keep = keep = False
            else:
                body_task.cancel()
                up_keep = False
        if up_keep:
            self.pool.put(up)
        else:
            up.close()
        return keep

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        """After a 101: bytes both ways until both sides are done."""
        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(CHUNK):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
                else:
                    dst.close()
            except (OSError, RuntimeError):
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up.writer), pipe(up.reader, writer))
        finally:
            up.close()


async def _copy_length(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int, timeout: float) -> None:
    while n > 0:
        async with asyncio.timeout(timeout):
            data = await src.read(min(n, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        n -= len(data)
        dst.write(data)
        await dst.drain()


async def _copy_chunked(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep_framing: bool,
                        timeout: float) -> None:
    """Relays a chunked body up to and including its trailers; with
    ``keep_framing=False`` only the data is written (for an HTTP/1.0 client,
    whose response then ends with the connection)."""
    while True:
        async with asyncio.timeout(timeout):
            line = await src.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest() from None
        if keep_framing:
            dst.write(line)
        if size == 0:
            while True:  # trailers, up to the empty line
                async with asyncio.timeout(timeout):
                    t = await src.readuntil(b"\r\n")
                if keep_framing:
                    dst.write(t)
                if t == b"\r\n":
                    break
            await dst.drain()
            return
        await _copy_length(src, dst, size, timeout)
        async with asyncio.timeout(timeout):
            crlf = await src.readexactly(2)
        if crlf != b"\r\n":
            raise BadRequest()
        if keep_framing:
            dst.write(crlf)
