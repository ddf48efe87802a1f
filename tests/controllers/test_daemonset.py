"""DaemonSet controller: fill the caches, run one sync, compare the calls."""

from __future__ import annotations

import asyncio
import copy

from k8py.controllers.daemonset import DaemonSetController
from k8py.controllers.daemonset_util import default_tolerations, placement, pod_template
from k8py.controllers.history import POD_REVISION_LABEL
from tests.controllers.fakeapi import make_context, pod, put

DS_UID = "uid-ds"


def run(coro):
    return asyncio.run(coro)


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    spec = {"taints": taints} if taints else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}",
                         "labels": dict(labels or {}, **{"kubernetes.io/hostname": name})},
            "spec": spec, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def daemonset(image: str = "nginx:1", *, node_selector: dict | None = None, generation: int = 1,
              max_unavailable: object = 1, max_surge: object = 0, strategy: str = "RollingUpdate") -> dict:
    spec = {"containers": [{"name": "c", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    us: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        us["rollingUpdate"] = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ds", "namespace": "default", "uid": DS_UID, "generation": generation,
                         "annotations": {"deprecated.daemonset.template.generation": str(generation)}},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec},
                     "updateStrategy": us, "revisionHistoryLimit": 10},
            "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                       "numberReady": 0}}


def setup(ds: dict, *nodes: dict):
    ctx, client = make_context()
    c = DaemonSetController(ctx, clock=lambda: 1.7e9)
    put(ctx, "nodes", *nodes)
    put(ctx, "daemonsets.apps", ds)
    return ctx, client, c


def sync_and_store_revision(ctx, client, c) -> dict:
    """First sync: creates the revision; put it in the cache as the informer would."""
    run(c.sync("default/ds"))
    revs = [o for v, p, o in client.calls if v == "create" and p == "controllerrevisions"]
    for r in revs:
        put(ctx, "controllerrevisions.apps", r)
    return revs[-1] if revs else {}


def ds_pod(name: str, node_name: str, hash_: str, gen: str = "1", **kw) -> dict:
    p = pod(name, labels={"app": "d", POD_REVISION_LABEL: hash_, "pod-template-generation": gen},
            node=node_name, owner={"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": DS_UID},
            **kw)
    return p


