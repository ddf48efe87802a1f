"""Probes: one probe against a real HTTP(S) server and TCP listener on loopback, exec through
fakes; the workers' thresholds, initial delay, startup gating and restarts with periods of 50 ms."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import ssl
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from k8py.kubelet.prober import ProbeManager, ProbeResult, _netns_socket, run_probe
from k8py.kubelet.runtime.interface import ExecResult, RuntimeFailure


@pytest.fixture(scope="module")
def tls_files() -> Iterator[tuple[str, str]]:
    d = tempfile.mkdtemp(prefix="k8py-probe-tls-")
    cert, key = f"{d}/cert.pem", f"{d}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=probe-test"], check=True, capture_output=True)
    yield cert, key
    shutil.rmtree(d)


async def serve(tls: tuple[str, str] | None = None) -> tuple[web.AppRunner, int, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path_qs, **{k.lower(): v for k, v in request.headers.items()}})
        name = request.match_info["name"]
        if name == "ok":
            return web.Response(text="fine")
        if name == "bad":
            return web.Response(status=503, text="down")
        if name == "redir":
            raise web.HTTPFound("/ok?x=1")
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "away":
            raise web.HTTPFound("http://elsewhere.invalid/ok")
        if name == "slow":
            await asyncio.sleep(1)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*tls)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port, seen


def http(port: Any, path: str, **kw: Any) -> dict[str, Any]:
    return {"httpGet": {"port": port, "path": path, **kw}, "timeoutSeconds": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_probe(tls_files: tuple[str, str]):
    async def main() -> None:
        runner, port, seen = await serve()
        tls_runner, tls_port, _ = await serve(tls_files)
        try:
            async def probe(p: dict[str, Any], **kw: Any) -> ProbeResult:
                return await run_probe(p, pod_ip="", exec_fn=None, **kw)
            assert await probe(http(port, "/ok")) == ProbeResult("success", "fine")
            assert seen[-1]["user-agent"] == "kube-probe/1.32" and seen[-1]["accept"] == "*/*"
            assert seen[-1]["host"] == f"127.0.0.1:{port}"
            r = await probe(http(port, "ok", httpHeaders=[{"name": "X-Custom", "value": "1"},
                                                          {"name": "User-Agent", "value": "mine"}]))
            assert r.result == "success" and seen[-1]["x-custom"] == "1" and seen[-1]["user-agent"] == "mine"
            r = await probe(http(port, "/bad"))
            assert r.result == "failure" and "503" in r.output
            assert (await probe(http(port, "/missing"))).result == "failure"
            # a redirect on the same host is followed
            assert await probe(http(port, "/redir")) == ProbeResult("success", "fine")
            assert seen[-1]["path"] == "/ok?x=1"
            # one elsewhere is not, and counts as success (kube's warning)
            r = await probe(http(port, "/away"))
            assert r.result == "success" and "terminated redirects" in r.output
            r = await probe(http(port, "/loop"))
            assert r.result == "failure" and "redirects" in r.output
            # named port, explicit host, https without verification
            r = await probe(http("web", "/ok", host="127.0.0.1"), port_names={"web": port})
            assert r.result == "success"
            r = await probe(http(tls_port, "/ok", scheme="HTTPS"))
            assert r == ProbeResult("success", "fine"), r
            # errors: unknown port name is unknown; refused and too slow are failures
            assert (await probe(http("nope", "/ok"))).result == "unknown"
            r = await probe(http(free_port(), "/ok"))
            assert r.result == "failure" and "refused" in r.output.lower(), r
            t0 = time.monotonic()
            r = await probe({**http(port, "/slow"), "timeoutSeconds": 0.3})
            assert r.result == "failure" and time.monotonic() - t0 < 2
            # the pod IP is where it goes when the probe names no host
            r = await run_probe(http(port, "/ok"), pod_ip="127.0.0.1", exec_fn=None)
            assert r.result == "success"
        finally:
            await runner.cleanup()
            await tls_runner.cleanup()
    asyncio.run(main())


def test_tcp_grpc_and_missing_handler():
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            assert (await run_probe({"tcpSocket": {"port": port}}, pod_ip="", exec_fn=None)).result == "success"
            r = await run_probe({"tcpSocket": {"port": "p", "host": "127.0.0.1"}}, pod_ip="10.0.0.1",
                                exec_fn=None, port_names={"p": port})
            assert r.result == "success"
            r = await run_probe({"tcpSocket": {"port": free_port()}}, pod_ip="127.0.0.1", exec_fn=None)
            assert r.result == "failure" and "refused" in r.output.lower()
            r = await run_probe({"grpc": {"port": port}}, pod_ip="", exec_fn=None)
            assert r.result == "unknown" and "not supported" in r.output
            assert (await run_probe({}, pod_ip="", exec_fn=None)).result == "unknown"
        finally:
            server.close()
            await server.wait_closed()
    asyncio.run(main())


def test_exec_probe():
    async def main() -> None:
        calls: list[tuple[list[str], float]] = []

        def fake(result: Any):
            async def exec_fn(cmd: list[str], timeout: float) -> ExecResult:
                calls.append((cmd, timeout))
                if isinstance(result, BaseException):
                    raise result
                return result
            return exec_fn
        p = {"exec": {"command": ["cat", "/tmp/healthy"]}, "timeoutSeconds": 2}
        r = await run_probe(p, pod_ip="", exec_fn=fake(ExecResult(b"yes", b"", 0)))
        assert r == ProbeResult("success", "yes") and calls[-1] == (["cat", "/tmp/healthy"], 2.0)
        r = await run_probe(p, pod_ip="", exec_fn=fake(ExecResult(b"", b"no such file", 1)))
        assert r == ProbeResult("failure", "no such file")
        assert (await run_probe(p, pod_ip="", exec_fn=fake(TimeoutError()))).result == "failure"
        r = await run_probe(p, pod_ip="", exec_fn=fake(RuntimeFailure("exec in x timed out after 1s")))
        assert r.result == "failure"
        r = await run_probe(p, pod_ip="", exec_fn=fake(RuntimeFailure("container x is not running")))
        assert r.result == "unknown"
        r = await run_probe(p, pod_ip="", exec_fn=fake(ExecResult(b"", b"", 0)), timeout=0.5)
        assert calls[-1][1] == 0.5
    asyncio.run(main())


class FakeRuntime:
    """exec_sync answers from a per-container script of exit codes (the last one repeats)."""

    def __init__(self) -> None:
        self.scripts: dict[tuple[str, str], list[int]] = {}
        self.calls: list[tuple[str, str, float]] = []

    async def exec_sync(self, cid: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        self.calls.append((cid, cmd[0], time.monotonic()))
        script = self.scripts.setdefault((cid, cmd[0]), [0])
        code = script.pop(0) if len(script) > 1 else script[0]
        return ExecResult(b"", b"", code)

    def count(self, cid: str, what: str) -> int:
        return sum(1 for c, w, _ in self.calls if (c, w) == (cid, what))


def probe(what: str, **kw: Any) -> dict[str, Any]:
    return {"exec": {"command": [what]}, "periodSeconds": 0.05, "timeoutSeconds": 1, **kw}


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"uid": secrets.token_hex(4)}, "spec": {"containers": list(containers)}}


async def until(cond, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_liveness_failure_threshold_hold_and_restart():
    async def main() -> None:
        rt = FakeRuntime()
        changes: list[tuple[str, str, bool]] = []
        m = ProbeManager(lambda uid, c, t, ok: changes.append((c, t, ok)), rt)
        p = pod({"name": "c", "livenessProbe": probe("live", failureThreshold=3)})
        uid = p["metadata"]["uid"]
        rt.scripts[("id1", "live")] = [0, 1, 1, 0, 1, 1, 1, 0]   # a success breaks the run of failures
        try:
            m.add_pod(p, "127.0.0.1", {"c": "id1"})
            assert m.result(uid, "c", "liveness") is True
            assert m.result(uid, "c", "readiness") is True     # no readiness probe
            assert m.started(uid, "c")                          # no startup probe
            await until(lambda: changes)
            assert changes == [("c", "liveness", False)] and rt.count("id1", "live") == 7
            await asyncio.sleep(0.2)
            assert rt.count("id1", "live") == 7                # on hold until a new container
            m.update_container(uid, "c", "id2", time.time())
            assert m.result(uid, "c", "liveness") is True and changes[-1] == ("c", "liveness", True)
            await until(lambda: rt.count("id2", "live") >= 3)
            assert m.result(uid, "c", "liveness") is True      # id2 succeeds
        finally:
            await m.close()
        assert len(changes) == 2
    asyncio.run(main())


def test_readiness_thresholds_and_not_running():
    async def main() -> None:
        rt = FakeRuntime()
        changes: list[tuple[str, str, bool]] = []
        m = ProbeManager(lambda uid, c, t, ok: changes.append((c, t, ok)), rt)
        p = pod({"name": "c", "readinessProbe": probe("ready", successThreshold=2, failureThreshold=1)})
        uid = p["metadata"]["uid"]
        rt.scripts[("id1", "ready")] = [0, 1, 0, 0, 1]
        try:
            m.add_pod(p, "", {"c": "id1"})
            assert m.result(uid, "c", "readiness") is False
            # 0 (one success is not enough), 1 -> False (no change), 0 0 -> True, 1 -> False, 1...
            await until(lambda: len(changes) == 2)
            await asyncio.sleep(0.15)
            assert changes == [("c", "readiness", True), ("c", "readiness", False)]
            assert rt.count("id1", "ready") >= 5
            m.update_container(uid, "c", None, 0)            # not running: not ready, not probed
            assert m.result(uid, "c", "readiness") is False
            n = len(rt.calls)
            await asyncio.sleep(0.15)
            assert len(rt.calls) == n
        finally:
            await m.close()
    asyncio.run(main())


def test_startup_gates_liveness_and_readiness_and_initial_delay():
    async def main() -> None:
        rt = FakeRuntime()
        changes: list[tuple[str, str, bool]] = []
        m = ProbeManager(lambda uid, c, t, ok: changes.append((c, t, ok)), rt)
        p = pod({"name": "c", "startupProbe": probe("start", failureThreshold=10),
                 "livenessProbe": probe("live"), "readinessProbe": probe("ready", initialDelaySeconds=0.4)},
                {"name": "d", "startupProbe": probe("boot", failureThreshold=2)})
        uid = p["metadata"]["uid"]
        rt.scripts[("id1", "start")] = [1, 1, 1, 0]
        rt.scripts[("id9", "boot")] = [1]
        t0 = time.monotonic()
        try:
            m.add_pod(p, "", {"c": "id1", "d": "id9"})
            assert m.result(uid, "c", "startup") is None and not m.started(uid, "c")
            await until(lambda: m.started(uid, "c"))
            assert rt.count("id1", "start") == 4
            first_live = min(t for c, w, t in rt.calls if w == "live")
            assert first_live > max(t for c, w, t in rt.calls if w == "start")
            assert rt.count("id1", "ready") == 0 or \
                min(t for c, w, t in rt.calls if w == "ready") - t0 >= 0.4
            await until(lambda: m.result(uid, "c", "readiness") is True)
            assert min(t for c, w, t in rt.calls if w == "ready") - t0 >= 0.4
            await asyncio.sleep(0.2)
            assert rt.count("id1", "start") == 4             # startup stops once it succeeded
            # d's startup probe fails twice: the kubelet is told to restart it
            await until(lambda: ("d", "startup", False) in changes)
            assert not m.started(uid, "d")
            # a new container of c starts again from "not started"
            rt.scripts[("id2", "start")] = [1]
            m.update_container(uid, "c", "id2", time.time())
            assert not m.started(uid, "c") and m.result(uid, "c", "readiness") is False
            n = rt.count("id2", "live")
            await asyncio.sleep(0.2)
            assert n == rt.count("id2", "live") == 0
            m.remove_pod(uid)
            assert m.result(uid, "c", "liveness") is True      # unknown pod: no probe
        finally:
            await m.close()
        assert ("c", "startup", True) in changes
    asyncio.run(main())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root for network namespaces")
def test_probe_inside_a_network_namespace():
    ns = f"k8py-probe-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    path = f"/var/run/netns/{ns}"
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)

        async def main() -> None:
            listener = _netns_socket(path, socket.AF_INET)
            try:
                listener.bind(("127.0.0.1", 0))
                listener.listen()
                port = listener.getsockname()[1]
                r = await run_probe({"tcpSocket": {"port": port}}, pod_ip="", exec_fn=None, netns_path=path)
                assert r.result == "success", r
            finally:
                listener.close()
            r = await run_probe({"tcpSocket": {"port": port}}, pod_ip="", exec_fn=None, netns_path=path)
            assert r.result == "failure"
        asyncio.run(main())
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=True)
