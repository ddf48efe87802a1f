"""The ReplicaSet controller (kube's ``pkg/controller/replicaset``): keeps
``spec.replicas`` active pods matching a ReplicaSet's selector.

One ``sync(key)``: claim the pods (adopt matching orphans, release children
that no longer match), create or delete the difference, then write status
(replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after
``minReadySeconds``, observedGeneration, the ReplicaFailure condition).

* Expectations: after asking for N creates (or these deletes) the
  controller waits until the pod informer has shown them before acting on
  that ReplicaSet again, so a lagging cache never doubles a burst.
* Creates go in slow-start batches (1, 2, 4, ...) of at most ``BURST``
  (500) per sync; deletes all at once, picking the pods kube ranks first
  (unscheduled, pending, not ready, doubled up on a node, newest, ...).
* Events on the ReplicaSet: SuccessfulCreate "Created pod: <name>",
  SuccessfulDelete "Deleted pod: <name>", FailedCreate, FailedDelete.

The ReplicationController controller reuses all of this (a subclass that
changes the resource, the kind and how the selector is read)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any, Callable

from ..api.labels import Selector, from_label_selector, selector_from_set
from ..client.controller import Controller
from ..client.informer import key_of, split_key
from ..client.rest import APIError, resource
from ..client.timeutil import now_rfc3339
from .context import ControllerContext, register
from .controller_utils import (BY_CONTROLLER, Claimer, Obj, add_owner_indexes, candidates, controller_ref,
                               deletion_order, is_pod_active, is_pod_available, is_pod_ready,
                               namespace_terminating, new_controller_ref, owner_reader, pod_from_template,
                               slow_start_batch)

log = logging.getLogger(__name__)

PODS = resource("pods")
BURST = 500
EXPECTATIONS_TTL = 300.0
REPLICA_FAILURE = "ReplicaFailure"


class Expectations:
    """``UIDTrackingControllerExpectations``: creations still to be seen
    (a count) and deletions still to be seen (pod keys), per owner key.
    Expired after five minutes so a lost event never wedges an owner."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._since: dict[str, float] = {}

    def satisfied(self, key: str) -> bool:
        if key not in self._since:
            return True
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        return self.clock() - self._since[key] > EXPECTATIONS_TTL

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = n
        self._dels.pop(key, None)
        self._since[key] = self.clock()

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._adds.pop(key, None)
        self._dels[key] = set(pod_keys)
        self._since[key] = self.clock()

    def creation_observed(self, key: str) -> None:
        if key in self._adds:
            self._adds[key] -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        s = self._dels.get(key)
        if s is not None:
            s.discard(pod_key)

    def forget(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)
        self._since.pop(key, None)


def _status_view(st: Obj) -> Obj:
    """A status as Go serialises it: zero counters and empty lists omitted."""
    out: Obj = {"replicas": st.get("replicas", 0)}
    for k in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"):
        if st.get(k):
            out[k] = st[k]
    if st.get("conditions"):
        out["conditions"] = st["conditions"]
    return out


def calculate_status(rs: Obj, pods: list[Obj], err: BaseException | None, now: float) -> Obj:
    spec = rs.get("spec") or {}
    status = copy.deepcopy(rs.get("status") or {})
    template_sel = selector_from_set(((spec.get("template") or {}).get("metadata") or {}).get("labels"))
    mrs = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for p in pods:
        if template_sel.matches(p["metadata"].get("labels") or {}):
            fully += 1
        if is_pod_ready(p):
            ready += 1
            if is_pod_available(p, mrs, now):
                available += 1
    conds = [c for c in status.get("conditions") or () if c.get("type") != REPLICA_FAILURE]
    failure = next((c for c in status.get("conditions") or () if c.get("type") == REPLICA_FAILURE), None)
    if err is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        msg = err.status.get("message", str(err)) if isinstance(err, APIError) else str(err)
        conds.append({"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": now_rfc3339(now),
                      "reason": reason, "message": msg})
    elif err is not None:
        conds.append(failure)
    status["conditions"] = conds
    status.update(replicas=len(pods), fullyLabeledReplicas=fully, readyReplicas=ready,
                  availableReplicas=available)
    return _status_view(status)


