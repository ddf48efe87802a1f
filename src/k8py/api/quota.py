"""Resource quota accounting (kube's ``pkg/quota/v1`` evaluators), shared by
the ResourceQuota admission in the API server and the resourcequota
controller: what an object uses, which quota resources an object's kind
can be charged for, whether a quota's scopes select an object, and the
constraints a pod must meet in a namespace whose quota tracks cpu/memory.

Usage is a ``dict[str, Quantity]`` keyed by quota resource name
(``pods``, ``requests.cpu``, ``count/deployments.apps`` ...)."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from . import labels
from .quantity import DECIMAL_SI, Quantity, parse

Obj = dict[str, Any]
Usage = dict[str, Quantity]

# resources whose legacy quota name is the plural itself (besides count/<plural>)
LEGACY_COUNT = {"configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas",
                "services", "pods"}
POD_RESOURCES = {"pods", "count/pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
                 "limits.memory", "ephemeral-storage", "requests.ephemeral-storage", "limits.ephemeral-storage"}
POD_PREFIXES = ("hugepages-", "requests.hugepages-")
VALIDATION_SET = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
SERVICE_RESOURCES = {"services", "count/services", "services.nodeports", "services.loadbalancers"}
PVC_RESOURCES = {"persistentvolumeclaims", "count/persistentvolumeclaims", "requests.storage"}
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"


def one() -> Quantity:
    return Quantity.from_int(1)


def zero() -> Quantity:
    return Quantity(0, DECIMAL_SI)


def add_q(a: Quantity, b: Quantity) -> Quantity:
    """``Quantity.Add``: a zero receiver takes the other's format."""
    return Quantity(a.nanos + b.nanos, b.format if a.nanos == 0 else a.format)


def add(a: Usage, b: Usage) -> Usage:
    out = dict(a)
    for k, v in b.items():
        out[k] = add_q(out[k], v) if k in out else v
    return out


def subtract(a: Usage, b: Usage) -> Usage:
    out = dict(a)
    for k, v in b.items():
        cur = out.get(k, zero())
        out[k] = Quantity(cur.nanos - v.nanos, cur.format if cur.nanos else v.format)
    return out


def mask(u: Usage, names: Iterable[str]) -> Usage:
    keep = set(names)
    return {k: v for k, v in u.items() if k in keep}


def parse_list(rl: dict[str, Any] | None) -> Usage:
    out: Usage = {}
    for k, v in (rl or {}).items():
        try:
            out[k] = parse(v)
        except ValueError:
            continue
    return out


def to_strings(u: Usage) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(u.items())}


def pretty(u: Usage) -> str:
    """``prettyPrint``: ``name=value`` sorted by name, comma-separated."""
    return ",".join(f"{k}={v}" for k, v in sorted(u.items()))


