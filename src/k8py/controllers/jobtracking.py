"""Counting a Job's finished pods with the ``batch.kubernetes.io/job-tracking``
finalizer (kube's ``trackJobStatusAndRemoveFinalizers``), as a mixin of
:class:`~k8py.controllers.job.JobController`.

A finished pod's UID goes to ``status.uncountedTerminatedPods`` and that
status is written *before* the pod's finalizer is removed; UIDs whose
finalizer is gone then move into ``succeeded``/``failed``.  So a pod is
counted once even if it vanishes, or the controller restarts, in between.
Last comes the terminal condition (``Complete``/``Failed``), once nothing is
uncounted and no pod is terminating."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ..client.events import EventRecorder
from ..client.rest import APIError, STRATEGIC, Client, is_not_found, resource
from .expectations import UIDSet
from .jobutil import (
    COMPLETE, FAILED, FAILURE_TARGET, MAX_UNCOUNTED_PODS, SUCCESS_CRITERIA_MET, TRACKING_FINALIZER, BackoffRecord,
    completion_index, condition, deleting, ensure_condition, format_indexes, has_finalizer, has_index, is_failed,
    is_indexed, new_condition, phase, total, with_indexes,
)

JOBS = resource("jobs.batch")
PODS = resource("pods")
Obj = dict[str, Any]
FinishedCond = tuple[str, str, str]    # (type, reason, message)


def _normalized(job: Obj) -> Obj:
    """Go's omitempty: zero counters are left out of the status sent."""
    st = job["status"]
    for f in ("active", "succeeded", "failed"):
        if not st.get(f):
            st.pop(f, None)
    if not st.get("completedIndexes"):
        st.pop("completedIndexes", None)
    return job


