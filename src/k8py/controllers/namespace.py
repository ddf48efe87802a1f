"""The namespace controller, as kube's: empties a Terminating namespace, then
removes the ``kubernetes`` finalizer through ``namespaces/<name>/finalize``
(the API server then removes the namespace).

For each namespaced kind that can be deleted (the preferred version of every
group, as discovery lists them) it deletes the collection (or, without
``deletecollection``, each item) with background propagation, then lists
what is left.  Pods still terminating within their grace period, and
objects held by finalizers, are waited for: the namespace is looked at
again after a few seconds.  The namespace's status conditions say how it
goes, with kube's types, reasons and messages
(NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
NamespaceDeletionContentFailure, NamespaceContentRemaining,
NamespaceFinalizersRemaining)."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable

from ..api.registry import REGISTRY, Resource
from ..client.controller import Controller
from ..client.rest import APIError, is_conflict, is_not_found, resource
from ..client.timeutil import now_rfc3339, parse_time
from .context import ControllerContext, register

log = logging.getLogger(__name__)

NAMESPACES = resource("namespaces")
PODS = resource("pods")
FINALIZER = "kubernetes"
# kube waits 5 s after a namespace event so that every API server of an HA
# control plane has seen the deletion; ours has one API server
DELETION_DELAY = 1.0
RECHECK_MAX = 3.0  # wait at most this long before looking at a terminating namespace again
FINALIZER_ESTIMATE = 15  # seconds kube allows for finalizers of items pending deletion

CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                   "NamespaceFinalizersRemaining")
OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted",
                                        "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentRemoved", "All content successfully removed"),
}


class ResourcesRemaining(Exception):
    def __init__(self, estimate: int):
        self.estimate = estimate
        super().__init__(f"some content remains in the namespace, estimate {estimate} seconds before it is removed")


def deletable_resources() -> list[Resource]:
    """Every namespaced kind with ``delete``, in its group's preferred version."""
    out, seen = [], set()
    for r in REGISTRY.resources:
        gr = ("" if r.storage_group == "core" else r.storage_group or r.group, r.plural)
        if not r.namespaced or "delete" not in r.verbs or gr in seen:
            continue
        seen.add(gr)
        out.append(resource(f"{r.plural}.{r.group}" if r.group else r.plural))
    return out


@dataclass
class Remaining:
    estimate: int = 0
    count: int = 0
    finalizers: dict[str, int] = field(default_factory=dict)


