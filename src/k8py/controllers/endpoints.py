"""The endpoints controller (kube's ``pkg/controller/endpoint``): for every
Service with a selector, an Endpoints object of the same name listing the
selected pods: ready pods under ``addresses``, the others under
``notReadyAddresses`` (all under ``addresses`` when the Service publishes
not-ready addresses), grouped into subsets by the ports they serve (named
targetPorts are resolved per pod).  Written only when it changed; a
deleted Service's Endpoints are deleted.  Services without a selector, and
ExternalName services, are left alone (their Endpoints are the user's).

The ``kubernetes`` Service in ``default`` has no selector: its Endpoints
belong to the API server (kube's apiserver reconciler writes them), not to
this controller."""

from __future__ import annotations

import logging
from typing import Any

from ..client.controller import Controller
from ..client.informer import key_of, split_key
from ..client.rest import APIError, is_not_found, resource
from .context import ControllerContext, register
from .endpointutil import (HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, PodHandlers, TriggerTimeTracker, find_port,
                           format_trigger_time, is_pod_ready, pod_ip, pods_for_service, selector_of,
                           service_family, should_pod_be_in_endpoints,
                           should_set_hostname)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
ENDPOINTS = resource("endpoints")
MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def _addr_key(a: Obj) -> tuple:
    return (a.get("ip", ""), a.get("hostname", ""), (a.get("targetRef") or {}).get("uid", ""))


def _port_key(p: Obj) -> tuple:
    return (p.get("name", ""), p.get("port", 0), p.get("protocol", ""), p.get("appProtocol", ""))


def normalize(subsets: list[Obj] | None) -> list[Obj]:
    """Subsets in one canonical order (kube's ``SortSubsets``), so two equal
    sets of endpoints compare equal."""
    out = []
    for s in subsets or ():
        n: Obj = {}
        if s.get("addresses"):
            n["addresses"] = sorted(s["addresses"], key=_addr_key)
        if s.get("notReadyAddresses"):
            n["notReadyAddresses"] = sorted(s["notReadyAddresses"], key=_addr_key)
        if s.get("ports"):
            n["ports"] = sorted(s["ports"], key=_port_key)
        out.append(n)
    out.sort(key=lambda s: (tuple(_port_key(p) for p in s.get("ports") or ()),
                            tuple(_addr_key(a) for a in s.get("addresses") or ()),
                            tuple(_addr_key(a) for a in s.get("notReadyAddresses") or ())))
    return out


