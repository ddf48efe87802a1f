"""What the scheduler knows about pods and nodes, precomputed once per
object so that filters are a few integer comparisons.

:class:`PodInfo` holds a pod's resource requests (kube's PodRequests:
containers summed, init containers' maximum, sidecars, overhead), its
non-zero requests for scoring, host ports and parsed affinity terms.
:class:`NodeInfo` holds a node's allocatable, the sums of its pods'
requests, its used host ports and which of its pods carry affinity."""

from __future__ import annotations

from typing import Any

from ..api import labels
from ..api.quantity import QuantityError, parse as parse_quantity

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100  # kube's DefaultMilliCPURequest, for scoring
DEFAULT_MEMORY = 200 * 1024 * 1024  # DefaultMemoryRequest

_milli_cache: dict[str, int] = {}
_value_cache: dict[str, int] = {}


def milli(q: Any) -> int:
    s = str(q)
    v = _milli_cache.get(s)
    if v is None:
        try:
            v = parse_quantity(s).milli_value()
        except QuantityError:
            v = 0
        if len(_milli_cache) < 10000:
            _milli_cache[s] = v
    return v


def value(q: Any) -> int:
    s = str(q)
    v = _value_cache.get(s)
    if v is None:
        try:
            v = parse_quantity(s).value()
        except QuantityError:
            v = 0
        if len(_value_cache) < 10000:
            _value_cache[s] = v
    return v


class Resources:
    """cpu in millicores; memory, ephemeral-storage and scalars in units."""

    __slots__ = ("cpu", "memory", "ephemeral", "scalar", "pods")

    def __init__(self, cpu: int = 0, memory: int = 0, ephemeral: int = 0,
                 scalar: dict[str, int] | None = None, pods: int = 0):
        self.cpu, self.memory, self.ephemeral = cpu, memory, ephemeral
        self.scalar = scalar or {}
        self.pods = pods

    @classmethod
    def from_list(cls, rl: Obj | None) -> "Resources":
        r = cls()
        for name, q in (rl or {}).items():
            if name == CPU:
                r.cpu = milli(q)
            elif name == MEMORY:
                r.memory = value(q)
            elif name == EPHEMERAL:
                r.ephemeral = value(q)
            elif name == PODS:
                r.pods = value(q)
            else:
                r.scalar[name] = value(q)
        return r

    def add(self, o: "Resources", sign: int = 1) -> None:
        self.cpu += sign * o.cpu
        self.memory += sign * o.memory
        self.ephemeral += sign * o.ephemeral
        for k, v in o.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def max_with(self, o: "Resources") -> None:
        self.cpu = max(self.cpu, o.cpu)
        self.memory = max(self.memory, o.memory)
        self.ephemeral = max(self.ephemeral, o.ephemeral)
        for k, v in o.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def copy(self) -> "Resources":
        return Resources(self.cpu, self.memory, self.ephemeral, dict(self.scalar), self.pods)

    def is_zero(self) -> bool:
        return not (self.cpu or self.memory or self.ephemeral or any(self.scalar.values()))


def _requests(c: Obj) -> Obj:
    return (c.get("resources") or {}).get("requests") or {}


def pod_requests(spec: Obj) -> tuple[Resources, int, int]:
    """(requests, non-zero milli cpu, non-zero memory) as kube computes them."""
    total = Resources()
    nz_cpu = nz_mem = 0
    for c in spec.get("containers") or ():
        req = _requests(c)
        r = Resources.from_list(req)
        total.add(r)
        nz_cpu += r.cpu if CPU in req else DEFAULT_MILLI_CPU
        nz_mem += r.memory if MEMORY in req else DEFAULT_MEMORY
    inits = spec.get("initContainers") or ()
    if inits:
        sidecars = Resources()
        init_max = Resources()
        for c in inits:
            r = Resources.from_list(_requests(c))
            if c.get("restartPolicy") == "Always":
                sidecars.add(r)
                total.add(r)
                init_max.max_with(sidecars)
            else:
                tmp = sidecars.copy()
                tmp.add(r)
                init_max.max_with(tmp)
        total.max_with(init_max)
        nz_cpu = max(nz_cpu, init_max.cpu)
        nz_mem = max(nz_mem, init_max.memory)
    overhead = spec.get("overhead")
    if overhead:
        o = Resources.from_list(overhead)
        total.add(o)
        nz_cpu += o.cpu
        nz_mem += o.memory
    return total, nz_cpu, nz_mem


