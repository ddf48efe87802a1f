"""The Job controller: fill the caches, run one sync, compare the calls;
and the pure arithmetic (indexes, back-off, pods) on its own."""

from __future__ import annotations

import asyncio

from k8py.controllers.job import JobController
from k8py.controllers.jobutil import (BackoffRecord, format_indexes, parse_indexes, pod_for, with_indexes)
from tests.controllers.batchfakes import T0, Clock, job, job_pod, make_context, put, ts

FIN = "batch.kubernetes.io/job-tracking"


def run(coro):
    return asyncio.run(coro)


def setup(j, *pods, t=T0):
    ctx, client, rec = make_context("job-controller")
    c = JobController(ctx, clock=Clock(t))
    put(ctx, "jobs.batch", j)
    put(ctx, "pods", *pods)
    return c, client, rec


def statuses(client):
    return [o["status"] for o in client.of("status", "jobs")]


def test_new_job_creates_parallelism_pods_with_finalizer_and_owner():
    c, client, rec = setup(job(completions=3, parallelism=2))
    run(c.sync("default/pi"))
    assert client.verbs() == [("create", "pods"), ("create", "pods"), ("status", "jobs")]
    p = client.of("create", "pods")[0]
    md = p["metadata"]
    assert md["generateName"] == "pi-" and md["finalizers"] == [FIN]
    assert md["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": "uid-pi",
                                      "controller": True, "blockOwnerDeletion": True}]
    assert md["labels"]["batch.kubernetes.io/job-name"] == "pi"
    assert p["spec"]["restartPolicy"] == "Never"
    [st] = statuses(client)
    assert st == {"active": 2, "ready": 0, "terminating": 0, "startTime": ts(T0), "uncountedTerminatedPods": {}}
    assert rec.events == [("Normal", "SuccessfulCreate", "Created pod: pi-00001"),
                          ("Normal", "SuccessfulCreate", "Created pod: pi-00002")]


def test_expectations_hold_back_a_second_create_until_the_pods_are_seen():
    c, client, _ = setup(job(completions=3, parallelism=2))
    run(c.sync("default/pi"))
    client.calls.clear()
    run(c.sync("default/pi"))  # the cache has not seen the two pods yet
    assert ("create", "pods") not in client.verbs()


