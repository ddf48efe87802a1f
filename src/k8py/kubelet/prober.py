"""Container probes, as Kubernetes' prober: one probe (`run_probe`) and the workers that repeat them.

    result = await run_probe(container["livenessProbe"], pod_ip="10.88.0.5",
                             exec_fn=lambda cmd, t: runtime.exec_sync(cid, cmd, t),
                             port_names={"http": 8080})
    result.result, result.output            # "success" | "failure" | "unknown", text

    probes = ProbeManager(on_change, runtime)       # on_change(pod_uid, container, probe_type, ok)
    probes.add_pod(pod, pod_ip, {"web": container_id})
    probes.update_container(pod_uid, "web", new_container_id, started_at)   # after a (re)start
    probes.result(pod_uid, "web", "readiness")      # -> bool | None
    probes.started(pod_uid, "web")                  # containerStatus.started
    probes.remove_pod(pod_uid)

One probe, as kube's probers do it:

- exec: `exec_fn(command, timeout)` (the runtime's exec_sync); exit 0 is success,
  any other exit code or a timeout (a TimeoutError, or a RuntimeFailure that
  says "timed out", as RuncRuntime's) is failure, any other error unknown.
- httpGet: GET scheme://host:port/path from the host (the pod IP is on the
  node's bridge), host defaulting to the pod IP, then 127.0.0.1; HTTPS without
  certificate checks; httpHeaders sent (a Host header sets the host);
  `User-Agent: kube-probe/1.32` and `Accept: */*` unless given. 200 <= code
  < 400 is success. Redirects are followed (up to 10) while they stay on the
  same host; a redirect elsewhere is not followed and counts as success, as
  kube's "Probe terminated redirects" warning does. A connection error or
  timeout is failure.
- tcpSocket: a TCP connection to host:port opens within the timeout.
- grpc: not supported here: "unknown", saying so.
- A named port is looked up in `port_names` (the container's ports); an
  unknown name is "unknown".
- `netns_path`: connect from inside that network namespace instead (the
  socket is made by a thread that joins it; needs CAP_SYS_ADMIN): for pods
  whose IP the host cannot reach, with the pod's own 127.0.0.1.

The workers follow kube's prober/worker.go:

- One asyncio task per (container, probe type), probing every periodSeconds
  once initialDelaySeconds have passed since the container started, each
  probe bounded by timeoutSeconds. Defaults: period 10, timeout 1,
  successThreshold 1, failureThreshold 3. Fields may be floats (tests use
  periods of 0.05 s).
- A result is recorded only after successThreshold equal successes or
  failureThreshold equal failures in a row; "unknown" results are thrown away.
- Initial results: readiness False (True without a readiness probe, once the
  container runs: the caller combines it with the running state), liveness
  True, startup None (unknown) until it succeeds or fails. Without a startup
  probe a container counts as started.
- Liveness and readiness do not run until the startup probe has succeeded;
  the startup probe stops once it has.
- A failed liveness or startup result is reported through
  `on_change(..., False)` (the kubelet kills and restarts the container) and
  the worker holds until `update_container` brings a new container id, which
  restarts its counting from the initial result.
- While a container is not running (container id None) readiness is False.
- `on_change` is called on every change of a result, resets included.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from k8py.kubelet.runtime.interface import ExecResult, RuntimeFailure

log = logging.getLogger("k8py.kubelet.prober")

USER_AGENT = "kube-probe/1.32"
MAX_OUTPUT = 10 * 1024          # kube keeps at most 10 KiB of a probe's output
MAX_REDIRECTS = 10
CLONE_NEWNET = 0x40000000

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
PROBE_FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}

Result = Literal["success", "failure", "unknown"]
ExecFn = Callable[[list[str], float], Awaitable[ExecResult]]
OnChange = Callable[[str, str, str, bool], None]


@dataclass(frozen=True)
class ProbeResult:
    result: Result
    output: str = ""


class _ProbeError(Exception):
    """The probe itself is wrong (an unknown port name): its result is unknown."""


# -- one probe --------------------------------------------------------------------------------------

def _port(value: Any, port_names: dict[str, int] | None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value and (port_names or {}).get(value):
        port = (port_names or {})[value]
    else:
        raise _ProbeError(f"couldn't find port {value!r} in the container's ports")
    if not 0 < port < 65536:
        raise _ProbeError(f"invalid port number: {port}")
    return port


def _netns_socket(netns_path: str, family: int) -> socket.socket:
    """A TCP socket that lives in the network namespace at netns_path.

    setns(2) changes only the calling thread's namespace, so a short-lived thread joins it, makes
    the socket and ends; the socket stays in that namespace wherever it is used afterwards."""
    out: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as e:  # handed to the caller
            out.append(e)
    t = threading.Thread(target=make, name="k8py-probe-netns", daemon=True)
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


async def _connect(host: str, port: int, netns_path: str | None, tls: bool, server_hostname: str
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    ctx: ssl.SSLContext | None = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # kube's prober: InsecureSkipVerify
    if netns_path is None:
        return await asyncio.open_connection(host, port, ssl=ctx,
                                             server_hostname=server_hostname if ctx else None)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await asyncio.to_thread(_netns_socket, netns_path, family)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        return await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=server_hostname if ctx else None)
    except BaseException:
        sock.close()
        raise


def _oserror(e: BaseException) -> str:
    """Go's wording for a socket error: "connect: connection refused"."""
    if isinstance(e, OSError) and e.errno:
        return f"connect: {os.strerror(e.errno).lower()}"
    return str(e) or type(e).__name__


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _http_get(scheme: str, host: str, port: int, path: str, headers: list[tuple[str, str]],
                    netns_path: str | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET with Connection: close; (status, headers in lower case, first 10 KiB of body)."""
    names = {k.lower() for k, _ in headers}
    host_header = next((v for k, v in headers if k.lower() == "host"), _hostport(host, port))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}"]
    if "user-agent" not in names:
        lines.append(f"User-Agent: {USER_AGENT}")
    if "accept" not in names:
        lines.append("Accept: */*")
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("host", "connection")]
    lines.append("Connection: close")
    reader, writer = await _connect(host, port, netns_path, scheme == "https", host)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ConnectionError(f"malformed HTTP response {status_line[:100]!r}")
        status = int(parts[1])
        resp_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        body = b""
        if "chunked" in resp_headers.get("transfer-encoding", "").lower():
            while len(body) < MAX_OUTPUT:
                size_line = await reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                body += await reader.readexactly(size)
                await reader.readline()
        else:
            n = resp_headers.get("content-length", "")
            want = min(int(n), MAX_OUTPUT) if n.isdigit() else MAX_OUTPUT
            while len(body) < want:
                chunk = await reader.read(want - len(body))
                if not chunk:
                    break
                body += chunk
        return status, resp_headers, body[:MAX_OUTPUT]
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _probe_http(spec: dict[str, Any], host: str, port: int, netns_path: str | None) -> ProbeResult:
    scheme = str(spec.get("scheme") or "HTTP").lower()
    if scheme not in ("http", "https"):
        raise _ProbeError(f"unsupported scheme {spec.get('scheme')!r}")
    path = str(spec.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = [(str(h.get("name", "")), str(h.get("value", ""))) for h in spec.get("httpHeaders") or []
               if h.get("name")]
    url = f"{scheme}://{_hostport(host, port)}{path}"
    for _ in range(MAX_REDIRECTS + 1):
        status, resp_headers, body = await _http_get(scheme, host, port, path, headers, netns_path)
        text = body.decode(errors="replace")
        if status in (301, 302, 303, 307, 308) and resp_headers.get("location"):
            target = urlsplit(urljoin(url, resp_headers["location"]))
            if target.hostname != host or target.scheme not in ("http", "https"):
                return ProbeResult("success", f"Probe terminated redirects, Response body: {text}")
            scheme, url = target.scheme, target.geturl()
            port = target.port or (443 if scheme == "https" else 80)
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            continue
        if 200 <= status < 400:
            return ProbeResult("success", text)
        return ProbeResult("failure", f"HTTP probe failed with statuscode: {status}")
    return ProbeResult("failure", f"Get {url!r}: stopped after {MAX_REDIRECTS} redirects")


async def run_probe(probe: dict[str, Any], *, pod_ip: str, exec_fn: ExecFn | None,
                    netns_path: str | None = None, port_names: dict[str, int] | None = None,
                    timeout: float | None = None) -> ProbeResult:
    """Run one probe (the API's Probe object) once; see the module docstring for the rules."""
    if timeout is None:
        timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe and probe["exec"] is not None:
            return await _probe_exec(list(probe["exec"].get("command") or []), exec_fn, timeout)
        if probe.get("httpGet") is not None:
            spec = probe["httpGet"]
            host = spec.get("host") or pod_ip or "127.0.0.1"
            port = _port(spec.get("port"), port_names)
            try:
                return await asyncio.wait_for(_probe_http(spec, host, port, netns_path), timeout)
            except asyncio.TimeoutError:
                return ProbeResult("failure", f"Get {host}:{port}: context deadline exceeded "
                                              f"(timeout {timeout:g}s)")
            except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                return ProbeResult("failure", f"Get {_hostport(host, port)}: {_oserror(e)}")
        if probe.get("tcpSocket") is not None:
            spec = probe["tcpSocket"]
            host = spec.get("host") or pod_ip or "127.0.0.1"
            port = _port(spec.get("port"), port_names)
            try:
                _, writer = await asyncio.wait_for(_connect(host, port, netns_path, False, host), timeout)
            except asyncio.TimeoutError:
                return ProbeResult("failure", f"dial tcp {_hostport(host, port)}: i/o timeout")
            except OSError as e:
                return ProbeResult("failure", f"dial tcp {_hostport(host, port)}: {_oserror(e)}")
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return ProbeResult("success", "")
        if probe.get("grpc") is not None:
            return ProbeResult("unknown", "grpc probes are not supported by k8py's kubelet")
        return ProbeResult("unknown", "missing probe handler (exec, httpGet, tcpSocket or grpc)")
    except _ProbeError as e:
        return ProbeResult("unknown", str(e))


async def _probe_exec(cmd: list[str], exec_fn: ExecFn | None, timeout: float) -> ProbeResult:
    if exec_fn is None or not cmd:
        return ProbeResult("unknown", "exec probe without a command or a runtime to run it")
    try:
        # the runtime bounds the command; this bounds a runtime that does not
        r = await asyncio.wait_for(exec_fn(cmd, timeout), timeout + 5)
    except TimeoutError:
        return ProbeResult("failure", f"command {cmd!r} timed out")
    except RuntimeFailure as e:
        if "timed out" in str(e):
            return ProbeResult("failure", f"command {cmd!r} timed out")
        return ProbeResult("unknown", str(e))
    except Exception as e:  # the runtime could not run it at all
        return ProbeResult("unknown", f"{type(e).__name__}: {e}")
    output = (r.stdout + r.stderr)[:MAX_OUTPUT].decode(errors="replace")
    return ProbeResult("success" if r.exit_code == 0 else "failure", output)


# -- the workers ------------------------------------------------------------------------------------

class _Worker:
    """Probes one container with one probe type for as long as the pod is known (worker.go)."""

    def __init__(self, manager: ProbeManager, pod_uid: str, container: dict[str, Any], probe_type: str) -> None:
        self.m = manager
        self.pod_uid = pod_uid
        self.name: str = container["name"]
        self.probe_type = probe_type
        self.spec: dict[str, Any] = container[PROBE_FIELDS[probe_type]]
        self.port_names = {p["name"]: int(p["containerPort"]) for p in container.get("ports") or []
                           if p.get("name") and p.get("containerPort")}
        self.initial: bool | None = {READINESS: False, LIVENESS: True, STARTUP: None}[probe_type]
        self.result: bool | None = self.initial
        self.container_id: str | None = None
        self.started_at = 0.0
        self.last: Result | None = None
        self.run = 0
        self.on_hold = False
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _f(self, key: str, default: float) -> float:
        value = self.spec.get(key)
        return float(value) if value is not None and value != 0 else default

    def set_container(self, container_id: str | None, started_at: float) -> None:
        if container_id != self.container_id:
            self.container_id = container_id
            self.started_at = started_at
            self.last, self.run, self.on_hold = None, 0, False
            self._set(self.initial)
        elif started_at:
            self.started_at = started_at
        self.wake.set()

    def _set(self, value: bool | None) -> None:
        if value == self.result:
            return
        self.result = value
        if value is not None:
            try:
                self.m.on_change(self.pod_uid, self.name, self.probe_type, value)
            except Exception:
                log.exception("probe result handler failed for %s/%s %s", self.pod_uid, self.name, self.probe_type)
        if self.probe_type == STARTUP and value:
            self.m._wake(self.pod_uid, self.name)

    async def loop(self) -> None:
        period = self._f("periodSeconds", 10)
        while True:
            wait = await self._do_probe()
            delay = period if wait is None else wait
            self.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), delay)

    async def _do_probe(self) -> float | None:
        """One round of worker.go's doProbe; returns a shorter wait than the period when needed."""
        if not self.container_id or self.on_hold:
            return None
        if self.probe_type != STARTUP and not self.m.started(self.pod_uid, self.name):
            return None
        if self.probe_type == STARTUP and self.result:
            return None
        delay = self._f("initialDelaySeconds", 0) - (time.time() - self.started_at)
        if delay > 0:
            return delay
        cid = self.container_id
        pod = self.m._pods.get(self.pod_uid)
        if pod is None:
            return None
        r = await run_probe(self.spec, pod_ip=pod.pod_ip, netns_path=pod.netns_path, port_names=self.port_names,
                            exec_fn=lambda cmd, t: self.m.runtime.exec_sync(cid, cmd, t),
                            timeout=self._f("timeoutSeconds", 1))
        if cid != self.container_id or self.on_hold:
            return None  # the container changed while the probe ran: its result is about the old one
        if r.result == "unknown":
            log.info("%s probe of %s/%s errored: %s", self.probe_type, self.pod_uid, self.name, r.output)
            return None
        if r.result != "success":
            log.info("%s probe of %s/%s failed: %s", self.probe_type, self.pod_uid, self.name, r.output[:200])
        if r.result == self.last:
            self.run += 1
        else:
            self.last, self.run = r.result, 1
        if r.result == "failure" and self.run < self._f("failureThreshold", 3):
            return None
        if r.result == "success" and self.run < self._f("successThreshold", 1):
            return None
        self._set(r.result == "success")
        if self.probe_type in (LIVENESS, STARTUP) and r.result == "failure":
            # the kubelet restarts the container: wait for the new one
            self.on_hold, self.run = True, 0
        return None