def object_count_name(plural: str, group: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


# ---- pods --------------------------------------------------------------------------------------
def _is_extended(name: str) -> bool:
    """``IsExtendedResourceName``: a domain-prefixed name outside kubernetes.io."""
    if "/" not in name or name.startswith("requests.") or name.startswith("limits."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def _add_into(acc: Usage, rl: Usage) -> None:
    for k, v in rl.items():
        acc[k] = add_q(acc[k], v) if k in acc else v


def _max_into(acc: Usage, rl: Usage) -> None:
    for k, v in rl.items():
        if k not in acc or v.nanos > acc[k].nanos:
            acc[k] = v


def _pod_resources(pod: Obj, field: str) -> Usage:
    """``resourcehelper.PodRequests``/``PodLimits``: the sum over containers,
    restartable (sidecar) init containers added, the max with each init
    container's peak, plus the pod overhead."""
    spec = pod.get("spec") or {}
    total: Usage = {}
    for c in spec.get("containers") or ():
        _add_into(total, parse_list((c.get("resources") or {}).get(field)))
    sidecars: Usage = {}
    init_peak: Usage = {}
    for c in spec.get("initContainers") or ():
        r = parse_list((c.get("resources") or {}).get(field))
        if c.get("restartPolicy") == "Always":
            _add_into(total, r)
            _add_into(sidecars, r)
            cur = dict(sidecars)
        else:
            cur = dict(r)
            _add_into(cur, sidecars)
        _max_into(init_peak, cur)
    _max_into(total, init_peak)
    overhead = parse_list(spec.get("overhead"))
    if field == "limits":  # overhead is added to the limits that are set
        overhead = {k: v for k, v in overhead.items() if k in total}
    _add_into(total, overhead)
    return total


def compute_usage(requests: Usage, limits: Usage) -> Usage:
    """``podComputeUsageHelper``."""
    out: Usage = {"pods": one()}
    for res in ("cpu", "memory", "ephemeral-storage"):
        if res in requests:
            out[res] = requests[res]
            out[f"requests.{res}"] = requests[res]
        if res in limits:
            out[f"limits.{res}"] = limits[res]
    for k, v in requests.items():
        if k.startswith("hugepages-"):
            out[k] = v
            out[f"requests.{k}"] = v
        if _is_extended(k):
            out[f"requests.{k}"] = v
    return out


def pod_counts_for_quota(pod: Obj, now: float | None = None) -> bool:
    """``QuotaV1Pod``: terminal pods, and pods stuck terminating past their
    grace period, are not charged for compute resources."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    md = pod.get("metadata") or {}
    if md.get("deletionTimestamp") and md.get("deletionGracePeriodSeconds") is not None:
        from ..client.timeutil import parse_time
        t = parse_time(md["deletionTimestamp"])
        if t is not None and (now or time.time()) > t + md["deletionGracePeriodSeconds"]:
            return False
    return True


def pod_usage(pod: Obj, now: float | None = None) -> Usage:
    out: Usage = {"count/pods": one()}
    if not pod_counts_for_quota(pod, now):
        return out
    out.update(compute_usage(_pod_resources(pod, "requests"), _pod_resources(pod, "limits")))
    return out


def is_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        res = c.get("resources") or {}
        for f in ("requests", "limits"):
            rl = res.get(f) or {}
            if any(k in ("cpu", "memory") and not parse(v).is_zero() for k, v in rl.items()):
                return False
    return True


def _cross_namespace_affinity(pod: Obj) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = aff.get(kind) or {}
        terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
        terms += [t.get("podAffinityTerm") or {} for t in a.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


def pod_matches_scope(scope: str, operator: str, values: list[str], pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        ads = spec.get("activeDeadlineSeconds")
        return ads is not None and ads >= 0
    if scope == "NotTerminating":
        ads = spec.get("activeDeadlineSeconds")
        return ads is None or ads < 0
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "PriorityClass":
        sel = labels.from_label_selector({"matchExpressions": [
            {"key": "PriorityClass", "operator": operator, "values": values}]})
        pc = spec.get("priorityClassName")
        return sel.matches({"PriorityClass": pc} if pc else {})
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(pod)
    return False


def scope_selectors(q: Obj) -> list[tuple[str, str, list[str]]]:
    spec = q.get("spec") or {}
    out = [(s, "Exists", []) for s in spec.get("scopes") or ()]
    for e in ((spec.get("scopeSelector") or {}).get("matchExpressions") or ()):
        out.append((e.get("scopeName", ""), e.get("operator", ""), list(e.get("values") or ())))
    return out


# ---- evaluators --------------------------------------------------------------------------------
class Evaluator:
    """One kind's quota accounting."""

    def __init__(self, plural: str, group: str, names: set[str],
                 usage: Callable[[Obj], Usage], prefixes: tuple[str, ...] = (),
                 scope_fn: Callable[[str, str, list[str], Obj], bool] | None = None,
                 extra_match: Callable[[str], bool] | None = None):
        self.plural, self.group = plural, group
        self.names = names
        self._usage = usage
        self.prefixes = prefixes
        self.scope_fn = scope_fn
        self.extra_match = extra_match

    def usage(self, obj: Obj) -> Usage:
        return self._usage(obj)

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        out = []
        for n in names:
            if n in self.names or n.startswith(self.prefixes or ("\0",)) or (
                    self.extra_match is not None and self.extra_match(n)):
                out.append(n)
        return out

    def matches(self, q: Obj, obj: Obj, hard: Iterable[str]) -> bool:
        """``generic.Matches``: the quota tracks one of our resources and
        every scope selects the object (kinds without scopes match no
        scoped quota)."""
        if not self.matching_resources(hard):
            return False
        for scope, op, values in scope_selectors(q):
            if self.scope_fn is None or not self.scope_fn(scope, op, values, obj):
                return False
        return True

    def constraints(self, required: Iterable[str], obj: Obj) -> str | None:
        """The pod evaluator's ``Constraints``: with cpu/memory quota'd,
        every container must say how much it wants."""
        if self.plural != "pods" or self.group:
            return None
        req = set(required) & VALIDATION_SET
        if not req:
            return None
        missing: dict[str, set[str]] = {}
        spec = obj.get("spec") or {}
        for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
            res = c.get("resources") or {}
            have = set(compute_usage(parse_list(res.get("requests")), parse_list(res.get("limits"))))
            for r in req - have:
                missing.setdefault(r, set()).add(c.get("name", ""))
        if not missing:
            return None
        return "must specify " + "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


def _service_usage(svc: Obj) -> Usage:
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    out: Usage = {"count/services": one(), "services": one(), "services.loadbalancers": zero(),
                  "services.nodeports": zero()}
    t = spec.get("type")
    if t == "NodePort":
        out["services.nodeports"] = Quantity.from_int(len(ports))
    elif t == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            out["services.nodeports"] = Quantity.from_int(sum(1 for p in ports if p.get("nodePort")))
        else:
            out["services.nodeports"] = Quantity.from_int(len(ports))
        out["services.loadbalancers"] = one()
    return out


def _pvc_usage(pvc: Obj) -> Usage:
    spec = pvc.get("spec") or {}
    out: Usage = {"count/persistentvolumeclaims": one(), "persistentvolumeclaims": one()}
    sc = spec.get("storageClassName") or ""
    if sc:
        out[f"{sc}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = one()
    req = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    alloc = ((pvc.get("status") or {}).get("allocatedResources") or {}).get("storage")
    q = None
    for v in (req, alloc):
        if v is not None:
            pv = parse(v)
            if q is None or pv.nanos > q.nanos:
                q = pv
    if q is not None:
        out["requests.storage"] = q
        if sc:
            out[f"{sc}{STORAGE_CLASS_SUFFIX}requests.storage"] = q
    return out


def _is_storage_class_resource(n: str) -> bool:
    return STORAGE_CLASS_SUFFIX in n and n.endswith(("/requests.storage", "/persistentvolumeclaims"))


def _is_extended_request(n: str) -> bool:
    return n.startswith("requests.") and _is_extended(n[len("requests."):])


PODS = Evaluator("pods", "", POD_RESOURCES, pod_usage, POD_PREFIXES, pod_matches_scope, _is_extended_request)
SERVICES = Evaluator("services", "", SERVICE_RESOURCES, _service_usage)
PVCS = Evaluator("persistentvolumeclaims", "", PVC_RESOURCES, _pvc_usage, extra_match=_is_storage_class_resource)
_SPECIAL = {("", "pods"): PODS, ("", "services"): SERVICES, ("", "persistentvolumeclaims"): PVCS}


def evaluator_for(group: str, plural: str) -> Evaluator:
    ev = _SPECIAL.get((group, plural))
    if ev is not None:
        return ev
    count = object_count_name(plural, group)
    names = {count}
    if not group and plural in LEGACY_COUNT:
        names.add(plural)
    usage = {n: None for n in names}
    return Evaluator(plural, group, names, lambda obj, _n=tuple(usage): {n: one() for n in _n})


def resource_of(name: str) -> tuple[str, str] | None:
    """The (group, plural) whose objects a quota resource name counts, or
    None for compute resources that belong to pods, services or PVCs."""
    if name in POD_RESOURCES or name.startswith(POD_PREFIXES) or _is_extended_request(name):
        return ("", "pods")
    if name in SERVICE_RESOURCES:
        return ("", "services")
    if name in PVC_RESOURCES or _is_storage_class_resource(name):
        return ("", "persistentvolumeclaims")
    if name in LEGACY_COUNT:
        return ("", name)
    if name.startswith("count/"):
        plural, _, group = name[len("count/"):].partition(".")
        return (group, plural)
    return None