def test_succeeded_pods_are_counted_through_uncounted_then_complete():
    j = job(completions=2, status={"active": 2, "ready": 2, "terminating": 0, "startTime": ts(T0 - 30)})
    c, client, rec = setup(j, job_pod(j, "pi-a", "Succeeded"), job_pod(j, "pi-b", "Succeeded"))
    run(c.sync("default/pi"))
    assert client.verbs() == [("status", "jobs"), ("patch", "pods"), ("patch", "pods"), ("status", "jobs")]
    first, last = statuses(client)
    assert sorted(first["uncountedTerminatedPods"]["succeeded"]) == ["uid-pi-a", "uid-pi-b"]
    assert [c["type"] for c in first["conditions"]] == ["SuccessCriteriaMet"]
    assert "succeeded" not in first
    assert sorted(client.of("patch"))[0] == ("default/pi-a", {"metadata": {"$deleteFromPrimitiveList/finalizers": [FIN]}})
    assert last["succeeded"] == 2 and last["uncountedTerminatedPods"] == {}
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in last["conditions"]] == [
        ("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
        ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")]
    assert last["completionTime"] == ts(T0) and "active" not in last
    assert rec.events == [("Normal", "Completed", "Job completed")]


def test_backoff_limit_exceeded_deletes_active_pods_then_fails():
    j = job(completions=3, backoff=1, status={"failed": 1, "active": 1, "ready": 1, "terminating": 0,
                                              "startTime": ts(T0 - 30)})
    c, client, rec = setup(j, job_pod(j, "pi-f", "Failed"), job_pod(j, "pi-r"))
    run(c.sync("default/pi"))
    assert client.verbs() == [("delete", "pods"), ("status", "jobs"), ("patch", "pods"), ("patch", "pods"),
                              ("status", "jobs")]
    first, last = statuses(client)
    assert sorted(first["uncountedTerminatedPods"]["failed"]) == ["uid-pi-f", "uid-pi-r"]
    assert [(c["type"], c["reason"], c["message"]) for c in first["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    assert last["failed"] == 3 and last["terminating"] == 1 and "active" not in last
    assert [c["type"] for c in last["conditions"]] == ["FailureTarget"]  # a pod is still terminating
    assert rec.events == [("Normal", "SuccessfulDelete", "Deleted pod: pi-r")]

    # next sync: the deleted pod is gone, so the Job fails for good
    j2 = dict(j, status=last)
    c2, client2, rec2 = setup(j2, job_pod(j, "pi-f", "Failed", finalizer=False))
    run(c2.sync("default/pi"))
    [st] = statuses(client2)
    assert [(c["type"], c["status"], c["reason"]) for c in st["conditions"]] == [
        ("FailureTarget", "True", "BackoffLimitExceeded"), ("Failed", "True", "BackoffLimitExceeded")]
    assert "completionTime" not in st
    assert rec2.events == [("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]


def test_failed_pod_is_replaced_only_after_the_backoff():
    j = job(completions=1, status={"active": 1, "ready": 1, "terminating": 0, "startTime": ts(T0 - 30)})
    c, client, _ = setup(j, job_pod(j, "pi-f", "Failed", finished_at=T0 - 2))

    async def first():
        await c.sync("default/pi")
        return dict(c.queue._due)
    due = run(first())
    assert ("create", "pods") not in client.verbs()
    assert statuses(client)[-1]["failed"] == 1
    assert "default/pi" in due  # re-queued for the end of the 10 s back-off

    c.clock.t = T0 + 9  # 11 s after the failure
    c.pods.store.put(job_pod(j, "pi-f", "Failed", finalizer=False, finished_at=T0 - 2))
    c.jobs.store.put(dict(j, status=statuses(client)[-1]))
    client.calls.clear()
    run(c.sync("default/pi"))
    assert client.verbs()[0] == ("create", "pods")


def test_backoff_record_doubles_and_is_capped():
    def failed_at(t):
        return job_pod(job(), f"p{t}", "Failed", finished_at=t)
    r = BackoffRecord().updated([], [failed_at(T0)])
    assert r.remaining(T0) == 10 and r.remaining(T0 + 4) == 6 and r.remaining(T0 + 11) == 0
    r = r.updated([], [failed_at(T0 + 1), failed_at(T0 + 2)])
    assert r.failures_after_last_success == 3 and r.remaining(T0 + 2) == 40
    assert BackoffRecord(20, T0).remaining(T0) == 600
    assert r.updated([failed_at(T0 + 5)], []).remaining(T0 + 5) == 0  # a success resets it


def test_active_deadline_exceeded():
    j = job(completions=1, activeDeadlineSeconds=10,
            status={"active": 1, "ready": 1, "terminating": 0, "startTime": ts(T0 - 20)})
    c, client, _ = setup(j, job_pod(j, "pi-r"))
    run(c.sync("default/pi"))
    assert client.of("delete", "pods")[0][0] == "default/pi-r"
    st = statuses(client)[0]
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline")]


def test_deadline_not_reached_requeues_at_the_deadline():
    j = job(completions=1, activeDeadlineSeconds=100,
            status={"active": 1, "ready": 1, "terminating": 0, "startTime": ts(T0 - 20)})
    c, client, _ = setup(j, job_pod(j, "pi-r"))

    async def go():
        loop = asyncio.get_running_loop()
        await c.sync("default/pi")
        return c.queue._due["default/pi"] - loop.time()
    assert 79 < run(go()) <= 80
    assert client.calls == []  # nothing changed: nothing written


def test_indexed_job_creates_lowest_pending_indexes():
    j = job(completions=5, parallelism=3, completionMode="Indexed",
            status={"active": 2, "ready": 2, "terminating": 0, "startTime": ts(T0 - 30)})
    c, client, _ = setup(j, job_pod(j, "pi-0-x", "Succeeded", index=0), job_pod(j, "pi-1-x", index=1))
    run(c.sync("default/pi"))
    made = client.of("create", "pods")
    assert [p["metadata"]["generateName"] for p in made] == ["pi-2-", "pi-3-"]
    p = made[0]
    assert p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert p["spec"]["hostname"] == "pi-2"
    assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} in p["spec"]["containers"][0]["env"]
    st = statuses(client)[-1]
    assert st["completedIndexes"] == "0" and st["succeeded"] == 1 and st["active"] == 3


def test_completed_indexes_format():
    assert format_indexes(with_indexes([], [0, 1, 2, 4, 5, 7])) == "0-2,4,5,7"
    assert parse_indexes("0-2,4,5,7", 5) == [(0, 2), (4, 4)]
    assert format_indexes(parse_indexes("1,3-9", 6)) == "1,3-5"


def test_pod_for_keeps_template_env_and_hostname():
    j = job(completionMode="Indexed", completions=2)
    j["spec"]["template"]["spec"]["hostname"] = "keep"
    p = pod_for(j, 1)
    assert p["spec"]["hostname"] == "keep"
    assert j["spec"]["template"]["spec"]["containers"][0].get("env") is None  # template untouched


def test_suspend_deletes_active_pods_without_counting_them():
    j = job(completions=2, suspend=True, status={"active": 1, "ready": 1, "terminating": 0,
                                                   "startTime": ts(T0 - 30)})
    c, client, rec = setup(j, job_pod(j, "pi-r"))
    run(c.sync("default/pi"))
    assert client.verbs() == [("patch", "pods"), ("delete", "pods"), ("status", "jobs")]
    st = statuses(client)[0]
    assert "failed" not in st and st["terminating"] == 1 and "active" not in st
    [cond] = st["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "Suspended", "True", "JobSuspended", "Job suspended")
    assert ("Normal", "Suspended", "Job suspended") in rec.events


def test_finished_job_is_left_alone_and_orphan_finalizers_removed():
    j = job(status={"conditions": [{"type": "Complete", "status": "True"}]})
    c, client, _ = setup(j, job_pod(j, "pi-a", "Succeeded"))
    run(c.sync("default/pi"))
    assert client.calls == []
    run(c.sync(("orphan", "default/pi-a")))
    assert client.verbs() == [("patch", "pods")]
