"""The DaemonSet controller (kube's ``pkg/controller/daemon``): one pod per
eligible node.

A node is eligible when the pod template's ``nodeSelector`` and required
node affinity match it and the pod (with kube's default DaemonSet
tolerations added) tolerates its NoSchedule and NoExecute taints; a pod
keeps running on a node it no longer fits only while it tolerates the
NoExecute ones.  Pods are not bound here: each gets the required node
affinity ``metadata.name In [node]`` (a matchFields term) and the default
scheduler places it, as kube does since 1.12.

``sync`` snapshots the template as a ControllerRevision (``history.py``),
creates missing pods and deletes misplaced, failed and surplus ones
(expectations keep a lagging cache from doubling a create), runs the
RollingUpdate (``maxUnavailable`` / ``maxSurge``; OnDelete waits for the
user), trims history and writes status when it changed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from ..api.labels import from_label_selector
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import APIError, is_conflict, is_not_found, resource
from . import history as hist
from .context import ControllerContext, register
from .controller_utils import (Claimer, add_owner_indexes, candidates, controller_ref, is_pod_available,
                               is_pod_ready, new_controller_ref, owner_reader, pod_from_template,
                               slow_start_batch)
from .daemonset_util import (ALWAYS_IN_STATUS, allows_surge, is_terminating, is_updated, oldest_first, phase,
                             pin_to_node, placement, pod_template, scaled, split_by_revision, target_node,
                             template_generation)
from .expectations import Expectations
from .history import POD_REVISION_LABEL, History, template_patch

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DAEMONSETS = resource("daemonsets.apps")
PODS = resource("pods")
BURST_REPLICAS = 250
FAILED_POD_BACKOFF, FAILED_POD_BACKOFF_MAX = 1.0, 900.0


@register("daemonset")
class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.recorder = ctx.recorder("daemonset-controller")
        self.sets = ctx.informers.informer("daemonsets.apps")
        self.pods = ctx.informers.informer("pods")
        self.nodes = ctx.informers.informer("nodes")
        add_owner_indexes(self.pods.store)
        self.history = History(ctx.client, ctx.informers, on_event=self._owner_changed)
        self.expectations = Expectations()
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}
        self.sets.add_handler(self._set_changed, lambda old, new: self._set_changed(new), self._set_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_added)

    # --- event handlers: only keys on the queue -------------------------------------------------
    def _set_changed(self, ds: Obj) -> None:
        self.enqueue(key_of(ds))

    def _set_deleted(self, ds: Obj) -> None:
        self.expectations.delete(key_of(ds))
        self.enqueue(key_of(ds))

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        return f"{obj['metadata']['namespace']}/{ref['name']}"

    def _owner_changed(self, obj: Obj) -> None:
        key = self._owner_key(obj)
        if key:
            self.enqueue(key)

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._owner_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.deletion_observed(key)
            self.enqueue(key)

    def _node_added(self, node: Obj) -> None:
        for ds in self.sets.store.list():
            self.enqueue(key_of(ds))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """Heartbeats are ignored: only labels, spec (taints) and condition states matter."""
        def shape(n: Obj) -> tuple:
            conds = tuple((c.get("type"), c.get("status")) for c in (n.get("status") or {}).get("conditions") or ())
            return n["metadata"].get("labels"), n.get("spec"), conds
        if shape(old) != shape(new):
            self._node_added(new)

    # --- sync -------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ds = self.sets.store.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        if ds["metadata"].get("deletionTimestamp"):
            return
        cur, old, collisions = await self._construct_history(ds)
        hash_ = cur["metadata"]["labels"][POD_REVISION_LABEL]
        nodes = self.nodes.store.list()
        pods = await self._claim_pods(ds)
        if self.expectations.satisfied(key):
            await self._manage(ds, nodes, pods, hash_)
            if self.expectations.satisfied(key) and ds["spec"]["updateStrategy"].get("type") == "RollingUpdate":
                await self._rolling_update(ds, nodes, pods, hash_)
            await self._cleanup_history(ds, old, pods)
        await self._update_status(ds, nodes, pods, hash_, collisions)

    async def _claim_pods(self, ds: Obj) -> list[Obj]:
        """The DaemonSet's pods, adopting matching orphans and releasing strays."""
        claimer = Claimer(self.client, PODS, ds, new_controller_ref(ds, "apps/v1", "DaemonSet"),
                          from_label_selector(ds["spec"].get("selector")), owner_reader(self.client, DAEMONSETS, ds))
        return await claimer.claim(candidates(self.pods.store, ds))

    @staticmethod
    def _node_to_pods(pods: list[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            if phase(pod) in ("Succeeded", "Failed") and is_terminating(pod):
                continue
            node = target_node(pod)
            if node:
                out.setdefault(node, []).append(pod)
        return out

    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj], int]:
        """``constructHistory``: the revision matching the template (made if
        missing, renumbered if it is an old one come back) and the others."""
        patch = template_patch(ds)
        data = hist.canonical(patch)
        revs = self.history.list(ds)
        current = [r for r in revs if hist.canonical(r.get("data")) == data]
        old = [r for r in revs if hist.canonical(r.get("data")) != data]
        collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
        number = hist.next_revision(old)
        if not current:
            labels = dict(ds["spec"]["template"].get("metadata", {}).get("labels") or {})
            rev = hist.new_revision(ds, patch, number, labels)
            cur, collisions = await self.history.create(ds, rev, ds["spec"]["template"], collisions,
                                                        label=POD_REVISION_LABEL)
            return cur, old, collisions
        cur = current[-1]
        for dup in current[:-1]:  # dedupCurHistories
            await self.history.truncate([dup], set(), 0)
        if hist.number(cur) < number:
            cur = await self.history.renumber(cur, number)
        return cur, old, collisions

    async def _manage(self, ds: Obj, nodes: list[Obj], all_pods: list[Obj], hash_: str) -> None:
        template = pod_template(ds, hash_)
        should_run = placement(ds, template)
        node_pods = self._node_to_pods(all_pods)
        surge = allows_surge(ds)
        gen = template_generation(ds)
        needing: list[str] = []
        deleting: list[str] = []
        names = set()
        for node in nodes:
            name = node["metadata"]["name"]
            names.add(name)
            run, keep = should_run(node)
            pods = node_pods.get(name, [])
            if run and not pods:
                needing.append(name)
            elif keep:
                deleting += self._prune_node(ds, name, pods, surge, hash_, gen)
            elif pods:
                deleting += [p["metadata"]["name"] for p in pods if not is_terminating(p)]
        for name, pods in node_pods.items():  # pods pinned to nodes that are gone
            if name not in names:
                deleting += [p["metadata"]["name"] for p in pods if not is_terminating(p)]
        await self._sync_nodes(ds, deleting, needing, template)

    def _prune_node(self, ds: Obj, node: str, pods: list[Obj], surge: bool, hash_: str,
                    gen: str | None) -> list[str]:
        """A node that keeps its daemon pod: delete failed ones (with back-off)
        and all but one running (two while a surge replaces the old)."""
        out: list[str] = []
        running: list[Obj] = []
        for p in pods:
            if is_terminating(p):
                continue
            if phase(p) == "Failed":
                if self._backing_off(key_of(ds), node):
                    continue
                self.recorder.warning(ds, "FailedDaemonPod", f"Found failed daemon pod {key_of(p)} on node "
                                      f"{node}, will try to kill it")
                out.append(p["metadata"]["name"])
            elif phase(p) == "Succeeded":
                out.append(p["metadata"]["name"])
            else:
                running.append(p)
        if len(running) <= 1:
            return out
        running = oldest_first(running)
        if not surge:
            return out + [p["metadata"]["name"] for p in running[1:]]
        newest: Obj | None = None
        oldest: Obj | None = None
        for p in running:
            if is_updated(p, hash_, gen):
                if newest is None:
                    newest = p
                    continue
            elif oldest is None:
                oldest = p
                continue
            out.append(p["metadata"]["name"])
        min_ready = ds["spec"].get("minReadySeconds") or 0
        if newest is not None and oldest is not None and (
                not is_pod_ready(oldest) or is_pod_available(newest, min_ready, self.clock())):
            out.append(oldest["metadata"]["name"])
        return out

    def _backing_off(self, key: str, node: str) -> bool:
        now = self.clock()
        until, delay = self._backoff.get((key, node), (0.0, FAILED_POD_BACKOFF / 2))
        if now < until:
            self.queue.add_after(key, until - now)
            return True
        delay = min(delay * 2, FAILED_POD_BACKOFF_MAX)
        self._backoff[(key, node)] = (now + delay, delay)
        return False

    async def _sync_nodes(self, ds: Obj, deleting: list[str], needing: list[str], template: Obj) -> None:
        """Creates (in slow-start batches) and deletes, at most 250 of each per sync."""
        key = key_of(ds)
        needing, deleting = needing[:BURST_REPLICAS], deleting[:BURST_REPLICAS]
        if not needing and not deleting:
            return
        self.expectations.expect(key, adds=len(needing), dels=len(deleting))
        ns = ds["metadata"]["namespace"]
        base = pod_from_template(template, ds, new_controller_ref(ds, "apps/v1", "DaemonSet"))
        todo = iter(needing)

        async def create() -> None:
            node = next(todo)
            pod = dict(base, spec=dict(base["spec"], affinity=pin_to_node(base["spec"].get("affinity"), node)))
            try:
                made = await self.client.create(PODS, pod, ns)
            except APIError as e:
                self.recorder.warning(ds, "FailedCreate", f"Error creating: {e.status.get('message', e)}")
                raise
            self.recorder.normal(ds, "SuccessfulCreate", f"Created pod: {made['metadata']['name']}")

        async def delete(name: str) -> None:
            try:
                await self.client.delete(PODS, name, ns)
            except APIError as e:
                self.expectations.deletion_observed(key)
                if is_not_found(e):
                    return
                self.recorder.warning(ds, "FailedDelete", f"Error deleting: {e.status.get('message', e)}")
                raise
            self.recorder.normal(ds, "SuccessfulDelete", f"Deleted pod: {name}")

        errors = [r for r in await asyncio.gather(*(delete(n) for n in deleting), return_exceptions=True)
                  if isinstance(r, BaseException)]
        made, err = await slow_start_batch(len(needing), create)
        self.expectations.creation_observed(key, len(needing) - made)  # failed or skipped: never observed
        if err is not None:
            raise err
        if errors:
            raise errors[0]

    async def _rolling_update(self, ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str) -> None:
        node_pods = self._node_to_pods(pods)
        should_run = placement(ds, pod_template(ds, hash_))
        desired = sum(1 for n in nodes if should_run(n)[0])
        ru = ds["spec"]["updateStrategy"].get("rollingUpdate") or {}
        max_surge = scaled(ru.get("maxSurge"), desired) if allows_surge(ds) else 0
        max_unavailable = scaled(ru.get("maxUnavailable", 1), desired)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        min_ready = ds["spec"].get("minReadySeconds") or 0
        now = self.clock()
        gen = template_generation(ds)

        def avail(p: Obj | None) -> bool:
            return p is not None and is_pod_available(p, min_ready, now)

        to_delete: list[str] = []
        if max_surge == 0:
            unavailable, replace, candidates = 0, [], []
            for pods in node_pods.values():
                found = split_by_revision(pods, hash_, gen)
                if found is None:
                    unavailable += 1
                    continue
                new, old = found
                if (old is None) == (new is None):
                    unavailable += 1
                elif new is not None:
                    unavailable += 0 if avail(new) else 1
                elif not avail(old):
                    replace.append(old["metadata"]["name"])
                elif unavailable < max_unavailable:
                    candidates.append(old["metadata"]["name"])
            room = min(max(0, max_unavailable - unavailable), len(candidates))
            await self._sync_nodes(ds, replace + candidates[:room], [], pod_template(ds, hash_))
            return
        surged, allowed, candidate_nodes = 0, [], []
        for node, pods in node_pods.items():
            found = split_by_revision(pods, hash_, gen)
            if found is None:
                surged += 1
                continue
            new, old = found
            if old is None:
                continue
            if new is None:
                if not avail(old):
                    allowed.append(node)
                elif surged < max_surge:
                    candidate_nodes.append(node)
            elif not avail(new):
                surged += 1
            else:
                to_delete.append(old["metadata"]["name"])
        room = min(max(0, max_surge - surged), len(candidate_nodes))
        await self._sync_nodes(ds, to_delete, allowed + candidate_nodes[:room], pod_template(ds, hash_))

    async def _cleanup_history(self, ds: Obj, old: list[Obj], pods: list[Obj]) -> None:
        limit = ds["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        if len(old) <= limit:
            return
        live_hashes = {(p["metadata"].get("labels") or {}).get(POD_REVISION_LABEL)
                       for p in pods}
        live = {r["metadata"]["name"] for r in old
                if (r["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) in live_hashes}
        await self.history.truncate(old, live, limit)

    def compute_status(self, ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str) -> Obj:
        """``updateDaemonSetStatus``'s counts."""
        should_run = placement(ds, pod_template(ds, hash_))
        node_pods = self._node_to_pods(pods)
        min_ready = ds["spec"].get("minReadySeconds") or 0
        now = self.clock()
        gen = template_generation(ds)
        desired = scheduled = mis = ready = available = updated = 0
        for node in nodes:
            run, _ = should_run(node)
            pods = node_pods.get(node["metadata"]["name"])
            if not run:
                mis += 1 if pods else 0
                continue
            desired += 1
            if not pods:
                continue
            scheduled += 1
            pod = sorted(pods, key=lambda p: (phase(p) != "Running", p["metadata"].get("creationTimestamp") or ""))[0]
            if is_pod_ready(pod):
                ready += 1
                available += 1 if is_pod_available(pod, min_ready, now) else 0
            updated += 1 if is_updated(pod, hash_, gen) else 0
        status: Obj = {"currentNumberScheduled": scheduled, "numberMisscheduled": mis,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": ds["metadata"].get("generation", 0),
                       "updatedNumberScheduled": updated, "numberAvailable": available,
                       "numberUnavailable": desired - available}
        return {k: v for k, v in status.items() if v or k in ALWAYS_IN_STATUS}

    async def _update_status(self, ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str,
                             collisions: int) -> None:
        status = self.compute_status(ds, nodes, pods, hash_)
        old = ds.get("status") or {}
        if collisions or old.get("collisionCount") is not None:
            status["collisionCount"] = collisions
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        min_ready = ds["spec"].get("minReadySeconds") or 0
        if min_ready and status.get("numberReady", 0) != status.get("numberAvailable", 0):
            self.queue.add_after(key_of(ds), min_ready)
        if status == old:
            return
        body = dict(ds, status=status)
        try:
            await self.client.update_status(DAEMONSETS, body)
        except APIError as e:
            if not is_conflict(e):
                raise
            fresh = await self.client.get(DAEMONSETS, ds["metadata"]["name"], ds["metadata"]["namespace"])
            await self.client.update_status(DAEMONSETS, dict(fresh, status=status))
