"""Disruption controller: PDB status from the caches."""

from __future__ import annotations

import asyncio
import time

from k8py.client.timeutil import now_rfc3339
from k8py.controllers.disruption import DisruptionController, scaled_value
from tests.controllers.fakeapi import make_context, pod, put

RS_REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "uid-rs"}


def pdb(name: str = "web", **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default", "generation": 1},
            "spec": dict(selector={"matchLabels": {"app": "web"}}, **spec)}


def setup(replicas: int = 3, pods: int = 3, ready: int = 3):
    ctx, client = make_context()
    c = DisruptionController(ctx)
    put(ctx, "deployments.apps", {"metadata": {"name": "web", "namespace": "default", "uid": "uid-dep"},
                                  "spec": {"replicas": replicas}})
    put(ctx, "replicasets.apps", {"metadata": {"name": "web-abc", "namespace": "default", "uid": "uid-rs",
                                               "ownerReferences": [{"kind": "Deployment", "name": "web",
                                                                    "uid": "uid-dep", "controller": True}]},
                                  "spec": {"replicas": replicas}})
    put(ctx, "pods", *[pod(f"p{i}", ready=i < ready, owner=RS_REF) for i in range(pods)])
    return ctx, client, c


def status_after(ctx, client, c, p: dict) -> dict:
    put(ctx, "poddisruptionbudgets.policy", p)
    client.calls.clear()
    asyncio.run(c.sync("default/" + p["metadata"]["name"]))
    writes = [o for v, _, o in client.calls if v == "update/status"]
    return writes[-1]["status"] if writes else {}


def test_scaled_value_rounds_up():
    assert scaled_value("50%", 3) == 2 and scaled_value(2, 10) == 2 and scaled_value("10%", 1) == 1


def test_min_available_int():
    ctx, client, c = setup(ready=3)
    st = status_after(ctx, client, c, pdb(minAvailable=2))
    assert {k: st[k] for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed",
                               "observedGeneration")} == {"currentHealthy": 3, "desiredHealthy": 2,
                                                         "expectedPods": 3, "disruptionsAllowed": 1,
                                                         "observedGeneration": 1}
    [cond] = st["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")


def test_max_unavailable_uses_deployment_scale():
    ctx, client, c = setup(replicas=4, pods=3, ready=3)
    st = status_after(ctx, client, c, pdb(maxUnavailable=1))
    assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (4, 3, 0)
    assert st["conditions"][0]["reason"] == "InsufficientPods"
    st = status_after(ctx, client, c, pdb(minAvailable="50%"))
    assert (st["expectedPods"], st["desiredHealthy"], st["disruptionsAllowed"]) == (4, 2, 1)


def test_disrupted_pods_not_counted_then_dropped():
    ctx, client, c = setup()
    p = pdb(minAvailable=2)
    p["status"] = {"disruptedPods": {"p0": now_rfc3339()}, "disruptionsAllowed": 0}
    st = status_after(ctx, client, c, p)
    assert st["currentHealthy"] == 2 and st["disruptionsAllowed"] == 0 and "p0" in st["disruptedPods"]
    c.clock = lambda: time.time() + 200
    st = status_after(ctx, client, c, p)
    assert st["currentHealthy"] == 3 and "disruptedPods" not in st
    assert ("Warning", "NotDeleted",
            "Pod was expected by PDB default/web to be deleted but it wasn't") in ctx._recorders.events


def test_unchanged_status_not_written():
    ctx, client, c = setup()
    st = status_after(ctx, client, c, pdb(minAvailable=2))
    p = pdb(minAvailable=2)
    p["status"] = st
    assert status_after(ctx, client, c, p) == {}


def test_pod_without_controller_fails_safe_for_percentages():
    ctx, client, c = setup()
    put(ctx, "pods", pod("orphan-ish", owner={"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone",
                                              "uid": "uid-gone"}))
    st = status_after(ctx, client, c, pdb(maxUnavailable="10%"))
    assert st["disruptionsAllowed"] == 0
    assert st["conditions"][0]["reason"] == "SyncFailed"
    assert st["conditions"][0]["message"] == 'found no controllers for pod "orphan-ish"'