@dataclass
class _Pod:
    uid: str
    pod_ip: str
    netns_path: str | None
    workers: dict[tuple[str, str], _Worker]


class ProbeManager:
    """The probe workers of every pod on the node; see the module docstring."""

    def __init__(self, on_change: OnChange, runtime: Any) -> None:
        self.on_change = on_change
        self.runtime = runtime
        self._pods: dict[str, _Pod] = {}

    def add_pod(self, pod: dict[str, Any], pod_ip: str, container_ids: dict[str, str], *,
                netns_path: str | None = None, started_at: dict[str, float] | None = None) -> None:
        """Start the workers of the pod's containers (idempotent: a known pod gets its new IP and ids)."""
        uid = pod["metadata"]["uid"]
        p = self._pods.get(uid)
        if p is None:
            p = self._pods[uid] = _Pod(uid, pod_ip, netns_path, {})
            for c in pod.get("spec", {}).get("containers") or []:
                for probe_type, field_name in PROBE_FIELDS.items():
                    if c.get(field_name):
                        w = _Worker(self, uid, c, probe_type)
                        p.workers[(c["name"], probe_type)] = w
                        w.task = asyncio.get_running_loop().create_task(
                            w.loop(), name=f"probe-{probe_type}-{uid}-{c['name']}")
        p.pod_ip = pod_ip
        p.netns_path = netns_path
        for name, cid in container_ids.items():
            self.update_container(uid, name, cid, (started_at or {}).get(name, time.time()))

    def update_container(self, pod_uid: str, name: str, container_id: str | None, started_at: float) -> None:
        """The container `name` now runs as container_id since started_at (unix seconds);
        None: it is not running. A new id restarts the workers' counting."""
        p = self._pods.get(pod_uid)
        if p is None:
            return
        # startup first, so that the others see the reset "started" at once
        for probe_type in (STARTUP, LIVENESS, READINESS):
            w = p.workers.get((name, probe_type))
            if w is not None:
                w.set_container(container_id, started_at)

    def remove_pod(self, uid: str) -> None:
        p = self._pods.pop(uid, None)
        if p is not None:
            for w in p.workers.values():
                if w.task is not None:
                    w.task.cancel()

    async def close(self) -> None:
        tasks = [w.task for p in self._pods.values() for w in p.workers.values() if w.task is not None]
        for uid in list(self._pods):
            self.remove_pod(uid)
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t

    def result(self, pod_uid: str, container: str, probe_type: str) -> bool | None:
        """The current result; with no such probe: True (readiness then follows the running state)."""
        p = self._pods.get(pod_uid)
        w = p.workers.get((container, probe_type)) if p is not None else None
        return True if w is None else w.result

    def started(self, pod_uid: str, container: str) -> bool:
        """containerStatus.started: the startup probe succeeded, or there is none."""
        return self.result(pod_uid, container, STARTUP) is True

    def _wake(self, pod_uid: str, container: str) -> None:
        p = self._pods.get(pod_uid)
        if p is not None:
            for probe_type in (LIVENESS, READINESS):
                w = p.workers.get((container, probe_type))
                if w is not None:
                    w.wake.set()
