"""Keeps the proxy's routing table and the Ingresses' status in step with
the API.

Informers cache Ingresses, IngressClasses, Services, EndpointSlices and
TLS Secrets.  Any change that could matter (an Ingress or IngressClass, or
a Service, EndpointSlice or Secret that the current table was built from)
marks the table dirty; one task rebuilds it whole after a short pause that
gathers bursts (a rollout changes many slices at once) and swaps it into
the proxy.  Rebuilding is cheap next to a request path that never locks.

status.loadBalancer.ingress of every Ingress we serve is set to the
published addresses, written only when it differs (ingress-nginx's status
sync).  A controller runs on every node, and each answers on its node's
address, so without ``--publish-address`` the published addresses are
those of every Ready node (ExternalIP, or InternalIP when it has none),
sorted, as ServiceLB fills in a LoadBalancer Service: all controllers then
compute the same list from the same Nodes, instead of each writing its own
node's address over the others' (which made the status flap)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any, Callable

from ..client.informer import InformerFactory
from ..client.rest import APIError, Client, is_already_exists, resource
from .proxy import IngressProxy
from .rules import (DEFAULT_CLASS_ANNOTATION, SERVICE_NAME_LABEL, TableBuilder, TLSCache, is_ours,
                    load_balancer_status, our_classes)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

INGRESSES = resource("ingresses.networking.k8s.io")
INGRESS_CLASSES = resource("ingressclasses.networking.k8s.io")
NODES = resource("nodes")


def _slice_service(o: Obj) -> list[str]:
    svc = (o["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{o['metadata'].get('namespace')}/{svc}"] if svc else []


def _trim_slice(o: Obj) -> Obj:
    return {"metadata": {k: o["metadata"].get(k) for k in ("name", "namespace", "labels", "resourceVersion")},
            "addressType": o.get("addressType"), "ports": o.get("ports"),
            "endpoints": [{"addresses": e.get("addresses"), "conditions": e.get("conditions")}
                          for e in o.get("endpoints") or ()]}


def node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def ready_node_addresses(nodes: list[Obj]) -> list[str]:
    """Every Ready node's ExternalIPs, or its InternalIPs when it has none; IPv4 first, sorted."""
    ips: set[str] = set()
    for n in nodes:
        if not node_ready(n):
            continue
        addrs = (n.get("status") or {}).get("addresses") or ()
        ext = [a["address"] for a in addrs if a.get("type") == "ExternalIP" and a.get("address")]
        ips.update(ext or [a["address"] for a in addrs if a.get("type") == "InternalIP" and a.get("address")])
    return sorted(ips, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


def _trim_node(o: Obj) -> Obj:
    st = o.get("status") or {}
    return {"metadata": {k: o["metadata"].get(k) for k in ("name", "resourceVersion")},
            "status": {"addresses": st.get("addresses"),
                       "conditions": [c for c in st.get("conditions") or () if c.get("type") == "Ready"]}}


def _tls_only(o: Obj) -> Obj | None:
    """Only Secrets that hold a certificate and key are cached."""
    data = o.get("data") or {}
    if "tls.crt" not in data or "tls.key" not in data:
        return None
    o["metadata"].pop("managedFields", None)
    return o


class IngressController:
    def __init__(self, client: Client, proxy: IngressProxy, *, controller_class: str = "k8py.io/ingress",
                 class_name: str = "k8py", create_class: bool = True, publish: list[str] | None = None,
                 node_name: str = "", debounce: float = 0.05):
        self.client = client
        self.proxy = proxy
        self.controller_class = controller_class
        self.class_name = class_name
        self.create_class = create_class
        self.publish = list(publish or [])
        self.publish_nodes = not self.publish  # follow the Ready nodes' addresses
        self.node_name = node_name or socket.gethostname().lower()
        self.debounce = debounce
        self.factory = InformerFactory(client)
        self.tls = TLSCache()
        self._dirty = asyncio.Event()
        self._refs: set[tuple[str, str, str]] = set()
        self._ours: list[Obj] = []
        self._status_written: dict[str, list[Obj]] = {}
        self.synced = asyncio.Event()
        self._status_event = asyncio.Event()

    def _watch(self, kind: str, inf: Any, always: bool = False) -> None:
        def changed(o: Obj) -> None:
            if always:
                self._dirty.set()
                return
            md = o["metadata"]
            name = md["name"] if kind != "EndpointSlice" else (md.get("labels") or {}).get(SERVICE_NAME_LABEL, "")
            if (kind, md.get("namespace") or "", name) in self._refs:
                self._dirty.set()
        inf.add_handler(on_add=changed, on_update=lambda _old, new: changed(new), on_delete=changed)

    async def run(self) -> None:
        f = self.factory
        self.ingresses = f.informer(INGRESSES)
        self.classes = f.informer(INGRESS_CLASSES)
        self.services = f.informer("services")
        self.slices = f.informer("endpointslices.discovery.k8s.io", indexers={"service": _slice_service},
                                 transform=_trim_slice)
        self.secrets = f.informer("secrets", transform=_tls_only)
        self._watch("Ingress", self.ingresses, always=True)
        self._watch("IngressClass", self.classes, always=True)
        self._watch("Service", self.services)
        self._watch("EndpointSlice", self.slices)
        self._watch("Secret", self.secrets)
        if self.publish_nodes:
            self.nodes = f.informer(NODES, transform=_trim_node)
            self.nodes.add_handler(on_add=self._nodes_changed, on_update=lambda _o, _n: self._nodes_changed(),
                                   on_delete=self._nodes_changed)
        if self.create_class:
            await self.ensure_class()
        f.start()
        tasks = []
        try:
            await f.wait_for_sync()
            if self.publish_nodes:
                self._nodes_changed()
            tasks.append(asyncio.create_task(self._status_loop()))
            self._dirty.set()
            while True:
                await self._dirty.wait()
                await asyncio.sleep(self.debounce)
                self._dirty.clear()
                try:
                    self.rebuild()
                except Exception:  # noqa: BLE001 - keep serving the last good table
                    log.exception("rebuilding the routing table")
                self.synced.set()
        finally:
            for t in tasks:
                t.cancel()
            await f.stop()

    async def ensure_class(self) -> None:
        """Creates our IngressClass, marked the default class, unless one of
        that name exists (an admin's edits to it are kept)."""
        ic = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
              "metadata": {"name": self.class_name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
              "spec": {"controller": self.controller_class}}
        delay = 0.5
        while True:
            try:
                await self.client.create(INGRESS_CLASSES, ic)
                log.info("created IngressClass %s (controller %s)", self.class_name, self.controller_class)
                return
            except APIError as e:
                if is_already_exists(e):
                    return
                log.warning("creating IngressClass %s: %s", self.class_name, e)
            except OSError as e:
                log.warning("creating IngressClass %s: %s", self.class_name, e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    def _service(self, ns: str, name: str) -> Obj | None:
        return self.services.store.get_by(ns, name)

    def _slices(self, ns: str, name: str) -> list[Obj]:
        return self.slices.store.by_index("service", f"{ns}/{name}")

    def _secret(self, ns: str, name: str) -> Obj | None:
        return self.secrets.store.get_by(ns, name)

    def rebuild(self) -> None:
        names, default = our_classes(self.classes.store.list(), self.controller_class)
        ours = [i for i in self.ingresses.store.list() if is_ours(i, names, default)]
        table = TableBuilder(self._service, self._slices, self._secret, self.tls).build(ours)
        self._refs = table.refs
        self.proxy.swap(table)
        self._ours = ours
        log.debug("routing table: %d ingresses, %d hosts", len(ours), len(table.exact) + len(table.wildcard))
        self._status_kick()

    # -- status ----------------------------------------------------------------

    def _status_kick(self) -> None:
        self._status_event.set()

    def _nodes_changed(self, *_: Any) -> None:
        """Node heartbeats arrive often: the status is kicked only when the address list changes."""
        addrs = ready_node_addresses(self.nodes.store.list())
        if addrs != self.publish:
            log.info("publishing %s (the Ready nodes)", ", ".join(addrs) or "nothing")
            self.publish = addrs
            self._status_kick()

    async def _status_loop(self) -> None:
        ev = self._status_event
        while True:
            await ev.wait()
            ev.clear()
            if not self.publish:
                continue
            failed = await self.sync_status()
            if failed:
                await asyncio.sleep(2)
                ev.set()

    async def sync_status(self) -> bool:
        """Writes status.loadBalancer where it differs; True when a write failed."""
        want = load_balancer_status(self.publish)
        failed = False
        for ing in list(self._ours):
            md = ing["metadata"]
            have = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if _same(have, want):
                continue
            try:
                await self.client.patch(INGRESSES, md["name"], {"status": {"loadBalancer": {"ingress": want}}},
                                        md.get("namespace"), subresource="status")
                log.info("ingress %s/%s: status.loadBalancer %s", md.get("namespace"), md["name"],
                         ", ".join(self.publish))
            except APIError as e:
                if e.code != 404:
                    log.warning("ingress %s/%s status: %s", md.get("namespace"), md["name"], e)
                    failed = True
            except OSError as e:
                log.warning("ingress %s/%s status: %s", md.get("namespace"), md["name"], e)
                failed = True
        return failed


def _same(have: list[Obj], want: list[Obj]) -> bool:
    key: Callable[[Obj], tuple[str, str]] = lambda e: (e.get("ip") or "", e.get("hostname") or "")
    return sorted(map(key, have)) == sorted(map(key, want))
