"""DaemonSets end to end (real kubectl against ``k8py server`` with hollow
nodes): one pod per eligible node, placed by the scheduler through a
``metadata.name`` node affinity; a node that joins later gets its pod, a
tainted or unlabelled node gets none, a node that stops qualifying loses
its pod; rolling update, history and undo."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

PREFIX = "dsn-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(2, PREFIX, "--lease-period", "2")
        c.add_nodes(1, "tainted-", "--register-with-taints", "dedicated=db:NoSchedule", "--lease-period", "2")
        yield c
    finally:
        c.close()


def get(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def manifest(name: str, image: str = "nginx:1.25", node_selector: dict | None = None, **strategy: object) -> str:
    spec: dict = {"containers": [{"name": "c", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    body: dict = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                  "spec": {"selector": {"matchLabels": {"app": name}},
                           "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    if strategy:
        body["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    return json.dumps(body)


def running_by_node(cluster: Cluster, app: str) -> dict[str, dict]:
    pods = get(cluster, "pods", "-l", f"app={app}")["items"]
    return {p["spec"].get("nodeName", ""): p for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def pods_on(cluster: Cluster, app: str) -> list[str]:
    return sorted(p["spec"].get("nodeName", "") for p in get(cluster, "pods", "-l", f"app={app}")["items"]
                  if not p["metadata"].get("deletionTimestamp"))


def test_one_pod_per_node_then_a_late_node_gets_one(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest("agent"))
    wait_for(lambda: sorted(running_by_node(cluster, "agent")) == [f"{PREFIX}0", f"{PREFIX}1"], 60,
             what="agent pods on both untainted nodes")
    ds = get(cluster, "ds", "agent")
    st = ds["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberMisscheduled"]) == (2, 2, 0)
    wait_for(lambda: get(cluster, "ds", "agent")["status"].get("numberReady") == 2, 30)
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"

    pod = running_by_node(cluster, "agent")[f"{PREFIX}0"]
    assert pod["metadata"]["name"].startswith("agent-")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [f"{PREFIX}0"]}]}]}
    tols = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in tols
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tols
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in tols

    out = cluster.kubectl("get", "ds", "agent").stdout
    assert out.split("\n")[1].split()[:6] == ["agent", "2", "2", "2", "2", "2"]
    events = cluster.kubectl("describe", "ds", "agent").stdout
    assert "SuccessfulCreate" in events and "Created pod: agent-" in events

    cluster.add_nodes(1, "late-", "--lease-period", "2")
    wait_for(lambda: "late-0" in running_by_node(cluster, "agent"), 60, what="the late node's agent pod")
    wait_for(lambda: get(cluster, "ds", "agent")["status"].get("numberAvailable") == 3, 30)
    out = cluster.kubectl("rollout", "status", "ds/agent", "--timeout=30s").stdout
    assert 'daemon set "agent" successfully rolled out' in out


def test_node_selector_and_a_node_that_stops_qualifying(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest("edge", node_selector={"role": "edge"}))
    wait_for(lambda: get(cluster, "ds", "edge").get("status", {}).get("observedGeneration") == 1, 30)
    assert pods_on(cluster, "edge") == []
    assert get(cluster, "ds", "edge")["status"]["desiredNumberScheduled"] == 0
    cluster.kubectl("label", "node", f"{PREFIX}1", "role=edge")
    cluster.kubectl("label", "node", "tainted-0", "role=edge")  # labelled but tainted: still no pod
    wait_for(lambda: list(running_by_node(cluster, "edge")) == [f"{PREFIX}1"], 60, what="edge pod on dsn-1")
    cluster.kubectl("label", "node", f"{PREFIX}1", "role-")
    wait_for(lambda: pods_on(cluster, "edge") == [], 60, what="edge pod gone after unlabel")
    assert "SuccessfulDelete" in cluster.kubectl("describe", "ds", "edge").stdout
    cluster.kubectl("delete", "ds", "edge")


def test_tolerating_daemonset_runs_on_the_tainted_node(cluster: Cluster) -> None:
    body = json.loads(manifest("tol"))
    body["spec"]["template"]["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    wait_for(lambda: "tainted-0" in running_by_node(cluster, "tol"), 60, what="tol pod on the tainted node")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    ds = get(cluster, "ds", "tol")
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    cluster.kubectl("delete", "ds", "tol")


def test_rolling_update_history_and_undo(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest("roll", maxUnavailable=1))
    cluster.kubectl("rollout", "status", "ds/roll", "--timeout=60s")
    before = {p["metadata"]["name"] for p in running_by_node(cluster, "roll").values()}
    cluster.kubectl("set", "image", "ds/roll", "c=nginx:1.26")
    out = cluster.kubectl("rollout", "status", "ds/roll", "--timeout=90s").stdout
    assert 'daemon set "roll" successfully rolled out' in out
    pods = running_by_node(cluster, "roll")
    assert len(pods) == 3
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods.values())
    assert not before & {p["metadata"]["name"] for p in pods.values()}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods.values()} == {"2"}
    st = get(cluster, "ds", "roll")["status"]
    assert st["updatedNumberScheduled"] == 3 and st["observedGeneration"] == 2

    revs = get(cluster, "controllerrevisions", "-l", "app=roll")["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]
    hist = cluster.kubectl("rollout", "history", "ds/roll").stdout
    assert "REVISION" in hist and "1 " in hist and "2 " in hist
    detail = cluster.kubectl("rollout", "history", "ds/roll", "--revision=1").stdout
    assert "nginx:1.25" in detail

    cluster.kubectl("rollout", "undo", "ds/roll")
    cluster.kubectl("rollout", "status", "ds/roll", "--timeout=90s")
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in running_by_node(cluster, "roll").values()}
             == {"nginx:1.25"} and len(running_by_node(cluster, "roll")) == 3, 60, what="undo to 1.25")
    revs = get(cluster, "controllerrevisions", "-l", "app=roll")["items"]
    assert sorted(r["revision"] for r in revs) == [2, 3]  # revision 1 came back as 3
    cluster.kubectl("delete", "ds", "roll")