def test_placement_nodeselector_taints_and_noexecute():
    ds = daemonset(node_selector={"role": "edge"})
    should = placement(ds, pod_template(ds, "h"))
    assert should(node("a", {"role": "edge"})) == (True, True)
    assert should(node("b")) == (False, False)
    no_sched = node("c", {"role": "edge"}, [{"key": "k", "effect": "NoSchedule"}])
    assert should(no_sched) == (False, True)  # already running pods stay
    no_exec = node("d", {"role": "edge"}, [{"key": "k", "effect": "NoExecute"}])
    assert should(no_exec) == (False, False)
    # default tolerations: unschedulable and not-ready nodes still run daemons
    cordoned = node("e", {"role": "edge"}, [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                                            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert should(cordoned) == (True, True)


def test_default_tolerations_and_network_unavailable_for_host_network():
    keys = [t["key"].split("/")[1] for t in default_tolerations(False)]
    assert keys == ["not-ready", "unreachable", "disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"]
    assert default_tolerations(True)[-1]["key"] == "node.kubernetes.io/network-unavailable"
    assert all("tolerationSeconds" not in t for t in default_tolerations(True))


def test_first_sync_makes_revision_and_one_pod_per_eligible_node():
    ds = daemonset(node_selector={"role": "edge"})
    ctx, client, c = setup(ds, node("a", {"role": "edge"}), node("b"),
                           node("c", {"role": "edge"}, [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]))
    rev = sync_and_store_revision(ctx, client, c)
    assert rev["metadata"]["name"].startswith("ds-")
    h = rev["metadata"]["labels"][POD_REVISION_LABEL]
    assert rev["metadata"]["name"] == f"ds-{h}"
    assert rev["revision"] == 1
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["metadata"]["ownerReferences"][0]["uid"] == DS_UID
    created = [o for v, p, o in client.calls if v == "create" and p == "pods"]
    assert len(created) == 1
    p = created[0]
    assert p["metadata"]["generateName"] == "ds-"
    assert p["metadata"]["labels"] == {"app": "d", POD_REVISION_LABEL: h, "pod-template-generation": "1"}
    assert "nodeName" not in p["spec"]  # the scheduler binds it
    assert p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}
    assert {t["key"] for t in p["spec"]["tolerations"]} >= {"node.kubernetes.io/unreachable"}
    assert ("Normal", "SuccessfulCreate", f"Created pod: {p['metadata']['name']}") in ctx._recorders.events
    status = [o for v, p_, o in client.calls if v == "update/status"][-1]["status"]
    assert status["desiredNumberScheduled"] == 1  # b lacks the label, c is tainted
    # expectations: a second sync before the informer sees the pod creates nothing
    client.calls.clear()
    run(c.sync("default/ds"))
    assert not [1 for v, p_, _ in client.calls if v == "create" and p_ == "pods"]


def test_desired_counts_only_eligible_nodes():
    ds = daemonset(node_selector={"role": "edge"})
    ctx, client, c = setup(ds, node("a", {"role": "edge"}), node("b"))
    rev = sync_and_store_revision(ctx, client, c)
    h = rev["metadata"]["labels"][POD_REVISION_LABEL]
    put(ctx, "pods", ds_pod("ds-a", "a", h))
    client.calls.clear()
    run(c.sync("default/ds"))
    [(verb, _, obj)] = client.calls
    assert verb == "update/status"
    assert obj["status"] == {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1,
                             "numberReady": 1, "observedGeneration": 1, "updatedNumberScheduled": 1,
                             "numberAvailable": 1}
    # nothing changed: no write
    put(ctx, "daemonsets.apps", dict(ds, status=obj["status"]))
    client.calls.clear()
    run(c.sync("default/ds"))
    assert client.calls == []


def test_node_that_stops_qualifying_loses_its_pod_and_gone_node_too():
    ds = daemonset(node_selector={"role": "edge"})
    ctx, client, c = setup(ds, node("a"), node("b", {"role": "edge"}))
    rev = sync_and_store_revision(ctx, client, c)
    h = rev["metadata"]["labels"][POD_REVISION_LABEL]
    put(ctx, "pods", ds_pod("ds-a", "a", h), ds_pod("ds-b", "b", h), ds_pod("ds-x", "gone", h))
    c.expectations.delete("default/ds")
    client.calls.clear()
    run(c.sync("default/ds"))
    deleted = sorted(o for v, p, o in client.calls if v == "delete" and p == "pods")
    assert deleted == ["default/ds-a", "default/ds-x"]
    assert ("Normal", "SuccessfulDelete", "Deleted pod: ds-a") in ctx._recorders.events


def test_failed_pod_is_replaced_and_surplus_pruned():
    ds = daemonset()
    ctx, client, c = setup(ds, node("a"), node("b"))
    rev = sync_and_store_revision(ctx, client, c)
    h = rev["metadata"]["labels"][POD_REVISION_LABEL]
    old = ds_pod("ds-b1", "b", h)
    new = ds_pod("ds-b2", "b", h)
    new["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    put(ctx, "pods", ds_pod("ds-a", "a", h, phase="Failed"), old, new)
    c.expectations.delete("default/ds")
    client.calls.clear()
    run(c.sync("default/ds"))
    deleted = sorted(o for v, p, o in client.calls if v == "delete" and p == "pods")
    assert deleted == ["default/ds-a", "default/ds-b2"]
    assert any(r == "FailedDaemonPod" for _, r, _ in ctx._recorders.events)


def test_rolling_update_respects_max_unavailable():
    ds = daemonset()
    nodes = [node(n) for n in ("a", "b", "c")]
    ctx, client, c = setup(ds, *nodes)
    rev = sync_and_store_revision(ctx, client, c)
    h1 = rev["metadata"]["labels"][POD_REVISION_LABEL]
    put(ctx, "pods", *(ds_pod(f"ds-{n}", n, h1) for n in "abc"))
    ds2 = daemonset("nginx:2", generation=2)
    put(ctx, "daemonsets.apps", ds2)
    c.expectations.delete("default/ds")
    client.calls.clear()
    rev2 = sync_and_store_revision(ctx, client, c)
    assert rev2["revision"] == 2
    h2 = rev2["metadata"]["labels"][POD_REVISION_LABEL]
    assert h2 != h1
    deleted = [o for v, p, o in client.calls if v == "delete" and p == "pods"]
    assert len(deleted) == 1  # maxUnavailable 1
    # the replacement on that node is not available yet: nothing more is deleted
    gone = deleted[0].split("/")[1]
    ctx.informers.informer("pods").store.remove(f"default/{gone}")
    put(ctx, "pods", ds_pod("ds-new", gone[-1], h2, gen="2", ready=False))
    c.expectations.delete("default/ds")
    client.calls.clear()
    run(c.sync("default/ds"))
    assert not [1 for v, p, _ in client.calls if v in ("delete", "create") and p == "pods"]
    status = [o for v, _, o in client.calls if v == "update/status"][-1]["status"]
    assert status["updatedNumberScheduled"] == 1
    assert status["numberUnavailable"] == 1


def test_rolling_update_with_surge_creates_before_deleting():
    ds = daemonset(max_unavailable=0, max_surge=1)
    ctx, client, c = setup(ds, node("a"), node("b"))
    rev = sync_and_store_revision(ctx, client, c)
    h1 = rev["metadata"]["labels"][POD_REVISION_LABEL]
    put(ctx, "pods", ds_pod("ds-a", "a", h1), ds_pod("ds-b", "b", h1))
    put(ctx, "daemonsets.apps", daemonset("nginx:2", generation=2, max_unavailable=0, max_surge=1))
    c.expectations.delete("default/ds")
    client.calls.clear()
    sync_and_store_revision(ctx, client, c)
    created = [o for v, p, o in client.calls if v == "create" and p == "pods"]
    assert len(created) == 1
    assert not [1 for v, p, _ in client.calls if v == "delete" and p == "pods"]


def test_on_delete_does_not_replace_old_pods():
    ds = daemonset(strategy="OnDelete")
    ctx, client, c = setup(ds, node("a"))
    rev = sync_and_store_revision(ctx, client, c)
    put(ctx, "pods", ds_pod("ds-a", "a", rev["metadata"]["labels"][POD_REVISION_LABEL]))
    put(ctx, "daemonsets.apps", dict(daemonset("nginx:2", generation=2, strategy="OnDelete")))
    c.expectations.delete("default/ds")
    client.calls.clear()
    sync_and_store_revision(ctx, client, c)
    assert not [1 for v, p, _ in client.calls if v in ("delete", "create") and p == "pods"]


def test_rollback_renumbers_the_old_revision_and_history_is_trimmed():
    ds = daemonset()
    ctx, client, c = setup(ds, node("a"))
    rev1 = sync_and_store_revision(ctx, client, c)
    put(ctx, "daemonsets.apps", daemonset("nginx:2", generation=2))
    rev2 = sync_and_store_revision(ctx, client, c)
    back = daemonset(generation=3)
    put(ctx, "daemonsets.apps", back)
    client.calls.clear()
    run(c.sync("default/ds"))
    updates = [o for v, p, o in client.calls if v == "update" and p == "controllerrevisions"]
    assert [(u["metadata"]["name"], u["revision"]) for u in updates] == [(rev1["metadata"]["name"], 3)]
    assert rev2["revision"] == 2
    # limit 0: old non-live revisions go
    put(ctx, "controllerrevisions.apps", updates[0])
    limited = copy.deepcopy(back)
    limited["spec"]["revisionHistoryLimit"] = 0
    put(ctx, "daemonsets.apps", limited)
    c.expectations.delete("default/ds")
    client.calls.clear()
    run(c.sync("default/ds"))
    assert ("delete", "controllerrevisions", f"default/{rev2['metadata']['name']}") in client.calls
