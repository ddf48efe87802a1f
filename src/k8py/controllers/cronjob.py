"""The CronJob controller (kube's ``pkg/controller/cronjob``, controller v2).

A sync reconciles one CronJob with the Jobs it controls (from the shared Job
cache, indexed by controller UID): finished Jobs leave ``status.active``
(``SawCompletedJob``), ``lastSuccessfulTime`` follows the newest completion,
and the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` /
``failedJobsHistoryLimit`` are deleted.  Then, unless suspended, it finds the
most recent unmet schedule time (kube's estimate: at most one Job per sync,
a warning past 100 missed times), honours ``startingDeadlineSeconds`` and
``concurrencyPolicy`` (Allow, Forbid, Replace), and creates the Job
``<cronjob>-<scheduled minutes since the epoch>`` annotated with
``batch.kubernetes.io/cronjob-scheduled-timestamp``.  The key is re-queued
for the next schedule time plus 100 ms, never polled.

Schedules are parsed by the API's own robfig/cron parser
(:func:`k8py.api.validation_batch.parse_cron`); ``spec.timeZone`` becomes
its ``TZ=`` prefix.  The clock is a constructor parameter for tests."""

from __future__ import annotations

import copy
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Hashable

from ..api.validation_batch import CronError, CronSchedule, _tz_exists, parse_cron
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import APIError, is_already_exists, is_not_found, resource
from ..client.timeutil import parse_time
from .context import ControllerContext, register
from .jobutil import COMPLETE, controller_uid, deleting, finished

CRONJOBS = resource("cronjobs.batch")
JOBS = resource("jobs.batch")
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = timedelta(milliseconds=100)
IDX_CONTROLLER = "controller-uid"
NONE_MISSED, FEW_MISSED, MANY_MISSED = 0, 1, 2
Obj = dict[str, Any]


def _dt(s: str | None) -> datetime | None:
    t = parse_time(s)
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_rfc3339(t: datetime) -> str:
    """Go's time.RFC3339 in t's zone: ``Z`` for UTC, else ``+hh:mm``."""
    off = t.utcoffset()
    if not off:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    s = t.strftime("%Y-%m-%dT%H:%M:%S%z")
    return s[:-2] + ":" + s[-2:]


def format_schedule(cj: Obj) -> str:
    spec = cj["spec"]
    sched, tz = spec.get("schedule", ""), spec.get("timeZone")
    if "TZ" in sched or tz is None or not _tz_exists(tz):
        return sched
    return f"TZ={tz} {sched}"


def most_recent_schedule_time(cj: Obj, now: datetime, sched: CronSchedule, with_deadline: bool
                              ) -> tuple[datetime, datetime | None, int]:
    """kube's ``mostRecentScheduleTime``: (earliest time considered, the most
    recent unmet schedule time or None, how many were missed).  Raises
    CronError for a schedule that never fires twice a second apart."""
    earliest = _dt(cj["metadata"].get("creationTimestamp")) or now
    last = _dt((cj.get("status") or {}).get("lastScheduleTime"))
    if last is not None:
        earliest = last
    sds = cj["spec"].get("startingDeadlineSeconds")
    if with_deadline and sds is not None:
        earliest = max(earliest, now - timedelta(seconds=sds))
    t1 = sched.next(earliest)
    if t1 is None or now < t1:
        return earliest, None, NONE_MISSED
    t2 = sched.next(t1)
    if t2 is None or now < t2:
        return earliest, t1, NONE_MISSED
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    recent = None
    t = sched.next(t1 + timedelta(seconds=(missed - 2) * between))
    while t is not None and t <= now:
        recent = t
        t = sched.next(t)
    return earliest, recent, MANY_MISSED if missed > 100 else FEW_MISSED


def next_schedule_delay(cj: Obj, now: datetime, sched: CronSchedule) -> float | None:
    """Seconds until the next schedule time after the last one (plus 100 ms)."""
    try:
        earliest, recent, missed = most_recent_schedule_time(cj, now, sched, False)
        if recent is None:
            recent = earliest if missed == NONE_MISSED else now
    except CronError:
        recent = now
    nxt = sched.next(recent)
    return None if nxt is None else (nxt + NEXT_SCHEDULE_DELTA - now).total_seconds()


