"""Shapes a kubelet reports, shared by the real kubelet and the hollow
(simulated) one: the version, the node Lease, the --node-labels and
--register-with-taints flag formats, and the pod conditions in kubelet's
order, each keeping its lastTransitionTime while unchanged."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40


def parse_labels(s: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in s.split(","))):
        k, _, v = part.partition("=")
        out[k] = v
    return out


def parse_taints(s: str) -> list[dict[str, str]]:
    """``key=value:Effect`` or ``key:Effect``, comma-separated (kubelet's --register-with-taints)."""
    out = []
    for part in filter(None, (p.strip() for p in s.split(","))):
        kv, sep, effect = part.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"invalid taint {part!r}: want key=value:Effect")
        k, _, v = kv.partition("=")
        t = {"key": k, "effect": effect}
        if v:
            t["value"] = v
        out.append(t)
    return out


def _cond(typ: str, status: str, now: str, old: dict[str, Obj], reason: str = "", message: str = "") -> Obj:
    prev = old.get(typ)
    ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    c: Obj = {"type": typ, "status": status, "lastTransitionTime": ltt or now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def conditions(old_list: list[Obj] | None, now: str, *, sandbox: bool, initialized: bool,
               ready: bool, not_ready: list[str], terminal: str = "") -> list[Obj]:
    """``terminal`` is "Succeeded" or "Failed" once the pod is done."""
    old = {c.get("type", ""): c for c in old_list or ()}
    init_reason = "PodCompleted" if terminal == "Succeeded" else ""
    if terminal:
        why = "PodCompleted" if terminal == "Succeeded" else "PodFailed"
        ready_c = _cond("Ready", "False", now, old, why)
        cready_c = _cond("ContainersReady", "False", now, old, why)
    elif ready:
        ready_c = _cond("Ready", "True", now, old)
        cready_c = _cond("ContainersReady", "True", now, old)
    else:
        msg = f"containers with unready status: [{' '.join(not_ready)}]"
        ready_c = _cond("Ready", "False", now, old, "ContainersNotReady", msg)
        cready_c = _cond("ContainersReady", "False", now, old, "ContainersNotReady", msg)
    sched = old.get("PodScheduled")
    return [_cond("PodReadyToStartContainers", "True" if sandbox else "False", now, old),
            _cond("Initialized", "True" if initialized else "False", now, old, init_reason),
            ready_c, cready_c,
            sched if sched and sched.get("status") == "True" else _cond("PodScheduled", "True", now, old)]


def lease_object(node_name: str, node_uid: str, now_micro: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node_name, "namespace": LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                              "uid": node_uid}]},
            "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION,
                     "renewTime": now_micro}}
