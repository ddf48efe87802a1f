"""The routing table: what the proxy consults for every request.

A :class:`RoutingTable` is built whole from the Ingresses this controller
serves plus the Services, EndpointSlices and Secrets they name, and is
never changed afterwards: the controller swaps in a new one (one attribute
assignment), so a request in flight keeps the table, and the backend, it
started with, and a change never needs a lock or drops a connection.

Matching follows the Ingress spec (and ingress-nginx where the spec is
silent):

- hosts: an exact host first, then a wildcard ``*.example.com`` (which
  covers exactly one more label: ``a.example.com``, not ``example.com`` nor
  ``a.b.example.com``), then the rules without a host;
- within the chosen host, the longest path wins, ``Exact`` before
  ``Prefix`` at the same length; ``Prefix`` matches element by element
  (``/foo`` matches ``/foo`` and ``/foo/bar`` but not ``/foobar``; a
  trailing slash in the rule is ignored); ``ImplementationSpecific`` is
  treated as ``Prefix``;
- nothing matches: the (oldest) ``spec.defaultBackend``, else 404.

Several Ingresses naming the same host are merged; on a conflict (the same
host, path and type) the oldest Ingress wins, as ingress-nginx does.

Backends are pod addresses (EndpointSlice endpoints that are ready), not
the Service's ClusterIP: the proxy spreads requests itself and retries
another pod when one refuses the connection, as ingress-nginx does."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..netutil import is_ip

log = logging.getLogger(__name__)

Obj = dict[str, Any]

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# how many different endpoints one request may try when connecting fails
# (ingress-nginx's proxy-next-upstream-tries)
MAX_TRIES = 3


@dataclass(eq=False)
class Backend:
    """One Service port's ready endpoints.  Shared by every rule that names
    the same ``namespace/service:port``, so they share one round robin."""

    name: str
    endpoints: list[tuple[str, int]]
    _next: int = 0

    def attempts(self) -> list[tuple[str, int]]:
        """The endpoints to try for one request, in order: round robin, then
        the following ones should connecting fail."""
        n = len(self.endpoints)
        if n == 0:
            return []
        i = self._next % n
        self._next = i + 1
        return [self.endpoints[(i + k) % n] for k in range(min(n, MAX_TRIES))]


@dataclass
class PathRule:
    path: str  # as written for Exact; without its trailing slash for Prefix ("" is the root)
    exact: bool
    backend: Backend

    def matches(self, path: str) -> bool:
        p = self.path
        if self.exact:
            return path == p
        return not p or path == p or (path.startswith(p) and path[len(p)] == "/")

    def sort_key(self) -> tuple[int, int]:
        return (-len(self.path), 0 if self.exact else 1)


@dataclass
class HostRules:
    rules: list[PathRule] = field(default_factory=list)

    def add(self, rule: PathRule) -> bool:
        for r in self.rules:
            if r.path == rule.path and r.exact == rule.exact:
                return False  # an older Ingress already has this path
        self.rules.append(rule)
        return True

    def finish(self) -> None:
        self.rules.sort(key=PathRule.sort_key)

    def match(self, path: str) -> Backend | None:
        for r in self.rules:
            if r.matches(path):
                return r.backend
        return None


def normalize_path(path: str | None, path_type: str | None) -> tuple[str, bool]:
    """(path, exact) of an HTTPIngressPath: Prefix paths lose their trailing
    slash so that the element-wise match is a plain string comparison."""
    path = path or "/"
    if path_type == "Exact":
        return path, True
    return path.rstrip("/"), False


def split_host(host: str) -> str:
    """The host of a Host header, lowercased, without its port."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    h, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return h
    return host


@dataclass
class RoutingTable:
    exact: dict[str, HostRules] = field(default_factory=dict)
    wildcard: dict[str, HostRules] = field(default_factory=dict)  # "example.com" for "*.example.com"
    any_host: HostRules | None = None
    default: Backend | None = None
    tls_exact: dict[str, ssl.SSLContext] = field(default_factory=dict)
    tls_wildcard: dict[str, ssl.SSLContext] = field(default_factory=dict)
    tls_default: ssl.SSLContext | None = None
    # (kind, namespace, name) of every object the table was built from, so that
    # the controller rebuilds only when one of them changes
    refs: set[tuple[str, str, str]] = field(default_factory=set)

    def host_rules(self, host: str) -> HostRules | None:
        hr = _by_name(self.exact, self.wildcard, host)
        return self.any_host if hr is None else hr

    def route(self, host: str, path: str) -> Backend | None:
        """The backend for a request (host already lowercased without port;
        path without the query), or None for 404."""
        hr = self.host_rules(host)
        if hr is not None:
            b = hr.match(path)
            if b is not None:
                return b
        return self.default

    def ssl_context(self, server_name: str | None) -> ssl.SSLContext | None:
        """The certificate for a TLS ClientHello's server name, or None for
        the default certificate."""
        ctx = _by_name(self.tls_exact, self.tls_wildcard, server_name.lower()) if server_name else None
        return self.tls_default if ctx is None else ctx


