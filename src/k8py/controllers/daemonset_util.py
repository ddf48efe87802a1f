"""Pure helpers of the DaemonSet controller (kube's ``pkg/controller/daemon/util``
and ``update.go``): the default daemon tolerations, the pod template with its
revision labels, pinning a pod to a node by affinity, which nodes should run
a daemon pod, and the rolling-update arithmetic.  No I/O here."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

from ..api import nodeaffinity
from .history import POD_REVISION_LABEL

Obj = dict[str, Any]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


def default_tolerations(host_network: bool) -> list[Obj]:
    """``AddOrUpdateDaemonPodTolerations``: what every daemon pod tolerates."""
    out = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
           {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]
    out += [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoSchedule"}
            for k in ("disk-pressure", "memory-pressure", "pid-pressure", "unschedulable")]
    if host_network:
        out.append({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                    "effect": "NoSchedule"})
    return out


def template_generation(ds: Obj) -> str | None:
    return (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)


def pod_template(ds: Obj, hash_: str) -> Obj:
    """``CreatePodTemplate``: the template with default tolerations and the
    generation and revision-hash labels."""
    t = copy.deepcopy(ds["spec"]["template"])
    spec = t.setdefault("spec", {})
    tols = spec.setdefault("tolerations", [])
    for tol in default_tolerations(bool(spec.get("hostNetwork"))):
        nodeaffinity.add_toleration(tols, tol)
    labels = t.setdefault("metadata", {}).setdefault("labels", {})
    gen = template_generation(ds)
    if gen is not None:
        labels[TEMPLATE_GENERATION_LABEL] = gen
    if hash_:
        labels[POD_REVISION_LABEL] = hash_
    return t


def pin_to_node(affinity: Obj | None, node: str) -> Obj:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node
    affinity becomes the one term ``metadata.name In [node]``."""
    aff = copy.deepcopy(affinity) if affinity else {}
    na = aff.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return aff


def target_node(pod: Obj) -> str | None:
    """``GetTargetNodeName``: spec.nodeName, or the node its affinity pins it to."""
    name = pod["spec"].get("nodeName")
    if name:
        return name
    terms = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or ())
    for term in terms:
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or ()) == 1:
                return f["values"][0]
    return None


def placement(ds: Obj, template: Obj) -> Callable[[Obj], tuple[bool, bool]]:
    """``NodeShouldRunDaemonPod`` for one DaemonSet: node -> (should run,
    should continue running)."""
    spec = template.get("spec") or {}
    fits = nodeaffinity.required_affinity(template)
    tols = spec.get("tolerations") or ()
    pinned = ds["spec"]["template"].get("spec", {}).get("nodeName")

    def should_run(node: Obj) -> tuple[bool, bool]:
        if pinned and pinned != node["metadata"]["name"]:
            return False, False
        if not fits(node):
            return False, False
        taints = (node.get("spec") or {}).get("taints") or ()
        if nodeaffinity.untolerated_taint(taints, tols) is not None:
            return False, nodeaffinity.untolerated_taint(taints, tols, ("NoExecute",)) is None
        return True, True
    return should_run


def is_updated(pod: Obj, hash_: str, generation: str | None) -> bool:
    """``IsPodUpdated``: the pod carries the current hash or template generation."""
    labels = pod["metadata"].get("labels") or {}
    return bool((hash_ and labels.get(POD_REVISION_LABEL) == hash_)
                or (generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation))


def scaled(value: Any, total: int) -> int:
    """``GetScaledValueFromIntOrPercent`` rounding up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase", "")


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def oldest_first(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


ALWAYS_IN_STATUS = frozenset({"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"})


def allows_surge(ds: Obj) -> bool:
    us = ds["spec"].get("updateStrategy") or {}
    if us.get("type") != "RollingUpdate":
        return False
    surge = (us.get("rollingUpdate") or {}).get("maxSurge")
    return surge not in (None, 0, "0", "0%")


def split_by_revision(pods: list[Obj], hash_: str, gen: str | None) -> tuple[Obj | None, Obj | None] | None:
    """``findUpdatedPodsOnNode``: the node's one new and one old pod (None if more)."""
    new = old = None
    for p in pods:
        if is_terminating(p):
            continue
        if is_updated(p, hash_, gen):
            if new is not None:
                return None
            new = p
        else:
            if old is not None:
                return None
            old = p
    return new, old
