"""What the scheduler keeps of pods and nodes in its informer caches
(client-go's SetTransform, as kube-scheduler strips managedFields): the
fields its plugins, queue and events read, and nothing else, so 10,000
pods fit in a small process."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
_META = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp", "generation")
_POD_SPEC = ("nodeName", "schedulerName", "priority", "priorityClassName", "preemptionPolicy", "tolerations",
             "affinity", "nodeSelector", "topologySpreadConstraints", "schedulingGates", "overhead")
_POD_STATUS = ("phase", "nominatedNodeName", "startTime")


def _meta(md: Obj) -> Obj:
    return {k: md[k] for k in _META if k in md}


def _container(c: Obj) -> Obj:
    out: Obj = {"name": c.get("name", "")}
    req = (c.get("resources") or {}).get("requests")
    if req:
        out["resources"] = {"requests": req}
    ports = [p for p in c.get("ports") or () if p.get("hostPort")]
    if ports:
        out["ports"] = ports
    if c.get("restartPolicy"):
        out["restartPolicy"] = c["restartPolicy"]
    return out


def trim_pod(pod: Obj) -> Obj:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    s = {k: spec[k] for k in _POD_SPEC if k in spec}
    s["containers"] = [_container(c) for c in spec.get("containers") or ()]
    if spec.get("initContainers"):
        s["initContainers"] = [_container(c) for c in spec["initContainers"]]
    st = {k: status[k] for k in _POD_STATUS if k in status}
    conds = [c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"]
    if conds:
        st["conditions"] = conds
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(pod.get("metadata") or {}), "spec": s,
            "status": st}


def trim_node(node: Obj) -> Obj:
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return {"kind": "Node", "apiVersion": "v1", "metadata": _meta(node.get("metadata") or {}),
            "spec": {k: spec[k] for k in ("taints", "unschedulable") if k in spec},
            "status": {"allocatable": status.get("allocatable") or {},
                       "conditions": [{"type": c.get("type"), "status": c.get("status")}
                                      for c in status.get("conditions") or ()]}}
