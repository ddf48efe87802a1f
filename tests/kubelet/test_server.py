"""The kubelet server with a fake host whose containers are host processes:
TLS client-certificate checks, containerLogs, and exec over WebSocket (the
real kubectl and Python client runs are in tests/e2e/test_pod_streaming_proxy.py,
which imports FakeHost and KubeletThread from here)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import shutil
import ssl
import struct
import subprocess
import tempfile
import termios
import threading
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from k8py.apiserver.certs import ClusterCerts
from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.interface import EXITED, RUNNING, ContainerStatus
from k8py.kubelet.server import BadRequest, ContainerRef, KubeletServer, NotFound, issue_kubelet_serving_cert


class ProcessSession:
    """A StreamSession over a host process (pipes, or a pty with tty)."""

    def __init__(self, proc: asyncio.subprocess.Process, tty: bool, master: int | None):
        self.proc, self.tty, self.master = proc, tty, master
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        if master is not None:
            loop = asyncio.get_running_loop()

            def readable() -> None:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    loop.remove_reader(master)
                self._out.put_nowait(data)
            loop.add_reader(master, readable)

    @classmethod
    async def start(cls, cmd: list[str], cwd: str, tty: bool, stdin: bool,
                    size: tuple[int, int] | None = None) -> "ProcessSession":
        if tty:
            master, slave = pty.openpty()
            if size is not None:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))

            def ctty() -> None:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                                        preexec_fn=ctty)
            os.close(slave)
            return cls(proc, True, master)
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return cls(proc, False, None)

    async def read_stdout(self) -> bytes:
        if self.master is not None:
            return await self._out.get()
        return await self.proc.stdout.read(65536)  # type: ignore[union-attr]

    async def read_stderr(self) -> bytes:
        if self.master is not None:
            return b""
        return await self.proc.stderr.read(65536)  # type: ignore[union-attr]

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            os.write(self.master, data)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            os.write(self.master, b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        return await self.proc.wait()

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.master is not None:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = None


class AttachSession:
    """Attached to the fake container's stdio: its output fanned out to us."""

    tty = False

    def __init__(self, container: "FakeContainer"):
        self.c = container
        self.q: asyncio.Queue[bytes] = asyncio.Queue()
        container.subscribers.append(self.q)

    async def read_stdout(self) -> bytes:
        return await self.q.get()

    async def read_stderr(self) -> bytes:
        return b""

    async def write_stdin(self, data: bytes) -> None:
        self.c.proc.stdin.write(data)  # type: ignore[union-attr]
        await self.c.proc.stdin.drain()  # type: ignore[union-attr]

    async def close_stdin(self) -> None:
        pass  # stdinOnce is false: the container keeps its stdin

    async def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return await self.c.proc.wait()

    async def close(self) -> None:
        if self.q in self.c.subscribers:
            self.c.subscribers.remove(self.q)