# -- which Ingresses are ours --------------------------------------------------

def our_classes(classes: Iterable[Obj], controller: str) -> tuple[set[str], bool]:
    """The names of the IngressClasses whose controller is ours, and whether
    one of them is the cluster's default class."""
    names: set[str] = set()
    default = False
    for c in classes:
        if (c.get("spec") or {}).get("controller") != controller:
            continue
        md = c["metadata"]
        names.add(md["name"])
        if (md.get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            default = True
    return names, default


def is_ours(ing: Obj, classes: set[str], default: bool) -> bool:
    """An Ingress is ours when its ingressClassName (or the deprecated
    ``kubernetes.io/ingress.class`` annotation) names one of our classes, or
    when it names none and one of our classes is the default."""
    cls = (ing.get("spec") or {}).get("ingressClassName")
    if cls:
        return cls in classes
    ann = (ing["metadata"].get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION)
    if ann:
        return ann in classes
    return default


# -- TLS ------------------------------------------------------------------------

def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server SSLContext from PEM bytes.  The ssl module loads keys from
    files only, so they pass through a private temporary file that is
    removed at once."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_alpn_protocols(["http/1.1"])
    d = tempfile.mkdtemp(prefix="k8py-ingress-")
    path = os.path.join(d, "tls.pem")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        ctx.load_cert_chain(path)
    finally:
        try:
            os.unlink(path)
        finally:
            os.rmdir(d)
    return ctx


def self_signed_pem(common_name: str = "Kubernetes Ingress Controller Fake Certificate",
                    hosts: Iterable[str] = ("ingress.local",)) -> tuple[bytes, bytes]:
    """A throwaway certificate and key, for TLS requests that match no Secret
    (ingress-nginx serves one with the same name)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Co"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class TLSCache:
    """SSLContexts by the digest of their certificate and key, kept across
    table builds: a context is built once per Secret content, not on every
    change of an unrelated Endpoint."""

    def __init__(self) -> None:
        self._ctx: dict[bytes, ssl.SSLContext] = {}
        self._used: set[bytes] = set()

    def context(self, secret: Obj) -> ssl.SSLContext | None:
        data = secret.get("data") or {}
        try:
            cert = base64.b64decode(data.get("tls.crt") or "")
            key = base64.b64decode(data.get("tls.key") or "")
        except ValueError:
            return None
        if not cert or not key:
            return None
        digest = hashlib.sha256(cert + b"\0" + key).digest()
        self._used.add(digest)
        ctx = self._ctx.get(digest)
        if ctx is None:
            try:
                ctx = server_context(cert, key)
            except (ssl.SSLError, OSError, ValueError) as e:
                md = secret["metadata"]
                log.warning("secret %s/%s: unusable certificate: %s", md.get("namespace"), md["name"], e)
                return None
            self._ctx[digest] = ctx
        return ctx

    def prune(self) -> None:
        """Forget the contexts the last build did not use."""
        for d in [d for d in self._ctx if d not in self._used]:
            del self._ctx[d]
        self._used = set()


def _by_name(exact: dict[str, Any], wildcard: dict[str, Any], name: str) -> Any:
    """exact[name], else wildcard[parent] for "*.parent" (one label deep, as Ingress wildcards)."""
    v = exact.get(name)
    if v is None and wildcard:
        _, dot, parent = name.partition(".")
        if dot:
            v = wildcard.get(parent)
    return v


# -- building -------------------------------------------------------------------


class TableBuilder:
    """Builds one RoutingTable.  ``service(ns, name)``, ``slices(ns, service)``
    and ``secret(ns, name)`` read the controller's caches."""

    def __init__(self, service: Callable[[str, str], Obj | None],
                 slices: Callable[[str, str], list[Obj]],
                 secret: Callable[[str, str], Obj | None], tls: TLSCache | None = None):
        self.service = service
        self.slices = slices
        self.secret = secret
        self.tls = tls or TLSCache()
        self.table = RoutingTable()
        self._backends: dict[tuple[str, str, str], Backend] = {}

    def backend(self, ns: str, b: Obj) -> Backend:
        svc = b.get("service") or {}
        name = svc.get("name") or ""
        port = svc.get("port") or {}
        sp = self._service_port(ns, name, port)
        # one Backend per Service port however it is named (number or name), so all share one round robin
        key = (ns, name, str(sp.get("port")) if sp else str(port.get("number") or port.get("name") or ""))
        got = self._backends.get(key)
        if got is None:
            got = Backend(f"{ns}/{name}:{key[2]}", self._endpoints(ns, name, port, sp))
            self._backends[key] = got
        return got

    def _service_port(self, ns: str, name: str, port: Obj) -> Obj | None:
        if not name:
            return None  # a resource backend: nothing we can proxy to
        self.table.refs.add(("Service", ns, name))
        self.table.refs.add(("EndpointSlice", ns, name))
        svc = self.service(ns, name)
        for p in ((svc or {}).get("spec") or {}).get("ports") or ():
            if (port.get("number") and p.get("port") == port["number"]) or \
                    (port.get("name") and p.get("name") == port["name"]):
                return p
        return None

    def _endpoints(self, ns: str, name: str, port: Obj, sp: Obj | None) -> list[tuple[str, int]]:
        svc = self.service(ns, name) if name else None
        if svc is None:
            return []
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            ext = spec.get("externalName") or ""
            num = port.get("number") or (sp or {}).get("port")
            return [(ext, int(num))] if ext and num else []
        if sp is None:
            return []
        pname = sp.get("name") or ""
        out: list[tuple[str, int]] = []
        seen: set[tuple[str, int]] = set()
        for sl in self.slices(ns, name):
            if sl.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
                continue
            target = None
            for p in sl.get("ports") or ():
                if (p.get("name") or "") == pname and p.get("port"):
                    target = int(p["port"])
                    break
            if target is None:
                continue
            for ep in sl.get("endpoints") or ():
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                addrs = ep.get("addresses") or ()
                if addrs:
                    t = (addrs[0], target)
                    if t not in seen:
                        seen.add(t)
                        out.append(t)
        out.sort()
        return out

    def add_ingress(self, ing: Obj) -> None:
        md = ing["metadata"]
        ns = md.get("namespace") or "default"
        self.table.refs.add(("Ingress", ns, md["name"]))
        spec = ing.get("spec") or {}
        t = self.table
        if spec.get("defaultBackend") and t.default is None:
            t.default = self.backend(ns, spec["defaultBackend"])
        for rule in spec.get("rules") or ():
            host = (rule.get("host") or "").lower()
            if not host:
                hr = t.any_host = t.any_host or HostRules()
            elif host.startswith("*."):
                hr = t.wildcard.setdefault(host[2:], HostRules())
            else:
                hr = t.exact.setdefault(host, HostRules())
            for p in (rule.get("http") or {}).get("paths") or ():
                path, exact = normalize_path(p.get("path"), p.get("pathType"))
                hr.add(PathRule(path, exact, self.backend(ns, p.get("backend") or {})))
        for entry in spec.get("tls") or ():
            secret_name = entry.get("secretName") or ""
            if not secret_name:
                continue  # hosts listed without a Secret get the default certificate
            self.table.refs.add(("Secret", ns, secret_name))
            sec = self.secret(ns, secret_name)
            ctx = self.tls.context(sec) if sec is not None else None
            if ctx is None:
                continue
            hosts = entry.get("hosts") or ()
            if not hosts and t.tls_default is None:
                t.tls_default = ctx
            for h in hosts:
                h = h.lower()
                if h.startswith("*."):
                    t.tls_wildcard.setdefault(h[2:], ctx)
                else:
                    t.tls_exact.setdefault(h, ctx)

    def build(self, ingresses: Iterable[Obj]) -> RoutingTable:
        def age(i: Obj) -> tuple[str, str, str]:
            md = i["metadata"]
            return (md.get("creationTimestamp") or "", md.get("namespace") or "", md["name"])
        for ing in sorted(ingresses, key=age):
            self.add_ingress(ing)
        t = self.table
        for hr in (*t.exact.values(), *t.wildcard.values(), *((t.any_host,) if t.any_host else ())):
            hr.finish()
        self.tls.prune()
        return t


def load_balancer_status(addresses: Iterable[str]) -> list[Obj]:
    """status.loadBalancer.ingress entries for the published addresses."""
    return [{"ip": a} if is_ip(a) else {"hostname": a} for a in addresses]
