"""The StatefulSet controller (kube's ``pkg/controller/statefulset``):
pods with stable identities ``<set>-<ordinal>``.

Each pod gets the labels ``statefulset.kubernetes.io/pod-name`` and
``apps.kubernetes.io/pod-index``, ``hostname`` = its name and ``subdomain``
= ``serviceName``, and one PersistentVolumeClaim per volumeClaimTemplate,
``<claim>-<set>-<ordinal>``, created before the pod and kept after it
(unless ``persistentVolumeClaimRetentionPolicy`` says Delete: then the
claim is owned by the set, or by a condemned pod, and the garbage
collector removes it).

``sync`` finds the current and update ControllerRevisions (``history.py``),
then, as kube's ``updateStatefulSet``: replaces failed pods, creates
missing ones, deletes those at ordinals beyond ``replicas`` from the top,
and rolls pods at ordinals >= ``partition`` to the update revision from
the highest ordinal down.  ``OrderedReady`` does one thing at a time and
waits for each pod to be Running and Ready; ``Parallel`` does not wait.
Status counts are written only when they change; the update revision
becomes current once every pod runs it and is ready."""

from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any, Awaitable, Callable

from ..api.labels import from_label_selector
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import MERGE, APIError, is_already_exists, is_conflict, is_not_found, resource
from . import history as hist
from .context import ControllerContext, register
from .controller_utils import (Claimer, add_owner_indexes, candidates, controller_ref, is_pod_available,
                               is_pod_ready, new_controller_ref, owner_reader, pod_from_template,
                               slow_start_batch)
from .history import HASH_LABEL, POD_REVISION_LABEL, History, template_patch

log = logging.getLogger(__name__)
Obj = dict[str, Any]

STATEFULSETS = resource("statefulsets.apps")
PODS = resource("pods")
PVCS = resource("persistentvolumeclaims")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# --- identity ---------------------------------------------------------------------------------------
def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    m = _ORDINAL.match(pod["metadata"]["name"])
    return (m.group(1), int(m.group(2))) if m else ("", -1)


def ordinal(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def pod_name(sts: Obj, i: int) -> str:
    return f"{sts['metadata']['name']}-{i}"


def claim_name(sts: Obj, template_name: str, i: int) -> str:
    return f"{template_name}-{sts['metadata']['name']}-{i}"


def start_ordinal(sts: Obj) -> int:
    return int((sts["spec"].get("ordinals") or {}).get("start") or 0)


def claims(sts: Obj, i: int) -> list[tuple[str, Obj]]:
    """``getPersistentVolumeClaims``: the claims of ordinal ``i``, labelled
    with the set's selector labels."""
    out = []
    match = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
    for t in sts["spec"].get("volumeClaimTemplates") or ():
        c = copy.deepcopy(t)
        c.pop("status", None)
        md = c.setdefault("metadata", {})
        tname = md.get("name", "")
        md["name"] = claim_name(sts, tname, i)
        md["namespace"] = sts["metadata"]["namespace"]
        md["labels"] = dict(md.get("labels") or {}, **match)
        c["apiVersion"], c["kind"] = "v1", "PersistentVolumeClaim"
        out.append((tname, c))
    return out


def new_pod(sts: Obj, i: int) -> Obj:
    """``newStatefulSetPod``: identity and storage on the template's pod."""
    pod = pod_from_template(sts["spec"]["template"], sts, new_controller_ref(sts, "apps/v1", "StatefulSet"))
    md = pod["metadata"]
    md.pop("generateName", None)
    md["name"] = pod_name(sts, i)
    md["labels"] = dict(md.get("labels") or {}, **{POD_NAME_LABEL: md["name"], POD_INDEX_LABEL: str(i)})
    spec = pod["spec"]
    spec["hostname"] = md["name"]
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    mine = claims(sts, i)
    names = {t for t, _ in mine}
    spec["volumes"] = [{"name": t, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}} for t, c in mine] + [
        v for v in spec.get("volumes") or () if v.get("name") not in names]
    if not spec["volumes"]:
        del spec["volumes"]
    return pod


def versioned_pod(cur_set: Obj, upd_set: Obj, cur_rev: str, upd_rev: str, i: int) -> Obj:
    """``newVersionedStatefulSetPod``: ordinals below the partition keep the current revision."""
    us = cur_set["spec"].get("updateStrategy") or {}
    ru = us.get("rollingUpdate")
    status = cur_set.get("status") or {}
    start = start_ordinal(cur_set)
    if (us.get("type") == "RollingUpdate" and ru is None and i < start + int(status.get("currentReplicas") or 0)) \
            or (ru is not None and i < start + int(ru.get("partition") or 0)):
        pod, rev = new_pod(cur_set, i), cur_rev
    else:
        pod, rev = new_pod(upd_set, i), upd_rev
    pod["metadata"]["labels"][POD_REVISION_LABEL] = rev
    return pod


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, i = parent_and_ordinal(pod)
    labels = pod["metadata"].get("labels") or {}
    return (i >= 0 and parent == sts["metadata"]["name"] and labels.get(POD_NAME_LABEL) == pod["metadata"]["name"]
            and labels.get(POD_INDEX_LABEL) == str(i))


