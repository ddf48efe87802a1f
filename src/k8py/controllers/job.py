"""The Job controller (kube's ``pkg/controller/job``), tracking with finalizers.

Every pod a Job creates carries the ``batch.kubernetes.io/job-tracking``
finalizer.  A sync counts the Job's pods from the shared pod cache (indexed
by controller UID, so no scan over all pods): a finished pod's UID goes to
``status.uncountedTerminatedPods`` first, then its finalizer is removed,
then it moves to ``succeeded``/``failed`` — so a pod is counted exactly once
even if the pod is deleted or the controller restarts in between.

Then it creates pods up to ``min(parallelism, completions - succeeded)``
(slow start: batches of 1, 2, 4, ...; after pod failures only once the
back-off of 10 s doubling per failure has passed), or deletes the surplus.
For ``Indexed`` Jobs each pod gets a completion index (annotation, label,
``JOB_COMPLETION_INDEX`` env, hostname ``<job>-<index>``) and
``status.completedIndexes`` lists the succeeded ones.

The end is two-step as in kube 1.31+: ``SuccessCriteriaMet`` or
``FailureTarget`` (BackoffLimitExceeded, DeadlineExceeded) is written first;
``Complete`` / ``Failed`` follow once every pod is counted and none is
terminating.  ``suspend`` deletes the active pods and sets ``Suspended``.
``podFailurePolicy``, ``successPolicy`` and ``backoffLimitPerIndex`` are not
implemented (a Job using them is run by the rules above).

Pod events reach the Job after a 1 s batching delay, spec changes at once,
as kube does.  Orphaned pods that still carry the finalizer are cleaned by
the same workers (keys ``("orphan", pod key)``)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any, Callable, Hashable

from ..api.labels import from_label_selector
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import APIError, STRATEGIC, is_not_found, resource
from ..client.timeutil import now_rfc3339, parse_time
from .context import ControllerContext, register
from .expectations import Expectations, UIDSet
from .jobtracking import FinalizerTracking, FinishedCond
from .jobutil import (
    CONTROLLER_UID_LABEL, FAILED, FAILURE_TARGET, MAX_POD_CREATE_DELETE_PER_SYNC, MSG_BACKOFF, MSG_COMPLETIONS,
    MSG_DEADLINE, REASON_BACKOFF, REASON_COMPLETIONS, REASON_DEADLINE, SUCCESS_CRITERIA_MET, SUSPENDED,
    TRACKING_FINALIZER, BackoffRecord, completion_index, condition, controller_uid, deleting, duplicated_index_pods,
    ensure_condition, finished, first_pending_indexes, has_finalizer, is_active, is_failed, is_indexed, is_ready,
    is_terminating, only_replace_failed, parse_indexes, past_backoff_limit_on_failure, phase, pod_for,
    removal_order, suspended, total, with_indexes,
)

log = logging.getLogger(__name__)

JOBS = resource("jobs.batch")
PODS = resource("pods")
SYNC_BATCH_PERIOD = 1.0
IDX_CONTROLLER = "controller-uid"      # pods by their controller ownerReference's uid
IDX_JOB_LABEL = "job-controller-uid"   # pods by their batch.kubernetes.io/controller-uid label
IDX_UID = "uid"
Obj = dict[str, Any]


def _by_controller_uid(o: Obj) -> list[str]:
    uid = controller_uid(o)
    return [uid] if uid else []


def _by_job_label(o: Obj) -> list[str]:
    v = (o["metadata"].get("labels") or {}).get(CONTROLLER_UID_LABEL)
    return [v] if v else []


def _by_uid(o: Obj) -> list[str]:
    return [o["metadata"]["uid"]]


def _owner_ref(o: Obj) -> Obj | None:
    for r in o["metadata"].get("ownerReferences") or ():
        if r.get("controller"):
            return r
    return None


@register("job")
class JobController(FinalizerTracking, Controller):
    name = "job"
    workers = 5

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.recorder = ctx.recorder("job-controller")
        self.jobs = ctx.informers.informer("jobs.batch")
        self.pods = ctx.informers.informer("pods")
        self.jobs.store.add_indexer(IDX_UID, _by_uid)
        self.pods.store.add_indexer(IDX_CONTROLLER, _by_controller_uid)
        self.pods.store.add_indexer(IDX_JOB_LABEL, _by_job_label)
        self.expectations = Expectations()
        self.rm_expected = UIDSet()          # pods whose finalizer removal is not yet seen
        self.backoff: dict[str, BackoffRecord] = {}
        self.jobs.add_handler(self._job_added, self._job_updated, self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, lambda p: self._pod_deleted(p, True))

    # -- event handlers ------------------------------------------------------------------------------
    def _job_added(self, job: Obj) -> None:
        self.queue.add(key_of(job))

    def _job_updated(self, old: Obj, cur: Obj) -> None:
        key = key_of(cur)
        if cur["metadata"].get("generation") == old["metadata"].get("generation"):
            self.queue.add_after(key, SYNC_BATCH_PERIOD)
        else:
            self.queue.add(key)
        if finished(cur):
            self._cleanup_finalizers(cur)
        ads = cur["spec"].get("activeDeadlineSeconds")
        start = parse_time((cur.get("status") or {}).get("startTime"))
        if start is not None and ads is not None and ads != old["spec"].get("activeDeadlineSeconds"):
            self.queue.add_after(key, ads - (self.clock() - start))

    def _job_deleted(self, job: Obj) -> None:
        self.queue.add(key_of(job))
        self._cleanup_finalizers(job)

    def _cleanup_finalizers(self, job: Obj) -> None:
        for p in self.pods.store.by_index(IDX_CONTROLLER, job["metadata"]["uid"]):
            if has_finalizer(p):
                self.queue.add(("orphan", key_of(p)))

    def _resolve(self, pod: Obj, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.store.get_by(pod["metadata"].get("namespace"), ref.get("name", ""))
        return job if job is not None and job["metadata"]["uid"] == ref.get("uid") else None

    def _enqueue_label_owner(self, pod: Obj) -> None:
        for uid in _by_job_label(pod):
            for job in self.jobs.store.by_index(IDX_UID, uid):
                self.queue.add_after(key_of(job), SYNC_BATCH_PERIOD)

    def _pod_added(self, pod: Obj) -> None:
        if deleting(pod):
            self._pod_deleted(pod, False)
            return
        job = self._resolve(pod, _owner_ref(pod))
        if job is not None:
            key = key_of(job)
            self.expectations.creation_observed(key)
            self.queue.add_after(key, SYNC_BATCH_PERIOD)
            return
        if _owner_ref(pod) is None:
            if has_finalizer(pod):
                self.queue.add(("orphan", key_of(pod)))
            self._enqueue_label_owner(pod)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        if deleting(cur):
            self._pod_deleted(cur, False)
            return
        uid = cur["metadata"]["uid"]
        fin_removed = not has_finalizer(cur)
        cur_ref, old_ref = _owner_ref(cur), _owner_ref(old)
        for ref in ([old_ref] if old_ref != cur_ref and old_ref else []) + ([cur_ref] if cur_ref else []):
            job = self._resolve(cur, ref)
            if job is not None:
                key = key_of(job)
                if fin_removed:
                    self.rm_expected.observed(key, uid)
                self.queue.add_after(key, SYNC_BATCH_PERIOD)
        if cur_ref is None:
            if has_finalizer(cur):
                self.queue.add(("orphan", key_of(cur)))
            if old["metadata"].get("labels") != cur["metadata"].get("labels") or old_ref != cur_ref:
                self._enqueue_label_owner(cur)

    def _pod_deleted(self, pod: Obj, final: bool) -> None:
        ref = _owner_ref(pod)
        fin = has_finalizer(pod)
        if ref is None:
            if fin and not final:
                self.queue.add(("orphan", key_of(pod)))
            return
        job = self._resolve(pod, ref)
        if job is None or finished(job):
            if fin and not final:
                self.queue.add(("orphan", key_of(pod)))
            return
        key = key_of(job)
        self.expectations.deletion_observed(key)
        if final or not fin:
            self.rm_expected.observed(key, pod["metadata"]["uid"])
        self.queue.add_after(key, SYNC_BATCH_PERIOD)

    # -- sync ----------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> None:
        if isinstance(key, tuple):
            await self._sync_orphan(key[1])
        else:
            await self._sync_job(str(key))

    async def _sync_orphan(self, pod_key: str) -> None:
        pod = self.pods.store.get(pod_key)
        if pod is None or not has_finalizer(pod):
            return
        ref = _owner_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            job = self._resolve(pod, ref)
            if job is not None and not finished(job):
                return  # adopted, or still running: its Job counts it
        await self._remove_finalizer(pod)

    async def _pods_for(self, job: Obj) -> list[Obj]:
        """The Job's pods: those it controls, plus orphans its selector matches (adopted)."""
        uid = job["metadata"]["uid"]
        pods = list(self.pods.store.by_index(IDX_CONTROLLER, uid))
        orphans = [p for p in self.pods.store.by_index(IDX_JOB_LABEL, uid)
                   if _owner_ref(p) is None and not deleting(p)]
        if orphans and not deleting(job):
            sel = from_label_selector(job["spec"].get("selector"))
            orphans = [p for p in orphans if sel.matches(p["metadata"].get("labels"))]
            if orphans:
                fresh = await self.client.get(JOBS, job["metadata"]["name"], job["metadata"]["namespace"])
                if fresh["metadata"]["uid"] == uid and not deleting(fresh):
                    for p in orphans:
                        adopted = await self._adopt(job, p)
                        if adopted is not None:
                            pods.append(adopted)
        return pods

    async def _adopt(self, job: Obj, pod: Obj) -> Obj | None:
        md, jmd = pod["metadata"], job["metadata"]
        ref = {"apiVersion": "batch/v1", "kind": "Job", "name": jmd["name"], "uid": jmd["uid"],
               "controller": True, "blockOwnerDeletion": True}
        try:
            return await self.client.patch(PODS, md["name"], {"metadata": {
                "ownerReferences": [ref], "uid": md["uid"], "finalizers": [TRACKING_FINALIZER]}},
                md["namespace"], content_type=STRATEGIC)
        except APIError as e:
            if is_not_found(e) or e.code in (409, 422):
                return None
            raise

    async def _sync_job(self, key: str) -> None:
        shared = self.jobs.store.get(key)
        if shared is None:
            self.expectations.delete(key)
            self.rm_expected.delete(key)
            self.backoff.pop(key, None)
            return
        if finished(shared):
            self.backoff.pop(key, None)
            return
        managed_by = shared["spec"].get("managedBy")
        if managed_by and managed_by != "kubernetes.io/job-controller":
            return
        job = copy.deepcopy(shared)
        spec, st = job["spec"], job.setdefault("status", {})
        if spec.get("completionMode") not in (None, "NonIndexed", "Indexed"):
            self.recorder.warning(job, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
            return
        unc = st.get("uncountedTerminatedPods") or {}
        st["uncountedTerminatedPods"] = unc
        unc_s, unc_f = set(unc.get("succeeded") or ()), set(unc.get("failed") or ())
        satisfied = self.expectations.satisfied(key)
        pods = await self._pods_for(job)
        now = self.clock()
        active_pods = [p for p in pods if is_active(p)]
        active, ready = len(active_pods), sum(map(is_ready, active_pods))
        terminating = sum(map(is_terminating, pods))
        expected_rm = self.rm_expected.get(key)
        completions = spec.get("completions")
        indexed = is_indexed(job)

        def countable(p: Obj, uncounted: set[str]) -> bool:
            uid = p["metadata"]["uid"]
            if not has_finalizer(p) or uid in uncounted or uid in expected_rm:
                return False
            return not indexed or 0 <= completion_index(p) < (completions or 0)
        new_succ = [p for p in pods if countable(p, unc_s) and phase(p) == "Succeeded"]
        new_fail = [p for p in pods if countable(p, unc_f) and is_failed(p, job)]
        succeeded = st.get("succeeded", 0) + len(new_succ) + len(unc_s)
        failed = st.get("failed", 0) + len(new_fail) + len(unc_f)
        started = False
        if not st.get("startTime") and not suspended(job):
            st["startTime"] = now_rfc3339(now)
            started = True
        record = self.backoff.get(key, BackoffRecord()).updated(new_succ, new_fail)

        fc: FinishedCond | None = None
        scm = condition(job, SUCCESS_CRITERIA_MET)
        ft = condition(job, FAILURE_TARGET)
        if scm is not None and scm.get("status") == "True":
            fc = (SUCCESS_CRITERIA_MET, scm.get("reason", ""), scm.get("message", ""))
        elif ft is not None and ft.get("status") == "True":
            fc = (FAILED, ft.get("reason", ""), ft.get("message", ""))
        elif failed > spec.get("backoffLimit", 6) or past_backoff_limit_on_failure(job, pods):
            fc = (FAILURE_TARGET, REASON_BACKOFF, MSG_BACKOFF)
        elif self._past_deadline(job, now):
            fc = (FAILURE_TARGET, REASON_DEADLINE, MSG_DEADLINE)
        elif spec.get("activeDeadlineSeconds") is not None and not suspended(job):
            start = parse_time(st.get("startTime")) or now
            self.queue.add_after(key, spec["activeDeadlineSeconds"] - (now - start))

        prev_idx: list[tuple[int, int]] = []
        succ_idx: list[tuple[int, int]] = []
        if indexed:
            prev_idx = parse_indexes(st.get("completedIndexes"), completions or 0)
            succ_idx = with_indexes(prev_idx, (completion_index(p) for p in pods if phase(p) == "Succeeded"
                                               and has_finalizer(p) and 0 <= completion_index(p) < completions))
            succeeded = total(succ_idx)

        err: BaseException | None = None
        suspend_changed = False
        if fc is not None:
            deleted_ready, deleted, err = await self._delete_pods(job, key, active_pods, False)
            if deleted != active or not satisfied:
                fc = None  # finalizers or not-yet-seen pods remain
            active -= deleted
            terminating += deleted
            ready -= deleted_ready
        else:
            managed = False
            if satisfied and not deleting(job):
                active, ready, terminating, err = await self._manage(
                    job, key, active_pods, succeeded, ready, terminating, record, succ_idx)
                managed = True
            if completions is None:
                complete = succeeded > 0 and active == 0
            else:
                complete = succeeded >= completions and active == 0
            if complete:
                fc = (SUCCESS_CRITERIA_MET, REASON_COMPLETIONS, MSG_COMPLETIONS)
            elif managed:
                conds = st.setdefault("conditions", [])
                if suspended(job):
                    if ensure_condition(conds, SUSPENDED, "True", "JobSuspended", "Job suspended", now):
                        suspend_changed = True
                        self.recorder.normal(job, "Suspended", "Job suspended")
                elif ensure_condition(conds, SUSPENDED, "False", "JobResumed", "Job resumed", now):
                    suspend_changed = True
                    self.recorder.normal(job, "Resumed", "Job resumed")
                    st["startTime"] = now_rfc3339(now)
                if not conds:
                    st.pop("conditions")

        needs_flush = (started or suspend_changed or active != st.get("active", 0) or ready != st.get("ready")
                       or terminating != st.get("terminating"))
        st["active"], st["ready"], st["terminating"] = active, ready, terminating
        await self._track(job, key, pods, fc, expected_rm, prev_idx, succ_idx, unc_s, unc_f, needs_flush,
                          terminating, record)
        if err is not None:
            raise err

    def _past_deadline(self, job: Obj, now: float) -> bool:
        ads = job["spec"].get("activeDeadlineSeconds")
        start = parse_time((job.get("status") or {}).get("startTime"))
        if ads is None or start is None or suspended(job):
            return False
        return now - start >= ads

    # -- pods ----------------------------------------------------------------------------------------
    async def _manage(self, job: Obj, key: str, active_pods: list[Obj], succeeded: int, ready: int,
                      terminating: int, record: BackoffRecord, succ_idx: list[tuple[int, int]]
                      ) -> tuple[int, int, int, BaseException | None]:
        """Creates or deletes pods towards the wanted number of active pods."""
        spec = job["spec"]
        active = len(active_pods)
        if suspended(job):
            self.expectations.expect(key, dels=active)
            dr, d, err = await self._delete_pods(job, key, self._for_removal(job, active_pods, active), True)
            return active - d, ready - dr, terminating + d, err
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - succeeded, parallelism))
        to_delete = self._for_removal(job, active_pods, max(0, active - want))[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            self.expectations.expect(key, dels=len(to_delete))
            dr, d, err = await self._delete_pods(job, key, to_delete, True)
            return active - d, ready - dr, terminating + d, err
        diff = want - (terminating if only_replace_failed(job) else 0) - active
        if diff <= 0:
            return active, ready, terminating, None
        wait = record.remaining(self.clock())
        if wait > 0:
            self.queue.add_after(key, max(wait, SYNC_BATCH_PERIOD))
            return active, ready, terminating, None
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int] = []
        if is_indexed(job):
            indexes = first_pending_indexes(succ_idx, active_pods, diff, completions)
            diff = len(indexes)
        self.expectations.expect(key, adds=diff)
        err: BaseException | None = None
        batch, done = min(diff, 1), 0
        while done < diff:
            chunk = [pod_for(job, indexes[done + i] if indexes else -1) for i in range(batch)]
            results = await asyncio.gather(*(self._create(job, key, p) for p in chunk))
            failures = [r for r in results if r is not None]
            done += batch
            active += batch - len(failures)
            if failures:
                err = failures[0]
                for _ in range(diff - done):  # skipped by slow start: not expected any more
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, diff - done)
        return active, ready, terminating, err

    async def _create(self, job: Obj, key: str, pod: Obj) -> BaseException | None:
        try:
            made = await self.client.create(PODS, pod, job["metadata"]["namespace"])
        except APIError as e:
            self.expectations.creation_observed(key)
            if e.code == 403 and "being terminated" in str(e):
                return None
            self.recorder.warning(job, "FailedCreate", f"Error creating: {e.status.get('message', e)}")
            return e
        self.recorder.normal(job, "SuccessfulCreate", f"Created pod: {made['metadata']['name']}")
        return None

    def _for_removal(self, job: Obj, active_pods: list[Obj], at_least: int) -> list[Obj]:
        rm, left = [], active_pods
        if is_indexed(job):
            rm, left = duplicated_index_pods(active_pods, job["spec"].get("completions") or 0)
        if len(rm) < at_least:
            rm += sorted(left, key=removal_order)[:at_least - len(rm)]
        return rm

    async def _delete_pods(self, job: Obj, key: str, pods: list[Obj], drop_finalizer: bool
                           ) -> tuple[int, int, BaseException | None]:
        """Deletes pods (first dropping the finalizer when they are not to be
        counted); returns (ready deleted, deleted, first error)."""
        async def one(p: Obj) -> BaseException | None:
            md = p["metadata"]
            try:
                if drop_finalizer:
                    await self._remove_finalizer(p)
                await self.client.delete(PODS, md["name"], md["namespace"])
            except APIError as e:
                if drop_finalizer:
                    self.expectations.deletion_observed(key)
                if is_not_found(e):
                    return None
                self.recorder.warning(job, "FailedDelete", f"Error deleting: {e.status.get('message', e)}")
                return e
            self.recorder.normal(job, "SuccessfulDelete", f"Deleted pod: {md['name']}")
            return None
        results = await asyncio.gather(*(one(p) for p in pods))
        errs = [r for r in results if r is not None]
        deleted_ready = sum(1 for p, r in zip(pods, results) if r is None and is_ready(p))
        return deleted_ready, len(pods) - len(errs), (errs[0] if errs else None)