def host_ports(spec: Obj) -> list[tuple[str, str, int]]:
    out = []
    for c in spec.get("containers") or ():
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", hp))
    return out


class AffinityTerm:
    """A parsed PodAffinityTerm: which pods (selector, namespaces) and the
    topology key. ``namespaces`` empty and no namespace selector means the
    pod's own namespace, as kube's defaulting does."""

    __slots__ = ("selector", "namespaces", "ns_selector", "topology_key", "weight")

    def __init__(self, term: Obj, own_ns: str, weight: int = 0):
        try:
            self.selector = labels.from_label_selector(term.get("labelSelector"))
        except labels.SelectorError:
            self.selector = labels.nothing()
        nss = set(term.get("namespaces") or ())
        nsel = term.get("namespaceSelector")
        self.ns_selector = None
        if nsel is not None:
            try:
                self.ns_selector = labels.from_label_selector(nsel)
            except labels.SelectorError:
                self.ns_selector = labels.nothing()
        if not nss and nsel is None:
            nss = {own_ns}
        self.namespaces = nss
        self.topology_key = term.get("topologyKey") or ""
        self.weight = weight

    def matches(self, pod: "PodInfo", ns_labels: dict[str, str] | None) -> bool:
        if pod.namespace not in self.namespaces:
            if self.ns_selector is None or ns_labels is None or not self.ns_selector.matches(ns_labels):
                return False
        return self.selector.matches(pod.labels)


