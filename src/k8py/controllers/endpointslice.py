"""The endpointslice controller (kube's ``pkg/controller/endpointslice``):
discovery.k8s.io/v1 EndpointSlices for every Service with a selector.

Slices carry ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``
(plus the Service's own labels), are named ``<service>-<random>`` and owned
by the Service.  Each endpoint is one pod (terminating pods included, with
their ``serving`` condition), with nodeName, zone (from the node's
``topology.kubernetes.io/zone``), hostname and targetRef.  Pods that serve
different ports go to different slices; a slice holds at most 100
endpoints.

Reconciling keeps churn low, as kube's reconciler does: existing slices
keep the endpoints still wanted (updated in place when they changed);
emptied slices are deleted; new endpoints first fill slices being updated
anyway, then go into new slices, and a last partial chunk goes into the
fullest unchanged slice that has room.  A Service with no endpoints keeps
one empty placeholder slice.  Because the informer cache may lag the
controller's own writes, a service whose slices were just written is not
reconciled again until the cache has seen those writes."""

from __future__ import annotations

import logging
from typing import Any

from ..client.controller import Controller
from ..client.informer import key_of, split_key
from ..client.rest import APIError, is_not_found, resource
from .context import ControllerContext, register
from .endpointutil import (HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, PodHandlers, TriggerTimeTracker, find_port,
                           format_trigger_time, is_pod_ready, pod_ip, pods_for_service, selector_of,
                           should_pod_be_in_endpoints,
                           should_set_hostname)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SLICES = resource("endpointslices.discovery.k8s.io")
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100


def _service_index(s: Obj) -> list[str]:
    md = s["metadata"]
    lab = md.get("labels") or {}
    if lab.get(MANAGED_BY) != CONTROLLER_NAME or not lab.get(SERVICE_NAME):
        return []
    return [f"{md.get('namespace', '')}/{lab[SERVICE_NAME]}"]


def _ports_key(ports: list[Obj] | None) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port") or 0, p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or ()))


def _ep_key(ep: Obj) -> tuple:
    ref = ep.get("targetRef") or {}
    return (ref.get("uid") or "", tuple(sorted(ep.get("addresses") or ())))


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or ():
        num = find_port(pod, sp)
        if num is None:
            continue
        p: Obj = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def pod_to_endpoint(pod: Obj, svc: Obj, ip: str, zone: str | None) -> Obj:
    md, spec = pod["metadata"], pod.get("spec") or {}
    serving = is_pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: Obj = {"addresses": [ip], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, svc):
        ep["hostname"] = spec["hostname"]
    ep["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md["name"],
                       "uid": md.get("uid", "")}
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    if zone:
        ep["zone"] = zone
    return ep


def slice_labels(svc: Obj, current: dict[str, str] | None = None) -> dict[str, str]:
    """``setEndpointSliceLabels``: the Service's labels (minus the reserved
    ones), the headless marker, the service name and the manager."""
    out: dict[str, str] = {}
    for k, v in (svc["metadata"].get("labels") or {}).items():
        if k not in (SERVICE_NAME, MANAGED_BY, HEADLESS_LABEL):
            out[k] = v
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        out[HEADLESS_LABEL] = ""
    out[SERVICE_NAME] = svc["metadata"]["name"]
    out[MANAGED_BY] = CONTROLLER_NAME
    return out


def desired_endpoints(svc: Obj, pods: list[Obj], zone_of: Any, address_type: str) -> dict[tuple, tuple[list[Obj], dict[tuple, Obj]]]:
    """Wanted endpoints grouped by port set: ports-key -> (ports, {endpoint key: endpoint})."""
    out: dict[tuple, tuple[list[Obj], dict[tuple, Obj]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, True):
            continue
        ip = pod_ip(pod, address_type)
        if ip is None:
            continue
        ports = endpoint_ports(svc, pod)
        ep = pod_to_endpoint(pod, svc, ip, zone_of((pod.get("spec") or {}).get("nodeName")))
        pk = _ports_key(ports)
        group = out.setdefault(pk, (ports, {}))
        group[1][_ep_key(ep)] = ep
    return out


class Plan:
    def __init__(self) -> None:
        self.create: list[Obj] = []
        self.update: list[Obj] = []
        self.delete: list[Obj] = []


def _new_slice(svc: Obj, ports: list[Obj], address_type: str) -> Obj:
    md = svc["metadata"]
    prefix = md["name"] + "-" if len(md["name"]) <= 57 else md["name"][:57] + "-"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": prefix, "namespace": md.get("namespace", ""),
                         "labels": slice_labels(svc),
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": md["name"],
                                              "uid": md.get("uid", ""), "controller": True,
                                              "blockOwnerDeletion": True}]},
            "addressType": address_type, "endpoints": [], "ports": ports}


