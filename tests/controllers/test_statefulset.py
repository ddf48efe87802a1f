"""StatefulSet controller: fill the caches, run one sync, compare the calls."""

from __future__ import annotations

import asyncio

from k8py.controllers.history import HASH_LABEL, POD_REVISION_LABEL
from k8py.controllers.statefulset import StatefulSetController, new_pod
from tests.controllers.fakeapi import make_context, pod, put

UID = "uid-web"
OWNER = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": UID}


def run(coro):
    return asyncio.run(coro)


def sts(replicas: int = 3, image: str = "nginx:1", *, policy: str = "OrderedReady", partition: int | None = 0,
        strategy: str = "RollingUpdate", generation: int = 1, status: dict | None = None,
        retention: dict | None = None) -> dict:
    us: dict = {"type": strategy}
    if strategy == "RollingUpdate" and partition is not None:
        us["rollingUpdate"] = {"partition": partition}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": generation},
            "spec": {"replicas": replicas, "serviceName": "nginx", "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image,
                                                           "volumeMounts": [{"name": "www", "mountPath": "/d"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                               "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": "1Gi"}}}}],
                     "updateStrategy": us, "revisionHistoryLimit": 10,
                     "persistentVolumeClaimRetentionPolicy": retention or {"whenDeleted": "Retain",
                                                                            "whenScaled": "Retain"}},
            "status": status or {"replicas": 0, "availableReplicas": 0}}


def setup(s: dict):
    ctx, client = make_context()
    c = StatefulSetController(ctx, clock=lambda: 1.7e9)
    put(ctx, "statefulsets.apps", s)
    return ctx, client, c


def first_sync(ctx, client, c) -> dict:
    run(c.sync("default/web"))
    revs = [o for v, p, o in client.calls if v == "create" and p == "controllerrevisions"]
    for r in revs:
        put(ctx, "controllerrevisions.apps", r)
    return revs[-1] if revs else {}


def member(i: int, rev: str, **kw) -> dict:
    p = pod(f"web-{i}", labels={"app": "web", POD_REVISION_LABEL: rev,
                                "statefulset.kubernetes.io/pod-name": f"web-{i}",
                                "apps.kubernetes.io/pod-index": str(i)}, owner=OWNER, **kw)
    p["metadata"]["creationTimestamp"] = f"2024-01-01T00:00:0{i}Z"
    return p


def writes(client, verb: str, plural: str) -> list:
    return [o for v, p, o in client.calls if v == verb and p == plural]


def test_new_pod_identity_and_storage():
    p = new_pod(sts(), 2)
    md = p["metadata"]
    assert md["name"] == "web-2" and "generateName" not in md
    assert md["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": "web-2",
                            "apps.kubernetes.io/pod-index": "2"}
    assert md["ownerReferences"][0]["uid"] == UID and md["ownerReferences"][0]["controller"]
    assert p["spec"]["hostname"] == "web-2" and p["spec"]["subdomain"] == "nginx"
    assert p["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}]


def test_ordered_ready_creates_claim_then_first_pod_only():
    ctx, client, c = setup(sts())
    rev = first_sync(ctx, client, c)
    assert rev["metadata"]["name"] == f"web-{rev['metadata']['labels'][HASH_LABEL]}"
    assert rev["metadata"]["labels"]["app"] == "web"
    [claim] = writes(client, "create", "persistentvolumeclaims")
    assert claim["metadata"]["name"] == "www-web-0"
    assert claim["metadata"]["labels"] == {"app": "web"}
    [p] = writes(client, "create", "pods")
    assert p["metadata"]["name"] == "web-0"
    assert p["metadata"]["labels"][POD_REVISION_LABEL] == rev["metadata"]["name"]
    kinds = [p_ for v, p_, _ in client.calls if v == "create"]
    assert kinds.index("persistentvolumeclaims") < kinds.index("pods")
    events = ctx._recorders.events
    assert ("Normal", "SuccessfulCreate", "create Claim www-web-0 Pod web-0 in StatefulSet web success") in events
    assert ("Normal", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in events
    st = writes(client, "update/status", "statefulsets")[-1]["status"]
    assert st["currentRevision"] == st["updateRevision"] == rev["metadata"]["name"]
    assert st["observedGeneration"] == 1 and st["collisionCount"] == 0


def test_ordered_ready_waits_for_ready_predecessor():
    ctx, client, c = setup(sts())
    rev = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, rev, ready=False))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "create", "pods") == []
    put(ctx, "pods", member(0, rev))
    client.calls.clear()
    run(c.sync("default/web"))
    assert [p["metadata"]["name"] for p in writes(client, "create", "pods")] == ["web-1"]