def _terms(aff: Obj | None, own_ns: str) -> tuple[list[AffinityTerm], list[AffinityTerm]]:
    if not aff:
        return [], []
    req = [AffinityTerm(t, own_ns) for t in aff.get("requiredDuringSchedulingIgnoredDuringExecution") or ()]
    pref = [AffinityTerm(w.get("podAffinityTerm") or {}, own_ns, w.get("weight") or 0)
            for w in aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
    return req, pref


class PodInfo:
    __slots__ = ("pod", "key", "uid", "namespace", "name", "labels", "priority", "req", "nz_cpu",
                 "nz_mem", "ports", "affinity", "anti_affinity", "pref_affinity", "pref_anti_affinity",
                 "node_name", "tolerations", "timestamp", "attempts", "unschedulable_plugins",
                 "pending_plugins", "backoff_until", "initial_attempt", "cycle", "gated")

    def __init__(self, pod: Obj):
        md = pod["metadata"]
        spec = pod.get("spec") or {}
        self.namespace = md.get("namespace") or ""
        self.name = md["name"]
        self.key = f"{self.namespace}/{self.name}"
        self.uid = md.get("uid") or self.key
        self.req, self.nz_cpu, self.nz_mem = pod_requests(spec)
        self.ports = host_ports(spec)
        aff = spec.get("affinity") or {}
        self.affinity, self.pref_affinity = _terms(aff.get("podAffinity"), self.namespace)
        self.anti_affinity, self.pref_anti_affinity = _terms(aff.get("podAntiAffinity"), self.namespace)
        # queue bookkeeping
        self.timestamp = 0.0
        self.initial_attempt = 0.0
        self.attempts = 0
        self.unschedulable_plugins: set[str] = set()
        self.pending_plugins: set[str] = set()
        self.backoff_until = 0.0
        self.cycle = 0
        self.set_pod(pod)

    def set_pod(self, pod: Obj) -> None:
        """A new version of the same pod: only the mutable parts change."""
        self.pod = pod
        md = pod["metadata"]
        spec = pod.get("spec") or {}
        self.labels = md.get("labels") or {}
        self.priority = spec.get("priority") or 0
        self.node_name = spec.get("nodeName") or ""
        self.tolerations = spec.get("tolerations") or ()
        self.gated = bool(spec.get("schedulingGates"))

    @property
    def has_affinity(self) -> bool:
        return bool(self.affinity or self.pref_affinity or self.anti_affinity or self.pref_anti_affinity)


class NodeInfo:
    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "alloc", "requested",
                 "nz_cpu", "nz_mem", "pods", "ports", "affinity_pods", "anti_affinity_pods",
                 "generation", "_alloc_src", "free_cpu", "free_mem", "free_eph", "free_pods", "memo")

    def __init__(self, name: str):
        self.name = name
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: list[Obj] = []
        self.unschedulable = False
        self.alloc = Resources()
        self._alloc_src: Obj | None = None
        self.requested = Resources()
        self.nz_cpu = self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[tuple[str, str, int], int] = {}
        self.affinity_pods: dict[str, PodInfo] = {}  # pods with any pod (anti-)affinity
        self.anti_affinity_pods: dict[str, PodInfo] = {}  # with required anti-affinity
        self.generation = 0
        # what is left (allocatable - requested), for the filters' hot path, and
        # per-node results that plugins memoize until the node changes
        self.free_cpu = self.free_mem = self.free_eph = self.free_pods = 0
        self.memo: dict[Any, Any] = {}

    def _changed(self) -> None:
        self.generation += 1
        a, r = self.alloc, self.requested
        self.free_cpu = a.cpu - r.cpu
        self.free_mem = a.memory - r.memory
        self.free_eph = a.ephemeral - r.ephemeral
        self.free_pods = a.pods - len(self.pods)
        if self.memo:
            self.memo = {}

    def set_node(self, node: Obj) -> None:
        self.node = node
        self.labels = node["metadata"].get("labels") or {}
        spec = node.get("spec") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = (node.get("status") or {}).get("allocatable") or {}
        if alloc != self._alloc_src:
            self._alloc_src = alloc
            self.alloc = Resources.from_list(alloc)
        self._changed()

    def add_pod(self, p: PodInfo) -> None:
        if p.uid in self.pods:
            self.remove_pod(self.pods[p.uid])
        self.pods[p.uid] = p
        self.requested.add(p.req)
        self.nz_cpu += p.nz_cpu
        self.nz_mem += p.nz_mem
        for port in p.ports:
            self.ports[port] = self.ports.get(port, 0) + 1
        if p.has_affinity:
            self.affinity_pods[p.uid] = p
            if p.anti_affinity:
                self.anti_affinity_pods[p.uid] = p
        self._changed()

    def remove_pod(self, p: PodInfo) -> bool:
        p = self.pods.pop(p.uid, None)  # type: ignore[assignment]
        if p is None:
            return False
        self.requested.add(p.req, -1)
        self.nz_cpu -= p.nz_cpu
        self.nz_mem -= p.nz_mem
        for port in p.ports:
            n = self.ports.get(port, 0) - 1
            if n > 0:
                self.ports[port] = n
            else:
                self.ports.pop(port, None)
        self.affinity_pods.pop(p.uid, None)
        self.anti_affinity_pods.pop(p.uid, None)
        self._changed()
        return True

    def clone(self) -> "NodeInfo":
        """A copy whose pods can be removed (preemption's what-if)."""
        c = NodeInfo(self.name)
        c.node, c.labels, c.taints, c.unschedulable = self.node, self.labels, self.taints, self.unschedulable
        c.alloc, c._alloc_src = self.alloc, self._alloc_src
        c.requested = self.requested.copy()
        c.nz_cpu, c.nz_mem = self.nz_cpu, self.nz_mem
        c.pods = dict(self.pods)
        c.ports = dict(self.ports)
        c.affinity_pods = dict(self.affinity_pods)
        c.anti_affinity_pods = dict(self.anti_affinity_pods)
        c._changed()
        return c
