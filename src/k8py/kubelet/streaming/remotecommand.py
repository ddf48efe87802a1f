"""exec and attach over SPDY or WebSocket, as kube's kubelet serves them
(k8s.io/kubelet/pkg/cri/streaming/remotecommand).

Usage (in the kubelet server's handler, after the pod and container were found)::

    opts = options_from_query(request.query)            # raises BadOptions
    return await serve(request, opts,
                       lambda size: runtime.exec(cid, cmd, tty=opts.tty, stdin=opts.stdin, size=size),
                       command=cmd)

The client picks the transport: ``Upgrade: SPDY/3.1`` with ``X-Stream-Protocol-Version``
(kubectl up to 1.29, and its fallback), or a WebSocket with a channel
subprotocol (kubectl >= 1.30's v5, the Python client's v4/v5).  Over SPDY the
client opens one stream per stdio (header ``streamType``: error, stdin,
stdout, stderr, resize) and we wait for all of them before starting.  The end
of the command is reported on the error stream/channel: v4+ a metav1.Status
(a non-zero exit code is reason NonZeroExitCode with an ExitCode cause, as
kubectl reads it), earlier versions the message text of a failure only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from ..runtime.interface import StreamSession
from . import wsstream
from .hijack import RawConnection, hijack
from .spdy import SpdyConnection, SpdyStream
from .wsstream import ERROR, RESIZE, STDERR, STDIN, STDOUT

log = logging.getLogger("k8py.kubelet.remotecommand")

SPDY_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
STREAM_CREATION_TIMEOUT = 30.0
INITIAL_SIZE_WAIT = 0.5  # how long a tty session waits for the client's first resize


class BadOptions(ValueError):
    """The request's stdio options cannot be served (a 400)."""


@dataclass
class Options:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    command: list[str] = field(default_factory=list)


def _truthy(q: Mapping[str, str], *names: str) -> bool:
    return any(q.get(n, "").lower() in ("1", "true") for n in names)


def options_from_query(q: Any) -> Options:
    """The kubelet's names (input/output/error) and the API's (stdin/stdout/stderr)."""
    o = Options(stdin=_truthy(q, "input", "stdin"), stdout=_truthy(q, "output", "stdout"),
                stderr=_truthy(q, "error", "stderr"), tty=_truthy(q, "tty"),
                command=list(q.getall("command", [])) if hasattr(q, "getall") else [])
    if o.tty and o.stderr:
        o.stderr = False  # kube: stderr is part of the terminal's output
    if not (o.stdin or o.stdout or o.stderr):
        raise BadOptions("you must specify at least 1 of stdin, stdout, stderr")
    return o


# ---- statuses ----------------------------------------------------------------------

def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int, command: list[str]) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


class _ResizeReader:
    """Terminal sizes from a byte stream of JSON objects ({"Width":..,"Height":..})."""

    def __init__(self, read: Callable[[], Awaitable[bytes]]):
        self._read = read
        self._buf = ""
        self._dec = json.JSONDecoder()

    async def next(self) -> tuple[int, int] | None:
        while True:
            s = self._buf.lstrip()
            if s:
                try:
                    obj, end = self._dec.raw_decode(s)
                    self._buf = s[end:]
                    if isinstance(obj, dict):
                        return int(obj.get("Width") or 0), int(obj.get("Height") or 0)
                    continue
                except ValueError:
                    pass
            data = await self._read()
            if not data:
                return None
            self._buf = s + data.decode(errors="replace")


# ---- the two transports ---------------------------------------------------------------

class _Streams:
    closed: asyncio.Event

    async def read_stdin(self) -> bytes: ...
    async def write(self, channel: int, data: bytes) -> None: ...
    async def read_resize(self) -> tuple[int, int] | None: ...
    async def finish(self, status: dict[str, Any]) -> None: ...


