"""The API server process: storage, watch cache, HTTPS, authentication, and
the routes (discovery, health, OpenAPI, resources)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import traceback
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.hdrs import AUTHORIZATION, EXPECT
from aiohttp.http import HttpVersion11

from ..api import fieldselectors, openapi
from ..api.fieldselectors import FieldSelectorError
from ..api.tables import TableOptionsError
from ..api.registry import REGISTRY, Registry
from ..storage import open_store
from . import discovery, errors, join
from .admission import Admission
from .certs import ClusterCerts, write_kubeconfig
from .encoding import dumps
from .handlers import ResourceHandlers
from .proxy import KubeletProxy
from .rest import ObjectStore, WriteOptions
from .watchcache import CacheSet

log = logging.getLogger("k8py.apiserver")

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"}) | join.PUBLIC_PATHS


@dataclass
class Config:
    data_dir: str
    port: int = 6443
    bind_address: str = "0.0.0.0"
    kubeconfig: str = ""
    datastore_endpoint: str = ""
    advertise_address: str = "127.0.0.1"
    compaction_interval: float = 300.0
    token_auth_file: str = ""  # kube-apiserver's --token-auth-file (static bearer tokens)
    default_not_ready_toleration_seconds: int = 300  # DefaultTolerationSeconds admission
    default_unreachable_toleration_seconds: int = 300


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


_users_by_connection: "weakref.WeakKeyDictionary[Any, User | None]" = weakref.WeakKeyDictionary()


def _peer_user(request: web.Request) -> User | None:
    """The user a connection's client certificate names (decoded once per
    connection: decoding the certificate costs more than routing)."""
    transport = request.transport
    if transport is None:
        return None
    try:
        return _users_by_connection[transport]
    except KeyError:
        pass
    except TypeError:  # a transport that cannot be weakly referenced
        return _user_from_cert(transport)
    user = _users_by_connection[transport] = _user_from_cert(transport)
    return user


def _user_from_cert(transport: Any) -> User | None:
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None
    return User(cn, tuple(orgs) + ("system:authenticated",))


class TokenFileError(ValueError):
    """A token file kube-apiserver would refuse."""


def load_token_file(path: str) -> dict[str, User]:
    """kube-apiserver's ``--token-auth-file``: CSV lines ``token,user,uid[,"group1,group2"]``
    (at least three columns; an empty token is skipped; a later duplicate wins)."""
    import csv
    tokens: dict[str, User] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, record in enumerate(csv.reader(f), 1):
            if not record:
                continue  # Go's csv reader skips empty lines
            if len(record) < 3:
                raise TokenFileError(f"token file '{path}' must have at least 3 columns (token, user name, "
                                     f"user uid), found {len(record)}")
            token, name = record[0], record[1]
            if not token:
                log.warning("empty token has been found in token file '%s', record number '%d'", path, n)
                continue
            groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
            tokens[token] = User(name, groups + ("system:authenticated",))
    return tokens


def _bearer_token(request: web.BaseRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as kube's
    bearertoken authenticator reads it (None: no bearer token sent)."""
    auth = request.headers.get(AUTHORIZATION)
    if not auth:
        return None
    parts = auth.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def error_response(err: errors.APIError) -> web.Response:
    return web.Response(body=dumps(err.status()), status=err.code, content_type="application/json",
                        headers=err.headers)


