"""Garbage collection end to end (real kubectl against ``k8py server``):
each cascade policy, dangling owners, blockOwnerDeletion holding a
foreground deletion, and pod garbage collection (terminated pods over the
threshold, pods of a node that was deleted, unscheduled terminating pods).

Most owners and dependents are ConfigMaps and Pods with hand-written
ownerReferences, so that they need no other controller; the ReplicaSet
tests use the replicaset controller (with no scheduler: its pods stay
Pending)."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

CONTROLLERS = "garbage-collector,pod-garbage-collector,replicaset"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster("--disable-scheduler",
                f"--kube-controller-manager-arg=--controllers={CONTROLLERS}",
                "--kube-controller-manager-arg=--terminated-pod-gc-threshold=2",
                "--kube-controller-manager-arg=--pod-gc-check-period=0.5",
                "--kube-controller-manager-arg=--pod-gc-quarantine-time=2").start()
    try:
        c.kubectl("create", "namespace", "gc")
        yield c
    finally:
        c.close()


def kubectl(c: Cluster, *args: str, **kw) -> str:
    return c.kubectl("-n", "gc", *args, **kw).stdout


def get(c: Cluster, *args: str) -> dict | None:
    p = c.kubectl("-n", "gc", "get", *args, "-o", "json", check=False)
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return json.loads(p.stdout)


def create(c: Cluster, obj: dict) -> dict:
    return json.loads(c.kubectl("-n", "gc", "create", "-f", "-", "-o", "json", input=json.dumps(obj)).stdout)


def configmap(name: str, *owners: dict, block: bool | None = None, finalizers: list[str] | None = None) -> dict:
    md: dict = {"name": name}
    if owners:
        md["ownerReferences"] = [
            {"apiVersion": o.get("apiVersion", "v1"), "kind": o.get("kind", "ConfigMap"),
             "name": o["metadata"]["name"], "uid": o["metadata"]["uid"],
             **({"blockOwnerDeletion": block} if block is not None else {})} for o in owners]
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": "v"}}


def gone(c: Cluster, *names: str) -> bool:
    return all(get(c, "configmap", n) is None for n in names)


def test_background_deletes_dependents(cluster: Cluster) -> None:
    owner = create(cluster, configmap("bg-owner"))
    create(cluster, configmap("bg-a", owner))
    create(cluster, configmap("bg-b", owner, block=True))
    pod = create(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "bg-pod", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "bg-owner",
                                               "uid": owner["metadata"]["uid"]}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    # a grandchild goes too: the cascade follows the graph
    create(cluster, configmap("bg-grandchild", get(cluster, "configmap", "bg-a")))
    kubectl(cluster, "delete", "configmap", "bg-owner")
    wait_for(lambda: gone(cluster, "bg-owner", "bg-a", "bg-b", "bg-grandchild"), 20, what="dependents deleted")
    wait_for(lambda: get(cluster, "pod", pod["metadata"]["name"]) is None, 20, what="pod deleted")


def test_orphan_keeps_dependents_without_the_reference(cluster: Cluster) -> None:
    owner = create(cluster, configmap("or-owner"))
    other = create(cluster, configmap("or-other"))
    create(cluster, configmap("or-a", owner))
    create(cluster, configmap("or-b", owner, other))
    kubectl(cluster, "delete", "configmap", "or-owner", "--cascade=orphan")
    wait_for(lambda: gone(cluster, "or-owner"), 20, what="owner deleted")
    a, b = get(cluster, "configmap", "or-a"), get(cluster, "configmap", "or-b")
    assert a is not None and not a["metadata"].get("ownerReferences")
    assert b is not None and [r["name"] for r in b["metadata"]["ownerReferences"]] == ["or-other"]


def test_foreground_deletes_dependents_before_the_owner(cluster: Cluster) -> None:
    owner = create(cluster, configmap("fg-owner"))
    create(cluster, configmap("fg-free", owner))
    # a blocking dependent held by a finalizer keeps the owner waiting
    create(cluster, configmap("fg-held", owner, block=True, finalizers=["example.com/hold"]))
    kubectl(cluster, "delete", "configmap", "fg-owner", "--cascade=foreground", "--wait=false")

    def waiting() -> bool:
        held = get(cluster, "configmap", "fg-held")
        return bool(held and held["metadata"].get("deletionTimestamp")) and gone(cluster, "fg-free")
    wait_for(waiting, 20, what="dependents deleted first")
    o = get(cluster, "configmap", "fg-owner")
    assert o is not None and o["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert o["metadata"].get("deletionTimestamp")
    kubectl(cluster, "patch", "configmap", "fg-held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: gone(cluster, "fg-held", "fg-owner"), 20, what="owner deleted after its dependents")


def test_foreground_is_not_blocked_by_non_blocking_dependents(cluster: Cluster) -> None:
    owner = create(cluster, configmap("fgn-owner"))
    create(cluster, configmap("fgn-held", owner, block=False, finalizers=["example.com/hold"]))
    kubectl(cluster, "delete", "configmap", "fgn-owner", "--cascade=foreground")  # waits for the owner
    assert gone(cluster, "fgn-owner")
    held = get(cluster, "configmap", "fgn-held")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    kubectl(cluster, "patch", "configmap", "fgn-held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: gone(cluster, "fgn-held"), 20)


def test_dangling_owner_reference_is_collected(cluster: Cluster) -> None:
    ghost = {"metadata": {"name": "never-there", "uid": "00000000-0000-4000-8000-000000000001"}}
    create(cluster, configmap("dangling", ghost))
    wait_for(lambda: gone(cluster, "dangling"), 20, what="dependent of a missing owner deleted")
    # an owner of the same name but another uid does not count either
    real = create(cluster, configmap("same-name"))
    impostor = {"metadata": {"name": "same-name", "uid": "00000000-0000-4000-8000-000000000002"}}
    create(cluster, configmap("dep-of-impostor", impostor))
    create(cluster, configmap("dep-of-real", real))
    wait_for(lambda: gone(cluster, "dep-of-impostor"), 20)
    assert get(cluster, "configmap", "dep-of-real") is not None


def test_solid_owner_keeps_dependent_and_dangling_reference_is_removed(cluster: Cluster) -> None:
    a, b = create(cluster, configmap("two-a")), create(cluster, configmap("two-b"))
    create(cluster, configmap("two-dep", a, b))
    kubectl(cluster, "delete", "configmap", "two-a")

    def only_b() -> bool:
        d = get(cluster, "configmap", "two-dep")
        return d is not None and [r["name"] for r in d["metadata"].get("ownerReferences") or []] == ["two-b"]
    wait_for(only_b, 20, what="the dangling reference removed, the dependent kept")
    kubectl(cluster, "delete", "configmap", "two-b")
    wait_for(lambda: gone(cluster, "two-dep"), 20)


# ---- a ReplicaSet and its pods, with kubectl's --cascade ------------------

def replicaset(c: Cluster, name: str, replicas: int = 3) -> list[str]:
    create(c, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                        "template": {"metadata": {"labels": {"rs": name}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    return wait_for(lambda: pods_of(c, name) if len(pods_of(c, name)) == replicas else None, 30,
                    what=f"{replicas} pods of {name}")


def pods_of(c: Cluster, rs: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in get(c, "pods", "-l", f"rs={rs}")["items"])


def test_replicaset_background(cluster: Cluster) -> None:
    replicaset(cluster, "rs-bg")
    kubectl(cluster, "delete", "rs", "rs-bg")
    wait_for(lambda: not pods_of(cluster, "rs-bg"), 30, what="pods deleted with their ReplicaSet")


def test_replicaset_orphan(cluster: Cluster) -> None:
    pods = replicaset(cluster, "rs-or")
    kubectl(cluster, "delete", "rs", "rs-or", "--cascade=orphan")
    assert get(cluster, "rs", "rs-or") is None
    assert pods_of(cluster, "rs-or") == pods
    for p in get(cluster, "pods", "-l", "rs=rs-or")["items"]:
        assert not p["metadata"].get("ownerReferences")
    kubectl(cluster, "delete", "pods", "-l", "rs=rs-or")


def test_replicaset_foreground(cluster: Cluster) -> None:
    pods = replicaset(cluster, "rs-fg")
    held = pods[0]
    kubectl(cluster, "patch", "pod", held, "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl(cluster, "delete", "rs", "rs-fg", "--cascade=foreground", "--wait=false")
    # the pods go first; the one held by a finalizer blocks its owner (controller refs block)
    wait_for(lambda: pods_of(cluster, "rs-fg") == [held], 30, what="unheld pods deleted")
    rs = get(cluster, "rs", "rs-fg")
    assert rs is not None and rs["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert get(cluster, "pod", held)["metadata"].get("deletionTimestamp")
    kubectl(cluster, "patch", "pod", held, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: get(cluster, "rs", "rs-fg") is None, 30, what="ReplicaSet deleted after its pods")
    assert not pods_of(cluster, "rs-fg")


# ---- pod garbage collection ----------------------------------------------

def fake_node(c: Cluster, name: str) -> None:
    c.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))


def bound_pod(c: Cluster, name: str, node: str) -> dict:
    return create(c, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                      "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}})


def test_pods_of_a_deleted_node_are_failed_and_deleted(cluster: Cluster) -> None:
    fake_node(cluster, "doomed-node")
    bound_pod(cluster, "on-doomed", "doomed-node")
    seen: list[dict] = []
    cluster.kubectl("delete", "node", "doomed-node")

    def collected() -> bool:
        p = get(cluster, "pod", "on-doomed")
        if p is not None:
            seen.append(p)
        return p is None
    wait_for(collected, 30, interval=0.1, what="orphaned pod deleted")
    # the pod was marked Failed with kube's DisruptionTarget condition on its way out (if we saw it then)
    failed = [p for p in seen if p["status"].get("phase") == "Failed"]
    for p in failed:
        cond = next(c for c in p["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert (cond["reason"], cond["message"]) == ("DeletionByPodGC", "PodGC: node no longer exists")


def test_terminated_pods_over_the_threshold_go_oldest_first(cluster: Cluster) -> None:
    fake_node(cluster, "gc-node")
    names = [f"done-{i}" for i in range(4)]
    for n in names:
        bound_pod(cluster, n, "gc-node")
    for n in names:
        kubectl(cluster, "patch", "pod", n, "--subresource=status", "--type=merge",
                "-p", '{"status":{"phase":"Succeeded"}}')
    wait_for(lambda: [n for n in names if get(cluster, "pod", n) is not None] == names[2:], 30,
             what="the two oldest terminated pods deleted")
    # a running pod does not count
    bound_pod(cluster, "still-running", "gc-node")
    assert get(cluster, "pod", "still-running") is not None
    for n in names[2:] + ["still-running"]:
        kubectl(cluster, "delete", "pod", n, "--grace-period=0", "--force")