def reconcile(svc: Obj, existing: list[Obj], desired: dict[tuple, tuple[list[Obj], dict[tuple, Obj]]],
              address_type: str, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """Which slices to create, update and delete (``reconcileByAddressType``)."""
    plan = Plan()
    want_labels = slice_labels(svc)
    by_ports: dict[tuple, list[Obj]] = {}
    for s in existing:
        if s.get("addressType") != address_type:
            plan.delete.append(s)
            continue
        by_ports.setdefault(_ports_key(s.get("ports")), []).append(s)
    for pk, slices in by_ports.items():
        if pk not in desired:
            plan.delete.extend(slices)
    for pk, (ports, want) in desired.items():
        _reconcile_ports(svc, by_ports.get(pk, []), ports, dict(want), want_labels, address_type,
                         max_per_slice, plan)
    kept = len(existing) - len(plan.delete)
    if kept == 0 and not plan.create:
        placeholder = _new_slice(svc, [], address_type)
        if (len(plan.delete) == 1 and not plan.delete[0].get("endpoints") and not plan.delete[0].get("ports")
                and plan.delete[0].get("addressType") == address_type):
            plan.delete.clear()
        else:
            plan.create.append(placeholder)
    return plan


def _reconcile_ports(svc: Obj, slices: list[Obj], ports: list[Obj], want: dict[tuple, Obj],
                     want_labels: dict[str, str], address_type: str, max_per_slice: int, plan: Plan) -> None:
    to_update: list[Obj] = []
    unchanged: list[Obj] = []
    for s in slices:
        new_eps = []
        changed = False
        for ep in s.get("endpoints") or ():
            got = want.pop(_ep_key(ep), None)
            if got is not None:
                new_eps.append(got)
                if got != ep:
                    changed = True
        labels_changed = (s["metadata"].get("labels") or {}) != want_labels
        if changed or len(new_eps) != len(s.get("endpoints") or ()):
            if not new_eps:
                plan.delete.append(s)
                continue
            to_update.append(_copy_slice(s, new_eps, want_labels))
        elif labels_changed:
            to_update.append(_copy_slice(s, new_eps, want_labels))
        else:
            unchanged.append(s)
    rest = list(want.values())
    for s in to_update:  # 2. fill slices that are being written anyway
        room = max_per_slice - len(s["endpoints"])
        if room > 0 and rest:
            s["endpoints"].extend(rest[:room])
            rest = rest[room:]
    unchanged.sort(key=lambda s: -len(s.get("endpoints") or ()))
    while rest:  # 3. new slices; a last partial chunk may fit an unchanged slice
        target = None
        if len(rest) < max_per_slice:
            for i, s in enumerate(unchanged):
                if max_per_slice - len(s.get("endpoints") or ()) >= len(rest):
                    target = _copy_slice(s, list(s.get("endpoints") or ()), want_labels)
                    unchanged.pop(i)
                    to_update.append(target)
                    break
        if target is None:
            target = _new_slice(svc, ports, address_type)
            plan.create.append(target)
        room = max_per_slice - len(target["endpoints"])
        target["endpoints"].extend(rest[:room])
        rest = rest[room:]
    plan.update.extend(to_update)


def _copy_slice(s: Obj, endpoints: list[Obj], want_labels: dict[str, str]) -> Obj:
    md = dict(s["metadata"])
    md["labels"] = dict(want_labels)
    out = dict(s, metadata=md, endpoints=endpoints)
    out.setdefault("apiVersion", "discovery.k8s.io/v1")
    out.setdefault("kind", "EndpointSlice")
    return out


@register("endpointslice")
class EndpointSliceController(PodHandlers, Controller):
    name = "endpointslice"
    workers = 5

    def __init__(self, ctx: ControllerContext, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE):
        super().__init__()
        self.client = ctx.client
        self.max_per_slice = max_per_slice
        self.services = ctx.informers.informer("services")
        self.pods = ctx.informers.informer("pods")
        self.nodes = ctx.informers.informer("nodes")
        self.slices = ctx.informers.informer(SLICES)
        self.slices.store.add_indexer("endpointslice-service", _service_index)
        self.triggers = TriggerTimeTracker()
        # what this controller wrote last, per service: slice name -> resourceVersion (0: deleted)
        self._written: dict[str, dict[str, int]] = {}
        self.services.add_handler(lambda s: self.enqueue(key_of(s)), self._service_updated,
                                  lambda s: self.enqueue(key_of(s)))
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)
        self.slices.add_handler(self._slice_changed, lambda o, n: self._slice_changed(n), self._slice_deleted)

    def _service_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") != new["metadata"].get("resourceVersion"):
            self.enqueue(key_of(new))

    def _slice_changed(self, s: Obj) -> None:
        for svc_key in _service_index(s):
            mine = self._written.get(svc_key, {}).get(s["metadata"]["name"])
            if mine is None or int(s["metadata"].get("resourceVersion") or 0) > mine:
                self.enqueue(svc_key)  # someone else changed it

    def _slice_deleted(self, s: Obj) -> None:
        for svc_key in _service_index(s):
            if self._written.get(svc_key, {}).get(s["metadata"]["name"]) != 0:
                self.enqueue(svc_key)

    def _zone_of(self, node_name: str | None) -> str | None:
        if not node_name:
            return None
        node = self.nodes.store.get(node_name)
        return ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL) or None

    def _cache_is_stale(self, key: str) -> bool:
        written = self._written.get(key)
        if not written:
            return False
        ns, _ = split_key(key)
        for name, rv in list(written.items()):
            cur = self.slices.store.get_by(ns, name)
            if rv == 0:
                if cur is not None:
                    return True
            elif cur is None or int(cur["metadata"].get("resourceVersion") or 0) < rv:
                return True
        self._written.pop(key, None)
        return False

    async def sync(self, key: Any) -> None:
        ns, name = split_key(key)
        existing = self.slices.store.by_index("endpointslice-service", key)
        svc = self.services.store.get(key)
        if svc is None:
            # the garbage collector removes them too (they are owned by the Service)
            self.triggers.forget(key)
            self._written.pop(key, None)
            for s in existing:
                await self._delete(s)
            return
        if selector_of(svc) is None:
            return
        if self._cache_is_stale(key):
            self.queue.add_after(key, 0.2)
            return
        pods = pods_for_service(self.pods.store, svc)
        trigger = self.triggers.compute(key, svc, pods)
        fams = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
        plan = Plan()
        if len(fams) > 1:
            plan.delete += [s for s in existing if s.get("addressType") not in fams]
        for fam in fams:
            desired = desired_endpoints(svc, pods, self._zone_of, fam)
            mine = existing if len(fams) == 1 else [s for s in existing if s.get("addressType") == fam]
            p = reconcile(svc, mine, desired, fam, self.max_per_slice)
            plan.create += p.create
            plan.update += p.update
            plan.delete += p.delete
        written = self._written.setdefault(key, {})
        for s in plan.create + plan.update:
            if trigger is not None:
                anns = dict(s["metadata"].get("annotations") or {})
                anns[LAST_CHANGE_TRIGGER_TIME] = format_trigger_time(trigger)
                s["metadata"]["annotations"] = anns
        try:
            for s in plan.create:
                out = await self.client.create(SLICES, s, ns)
                written[out["metadata"]["name"]] = int(out["metadata"]["resourceVersion"])
            for s in plan.update:
                out = await self.client.update(SLICES, s)
                written[out["metadata"]["name"]] = int(out["metadata"]["resourceVersion"])
            for s in plan.delete:
                await self._delete(s)
                written[s["metadata"]["name"]] = 0
        except APIError as e:
            if e.code == 403 and plan.create:
                return  # the namespace is terminating
            raise

    async def _delete(self, s: Obj) -> None:
        try:
            await self.client.delete(SLICES, s["metadata"]["name"], s["metadata"].get("namespace"),
                                     uid=s["metadata"].get("uid"))
        except APIError as e:
            if not is_not_found(e) and e.code != 409:
                raise
