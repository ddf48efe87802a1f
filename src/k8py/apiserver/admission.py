"""Admission: what kube-apiserver's admission chain and strategies add to a
write before it is stored.

- defaulting (``api/defaults.py``) and validation (``api/validation.py``);
- NamespaceLifecycle: no new content in a missing or terminating namespace,
  and the system namespaces cannot be deleted;
- DefaultTolerationSeconds, ServiceAccount (name only) and Priority for pods;
- the Job selector that the Job strategy generates;
- ClusterIP and NodePort allocation for Services;
- ResourceQuota (``quota.py``): creates over quota refused, usage charged;
- managedFields bookkeeping for every write.
"""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any

from ..api import defaults, managedfields, quantity, validation
from ..api.registry import Registry, Resource
from . import errors
from .clock import now_rfc3339
from .quota import QuotaAdmission

if TYPE_CHECKING:
    from .watchcache import CacheSet

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")
NODE_PORTS = (30000, 32767)


_PROTECTION_FINALIZERS = {"PersistentVolumeClaim": "kubernetes.io/pvc-protection",
                          "PersistentVolume": "kubernetes.io/pv-protection"}


class Admission:
    def __init__(self, registry: Registry, caches: "CacheSet", service_cidr: str = str(SERVICE_CIDR), *,
                 not_ready_toleration_seconds: int = 300, unreachable_toleration_seconds: int = 300):
        self.registry = registry
        # DefaultTolerationSeconds (--default-not-ready/unreachable-toleration-seconds)
        self.toleration_seconds = (not_ready_toleration_seconds, unreachable_toleration_seconds)
        self.caches = caches
        self.service_cidr = ipaddress.ip_network(service_cidr)
        self._reserved_ips: set[str] = set()
        self._reserved_ports: set[int] = set()
        self.quota = QuotaAdmission(caches)

    # -- helpers ----------------------------------------------------------
    def _cached(self, group: str, plural: str, key_tail: str) -> dict[str, Any] | None:
        c = self.caches.caches.get(f"/registry/{group or 'core'}/{plural}/")
        if c is None:
            return None
        e = c.objects.get(f"/registry/{group or 'core'}/{plural}/{key_tail}")
        return e.obj() if e else None

    def _namespace_entry(self, ns: str):
        c = self.caches.caches.get("/registry/core/namespaces/")
        return c.objects.get("/registry/core/namespaces/" + ns) if c is not None else None

    async def _namespace_state(self, ns: str) -> str:
        """"missing", "terminating" or "active", from the cache (without
        decoding the namespace: this runs on every namespaced create)."""
        e = self._namespace_entry(ns)
        if e is None:
            # a namespace created an instant ago may not be in the cache yet
            rev = await self.caches.store.current_revision()
            await self.caches.wait_fresh(rev)
            e = self._namespace_entry(ns)
        if e is None:
            return "missing"
        if b'"deletionTimestamp"' in e.raw and (e.obj().get("metadata") or {}).get("deletionTimestamp"):
            return "terminating"
        return "active"

    # -- the chain ---------------------------------------------------------
    async def admit_create(self, r: Resource, ns: str | None, obj: dict[str, Any], opts: Any) -> None:
        name = obj["metadata"].get("name", "")
        if r.namespaced:
            state = await self._namespace_state(ns or "")
            if state == "missing":
                raise errors.not_found("namespaces", "", ns or "")
            if state == "terminating":
                e = errors.forbidden(r.plural, r.group, name,
                                     f"unable to create new content in namespace {ns} because it is being "
                                     f"terminated")
                # the cause controllers look for to ignore the refusal (kube's NamespaceTerminatingCause)
                e.details["causes"] = [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                        "message": f"namespace {ns} is being terminated"}]
                raise e
        try:
            defaults.apply_defaults(r, obj)
        except quantity.QuantityError as e:
            raise errors.bad_request(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: {e}')
        if r.kind == "Pod":
            self._admit_pod(obj)
        elif r.kind == "Namespace":
            defaults.namespace_prepare_create(obj)
        elif r.kind == "Job" and r.group == "batch":
            defaults.job_prepare_create(obj, obj["metadata"]["uid"])
        elif r.kind == "Service":
            self._allocate_service(obj)
        elif r.kind in _PROTECTION_FINALIZERS and not r.group:
            # StorageObjectInUseProtection: the pvc-/pv-protection controllers remove it once unused
            fins = obj["metadata"].setdefault("finalizers", [])
            if _PROTECTION_FINALIZERS[r.kind] not in fins:
                fins.append(_PROTECTION_FINALIZERS[r.kind])

    async def admit_quota(self, ostore: Any, r: Resource, ns: str | None, obj: dict[str, Any], opts: Any,
                          old: dict[str, Any] | None = None) -> None:
        """The last step of a create or update (kube's validating ResourceQuota plugin)."""
        await self.quota.admit_create(ostore, r, ns, obj, opts, old)

    def admit_update(self, r: Resource, new: dict[str, Any], old: dict[str, Any]) -> None:
        try:
            defaults.apply_defaults(r, new)
        except quantity.QuantityError as e:
            raise errors.bad_request(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: {e}')
        if r.kind == "Namespace":  # spec.finalizers change only through /finalize
            spec = new.setdefault("spec", {})
            old_fin = (old.get("spec") or {}).get("finalizers")
            if old_fin is None:
                spec.pop("finalizers", None)
            else:
                spec["finalizers"] = old_fin
        if r.kind == "Service":
            spec, ospec = new.setdefault("spec", {}), old.get("spec") or {}
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP") and ospec.get("clusterIP"):
                spec["clusterIP"] = ospec["clusterIP"]
                spec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
            self._allocate_node_ports(spec, ospec)
        elif r.kind == "Pod":
            spec, ospec = new.setdefault("spec", {}), old.get("spec") or {}
            for k in ("tolerations", "priority", "serviceAccountName", "serviceAccount"):
                if k in ospec and k not in spec:
                    spec[k] = ospec[k]

    def admit_delete(self, r: Resource, obj: dict[str, Any]) -> None:
        if r.kind == "Namespace" and obj["metadata"]["name"] in SYSTEM_NAMESPACES[:3]:
            raise errors.forbidden(r.plural, r.group, obj["metadata"]["name"],
                                   "this namespace may not be deleted")

    def validate(self, r: Resource, obj: dict[str, Any], old: dict[str, Any] | None,
                 subresource: str = "") -> None:
        if subresource == "status":
            errs = validation.validate_status(r, obj, old)
        else:
            errs = validation.validate(r, obj, old)
        if errs:
            name = (obj.get("metadata") or {}).get("name", "")
            raise errors.from_status(validation.invalid_status(r, name, errs))

    def track_fields(self, r: Resource, old: dict[str, Any] | None, new: dict[str, Any], opts: Any,
                     subresource: str) -> None:
        manager = opts.field_manager or managedfields.default_manager(opts.user_agent, "Update")
        from ..api import schema as _schema
        sch = _schema.load()
        type_name = sch.type_for_kind(r.group, r.version, r.kind) or ""
        managedfields.update_managed_fields(old, new, manager, "Update", r.api_version,
                                            now_rfc3339(), sch, type_name, subresource)

    def release(self, r: Resource, obj: dict[str, Any]) -> None:
        """Frees what a removed object held (allocations are recomputed from
        the cache, so nothing to do beyond forgetting reservations)."""
        if r.kind == "Service":
            spec = obj.get("spec") or {}
            self._reserved_ips.discard(spec.get("clusterIP") or "")
            for p in spec.get("ports") or []:
                self._reserved_ports.discard(p.get("nodePort") or 0)

    # -- pods ---------------------------------------------------------------
    def _admit_pod(self, pod: dict[str, Any]) -> None:
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
        spec["serviceAccount"] = spec["serviceAccountName"]
        pc_name = spec.get("priorityClassName")
        pc = None
        if pc_name:
            pc = self._cached("scheduling.k8s.io", "priorityclasses", pc_name)
            if pc is None:
                raise errors.forbidden("pods", "", pod["metadata"].get("name", ""),
                                       f"no PriorityClass with name {pc_name} was found")
        defaults.pod_admission_defaults(pod, priority_class=pc, default_toleration_seconds=self.toleration_seconds[0],
                                        unreachable_toleration_seconds=self.toleration_seconds[1])

    # -- services -----------------------------------------------------------
    def _used(self) -> tuple[set[str], set[int]]:
        ips, ports = set(self._reserved_ips), set(self._reserved_ports)
        c = self.caches.caches.get("/registry/core/services/")
        if c is not None:
            for e in c.objects.values():
                spec = e.obj().get("spec") or {}
                ips.update(spec.get("clusterIPs") or [spec.get("clusterIP") or ""])
                for p in spec.get("ports") or []:
                    if p.get("nodePort"):
                        ports.add(p["nodePort"])
        return ips, ports

    def _allocate_service(self, svc: dict[str, Any]) -> None:
        spec = svc.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        used_ips, _ = self._used()
        ip = spec.get("clusterIP")
        if ip in ("None",):
            spec["clusterIPs"] = ["None"]
        elif ip:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return  # validation reports it
            if addr not in self.service_cidr:
                raise errors.invalid("Service", "", svc["metadata"].get("name", ""),
                                     f'Service "{svc["metadata"].get("name", "")}" is invalid: spec.clusterIPs: '
                                     f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: the '
                                     f'provided IP ({ip}) is not in the valid range. The range of valid IPs '
                                     f'is {self.service_cidr}',
                                     [{"reason": "FieldValueInvalid", "field": "spec.clusterIPs"}])
            if ip in used_ips:
                raise errors.invalid("Service", "", svc["metadata"].get("name", ""),
                                     f'Service "{svc["metadata"].get("name", "")}" is invalid: spec.clusterIPs: '
                                     f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided '
                                     f'IP is already allocated',
                                     [{"reason": "FieldValueInvalid", "field": "spec.clusterIPs"}])
            spec["clusterIPs"] = [ip]
            self._reserved_ips.add(ip)
        else:
            net = self.service_cidr
            size = net.num_addresses
            for _ in range(64):
                cand = str(net.network_address + random.randint(11, size - 2))
                if cand not in used_ips:
                    break
            else:
                cand = next((str(a) for a in net.hosts() if str(a) not in used_ips and int(a.packed[-1]) > 10), "")
                if not cand:
                    raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a "
                                          "serviceIP: range is full")
            spec["clusterIP"] = cand
            spec["clusterIPs"] = [cand]
            self._reserved_ips.add(cand)
        self._allocate_node_ports(spec, {})

    def _allocate_node_ports(self, spec: dict[str, Any], ospec: dict[str, Any]) -> None:
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
            return
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in ospec.get("ports") or []}
        _, used = self._used()
        for p in spec.get("ports") or []:
            if p.get("nodePort"):
                continue
            prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if prev:
                p["nodePort"] = prev
                continue
            for _ in range(256):
                cand = random.randint(*NODE_PORTS)
                if cand not in used:
                    break
            p["nodePort"] = cand
            used.add(cand)
            self._reserved_ports.add(cand)
