"""The taint-eviction controller (kube's TaintEvictionController): pods on
a node with NoExecute taints are deleted — at once when a taint is not
tolerated, else after the smallest tolerationSeconds of the tolerations
that match (never, when none of those sets tolerationSeconds).

The clock of a pod starts when this controller first sees it under the
node's NoExecute taints, and is dropped when the taints go (an eviction
not yet due is cancelled, with an event).  Before deleting, the pod gets
the DisruptionTarget condition (reason DeletionByTaintManager), and a
TaintManagerEviction event "Marking for deletion Pod ns/name"."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..client.controller import Controller
from ..client.rest import APIError, resource
from ..client.timeutil import now_rfc3339
from .context import ControllerContext, register
from .nodelifecycle import POD_NODE_INDEX, pods_by_node

log = logging.getLogger(__name__)
PODS = resource("pods")
Obj = dict[str, Any]


def tolerates(tol: Obj, taint: Obj) -> bool:
    """kube's Toleration.ToleratesTaint."""
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("key") and tol["key"] != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")


def no_execute(node: Obj | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or () if t.get("effect") == "NoExecute"]


def toleration_time(tolerations: list[Obj], taints: list[Obj]) -> float | None:
    """Seconds the pod may stay: 0 if a taint is not tolerated, None for
    ever, else the least tolerationSeconds among the matching tolerations."""
    used = []
    for taint in taints:
        match = [t for t in tolerations if tolerates(t, taint)]
        if not match:
            return 0.0
        used.extend(match)
    least = None
    for t in used:
        s = t.get("tolerationSeconds")
        if s is None:
            continue
        s = max(float(s), 0.0)
        least = s if least is None else min(least, s)
    return least


@register("taint-eviction-controller")
class TaintEvictionController(Controller):
    name = "taint-eviction-controller"
    workers = 4

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("taint-eviction-controller")
        self.clock = clock
        self.since: dict[str, tuple[str, float]] = {}  # pod key -> (uid, when first seen under taints)
        self.nodes = ctx.informers.informer("nodes")
        self.pods = ctx.informers.informer("pods")
        self.pods.store.add_indexer(POD_NODE_INDEX, pods_by_node)
        self.nodes.add_handler(self._node_added, self._node_updated, None)
        self.pods.add_handler(self._pod_changed, lambda old, new: self._pod_changed(new, old), self._pod_gone)

    def _node_added(self, node: Obj) -> None:
        if no_execute(node):
            self._enqueue_node(node["metadata"]["name"])

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if no_execute(old) != no_execute(new):
            self._enqueue_node(new["metadata"]["name"])

    def _enqueue_node(self, name: str) -> None:
        for k in self.pods.store.keys_by_index(POD_NODE_INDEX, name):
            self.enqueue(k)

    def _pod_changed(self, pod: Obj, old: Obj | None = None) -> None:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            return
        if old is not None and (old.get("spec") or {}).get("nodeName") == node \
                and (old.get("spec") or {}).get("tolerations") == spec.get("tolerations") \
                and not self.since.get(_key(pod)):
            return  # status changes do not matter unless an eviction is pending
        if no_execute(self.nodes.store.get(node)) or _key(pod) in self.since:
            self.enqueue(_key(pod))

    def _pod_gone(self, pod: Obj) -> None:
        self.since.pop(_key(pod), None)

    async def sync(self, key: Any) -> None:
        key = str(key)
        pod = self.pods.store.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self.since.pop(key, None)
            return
        uid = pod["metadata"]["uid"]
        taints = no_execute(self.nodes.store.get((pod.get("spec") or {}).get("nodeName") or ""))
        allowed = toleration_time((pod.get("spec") or {}).get("tolerations") or [], taints) if taints else None
        seen = self.since.get(key)
        if not taints or allowed is None:
            if seen is not None:
                self.since.pop(key, None)
                self.recorder.normal(pod, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")
            return
        now = self.clock()
        if seen is None or seen[0] != uid:
            seen = self.since[key] = (uid, now)
        due = seen[1] + allowed
        if now < due:
            self.queue.add_after(key, due - now)
            return
        await self._evict(pod, key)

    async def _evict(self, pod: Obj, key: str) -> None:
        md = pod["metadata"]
        self.recorder.normal(pod, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        conds = [c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                      "message": "Taint manager: deleting due to NoExecute taint",
                      "lastTransitionTime": now_rfc3339()})
        try:
            await self.client.patch(PODS, md["name"], {"metadata": {"uid": md["uid"]},
                                                       "status": {"conditions": conds}},
                                    md["namespace"], subresource="status")
            await self.client.delete(PODS, md["name"], md["namespace"], uid=md["uid"])
        except APIError as e:
            if e.code not in (404, 409):
                raise
        self.since.pop(key, None)


def _key(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
