"""Pod garbage collection, as kube's PodGCController: every 20 seconds

* terminated pods (Succeeded/Failed) over ``--terminated-pod-gc-threshold``
  are deleted, evicted ones first, then oldest first;
* terminating pods on a node that is not Ready and carries the
  ``node.kubernetes.io/out-of-service`` taint are deleted;
* pods bound to a node that no longer exists -- missing from the cache for
  a 40-second quarantine and then confirmed absent by a live GET -- are
  marked Failed with the DisruptionTarget condition (DeletionByPodGC) and
  deleted;
* terminating pods never scheduled to a node are deleted.

"Deleted" is kube's markFailedAndDeletePod: a pod not yet terminal is first
patched to phase Failed (it may have no kubelet left to do it), then deleted
with a zero grace period."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Hashable

from ..client.controller import Controller
from ..client.rest import STRATEGIC, APIError, is_not_found, resource
from ..client.timeutil import now_rfc3339
from .context import ControllerContext, register

log = logging.getLogger(__name__)

PODS = resource("pods")
NODES = resource("nodes")
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
KEY = "gc"


def is_terminated(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown", None, "")


def is_evicted(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Failed" and st.get("reason") == "Evicted"


def gc_order(pod: dict[str, Any]) -> tuple:
    """Evicted pods first, then by creation time, then by name."""
    md = pod["metadata"]
    return (not is_evicted(pod), md.get("creationTimestamp") or "", md.get("name", ""))


def node_ready(node: dict[str, Any]) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


@register("pod-garbage-collector")
class PodGCController(Controller):
    name = "pod-garbage-collector"

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.client = ctx.client
        self.threshold = ctx.options.terminated_pod_gc_threshold
        self.period = ctx.options.pod_gc_check_period
        self.quarantine = ctx.options.pod_gc_quarantine
        self.clock = clock
        self.pods = ctx.informers.informer(PODS)
        self.nodes = ctx.informers.informer(NODES)
        self.missing_since: dict[str, float] = {}  # node name -> when first missed (kube's nodeQueue)

    async def run(self) -> None:
        self.queue.add(KEY)
        await super().run()

    async def sync(self, key: Hashable) -> None:
        try:
            await self.gc()
        finally:
            self.queue.add_after(KEY, self.period)

    async def gc(self) -> None:
        pods = self.pods.store.list()
        if self.threshold > 0:
            await self.gc_terminated(pods)
        await self.gc_terminating(pods)
        await self.gc_orphaned(pods)
        await self.gc_unscheduled_terminating(pods)

    async def gc_terminated(self, pods: list[dict[str, Any]]) -> None:
        terminated = [p for p in pods if is_terminated(p)]
        n = len(terminated) - self.threshold
        if n <= 0:
            return
        log.info("pod-garbage-collector: garbage collecting %d pods", n)
        terminated.sort(key=gc_order)
        await self._each(terminated[:n])

    async def gc_terminating(self, pods: list[dict[str, Any]]) -> None:
        doomed = []
        for p in pods:
            if not p["metadata"].get("deletionTimestamp"):
                continue
            node = self.nodes.store.get((p.get("spec") or {}).get("nodeName") or "")
            if node is None:
                continue
            if not node_ready(node) and any(t.get("key") == OUT_OF_SERVICE
                                            for t in (node.get("spec") or {}).get("taints") or ()):
                doomed.append(p)
        if doomed:
            doomed.sort(key=gc_order)
            await self._each(doomed)

    async def gc_orphaned(self, pods: list[dict[str, Any]]) -> None:
        now = self.clock()
        missing: set[str] = set()
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node and self.nodes.store.get(node) is None:
                missing.add(node)
                self.missing_since.setdefault(node, now)
        deleted: set[str] = set()
        for node, since in list(self.missing_since.items()):
            if node not in missing or self.nodes.store.get(node) is not None:
                del self.missing_since[node]
                continue
            if now - since < self.quarantine:
                continue
            try:
                await self.client.get(NODES, node)
                del self.missing_since[node]  # it exists after all
            except APIError as e:
                if not is_not_found(e):
                    log.info("pod-garbage-collector: error while getting node %s: %s", node, e)
                    continue
                deleted.add(node)
                del self.missing_since[node]
        if not deleted:
            return
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists"}
        orphans = [p for p in pods if (p.get("spec") or {}).get("nodeName") in deleted]
        for p in orphans:
            log.info("pod-garbage-collector: found orphaned pod %s/%s assigned to the node %s, deleting",
                     p["metadata"].get("namespace"), p["metadata"]["name"], p["spec"]["nodeName"])
        await self._each(orphans, cond)

    async def gc_unscheduled_terminating(self, pods: list[dict[str, Any]]) -> None:
        doomed = [p for p in pods
                  if p["metadata"].get("deletionTimestamp") and not (p.get("spec") or {}).get("nodeName")]
        await self._each(doomed)

    async def _each(self, pods: list[dict[str, Any]], condition: dict[str, Any] | None = None) -> None:
        sem = asyncio.Semaphore(32)

        async def one(p: dict[str, Any]) -> None:
            async with sem:
                try:
                    await self.mark_failed_and_delete(p, condition)
                except APIError as e:
                    if not is_not_found(e):
                        log.info("pod-garbage-collector: deleting %s/%s: %s",
                                 p["metadata"].get("namespace"), p["metadata"]["name"], e)

        await asyncio.gather(*(one(p) for p in pods))

    async def mark_failed_and_delete(self, pod: dict[str, Any], condition: dict[str, Any] | None) -> None:
        md = pod["metadata"]
        ns, name = md.get("namespace"), md["name"]
        log.info("pod-garbage-collector: force deleting pod %s/%s", ns, name)
        if not is_terminated(pod):
            status: dict[str, Any] = {"phase": "Failed"}
            if condition is not None:
                status["conditions"] = [dict(condition, lastTransitionTime=now_rfc3339())]
            await self.client.patch(PODS, name, {"metadata": {"uid": md.get("uid")}, "status": status}, ns,
                                    content_type=STRATEGIC, subresource="status")
        await self.client.delete(PODS, name, ns, grace_period=0)
