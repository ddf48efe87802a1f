"""Per-kind write strategy, as kube's registry strategies do it: what a
create resets, what an update of the main resource or of a subresource may
change, when ``metadata.generation`` moves, how deletion is graceful.

Functions take and return plain dicts; ``old`` is never mutated.
"""

from __future__ import annotations

import copy
import os
import random
from typing import Any

from ..api.registry import Resource

# Kinds whose strategy keeps metadata.generation (bumped on spec changes).
GENERATION_KINDS = frozenset({
    "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController",
    "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy",
})
# Metadata a client cannot set on create/update: the server owns it.
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "selfLink")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choices(_NAME_CHARS, k=5))


_uid_pool: list[str] = []


def new_uid() -> str:
    """A random (version 4) UUID; made in batches, since uuid4() is slow."""
    if not _uid_pool:
        raw = os.urandom(16 * 256)
        for i in range(0, len(raw), 16):
            b = bytearray(raw[i:i + 16])
            b[6] = (b[6] & 0x0F) | 0x40
            b[8] = (b[8] & 0x3F) | 0x80
            h = b.hex()
            _uid_pool.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return _uid_pool.pop()


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _qos_class(pod: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in lim or (name in req and str(req[name]) != str(lim[name])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_create(r: Resource, obj: dict[str, Any], now: str) -> None:
    md = obj.setdefault("metadata", {})
    for k in _SERVER_META:
        md.pop(k, None)
    md.pop("resourceVersion", None)
    md["uid"] = new_uid()
    md["creationTimestamp"] = now
    if r.kind in GENERATION_KINDS:
        md["generation"] = 1
    if r.kind == "DaemonSet":
        _set_template_generation(obj, 1)
    if "status" in r.subresources and r.kind != "Node":
        if r.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
        elif r.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif r.kind == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Pending"}
        elif r.kind == "PersistentVolume":
            obj["status"] = {"phase": "Pending"}
        elif r.kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        elif r.kind in _EMPTY_STATUS:
            obj["status"] = copy.deepcopy(_EMPTY_STATUS[r.kind])
        else:
            obj.pop("status", None)


# What a new object's status is, for kinds whose strategy does not just clear it.
_EMPTY_STATUS: dict[str, dict[str, Any]] = {
    "HorizontalPodAutoscaler": {"currentReplicas": 0, "desiredReplicas": 0},
    "Deployment": {}, "Job": {}, "CronJob": {}, "ResourceQuota": {},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                  "numberReady": 0},
    "ReplicaSet": {"replicas": 0},
    "ReplicationController": {"replicas": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                            "expectedPods": 0},
    "Ingress": {"loadBalancer": {}},
}


def prepare_update(r: Resource, new: dict[str, Any], old: dict[str, Any]) -> None:
    """An update of the main resource: keep what the server owns, keep status
    (only the status subresource writes it), bump generation on spec change."""
    md = new.setdefault("metadata", {})
    omd = old.get("metadata") or {}
    for k in _SERVER_META:
        if k in omd:
            md[k] = omd[k]
        else:
            md.pop(k, None)
    if "status" in r.subresources:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if r.kind in GENERATION_KINDS and _spec_of(new) != _spec_of(old):
        md["generation"] = int(omd.get("generation") or 1) + 1
    if r.kind == "DaemonSet":
        gen = int((omd.get("annotations") or {}).get(DS_TEMPLATE_GENERATION) or 1)
        template_changed = (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template")
        _set_template_generation(new, gen + 1 if template_changed else gen)


# apps/v1 shows a DaemonSet's spec.templateGeneration as this annotation; the
# strategy owns it: 1 on create, +1 whenever the pod template changes.
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _set_template_generation(obj: dict[str, Any], gen: int) -> None:
    md = obj.setdefault("metadata", {})
    md["annotations"] = dict(md.get("annotations") or {}, **{DS_TEMPLATE_GENERATION: str(gen)})


def prepare_status_update(r: Resource, body: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A write through ``/status``: everything but status (and the metadata a
    status writer may not change) comes from ``old``."""
    new = dict(old)
    new["metadata"] = dict(old.get("metadata") or {})
    if "status" in body:
        new["status"] = body["status"]
    else:
        new.pop("status", None)
    bmd = body.get("metadata") or {}
    if "managedFields" in bmd:
        new["metadata"]["managedFields"] = bmd["managedFields"]
    if r.gk in _STATUS_WRITES_ANNOTATIONS:
        if bmd.get("annotations"):
            new["metadata"]["annotations"] = bmd["annotations"]
        else:
            new["metadata"].pop("annotations", None)
    return new


# kube's deploymentStatusStrategy resets only spec and labels: the deployment
# controller writes the revision annotation together with status
_STATUS_WRITES_ANNOTATIONS = {("apps", "Deployment")}


def prepare_finalize(body: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A write through ``namespaces/<name>/finalize``: only spec.finalizers changes."""
    new = dict(old)
    new["metadata"] = dict(old.get("metadata") or {})
    spec = dict(old.get("spec") or {})
    fin = (body.get("spec") or {}).get("finalizers")
    if fin:
        spec["finalizers"] = fin
    else:
        spec.pop("finalizers", None)
    new["spec"] = spec
    return new


def pod_is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def graceful_period(r: Resource, obj: dict[str, Any], requested: int | None) -> int:
    """Seconds to wait before removal (0: remove now). Only pods are
    graceful: a pod not yet on a node, or finished, goes at once."""
    if r.kind != "Pod":
        return 0
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or pod_is_terminal(obj):
        return 0
    if requested is None:
        requested = spec.get("terminationGracePeriodSeconds", 30)
        if requested is None:
            requested = 30
    return max(int(requested), 0)


def default_propagation(r: Resource) -> str:
    """What a DELETE without a propagation policy does to dependents: core/v1
    ReplicationControllers orphan them (as before server-side cascading
    existed); everything else leaves them to the garbage collector."""
    return "Orphan" if r.kind == "ReplicationController" and not r.group else "Background"


def gc_finalizers(r: Resource, current: list[str], policy: str | None) -> list[str]:
    """The finalizers an object gets when deleted with ``policy`` (kube's
    deletionFinalizersForGarbageCollection): ``orphan`` or
    ``foregroundDeletion`` as the policy says; with no policy, the one the
    object already has, else the kind's default."""
    if policy == "Orphan":
        orphan, foreground = True, False
    elif policy in ("Foreground", "Background"):
        orphan, foreground = False, policy == "Foreground"
    else:
        foreground = "foregroundDeletion" in current
        orphan = "orphan" in current or (not foreground and default_propagation(r) == "Orphan")
    out = [f for f in current if f not in ("orphan", "foregroundDeletion")]
    if orphan:
        out.append("orphan")
    if foreground:
        out.append("foregroundDeletion")
    return list(current) if set(out) == set(current) else out
