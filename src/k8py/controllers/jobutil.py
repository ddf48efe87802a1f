"""Pure helpers of the Job controller (kube's ``pkg/controller/job`` utils):
pod predicates, job conditions, completion-index intervals, the pod
failure back-off record and the pod a Job creates.  No I/O here, so the
arithmetic is tested on its own."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable

from ..client.timeutil import now_rfc3339, parse_time

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"

# condition types and reasons (k8s.io/api/batch/v1)
COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
SUCCESS_CRITERIA_MET, FAILURE_TARGET = "SuccessCriteriaMet", "FailureTarget"
REASON_BACKOFF = "BackoffLimitExceeded"
MSG_BACKOFF = "Job has reached the specified backoff limit"
REASON_DEADLINE = "DeadlineExceeded"
MSG_DEADLINE = "Job was active longer than specified deadline"
REASON_COMPLETIONS = "CompletionsReached"
MSG_COMPLETIONS = "Reached expected number of succeeded pods"

# pod failure back-off: 10 s doubling, capped (kube's DefaultJobPodFailureBackOff / Max...)
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500


# --- pods ------------------------------------------------------------------------------------------
def phase(p: Obj) -> str:
    return (p.get("status") or {}).get("phase", "")


def deleting(o: Obj) -> bool:
    return bool(o["metadata"].get("deletionTimestamp"))


def has_finalizer(p: Obj) -> bool:
    return TRACKING_FINALIZER in (p["metadata"].get("finalizers") or ())


def is_active(p: Obj) -> bool:
    """``controller.FilterActivePods``: not terminal and not being deleted."""
    return phase(p) not in ("Succeeded", "Failed") and not deleting(p)


def is_terminating(p: Obj) -> bool:
    return deleting(p) and phase(p) not in ("Succeeded", "Failed")


def is_failed(p: Obj, job: Obj) -> bool:
    """``isPodFailed``: Failed, or (unless only failed pods are replaced) deleted before succeeding."""
    if phase(p) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return deleting(p) and phase(p) != "Succeeded"


def only_replace_failed(job: Obj) -> bool:
    spec = job["spec"]
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_ready(p: Obj) -> bool:
    for c in (p.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def controller_uid(o: Obj) -> str | None:
    for r in o["metadata"].get("ownerReferences") or ():
        if r.get("controller"):
            return r.get("uid")
    return None


def completion_index(p: Obj) -> int:
    """The pod's completion index, -1 when absent or malformed."""
    v = (p["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    if v is None or not v.isdigit() or (len(v) > 1 and v[0] == "0"):
        return -1
    return int(v)


def finished_time(p: Obj) -> float:
    """``getFinishedTime``: last container finish, else Ready=False transition,
    else deletion time minus grace, else creation time."""
    st = p.get("status") or {}
    latest = None
    statuses = st.get("containerStatuses") or []
    for cs in statuses:
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is None:
            latest = None
            break
        latest = t if latest is None else max(latest, t)
    if statuses and latest is not None:
        return latest
    for c in st.get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "False":
            t = parse_time(c.get("lastTransitionTime"))
            if t is not None:
                return t
    md = p["metadata"]
    if md.get("deletionTimestamp"):
        t = parse_time(md["deletionTimestamp"])
        if t is not None:
            return t - (md.get("deletionGracePeriodSeconds") or 0)
    return parse_time(md.get("creationTimestamp")) or 0.0


def removal_order(p: Obj) -> tuple:
    """``controller.ActivePods`` order: the pods least far along are removed first."""
    st = p.get("status") or {}
    restarts = sum(c.get("restartCount", 0) for c in st.get("containerStatuses") or ())
    rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(p), 1)
    return (bool(p.get("spec", {}).get("nodeName")), rank, is_ready(p), -restarts,
            -(parse_time(p["metadata"].get("creationTimestamp")) or 0.0))


# --- jobs ------------------------------------------------------------------------------------------
def is_indexed(job: Obj) -> bool:
    return job["spec"].get("completionMode") == "Indexed"


def suspended(job: Obj) -> bool:
    return bool(job["spec"].get("suspend"))


def condition(job: Obj, ctype: str) -> Obj | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def finished(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` when the Job has that condition True."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True":
            return c["type"]
    return None


def finish_time(job: Obj) -> float | None:
    """When the Job's terminal condition became true (ttl-after-finished's clock)."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> Obj:
    ts = now_rfc3339(now)
    c = {"type": ctype, "status": status, "lastProbeTime": ts, "lastTransitionTime": ts}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def ensure_condition(conds: list[Obj], ctype: str, status: str, reason: str, message: str,
                     now: float) -> bool:
    """``ensureJobConditionStatus``: set or add a condition; never add a False one."""
    for i, c in enumerate(conds):
        if c.get("type") == ctype:
            if c.get("status") != status or c.get("reason", "") != reason or c.get("message", "") != message:
                conds[i] = new_condition(ctype, status, reason, message, now)
                return True
            return False
    if status != "False":
        conds.append(new_condition(ctype, status, reason, message, now))
        return True
    return False


def past_backoff_limit_on_failure(job: Obj, pods: Iterable[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running pods count against backoffLimit."""
    if job["spec"]["template"].get("spec", {}).get("restartPolicy") != "OnFailure":
        return False
    total = 0
    for p in pods:
        if phase(p) in ("Running", "Pending"):
            st = p.get("status") or {}
            for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                total += cs.get("restartCount", 0)
    limit = job["spec"].get("backoffLimit", 6)
    return total > 0 if limit == 0 else total >= limit


# --- completion indexes ----------------------------------------------------------------------------
def parse_indexes(s: str | None, completions: int) -> list[tuple[int, int]]:
    """``"0-2,4"`` -> ordered intervals, dropping indexes >= completions."""
    out: list[tuple[int, int]] = []
    for part in (s or "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            continue
        if lo >= completions:
            break
        hi = min(hi, completions - 1)
        if out and out[-1][1] + 1 >= lo:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def with_indexes(intervals: list[tuple[int, int]], new: Iterable[int]) -> list[tuple[int, int]]:
    s = set(new)
    for lo, hi in intervals:
        s.update(range(lo, hi + 1))
    out: list[tuple[int, int]] = []
    for i in sorted(s):
        if out and out[-1][1] + 1 == i:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def format_indexes(intervals: list[tuple[int, int]]) -> str:
    """kube's ``orderedIntervals.String``: ``0-2,4``, and ``5,6`` for a pair."""
    parts = []
    for lo, hi in intervals:
        if hi == lo:
            parts.append(str(lo))
        elif hi == lo + 1:
            parts.append(f"{lo},{hi}")
        else:
            parts.append(f"{lo}-{hi}")
    return ",".join(parts)


def total(intervals: list[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in intervals)


def has_index(intervals: list[tuple[int, int]], i: int) -> bool:
    return any(lo <= i <= hi for lo, hi in intervals)


def first_pending_indexes(succeeded: list[tuple[int, int]], active: Iterable[Obj], count: int,
                          completions: int) -> list[int]:
    """The lowest indexes neither succeeded nor held by an active pod."""
    taken = {completion_index(p) for p in active}
    out = []
    for i in range(completions):
        if len(out) >= count:
            break
        if i not in taken and not has_index(succeeded, i):
            out.append(i)
    return out


def duplicated_index_pods(active: list[Obj], completions: int) -> tuple[list[Obj], list[Obj]]:
    """Active pods to remove (no index, out of range, or a second pod of an index) and the rest."""
    rm, left, seen = [], [], set()
    for p in sorted(active, key=lambda p: (completion_index(p), not is_ready(p))):
        ix = completion_index(p)
        if ix < 0 or ix >= completions or ix in seen:
            rm.append(p)
        else:
            seen.add(ix)
            left.append(p)
    return rm, left


# --- pod failure back-off --------------------------------------------------------------------------
@dataclass
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def updated(self, new_succeeded: list[Obj], new_failed: list[Obj]) -> "BackoffRecord":
        """``newBackoffRecord``: failures since the last success, and the latest failure time."""
        if not new_failed:
            return BackoffRecord() if new_succeeded else BackoffRecord(self.failures_after_last_success,
                                                                       self.last_failure_time)
        failed = sorted(finished_time(p) for p in new_failed)
        if not new_succeeded:
            return BackoffRecord(self.failures_after_last_success + len(failed), failed[-1])
        last_success = max(finished_time(p) for p in new_succeeded)
        after = [t for t in failed if t > last_success]
        return BackoffRecord(len(after), after[-1] if after else None)

    def remaining(self, now: float, base: float = POD_FAILURE_BACKOFF,
                  cap: float = MAX_POD_FAILURE_BACKOFF) -> float:
        """Seconds until a replacement pod may be created."""
        if self.failures_after_last_success == 0 or self.last_failure_time is None:
            return 0.0
        delay = base
        for _ in range(1, self.failures_after_last_success):
            delay *= 2
            if delay >= cap:
                delay = cap
                break
        return max(0.0, delay - (now - self.last_failure_time))


# --- the pods a Job creates ------------------------------------------------------------------------
def pod_for(job: Obj, index: int = -1) -> Obj:
    """The pod to POST: the template, the tracking finalizer, the controller
    reference, and for Indexed Jobs the index annotation, label, env and hostname."""
    md = job["metadata"]
    tmpl = copy.deepcopy(job["spec"]["template"])
    tmeta = tmpl.get("metadata") or {}
    spec = tmpl.get("spec") or {}
    meta: Obj = {"generateName": f"{md['name']}-", "namespace": md["namespace"]}
    for k in ("labels", "annotations"):
        if tmeta.get(k):
            meta[k] = dict(tmeta[k])
    fins = list(tmeta.get("finalizers") or [])
    if TRACKING_FINALIZER not in fins:
        fins.append(TRACKING_FINALIZER)
    meta["finalizers"] = fins
    meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": md["name"],
                                "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}]
    if index >= 0:
        meta["generateName"] = f"{md['name']}-{index}-"
        meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
        meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
        if not spec.get("hostname"):
            spec["hostname"] = f"{md['name']}-{index}"
        env_var = {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or ():
                env = c.setdefault("env", [])
                if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                    env.append(dict(env_var))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
