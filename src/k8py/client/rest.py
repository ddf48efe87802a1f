"""An asyncio client of the Kubernetes REST API, as every k8py component
uses it (client-go's RESTClient, typed loosely: objects are plain dicts).

Resources are the API's own :class:`~k8py.api.registry.Resource` entries, so
a path is built exactly as the server routes it.  Failures raise
:class:`APIError` carrying the server's ``Status``."""

from __future__ import annotations

import logging
import random
from typing import Any, AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson

from ..api.registry import REGISTRY, Resource
from .kubeconfig import ClientConfig

log = logging.getLogger(__name__)

JSON = "application/json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


class APIError(Exception):
    """A non-2xx answer; ``status`` is the server's metav1.Status."""

    def __init__(self, code: int, status: dict[str, Any]):
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, APIError) and e.code == 404


def is_conflict(e: BaseException) -> bool:
    return isinstance(e, APIError) and e.code == 409 and e.reason == "Conflict"


def is_already_exists(e: BaseException) -> bool:
    return isinstance(e, APIError) and e.code == 409 and e.reason == "AlreadyExists"


def resource(spec: str) -> Resource:
    """``"pods"``, ``"deployments.apps"``, ``"leases.coordination.k8s.io"``:
    the preferred version of that resource."""
    plural, _, group = spec.partition(".")
    for grp, versions in REGISTRY.groups():
        if grp != group:
            continue
        for v in versions:
            r = REGISTRY.lookup(grp, v, plural)
            if r is not None:
                return r
    raise KeyError(spec)


def _path(r: Resource, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    if r.namespaced and namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{r.plural}"
    if name:
        base += f"/{quote(name)}"
        if sub:
            base += f"/{sub}"
    return base


def _params(kw: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in kw.items():
        if v is None or v == "":
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


class Client:
    def __init__(self, cfg: ClientConfig, *, connections: int = 64):
        self.cfg = cfg
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._ssl = cfg.ssl_context()
        headers = {"User-Agent": cfg.user_agent, "Accept": JSON}
        if cfg.token:
            headers["Authorization"] = f"Bearer {cfg.token}"
        self._headers = headers

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                self.cfg.server, connector=conn, headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = JSON, timeout: float = 60.0) -> Any:
        data = None
        headers = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else orjson.dumps(body)
            headers = {"Content-Type": content_type}
        async with self.session.request(method, path, params=_params(params or {}), data=data,
                                        headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                try:
                    status = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    status = {"kind": "Status", "status": "Failure", "code": resp.status,
                              "message": raw.decode(errors="replace")}
                raise APIError(resp.status, status if isinstance(status, dict) else {})
            return orjson.loads(raw) if raw else None

    # -- verbs ---------------------------------------------------------------

    async def get(self, r: Resource, name: str, namespace: str | None = None, **params: Any) -> dict:
        return await self.request("GET", _path(r, namespace, name), params=params)

    async def list(self, r: Resource, namespace: str | None = None, **params: Any) -> dict:
        return await self.request("GET", _path(r, namespace), params=params)

    async def create(self, r: Resource, obj: dict, namespace: str | None = None, **params: Any) -> dict:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", _path(r, ns), params=params, body=_typed(r, obj))

    async def update(self, r: Resource, obj: dict, subresource: str | None = None, **params: Any) -> dict:
        md = obj["metadata"]
        return await self.request("PUT", _path(r, md.get("namespace"), md["name"], subresource),
                                  params=params, body=_typed(r, obj))

    async def update_status(self, r: Resource, obj: dict) -> dict:
        return await self.update(r, obj, "status")

    async def patch(self, r: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    content_type: str = MERGE, subresource: str | None = None, **params: Any) -> dict:
        return await self.request("PATCH", _path(r, namespace, name, subresource), params=params,
                                  body=patch, content_type=content_type)

    async def delete(self, r: Resource, name: str, namespace: str | None = None, *,
                     uid: str | None = None, resource_version: str | None = None,
                     propagation: str | None = None, grace_period: int | None = None) -> Any:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        pre = {}
        if uid:
            pre["uid"] = uid
        if resource_version:
            pre["resourceVersion"] = resource_version
        if pre:
            body["preconditions"] = pre
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        return await self.request("DELETE", _path(r, namespace, name), body=body)

    async def delete_collection(self, r: Resource, namespace: str | None = None, *,
                                propagation: str | None = None, **params: Any) -> Any:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        return await self.request("DELETE", _path(r, namespace), params=params, body=body)

    async def post_subresource(self, r: Resource, name: str, namespace: str | None, sub: str,
                               body: dict) -> Any:
        return await self.request("POST", _path(r, namespace, name, sub), body=body)

    async def watch(self, r: Resource, namespace: str | None = None, *, resource_version: str = "",
                    timeout_seconds: int | None = None, **params: Any) -> AsyncIterator[dict]:
        """Yields watch events (``{"type": ..., "object": ...}``) until the
        server ends the stream; an ``ERROR`` event is yielded like the rest."""
        q = dict(params, watch=True, allowWatchBookmarks=True, resourceVersion=resource_version,
                 timeoutSeconds=timeout_seconds or random.randint(300, 600))
        async with self.session.get(_path(r, namespace), params=_params(q),
                                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
            if resp.status >= 300:
                raw = await resp.read()
                try:
                    status = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    status = {"message": raw.decode(errors="replace")}
                raise APIError(resp.status, status)
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1:]
                    if line.strip():
                        yield orjson.loads(line)
            if buf.strip():
                yield orjson.loads(buf)


def _typed(r: Resource, obj: dict) -> dict:
    if "kind" not in obj or "apiVersion" not in obj:
        obj = dict(obj, kind=r.kind, apiVersion=r.api_version)
    return obj
