"""``k8py dns``: the cluster DNS server, answering as CoreDNS's kubernetes
plugin does (see :mod:`k8py.dns.records`) and forwarding every other name
to the host's resolvers with a cache (:mod:`k8py.dns.forward`).

k3s runs CoreDNS as a Deployment behind the Service kube-system/kube-dns
(10.43.0.10).  Here the server is a host process; ``--create-service``
makes the same Service (ports 53/UDP ``dns`` and 53/TCP ``dns-tcp``, label
``k8s-app=kube-dns``, no selector) and points its Endpoints and
EndpointSlice at ``--advertise-address`` (IP[:PORT], the port defaulting
to the listening one), so that kube-proxy sends 10.43.0.10:53 from pods to
this process.  The objects are re-made if deleted or changed, and left in
place on exit (a restarting DNS server keeps its address).  The API
refuses loopback addresses in endpoints, so the advertised address is the
node's own (one that pods can reach), not 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, Callable

from ..client.app import make_client
from ..client.rest import APIError, Client, is_already_exists, is_not_found, resource
from .forward import Forwarder, host_upstreams, parse_upstream
from .records import ClusterView, Zone
from .server import DNSServer, Resolver

log = logging.getLogger(__name__)

SERVICE_NAME = "kube-dns"
SERVICE_NAMESPACE = "kube-system"
SLICE_NAME = "kube-dns-k8py"
MANAGED_BY = "k8py-dns"


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="0.0.0.0:53", help="HOST:PORT for UDP and TCP (default 0.0.0.0:53)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--upstream", action="append", default=[],
                   help="IP[:PORT] to forward other names to (repeatable or comma-separated); "
                        "default: the nameservers of --resolv-conf")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf",
                   help="host resolvers; systemd-resolved's stub is replaced by /run/systemd/resolve/resolv.conf")
    p.add_argument("--ttl", type=int, default=5, help="TTL of cluster records and the SOA minimum (CoreDNS: 5)")
    p.add_argument("--cache-ttl", type=int, default=30, help="longest time a forwarded answer is cached "
                                                             "(k3s' Corefile: cache 30)")
    p.add_argument("--pods", choices=("insecure", "verified", "disabled"), default="insecure",
                   help="<a-b-c-d>.<ns>.pod.<zone> records, as CoreDNS' 'pods' option (k3s: insecure)")
    p.add_argument("--create-service", action="store_true",
                   help="create and keep the Service kube-system/kube-dns and its endpoints pointing here")
    p.add_argument("--service-ip", default="10.43.0.10", help="ClusterIP of kube-dns (with --create-service)")
    p.add_argument("--advertise-address", default="",
                   help="IP[:PORT] the kube-dns endpoints point at (default: the --listen address)")
    p.add_argument("--health-port", type=int, default=8080,
                   help="HTTP port for GET /health and /ready (CoreDNS: 8080 and 8181); 0 disables")


def _listen(spec: str) -> tuple[str, int]:
    host, port = parse_upstream(spec, 53)
    return host or "0.0.0.0", port


async def main(args: argparse.Namespace) -> int:
    host, port = _listen(args.listen)
    ups: list[tuple[str, int]] = []
    for spec in args.upstream:
        ups.extend(parse_upstream(s) for s in spec.split(",") if s.strip())
    if not args.upstream:
        ups = [u for u in host_upstreams(args.resolv_conf) if u != (host, port)]
        if not ups:
            log.warning("no upstream resolvers in %s: names outside %s get SERVFAIL",
                        args.resolv_conf, args.cluster_domain)
    client = make_client(args, "k8py-dns", connections=8)
    zone = Zone(args.cluster_domain, ttl=args.ttl, pods=args.pods)
    forwarder = Forwarder(ups, max_ttl=args.cache_ttl)
    keeper: ServiceKeeper | None = None
    if args.create_service:
        adv = args.advertise_address or (host if host not in ("0.0.0.0", "::") else "")
        if not adv:
            raise SystemExit("--create-service needs --advertise-address when listening on all addresses")
        aip, aport = parse_upstream(adv, port)
        keeper = ServiceKeeper(client, args.service_ip, aip, aport)
    view = ClusterView(client, zone, on_kube_dns=keeper.poke if keeper else None)
    view.start()
    try:
        # CoreDNS waits up to 5 s for its first sync before serving
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in view.informers)), 5)
    except asyncio.TimeoutError:
        log.warning("API not synced after 5 s; serving what is known")
    server = DNSServer(Resolver(zone, forwarder))
    await server.start(host, port)
    log.info("cluster DNS for %s on %s:%d (udp, tcp); upstreams %s", zone.domain, host, server.port,
             ", ".join(f"{h}:{p}" for h, p in ups) or "none")
    health = None
    if args.health_port:
        health = await _health(host if host not in ("0.0.0.0", "::") else "0.0.0.0", args.health_port,
                               lambda: view.synced and (keeper is None or keeper.ensured))
    tasks = [asyncio.create_task(keeper.run(), name="kube-dns service")] if keeper else []
    try:
        await asyncio.Event().wait()
    finally:
        for t in tasks:
            t.cancel()
        await server.close()
        forwarder.close()
        if health is not None:
            await health.cleanup()
        await view.stop()
        await client.close()
    return 0


async def _health(host: str, port: int, ready_fn: Callable[[], bool]) -> Any:
    """``/health`` (the process answers) and ``/ready`` (the informers have
    synced and, with --create-service, kube-dns has been made once), as
    CoreDNS's health and ready plugins."""
    from aiohttp import web

    async def health(_req: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(_req: web.Request) -> web.Response:
        return web.Response(text="OK") if ready_fn() else web.Response(status=503, text="not synced")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class ServiceKeeper:
    """Creates and keeps kube-system/kube-dns, its Endpoints and an
    EndpointSlice (managed by ``k8py-dns``) pointing at this server."""

    RESYNC = 30.0

    def __init__(self, client: Client, service_ip: str, ip: str, port: int):
        self.client = client
        self.service_ip = service_ip
        self.ip = ip
        self.port = port
        self._poke = asyncio.Event()
        self.ensured = False  # one full pass done

    def poke(self) -> None:
        self._poke.set()

    def service(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE, "labels": {
                    "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                    "kubernetes.io/name": "CoreDNS"}},
                "spec": {"type": "ClusterIP", "clusterIP": self.service_ip, "clusterIPs": [self.service_ip],
                         "ports": self._ports(53, target=True)}}

    def _ports(self, port: int, target: bool = False) -> list[dict[str, Any]]:
        out = []
        for name, proto in (("dns", "UDP"), ("dns-tcp", "TCP")):
            p: dict[str, Any] = {"name": name, "port": port, "protocol": proto}
            if target:
                p["targetPort"] = self.port
            out.append(p)
        return out

    def endpoints(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE, "labels": {"k8s-app": "kube-dns"}},
                "subsets": [{"addresses": [{"ip": self.ip}], "ports": self._ports(self.port)}]}

    def slice(self) -> dict[str, Any]:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": SLICE_NAME, "namespace": SERVICE_NAMESPACE, "labels": {
                    "k8s-app": "kube-dns", "kubernetes.io/service-name": SERVICE_NAME,
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
                "addressType": "IPv6" if ":" in self.ip else "IPv4",
                "endpoints": [{"addresses": [self.ip],
                               "conditions": {"ready": True, "serving": True, "terminating": False}}],
                "ports": self._ports(self.port)}

    async def run(self) -> None:
        while True:
            try:
                await self.ensure()
                self.ensured = True
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the API may be away; try again
                log.warning("keeping %s/%s: %s", SERVICE_NAMESPACE, SERVICE_NAME, e)
            self._poke.clear()
            try:
                await asyncio.wait_for(self._poke.wait(), self.RESYNC)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.2)  # a burst of events is one pass

    async def ensure(self) -> None:
        await self._upsert(resource("services"), self.service(), ("spec", "metadata.labels"))
        await self._upsert(resource("endpoints"), self.endpoints(), ("subsets", "metadata.labels"))
        await self._upsert(resource("endpointslices.discovery.k8s.io"), self.slice(),
                           ("endpoints", "ports", "addressType", "metadata.labels"))

    async def _upsert(self, r: Any, want: dict[str, Any], fields: tuple[str, ...]) -> None:
        md = want["metadata"]
        try:
            cur = await self.client.get(r, md["name"], md["namespace"])
        except APIError as e:
            if not is_not_found(e):
                raise
            try:
                await self.client.create(r, want)
                log.info("created %s %s/%s", want["kind"], md["namespace"], md["name"])
            except APIError as e2:
                if not is_already_exists(e2):
                    raise
            return
        changed = False
        for f in fields:
            path = f.split(".")
            w, c = _dig(want, path), _dig(cur, path)
            if f == "spec":
                # compare what we own; the server fills in defaults (sessionAffinity, ...)
                cs = dict(c or {})
                if cs.get("clusterIP") not in (None, "", self.service_ip):
                    log.warning("kube-dns has ClusterIP %s, not %s (ClusterIP cannot change)",
                                cs.get("clusterIP"), self.service_ip)
                if [(p.get("name"), p.get("port"), p.get("protocol"), p.get("targetPort"))
                        for p in cs.get("ports") or []] != \
                        [(p["name"], p["port"], p["protocol"], p["targetPort"]) for p in w["ports"]]:
                    cur.setdefault("spec", {})["ports"] = w["ports"]
                    changed = True
                continue
            if f == "metadata.labels":
                merged = dict(c or {})
                merged.update(w)
                if merged != (c or {}):
                    cur["metadata"]["labels"] = merged
                    changed = True
                continue
            if not _same(w, c):
                cur[path[0]] = w
                changed = True
        if changed:
            await self.client.update(r, cur)
            log.info("updated %s %s/%s", want["kind"], md["namespace"], md["name"])


def _dig(o: Any, path: list[str]) -> Any:
    for p in path:
        if not isinstance(o, dict):
            return None
        o = o.get(p)
    return o


def _same(want: Any, cur: Any) -> bool:
    """``cur`` has at least what ``want`` says (servers add defaults)."""
    if isinstance(want, dict):
        return isinstance(cur, dict) and all(_same(v, cur.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(cur, list) and len(want) == len(cur) and all(_same(a, b) for a, b in zip(want, cur))
    return bool(want == cur)