class _WsStreams(_Streams):
    def __init__(self, ch: wsstream.ChannelConn):
        self.ch = ch
        self.closed = ch.closed
        self._resize = _ResizeReader(lambda: ch.read(RESIZE))
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, request: web.BaseRequest, opts: Options) -> "_WsStreams":
        ws = web.WebSocketResponse(protocols=wsstream.EXEC_PROTOCOLS, max_msg_size=0, compress=False,
                                   autoping=True)
        await ws.prepare(request)  # type: ignore[arg-type]
        s = cls(wsstream.ChannelConn(ws))
        s._runner = asyncio.create_task(s.ch.run())
        # kube writes an empty message on the lowest writable channel: "connected"
        first = STDOUT if opts.stdout else STDERR if opts.stderr else ERROR
        await s.ch.write(first, b"")
        return s

    async def read_stdin(self) -> bytes:
        return await self.ch.read(STDIN)

    async def write(self, channel: int, data: bytes) -> None:
        await self.ch.write(channel, data)

    async def read_resize(self) -> tuple[int, int] | None:
        return await self._resize.next()

    async def finish(self, status: dict[str, Any]) -> None:
        try:
            if self.ch.proto.json_status:
                await self.ch.write(ERROR, json.dumps(status).encode())
            elif status.get("status") != "Success":
                await self.ch.write(ERROR, status.get("message", "").encode())
        except (ConnectionError, RuntimeError):
            pass
        await self.ch.close()
        if self._runner is not None:
            self._runner.cancel()

    @property
    def response(self) -> web.StreamResponse:
        return self.ch.ws


class _SpdyStreams(_Streams):
    def __init__(self, conn: SpdyConnection, raw: RawConnection, runner: asyncio.Task[None], version: int):
        self.conn, self.raw, self.runner, self.version = conn, raw, runner, version
        self.closed = conn.closed
        self.by_type: dict[str, SpdyStream] = {}
        self._resize: _ResizeReader | None = None

    async def wait_for_streams(self, expected: int) -> None:
        async def collect() -> None:
            while len(self.by_type) < expected:
                s = await self.conn.accept()
                if s is None:
                    raise ConnectionResetError("connection closed before every stream was created")
                self.by_type[s.headers.get("streamtype", "")] = s
        await asyncio.wait_for(collect(), STREAM_CREATION_TIMEOUT)
        if "resize" in self.by_type:
            self._resize = _ResizeReader(self.by_type["resize"].read)

    async def read_stdin(self) -> bytes:
        s = self.by_type.get("stdin")
        return await s.read() if s else b""

    async def write(self, channel: int, data: bytes) -> None:
        s = self.by_type.get("stdout" if channel == STDOUT else "stderr")
        if s is not None:
            await s.write(data)

    async def read_resize(self) -> tuple[int, int] | None:
        return await self._resize.next() if self._resize else None

    async def finish(self, status: dict[str, Any]) -> None:
        try:
            for name in ("stdout", "stderr"):
                if name in self.by_type:
                    await self.by_type[name].close()
            err = self.by_type.get("error")
            if err is not None:
                if self.version >= 4:
                    await err.write(json.dumps(status).encode())
                elif status.get("status") != "Success":
                    await err.write(status.get("message", "").encode())
                await err.close()
            await self.conn.close()
        except (ConnectionError, RuntimeError):
            pass
        # let the client read the last frames and hang up first, as it does
        try:
            await asyncio.wait_for(self.conn.closed.wait(), 2.0)
        except asyncio.TimeoutError:
            pass
        self.raw.close()
        self.runner.cancel()


