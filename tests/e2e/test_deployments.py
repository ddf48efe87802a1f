"""Deployments, ReplicaSets and ReplicationControllers end to end: the real
kubectl 1.32 against ``k8py server`` with two hollow nodes — the seeds'
walk-through, rolling update / history / undo, scaling, Recreate,
pause/resume, a bare ReplicaSet adopting an orphan, a ReplicationController."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

PREFIX = "dep-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(2, PREFIX)
        yield c
    finally:
        c.close()


def get(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply(cluster: Cluster, obj: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def running_pods(cluster: Cluster, selector: str) -> list[dict]:
    pods = get(cluster, "pods", "-l", selector)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def rollout_status(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=90).stdout


def test_seed_walkthrough(cluster: Cluster):
    out = cluster.kubectl("create", "deployment", "httpd-pod", "--image=httpd", "--replicas=2").stdout
    assert out.strip() == "deployment.apps/httpd-pod created"

    def ready() -> bool:
        lines = cluster.kubectl("get", "deployment").stdout.splitlines()
        assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        return any(line.split()[:4] == ["httpd-pod", "2/2", "2", "2"] for line in lines[1:])
    wait_for(ready, 30, what="httpd-pod 2/2")

    lines = cluster.kubectl("get", "pod", "-o", "wide").stdout.splitlines()
    assert lines[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    rows = [line.split() for line in lines[1:] if line.startswith("httpd-pod-")]
    assert len(rows) == 2
    assert all(r[1] == "1/1" and r[2] == "Running" and r[5].count(".") == 3 for r in rows)
    assert {r[6] for r in rows} == {f"{PREFIX}0", f"{PREFIX}1"}  # spread over both nodes

    rs = get(cluster, "rs", "-l", "app=httpd-pod")["items"]
    assert len(rs) == 1 and rs[0]["metadata"]["name"].startswith("httpd-pod-")
    h = rs[0]["metadata"]["labels"]["pod-template-hash"]
    assert rows[0][0].startswith(f"httpd-pod-{h}-")

    cluster.kubectl("delete", "deployment", "httpd-pod")

    def gone() -> bool:
        r = cluster.kubectl("get", "pod", "-l", "app=httpd-pod")
        return "No resources found" in r.stderr + r.stdout
    wait_for(gone, 60, what="httpd-pod pods gone")


def test_rolling_update_history_and_undo(cluster: Cluster):
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1.24", "--replicas=3")
    assert 'deployment "web" successfully rolled out' in rollout_status(cluster, "web")
    d = get(cluster, "deployment", "web")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    old_rs = get(cluster, "rs", "-l", "app=web")["items"][0]["metadata"]["name"]
    assert conds["Progressing"]["message"] == f'ReplicaSet "{old_rs}" has successfully progressed.'

    cluster.kubectl("set", "image", "deployment/web", "nginx=nginx:1.25")
    cluster.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=upgrade to 1.25")
    assert 'deployment "web" successfully rolled out' in rollout_status(cluster, "web")
    d = get(cluster, "deployment", "web")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st["observedGeneration"] == d["metadata"]["generation"]
    pods = running_pods(cluster, "app=web")
    wait_for(lambda: len(running_pods(cluster, "app=web")) == 3, 30)
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.25" for p in running_pods(cluster, "app=web"))

    rss = {r["metadata"]["name"]: r for r in get(cluster, "rs", "-l", "app=web")["items"]}
    assert len(rss) == 2 and rss[old_rs]["spec"]["replicas"] == 0
    hist = cluster.kubectl("rollout", "history", "deployment/web").stdout
    assert "REVISION" in hist and "CHANGE-CAUSE" in hist
    assert any(line.split()[:1] == ["1"] for line in hist.splitlines())
    assert any(line.startswith("2") and "upgrade to 1.25" in line for line in hist.splitlines())
    rev1 = cluster.kubectl("rollout", "history", "deployment/web", "--revision=1").stdout
    assert "nginx:1.24" in rev1

    events = cluster.kubectl("describe", "deployment", "web").stdout
    assert f"Scaled up replica set {old_rs} from 0 to 3" in events
    assert "ScalingReplicaSet" in events and "NewReplicaSet:" in events

    out = cluster.kubectl("rollout", "undo", "deployment/web").stdout
    assert "rolled back" in out
    assert 'deployment "web" successfully rolled out' in rollout_status(cluster, "web")
    d = get(cluster, "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.24"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rs_back = get(cluster, "rs", old_rs)
    assert rs_back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert rs_back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert rs_back["spec"]["replicas"] == 3
    cluster.kubectl("delete", "deployment", "web")


def test_scale_up_and_down(cluster: Cluster):
    cluster.kubectl("create", "deployment", "sc", "--image=busybox", "--replicas=1")
    rollout_status(cluster, "sc")
    cluster.kubectl("scale", "deployment/sc", "--replicas=5")
    wait_for(lambda: get(cluster, "deployment", "sc")["status"].get("availableReplicas") == 5, 30, what="5 up")
    assert len(running_pods(cluster, "app=sc")) == 5
    cluster.kubectl("scale", "deployment/sc", "--replicas=2")
    wait_for(lambda: len(running_pods(cluster, "app=sc")) == 2, 60, what="2 left")
    rs = get(cluster, "rs", "-l", "app=sc")["items"][0]
    assert rs["spec"]["replicas"] == 2
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "2"
    lines = cluster.kubectl("get", "rs", "-l", "app=sc").stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    wait_for(lambda: cluster.kubectl("get", "rs", "-l", "app=sc").stdout.splitlines()[1].split()[1:4]
             == ["2", "2", "2"], 30)
    events = cluster.kubectl("describe", "deployment", "sc").stdout
    assert f"Scaled down replica set {rs['metadata']['name']} from 5 to 2" in events
    cluster.kubectl("delete", "deployment", "sc")


def test_recreate(cluster: Cluster):
    cluster.kubectl("create", "deployment", "rec", "--image=redis:6", "--replicas=2")
    rollout_status(cluster, "rec")
    cluster.kubectl("patch", "deployment/rec", "--type=json", "-p",
                    json.dumps([{"op": "remove", "path": "/spec/strategy/rollingUpdate"},
                                {"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"}]))
    cluster.kubectl("set", "image", "deployment/rec", "redis=redis:7")
    assert 'successfully rolled out' in rollout_status(cluster, "rec")
    pods = running_pods(cluster, "app=rec")
    assert len(pods) == 2 and all(p["spec"]["containers"][0]["image"] == "redis:7" for p in pods)
    rss = get(cluster, "rs", "-l", "app=rec")["items"]
    assert sorted(r["spec"]["replicas"] for r in rss) == [0, 2]
    cluster.kubectl("delete", "deployment", "rec")


def test_pause_and_resume(cluster: Cluster):
    cluster.kubectl("create", "deployment", "pz", "--image=nginx:1", "--replicas=2")
    rollout_status(cluster, "pz")
    cluster.kubectl("rollout", "pause", "deployment/pz")
    cluster.kubectl("set", "image", "deployment/pz", "nginx=nginx:2")

    def paused_cond() -> dict:
        d = get(cluster, "deployment", "pz")
        if d["status"].get("observedGeneration") != d["metadata"]["generation"]:
            return {}
        return next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    cond = wait_for(paused_cond, 30)
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused",
                                                                  "Deployment is paused")
    assert len(get(cluster, "rs", "-l", "app=pz")["items"]) == 1  # no rollout while paused
    cluster.kubectl("rollout", "resume", "deployment/pz")
    assert 'successfully rolled out' in rollout_status(cluster, "pz")
    assert len(get(cluster, "rs", "-l", "app=pz")["items"]) == 2
    cluster.kubectl("rollout", "restart", "deployment/pz")
    assert 'successfully rolled out' in rollout_status(cluster, "pz")
    assert len(get(cluster, "rs", "-l", "app=pz")["items"]) == 3
    cluster.kubectl("delete", "deployment", "pz")


def test_bare_replicaset_adopts_orphan(cluster: Cluster):
    cluster.kubectl("run", "orphan", "--image=nginx", "--labels=app=adopt")
    apply(cluster, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "adopt"},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "adopt"}},
                             "template": {"metadata": {"labels": {"app": "adopt"}},
                                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})

    def adopted() -> bool:
        p = get(cluster, "pod", "orphan")
        refs = p["metadata"].get("ownerReferences") or []
        return bool(refs) and refs[0]["kind"] == "ReplicaSet" and refs[0]["name"] == "adopt" and \
            refs[0]["controller"] is True and refs[0]["blockOwnerDeletion"] is True
    wait_for(adopted, 30, what="orphan adopted")
    wait_for(lambda: get(cluster, "rs", "adopt")["status"].get("readyReplicas") == 2, 30)
    assert len(get(cluster, "pods", "-l", "app=adopt")["items"]) == 2
    # relabel the pod: released, and replaced
    cluster.kubectl("label", "pod", "orphan", "app=gone", "--overwrite")
    wait_for(lambda: not get(cluster, "pod", "orphan")["metadata"].get("ownerReferences"), 30, what="released")
    wait_for(lambda: len(running_pods(cluster, "app=adopt")) == 2, 30)
    events = cluster.kubectl("describe", "rs", "adopt").stdout
    assert "SuccessfulCreate" in events and "Created pod: adopt-" in events
    cluster.kubectl("delete", "rs", "adopt")
    cluster.kubectl("delete", "pod", "orphan", "--wait=false")


def test_replication_controller(cluster: Cluster):
    apply(cluster, {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc1"},
                    "spec": {"replicas": 2, "selector": {"app": "rc1"},
                             "template": {"metadata": {"labels": {"app": "rc1"}},
                                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})

    def row() -> list[str]:
        lines = cluster.kubectl("get", "rc", "rc1").stdout.splitlines()
        return lines[1].split()[1:4]
    wait_for(lambda: row() == ["2", "2", "2"], 30, what="rc1 ready")
    cluster.kubectl("scale", "rc", "rc1", "--replicas=3")
    wait_for(lambda: row() == ["3", "3", "3"], 30, what="rc1 scaled")
    pods = get(cluster, "pods", "-l", "app=rc1")["items"]
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in pods)
    cluster.kubectl("delete", "rc", "rc1")