def job_name(cj: Obj, scheduled: datetime) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Obj, scheduled: datetime) -> Obj:
    tmpl = cj["spec"].get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    md = cj["metadata"]
    annotations = dict(tmeta.get("annotations") or {})
    tz = cj["spec"].get("timeZone")
    local = scheduled
    if tz:
        from zoneinfo import ZoneInfo
        local = scheduled.astimezone(ZoneInfo(tz))
    annotations[SCHEDULED_TIMESTAMP] = _go_rfc3339(local)
    meta: Obj = {"name": job_name(cj, scheduled), "namespace": md["namespace"], "annotations": annotations,
                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": md["name"],
                                      "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(tmpl.get("spec") or {})}


def job_ref(job: Obj) -> Obj:
    md = job["metadata"]
    return {"kind": "Job", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
            "apiVersion": "batch/v1", "resourceVersion": md.get("resourceVersion", "")}


def _start_key(job: Obj) -> tuple:
    t = parse_time((job.get("status") or {}).get("startTime"))
    return (t is None, t or 0.0, job["metadata"]["name"])


@register("cronjob")
class CronJobController(Controller):
    name = "cronjob"
    workers = 5

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.recorder = ctx.recorder("cronjob-controller")
        self.cronjobs = ctx.informers.informer("cronjobs.batch")
        self.jobs = ctx.informers.informer("jobs.batch")
        self.jobs.store.add_indexer(IDX_CONTROLLER, lambda o: [u] if (u := controller_uid(o)) else [])
        self.cronjobs.add_handler(lambda cj: self.queue.add(key_of(cj)), self._cronjob_updated,
                                  lambda cj: self.queue.add(key_of(cj)))
        self.jobs.add_handler(self._job_event, self._job_updated, self._job_event)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    # -- event handlers ------------------------------------------------------------------------------
    def _owner(self, job: Obj) -> Obj | None:
        for r in job["metadata"].get("ownerReferences") or ():
            if r.get("controller"):
                if r.get("kind") != "CronJob":
                    return None
                cj = self.cronjobs.store.get_by(job["metadata"].get("namespace"), r.get("name", ""))
                return cj if cj is not None and cj["metadata"]["uid"] == r.get("uid") else None
        return None

    def _job_event(self, job: Obj) -> None:
        cj = self._owner(job)
        if cj is not None:
            self.queue.add(key_of(cj))

    def _job_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        self._job_event(old)
        self._job_event(cur)

    def _cronjob_updated(self, old: Obj, cur: Obj) -> None:
        key = key_of(cur)
        if (old["spec"].get("schedule") != cur["spec"].get("schedule")
                or old["spec"].get("timeZone") != cur["spec"].get("timeZone")):
            try:
                sched = parse_cron(format_schedule(cur))
            except CronError:
                self.recorder.warning(cur, "UnParseableCronJobSchedule",
                                      f"unparseable schedule for cronjob: {cur['spec'].get('schedule')}")
                return
            delay = next_schedule_delay(cur, self.now(), sched)
            if delay is not None:
                self.queue.add_after(key, delay)
            return
        self.queue.add(key)

    # -- sync ----------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> None:
        shared = self.cronjobs.store.get(str(key))
        if shared is None:
            return
        cj = copy.deepcopy(shared)
        cj.setdefault("status", {})
        jobs = self.jobs.store.by_index(IDX_CONTROLLER, cj["metadata"]["uid"])
        changed = await self._cleanup_finished(cj, jobs)
        err: BaseException | None = None
        requeue: float | None = None
        try:
            requeue, synced = await self._sync_cronjob(cj, jobs)
            changed = changed or synced
        except _SyncError as e:
            changed = changed or e.changed
            err = e.cause
        if changed:
            if not cj["status"].get("active"):
                cj["status"].pop("active", None)
            await self.client.update_status(CRONJOBS, cj)
        if err is not None:
            raise err
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _sync_cronjob(self, cj: Obj, jobs: list[Obj]) -> tuple[float | None, bool]:
        changed = False
        st = cj["status"]
        active: list[Obj] = st.setdefault("active", [])
        children = set()
        try:
            for j in jobs:
                uid = j["metadata"]["uid"]
                children.add(uid)
                found = any(r.get("uid") == uid for r in active)
                done = finished(j)
                if not found and not done:
                    fresh = await self.client.get(CRONJOBS, cj["metadata"]["name"], cj["metadata"]["namespace"])
                    if any(r.get("uid") == uid for r in (fresh.get("status") or {}).get("active") or ()):
                        continue
                    self.recorder.warning(cj, "UnexpectedJob",
                                          f"Saw a job that the controller did not create or forgot: {j['metadata']['name']}")
                elif found and done:
                    active[:] = [r for r in active if r.get("uid") != uid]
                    self.recorder.normal(cj, "SawCompletedJob",
                                         f"Saw completed job: {j['metadata']['name']}, status: {done}")
                    changed = True
                elif done == COMPLETE:
                    ct = (j.get("status") or {}).get("completionTime")
                    last = parse_time(st.get("lastSuccessfulTime"))
                    if ct and (last is None or (parse_time(ct) or 0) > last):
                        st["lastSuccessfulTime"] = ct
                        changed = True
            for r in list(active):
                if r.get("uid") in children:
                    continue
                try:
                    await self.client.get(JOBS, r.get("name", ""), r.get("namespace"))
                except APIError as e:
                    if not is_not_found(e):
                        raise
                    self.recorder.normal(cj, "MissingJob", f"Active job went missing: {r.get('name')}")
                    active[:] = [a for a in active if a.get("uid") != r.get("uid")]
                    changed = True
            return await self._start_due(cj, changed)
        except _SyncError:
            raise
        except APIError as e:
            raise _SyncError(e, changed) from e

    async def _start_due(self, cj: Obj, changed: bool) -> tuple[float | None, bool]:
        """Creates the Job of the most recent unmet schedule time, if it is due."""
        spec, st = cj["spec"], cj["status"]
        active = st["active"]
        now = self.now()
        if deleting(cj):
            return None, changed
        tz = spec.get("timeZone")
        if tz is not None and not _tz_exists(tz):
            self.recorder.warning(cj, "UnknownTimeZone", f'invalid timeZone: "{tz}": unknown time zone {tz}')
            return None, changed
        if spec.get("suspend"):
            return None, changed
        if "TZ" in spec.get("schedule", ""):
            self.recorder.warning(cj, "UnsupportedSchedule",
                                  f'CRON_TZ or TZ used in schedule "{spec.get("schedule")}" is not officially '
                                  "supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/"
                                  " for more details")
        try:
            sched = parse_cron(format_schedule(cj))
        except CronError as e:
            self.recorder.warning(cj, "UnparseableSchedule", f'unparseable schedule: "{spec.get("schedule")}" : {e}')
            return None, changed
        try:
            _, scheduled, missed = most_recent_schedule_time(cj, now, sched, True)
        except CronError as e:
            self.recorder.warning(cj, "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}")
            return None, changed
        if scheduled is not None and missed == MANY_MISSED:
            self.recorder.warning(cj, "TooManyMissedTimes", "too many missed start times. Set or decrease "
                                  ".spec.startingDeadlineSeconds or check clock skew")
        nxt = next_schedule_delay(cj, now, sched)
        if scheduled is None:
            return nxt, changed
        sds = spec.get("startingDeadlineSeconds")
        if sds is not None and scheduled + timedelta(seconds=sds) < now:
            self.recorder.warning(cj, "MissSchedule", "Missed scheduled time to start a job: "
                                  + scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000"))
            return nxt, changed
        name = job_name(cj, scheduled)
        if (any(r.get("name") == name and r.get("namespace") == cj["metadata"]["namespace"] for r in active)
                or _dt(st.get("lastScheduleTime")) == scheduled):
            return nxt, changed
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.recorder.normal(cj, "JobAlreadyActive", "Not starting job because prior execution is running "
                                 "and concurrency policy is Forbid")
            return nxt, changed
        if policy == "Replace":
            for r in list(active):
                try:
                    job = await self.client.get(JOBS, r.get("name", ""), r.get("namespace"))
                except APIError as e:
                    self.recorder.warning(cj, "FailedGet", f"Get job: {e.status.get('message', e)}")
                    raise _SyncError(e, changed) from e
                if not await self._delete_job(cj, job):
                    raise _SyncError(RuntimeError(f"could not replace job {r.get('namespace')}/{r.get('name')}"),
                                     changed)
                changed = True
        req = job_from_template(cj, scheduled)
        try:
            made = await self.client.create(JOBS, req, cj["metadata"]["namespace"])
        except APIError as e:
            if e.code == 403 and "being terminated" in str(e):
                raise _SyncError(e, changed) from e
            if not is_already_exists(e):
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: {e.status.get('message', e)}")
                raise _SyncError(e, changed) from e
            made = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            if controller_uid(made) != cj["metadata"]["uid"] or any(
                    r.get("uid") == made["metadata"]["uid"] for r in active):
                return None, changed
        else:
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {made['metadata']['name']}")
        active.append(job_ref(made))
        st["lastScheduleTime"] = _rfc3339(scheduled)
        return nxt, True

    async def _cleanup_finished(self, cj: Obj, jobs: list[Obj]) -> bool:
        spec = cj["spec"]
        changed = False
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = sorted((j for j in jobs if finished(j) == kind), key=_start_key)
            for j in done[:max(0, len(done) - limit)]:
                if await self._delete_job(cj, j):
                    changed = True
        return changed

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        md = job["metadata"]
        try:
            await self.client.delete(JOBS, md["name"], md["namespace"], propagation="Background")
        except APIError as e:
            self.recorder.warning(cj, "FailedDelete", f"Deleted job: {e.status.get('message', e)}")
            return False
        active = cj["status"].setdefault("active", [])
        active[:] = [r for r in active if r.get("uid") != md["uid"]]
        self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {md['name']}")
        return True


class _SyncError(Exception):
    """A failed sync that may still have status changes to write."""

    def __init__(self, cause: BaseException, changed: bool):
        super().__init__(str(cause))
        self.cause, self.changed = cause, changed