class ReplicaSetLikeController(Controller):
    """Shared by the ReplicaSet and ReplicationController controllers."""

    name = "replicaset"
    component = "replicaset-controller"
    resource_spec = "replicasets.apps"
    kind = "ReplicaSet"
    api_version = "apps/v1"
    workers = 5

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.component)
        self.res = resource(self.resource_spec)
        self.expectations = Expectations()
        self.clock: Callable[[], float] = time.time
        rs_inf = ctx.informers.informer(self.resource_spec)
        pod_inf = ctx.informers.informer("pods")
        self.rs_store, self.pod_store = rs_inf.store, pod_inf.store
        add_owner_indexes(self.rs_store)
        add_owner_indexes(self.pod_store)
        rs_inf.add_handler(self._on_rs, lambda old, new: self._on_rs(new), self._on_rs_delete)
        pod_inf.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # --- how this kind reads --------------------------------------------------------------------
    def selector_of(self, rs: Obj) -> Selector:
        return from_label_selector((rs.get("spec") or {}).get("selector"))

    # --- event handlers -------------------------------------------------------------------------
    def _on_rs(self, rs: Obj) -> None:
        self.enqueue(key_of(rs))

    def _on_rs_delete(self, rs: Obj) -> None:
        k = key_of(rs)
        self.expectations.forget(k)
        self.enqueue(k)

    def _owner_key(self, pod: Obj, ref: Obj) -> str | None:
        if ref.get("kind") != self.kind:
            return None
        ns = pod["metadata"].get("namespace")
        rs = self.rs_store.get_by(ns, ref.get("name", ""))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return key_of(rs)

    def _enqueue_matching(self, pod: Obj) -> None:
        labels = pod["metadata"].get("labels") or {}
        if not labels:
            return
        for rs in self.rs_store.list(pod["metadata"].get("namespace", "")):
            try:
                if self.selector_of(rs).matches(labels):
                    self.enqueue(key_of(rs))
            except Exception:  # noqa: BLE001 - an invalid selector matches nothing
                continue

    def _on_pod_add(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._on_pod_delete(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            k = self._owner_key(pod, ref)
            if k is not None:
                self.expectations.creation_observed(k)
                self.enqueue(k)
            return
        self._enqueue_matching(pod)

    def _on_pod_update(self, old: Obj, cur: Obj) -> None:
        omd, cmd = old["metadata"], cur["metadata"]
        if omd.get("resourceVersion") == cmd.get("resourceVersion"):
            return
        labels_changed = omd.get("labels") != cmd.get("labels")
        if cmd.get("deletionTimestamp"):
            self._on_pod_delete(cur)
            if labels_changed:
                self._on_pod_delete(old)
            return
        cref, oref = controller_ref(cur), controller_ref(old)
        ref_changed = (cref or {}).get("uid") != (oref or {}).get("uid")
        if ref_changed and oref is not None:
            k = self._owner_key(old, oref)
            if k is not None:
                self.enqueue(k)
        if cref is not None:
            k = self._owner_key(cur, cref)
            if k is None:
                return
            self.enqueue(k)
            rs = self.rs_store.get(k)
            mrs = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if mrs > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                self.queue.add_after(k, mrs + 1)
            return
        if labels_changed or ref_changed:
            self._enqueue_matching(cur)

    def _on_pod_delete(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None:
            return
        k = self._owner_key(pod, ref)
        if k is not None:
            self.expectations.deletion_observed(k, key_of(pod))
            self.enqueue(k)

    # --- sync -----------------------------------------------------------------------------------
    async def sync(self, key: Any) -> None:
        rs = self.rs_store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        need_sync = self.expectations.satisfied(key)
        selector = self.selector_of(rs)
        pods = [p for p in candidates(self.pod_store, rs) if is_pod_active(p)]
        pods = await self._claimer(rs, selector).claim(pods)
        err: BaseException | None = None
        if need_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods)
            except APIError as e:
                err = e
        status = calculate_status(rs, pods, err, self.clock())
        updated = await self._update_status(rs, status)
        spec = updated.get("spec") or {}
        st = updated.get("status") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        if (err is None and mrs > 0 and st.get("readyReplicas", 0) == spec.get("replicas", 1)
                and st.get("availableReplicas", 0) != spec.get("replicas", 1)):
            self.queue.add_after(key, mrs)
        if err is not None:
            raise err

    def _claimer(self, rs: Obj, selector: Selector) -> Claimer:
        return Claimer(self.client, PODS, rs, new_controller_ref(rs, self.api_version, self.kind), selector,
                       owner_reader(self.client, self.res, rs))

    async def manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        spec = rs.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff < 0:
            await self._create(key, rs, min(-diff, BURST))
        elif diff > 0:
            await self._delete(key, rs, pods, min(diff, BURST))

    async def _create(self, key: str, rs: Obj, n: int) -> None:
        self.expectations.expect_creations(key, n)
        ns = rs["metadata"].get("namespace")
        template = (rs.get("spec") or {}).get("template") or {}
        ref = new_controller_ref(rs, self.api_version, self.kind)

        async def create_one() -> None:
            pod = pod_from_template(template, rs, ref)
            try:
                created = await self.client.create(PODS, pod, ns)
            except APIError as e:
                self.recorder.warning(rs, "FailedCreate", f"Error creating: {e.status.get('message', e)}")
                if namespace_terminating(e):
                    return
                raise
            self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        done, err = await slow_start_batch(n, create_one)
        for _ in range(n - done):
            self.expectations.creation_observed(key)
        if err is not None:
            raise err

    async def _delete(self, key: str, rs: Obj, pods: list[Obj], n: int) -> None:
        if n < len(pods):
            victims = deletion_order(pods, self._related_pods(rs), self.clock())[:n]
        else:
            victims = pods[:n]
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])

        async def delete_one(pod: Obj) -> None:
            md = pod["metadata"]
            try:
                await self.client.delete(PODS, md["name"], md.get("namespace"))
            except APIError as e:
                self.expectations.deletion_observed(key, key_of(pod))
                if e.code == 404:
                    return
                self.recorder.warning(rs, "FailedDelete", f"Error deleting: {e.status.get('message', e)}")
                raise
            self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {md['name']}")

        results = await asyncio.gather(*(delete_one(p) for p in victims), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Active pods of every ReplicaSet with the same controller as ``rs``."""
        ref = controller_ref(rs)
        if ref is None:
            return []
        out: dict[str, Obj] = {}
        for sibling in self.rs_store.by_index(BY_CONTROLLER, ref["uid"]):
            for p in self.pod_store.by_index(BY_CONTROLLER, sibling["metadata"]["uid"]):
                out[p["metadata"]["uid"]] = p
        return list(out.values())

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        gen = rs["metadata"].get("generation", 0)
        status = dict(status)
        if gen:
            status["observedGeneration"] = gen
        if _status_view(rs.get("status") or {}) == status:
            return rs
        md = rs["metadata"]
        for attempt in range(2):
            new = dict(rs, status=status)
            try:
                return await self.client.update_status(self.res, new)
            except APIError as e:
                if e.code == 404:
                    return rs
                if e.code != 409 or attempt:
                    raise
                rs = await self.client.get(self.res, md["name"], md.get("namespace"))
                if rs["metadata"].get("generation", 0):
                    status["observedGeneration"] = rs["metadata"]["generation"]
        return rs


@register("replicaset")
class ReplicaSetController(ReplicaSetLikeController):
    pass