class FinalizerTracking:
    client: Client
    clock: Callable[[], float]
    recorder: EventRecorder
    rm_expected: UIDSet
    backoff: dict[str, BackoffRecord]

    async def _remove_finalizer(self, pod: Obj) -> None:
        md = pod["metadata"]
        try:
            await self.client.patch(PODS, md["name"], {"metadata": {
                "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}, md["namespace"],
                content_type=STRATEGIC)
        except APIError as e:
            if not is_not_found(e):
                raise

    async def _track(self, job: Obj, key: str, pods: list[Obj], fc: FinishedCond | None,
                     expected_rm: frozenset[str], prev_idx: list[tuple[int, int]],
                     succ_idx: list[tuple[int, int]], unc_s: set[str], unc_f: set[str], needs_flush: bool,
                     terminating: int, record: BackoffRecord) -> None:
        """kube's trackJobStatusAndRemoveFinalizers: finished pods to the
        uncounted lists, flush, drop their finalizers, fold them into the
        counters, then the terminal condition."""
        st = job["status"]
        unc = st["uncountedTerminatedPods"]
        completions = job["spec"].get("completions") or 0
        indexed = is_indexed(job)
        if indexed:
            pods = sorted(pods, key=completion_index)
        with_fin = {p["metadata"]["uid"] for p in pods
                    if has_finalizer(p) and p["metadata"]["uid"] not in expected_rm}
        if _clean_uncounted(st, with_fin):
            needs_flush = True
        to_remove: list[Obj] = []
        new_idx: list[int] = []
        reached_max = False
        for p in pods:
            uid = p["metadata"]["uid"]
            if not has_finalizer(p) or uid in expected_rm:
                continue
            failed = is_failed(p, job)
            if not (deleting(job) or fc is not None or phase(p) == "Succeeded" or failed):
                continue
            to_remove.append(p)
            if phase(p) == "Succeeded" and uid not in unc_f:
                if indexed:
                    ix = completion_index(p)
                    if 0 <= ix < completions and not has_index(prev_idx, ix):
                        new_idx.append(ix)
                        needs_flush = True
                elif uid not in unc_s:
                    unc.setdefault("succeeded", []).append(uid)
                    needs_flush = True
            elif failed or (fc is not None and fc[0] != SUCCESS_CRITERIA_MET):
                ix = completion_index(p)
                if uid not in unc_f and (not indexed or 0 <= ix < completions):
                    unc.setdefault("failed", []).append(uid)
                    needs_flush = True
            if len(new_idx) + len(unc.get("succeeded") or ()) + len(unc.get("failed") or ()) >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        if indexed:
            succ_idx = with_indexes(succ_idx, new_idx)
            s = format_indexes(succ_idx)
            if s != st.get("completedIndexes", ""):
                needs_flush = True
            st["succeeded"], st["completedIndexes"] = total(succ_idx), s
        now = self.clock()
        conds = st.setdefault("conditions", [])
        if fc is not None and fc[0] == FAILURE_TARGET:
            conds.append(new_condition(FAILURE_TARGET, "True", fc[1], fc[2], now))
            needs_flush = True
            fc = (FAILED, fc[1], fc[2])
        if fc is not None and fc[0] == SUCCESS_CRITERIA_MET:
            if condition(job, SUCCESS_CRITERIA_MET) is None:
                conds.append(new_condition(SUCCESS_CRITERIA_MET, "True", fc[1], fc[2], now))
                needs_flush = True
            fc = (COMPLETE, fc[1], fc[2])
        if not conds:
            st.pop("conditions")

        if needs_flush and to_remove:  # the uncounted UIDs must be stored before the finalizers go
            job = await self.client.update_status(JOBS, _normalized(job))
            job["status"].setdefault("uncountedTerminatedPods", {})
            self.backoff[key] = record
            needs_flush = False
        rm_err: BaseException | None = None
        if to_remove:
            self.rm_expected.expect(key, [p["metadata"]["uid"] for p in to_remove])
            results = await asyncio.gather(*(self._remove_finalizer(p) for p in to_remove),
                                           return_exceptions=True)
            for p, r in zip(to_remove, results):
                if r is None:
                    with_fin.discard(p["metadata"]["uid"])
                else:
                    self.rm_expected.observed(key, p["metadata"]["uid"])
                    rm_err = rm_err or r
        if _clean_uncounted(job["status"], with_fin):
            needs_flush = True
        if rm_err is not None:
            if needs_flush:
                await self.client.update_status(JOBS, _normalized(job))
            raise rm_err
        done = not reached_max and self._enact_finished(job, fc, terminating)
        if done or needs_flush:
            job = await self.client.update_status(JOBS, _normalized(job))
            self.backoff[key] = record
        if done and fc is not None:
            self._record_finished(job, fc)

    def _enact_finished(self, job: Obj, fc: FinishedCond | None, terminating: int) -> bool:
        if fc is None:
            return False
        st = job["status"]
        unc = st.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed") or terminating > 0:
            return False
        conds = st.setdefault("conditions", [])
        ensure_condition(conds, fc[0], "True", fc[1], fc[2], self.clock())
        if fc[0] == COMPLETE:
            st["completionTime"] = next(c for c in conds if c["type"] == COMPLETE)["lastTransitionTime"]
        return True

    def _record_finished(self, job: Obj, fc: FinishedCond) -> None:
        if fc[0] == COMPLETE:
            completions = job["spec"].get("completions")
            if completions is not None and job["status"].get("succeeded", 0) > completions:
                self.recorder.warning(job, "TooManySucceededPods",
                                      "Too many succeeded pods running after completion count reached")
            self.recorder.normal(job, "Completed", "Job completed")
        else:
            self.recorder.warning(job, fc[1], fc[2])


def _clean_uncounted(st: Obj, with_finalizer: set[str]) -> bool:
    """Moves uncounted UIDs whose finalizer is gone into the counters."""
    unc = st["uncountedTerminatedPods"]
    changed = False
    for f in ("succeeded", "failed"):
        lst = unc.get(f) or []
        keep = [u for u in lst if u in with_finalizer]
        if len(keep) != len(lst):
            changed = True
            st[f] = st.get(f, 0) + len(lst) - len(keep)
            if keep:
                unc[f] = keep
            else:
                unc.pop(f, None)
    return changed
