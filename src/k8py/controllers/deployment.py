"""The Deployment controller (kube's ``pkg/controller/deployment``): rolls a
Deployment's pod template out through ReplicaSets named
``<deployment>-<pod-template-hash>``.

``sync(key)`` claims the Deployment's ReplicaSets (adopting matching
orphans, releasing ones that no longer match), then, as kube does:

* being deleted: only status;
* paused, or a scaling event (an active ReplicaSet's desired-replicas
  annotation differs from ``spec.replicas``): scale — the only active
  ReplicaSet gets everything, otherwise every active ReplicaSet gets its
  proportion of the change (``sync_scale``);
* otherwise roll out: RollingUpdate scales the new ReplicaSet up within
  ``maxSurge`` and the old ones down within ``maxUnavailable``
  (unhealthy old pods first); Recreate scales every old ReplicaSet to zero,
  waits for their pods to go, then scales the new one up.

After a rollout step it writes status and the Progressing condition
(NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused,
DeploymentResumed) and the Available condition, re-checking stuck
rollouts when their deadline passes; old ReplicaSets beyond
``revisionHistoryLimit`` are deleted once the rollout is complete.
Events: ScalingReplicaSet "Scaled up replica set X from 0 to 2".

Rollback is kubectl's (it patches the template back from a ReplicaSet),
so the ReplicaSets keep the revision, revision-history and change-cause
annotations it reads."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Callable

from ..api.labels import from_label_selector
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import APIError, resource
from . import deployment_util as du
from .context import ControllerContext, register
from .controller_utils import (BY_CONTROLLER, Claimer, Obj, add_owner_indexes, candidates, compute_hash,
                               controller_ref,
                               namespace_terminating, new_controller_ref, owner_reader)

log = logging.getLogger(__name__)

DEPLOYMENTS = resource("deployments.apps")
REPLICASETS = resource("replicasets.apps")


@register("deployment")
class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("deployment-controller")
        self.clock: Callable[[], float] = time.time
        d_inf = ctx.informers.informer("deployments.apps")
        rs_inf = ctx.informers.informer("replicasets.apps")
        pod_inf = ctx.informers.informer("pods")
        self.d_store, self.rs_store, self.pod_store = d_inf.store, rs_inf.store, pod_inf.store
        add_owner_indexes(self.rs_store)
        add_owner_indexes(self.pod_store)
        d_inf.add_handler(self._on_d, lambda old, new: self._on_d(new), self._on_d)
        rs_inf.add_handler(self._on_rs_add, self._on_rs_update, self._on_rs_delete)
        pod_inf.add_handler(on_delete=self._on_pod_delete)

    # --- event handlers -------------------------------------------------------------------------
    def _on_d(self, d: Obj) -> None:
        self.enqueue(key_of(d))

    def _owner(self, obj: Obj, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.d_store.get_by(obj["metadata"].get("namespace"), ref.get("name", ""))
        return d if d is not None and d["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_matching(self, rs: Obj) -> None:
        labels = rs["metadata"].get("labels") or {}
        for d in self.d_store.list(rs["metadata"].get("namespace", "")):
            try:
                sel = from_label_selector((d.get("spec") or {}).get("selector"))
            except Exception:  # noqa: BLE001 - an invalid selector matches nothing
                continue
            if not sel.empty() and sel.matches(labels):
                self.enqueue(key_of(d))

    def _on_rs_add(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._on_rs_delete(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            d = self._owner(rs, ref)
            if d is not None:
                self.enqueue(key_of(d))
            return
        self._enqueue_matching(rs)

    def _on_rs_update(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        cref, oref = controller_ref(cur), controller_ref(old)
        ref_changed = (cref or {}).get("uid") != (oref or {}).get("uid")
        if ref_changed and oref is not None:
            d = self._owner(old, oref)
            if d is not None:
                self.enqueue(key_of(d))
        if cref is not None:
            d = self._owner(cur, cref)
            if d is not None:
                self.enqueue(key_of(d))
            return
        if ref_changed or old["metadata"].get("labels") != cur["metadata"].get("labels"):
            self._enqueue_matching(cur)

    def _on_rs_delete(self, rs: Obj) -> None:
        d = self._owner(rs, controller_ref(rs))
        if d is not None:
            self.enqueue(key_of(d))

    def _on_pod_delete(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_store.get_by(pod["metadata"].get("namespace"), ref.get("name", ""))
        if rs is None:
            return
        d = self._owner(rs, controller_ref(rs))
        if d is not None and not du.is_rolling(d):
            self.enqueue(key_of(d))  # Recreate waits for the old pods to be gone

    # --- sync -----------------------------------------------------------------------------------
    async def sync(self, key: Any) -> None:
        cached = self.d_store.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        if (d.get("spec") or {}).get("selector") == {}:
            self.recorder.warning(d, "SelectingAll",
                                  "This deployment is selecting all pods. A non-empty selector is required.")
            gen = d["metadata"].get("generation", 0)
            if (d.get("status") or {}).get("observedGeneration", 0) < gen:
                d.setdefault("status", {})["observedGeneration"] = gen
                await self._write_status(d)
            return
        rss = await self._claim_replica_sets(d)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, olds = await self._all_rss(d, rss, False)
            await self._sync_status(d, olds + [new_rs], new_rs)
            return
        await self._check_paused(d)
        if d["spec"].get("paused"):
            await self._sync_scale(d, rss)
            return
        if await self._is_scaling_event(d, rss):
            await self._sync_scale(d, rss)
            return
        if du.is_rolling(d):
            await self._rollout_rolling(d, rss)
        else:
            await self._rollout_recreate(d, rss)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        selector = from_label_selector(d["spec"].get("selector"))
        claimer = Claimer(self.client, REPLICASETS, d, new_controller_ref(d, "apps/v1", "Deployment"),
                          selector, owner_reader(self.client, DEPLOYMENTS, d))
        return await claimer.claim(candidates(self.rs_store, d))

    async def _write_status(self, d: Obj) -> None:
        """UpdateStatus (which also writes the revision annotation, as in
        kube), keeping ``d``'s resourceVersion current for the next write."""
        updated = await self.client.update_status(DEPLOYMENTS, d)
        d["metadata"]["resourceVersion"] = updated["metadata"].get("resourceVersion")

    async def _update_rs(self, rs: Obj) -> Obj:
        return await self.client.update(REPLICASETS, rs)

    # --- new and old ReplicaSets ----------------------------------------------------------------
    async def _all_rss(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        _, all_old = du.find_old_rss(d, rss)
        new_rs = await self._new_rs(d, rss, all_old, create)
        return new_rs, all_old

    async def _new_rs(self, d: Obj, rss: list[Obj], olds: list[Obj], create: bool) -> Obj | None:
        existing = du.find_new_rs(d, rss)
        new_revision = str(du.max_revision(olds) + 1)
        spec = d["spec"]
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_rs_annotations(d, rs, new_revision, True)
            mrs = spec.get("minReadySeconds", 0) or 0
            if changed or (rs["spec"].get("minReadySeconds", 0) or 0) != mrs:
                rs["spec"]["minReadySeconds"] = mrs
                return await self._update_rs(rs)
            needs = self._set_revision(d, du.annotations(rs).get(du.REVISION, ""))
            if du.has_progress_deadline(d) and du.get_condition(d.get("status") or {}, du.PROGRESSING) is None:
                du.set_condition(d.setdefault("status", {}), du.new_condition(
                    du.PROGRESSING, "True", du.FOUND_NEW_RS, f'Found new replica set "{rs["metadata"]["name"]}"'))
                needs = True
            if needs:
                await self._write_status(d)
            return rs
        if not create:
            return None
        status = d.setdefault("status", {})
        template = copy.deepcopy(spec.get("template") or {})
        h = compute_hash(template, status.get("collisionCount"))
        tmd = template.setdefault("metadata", {})
        tmd["labels"] = dict(tmd.get("labels") or {}, **{du.HASH_LABEL: h})
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{du.HASH_LABEL: h})
        name = f'{d["metadata"]["name"]}-{h}'
        new = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": name, "namespace": d["metadata"].get("namespace"),
                            "ownerReferences": [new_controller_ref(d, "apps/v1", "Deployment")],
                            "labels": dict(tmd["labels"])},
               "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0) or 0,
                        "selector": selector, "template": template}}
        count = du.new_rs_new_replicas(d, olds + [new], new)
        new["spec"]["replicas"] = count
        du.set_new_rs_annotations(d, new, new_revision, False)
        already = False
        try:
            created = await self.client.create(REPLICASETS, new)
        except APIError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                rs = self.rs_store.get_by(d["metadata"].get("namespace"), name)
                if rs is None:  # not in the cache yet: read it
                    rs = await self.client.get(REPLICASETS, name, d["metadata"].get("namespace"))
                ref = controller_ref(rs)
                if (ref is not None and ref.get("uid") == d["metadata"]["uid"]
                        and du.equal_ignore_hash(spec.get("template") or {}, rs["spec"].get("template") or {})):
                    created, already = rs, True
                else:
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    try:
                        await self._write_status(d)
                    except APIError:
                        pass
                    raise
            elif namespace_terminating(e):
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.status.get("message", e)}'
                if du.has_progress_deadline(d):
                    du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.FAILED_RS_CREATE, msg))
                    try:
                        await self._write_status(d)
                    except APIError:
                        pass
                self.recorder.warning(d, du.FAILED_RS_CREATE, msg)
                raise
        if not already and count > 0:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled up replica set {created['metadata']['name']} from 0 to {count}")
        needs = self._set_revision(d, new_revision)
        if not already and du.has_progress_deadline(d):
            du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED,
                                                      f'Created new replica set "{created["metadata"]["name"]}"'))
            needs = True
        if needs:
            await self._write_status(d)
        return created

    @staticmethod
    def _set_revision(d: Obj, rev: str) -> bool:
        a = d["metadata"].setdefault("annotations", {})
        if a.get(du.REVISION) == rev:
            return False
        a[du.REVISION] = rev
        return True

    # --- scaling --------------------------------------------------------------------------------
    async def _is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        new_rs, olds = await self._all_rss(d, rss, False)
        for rs in du.filter_active(olds + [new_rs]):
            desired = du.annotations(rs).get(du.DESIRED_REPLICAS)
            if desired is None:
                continue
            try:
                if int(desired) != du.replicas(d):
                    return True
            except ValueError:
                continue
        return False

    async def _sync_scale(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, olds = await self._all_rss(d, rss, False)
        await self._scale(d, new_rs, olds)
        if d["spec"].get("paused"):
            await self._cleanup(d, olds)
        await self._sync_status(d, olds + [new_rs], new_rs)

    async def _scale(self, d: Obj, new_rs: Obj | None, olds: list[Obj]) -> None:
        target = du.find_active_or_latest(new_rs, olds)
        if target is not None:
            if du.replicas(target) != du.replicas(d):
                await self._scale_rs_event(target, du.replicas(d), d)
            return
        if du.is_saturated(d, new_rs):
            for old in du.filter_active(olds):
                await self._scale_rs_event(old, 0, d)
            return
        if not du.is_rolling(d):
            return
        active = du.filter_active(olds + [new_rs])
        allowed = du.replicas(d) + du.max_surge(d) if du.replicas(d) > 0 else 0
        to_add = allowed - sum(du.replicas(rs) for rs in active)
        op = ""
        if to_add > 0:
            active.sort(key=du.by_size_newer)
            op = "up"
        elif to_add < 0:
            active.sort(key=du.by_size_older)
            op = "down"
        added = 0
        sizes: list[int] = []
        for rs in active:
            if to_add != 0:
                p = du.proportion(rs, d, to_add, added)
                sizes.append(du.replicas(rs) + p)
                added += p
            else:
                sizes.append(du.replicas(rs))
        for i, rs in enumerate(active):
            if i == 0 and to_add != 0:
                sizes[0] = max(0, sizes[0] + to_add - added)
            await self._scale_rs(rs, sizes[i], d, op)

    async def _scale_rs_event(self, rs: Obj, n: int, d: Obj) -> tuple[bool, Obj]:
        if du.replicas(rs) == n:
            return False, rs
        return await self._scale_rs(rs, n, d, "up" if du.replicas(rs) < n else "down")

    async def _scale_rs(self, rs: Obj, n: int, d: Obj, op: str) -> tuple[bool, Obj]:
        size_changed = du.replicas(rs) != n
        desired, maximum = du.replicas(d), du.replicas(d) + du.max_surge(d)
        if not size_changed and not du.replicas_annotations_need_update(rs, desired, maximum):
            return False, rs
        old = du.replicas(rs)
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = n
        du.set_replicas_annotations(new, desired, maximum)
        updated = await self._update_rs(new)
        if size_changed:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled {op} replica set {updated['metadata']['name']} from {old} to {n}")
        return size_changed, updated

    # --- rollouts -------------------------------------------------------------------------------
    async def _rollout_rolling(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, olds = await self._all_rss(d, rss, True)
        assert new_rs is not None
        all_rss: list[Obj] = olds + [new_rs]
        # scale up the new ReplicaSet, if we can
        if du.replicas(new_rs) != du.replicas(d):
            target = (du.replicas(d) if du.replicas(new_rs) > du.replicas(d)
                      else du.new_rs_new_replicas(d, all_rss, new_rs))
            scaled, new_rs = await self._scale_rs_event(new_rs, target, d)
            if scaled:
                await self._sync_rollout_status(d, olds + [new_rs], new_rs)
                return
        # scale down old ReplicaSets, if we can
        if await self._reconcile_olds(d, all_rss, du.filter_active(olds), new_rs):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, olds)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _reconcile_olds(self, d: Obj, all_rss: list[Obj], olds: list[Obj], new_rs: Obj) -> bool:
        if sum(du.replicas(rs) for rs in olds) == 0:
            return False
        min_available = du.replicas(d) - du.max_unavailable(d)
        new_unavailable = du.replicas(new_rs) - du.status_of(new_rs, "availableReplicas")
        max_down = sum(du.replicas(rs) for rs in all_rss) - min_available - new_unavailable
        if max_down <= 0:
            return False
        olds = sorted(olds, key=du.by_creation)
        # unhealthy replicas first
        cleaned = 0
        for i, rs in enumerate(olds):
            if cleaned >= max_down:
                break
            unhealthy = du.replicas(rs) - du.status_of(rs, "availableReplicas")
            if du.replicas(rs) == 0 or unhealthy <= 0:
                continue
            n = min(max_down - cleaned, unhealthy)
            _, olds[i] = await self._scale_rs_event(rs, du.replicas(rs) - n, d)
            cleaned += n
        # then available ones, keeping minAvailable
        available = sum(du.status_of(rs, "availableReplicas") for rs in olds + [new_rs])
        down = 0
        if available > min_available:
            budget = available - min_available
            for rs in olds:
                if down >= budget:
                    break
                if du.replicas(rs) == 0:
                    continue
                n = min(du.replicas(rs), budget - down)
                await self._scale_rs_event(rs, du.replicas(rs) - n, d)
                down += n
        return cleaned + down > 0

    async def _rollout_recreate(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, olds = await self._all_rss(d, rss, False)
        all_rss: list[Obj | None] = [*olds, new_rs]
        scaled = False
        for rs in du.filter_active(olds):
            s, _ = await self._scale_rs_event(rs, 0, d)
            scaled = scaled or s
        if scaled or self._old_pods_running(new_rs, olds):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, olds = await self._all_rss(d, rss, True)
            all_rss = [*olds, new_rs]
        assert new_rs is not None
        await self._scale_rs_event(new_rs, du.replicas(d), d)
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, olds)
        await self._sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, new_rs: Obj | None, olds: list[Obj]) -> bool:
        if sum(du.status_of(rs, "replicas") for rs in olds) > 0:
            return True
        new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
        for rs in olds:
            uid = rs["metadata"]["uid"]
            if uid == new_uid:
                continue
            for p in self.pod_store.by_index(BY_CONTROLLER, uid):
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        if not du.has_revision_history_limit(d):
            return
        alive = [rs for rs in olds if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(d["spec"]["revisionHistoryLimit"])
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (du.revision(rs), du.by_creation(rs)))
        for rs in alive[:diff]:
            md = rs["metadata"]
            if (du.status_of(rs, "replicas") != 0 or du.replicas(rs) != 0
                    or md.get("generation", 0) > du.status_of(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete(REPLICASETS, md["name"], md.get("namespace"))
            except APIError as e:
                if e.code != 404:
                    raise

    # --- status ---------------------------------------------------------------------------------
    async def _check_paused(self, d: Obj) -> None:
        if not du.has_progress_deadline(d):
            return
        st = d.setdefault("status", {})
        cond = du.get_condition(st, du.PROGRESSING)
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        if d["spec"].get("paused") and not paused_cond:
            du.set_condition(st, du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED, "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            du.set_condition(st, du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED, "Deployment is resumed"))
        else:
            return
        await self._write_status(d)

    async def _sync_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        st = du.calculate_status(all_rss, new_rs, d)
        if st == du.status_view(d.get("status") or {}):
            return
        d["status"] = st
        await self._write_status(d)

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        now = self.clock()
        st = du.rollout_status(d, all_rss, new_rs, now)
        if st == du.status_view(d.get("status") or {}):
            after = du.stuck_recheck_after(d, st, now)
            if after is not None and after < 1:
                self.queue.add_rate_limited(key_of(d))
            elif after is not None:
                self.queue.add_after(key_of(d), after + 1)
            return
        d["status"] = st
        await self._write_status(d)
