"""PodDisruptionBudgets end to end (real kubectl and the official Python
client against ``k8py server`` with hollow nodes): the disruption
controller's status, the eviction subresource answering 429 and then
allowing, and ``kubectl drain`` evicting one pod at a time as the
Deployment replaces them."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from kubernetes import client as k8s

from tests.support.cluster import Cluster, wait_for

PREFIX = "pdb-"
NS = "pdb-e2e"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(3, PREFIX)
        c.kubectl("create", "namespace", NS)
        yield c
    finally:
        c.close()


def pdb_status(cluster: Cluster, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "pdb", name, "-n", NS, "-o", "json").stdout).get("status") or {}


def pods_of(cluster: Cluster, app: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", "pods", "-n", NS, "-l", f"app={app}", "-o", "json").stdout)["items"]


def ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or [])


def evict(cluster: Cluster, name: str) -> None:
    api = k8s.CoreV1Api(cluster.client())
    api.create_namespaced_pod_eviction(name, NS, k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace=NS)))


def test_status_and_eviction(cluster: Cluster) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", NS)
    cluster.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=3", "-n", NS)
    st = wait_for(lambda: (s := pdb_status(cluster, "web")).get("currentHealthy") == 3 and s, 60,
                  what="PDB status with 3 healthy pods")
    assert (st["desiredHealthy"], st["expectedPods"], st["disruptionsAllowed"]) == (3, 3, 0)
    assert st["observedGeneration"] == 1
    [cond] = st["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "False", "InsufficientPods")
    out = cluster.kubectl("get", "pdb", "web", "-n", NS).stdout
    assert out.split("\n")[1].split()[:4] == ["web", "3", "N/A", "0"]

    victim = pods_of(cluster, "web")[0]["metadata"]["name"]
    with pytest.raises(k8s.ApiException) as e:
        evict(cluster, victim)
    assert e.value.status == 429
    body = json.loads(e.value.body)
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["message"] == \
        "The disruption budget web needs 3 healthy pods and has 3 currently"

    cluster.kubectl("patch", "pdb", "web", "-n", NS, "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
    st = wait_for(lambda: (s := pdb_status(cluster, "web")).get("disruptionsAllowed") == 1 and s, 30,
                  what="one disruption allowed")
    assert st["observedGeneration"] == 2 and st["conditions"][0]["reason"] == "SufficientPods"
    evict(cluster, victim)  # spends the disruption (the replacement may be Ready at once on hollow nodes)
    # the Deployment replaces the pod; the budget recovers
    wait_for(lambda: (s := pdb_status(cluster, "web")).get("disruptionsAllowed") == 1
             and s.get("currentHealthy") == 3 and not s.get("disruptedPods"), 60, what="budget recovered")
    wait_for(lambda: victim not in [p["metadata"]["name"] for p in pods_of(cluster, "web")], 30,
             what="evicted pod gone")


def test_percentages_use_the_controllers_scale(cluster: Cluster) -> None:
    cluster.kubectl("create", "pdb", "half", "--selector=app=web", "--max-unavailable=50%", "-n", NS)
    st = wait_for(lambda: (s := pdb_status(cluster, "half")).get("expectedPods") == 3 and s, 30,
                  what="percentage PDB status")
    assert (st["desiredHealthy"], st["disruptionsAllowed"]) == (1, 2)
    cluster.kubectl("delete", "pdb", "half", "-n", NS)


def test_drain_evicts_one_by_one(cluster: Cluster) -> None:
    target = f"{PREFIX}0"
    others = [f"{PREFIX}1", f"{PREFIX}2"]
    for n in others:
        cluster.kubectl("cordon", n)
    cluster.kubectl("create", "deployment", "drainme", "--image=nginx", "--replicas=3", "-n", NS)
    cluster.kubectl("create", "pdb", "drainme", "--selector=app=drainme", "--min-available=2", "-n", NS)
    wait_for(lambda: len([p for p in pods_of(cluster, "drainme") if ready(p)]) == 3, 60, what="3 pods ready")
    assert {p["spec"]["nodeName"] for p in pods_of(cluster, "drainme")} == {target}
    wait_for(lambda: pdb_status(cluster, "drainme").get("disruptionsAllowed") == 1, 30, what="budget ready")
    for n in others:
        cluster.kubectl("uncordon", n)
    r = cluster.kubectl("drain", target, "--ignore-daemonsets", "--pod-selector=app=drainme", "--timeout=120s",
                        timeout=150)
    assert f"node/{target} drained" in r.stdout
    assert "Cannot evict pod as it would violate the pod's disruption budget." in r.stdout + r.stderr
    assert r.stdout.count("evicted") >= 3
    pods = pods_of(cluster, "drainme")
    assert pods and all(p["spec"]["nodeName"] in others for p in pods if not p["metadata"].get("deletionTimestamp"))
    cluster.kubectl("uncordon", target)
