"""Small builders for scheduler unit tests: ``make_pod(cpu="1")``,
``make_node("n1", cpu="4")``, and a ``Scheduler`` with no API server."""

from __future__ import annotations

import itertools
from typing import Any

from k8py.scheduler.scheduler import Scheduler

_uid = itertools.count()


def make_pod(name: str = "", ns: str = "default", *, cpu: str | None = None, memory: str | None = None,
             node: str = "", labels: dict | None = None, priority: int = 0, **spec: Any) -> dict:
    name = name or f"p{next(_uid)}"
    req = {}
    if cpu:
        req["cpu"] = cpu
    if memory:
        req["memory"] = memory
    extra = spec.pop("requests", None)
    if extra:
        req.update(extra)
    container: dict[str, Any] = {"name": "c", "image": "pause"}
    if req:
        container["resources"] = {"requests": req}
    ports = spec.pop("ports", None)
    if ports:
        container["ports"] = ports
    s: dict[str, Any] = {"containers": [container], "schedulerName": "default-scheduler", "priority": priority}
    if node:
        s["nodeName"] = node
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}-{next(_uid)}",
                         "labels": labels or {}},
            "spec": s, "status": {"phase": "Pending"}}


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
              taints: list | None = None, unschedulable: bool = False, extra: dict | None = None) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi", **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec, "status": {"capacity": dict(alloc), "allocatable": alloc}}


def offline_scheduler(nodes: list[dict], pods: list[dict] = ()) -> Scheduler:  # type: ignore[assignment]
    s = Scheduler(None, None)
    for n in nodes:
        s.on_node_add(n)
    for p in pods:
        s.on_pod_add(p)
    return s
