"""Cron schedules (next times, missed-schedule estimate) and the CronJob and
TTL-after-finished controllers: fill the caches, run one sync, compare the calls."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from k8py.api.validation_batch import CronError, parse_cron
from k8py.controllers.cronjob import (CronJobController, job_from_template, job_name, most_recent_schedule_time,
                                      next_schedule_delay)
from k8py.controllers.ttlafterfinished import TTLAfterFinishedController
from tests.controllers.batchfakes import Clock, job, make_context, put, ts


def run(coro):
    return asyncio.run(coro)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


def nexts(spec: str, start: datetime, n: int = 3) -> list[str]:
    s = parse_cron(spec)
    out, t = [], start
    for _ in range(n):
        t = s.next(t)
        out.append(t.strftime("%a %Y-%m-%d %H:%M %z"))
    return out


# --- schedules ------------------------------------------------------------------------------------
def test_next_times_steps_ranges_lists_names():
    start = utc(2024, 1, 1, 0, 0)  # a Monday
    assert nexts("*/15 * * * *", start) == ["Mon 2024-01-01 00:15 +0000", "Mon 2024-01-01 00:30 +0000",
                                            "Mon 2024-01-01 00:45 +0000"]
    assert nexts("0 9-17/4 * * MON-FRI", start) == ["Mon 2024-01-01 09:00 +0000", "Mon 2024-01-01 13:00 +0000",
                                                    "Mon 2024-01-01 17:00 +0000"]
    assert nexts("30 2 1,15 JAN,mar *", start, 4) == ["Mon 2024-01-01 02:30 +0000", "Mon 2024-01-15 02:30 +0000",
                                                      "Fri 2024-03-01 02:30 +0000", "Fri 2024-03-15 02:30 +0000"]
    assert nexts("5 4 * * sun", start, 1) == ["Sun 2024-01-07 04:05 +0000"]
    assert nexts("0 0 29 2 *", start, 2) == ["Thu 2024-02-29 00:00 +0000", "Tue 2028-02-29 00:00 +0000"]


def test_day_of_month_or_day_of_week_when_both_restricted():
    # robfig/cron (and Vixie cron): either matches when neither field is '*'
    assert nexts("0 0 13 * FRI", utc(2024, 9, 1), 3) == ["Fri 2024-09-06 00:00 +0000", "Fri 2024-09-13 00:00 +0000",
                                                         "Fri 2024-09-20 00:00 +0000"]
    assert nexts("0 0 13 * *", utc(2024, 9, 1), 1) == ["Fri 2024-09-13 00:00 +0000"]


def test_descriptors_and_time_zone():
    assert nexts("@hourly", utc(2024, 1, 1, 0, 30), 1) == ["Mon 2024-01-01 01:00 +0000"]
    assert nexts("@weekly", utc(2024, 1, 1, 0, 30), 1) == ["Sun 2024-01-07 00:00 +0000"]
    assert nexts("@yearly", utc(2024, 1, 1, 0, 30), 1) == ["Wed 2025-01-01 00:00 +0000"]
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer
    assert nexts("TZ=Europe/Berlin 0 9 * * *", utc(2024, 3, 30, 12), 2) == ["Sun 2024-03-31 07:00 +0000",
                                                                            "Mon 2024-04-01 07:00 +0000"]


@pytest.mark.parametrize("spec,msg", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * * FOO *", 'failed to parse int from FOO: strconv.Atoi: parsing "FOO": invalid syntax'),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
])
def test_bad_schedules(spec, msg):
    with pytest.raises(CronError) as e:
        parse_cron(spec)
    assert str(e.value) == msg


def cronjob(name: str = "hello", schedule: str = "*/1 * * * *", *, created: datetime = utc(2024, 1, 1, 0, 0, 30),
            status: dict | None = None, **spec) -> dict:
    sp = {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
          "failedJobsHistoryLimit": 1,
          "jobTemplate": {"metadata": {"labels": {"app": "hello"}},
                          "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                         "containers": [{"name": "c", "image": "busybox"}]}}}}}
    sp.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": sp, "status": status or {}}


def test_most_recent_schedule_time_and_missed_count():
    s = parse_cron("*/1 * * * *")
    cj = cronjob()
    assert most_recent_schedule_time(cj, utc(2024, 1, 1, 0, 0, 50), s, True)[1:] == (None, 0)
    assert most_recent_schedule_time(cj, utc(2024, 1, 1, 0, 1, 5), s, True)[1:] == (utc(2024, 1, 1, 0, 1), 0)
    _, t, missed = most_recent_schedule_time(cj, utc(2024, 1, 1, 0, 5, 5), s, True)
    assert (t, missed) == (utc(2024, 1, 1, 0, 5), 1)
    _, t, missed = most_recent_schedule_time(cj, utc(2024, 1, 1, 3, 0, 5), s, True)
    assert (t, missed) == (utc(2024, 1, 1, 3, 0), 2)  # more than 100 missed
    # startingDeadlineSeconds moves the earliest time considered
    cj2 = cronjob(startingDeadlineSeconds=30)
    assert most_recent_schedule_time(cj2, utc(2024, 1, 1, 3, 0, 5), s, True)[1:] == (utc(2024, 1, 1, 3, 0), 0)


def test_next_delay_is_exactly_the_next_schedule_time():
    s = parse_cron("*/5 * * * *")
    cj = cronjob(schedule="*/5 * * * *")
    assert next_schedule_delay(cj, utc(2024, 1, 1, 0, 1, 0), s) == pytest.approx(240.1)


def test_job_from_template_name_annotation_owner():
    cj = cronjob(timeZone="Asia/Tokyo")
    j = job_from_template(cj, utc(2024, 1, 1, 0, 1))
    assert j["metadata"]["name"] == "hello-28401121" == job_name(cj, utc(2024, 1, 1, 0, 1))
    assert j["metadata"]["annotations"] == {"batch.kubernetes.io/cronjob-scheduled-timestamp":
                                            "2024-01-01T09:01:00+09:00"}
    assert j["metadata"]["labels"] == {"app": "hello"}
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


# --- the CronJob controller -----------------------------------------------------------------------
def setup(cj, *jobs, at: datetime):
    ctx, client, rec = make_context("cronjob-controller")
    c = CronJobController(ctx, clock=Clock(at.timestamp()))
    put(ctx, "cronjobs.batch", cj)
    put(ctx, "jobs.batch", *jobs)
    client.objects[("cronjobs", "default/hello")] = cj
    return c, client, rec


def child(name: str, cond: str | None = None, start: float = 0.0, uid: str = "") -> dict:
    j = job(name, uid=uid or f"uid-{name}",
            status={"startTime": ts(1_704_067_200 + start)} if start else {})
    j["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                                         "uid": "uid-hello", "controller": True}]
    if cond:
        j["status"]["conditions"] = [{"type": cond, "status": "True", "lastTransitionTime": ts(1_704_067_200)}]
        if cond == "Complete":
            j["status"]["completionTime"] = ts(1_704_067_200 + start + 5)
    return j


def sync_and_delay(c, key="default/hello"):
    async def go():
        loop = asyncio.get_running_loop()
        await c.sync(key)
        due = c.queue._due.get(key)
        return None if due is None else due - loop.time()
    return run(go())


def test_creates_the_job_when_due_and_requeues_for_the_next_time():
    c, client, rec = setup(cronjob(), at=utc(2024, 1, 1, 0, 1, 2))
    delay = sync_and_delay(c)
    assert client.verbs() == [("create", "jobs"), ("status", "cronjobs")]
    made = client.of("create", "jobs")[0]
    assert made["metadata"]["name"] == "hello-28401121"
    st = client.of("status")[0]["status"]
    assert st["lastScheduleTime"] == "2024-01-01T00:01:00Z"
    assert st["active"] == [{"kind": "Job", "namespace": "default", "name": "hello-28401121",
                             "uid": "uid-hello-28401121", "apiVersion": "batch/v1", "resourceVersion": "1000"}]
    assert rec.events == [("Normal", "SuccessfulCreate", "Created job hello-28401121")]
    assert delay == pytest.approx(58.1, abs=0.05)


def test_not_due_yet_writes_nothing_and_waits():
    c, client, _ = setup(cronjob(), at=utc(2024, 1, 1, 0, 0, 40))
    assert sync_and_delay(c) == pytest.approx(20.1, abs=0.05)
    assert client.calls == []


def test_forbid_skips_while_a_job_is_active():
    active = child("hello-28401120")
    cj = cronjob(concurrencyPolicy="Forbid", status={
        "lastScheduleTime": "2024-01-01T00:00:00Z",
        "active": [{"kind": "Job", "namespace": "default", "name": "hello-28401120", "uid": "uid-hello-28401120"}]})
    c, client, rec = setup(cj, active, at=utc(2024, 1, 1, 0, 1, 2))
    sync_and_delay(c)
    assert client.verbs() == []
    assert rec.events == [("Normal", "JobAlreadyActive", "Not starting job because prior execution is running "
                                                         "and concurrency policy is Forbid")]


def test_replace_deletes_the_running_job_first():
    active = child("hello-28401120")
    cj = cronjob(concurrencyPolicy="Replace", status={
        "lastScheduleTime": "2024-01-01T00:00:00Z",
        "active": [{"kind": "Job", "namespace": "default", "name": "hello-28401120", "uid": "uid-hello-28401120"}]})
    c, client, rec = setup(cj, active, at=utc(2024, 1, 1, 0, 1, 2))
    client.objects[("jobs", "default/hello-28401120")] = active
    sync_and_delay(c)
    assert client.verbs() == [("get", "jobs"), ("delete", "jobs"), ("create", "jobs"), ("status", "cronjobs")]
    assert client.of("delete")[0] == ("default/hello-28401120", {"propagation": "Background"})
    assert [a["name"] for a in client.of("status")[0]["status"]["active"]] == ["hello-28401121"]
    assert rec.reasons() == ["SuccessfulDelete", "SuccessfulCreate"]


def test_completed_job_leaves_active_and_history_is_trimmed():
    jobs = [child(f"hello-{i}", "Complete", start=i) for i in range(1, 5)] + [
        child("hello-10", "Failed", start=10), child("hello-11", "Failed", start=11)]
    cj = cronjob(status={"lastScheduleTime": "2024-01-01T00:01:00Z", "lastSuccessfulTime": ts(1_704_067_200),
                         "active": [{"kind": "Job", "namespace": "default", "name": "hello-4",
                                     "uid": "uid-hello-4"}]})
    c, client, rec = setup(cj, *jobs, at=utc(2024, 1, 1, 0, 1, 30))
    sync_and_delay(c)
    assert sorted(d[0] for d in client.of("delete")) == ["default/hello-1", "default/hello-10"]
    [upd] = client.of("status")
    assert "active" not in upd["status"]
    assert upd["status"]["lastSuccessfulTime"] == ts(1_704_067_200 + 3 + 5)  # hello-4 is counted next sync
    assert ("Normal", "SawCompletedJob", "Saw completed job: hello-4, status: Complete") in rec.events
    assert rec.reasons().count("SuccessfulDelete") == 2


def test_suspended_and_missed_deadline():
    c, client, _ = setup(cronjob(suspend=True), at=utc(2024, 1, 1, 0, 1, 2))
    assert sync_and_delay(c) is None and client.calls == []
    c, client, rec = setup(cronjob(startingDeadlineSeconds=10, schedule="0 * * * *"),
                           at=utc(2024, 1, 1, 1, 0, 30))
    # 01:00 passed more than 10 s ago: no Job for it (kube's window starts at now - deadline)
    assert sync_and_delay(c) == pytest.approx(59 * 60 + 30.1, abs=0.05)
    assert client.calls == [] and rec.events == []


# --- TTL after finished ---------------------------------------------------------------------------
def finished_job(ttl: int, at: float) -> dict:
    j = job(ttlSecondsAfterFinished=ttl, status={"conditions": [
        {"type": "Complete", "status": "True", "lastTransitionTime": ts(at)}]})
    return j


def test_ttl_waits_then_deletes_with_uid_precondition_in_foreground():
    j = finished_job(60, 1_704_067_200)
    ctx, client, _ = make_context()
    c = TTLAfterFinishedController(ctx, clock=Clock(1_704_067_200 + 20))
    put(ctx, "jobs.batch", j)
    client.objects[("jobs", "default/pi")] = j

    async def go():
        loop = asyncio.get_running_loop()
        await c.sync("default/pi")
        return c.queue._due["default/pi"] - loop.time()
    assert run(go()) == pytest.approx(40, abs=0.05)
    assert client.calls == []
    c.clock.t += 40
    run(c.sync("default/pi"))
    assert client.verbs() == [("get", "jobs"), ("delete", "jobs")]
    assert client.of("delete")[0] == ("default/pi", {"uid": "uid-pi", "propagation": "Foreground"})
