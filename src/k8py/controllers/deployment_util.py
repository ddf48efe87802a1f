"""Pure logic of the Deployment controller (kube's
``pkg/controller/deployment/util``): no I/O, so the arithmetic is tested
on its own.

* ``pod-template-hash``: ``controller_utils.compute_hash`` of the template
  and ``status.collisionCount``;
* rolling-update fenceposts: ``maxSurge`` rounds percentages up,
  ``maxUnavailable`` down, and both zero becomes ``maxUnavailable=1``;
* which ReplicaSet is new (same template, ignoring the hash label) and
  which are old; revisions and the annotations copied to ReplicaSets;
* proportional scaling of several active ReplicaSets;
* status and the Progressing/Available conditions with kube's reasons and
  messages.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable

from ..client.timeutil import now_rfc3339, parse_time

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2 ** 31 - 1

# condition types, reasons and messages
PROGRESSING, AVAILABLE, REPLICA_FAILURE = "Progressing", "Available", "ReplicaFailure"
RS_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
MSG_AVAILABLE = "Deployment has minimum availability."
MSG_UNAVAILABLE = "Deployment does not have minimum availability."

# --- small accessors ----------------------------------------------------------------------------
def replicas(obj: Obj | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_of(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def annotations(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def created(obj: Obj) -> float:
    return parse_time(obj["metadata"].get("creationTimestamp")) or 0.0


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


# --- rolling-update arithmetic ------------------------------------------------------------------
def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    s = str(v)
    if not s.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: {s!r} is not a percentage")
    pct = int(s[:-1])
    x = pct * total / 100
    return int(math.ceil(x)) if round_up else int(math.floor(x))


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Obj) -> Obj:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    ru = _rolling(d)
    u = resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d))[1]
    return min(u, replicas(d))


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    if is_rolling(d):
        current = sum(replicas(rs) for rs in all_rss if rs is not None)
        max_total = replicas(d) + max_surge(d)
        if current >= max_total:
            return replicas(new_rs)
        up = min(max_total - current, replicas(d) - replicas(new_rs))
        return replicas(new_rs) + up
    return replicas(d)


def _int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(annotations(rs)[key])
    except (KeyError, ValueError):
        return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS)
    return (desired is not None and replicas(rs) == replicas(d) and desired == replicas(d)
            and status_of(rs, "availableReplicas") == replicas(d))


def rs_fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    total = replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_of(d, "replicas")
    size = replicas(rs) * total / annotated if annotated else 0.0
    return int(math.floor(size + 0.5)) - replicas(rs)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac = rs_fraction(rs, d)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    a = annotations(rs)
    return a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(maximum)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    a = rs["metadata"].setdefault("annotations", {})
    changed = a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(maximum)
    a[DESIRED_REPLICAS], a[MAX_REPLICAS] = str(desired), str(maximum)
    return changed


# --- ordering -----------------------------------------------------------------------------------
def by_creation(rs: Obj) -> tuple[float, str]:
    return created(rs), rs["metadata"]["name"]


def revision(rs: Obj) -> int:
    try:
        return int(annotations(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def by_size_newer(rs: Obj) -> tuple:
    """Larger first; equal sizes newer first (``ReplicaSetsBySizeNewer``)."""
    t, name = by_creation(rs)
    return -replicas(rs), -t, _neg(name)


def by_size_older(rs: Obj) -> tuple:
    t, name = by_creation(rs)
    return -replicas(rs), t, name


def _neg(s: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in s) + (1,)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=by_creation, reverse=True)
    active = filter_active(olds + [new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    return active[0] if len(active) == 1 else None


# --- new and old ReplicaSets --------------------------------------------------------------------
def _template_without_hash(t: Obj) -> Obj:
    t = copy.deepcopy(t or {})
    md = t.get("metadata") or {}
    labels = dict(md.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        md["labels"] = labels
    else:
        md.pop("labels", None)
    for k in [k for k, v in md.items() if v in ({}, [], None, "")]:
        del md[k]
    if md:
        t["metadata"] = md
    else:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(t1: Obj, t2: Obj) -> bool:
    return _template_without_hash(t1) == _template_without_hash(t2)


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    tmpl = _template_without_hash((d.get("spec") or {}).get("template") or {})
    for rs in sorted(rss, key=by_creation):
        if _template_without_hash((rs.get("spec") or {}).get("template") or {}) == tmpl:
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ones with replicas, all old ones)."""
    new = find_new_rs(d, rss)
    all_old = [rs for rs in rss if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def copy_annotations_to_rs(d: Obj, rs: Obj) -> bool:
    a = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in annotations(d).items():
        if k in SKIP_COPY or a.get(k) == v:
            continue
        a[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations,
    raise the revision (keeping the superseded ones in revision-history),
    and on creation record desired/max replicas."""
    changed = copy_annotations_to_rs(d, rs)
    a = rs["metadata"].setdefault("annotations", {})
    old = a.get(REVISION)
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return False
    new_int = int(new_revision)
    if old_int < new_int:
        a[REVISION] = new_revision
        changed = True
        if old is not None:
            hist = a.get(REVISION_HISTORY, "")
            parts = hist.split(",") if hist else []
            total = len(hist) + len(old) + 1
            start = 0
            while total > MAX_REV_HISTORY_CHARS and start < len(parts):
                total -= len(parts[start]) + 1
                start += 1
            if total <= MAX_REV_HISTORY_CHARS:
                a[REVISION_HISTORY] = ",".join(parts[start:] + [old])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# --- conditions ---------------------------------------------------------------------------------
def new_condition(ctype: str, status: str, reason: str, message: str, now: float | None = None) -> Obj:
    ts = now_rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def get_condition(status: Obj, ctype: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = dict(cond, lastTransitionTime=cur.get("lastTransitionTime"))
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


# --- status -------------------------------------------------------------------------------------
STATUS_COUNTERS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                   "unavailableReplicas")


def status_view(st: Obj) -> Obj:
    """A status as Go serialises it (zero counters omitted)."""
    out = {k: st[k] for k in STATUS_COUNTERS if st.get(k)}
    if st.get("conditions"):
        out["conditions"] = st["conditions"]
    if st.get("collisionCount") is not None:
        out["collisionCount"] = st["collisionCount"]
    return out


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float | None = None) -> Obj:
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(status_of(rs, "availableReplicas") for rs in rss)
    total = sum(replicas(rs) for rs in rss)
    st: Obj = {"observedGeneration": d["metadata"].get("generation", 0),
               "replicas": sum(status_of(rs, "replicas") for rs in rss),
               "updatedReplicas": status_of(new_rs, "replicas"),
               "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in rss),
               "availableReplicas": available,
               "unavailableReplicas": max(0, total - available)}
    old = d.get("status") or {}
    if old.get("collisionCount") is not None:
        st["collisionCount"] = old["collisionCount"]
    st["conditions"] = [dict(c) for c in old.get("conditions") or ()]
    if available >= replicas(d) - max_unavailable(d):
        set_condition(st, new_condition(AVAILABLE, "True", MIN_AVAILABLE, MSG_AVAILABLE, now))
    else:
        set_condition(st, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, MSG_UNAVAILABLE, now))
    return status_view(st)


def has_progress_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and pds != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    rhl = (d.get("spec") or {}).get("revisionHistoryLimit")
    return rhl is not None and rhl != MAX_INT32


def deployment_complete(d: Obj, st: Obj) -> bool:
    n = replicas(d)
    return (st.get("updatedReplicas", 0) == n and st.get("replicas", 0) == n
            and st.get("availableReplicas", 0) == n
            and st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0))


def deployment_progressing(d: Obj, st: Obj) -> bool:
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = st.get("replicas", 0) - st.get("updatedReplicas", 0)
    return (st.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or st.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or st.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deployment_timed_out(d: Obj, st: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(st, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + int(d["spec"]["progressDeadlineSeconds"]) < now


def replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    def of(rs: Obj) -> list[Obj]:
        return [{"type": c["type"], "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                 "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
                 "message": c.get("message")}
                for c in (rs.get("status") or {}).get("conditions") or () if c.get("type") == REPLICA_FAILURE]
    if new_rs is not None and of(new_rs):
        return of(new_rs)
    return [c for rs in all_rss if rs is not None for c in of(rs)]


def rollout_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None, now: float) -> Obj:
    """``syncRolloutStatus``: the status with the Progressing condition
    estimated (complete, progressing, or past its deadline) and the
    ReplicaSets' ReplicaFailure condition carried over."""
    st = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(st, PROGRESSING)
    cur = get_condition(d.get("status") or {}, PROGRESSING)
    complete = (st.get("replicas", 0) == st.get("updatedReplicas", 0) and cur is not None
                and cur.get("reason") == NEW_RS_AVAILABLE)
    name = new_rs["metadata"]["name"] if new_rs is not None else None
    subject = f'ReplicaSet "{name}"' if name else f'Deployment "{d["metadata"]["name"]}"'
    if has_progress_deadline(d) and not complete:
        if deployment_complete(d, st):
            set_condition(st, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                            f"{subject} has successfully progressed.", now))
        elif deployment_progressing(d, st):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            if cur is not None:  # progress refreshes lastUpdateTime even with the same reason
                if cur.get("status") == "True":
                    cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(st, PROGRESSING)
            set_condition(st, cond)
        elif deployment_timed_out(d, st, now):
            set_condition(st, new_condition(PROGRESSING, "False", TIMED_OUT,
                                            f"{subject} has timed out progressing.", now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(st, failures[0])
    else:
        remove_condition(st, REPLICA_FAILURE)
    return st


def stuck_recheck_after(d: Obj, st: Obj, now: float) -> float | None:
    """Seconds until an unfinished rollout's progress deadline passes (None:
    nothing to check), so a stuck rollout is seen to time out."""
    cur = get_condition(d.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(d) or cur is None:
        return None
    if deployment_complete(d, st) or cur.get("reason") == TIMED_OUT:
        return None
    since = parse_time(cur.get("lastUpdateTime")) or now
    return since + int(d["spec"]["progressDeadlineSeconds"]) - now