@register("namespace")
class NamespaceController(Controller):
    name = "namespace"
    workers = 10  # kube's --concurrent-namespace-syncs

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.workers = ctx.options.workers.get(self.name, self.workers)
        self.resources = deletable_resources()
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.namespaces.add_handler(self._on_namespace, lambda old, new: self._on_namespace(new))

    def _on_namespace(self, ns: dict[str, Any]) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.queue.add_after(ns["metadata"]["name"], DELETION_DELAY)

    async def sync(self, key: Hashable) -> None:
        name = str(key)
        if self.namespaces.store.get(name) is None:
            return
        try:
            await self.delete(name)
        except ResourcesRemaining as e:
            delay = min(max(e.estimate / 2, 0.5), RECHECK_MAX)
            log.debug("namespace %s: %s; again in %.1fs", name, e, delay)
            self.queue.add_after(name, delay)

    # ---- kube's namespacedResourcesDeleter.Delete ----------------------------

    async def delete(self, name: str) -> None:
        try:
            ns = await self.client.get(NAMESPACES, name)
        except APIError as e:
            if is_not_found(e):
                return
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return
        ns = await self._retry(ns, self._set_terminating)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if not (ns.get("spec") or {}).get("finalizers"):
            return  # already finalized
        estimate, ns = await self.delete_all_content(ns)
        if estimate > 0:
            raise ResourcesRemaining(estimate)
        await self._retry(ns, self._finalize)

    async def _retry(self, ns: dict[str, Any],
                     write: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
        """kube's retryOnConflictError: on a conflict, re-read and write again."""
        while True:
            try:
                return await write(ns)
            except APIError as e:
                if is_not_found(e):
                    return None
                if not is_conflict(e):
                    raise
            latest = await self.client.get(NAMESPACES, ns["metadata"]["name"])
            if latest["metadata"].get("uid") != ns["metadata"].get("uid"):
                raise RuntimeError("namespace uid has changed across retries")
            ns = latest

    async def _set_terminating(self, ns: dict[str, Any]) -> dict[str, Any]:
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ns
        ns = copy.deepcopy(ns)
        ns.setdefault("status", {})["phase"] = "Terminating"
        return await self.client.update_status(NAMESPACES, ns)

    async def _finalize(self, ns: dict[str, Any]) -> dict[str, Any]:
        spec = dict(ns.get("spec") or {})
        spec["finalizers"] = sorted({f for f in spec.get("finalizers") or [] if f != FINALIZER})
        log.info("namespace %s: content removed; finalizing", ns["metadata"]["name"])
        return await self.client.update(NAMESPACES, dict(ns, spec=spec), "finalize")

    async def delete_all_content(self, ns: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = ns["metadata"]["name"]
        deleted_at = parse_time(ns["metadata"].get("deletionTimestamp")) or time.time()
        estimate = 0
        errs: list[str] = []
        by_resource: dict[str, int] = {}
        by_finalizer: dict[str, int] = {}
        for r in self.resources:
            try:
                rem = await self.delete_content(r, name, deleted_at)
            except APIError as e:
                errs.append(str(e.status.get("message") or e))
                continue
            except _Unexpected as e:
                errs.append(str(e))
                rem = e.remaining
            estimate = max(estimate, rem.estimate)
            if rem.count:
                by_resource[f"{r.plural}.{r.group}"] = rem.count
                for f, c in rem.finalizers.items():
                    by_finalizer[f] = by_finalizer.get(f, 0) + c
        ns = await self._update_conditions(ns, content_conditions(by_resource, by_finalizer, errs))
        if errs:
            raise RuntimeError("; ".join(sorted(errs)))
        return estimate, ns

    async def delete_content(self, r: Resource, ns: str, deleted_at: float) -> Remaining:
        estimate = 0
        if r.kind == "Pod" and not r.group:
            estimate = await self._pod_estimate(ns, deleted_at)
        if "deletecollection" in r.verbs:
            await self.client.delete_collection(r, ns, propagation="Background")
        elif "list" in r.verbs:
            for item in (await self.client.list(r, ns)).get("items") or ():
                try:
                    await self.client.delete(r, item["metadata"]["name"], ns, propagation="Background")
                except APIError as e:
                    if e.code not in (404, 405):
                        raise
        if "list" not in r.verbs:
            return Remaining(estimate)
        items = (await self.client.list(r, ns)).get("items") or []
        if not items:
            return Remaining()
        fins: dict[str, int] = {}
        for it in items:
            for f in it["metadata"].get("finalizers") or ():
                fins[f] = fins.get(f, 0) + 1
        if estimate:
            return Remaining(estimate, len(items), fins)
        if fins:
            return Remaining(FINALIZER_ESTIMATE, len(items), fins)
        raise _Unexpected(Remaining(0, len(items)),
                          f"unexpected items still remain in namespace: {ns} for gvr: "
                          f"{r.group}/{r.version}, Resource={r.plural}")

    async def _pod_estimate(self, ns: str, deleted_at: float) -> int:
        """The longest grace period of the namespace's unfinished pods, if
        the namespace's deletion is younger than that."""
        estimate = 0
        for pod in (await self.client.list(PODS, ns)).get("items") or ():
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if grace is not None and grace > estimate:
                estimate = int(grace)
        if time.time() - deleted_at >= estimate:
            return 0
        return estimate

    async def _update_conditions(self, ns: dict[str, Any],
                                 new: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
        """Sets every condition this controller keeps; writes only on a change."""
        orig, ns = ns, copy.deepcopy(ns)
        status = ns.setdefault("status", {})
        conds = status.setdefault("conditions", [])
        changed = False
        now = now_rfc3339()
        for t in CONDITION_TYPES:
            st, reason, msg = new.get(t) or ("False", *OK[t])
            old = next((c for c in conds if c.get("type") == t), None)
            if old is None:
                conds.append({"type": t, "status": st, "lastTransitionTime": now, "reason": reason, "message": msg})
                changed = True
            elif (old.get("status"), old.get("reason"), old.get("message")) != (st, reason, msg):
                if old.get("status") != st:
                    old["lastTransitionTime"] = now
                old.update(status=st, reason=reason, message=msg)
                changed = True
        if not changed:
            return orig
        try:
            return await self.client.update_status(NAMESPACES, ns)
        except APIError as e:
            log.info("couldn't update status condition for namespace %r: %s", ns["metadata"]["name"], e)
            return orig


class _Unexpected(Exception):
    def __init__(self, remaining: Remaining, message: str):
        self.remaining = remaining
        super().__init__(message)


def content_conditions(by_resource: dict[str, int], by_finalizer: dict[str, int],
                       errs: list[str]) -> dict[str, tuple[str, str, str]]:
    """The failing conditions (status, reason, message) by type; the rest are OK."""
    out: dict[str, tuple[str, str, str]] = {}
    if by_resource:
        parts = sorted(f"{k} has {v} resource instances" for k, v in by_resource.items() if v)
        out["NamespaceContentRemaining"] = ("True", "SomeResourcesRemain",
                                            f"Some resources are remaining: {', '.join(parts)}")
    if by_finalizer:
        parts = sorted(f"{k} in {v} resource instances" for k, v in by_finalizer.items() if v)
        out["NamespaceFinalizersRemaining"] = ("True", "SomeFinalizerRemain",
                                               f"Some finalizers are remaining: {', '.join(parts)}")
    if errs:
        out["NamespaceDeletionContentFailure"] = (
            "True", "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(errs)} remaining: {', '.join(sorted(errs))}")
    return out