def is_websocket(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def is_spdy(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/")


def client_protocols(request: web.BaseRequest) -> list[str]:
    out: list[str] = []
    for v in request.headers.getall("X-Stream-Protocol-Version", []):
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def negotiate(request: web.BaseRequest, supported: tuple[str, ...]) -> str | None:
    """kube's httpstream.Handshake: the client's first protocol that we support;
    "" when the client names none (the oldest protocol); None: no common one."""
    offered = client_protocols(request)
    if not offered:
        return ""
    for p in offered:
        if p in supported:
            return p
    return None


def forbidden_protocol(request: web.BaseRequest, supported: tuple[str, ...]) -> web.Response:
    return web.Response(status=403, text=f"unable to upgrade: unable to negotiate protocol: client supports "
                        f"{client_protocols(request)}, server supports {list(supported)}",
                        headers={"X-Accepted-Stream-Protocol-Versions": ", ".join(supported)})


async def open_spdy(request: web.BaseRequest, protocol: str) -> tuple[web.StreamResponse, SpdyConnection,
                                                                      RawConnection, asyncio.Task[None]]:
    headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
    if protocol:
        headers.append(("X-Stream-Protocol-Version", protocol))
    resp, raw = await hijack(request, headers)
    conn = SpdyConnection(raw.reader, raw.write)
    runner = asyncio.create_task(conn.run())
    return resp, conn, raw, runner


# ---- serving ---------------------------------------------------------------------------

Starter = Callable[[tuple[int, int] | None], Awaitable[StreamSession]]  # (width, height) of a tty, or None


async def serve(request: web.BaseRequest, opts: Options, start: Starter, *,
                command: list[str] | None = None, report_exit_code: bool = True) -> web.StreamResponse:
    """Upgrade the request, start the session, copy its stdio, report its end."""
    if is_websocket(request):
        ws_streams = await _WsStreams.open(request, opts)
        await _run(ws_streams, opts, start, command or [], report_exit_code)
        return ws_streams.response
    if is_spdy(request):
        protocol = negotiate(request, SPDY_PROTOCOLS)
        if protocol is None:
            return forbidden_protocol(request, SPDY_PROTOCOLS)
        version = {"v4.channel.k8s.io": 4, "v3.channel.k8s.io": 3, "v2.channel.k8s.io": 2}.get(protocol, 1)
        resp, conn, raw, runner = await open_spdy(request, protocol)
        streams = _SpdyStreams(conn, raw, runner, version)
        expected = 1 + opts.stdin + opts.stdout + opts.stderr + (1 if opts.tty and version >= 3 else 0)
        try:
            await streams.wait_for_streams(expected)
        except (asyncio.TimeoutError, ConnectionError) as e:
            log.info("exec/attach: streams not created: %s", e)
            raw.close()
            runner.cancel()
            return resp
        await _run(streams, opts, start, command or [], report_exit_code)
        return resp
    return web.Response(status=400, text="Upgrade request required")


async def _run(streams: _Streams, opts: Options, start: Starter,
               command: list[str], report_exit_code: bool) -> None:
    first_size = None
    if opts.tty:
        # kubectl sends the terminal's size as soon as its streams exist; take it
        # before starting so the process sees it from its first instruction on
        try:
            first_size = await asyncio.wait_for(streams.read_resize(), INITIAL_SIZE_WAIT)
        except asyncio.TimeoutError:
            pass
    try:
        session = await start(first_size)
    except Exception as e:  # noqa: BLE001 - reported to the client, as kube does
        await streams.finish(error_status(str(e)))
        return
    tasks: list[asyncio.Task[Any]] = []
    try:
        async def pump_out(read: Callable[[], Awaitable[bytes]], channel: int, wanted: bool) -> None:
            while data := await read():
                if wanted:
                    try:
                        await streams.write(channel, data)
                    except (ConnectionError, RuntimeError):
                        wanted = False  # keep draining so the process never blocks

        async def pump_in() -> None:
            while data := await streams.read_stdin():
                await session.write_stdin(data)
            await session.close_stdin()

        async def pump_resize() -> None:
            while (size := await streams.read_resize()) is not None:
                await session.resize(*size)

        outputs = [asyncio.create_task(pump_out(session.read_stdout, STDOUT, opts.stdout))]
        if not session.tty:
            outputs.append(asyncio.create_task(pump_out(session.read_stderr, STDERR, opts.stderr)))
        tasks += outputs
        if opts.stdin:
            tasks.append(asyncio.create_task(pump_in()))
        if opts.tty:
            tasks.append(asyncio.create_task(pump_resize()))
        gone = asyncio.create_task(streams.closed.wait())
        tasks.append(gone)
        out_done = asyncio.gather(*outputs)
        # a client that went away leaves the copies failing or cancelled: their end is expected
        out_done.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait([out_done, gone], return_when=asyncio.FIRST_COMPLETED)
        if not out_done.done():
            out_done.cancel()
            await streams.finish(success_status())
            return
        code = await session.wait()
        if code != 0 and report_exit_code:
            await streams.finish(exit_code_status(code, command))
        else:
            await streams.finish(success_status())
    except Exception as e:  # noqa: BLE001
        log.exception("exec/attach session failed")
        await streams.finish(error_status(str(e)))
    finally:
        for t in tasks:
            t.cancel()
        try:
            await session.close()
        except Exception:  # noqa: BLE001
            log.debug("closing session", exc_info=True)
