"""Deployment controller: one sync against filled caches, compared with kube's moves."""

from __future__ import annotations

import asyncio
from typing import Any

from k8py.controllers import deployment_util as du
from k8py.controllers.controller_utils import compute_hash
from k8py.controllers.deployment import DeploymentController
from tests.controllers.fakeapi import put
from tests.controllers.test_deployment_util import deploy
from tests.controllers.test_replicaset import setup


def d_obj(replicas: int = 4, **kw: Any) -> dict:
    d = deploy(replicas, **kw)
    d.update(apiVersion="apps/v1", kind="Deployment")
    d["spec"].setdefault("progressDeadlineSeconds", 600)
    d["spec"].setdefault("revisionHistoryLimit", 10)
    return d


def owned_rs(d: dict, name: str, replicas: int, template: dict, *, rev: str, available: int | None = None) -> dict:
    avail = replicas if available is None else available
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1,
                         "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"app": "web"},
                         "annotations": {du.REVISION: rev, du.DESIRED_REPLICAS: str(du.replicas(d)),
                                         du.MAX_REPLICAS: str(du.replicas(d) + du.max_surge(d))},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": "d1", "controller": True}]},
            "spec": {"replicas": replicas, "template": template,
                     "selector": {"matchLabels": {"app": "web", "pod-template-hash": name[4:]}}},
            "status": {"replicas": replicas, "readyReplicas": avail, "availableReplicas": avail,
                       "observedGeneration": 1}}


def calls(client, verb: str) -> list:
    return [o for v, _, o in client.calls if v == verb]


def test_first_sync_creates_the_new_replica_set():
    ctx, client, c = setup(DeploymentController)
    d = d_obj(2)
    put(ctx, "deployments.apps", d)
    asyncio.run(c.sync("default/web"))
    rs = calls(client, "create")[0]
    h = compute_hash(d["spec"]["template"], None)
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["replicas"] == 2
    assert rs["metadata"]["annotations"] == {du.REVISION: "1", du.DESIRED_REPLICAS: "2", du.MAX_REPLICAS: "3"}
    assert ("Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} from 0 to 2") in ctx._recorders.events
    st = calls(client, "update/status")[-1]["status"]
    prog = du.get_condition(st, du.PROGRESSING)
    assert prog["reason"] == du.NEW_RS_CREATED and prog["message"] == f'Created new replica set "web-{h}"'


def test_rolling_update_scales_new_up_within_surge_then_old_down():
    ctx, client, c = setup(DeploymentController)
    d = d_obj(4)  # surge 1, unavailable 1
    old_t = {"metadata": {"labels": {"app": "web", "pod-template-hash": "old"}},
             "spec": {"containers": [{"name": "c", "image": "nginx:0"}]}}
    new_t = {"metadata": {"labels": {"app": "web", "pod-template-hash": "new"}}, "spec": d["spec"]["template"]["spec"]}
    put(ctx, "deployments.apps", d)
    put(ctx, "replicasets.apps", owned_rs(d, "web-old", 4, old_t, rev="1"),
        owned_rs(d, "web-new", 0, new_t, rev="2"))
    asyncio.run(c.sync("default/web"))
    ups = [o for o in calls(client, "update") if o["metadata"]["name"] == "web-new"]
    assert ups and ups[0]["spec"]["replicas"] == 1
    assert ("Normal", "ScalingReplicaSet", "Scaled up replica set web-new from 0 to 1") in ctx._recorders.events
    # next step: new RS has 1 (unavailable); old can go down by allPods(5) - minAvailable(3) - newUnavailable(1) = 1
    client.calls.clear()
    put(ctx, "replicasets.apps", owned_rs(d, "web-new", 1, new_t, rev="2", available=0))
    asyncio.run(c.sync("default/web"))
    downs = [o for o in calls(client, "update") if o["metadata"]["name"] == "web-old"]
    assert downs and downs[0]["spec"]["replicas"] == 3


def test_scaling_during_rollout_is_proportional():
    ctx, client, c = setup(DeploymentController)
    d = d_obj(10)
    old_t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    mid_t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "b"}]}}
    rs_a = owned_rs(d, "web-aaa", 8, old_t, rev="1")
    rs_b = owned_rs(d, "web-bbb", 5, mid_t, rev="2")
    put(ctx, "replicasets.apps", rs_a, rs_b)
    d["spec"]["replicas"] = 20  # annotations still say 10/13: a scaling event
    put(ctx, "deployments.apps", d)
    asyncio.run(c.sync("default/web"))
    sizes = {o["metadata"]["name"]: o["spec"]["replicas"] for o in calls(client, "update")}
    assert sum(sizes.values()) == 25  # 20 + 25% surge
    assert sizes["web-aaa"] > sizes["web-bbb"]


def test_recreate_scales_old_to_zero_before_creating_new():
    ctx, client, c = setup(DeploymentController)
    d = d_obj(3, strategy="Recreate")
    old_t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    put(ctx, "deployments.apps", d)
    put(ctx, "replicasets.apps", owned_rs(d, "web-old", 3, old_t, rev="1"))
    asyncio.run(c.sync("default/web"))
    assert not calls(client, "create")
    assert calls(client, "update")[0]["spec"]["replicas"] == 0