def compute_subsets(svc: Obj, pods: list[Obj]) -> tuple[list[Obj], int, int]:
    """The subsets of ``svc``'s Endpoints (``RepackSubsets`` applied): one
    subset per distinct set of ports; returns (subsets, ready, not ready)."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    family = service_family(svc)
    svc_ports = spec.get("ports") or []
    headless_no_ports = not svc_ports and spec.get("clusterIP") == "None"
    # address identity -> (address, ready, set of ports)
    by_addr: dict[tuple, tuple[Obj, bool, set[tuple]]] = {}
    ports_of: dict[tuple, Obj] = {}
    ready_n = not_ready_n = 0
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish):
            continue
        ip = pod_ip(pod, family)
        if ip is None:
            continue
        md, pspec = pod["metadata"], pod.get("spec") or {}
        addr: Obj = {"ip": ip}
        if should_set_hostname(pod, svc):
            addr["hostname"] = pspec["hostname"]
        if pspec.get("nodeName"):
            addr["nodeName"] = pspec["nodeName"]
        addr["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md["name"],
                             "uid": md.get("uid", "")}
        ready = publish or is_pod_ready(pod)
        ports: set[tuple] = set()
        if svc_ports:
            for sp in svc_ports:
                num = find_port(pod, sp)
                if num is None:
                    continue
                ep: Obj = {"port": num, "protocol": sp.get("protocol") or "TCP"}
                if sp.get("name"):
                    ep["name"] = sp["name"]
                if sp.get("appProtocol"):
                    ep["appProtocol"] = sp["appProtocol"]
                k = _port_key(ep)
                ports_of[k] = ep
                ports.add(k)
            if not ports:
                continue
            n = len(ports)
        elif headless_no_ports:
            n = 1
        else:
            continue
        if ready:
            ready_n += n
        else:
            not_ready_n += n
        by_addr[_addr_key(addr)] = (addr, ready, ports)
    groups: dict[frozenset, Obj] = {}
    for addr, ready, ports in by_addr.values():
        g = groups.setdefault(frozenset(ports), {})
        g.setdefault("addresses" if ready else "notReadyAddresses", []).append(addr)
    subsets = []
    for ports, g in groups.items():
        if ports:
            g["ports"] = [ports_of[k] for k in ports]
        subsets.append(g)
    return normalize(subsets), ready_n, not_ready_n


def truncate(subsets: list[Obj], limit: int = MAX_CAPACITY) -> bool:
    """Keeps at most ``limit`` addresses (ready ones first), as kube does
    for Endpoints over capacity; True if something was dropped."""
    total = sum(len(s.get("addresses") or ()) + len(s.get("notReadyAddresses") or ()) for s in subsets)
    if total <= limit:
        return False
    left = limit
    for s in subsets:
        for k in ("addresses", "notReadyAddresses"):
            a = s.get(k) or []
            if len(a) > left:
                s[k] = a[:left]
            left -= len(s.get(k) or [])
    return True


@register("endpoints")
class EndpointsController(PodHandlers, Controller):
    name = "endpoints"
    workers = 5

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("endpoint-controller")
        self.services = ctx.informers.informer("services")
        self.pods = ctx.informers.informer("pods")
        self.endpoints = ctx.informers.informer("endpoints")
        self.triggers = TriggerTimeTracker()
        self.services.add_handler(lambda s: self.enqueue(key_of(s)), lambda o, n: self.enqueue(key_of(n)),
                                  lambda s: self.enqueue(key_of(s)))
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)
        self.endpoints.add_handler(None, None, self._endpoints_deleted)

    def _endpoints_deleted(self, ep: Obj) -> None:
        k = key_of(ep)
        svc = self.services.store.get(k)
        if svc is not None and selector_of(svc) is not None:
            self.enqueue(k)

    async def sync(self, key: Any) -> None:
        ns, name = split_key(key)
        svc = self.services.store.get(key)
        if svc is None:
            self.triggers.forget(key)
            try:
                await self.client.delete(ENDPOINTS, name, ns)
            except APIError as e:
                if not is_not_found(e):
                    raise
            return
        if selector_of(svc) is None:
            return
        pods = pods_for_service(self.pods.store, svc)
        trigger = self.triggers.compute(key, svc, pods)
        subsets, _, _ = compute_subsets(svc, pods)
        svc_labels = svc["metadata"].get("labels") or {}
        headless = (svc.get("spec") or {}).get("clusterIP") == "None"
        cur = self.endpoints.store.get(key)
        if cur is not None:
            cur_labels = dict(cur["metadata"].get("labels") or {})
            cur_labels.pop(HEADLESS_LABEL, None)
            anns = cur["metadata"].get("annotations") or {}
            over = OVER_CAPACITY in anns
            if (normalize(cur.get("subsets")) == subsets and cur_labels == svc_labels
                    and over == (sum(len(s.get("addresses") or ()) + len(s.get("notReadyAddresses") or ())
                                     for s in subsets) > MAX_CAPACITY)):
                return
        new_labels = dict(svc_labels)
        if headless:
            new_labels[HEADLESS_LABEL] = ""
        anns = dict((cur or {}).get("metadata", {}).get("annotations") or {})
        if trigger is not None:
            anns[LAST_CHANGE_TRIGGER_TIME] = format_trigger_time(trigger)
        else:
            anns.pop(LAST_CHANGE_TRIGGER_TIME, None)
        if truncate(subsets):
            anns[OVER_CAPACITY] = "truncated"
        else:
            anns.pop(OVER_CAPACITY, None)
        md: Obj = {"name": name, "namespace": ns}
        if new_labels:
            md["labels"] = new_labels
        if anns:
            md["annotations"] = anns
        ep: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": md}
        if subsets:
            ep["subsets"] = subsets
        try:
            if cur is None:
                await self.client.create(ENDPOINTS, ep, ns)
            else:
                old_md = cur["metadata"]
                for k in ("resourceVersion", "uid", "creationTimestamp", "ownerReferences", "finalizers"):
                    if k in old_md:
                        md[k] = old_md[k]
                await self.client.update(ENDPOINTS, ep)
        except APIError as e:
            if cur is None and e.code == 403:
                return  # the namespace is terminating
            self.recorder.warning(ep, "FailedToCreateEndpoint" if cur is None else "FailedToUpdateEndpoint",
                                  f"Failed to {'create' if cur is None else 'update'} endpoint {ns}/{name}: {e}")
            raise
