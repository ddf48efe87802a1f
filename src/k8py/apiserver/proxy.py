"""The API server's way to kubelets: pods/log, pods/exec, pods/attach,
pods/portforward and nodes/proxy (kube's pod REST "connect" subresources and
its UpgradeAwareHandler).

Usage (ResourceHandlers routes here)::

    proxy = KubeletProxy(registry, ostore, certs)
    return await proxy.handle(request, target, extra_path)   # extra_path: nodes/{n}/proxy/<this>

The kubelet is found from the pod's spec.nodeName: the Node's
.status.addresses (InternalIP, then Hostname) and
.status.daemonEndpoints.kubeletEndpoint.Port (10250 by default).  We show the
kubelet our kube-apiserver-kubelet-client certificate and do not verify its
serving certificate (kube-apiserver without --kubelet-certificate-authority).
pods/log is a plain streamed GET; exec/attach/portforward forward the Upgrade
request, relay the kubelet's answer head, and after a 101 copy bytes both ways.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from aiohttp import web

from ..api.registry import Registry
from ..kubelet.streaming.hijack import hijack
from . import errors
from .certs import ClusterCerts

log = logging.getLogger("k8py.apiserver.proxy")

DEFAULT_KUBELET_PORT = 10250
POD_SUBRESOURCES = ("log", "exec", "attach", "portforward")
_HOP_BY_HOP = {"host", "authorization", "content-length", "transfer-encoding", "expect", "keep-alive",
               "proxy-connection", "te", "trailer"}


def _truthy(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true")


class KubeletProxy:
    def __init__(self, reg: Registry, ostore: Any, certs: ClusterCerts):
        self.reg = reg
        self.ostore = ostore
        self.certs = certs
        self._ctx: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(str(self.certs.kubelet_client_crt), str(self.certs.kubelet_client_key))
            ctx.set_alpn_protocols(["http/1.1"])
            self._ctx = ctx
        return self._ctx

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context()),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # ---- locating kubelets ---------------------------------------------------------------
    async def _node_location(self, node_name: str) -> tuple[str, int]:
        node_r = self.reg.lookup("", "v1", "nodes")
        node = await self.ostore.get(node_r, None, node_name, "")
        status = node.get("status") or {}
        addrs = status.get("addresses") or []
        host = ""
        for kind in ("InternalIP", "Hostname", "ExternalIP"):
            host = next((a.get("address", "") for a in addrs if a.get("type") == kind and a.get("address")), "")
            if host:
                break
        if not host:
            raise errors.bad_request(f'node "{node_name}" has no addresses')
        port = (((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
                or DEFAULT_KUBELET_PORT)
        return host, int(port)

    @staticmethod
    def _container(pod: dict[str, Any], requested: str) -> str:
        spec = pod.get("spec") or {}
        name = pod["metadata"]["name"]
        names = [c.get("name", "") for c in spec.get("containers") or []]
        init = [c.get("name", "") for c in spec.get("initContainers") or []]
        eph = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
        if not requested:
            if len(names) == 1:
                return names[0]
            msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
            if init:
                msg += f" or one of the init containers: [{' '.join(init)}]"
            if eph:
                msg += f" or one of the ephemeral containers: [{' '.join(eph)}]"
            raise errors.bad_request(msg)
        if requested not in names + init + eph:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested

    # ---- routing ---------------------------------------------------------------------------
    async def handle(self, request: web.Request, t: Any, extra: list[str]) -> web.StreamResponse:
        if t.r.kind == "Node" and t.sub == "proxy":
            host, port = await self._node_location(t.name)
            path = "/" + "/".join(quote(p) for p in extra)
            return await self._plain(request, host, port, path, request.query_string)
        if t.r.kind != "Pod" or t.sub not in POD_SUBRESOURCES:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        pod_r = self.reg.lookup("", "v1", "pods")
        pod = await self.ostore.get(pod_r, t.ns, t.name, "")
        node_name = (pod.get("spec") or {}).get("nodeName")
        q = request.query
        if t.sub == "log":
            if request.method != "GET":
                raise errors.method_not_allowed()
            container = self._container(pod, q.get("container", ""))
            if not node_name:
                raise errors.bad_request(f"pod {t.name} does not have a host assigned")
            host, port = await self._node_location(node_name)
            params = [(k, q[k]) for k in ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime",
                                          "timestamps", "limitBytes") if k in q]
            path = f"/containerLogs/{quote(t.ns)}/{quote(t.name)}/{quote(container)}"
            return await self._plain(request, host, port, path, urlencode(params))
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed()
        if t.sub == "portforward":
            if not node_name:
                raise errors.bad_request(f"pod {t.name} does not have a host assigned")
            host, port = await self._node_location(node_name)
            ports = [("port", p) for name in ("ports", "port") for v in q.getall(name, []) for p in v.split(",")
                     if p]
            path = f"/portForward/{quote(t.ns)}/{quote(t.name)}"
            return await self._upgrade(request, host, port, path, urlencode(ports))
        container = self._container(pod, q.get("container", ""))
        if not node_name:
            raise errors.bad_request(f"pod {t.name} does not have a host assigned")
        host, port = await self._node_location(node_name)
        params: list[tuple[str, str]] = []
        if t.sub == "exec":
            params += [("command", c) for c in q.getall("command", [])]
        for api_name, kubelet_name in (("stdin", "input"), ("stdout", "output"), ("stderr", "error"),
                                       ("tty", "tty")):
            if _truthy(q.get(api_name)):
                params.append((kubelet_name, "1"))
        path = f"/{t.sub}/{quote(t.ns)}/{quote(t.name)}/{quote(container)}"
        return await self._upgrade(request, host, port, path, urlencode(params))

    # ---- plain requests (logs, node proxy) -------------------------------------------------------
    async def _plain(self, request: web.Request, host: str, port: int, path: str, query: str) -> web.StreamResponse:
        url = f"https://{_hostport(host, port)}{path}" + (f"?{query}" if query else "")
        body = await request.read() if request.can_read_body else None
        try:
            upstream = await self.session().request(request.method, url, data=body, allow_redirects=False)
        except (aiohttp.ClientError, OSError) as e:
            raise errors.internal(f"error dialing backend: {e}") from None
        async with upstream:
            if upstream.status >= 400:
                raise _kubelet_error(upstream.status, await upstream.read())
            resp = web.StreamResponse(status=upstream.status)
            ct = upstream.headers.get("Content-Type")
            if ct:
                resp.headers["Content-Type"] = ct
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass  # the kubelet went away mid-stream: end ours
            await resp.write_eof()
            return resp

    # ---- upgrades (exec, attach, portforward) ----------------------------------------------------
    async def _upgrade(self, request: web.Request, host: str, port: int, path: str, query: str) -> web.StreamResponse:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self.ssl_context(), server_hostname=host,
                                        limit=2 ** 20), 10)
        except (OSError, asyncio.TimeoutError) as e:
            raise errors.internal(f"error dialing backend: {e}") from None
        try:
            body = await request.read() if request.can_read_body else b""
            lines = [f"{request.method} {path}{'?' + query if query else ''} HTTP/1.1",
                     f"Host: {_hostport(host, port)}"]
            for k, v in request.headers.items():
                if k.lower() not in _HOP_BY_HOP and not k.lower().startswith("impersonate-"):
                    lines.append(f"{k}: {v}")
            if body:
                lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            writer.close()
            raise errors.internal(f"error proxying to the kubelet: {e}") from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            writer.close()
            raise errors.internal(f"bad answer from the kubelet: {status_line!r}") from None
        headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in header_lines if ":" in ln]
        if status != 101:
            data = b""
            try:
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
                if length is not None:
                    data = await asyncio.wait_for(reader.readexactly(length), 10)
                elif not any(k.lower() == "transfer-encoding" for k, v in headers):
                    data = await asyncio.wait_for(reader.read(1 << 20), 10)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            writer.close()
            if status >= 400:
                raise _kubelet_error(status, data)
            return web.Response(status=status, body=data)
        resp, client = await hijack(request, [(k, v) for k, v in headers  # type: ignore[misc]
                                              if k.lower() not in ("content-length", "date", "server")])

        async def up() -> None:  # client -> kubelet
            while data := await client.reader.read(65536):
                writer.write(data)
                await writer.drain()

        async def down() -> None:  # kubelet -> client
            while data := await reader.read(65536):
                await client.write(data)

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            client.close()
        return resp


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _kubelet_error(code: int, body: bytes) -> errors.APIError:
    """The kubelet's Status passed on; a plain-text answer wrapped in one."""
    try:
        st = orjson.loads(body)
        if isinstance(st, dict) and st.get("kind") == "Status":
            st.setdefault("code", code)
            return errors.from_status(st)
    except orjson.JSONDecodeError:
        pass
    text = body.decode(errors="replace").strip()
    reason = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(code, "InternalError")
    return errors.APIError(code, reason, text or f"the kubelet answered {code}")