def test_parallel_creates_all_at_once():
    ctx, client, c = setup(sts(policy="Parallel"))
    first_sync(ctx, client, c)
    assert sorted(p["metadata"]["name"] for p in writes(client, "create", "pods")) == ["web-0", "web-1", "web-2"]


def test_scale_down_in_reverse_order_one_at_a_time():
    ctx, client, c = setup(sts(replicas=1))
    rev = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, rev), member(1, rev), member(2, rev))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == ["default/web-2"]
    assert ("Normal", "SuccessfulDelete", "delete Pod web-2 in StatefulSet web successful") in ctx._recorders.events
    assert writes(client, "delete", "persistentvolumeclaims") == []
    # web-2 terminating: wait, do not touch web-1
    put(ctx, "pods", member(2, rev, deleting=True))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == []


def test_rolling_update_from_the_top_down_to_the_partition():
    s = sts(partition=1)
    ctx, client, c = setup(s)
    old = first_sync(ctx, client, c)
    old_name = old["metadata"]["name"]
    put(ctx, "pods", *(member(i, old_name) for i in range(3)))
    put(ctx, "statefulsets.apps", sts(image="nginx:2", partition=1, generation=2,
                                      status={"currentRevision": old_name, "updateRevision": old_name,
                                              "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
                                              "updatedReplicas": 3, "availableReplicas": 3}))
    client.calls.clear()
    new = first_sync(ctx, client, c)
    new_name = new["metadata"]["name"]
    assert new["revision"] == 2 and new_name != old_name
    assert writes(client, "delete", "pods") == ["default/web-2"]
    # web-2 comes back at the new revision but not ready: wait
    put(ctx, "pods", member(2, new_name, ready=False))
    st_obj = sts(image="nginx:2", partition=1, generation=2,
                 status={"currentRevision": old_name, "updateRevision": new_name})
    put(ctx, "statefulsets.apps", st_obj)
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == []
    put(ctx, "pods", member(2, new_name))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == ["default/web-1"]
    put(ctx, "pods", member(1, new_name))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == []  # web-0 is below the partition
    st = writes(client, "update/status", "statefulsets")[-1]["status"]
    assert (st["currentReplicas"], st["updatedReplicas"], st["currentRevision"], st["updateRevision"]) == \
        (1, 2, old_name, new_name)


def test_missing_pod_below_partition_is_made_at_the_current_revision():
    ctx, client, c = setup(sts(replicas=2, partition=2))
    old = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, old))
    put(ctx, "statefulsets.apps", sts(replicas=2, image="nginx:2", partition=2, generation=2,
                                      status={"currentRevision": old, "updateRevision": old}))
    client.calls.clear()
    first_sync(ctx, client, c)
    [p] = writes(client, "create", "pods")
    assert p["metadata"]["name"] == "web-1"
    assert p["metadata"]["labels"][POD_REVISION_LABEL] == old
    assert p["spec"]["containers"][0]["image"] == "nginx:1"


def test_rollout_complete_moves_current_revision():
    ctx, client, c = setup(sts(replicas=1))
    old = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "statefulsets.apps", sts(replicas=1, image="nginx:2", generation=2,
                                      status={"currentRevision": old, "updateRevision": old}))
    new = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, new))
    client.calls.clear()
    run(c.sync("default/web"))
    st = writes(client, "update/status", "statefulsets")[-1]["status"]
    assert st["currentRevision"] == st["updateRevision"] == new
    assert (st["replicas"], st["readyReplicas"], st["currentReplicas"], st["updatedReplicas"]) == (1, 1, 1, 1)


def test_failed_pod_is_deleted_for_recreation():
    ctx, client, c = setup(sts(replicas=1))
    rev = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, rev, phase="Failed"))
    client.calls.clear()
    run(c.sync("default/web"))
    assert writes(client, "delete", "pods") == ["default/web-0"]
    assert any(r == "RecreatingFailedPod" for _, r, _ in ctx._recorders.events)


def test_retention_policy_delete_gives_claims_owners():
    s = sts(replicas=1, retention={"whenDeleted": "Delete", "whenScaled": "Delete"})
    ctx, client, c = setup(s)
    rev = first_sync(ctx, client, c)["metadata"]["name"]
    put(ctx, "pods", member(0, rev), member(1, rev))
    put(ctx, "persistentvolumeclaims",
        *({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": f"www-web-{i}", "namespace": "default", "uid": f"pvc{i}"}} for i in (0, 1)))
    client.calls.clear()
    run(c.sync("default/web"))
    updated = {u["metadata"]["name"]: u["metadata"]["ownerReferences"]
               for u in writes(client, "update", "persistentvolumeclaims")}
    assert [r["uid"] for r in updated["www-web-0"]] == [UID]
    assert [r["uid"] for r in updated["www-web-1"]] == [UID, "uid-web-1"]
    assert writes(client, "delete", "pods") == ["default/web-1"]