class FakeContainer:
    """A long-running host process standing for the pod's container (for attach)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.subscribers: list[asyncio.Queue[bytes]] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "sh", "-c", 'while read l; do echo "got $l"; done', stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        asyncio.create_task(self._fan_out())

    async def _fan_out(self) -> None:
        while data := await self.proc.stdout.read(65536):  # type: ignore[union-attr]
            for q in self.subscribers:
                q.put_nowait(data)
        for q in self.subscribers:
            q.put_nowait(b"")

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class FakeRuntime:
    def __init__(self, host: "FakeHost"):
        self.host = host

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool = False, stdin: bool = False,
                   size: tuple[int, int] | None = None):
        return await ProcessSession.start(cmd, self.host.root, tty, stdin, size)

    async def attach(self, container_id: str, *, stdin: bool = False):
        if self.host.container.proc is None:
            await self.host.container.start()
        return AttachSession(self.host.container)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return ContainerStatus(id=container_id, name="main", sandbox_id="s",
                               state=RUNNING if self.host.running else EXITED)


class FakeHost:
    """One pod `default/<pod>` with containers main (and side when two=True);
    exec runs host processes in `root`; logs are `root/logs/<container>.log`."""

    def __init__(self, root: str, pod: str = "web", containers: tuple[str, ...] = ("main",)):
        self.root = root
        self.pod = pod
        self.containers = containers
        self.running = True
        self.netns: str | None = None
        self.runtime = FakeRuntime(self)
        self.container = FakeContainer()
        os.makedirs(os.path.join(root, "logs"), exist_ok=True)

    def _check_pod(self, namespace: str, pod: str) -> None:
        if (namespace, pod) != ("default", self.pod):
            raise NotFound(f'pod "{pod}" in namespace "{namespace}" not found on this node')

    def container_for(self, namespace: str, pod: str, container: str | None) -> ContainerRef:
        self._check_pod(namespace, pod)
        if not container:
            if len(self.containers) != 1:
                raise BadRequest(f"a container name must be specified for pod {pod}, choose one of: "
                                 f"[{' '.join(self.containers)}]")
            container = self.containers[0]
        if container not in self.containers:
            raise NotFound(f'container "{container}" in pod "{pod}" not found')
        return ContainerRef(f"cid-{container}")

    def log_file(self, namespace: str, pod: str, container: str, previous: bool) -> str:
        self._check_pod(namespace, pod)
        return os.path.join(self.root, "logs", f"{container}{'.previous' if previous else ''}.log")

    def pod_netns(self, namespace: str, pod: str) -> str | None:
        self._check_pod(namespace, pod)
        return self.netns

    def stats_summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": "fake"}, "pods": []}

    def pods(self) -> list[dict[str, Any]]:
        return [{"metadata": {"name": self.pod, "namespace": "default"}}]

    def write_log(self, container: str, *lines: tuple[str, str], previous: bool = False) -> None:
        with open(self.log_file("default", self.pod, container, previous), "ab") as f:
            for stream, text in lines:
                f.write(crilog.format_line(stream, text.encode(), partial=False))


class KubeletThread:
    """A KubeletServer on its own event loop in a thread (stopped by close())."""

    def __init__(self, host: FakeHost, tls_dir: str, client_ca: str):
        self.host = host
        crt, key = issue_kubelet_serving_cert(tls_dir, "fake-node", ["127.0.0.1"])
        self.server = KubeletServer(host, 0, "127.0.0.1", crt, key, client_ca)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.stop())
        self.call(self.host.container.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


# ---- tests -------------------------------------------------------------------------------------

@pytest.fixture
def kubelet():
    d = tempfile.mkdtemp(prefix="k8py-kubelet-srv-")
    certs = ClusterCerts(d)
    certs.ensure()
    host = FakeHost(os.path.join(d, "root"))
    k = KubeletThread(host, os.path.join(d, "kubelet-tls"), str(certs.ca_crt))
    try:
        yield k, certs
    finally:
        k.close()
        shutil.rmtree(d, ignore_errors=True)


def _client_ctx(certs: ClusterCerts | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if certs is not None:
        ctx.load_cert_chain(str(certs.kubelet_client_crt), str(certs.kubelet_client_key))
    return ctx


async def _get(port: int, path: str, certs: ClusterCerts | None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"https://127.0.0.1:{port}{path}", ssl=_client_ctx(certs)) as r:
            return r.status, await r.read()


def test_auth_healthz_logs(kubelet):
    k, certs = kubelet
    assert asyncio.run(_get(k.port, "/healthz", None)) == (200, b"ok")
    code, body = asyncio.run(_get(k.port, "/pods", None))
    assert code == 401 and json.loads(body)["reason"] == "Unauthorized"
    code, body = asyncio.run(_get(k.port, "/pods", certs))
    assert code == 200 and json.loads(body)["items"][0]["metadata"]["name"] == "web"
    k.host.write_log("main", ("stdout", "one"), ("stderr", "two"), ("stdout", "three"))
    code, body = asyncio.run(_get(k.port, "/containerLogs/default/web/main", certs))
    assert (code, body) == (200, b"one\ntwo\nthree\n")
    code, body = asyncio.run(_get(k.port, "/containerLogs/default/web/main?tailLines=1&timestamps=true", certs))
    ts, text = body.decode().split(" ", 1)
    assert text == "three\n" and ts.endswith("Z")
    code, body = asyncio.run(_get(k.port, "/containerLogs/default/web/main?limitBytes=5", certs))
    assert body == b"one\nt"
    code, body = asyncio.run(_get(k.port, "/containerLogs/default/other/main", certs))
    assert code == 404 and json.loads(body)["kind"] == "Status"


def test_logs_follow_rotation_and_end(kubelet):
    k, certs = kubelet
    host = k.host
    path = host.log_file("default", "web", "main", False)
    host.write_log("main", ("stdout", "before"))

    async def follow() -> bytes:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{k.port}/containerLogs/default/web/main?follow=true",
                             ssl=_client_ctx(certs)) as r:
                got = await r.content.readline()
                assert got == b"before\n"
                host.write_log("main", ("stdout", "old-file"))
                os.rename(path, path + ".1")          # rotation: a new file under the same name
                host.write_log("main", ("stdout", "new-file"))
                assert await r.content.readline() == b"old-file\n"
                assert await r.content.readline() == b"new-file\n"
                host.running = False                  # the container ends: so does the stream
                return await asyncio.wait_for(r.content.read(), 5)
    assert asyncio.run(follow()) == b""


def test_exec_websocket_v4_and_v5(kubelet):
    k, certs = kubelet

    async def run(proto: str, cmd: str, stdin: bytes | None) -> tuple[bytes, bytes, dict]:
        params = [("command", "sh"), ("command", "-c"), ("command", cmd), ("output", "1"), ("error", "1")]
        if stdin is not None:
            params.append(("input", "1"))
        q = urlencode(params)
        out, err, status = b"", b"", {}
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"wss://127.0.0.1:{k.port}/exec/default/web/main?{q}", protocols=[proto],
                                    ssl=_client_ctx(certs)) as ws:
                assert ws.protocol == proto
                if stdin is not None:
                    await ws.send_bytes(b"\x00" + stdin)
                    await ws.send_bytes(b"\xff\x00")  # v5: close stdin
                async for msg in ws:
                    ch, data = msg.data[0], msg.data[1:]
                    if ch == 1:
                        out += data
                    elif ch == 2:
                        err += data
                    elif ch == 3:
                        status = json.loads(data)
        return out, err, status

    out, err, st = asyncio.run(run("v4.channel.k8s.io", "echo hi; echo oops >&2; exit 3", None))
    assert (out, err) == (b"hi\n", b"oops\n")
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    out, err, st = asyncio.run(run("v5.channel.k8s.io", "tr a-z A-Z", b"hello"))
    assert (out, st["status"]) == (b"HELLO", "Success")
