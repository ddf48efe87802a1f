"""What the endpoints and endpointslice controllers share (kube's
``pkg/controller/util/endpoint`` and ``endpointslice/util``): which pods
belong in a Service's endpoints, how a Service port resolves to a pod port,
the services a pod event concerns, and the trigger-time tracker behind the
``endpoints.kubernetes.io/last-change-trigger-time`` annotation."""

from __future__ import annotations

from typing import Any, Iterable

from ..api import labels
from ..client.informer import Store, key_of
from ..client.timeutil import parse_time

Obj = dict[str, Any]

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def is_pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``: not terminal, has an IP, and (unless
    terminating pods are wanted) not being deleted."""
    if is_terminal(pod):
        return False
    st = pod.get("status") or {}
    if not st.get("podIP") and not st.get("podIPs"):
        return False
    if not include_terminating and pod["metadata"].get("deletionTimestamp"):
        return False
    return True


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == svc["metadata"]["name"] \
        and pod["metadata"].get("namespace") == svc["metadata"].get("namespace")


def pod_ip(pod: Obj, family: str = "IPv4") -> str | None:
    """The pod's address of the service's IP family."""
    st = pod.get("status") or {}
    ips = [p.get("ip") for p in st.get("podIPs") or () if p.get("ip")] or (
        [st["podIP"]] if st.get("podIP") else [])
    for ip in ips:
        if (":" in ip) == (family == "IPv6"):
            return ip
    return None


def service_family(svc: Obj) -> str:
    fams = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    return fams[0]


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """``podutil.FindPort``: a named targetPort is looked up among the pod's
    container ports (same protocol); a number is itself."""
    tp = svc_port.get("targetPort")
    if tp is None or tp == "" or tp == 0:
        tp = svc_port.get("port")
    if isinstance(tp, int):
        return tp
    if isinstance(tp, str) and tp.isdigit():
        return int(tp)
    proto = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == tp and (p.get("protocol") or "TCP") == proto:
                return p.get("containerPort")
    return None


def selector_of(svc: Obj) -> labels.Selector | None:
    """The pod selector of a Service the controllers manage, None otherwise
    (no selector, or ExternalName)."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("selector") is None:
        return None
    return labels.selector_from_set(spec["selector"])


def services_for_pod(services: Store, pod: Obj) -> list[str]:
    ns = pod["metadata"].get("namespace", "")
    pod_labels = pod["metadata"].get("labels") or {}
    out = []
    for svc in services.list(ns):
        sel = selector_of(svc)
        if sel is not None and sel.matches(pod_labels):
            out.append(key_of(svc))
    return out


def pods_for_service(pods: Store, svc: Obj) -> list[Obj]:
    sel = selector_of(svc)
    if sel is None:
        return []
    return [p for p in pods.list(svc["metadata"].get("namespace", ""))
            if sel.matches(p["metadata"].get("labels") or {})]


def _endpoint_view(pod: Obj) -> tuple:
    md, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    return (st.get("podIP"), tuple(p.get("ip") for p in st.get("podIPs") or ()), is_pod_ready(pod),
            md.get("deletionTimestamp"), st.get("phase") in ("Succeeded", "Failed"), spec.get("nodeName"),
            spec.get("hostname"), spec.get("subdomain"),
            tuple(tuple((p.get("name"), p.get("containerPort"), p.get("protocol")) for p in c.get("ports") or ())
                  for c in spec.get("containers") or ()))


def pod_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(labels changed, what endpoints show changed)."""
    lab = (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {})
    return lab, lab or _endpoint_view(old) != _endpoint_view(new)


def services_for_pod_update(services: Store, old: Obj, new: Obj) -> Iterable[str]:
    lab, changed = pod_changed(old, new)
    if not changed:
        return ()
    keys = set(services_for_pod(services, new))
    if lab:
        keys.update(services_for_pod(services, old))
    return keys


class PodHandlers:
    """Pod informer handlers of a controller keyed by Service: a pod change
    enqueues the Services whose selectors match it (before or after)."""

    services: Any  # the Service informer; ``enqueue`` comes from the Controller

    def _pod_added(self, pod: Obj) -> None:
        for k in services_for_pod(self.services.store, pod):
            self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for k in services_for_pod_update(self.services.store, old, new):
            self.enqueue(k)


class TriggerTimeTracker:
    """kube's ``TriggerTimeTracker``: the time of the earliest change (to a
    pod or to the service) not yet reflected in the service's endpoints.
    A pod's trigger time is its Ready condition's transition time; the
    service's is its creation.  A time counts when it is later than the one
    seen at the previous sync."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[dict[str, float], float | None]] = {}

    @staticmethod
    def pod_trigger_time(pod: Obj) -> float | None:
        for c in (pod.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready":
                t = parse_time(c.get("lastTransitionTime"))
                return t
        return None

    def compute(self, svc_key: str, svc: Obj, pods: list[Obj]) -> float | None:
        old_pods, old_svc = self._state.get(svc_key, ({}, None))
        min_t: float | None = None
        cur: dict[str, float] = {}
        for p in pods:
            t = self.pod_trigger_time(p)
            if t is None:
                continue
            cur[p["metadata"]["name"]] = t
            if t > old_pods.get(p["metadata"]["name"], 0.0):
                min_t = t if min_t is None else min(min_t, t)
        svc_t = parse_time(svc["metadata"].get("creationTimestamp"))
        if svc_t is not None and svc_t > (old_svc or 0.0):
            min_t = svc_t if min_t is None else min(min_t, svc_t)
        self._state[svc_key] = (cur, svc_t)
        return min_t

    def forget(self, svc_key: str) -> None:
        self._state.pop(svc_key, None)


def format_trigger_time(t: float) -> str:
    """RFC 3339 with nanoseconds, trailing zeros dropped (Go's RFC3339Nano)."""
    import datetime as dt
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    frac = f"{d.microsecond:06d}".rstrip("0")
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"