# --- pod state ----------------------------------------------------------------------------------------
def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase", "")


def is_created(pod: Obj) -> bool:
    return phase(pod) != ""


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def running_and_available(pod: Obj, min_ready: int, now: float) -> bool:
    return phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def healthy(pod: Obj) -> bool:
    return running_and_ready(pod) and not is_terminating(pod)


def revision_of(pod: Obj) -> str:
    return (pod["metadata"].get("labels") or {}).get(POD_REVISION_LABEL, "")


def replica_status(pods: list[Obj], min_ready: int, now: float, cur: str, upd: str) -> Obj:
    """``computeReplicaStatus`` over the replicas and the condemned."""
    st = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
    for p in pods:
        if is_created(p):
            st["replicas"] += 1
            if not is_terminating(p):
                st["currentReplicas"] += revision_of(p) == cur
                st["updatedReplicas"] += revision_of(p) == upd
        if running_and_ready(p):
            st["readyReplicas"] += 1
            st["availableReplicas"] += running_and_available(p, min_ready, now)
    return st


_STATUS_KEYS = ("observedGeneration", "replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                "availableReplicas", "currentRevision", "updateRevision", "collisionCount")


@register("statefulset")
class StatefulSetController(Controller):
    name = "statefulset"
    workers = 2

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.recorder = ctx.recorder("statefulset-controller")
        self.sets = ctx.informers.informer("statefulsets.apps")
        self.pods = ctx.informers.informer("pods")
        self.claims = ctx.informers.informer("persistentvolumeclaims")
        add_owner_indexes(self.pods.store)
        self.history = History(ctx.client, ctx.informers)
        self.sets.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        self.pods.add_handler(self._pod_event, self._pod_updated, self._pod_event)

    def _enqueue(self, sts: Obj) -> None:
        self.enqueue(key_of(sts))

    def _pod_event(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            self.enqueue(f"{pod['metadata']['namespace']}/{ref['name']}")

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_event(new)
        if controller_ref(old) != controller_ref(new):
            self._pod_event(old)

    # --- sync -------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        sts = self.sets.store.get(key)
        if sts is None:
            return
        pods = [p for p in await self._claim_pods(sts) if parent_and_ordinal(p)[0] == sts["metadata"]["name"]]
        revisions = self.history.list(sts)
        cur, upd, collisions = await self._revisions(sts, revisions)
        try:
            status = await self._update_set(sts, cur, upd, collisions, pods)
        finally:
            live = {cur["metadata"]["name"], upd["metadata"]["name"]} | {revision_of(p) for p in pods}
            limit = sts["spec"].get("revisionHistoryLimit")
            await self.history.truncate(revisions, live, 10 if limit is None else int(limit))
        await self._write_status(sts, status)
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if min_ready and status["availableReplicas"] != sts["spec"].get("replicas", 1):
            self.queue.add_after(key, min_ready)

    async def _claim_pods(self, sts: Obj) -> list[Obj]:
        claimer = Claimer(self.client, PODS, sts, new_controller_ref(sts, "apps/v1", "StatefulSet"),
                          from_label_selector(sts["spec"].get("selector")),
                          owner_reader(self.client, STATEFULSETS, sts))
        return await claimer.claim(candidates(self.pods.store, sts),
                                   lambda p: parent_and_ordinal(p)[0] == sts["metadata"]["name"])

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """``getStatefulSetRevisions``: the update revision is the template's
        (the latest, an older one renumbered, or a new one); the current one
        is the status' ``currentRevision`` (the update one at first)."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        patch = template_patch(sts)
        n = hist.next_revision(revisions)
        labels = dict(sts["spec"]["template"].get("metadata", {}).get("labels") or {})
        candidate = hist.new_revision(sts, patch, n, labels)
        equal = [r for r in revisions if hist.same_data(r, candidate)]
        if equal and equal[-1] is revisions[-1]:
            upd = revisions[-1]
        elif equal:
            upd = await self.history.renumber(equal[-1], n)
        else:
            upd, collisions = await self.history.create(sts, candidate, patch, collisions, label=HASH_LABEL)
        current_name = (sts.get("status") or {}).get("currentRevision")
        cur = next((r for r in revisions if r["metadata"]["name"] == current_name), upd)
        return cur, upd, collisions

    async def _update_set(self, sts: Obj, cur: Obj, upd: Obj, collisions: int, pods: list[Obj]) -> Obj:
        cur_set, upd_set = hist.apply_revision(sts, cur), hist.apply_revision(sts, upd)
        cur_name, upd_name = cur["metadata"]["name"], upd["metadata"]["name"]
        spec = sts["spec"]
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock()
        count, start = int(spec.get("replicas", 1)), start_ordinal(sts)
        replicas: list[Obj | None] = [None] * count
        condemned: list[Obj] = []
        for p in pods:
            i = ordinal(p)
            if start <= i < start + count:
                replicas[i - start] = p
            elif i >= 0:
                condemned.append(p)
        reps: list[Obj] = [p if p is not None else versioned_pod(cur_set, upd_set, cur_name, upd_name, start + k)
                           for k, p in enumerate(replicas)]
        condemned.sort(key=ordinal, reverse=True)
        unhealthy = [p for p in reps + condemned if not healthy(p)]
        first_unhealthy = min(unhealthy, key=ordinal) if unhealthy else None

        def status() -> Obj:
            st = replica_status(reps + condemned, min_ready, now, cur_name, upd_name)
            st.update(observedGeneration=sts["metadata"].get("generation", 0), currentRevision=cur_name,
                      updateRevision=upd_name, collisionCount=collisions)
            return st

        if sts["metadata"].get("deletionTimestamp"):
            return status()
        monotonic = spec.get("podManagementPolicy") != "Parallel"

        async def replica(k: int) -> bool:
            return await self._process_replica(sts, upd_set, reps, k, monotonic, min_ready, now)

        async def retention(k: int) -> bool:
            await self._fix_claims(sts, condemned[k], condemned=True)
            return False

        async def condemn(k: int) -> bool:
            p = condemned[k]
            if is_terminating(p):
                return monotonic
            if monotonic and p is not first_unhealthy and not running_and_available(p, min_ready, now):
                return True
            await self._delete_pod(sts, p)
            return monotonic

        for step, items in ((replica, reps), (retention, condemned), (condemn, condemned)):
            if await _run_for_all(len(items), step, monotonic):
                return status()
        st = status()
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return st
        partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
        for k in range(len(reps) - 1, partition - 1, -1):
            p = reps[k]
            if revision_of(p) != upd_name and not is_terminating(p):
                await self._delete_pod(sts, p, log_update=True)
                st["currentReplicas"] -= 1
                return st
            if not healthy(p):
                return st
        return st

    async def _process_replica(self, sts: Obj, upd_set: Obj, reps: list[Obj], k: int, monotonic: bool,
                               min_ready: int, now: float) -> bool:
        """``processReplica``: True stops this sync (a monotonic set waits)."""
        p = reps[k]
        ph = phase(p)
        if ph in ("Failed", "Succeeded"):
            ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
            if ph == "Failed":
                self.recorder.warning(sts, "RecreatingFailedPod",
                                      f"StatefulSet {ns}/{name} is recreating failed Pod {p['metadata']['name']}")
            else:
                self.recorder.normal(sts, "RecreatingTerminatedPod",
                                     f"StatefulSet {ns}/{name} is recreating terminated Pod {p['metadata']['name']}")
            if not is_terminating(p):
                await self._delete_pod(sts, p)
            return True
        if not is_created(p):
            if self._claim_is_stale(sts, p):
                return True
            created = await self._create_pod(sts, p)
            return monotonic or not created
        if ph == "Pending":
            await self._create_claims(sts, p)
        if monotonic and (is_terminating(p) or not running_and_available(p, min_ready, now)):
            return True
        if not identity_matches(sts, p):
            await self._fix_identity(sts, p)
        await self._fix_claims(upd_set, p, condemned=False)
        return False

    # --- writes -------------------------------------------------------------------------------------
    async def _create_claims(self, sts: Obj, pod: Obj) -> None:
        """``createPersistentVolumeClaims``: the missing claims of the pod's ordinal."""
        for _, c in claims(sts, ordinal(pod)):
            if self.claims.store.get_by(c["metadata"]["namespace"], c["metadata"]["name"]) is not None:
                continue
            msg = (f"Claim {c['metadata']['name']} Pod {pod['metadata']['name']} "
                   f"in StatefulSet {sts['metadata']['name']}")
            try:
                await self.client.create(PVCS, c)
            except APIError as e:
                if is_already_exists(e):
                    continue
                self.recorder.warning(sts, "FailedCreate", f"create {msg} failed error: {e}")
                raise
            self.recorder.normal(sts, "SuccessfulCreate", f"create {msg} success")

    async def _create_pod(self, sts: Obj, pod: Obj) -> bool:
        """``CreateStatefulPod``: claims first; False when the pod already
        exists (a cache that lags: the informer event will come)."""
        await self._create_claims(sts, pod)
        msg = f"Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
        try:
            await self.client.create(PODS, pod, sts["metadata"]["namespace"])
        except APIError as e:
            if is_already_exists(e):
                return False
            self.recorder.warning(sts, "FailedCreate", f"create {msg} failed error: {e}")
            raise
        self.recorder.normal(sts, "SuccessfulCreate", f"create {msg} successful")
        return True

    async def _delete_pod(self, sts: Obj, pod: Obj, log_update: bool = False) -> None:
        msg = f"Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
        if log_update:
            log.info("%s: terminating for update", msg)
        try:
            await self.client.delete(PODS, pod["metadata"]["name"], sts["metadata"]["namespace"],
                                     uid=pod["metadata"].get("uid"))
        except APIError as e:
            if is_not_found(e) or is_conflict(e):
                return
            self.recorder.warning(sts, "FailedDelete", f"delete {msg} failed error: {e}")
            raise
        self.recorder.normal(sts, "SuccessfulDelete", f"delete {msg} successful")

    async def _fix_identity(self, sts: Obj, pod: Obj) -> None:
        i = ordinal(pod)
        patch = {"metadata": {"labels": {POD_NAME_LABEL: pod["metadata"]["name"], POD_INDEX_LABEL: str(i)}}}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], patch, sts["metadata"]["namespace"],
                                    content_type=MERGE)
        except APIError as e:
            if not is_not_found(e):
                raise
        msg = f"Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
        self.recorder.normal(sts, "SuccessfulUpdate", f"update {msg} successful")

    # --- claim retention ------------------------------------------------------------------------
    def _claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """``PodClaimIsStale``: a claim still owned by an earlier pod of this
        ordinal is about to be collected; wait for it."""
        for _, c in claims(sts, ordinal(pod)):
            have = self.claims.store.get_by(c["metadata"]["namespace"], c["metadata"]["name"])
            if have is None:
                continue
            for ref in have["metadata"].get("ownerReferences") or ():
                if ref.get("kind") == "Pod" and ref.get("name") == pod["metadata"]["name"]:
                    return True
        return False

    async def _fix_claims(self, sts: Obj, pod: Obj, condemned: bool) -> None:
        """``UpdatePodClaimForRetentionPolicy``: whenDeleted=Delete makes the
        set own the claims, whenScaled=Delete makes a condemned pod own them;
        Retain takes those references away."""
        pol = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        set_ref = new_controller_ref(sts, "apps/v1", "StatefulSet")
        pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                   "uid": pod["metadata"].get("uid", "")}
        for _, c in claims(sts, ordinal(pod)):
            have = self.claims.store.get_by(c["metadata"]["namespace"], c["metadata"]["name"])
            if have is None:
                continue
            refs = [r for r in have["metadata"].get("ownerReferences") or ()
                    if r.get("uid") not in (set_ref["uid"], pod_ref["uid"])]
            if pol.get("whenDeleted") == "Delete":
                refs.append(set_ref)
            if condemned and pol.get("whenScaled") == "Delete" and pod_ref["uid"]:
                refs.append(pod_ref)
            if refs == (have["metadata"].get("ownerReferences") or []):
                continue
            body = copy.deepcopy(have)
            body["metadata"]["ownerReferences"] = refs
            await self.client.update(PVCS, body)

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        """``updateStatefulSetStatus``: completes a finished rolling update;
        writes only what changed."""
        if ((sts["spec"].get("updateStrategy") or {}).get("type") == "RollingUpdate"
                and status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]):
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = sts.get("status") or {}
        if all(old.get(k, 0 if k not in ("currentRevision", "updateRevision") else "") == status[k]
               for k in _STATUS_KEYS):
            return
        new_status = dict(old, **status)
        try:
            await self.client.update_status(STATEFULSETS, dict(sts, status=new_status))
        except APIError as e:
            if not is_conflict(e):
                raise
            fresh = await self.client.get(STATEFULSETS, sts["metadata"]["name"], sts["metadata"]["namespace"])
            await self.client.update_status(STATEFULSETS, dict(fresh, status=dict(fresh.get("status") or {},
                                                                                  **status)))


async def _run_for_all(n: int, fn: Callable[[int], Awaitable[bool]], monotonic: bool) -> bool:
    """``runForAll``: in order, stopping at the first that says stop; or,
    for Parallel, all of them in slow-start batches."""
    if monotonic:
        for k in range(n):
            if await fn(k):
                return True
        return False
    todo = iter(range(n))

    async def one() -> None:
        await fn(next(todo))
    _, err = await slow_start_batch(n, one)
    if err is not None:
        raise err
    return False
