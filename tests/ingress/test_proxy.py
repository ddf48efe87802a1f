"""The proxy against real backends: aiohttp servers on loopback, a routing
table built by hand, real clients (aiohttp, raw sockets) verifying TLS
certificates made here with ``cryptography``."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from k8py.ingress.proxy import IngressProxy
from k8py.ingress.rules import Backend, HostRules, PathRule, RoutingTable, server_context
from tests.support.tls import make_cert


def run(coro: Awaitable[Any]) -> Any:
    """On uvloop, as ``k8py ingress`` runs (its TLS and SNI are uvloop's own)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(asyncio.wait_for(coro, 60))
    return uvloop.run(asyncio.wait_for(coro, 60))


class Backends:
    """aiohttp servers on loopback, each answering with its own name and
    what it saw; ``peers`` records each connection's client port."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.peers: dict[str, set[int]] = {}

    async def start(self, name: str, keepalive_timeout: float = 75.0) -> tuple[str, int]:
        self.peers[name] = set()

        async def hello(req: web.Request) -> web.StreamResponse:
            self.peers[name].add(req.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
            if req.path == "/echo":
                data = await req.read()
                return web.Response(body=data, headers={"X-Backend": name})
            if req.path == "/chunked":
                resp = web.StreamResponse(headers={"X-Backend": name})
                resp.enable_chunked_encoding()
                await resp.prepare(req)
                for i in range(5):
                    await resp.write(f"part{i};".encode())
                await resp.write_eof()
                return resp
            if req.path == "/slow":
                await asyncio.sleep(2)
            if req.path == "/ws":
                ws = web.WebSocketResponse()
                await ws.prepare(req)
                async for msg in ws:
                    await ws.send_str(f"{name}:{msg.data}")
                return ws
            h = req.headers
            return web.json_response({"backend": name, "path": req.path_qs, "host": h.get("Host"),
                                      "xff": h.get("X-Forwarded-For"), "proto": h.get("X-Forwarded-Proto"),
                                      "xhost": h.get("X-Forwarded-Host"), "real": h.get("X-Real-IP")})

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", hello)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive_timeout)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return ("127.0.0.1", site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def close(self) -> None:
        for r in self.runners:
            await r.cleanup()


def table(routes: dict[str, list[tuple[str, bool, Backend]]], default: Backend | None = None,
          tls: dict[str, ssl.SSLContext] | None = None) -> RoutingTable:
    t = RoutingTable(default=default, tls_exact=dict(tls or {}))
    for host, rules in routes.items():
        hr = HostRules([PathRule(p, exact, b) for p, exact, b in rules])
        hr.finish()
        if host:
            t.exact[host] = hr
        else:
            t.any_host = hr
    return t


async def with_proxy(fn: Callable[[IngressProxy, Backends, int, int], Awaitable[None]],
                     read_timeout: float = 10) -> None:
    backends = Backends()
    proxy = IngressProxy(read_timeout=read_timeout)
    try:
        http, https = await proxy.start("127.0.0.1", 0, 0)
        await fn(proxy, backends, http, https)
    finally:
        await proxy.close(grace=1)
        await backends.close()


def test_host_and_path_routing_headers_default_404_503() -> None:
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        a = Backend("ns/a:80", [await bk.start("a")])
        b = Backend("ns/b:80", [await bk.start("b")])
        d = Backend("ns/d:80", [await bk.start("d")])
        empty = Backend("ns/empty:80", [])
        proxy.swap(table({"a.example.com": [("", False, a)],
                          "b.example.com": [("/api", False, b), ("/exact", True, a), ("/down", False, empty)]},
                         default=d))
        async with aiohttp.ClientSession() as s:
            async def get(host: str, path: str) -> tuple[int, Any]:
                async with s.get(f"http://127.0.0.1:{http}{path}", headers={"Host": host,
                                                                              "X-Forwarded-For": "6.6.6.6"}) as r:
                    return r.status, (await r.json() if r.content_type == "application/json" else await r.text())
            st, j = await get("a.example.com", "/x?q=1")
            assert st == 200 and j["backend"] == "a" and j["path"] == "/x?q=1" and j["host"] == "a.example.com"
            assert j["xff"] == "127.0.0.1" and j["real"] == "127.0.0.1"  # set, not appended: no forging
            assert j["proto"] == "http" and j["xhost"] == "a.example.com"
            st, j = await get("B.example.com:80", "/api/v1")
            assert st == 200 and j["backend"] == "b" and j["host"] == "B.example.com:80"
            assert (await get("b.example.com", "/exact"))[1]["backend"] == "a"
            assert (await get("b.example.com", "/exact/x"))[1]["backend"] == "d"  # no match: default backend
            assert (await get("other.org", "/"))[1]["backend"] == "d"
            st, text = await get("b.example.com", "/down")
            assert st == 503
            proxy.swap(table({"a.example.com": [("", False, a)]}))  # no default backend now
            st, text = await get("other.org", "/")
            assert st == 404 and "default backend - 404" in text
            st, j = await get("a.example.com", "/")
            assert st == 200 and j["backend"] == "a"
    run(with_proxy(body))


def test_bodies_chunked_streams_and_http10() -> None:
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        a = Backend("ns/a:80", [await bk.start("a")])
        proxy.swap(table({"": [("", False, a)]}))
        big = bytes(range(256)) * 20000  # 5 MB: streamed, not buffered
        async with aiohttp.ClientSession() as s:
            for data in (b"small", big):
                async with s.post(f"http://127.0.0.1:{http}/echo", data=data) as r:
                    assert r.status == 200 and await r.read() == data
                    assert r.headers["X-Backend"] == "a"

            async def gen() -> Any:  # a chunked request body
                for i in range(50):
                    yield b"x" * 1000 + str(i).encode()
            async with s.post(f"http://127.0.0.1:{http}/echo", data=gen()) as r:
                assert await r.read() == b"".join(b"x" * 1000 + str(i).encode() for i in range(50))
            async with s.get(f"http://127.0.0.1:{http}/chunked") as r:
                assert r.headers.get("Transfer-Encoding") == "chunked"
                assert await r.read() == b"part0;part1;part2;part3;part4;"
            async with s.post(f"http://127.0.0.1:{http}/echo", data=b"e" * 100,
                              headers={"Expect": "100-continue"}) as r:
                assert await r.read() == b"e" * 100
        # HTTP/1.0 gets a chunked response unchunked, ended by the close
        reader, writer = await asyncio.open_connection("127.0.0.1", http)
        writer.write(b"GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n")
        raw = await reader.read()
        writer.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert b"200" in head.split(b"\r\n")[0] and b"chunked" not in head.lower()
        assert rest == b"part0;part1;part2;part3;part4;"
        # malformed requests are refused; smuggling attempts too
        for bad in (b"GET / HTTP/1.1\r\n\r\n",  # no Host
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", http)
            writer.write(bad)
            assert (await reader.read()).startswith(b"HTTP/1.1 400")
            writer.close()
    run(with_proxy(body))


def test_tls_with_sni() -> None:
    async def body(proxy: IngressProxy, bk: Backends, _http: int, https: int) -> None:
        a = Backend("ns/a:80", [await bk.start("a")])
        b = Backend("ns/b:80", [await bk.start("b")])
        certs = {h: make_cert(h) for h in ("a.example.com", "b.example.com")}
        proxy.swap(table({"a.example.com": [("", False, a)], "b.example.com": [("", False, b)]},
                         tls={h: server_context(*certs[h]) for h in certs}))
        async with aiohttp.ClientSession() as s:
            for host in certs:
                client = ssl.create_default_context(cadata=certs[host][0].decode())  # trusts that cert only
                async with s.get(f"https://127.0.0.1:{https}/", ssl=client, server_hostname=host,
                                 headers={"Host": host}) as r:
                    j = await r.json()
                    assert j["backend"] == host[0] and j["proto"] == "https"
            # the other host's certificate does not verify
            wrong = ssl.create_default_context(cadata=certs["a.example.com"][0].decode())
            try:
                async with s.get(f"https://127.0.0.1:{https}/", ssl=wrong, server_hostname="b.example.com",
                                 headers={"Host": "b.example.com"}):
                    raise AssertionError("b.example.com served a.example.com's certificate")
            except aiohttp.ClientConnectorCertificateError:
                pass
        # an unknown name gets the self-signed default certificate
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", https, ssl=insecure,
                                                       server_hostname="nobody.example.com")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == "Kubernetes Ingress Controller Fake Certificate"
        writer.write(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
        assert b'"backend": "a"' in await reader.read()
        writer.close()
    run(with_proxy(body))


def test_no_failed_request_while_the_table_is_swapped() -> None:
    """Keep-alive clients hammer the proxy while the table is rebuilt every
    few milliseconds: every request succeeds, client and backend
    connections are reused, and a pooled connection the backend closed
    meanwhile is retried transparently."""
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        # b closes idle connections quickly: pooled connections to it go stale
        ends = [await bk.start("a"), await bk.start("b", keepalive_timeout=0.05)]

        def new_table() -> RoutingTable:
            return table({"h": [("", False, Backend("ns/ab:80", list(ends)))]})
        proxy.swap(new_table())
        stop = asyncio.Event()
        swaps = 0

        async def swapper() -> None:
            nonlocal swaps
            while not stop.is_set():
                proxy.swap(new_table())
                swaps += 1
                await asyncio.sleep(0.002)

        results: list[int] = []
        conns = aiohttp.TCPConnector(limit=4)
        async with aiohttp.ClientSession(connector=conns) as s:
            async def client(n: int) -> None:
                for i in range(n):
                    async with s.get(f"http://127.0.0.1:{http}/r{i}", headers={"Host": "h"}) as r:
                        await r.read()
                        results.append(r.status)
                    if i % 50 == 0:
                        await asyncio.sleep(0.1)  # let b's idle timeout close pooled connections
            sw = asyncio.create_task(swapper())
            await asyncio.gather(*(client(300) for _ in range(4)))
            stop.set()
            await sw
        assert len(results) == 1200 and set(results) == {200}, {s: results.count(s) for s in set(results)}
        assert swaps > 50
        assert len(bk.peers["a"]) <= 8, len(bk.peers["a"])  # keep-alive to the backend, not one per request
    run(with_proxy(body))


def test_retry_on_connect_failure_and_502() -> None:
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        import socket
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = ("127.0.0.1", s.getsockname()[1])
        live = await bk.start("a")
        proxy.swap(table({"h": [("", False, Backend("x", [dead, live]))],
                          "gone": [("", False, Backend("y", [dead]))]}))
        async with aiohttp.ClientSession() as s:
            for _ in range(6):
                async with s.get(f"http://127.0.0.1:{http}/", headers={"Host": "h"}) as r:
                    assert r.status == 200
            async with s.get(f"http://127.0.0.1:{http}/", headers={"Host": "gone"}) as r:
                assert r.status == 502
    run(with_proxy(body))


def test_websocket_upgrade() -> None:
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        proxy.swap(table({"": [("", False, Backend("a", [await bk.start("a")]))]}))
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{http}/ws") as ws:
                for i in range(3):
                    await ws.send_str(f"m{i}")
                    assert (await ws.receive_str()) == f"a:m{i}"
    run(with_proxy(body))


def test_backend_too_slow_is_504_and_the_next_request_is_served() -> None:
    async def body(proxy: IngressProxy, bk: Backends, http: int, _https: int) -> None:
        proxy.swap(table({"": [("", False, Backend("a", [await bk.start("a")]))]}))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{http}/slow") as r:
                assert r.status == 504
            async with s.get(f"http://127.0.0.1:{http}/fast") as r:
                assert r.status == 200 and (await r.json())["path"] == "/fast"
    run(with_proxy(body, read_timeout=0.5))
