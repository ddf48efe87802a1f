"""The kubelet's HTTPS server (kube's pkg/kubelet/server): what the API server
reaches for `kubectl logs/exec/attach/port-forward`, plus health, stats and pods.

Usage (by the kubelet)::

    crt, key = issue_kubelet_serving_cert("/var/lib/k8py/kubelet/pki", node_name, ["10.0.0.5"])
    srv = KubeletServer(host, 10250, "0.0.0.0", crt, key, client_ca="/var/lib/k8py/kubelet/ca.crt")
    await srv.start()
    ...
    await srv.stop()

`host` is the kubelet itself, seen through the small `KubeletHost` protocol
below.  Every path but /healthz requires a client certificate signed by
`client_ca` (the API server's kube-apiserver-kubelet-client certificate).

Endpoints, as the real kubelet's:

    GET  /healthz
    GET  /containerLogs/{ns}/{pod}/{container}?follow&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes&previous
    GET|POST /exec/{ns}/{pod}[/{uid}]/{container}?command=..&input=1&output=1&error=1&tty=1
    GET|POST /attach/{ns}/{pod}[/{uid}]/{container}?input=1&output=1&error=1&tty=1
    GET|POST /portForward/{ns}/{pod}[/{uid}]     (SPDY, WebSocket channels, SPDY over WebSocket)
    GET  /stats/summary
    GET  /pods

Errors are kube-style Status JSON objects with the HTTP code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import os
import ssl
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web

from .runtime.interface import RUNNING, RuntimeFailure, RuntimeService, StreamSession
from .streaming import logs, portforward, remotecommand

log = logging.getLogger("k8py.kubelet.server")


# ---- what the kubelet provides ----------------------------------------------------------

class HostError(Exception):
    """A request the kubelet cannot serve; `code`/`reason` as in a metav1.Status."""

    code = 500
    reason = "InternalError"


class NotFound(HostError):
    """The pod is not on this node, or it has no such container."""

    code = 404
    reason = "NotFound"


class BadRequest(HostError):
    """The container is not running, no container name was given for a pod of
    several ("a container name must be specified for pod X, choose one of: [a b]"),
    no previous instance exists..."""

    code = 400
    reason = "BadRequest"


@dataclass(frozen=True)
class ContainerRef:
    """A container of a pod on this node, as the runtime knows it."""

    container_id: str
    pod_uid: str = ""


class KubeletHost(Protocol):
    """What the server needs from the kubelet (implemented by the lead's kubelet;
    tests use a fake).  Methods raise NotFound or BadRequest."""

    runtime: RuntimeService  # exec(), attach(), container_status() are used

    def container_for(self, namespace: str, pod: str, container: str | None) -> ContainerRef:
        """The running container `container` of the pod (None: the pod's only container)."""

    def log_file(self, namespace: str, pod: str, container: str, previous: bool) -> str:
        """The CRI log file of the container (previous: of its last terminated instance)."""

    def pod_netns(self, namespace: str, pod: str) -> str | None:
        """The pod's network namespace path for port-forward; None: the host's network."""

    def stats_summary(self) -> dict[str, Any]:
        """The /stats/summary document (kube's statsapi Summary)."""

    def pods(self) -> list[dict[str, Any]]:
        """The pods this kubelet runs (the /pods endpoint's items)."""


# ---- the serving certificate ----------------------------------------------------------------

def issue_kubelet_serving_cert(directory: str | os.PathLike[str], node_name: str,
                               ips: list[str] | tuple[str, ...] = ()) -> tuple[str, str]:
    """A self-signed serving certificate (kubelet.crt/kubelet.key in `directory`),
    made once, as the kubelet does without --tls-cert-file.  The API server does
    not verify it (as kube-apiserver without --kubelet-certificate-authority)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    crt, key_path = d / "kubelet.crt", d / "kubelet.key"
    if crt.exists() and key_path.exists():
        return str(crt), str(key_path)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{int(now.timestamp())}")])
    sans: list[x509.GeneralName] = [x509.DNSName(node_name), x509.DNSName("localhost")]
    for ip in {"127.0.0.1", *ips}:
        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    tmp = key_path.with_suffix(".tmp")
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(tmp, 0o600)
    os.replace(tmp, key_path)
    tmp = crt.with_suffix(".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, crt)
    return str(crt), str(key_path)


# ---- the server ---------------------------------------------------------------------------------

async def _attach(rt: RuntimeService, container_id: str, stdin: bool, size: tuple[int, int] | None) -> StreamSession:
    """kubectl attach: the container's terminal exists already, so the client's size is set on it."""
    session = await rt.attach(container_id, stdin=stdin)
    if size is not None:
        await session.resize(*size)
    return session


def status_response(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class KubeletServer:
    def __init__(self, host: KubeletHost, port: int, bind_address: str, tls_cert: str, tls_key: str,
                 client_ca: str):
        self.host = host
        self.port = port
        self.bind_address = bind_address
        self.tls_cert, self.tls_key, self.client_ca = tls_cert, tls_key, client_ca
        self._runner: web.ServerRunner | None = None

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        ctx.load_verify_locations(self.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # /healthz is open; the rest checks the peer certificate
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def start(self) -> None:
        server = web.Server(self._serve, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind_address, self.port, ssl_context=self._ssl(), reuse_address=True)
        await site.start()
        if self.port == 0:  # tests: the port the system chose
            for s in site._server.sockets:  # type: ignore[union-attr]
                self.port = s.getsockname()[1]
                break
        log.info("kubelet server listening on %s:%d", self.bind_address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            if request.path in ("/healthz", "/healthz/"):
                return web.Response(text="ok")
            transport = request.transport
            if transport is None or not transport.get_extra_info("peercert"):
                return status_response(401, "Unauthorized", "Unauthorized")
            return await self._route(request)
        except HostError as e:
            return status_response(e.code, e.reason, str(e))
        except (remotecommand.BadOptions, ValueError) as e:
            return status_response(400, "BadRequest", str(e))
        except RuntimeFailure as e:
            return status_response(500, "InternalError", str(e))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001
            log.error("kubelet server: %s %s: %s", request.method, request.path, traceback.format_exc())
            return status_response(500, "InternalError", str(e))

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        head = parts[0] if parts else ""
        m = request.method
        if head == "containerLogs" and len(parts) == 4 and m == "GET":
            return await self._logs(request, parts[1], parts[2], parts[3])
        if head in ("exec", "attach") and len(parts) in (4, 5) and m in ("GET", "POST"):
            return await self._remotecommand(request, head, parts[1], parts[2], parts[-1])
        if head == "portForward" and len(parts) in (3, 4) and m in ("GET", "POST"):
            return await self._portforward(request, parts[1], parts[2])
        if parts == ["stats", "summary"] and m == "GET":
            return web.Response(body=orjson.dumps(self.host.stats_summary()), content_type="application/json")
        if parts == ["pods"] and m == "GET":
            return web.Response(body=orjson.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                                   "items": self.host.pods()}), content_type="application/json")
        return status_response(404, "NotFound", "the server could not find the requested resource")

    async def _logs(self, request: web.BaseRequest, ns: str, pod: str, container: str) -> web.StreamResponse:
        opts = logs.LogOptions.from_query(request.query)
        previous = request.query.get("previous", "").lower() in ("1", "true")
        ref = None
        if not previous:
            try:
                ref = self.host.container_for(ns, pod, container)
            except BadRequest:
                ref = None  # not running (any more): the log is read to its end
        path = self.host.log_file(ns, pod, container, previous)
        if not os.path.exists(path):
            raise NotFound(f'log file for container "{container}" in pod "{pod}" not found')
        resp = web.StreamResponse(status=200)
        resp.content_type = "text/plain"
        resp.charset = "utf-8"
        await resp.prepare(request)

        async def running() -> bool:
            if ref is None:
                return False
            try:
                st = await self.host.runtime.container_status(ref.container_id)
            except RuntimeFailure:
                return False
            return st.state == RUNNING

        try:
            await logs.stream_log(path, opts, resp.write, running)
        except (ConnectionError, RuntimeError):
            return resp  # the client went away
        await resp.write_eof()
        return resp

    async def _remotecommand(self, request: web.BaseRequest, verb: str, ns: str, pod: str,
                             container: str) -> web.StreamResponse:
        opts = remotecommand.options_from_query(request.query)
        if verb == "exec" and not opts.command:
            raise BadRequest("you must specify at least one command for the container")
        ref = self.host.container_for(ns, pod, container)
        rt = self.host.runtime
        if verb == "exec":
            return await remotecommand.serve(
                request, opts,
                lambda size: rt.exec(ref.container_id, opts.command, tty=opts.tty, stdin=opts.stdin, size=size),
                command=opts.command)
        return await remotecommand.serve(request, opts,
                                         lambda size: _attach(rt, ref.container_id, opts.stdin, size),
                                         report_exit_code=False)

    async def _portforward(self, request: web.BaseRequest, ns: str, pod: str) -> web.StreamResponse:
        netns = self.host.pod_netns(ns, pod)
        return await portforward.serve(request, netns, f"{ns}/{pod}")