class APIServer:
    def __init__(self, cfg: Config, registry: Registry = REGISTRY):
        self.cfg = cfg
        self.registry = registry
        self.certs = ClusterCerts(cfg.data_dir)
        self.store = open_store(cfg.datastore_endpoint, cfg.data_dir)
        self.caches = CacheSet(self.store)
        for r in registry.resources:
            st = registry.storage_resource(r)
            self.caches.add(st.key_prefix, _fields_fn(st))
        self.admission = Admission(registry, self.caches,
                                   not_ready_toleration_seconds=cfg.default_not_ready_toleration_seconds,
                                   unreachable_toleration_seconds=cfg.default_unreachable_toleration_seconds)
        self.ostore = ObjectStore(self.store, registry, self.caches, self.admission)
        self.tokens: dict[str, User] = load_token_file(cfg.token_auth_file) if cfg.token_auth_file else {}
        self.join_token: join.JoinToken | None = None  # made at start (join.py): agents' bootstrap secret
        self.trimmer = MemoryTrimmer()
        self.handlers = ResourceHandlers(registry, self.ostore, self.trimmer.soon)
        self.handlers.proxy = KubeletProxy(registry, self.ostore, self.certs)
        self.runner: web.AppRunner | None = None
        self._bg: list[asyncio.Task[Any]] = []

    # ---- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        Path(self.cfg.data_dir).mkdir(parents=True, exist_ok=True)
        self.certs.ensure(extra_ips=[a for a in (self.cfg.advertise_address, self.cfg.bind_address)
                                     if a not in ("", "0.0.0.0", "::")])
        self.join_token = join.ensure_token(self.cfg.data_dir, self.certs.ca_crt.read_bytes())
        await self.store.start()
        await self.caches.start()
        await self._bootstrap()
        self._bg.append(asyncio.create_task(asyncio.to_thread(openapi.warm), name="openapi-warm"))
        from ..storage import run_compactor
        self._bg.append(asyncio.create_task(run_compactor(self.store, self.cfg.compaction_interval), name="compactor"))
        # aiohttp's low-level server: every request goes to _serve, without
        # the Application's router and middleware machinery (the hot path).
        server = web.Server(self._serve, request_factory=_make_request, access_log=None)
        self.runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.cfg.bind_address, self.cfg.port, ssl_context=self._ssl(),
                           backlog=1024, reuse_address=True)
        await site.start()
        if self.cfg.kubeconfig:
            write_kubeconfig(self.cfg.kubeconfig, self.certs.kubeconfig(self.url))
        log.info("API server listening on %s", self.url)
        log.info("join token (k8py agent --token, also in %s): %s", join.token_path(self.cfg.data_dir),
                 self.join_token)

    @property
    def url(self) -> str:
        """Where this machine's clients (the admin kubeconfig) reach the server: loopback, unless it
        listens on one address only."""
        host = self.cfg.bind_address
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"https://[{host}]:{self.cfg.port}" if ":" in host else f"https://{host}:{self.cfg.port}"

    async def stop(self) -> None:
        for t in self._bg:
            t.cancel()
        for c in self.caches.caches.values():  # end open watches so connections close
            for w in list(c.watchers):
                w.close()
        if self.runner:
            await self.runner.cleanup()
        await self.handlers.proxy.close()
        await self.caches.close()
        await self.store.close()

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.certs.serving_crt), str(self.certs.serving_key))
        ctx.load_verify_locations(str(self.certs.ca_crt))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def _bootstrap(self) -> None:
        opts = WriteOptions(field_manager="k8py-apiserver")
        ns_r = self.registry.lookup("", "v1", "namespaces")
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await self._ensure(ns_r, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                               opts)
        pc_r = self.registry.lookup("scheduling.k8s.io", "v1", "priorityclasses")
        for name, value in (("system-cluster-critical", 2000000000), ("system-node-critical", 2000001000)):
            await self._ensure(pc_r, None, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                            "metadata": {"name": name}, "value": value,
                                            "description": "Used for system critical pods that must run in the "
                                                           "cluster."}, opts)
        svc_r = self.registry.lookup("", "v1", "services")
        await self._ensure(svc_r, "default", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                          "targetPort": self.cfg.port}]}}, opts)
        await self._reconcile_own_endpoints(opts)

    async def _reconcile_own_endpoints(self, opts: WriteOptions) -> None:
        """The ``kubernetes`` Service has no selector: the API server itself
        keeps its Endpoints and EndpointSlice pointing at this server, as
        kube-apiserver's endpoint reconciler does."""
        addr, port = self.cfg.advertise_address, self.cfg.port
        if ipaddress.ip_address(addr).is_loopback:
            # kube refuses loopback endpoints, and pods could not reach them
            log.info("advertise address %s is loopback: the kubernetes Service gets no endpoints", addr)
            return
        ep_r = self.registry.lookup("", "v1", "endpoints")
        subsets = [{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        await self._put(ep_r, "default", {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": subsets}, "subsets", opts)
        es_r = self.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
        await self._put(es_r, "default", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv6" if ":" in addr else "IPv4",
            "endpoints": [{"addresses": [addr], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}, ("endpoints", "ports"), opts)

    async def _put(self, r: Any, ns: str, obj: dict[str, Any], fields: str | tuple[str, ...],
                   opts: WriteOptions) -> None:
        """Creates ``obj``, or brings ``fields`` of the stored one up to date."""
        fields = (fields,) if isinstance(fields, str) else fields
        name = obj["metadata"]["name"]
        if await self.store.get(r.key(ns, name)) is None:
            await self._ensure(r, ns, obj, opts)
            return

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            for f in fields:
                old[f] = obj[f]
            return old
        await self.ostore.guaranteed_update(r, ns, name, mutate, opts)

    async def _ensure(self, r: Any, ns: str | None, obj: dict[str, Any], opts: WriteOptions) -> None:
        if await self.store.get(r.key(ns, obj["metadata"]["name"])) is None:
            try:
                await self.ostore.create(r, ns, obj, opts)
            except errors.APIError as e:
                if e.code != 409:
                    raise

    # ---- HTTP ------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Every request: authenticate, route, and turn failures into Status
        responses (one handler, no middleware chain: it is the hot path)."""
        try:
            if EXPECT in request.headers:
                await _expect(request)
            if request.path not in PUBLIC_PATHS:
                user = _peer_user(request) or self._token_user(request)
                if user is None:
                    raise errors.unauthorized()
                if not join.allowed(user.groups, request.path):
                    raise errors.APIError(403, "Forbidden", f'forbidden: User "{user.name}" cannot '
                                                            f'{request.method.lower()} path "{request.path}"')
                request["user"] = user
            return await self._route(request)
        except errors.APIError as e:
            return error_response(e)
        except (TableOptionsError, FieldSelectorError) as e:
            return error_response(errors.bad_request(str(e)))
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001
            log.error("internal error serving %s %s: %s", request.method, request.path, traceback.format_exc())
            return error_response(errors.internal(str(e)))

    def _token_user(self, request: web.BaseRequest) -> User | None:
        """The user a static bearer token names (tried after the client
        certificate, as kube-apiserver's authenticators are); None for no
        token or an unknown one, which is a 401."""
        token = _bearer_token(request)
        if token is None:
            return None
        jt = self.join_token
        if jt is not None and join.secret_matches(jt.secret, token):
            return User(join.BOOTSTRAP_USER, (join.BOOTSTRAP_GROUP, "system:authenticated"))
        return self.tokens.get(token)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _json({"paths": sorted(["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz",
                                           "/version", "/openapi/v3"] +
                                          [f"/apis/{g}/{v}" for g, vs in self.registry.groups() if g for v in vs])})
        head = parts[0]
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if head == "version":
            return _json(discovery.version_info())
        if head == "api":
            if len(parts) == 1:
                return _json(discovery.api_versions(f"{self.cfg.advertise_address}:{self.cfg.port}"))
            if parts[1] != "v1":
                raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
            if len(parts) == 2:
                return _json(discovery.resource_list(self.registry, "", "v1"))
            return await self.handlers.handle(request, "", "v1", parts[2:])
        if head == "apis":
            if len(parts) == 1:
                return _json(discovery.api_group_list(self.registry))
            if len(parts) == 2:
                doc = discovery.api_group_doc(self.registry, parts[1])
                if doc is None:
                    raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
                return _json(doc)
            if len(parts) == 3:
                doc = discovery.resource_list(self.registry, parts[1], parts[2])
                if doc is None:
                    raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
                return _json(doc)
            return await self.handlers.handle(request, parts[1], parts[2], parts[3:])
        if head == "openapi":
            return self._openapi(request, parts)
        if path in join.BOOTSTRAP_PATHS:
            return await self._join(request)
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        if len(parts) >= 2 and parts[1] == "v3":
            status, headers, body = openapi.serve_v3("/".join(parts[2:]), request.query.get("hash"),
                                                     request.headers.get("If-None-Match"))
        elif len(parts) == 2 and parts[1] == "v2":
            status, headers, body = openapi.serve_v2(request.headers.get("Accept"),
                                                     request.headers.get("If-None-Match"))
        else:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return web.Response(status=status, headers=headers, body=body)

    async def _join(self, request: web.Request) -> web.Response:
        """The join endpoints (join.py): the CA bundle, and a node's or the proxy's client certificate."""
        if request.path == join.CACERTS_PATH:
            if request.method not in ("GET", "HEAD"):
                raise errors.method_not_allowed()
            return web.Response(body=self.certs.ca_crt.read_bytes(), content_type="application/x-pem-file")
        if request.method != "POST":
            raise errors.method_not_allowed()
        body = await request.content.read(join.MAX_CSR_BYTES + 1)
        try:
            pem = await asyncio.to_thread(join.sign_csr, self.certs.ca_crt, self.certs.ca_key, body)
        except join.CSRError as e:
            raise errors.bad_request(str(e)) from None
        log.info("signed a client certificate for %s (%s)", join.check_csr(body)[1], request["user"].name)
        return web.Response(body=pem, content_type="application/x-pem-file")


class MemoryTrimmer:
    """Gives freed heap back to the system after large requests (a 10,000-object
    list decodes and frees hundreds of MB; glibc would otherwise keep it)."""

    def __init__(self) -> None:
        self._pending: asyncio.TimerHandle | None = None
        try:
            import ctypes
            self._trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            self._trim = None

    def soon(self) -> None:
        if self._trim is None or self._pending is not None:
            return
        self._pending = asyncio.get_running_loop().call_later(1.0, self._run)

    def _run(self) -> None:
        self._pending = None
        self._trim(0)


MAX_REQUEST_BODY = 3 * 1024 * 1024 + 1024  # bodies over 3 MiB get kube's 413 (handlers check)


def _make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
    return web.BaseRequest(message, payload, protocol, writer, task, asyncio.get_running_loop(),
                           client_max_size=MAX_REQUEST_BODY)


async def _expect(request: web.BaseRequest) -> None:
    """``Expect: 100-continue``, answered as aiohttp's Application does."""
    if request.version == HttpVersion11:
        expect = request.headers.get(EXPECT, "")
        if expect.lower() != "100-continue":
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")


def _fields_fn(r: Any):
    def fields(obj: dict[str, Any]) -> dict[str, str]:
        return fieldselectors.field_set(r, obj)
    return fields


async def run(cfg: Config) -> None:
    srv = APIServer(cfg)
    await srv.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await srv.stop()
