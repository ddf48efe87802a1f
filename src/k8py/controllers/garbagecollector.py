"""The garbage collector, as kube's: deletes objects whose owners are gone,
orphans dependents of owners deleted with ``propagationPolicy: Orphan``, and
carries out foreground deletion.

Every listable, watchable, deletable kind in the registry (events aside, as
kube ignores them) is monitored through the process's shared informers; the
handlers keep the dependency graph (:mod:`.gcgraph`) up to date and put work
on one queue whose keys are ``("delete", uid)`` (kube's attemptToDelete) and
``("orphan", uid)`` (attemptToOrphan).

Before deleting anything the collector checks, as kube does, that each owner
really is absent: an owner missing from the informer cache is fetched from
the API server by name and compared by uid; absent owners are remembered in
a small LRU.  The dependent itself comes from the cache and is deleted with
uid and resourceVersion preconditions, so a stale cache cannot delete an
object that was adopted meanwhile.

* background: no owner left -> delete the dependent (honouring its own
  ``orphan``/``foregroundDeletion`` finalizer if it has one);
* foreground: an owner with ``foregroundDeletion`` has its dependents deleted
  (a dependent that itself has dependents is deleted in the foreground too);
  when no dependent with ``blockOwnerDeletion`` is left the finalizer goes;
* orphan: the owner's uid is removed from every dependent's
  ownerReferences, then the ``orphan`` finalizer is removed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Hashable

from ..api.registry import REGISTRY, Resource
from ..client.controller import Controller
from ..client.informer import Informer
from ..client.rest import STRATEGIC, APIError, is_conflict, is_not_found, resource
from .context import ControllerContext, register
from .gcgraph import FOREGROUND, ORPHAN, AbsentCache, Graph, Identity, Node, Ref

log = logging.getLogger(__name__)

IGNORED = {("", "events"), ("events.k8s.io", "events")}
NEEDED_VERBS = ("list", "watch", "delete")


class VirtualDeleted(Exception):
    """The item is gone; a virtual delete was applied to the graph."""


class NamespacedOwnerOfClusterScoped(Exception):
    """A cluster-scoped object names a namespaced owner: never resolvable."""


class NotObserved(Exception):
    """The item exists but no informer has shown it yet: try again later."""


def monitored_resources() -> list[Resource]:
    """The preferred version of every kind the collector watches."""
    out: list[Resource] = []
    seen: set[tuple[str, str]] = set()
    for r in REGISTRY.resources:
        gr = ("" if r.storage_group == "core" else r.storage_group or r.group, r.plural)
        if gr in seen or (r.group, r.plural) in IGNORED or gr in IGNORED:
            continue
        if not all(v in r.verbs for v in NEEDED_VERBS):
            continue
        seen.add(gr)
        out.append(resource(f"{r.plural}.{r.group}" if r.group else r.plural))
    return out


def _by_group_kind() -> dict[tuple[str, str], Resource]:
    out: dict[tuple[str, str], Resource] = {}
    for r in monitored_resources():
        out[(r.group, r.kind)] = r
    return out


@register("garbage-collector")
class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 20  # kube's --concurrent-gc-syncs

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.ctx = ctx
        self.client = ctx.client
        self.workers = ctx.options.workers.get(self.name, self.workers)
        self.recorder = ctx.recorder("garbage-collector-controller")
        self.graph = Graph(self._attempt_delete, self._attempt_orphan, AbsentCache(500),
                           self._report_invalid_namespace)
        self.kinds = _by_group_kind()
        self.informers: dict[tuple[str, str], Informer] = {}
        for r in self.kinds.values():
            inf = ctx.informers.informer(r)
            self.informers[(r.group, r.kind)] = inf
            self._watch(inf, r)

    def _watch(self, inf: Informer, r: Resource) -> None:
        av, kind, g = r.api_version, r.kind, self.graph
        inf.add_handler(lambda o: g.on_upsert(None, o, av, kind),
                        lambda old, new: g.on_upsert(old, new, av, kind),
                        lambda o: g.on_delete(o, av, kind))

    def _attempt_delete(self, uid: str) -> None:
        self.queue.add(("delete", uid))

    def _attempt_orphan(self, uid: str) -> None:
        self.queue.add(("orphan", uid))

    def _report_invalid_namespace(self, n: Node, ref: Ref) -> None:
        i = n.identity
        bad = Identity(ref.api_version, ref.kind, i.namespace, ref.name, ref.uid)
        obj = {"kind": i.kind, "apiVersion": i.api_version,
               "metadata": {"name": i.name, "namespace": i.namespace, "uid": i.uid}}
        self.recorder.warning(obj, "OwnerRefInvalidNamespace",
                              f'ownerRef {bad} does not exist in namespace "{i.namespace}"')

    # ---- the work loop -----------------------------------------------------

    async def sync(self, key: Hashable) -> None:
        op, uid = key  # type: ignore[misc]
        n = self.graph.nodes.get(uid)
        if n is None:
            return
        if op == "orphan":
            await self.orphan_dependents(n)
            return
        try:
            await self.attempt_to_delete(n)
        except (VirtualDeleted, NamespacedOwnerOfClusterScoped):
            return
        if n.virtual and self.graph.nodes.get(uid) is n:
            raise NotObserved(f"{n.identity} not yet observed by an informer")

    # ---- API access ----------------------------------------------------------

    def resource_for(self, api_version: str, kind: str) -> Resource:
        group = api_version.rpartition("/")[0]
        r = self.kinds.get((group, kind))
        if r is None:
            raise LookupError(f"unable to find a resource for {api_version}, Kind={kind}")
        return r

    def cached(self, ident: Identity, r: Resource) -> dict[str, Any] | None:
        inf = self.informers.get((r.group, r.kind))
        if inf is None:
            return None
        obj = inf.store.get_by(ident.namespace if r.namespaced else None, ident.name)
        if obj is not None and obj["metadata"].get("uid") == ident.uid:
            return obj
        return None

    async def get_live(self, ident: Identity, r: Resource) -> dict[str, Any] | None:
        try:
            return await self.client.get(r, ident.name, ident.namespace if r.namespaced else None)
        except APIError as e:
            if is_not_found(e):
                return None
            raise

    async def latest(self, n: Node) -> dict[str, Any]:
        """The item's current object: the cache's copy when the informer has
        it (deletes carry preconditions), otherwise a live GET."""
        r = self.resource_for(n.identity.api_version, n.identity.kind)
        obj = None if n.virtual else self.cached(n.identity, r)
        if obj is None:
            obj = await self.get_live(n.identity, r)
        if obj is None or obj["metadata"].get("uid") != n.uid:
            self.graph.virtual_delete(n.identity)
            raise VirtualDeleted()
        return obj

    async def delete_object(self, n: Node, latest: dict[str, Any], policy: str) -> None:
        ident = n.identity
        r = self.resource_for(ident.api_version, ident.kind)
        ns = ident.namespace if r.namespaced else None
        md = latest["metadata"]
        rv = md.get("resourceVersion")
        log.info("garbage-collector: deleting %s with propagation %s", ident, policy)
        try:
            try:
                await self.client.delete(r, ident.name, ns, uid=ident.uid, resource_version=rv,
                                         propagation=policy)
            except APIError as e:
                if not (is_conflict(e) and rv):
                    raise
                # the object changed: delete anyway if its owners did not
                live = await self.get_live(ident, r)
                if live is None:
                    raise APIError(404, {"reason": "NotFound"}) from None
                lmd = live["metadata"]
                if (lmd.get("uid") != ident.uid or lmd.get("resourceVersion") == rv
                        or lmd.get("ownerReferences") != md.get("ownerReferences")):
                    raise
                await self.client.delete(r, ident.name, ns, uid=ident.uid, propagation=policy)
        except APIError as e:
            if is_not_found(e):
                self.graph.virtual_delete(ident)
                raise VirtualDeleted() from None
            raise

    async def patch_meta(self, n: Node, patch: dict[str, Any], content_type: str = STRATEGIC) -> None:
        ident = n.identity
        r = self.resource_for(ident.api_version, ident.kind)
        try:
            await self.client.patch(r, ident.name, {"metadata": patch}, ident.namespace if r.namespaced else None,
                                    content_type=content_type)
        except APIError as e:
            if not is_not_found(e):
                raise

    async def remove_owner_refs(self, n: Node, owner_uids: list[str]) -> None:
        await self.patch_meta(n, {"ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids],
                                  "uid": n.uid})

    async def remove_finalizer(self, n: Node, finalizer: str) -> None:
        r = self.resource_for(n.identity.api_version, n.identity.kind)
        for _ in range(5):
            obj = await self.get_live(n.identity, r)
            if obj is None or obj["metadata"].get("uid") != n.uid:
                return
            md = obj["metadata"]
            fins = md.get("finalizers") or []
            if finalizer not in fins:
                return
            rest = [f for f in fins if f != finalizer]
            try:
                await self.patch_meta(n, {"resourceVersion": md.get("resourceVersion"), "finalizers": rest or None},
                                      "application/merge-patch+json")
                return
            except APIError as e:
                if not is_conflict(e):
                    raise
        raise RuntimeError(f"too many conflicts removing finalizer {finalizer} from {n.identity}; will retry")

    # ---- kube's attemptToDeleteItem -----------------------------------------

    async def attempt_to_delete(self, n: Node) -> None:
        if n.being_deleted and not n.deleting_dependents:
            return  # a one-way trip: its removal will bring its dependents here
        latest = await self.latest(n)
        if n.deleting_dependents:
            await self.process_deleting_dependents(n)
            return
        md = latest["metadata"]
        refs = md.get("ownerReferences") or []
        if not refs:
            return
        solid, dangling, waiting = await self.classify(n, refs)
        if solid:
            if not dangling and not waiting:
                return
            log.info("garbage-collector: removing dangling/waiting owner references from %s", n.identity)
            await self.remove_owner_refs(n, [r["uid"] for r in dangling + waiting])
            return
        if waiting and n.dependents:
            for d in n.deps():
                if d.deleting_dependents:
                    # a possible cycle: make our own references non-blocking first
                    await self.patch_meta(n, {"ownerReferences": [
                        {"uid": r["uid"], "blockOwnerDeletion": False} for r in refs if r.get("blockOwnerDeletion")],
                        "uid": n.uid})
                    break
            await self.delete_object(n, latest, "Foreground")
            return
        fins = md.get("finalizers") or ()
        policy = "Orphan" if ORPHAN in fins else "Foreground" if FOREGROUND in fins else "Background"
        await self.delete_object(n, latest, policy)

    async def classify(self, n: Node, refs: list[dict[str, Any]]) -> tuple[list, list, list]:
        """Owner references as solid (owner there), dangling (owner gone) and
        waiting (owner being deleted in the foreground)."""
        solid, dangling, waiting = [], [], []
        for ref in refs:
            owner = await self.owner_of(n, ref)
            if owner is None:
                dangling.append(ref)
                continue
            omd = owner["metadata"]
            if omd.get("deletionTimestamp") and FOREGROUND in (omd.get("finalizers") or ()):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def owner_of(self, n: Node, ref: dict[str, Any]) -> dict[str, Any] | None:
        """The owner named by ``ref``, or None if it does not exist (kube's isDangling)."""
        api_version, kind, name, uid = ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", ""), ref.get("uid", "")
        cluster = Identity(api_version, kind, "", name, uid)
        local = cluster._replace(namespace=n.identity.namespace)
        if self.graph.absent.has(cluster) or self.graph.absent.has(local):
            return None
        r = self.resource_for(api_version, kind)
        if r.namespaced and not n.identity.namespace:
            log.info("garbage-collector: %s is cluster-scoped but names a namespaced owner %s", n.identity, local)
            raise NamespacedOwnerOfClusterScoped()
        ident = local if r.namespaced else cluster
        owner = self.cached(ident, r)
        if owner is None:
            owner = await self.get_live(ident, r)
        if owner is None or owner["metadata"].get("uid") != uid:
            self.graph.absent.add(ident)
            return None
        return owner

    async def process_deleting_dependents(self, n: Node) -> None:
        blocking = n.blocking_dependents()
        if not blocking:
            log.info("garbage-collector: removing %s finalizer from %s", FOREGROUND, n.identity)
            await self.remove_finalizer(n, FOREGROUND)
            return
        for d in blocking:
            if not d.deleting_dependents:
                self._attempt_delete(d.uid)

    # ---- kube's attemptToOrphanWorker ----------------------------------------

    async def orphan_dependents(self, owner: Node) -> None:
        deps = owner.deps()
        results = await asyncio.gather(*(self.remove_owner_refs(d, [owner.uid]) for d in deps),
                                       return_exceptions=True)
        errs = [f"orphaning {d.identity} failed, {e}" for d, e in zip(deps, results) if isinstance(e, Exception)]
        if errs:
            raise RuntimeError(f"failed to orphan dependents of owner {owner.identity}, got errors: "
                               + "; ".join(errs))
        await self.remove_finalizer(owner, ORPHAN)
