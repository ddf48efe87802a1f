"""Jobs and CronJobs end to end: real kubectl against ``k8py server`` with
two hollow nodes whose Job pods succeed after a second (or fail, when
annotated ``hollow.k8py.io/fail``)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

FIN = "batch.kubernetes.io/job-tracking"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(2, "jn-", "--pod-run-seconds", "1")
        yield c
    finally:
        c.close()


def get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pod_template(annotations: dict | None = None, **spec: Any) -> dict:
    md: dict[str, Any] = {"annotations": annotations} if annotations else {}
    return {"metadata": md, "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                     "containers": [{"name": "pi", "image": "perl:5.34"}], **spec}}


def create_job(cluster: Cluster, name: str, template: dict | None = None, **spec: Any) -> None:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": template or pod_template(), **spec}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))


def job_pods(cluster: Cluster, name: str) -> list[dict]:
    return get(cluster, "pods", "-l", f"batch.kubernetes.io/job-name={name}")["items"]


def conditions(job: dict) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in job["status"].get("conditions", [])]


def events(cluster: Cluster, kind: str, name: str) -> list[tuple[str, str]]:
    items = get(cluster, "events", "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}")
    return [(e["reason"], e["message"]) for e in items["items"]]


def test_completions_with_parallelism(cluster: Cluster) -> None:
    create_job(cluster, "pi", completions=3, parallelism=2)
    cluster.kubectl("wait", "--for=condition=complete", "job/pi", "--timeout=60s", timeout=70)
    out = cluster.kubectl("get", "job", "pi").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert out[1].split()[:3] == ["pi", "Complete", "3/3"]
    job = get(cluster, "job", "pi")
    st = job["status"]
    assert st["succeeded"] == 3 and st["ready"] == 0 and st["terminating"] == 0 and "active" not in st
    assert st["uncountedTerminatedPods"] == {} and st["completionTime"] >= st["startTime"]
    assert conditions(job) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                               ("Complete", "True", "CompletionsReached")]
    pods = job_pods(cluster, "pi")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    for p in pods:  # counted, so the tracking finalizer is gone
        assert FIN not in (p["metadata"].get("finalizers") or [])
        assert p["metadata"]["generateName"] == "pi-"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
        assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
    evs = events(cluster, "Job", "pi")
    assert sorted(r for r, _ in evs) == ["Completed", "SuccessfulCreate", "SuccessfulCreate", "SuccessfulCreate"]
    assert ("Completed", "Job completed") in evs
    assert {m for r, m in evs if r == "SuccessfulCreate"} == {f"Created pod: {p['metadata']['name']}" for p in pods}
    described = cluster.kubectl("describe", "job", "pi").stdout
    assert "3 Succeeded / 0 Failed" in described and "Job completed" in described


def test_indexed_job(cluster: Cluster) -> None:
    create_job(cluster, "idx", completions=3, parallelism=3, completionMode="Indexed")
    cluster.kubectl("wait", "--for=condition=complete", "job/idx", "--timeout=60s", timeout=70)
    job = get(cluster, "job", "idx")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    by_index = {}
    for p in job_pods(cluster, "idx"):
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert p["metadata"]["name"].startswith(f"idx-{ix}-")
        assert p["spec"]["hostname"] == f"idx-{ix}"
        env = {e["name"]: e for e in p["spec"]["containers"][0]["env"]}
        assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        by_index[ix] = p
    assert sorted(by_index) == ["0", "1", "2"]
    assert "Completed Indexes:  0-2" in cluster.kubectl("describe", "job", "idx").stdout


def test_backoff_limit_with_exponential_backoff(cluster: Cluster) -> None:
    create_job(cluster, "crash", pod_template({"hollow.k8py.io/fail": "1"}), backoffLimit=1)
    cluster.kubectl("wait", "--for=condition=failed", "job/crash", "--timeout=60s", timeout=70)
    job = get(cluster, "job", "crash")
    assert job["status"]["failed"] == 2 and "succeeded" not in job["status"]
    assert conditions(job) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                               ("Failed", "True", "BackoffLimitExceeded")]
    assert job["status"]["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in job["status"]
    pods = sorted(job_pods(cluster, "crash"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
    # the replacement waited for the 10 s back-off after the first failure
    first_end = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    gap = _t(pods[1]["metadata"]["creationTimestamp"]) - _t(first_end)
    assert 9 <= gap <= 14, gap
    assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in events(cluster, "Job", "crash")
    out = cluster.kubectl("get", "job", "crash").stdout.splitlines()[1].split()
    assert out[:3] == ["crash", "Failed", "0/1"]


def _t(s: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_active_deadline_seconds(cluster: Cluster) -> None:
    create_job(cluster, "slow", completions=100, activeDeadlineSeconds=3)
    cluster.kubectl("wait", "--for=condition=failed", "job/slow", "--timeout=60s", timeout=70)
    job = get(cluster, "job", "slow")
    assert conditions(job)[-1] == ("Failed", "True", "DeadlineExceeded")
    assert job["status"]["conditions"][-1]["message"] == "Job was active longer than specified deadline"
    assert 0 < job["status"].get("succeeded", 0) < 100
    wait_for(lambda: not [p for p in job_pods(cluster, "slow") if p["status"]["phase"] not in ("Succeeded", "Failed")],
             30, what="no pod of the failed job left running")


def test_suspend_then_resume(cluster: Cluster) -> None:
    create_job(cluster, "later", suspend=True)
    job = wait_for(lambda: j if conditions(j := get(cluster, "job", "later")) else None, 20, what="Suspended")
    assert conditions(job) == [("Suspended", "True", "JobSuspended")]
    assert "startTime" not in job["status"] and job_pods(cluster, "later") == []
    assert cluster.kubectl("get", "job", "later").stdout.splitlines()[1].split()[1] == "Suspended"
    cluster.kubectl("patch", "job", "later", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    cluster.kubectl("wait", "--for=condition=complete", "job/later", "--timeout=60s", timeout=70)
    job = get(cluster, "job", "later")
    assert conditions(job)[0] == ("Suspended", "False", "JobResumed")
    assert [r for r, _ in events(cluster, "Job", "later") if r in ("Suspended", "Resumed")] == ["Suspended", "Resumed"]


def test_ttl_seconds_after_finished_deletes_job_and_pods(cluster: Cluster) -> None:
    create_job(cluster, "shortlived", ttlSecondsAfterFinished=2)
    cluster.kubectl("wait", "--for=condition=complete", "job/shortlived", "--timeout=60s", timeout=70)
    done = time.monotonic()
    wait_for(lambda: cluster.kubectl("get", "job", "shortlived", check=False).returncode != 0, 30,
             what="job deleted by its TTL")
    assert time.monotonic() - done >= 1.0
    wait_for(lambda: job_pods(cluster, "shortlived") == [], 30, what="its pods deleted in the foreground")


def cronjob(name: str, schedule: str = "*/1 * * * *", template: dict | None = None, **spec: Any) -> str:
    return json.dumps({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                       "spec": {"schedule": schedule, "jobTemplate": {
                           "metadata": {"labels": {"cron": name}},
                           "spec": {"template": template or pod_template()}}, **spec}})


def test_cronjobs_fire_forbid_history_and_suspend(cluster: Cluster) -> None:
    """One minute boundary, four CronJobs:

    - ``every``: created plainly; fires at the next minute;
    - ``hist`` (Allow, successfulJobsHistoryLimit 1) and ``forbid`` (Forbid,
      a Job that never finishes) are created suspended with a lastScheduleTime
      minutes ago, then resumed: kube starts the most recent missed run at once;
      at the minute boundary ``hist`` runs again and drops its older Job,
      ``forbid`` is refused while its first Job is active;
    - ``off``: suspended, never runs."""
    k = cluster.kubectl
    pending = pod_template(nodeSelector={"no-such-node": "x"})
    k("create", "-f", "-", input=cronjob("every"))
    k("create", "-f", "-", input=cronjob("hist", successfulJobsHistoryLimit=1, suspend=True))
    k("create", "-f", "-", input=cronjob("forbid", template=pending, concurrencyPolicy="Forbid", suspend=True))
    k("create", "-f", "-", input=cronjob("off", suspend=True))
    past = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(time.time() - 300))
    for name in ("hist", "forbid"):
        k("patch", "cronjob", name, "--subresource=status", "--type=merge",
          "-p", json.dumps({"status": {"lastScheduleTime": past}}))
        k("patch", "cronjob", name, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    now_minute = int(time.time()) // 60

    def jobs_of(cj: str) -> list[dict]:
        return sorted(get(cluster, "jobs", "-l", f"cron={cj}")["items"], key=lambda j: j["metadata"]["name"])

    first = wait_for(lambda: jobs_of("forbid") and jobs_of("hist"), 20, what="the missed runs started")
    assert first[0]["metadata"]["name"] == f"hist-{now_minute}"
    assert jobs_of("forbid")[0]["metadata"]["name"] == f"forbid-{now_minute}"

    # the next minute: "every" fires, "hist" runs again and keeps one Job, "forbid" is refused
    every = wait_for(lambda: jobs_of("every"), 75, interval=1, what="the */1 CronJob fired")[0]
    minute = int(_t(every["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"])) // 60
    assert every["metadata"]["name"] == f"every-{minute}" and minute > now_minute - 1
    owner = every["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "every", True)
    cluster.kubectl("wait", "--for=condition=complete", f"job/every-{minute}", "--timeout=30s", timeout=40)
    cj = wait_for(lambda: (c := get(cluster, "cronjob", "every"))["status"].get("lastSuccessfulTime") and c, 20,
                  what="lastSuccessfulTime")
    assert cj["status"]["lastScheduleTime"] == every["metadata"]["annotations"][
        "batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert "active" not in cj["status"]
    assert {"SuccessfulCreate", "SawCompletedJob"} <= {r for r, _ in events(cluster, "CronJob", "every")}
    assert (("SuccessfulCreate", f"Created job every-{minute}") in events(cluster, "CronJob", "every"))

    if minute > now_minute:  # the boundary passed after the resumed runs
        hist = wait_for(lambda: [j["metadata"]["name"] for j in jobs_of("hist")] == [f"hist-{minute}"], 30,
                        what="hist keeps only its newest Job")
        assert hist
        assert ("SuccessfulDelete", f"Deleted job hist-{now_minute}") in events(cluster, "CronJob", "hist")
        wait_for(lambda: ("JobAlreadyActive", "Not starting job because prior execution is running and "
                          "concurrency policy is Forbid") in events(cluster, "CronJob", "forbid"), 20,
                 what="forbid refused the second run")
        assert [j["metadata"]["name"] for j in jobs_of("forbid")] == [f"forbid-{now_minute}"]
        fcj = get(cluster, "cronjob", "forbid")
        assert [a["name"] for a in fcj["status"]["active"]] == [f"forbid-{now_minute}"]
    out = k("get", "cronjob").stdout
    row = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert row["off"][1:8] == ["*/1", "*", "*", "*", "*", "<none>", "True"]
    assert jobs_of("off") == [] and "lastScheduleTime" not in get(cluster, "cronjob", "off")["status"]
