"""The persistent-volume binder against the in-memory API: matching
(class, size, access modes, volumeMode, selector, pre-binding both ways),
the four binding writes and their annotations, WaitForFirstConsumer, the
reclaim policies, and the events kube sends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from k8py.controllers.persistentvolume import (ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, PV_PROTECTION_FINALIZER,
                                               PVC_PROTECTION_FINALIZER, PersistentVolumeController,
                                               find_best_match_for_claim)
from k8py.controllers.volumeprotection import PVCProtectionController, PVProtectionController
from tests.controllers.memapi import FakeAPI, drain, make_context


def pv(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), *, cls: str | None = None,
       policy: str = "Retain", labels: dict | None = None, claim_ref: dict | None = None,
       mode: str | None = None, phase: str = "Pending", deleting: bool = False) -> dict:
    md: dict[str, Any] = {"name": name, "uid": f"uid-pv-{name}"}
    if labels:
        md["labels"] = labels
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        md["finalizers"] = ["kubernetes.io/pv-protection"]
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes),
                            "hostPath": {"path": f"/tmp/{name}", "type": ""},
                            "persistentVolumeReclaimPolicy": policy, "volumeMode": mode or "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if claim_ref is not None:
        spec["claimRef"] = claim_ref
    return {"metadata": md, "spec": spec, "status": {"phase": phase}}


def pvc(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), *, cls: str | None = "",
        ns: str = "default", selector: dict | None = None, volume: str = "", mode: str | None = None) -> dict:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                            "volumeMode": mode or "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-pvc-{name}"}, "spec": spec,
            "status": {"phase": "Pending"}}


def storage_class(name: str, binding: str = "Immediate", provisioner: str = "kubernetes.io/no-provisioner") -> dict:
    return {"metadata": {"name": name, "uid": f"uid-sc-{name}"}, "provisioner": provisioner,
            "reclaimPolicy": "Delete", "volumeBindingMode": binding}


class Env:
    def __init__(self) -> None:
        self.api = FakeAPI()
        self.ctx = make_context(self.api)
        self.c = PersistentVolumeController(self.ctx)
        self.events = self.ctx.recorder("x").events  # type: ignore[attr-defined]

    def add_pv(self, *objs: dict) -> None:
        for o in objs:
            self.api.add("persistentvolumes", o)

    def add_pvc(self, *objs: dict) -> None:
        for o in objs:
            self.api.add("persistentvolumeclaims", o)

    def pv(self, name: str) -> dict | None:
        return self.api.obj("persistentvolumes", "", name)

    def pvc(self, name: str, ns: str = "default") -> dict | None:
        return self.api.obj("persistentvolumeclaims", ns, name)

    def settle(self) -> None:
        async def body() -> None:
            failures = await drain(self.c)
            assert not failures, failures
        asyncio.run(body())

    def run(self, fn) -> None:
        async def body() -> None:
            fn()
            failures = await drain(self.c)
            assert not failures, failures
        asyncio.run(body())


@pytest.fixture
def env() -> Env:
    return Env()


def test_new_volume_becomes_available(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("v1")))
    assert env.pv("v1")["status"]["phase"] == "Available"
    assert env.pv("v1")["status"]["lastPhaseTransitionTime"].endswith("Z")


def test_static_binding_writes_both_sides(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("v1", "2Gi", ("ReadWriteOnce", "ReadOnlyMany"))))
    env.run(lambda: env.add_pvc(pvc("c1", "1Gi")))
    v, c = env.pv("v1"), env.pvc("c1")
    ref = v["spec"]["claimRef"]
    assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == (
        "PersistentVolumeClaim", "default", "c1", "uid-pvc-c1")
    assert ref["apiVersion"] == "v1" and ref["resourceVersion"]
    assert v["metadata"]["annotations"] == {ANN_BOUND_BY_CONTROLLER: "yes"}
    assert v["status"]["phase"] == "Bound"
    assert c["spec"]["volumeName"] == "v1"
    assert c["metadata"]["annotations"] == {ANN_BIND_COMPLETED: "yes", ANN_BOUND_BY_CONTROLLER: "yes"}
    assert c["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                           "capacity": {"storage": "2Gi"}}
    # the write order is kube's: PV spec, PV status, PVC spec, PVC status
    writes = [x[:2] for x in env.api.calls if x[0].startswith("update") and x[3] in ("v1", "c1")]
    assert writes[-4:] == [("update", "persistentvolumes"), ("update/status", "persistentvolumes"),
                           ("update", "persistentvolumeclaims"), ("update/status", "persistentvolumeclaims")]
    # settled: another round writes nothing
    n = len(env.api.calls)
    env.run(env.c.resync)
    assert not [x for x in env.api.calls[n:] if x[0] != "get"]


def test_smallest_fitting_volume_with_fewest_access_modes_wins(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("big", "10Gi"), pv("small", "2Gi"), pv("tiny", "500Mi"),
                               pv("multi", "1Gi", ("ReadWriteOnce", "ReadWriteMany"))))
    env.run(lambda: env.add_pvc(pvc("c1", "1Gi")))
    assert env.pvc("c1")["spec"]["volumeName"] == "small"
    env.run(lambda: env.add_pvc(pvc("c2", "1Gi")))
    assert env.pvc("c2")["spec"]["volumeName"] == "big"  # RWO-only volumes are tried before RWO+RWX ones
    env.run(lambda: env.add_pvc(pvc("c3", "1Gi")))
    assert env.pvc("c3")["spec"]["volumeName"] == "multi"
    env.run(lambda: env.add_pvc(pvc("c4", "1Gi")))
    assert env.pvc("c4")["status"]["phase"] == "Pending"
    assert env.pv("tiny")["status"]["phase"] == "Available"


@pytest.mark.parametrize("claim", [
    pvc("c", "5Gi"),  # too big
    pvc("c", modes=("ReadWriteMany",)),  # access mode
    pvc("c", cls="fast"),  # class (no class object: Immediate)
    pvc("c", selector={"matchLabels": {"tier": "gold"}}),  # selector
    pvc("c", selector={"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["silver"]}]}),
    pvc("c", mode="Block"),  # volumeMode
], ids=["size", "access-mode", "class", "selector-labels", "selector-expressions", "volume-mode"])
def test_mismatch_stays_pending(env: Env, claim: dict) -> None:
    env.run(lambda: env.add_pv(pv("v1", "1Gi", labels={"tier": "silver"})))
    env.run(lambda: env.add_pvc(claim))
    assert env.pvc("c")["status"]["phase"] == "Pending"
    assert "volumeName" not in env.pvc("c")["spec"]
    assert env.pv("v1")["status"]["phase"] == "Available" and "claimRef" not in env.pv("v1")["spec"]
    if claim["spec"].get("storageClassName"):
        assert ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found') in env.events
    else:
        assert ("Normal", "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set") in env.events


def test_selector_and_class_match(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("plain", "1Gi"), pv("gold", "5Gi", cls="fast", labels={"tier": "gold"})))
    env.run(lambda: env.add_pvc(pvc("c", cls="fast", selector={"matchLabels": {"tier": "gold"}})))
    assert env.pvc("c")["spec"]["volumeName"] == "gold"


def test_deleting_volume_is_not_taken(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("v1", deleting=True)))
    env.run(lambda: env.add_pvc(pvc("c")))
    assert env.pvc("c")["status"]["phase"] == "Pending"


def test_volume_prebound_by_claim_ref(env: Env) -> None:
    ref = {"namespace": "default", "name": "mine"}
    env.run(lambda: env.add_pv(pv("v1", "1Gi", cls="other", claim_ref=ref)))
    assert env.pv("v1")["status"]["phase"] == "Available"
    env.run(lambda: env.add_pvc(pvc("someone-else")))
    assert env.pvc("someone-else")["status"]["phase"] == "Pending"
    env.run(lambda: env.add_pvc(pvc("mine")))  # a pre-bound volume is taken whatever its class
    v, c = env.pv("v1"), env.pvc("mine")
    assert v["spec"]["claimRef"]["uid"] == "uid-pvc-mine" and v["status"]["phase"] == "Bound"
    assert ANN_BOUND_BY_CONTROLLER not in (v["metadata"].get("annotations") or {})
    assert c["spec"]["volumeName"] == "v1" and c["status"]["phase"] == "Bound"
    assert c["metadata"]["annotations"] == {ANN_BIND_COMPLETED: "yes", ANN_BOUND_BY_CONTROLLER: "yes"}


def test_claim_names_its_volume(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("small", "1Gi"), pv("wanted", "3Gi")))
    env.run(lambda: env.add_pvc(pvc("c", "1Gi", volume="wanted")))
    v, c = env.pv("wanted"), env.pvc("c")
    assert c["status"]["phase"] == "Bound" and c["status"]["capacity"] == {"storage": "3Gi"}
    assert c["metadata"]["annotations"] == {ANN_BIND_COMPLETED: "yes"}  # the user bound it
    assert v["metadata"]["annotations"] == {ANN_BOUND_BY_CONTROLLER: "yes"}
    assert env.pv("small")["status"]["phase"] == "Available"


def test_claim_names_an_unsuitable_or_taken_volume(env: Env) -> None:
    env.run(lambda: env.add_pv(pv("v1", "1Gi")))
    env.run(lambda: env.add_pvc(pvc("big", "2Gi", volume="v1")))
    assert env.pvc("big")["status"]["phase"] == "Pending"
    assert ("Warning", "VolumeMismatch", 'Cannot bind to requested volume "v1": requested PV is too small') \
        in env.events
    env.run(lambda: env.add_pvc(pvc("first", "1Gi", volume="v1")))
    assert env.pvc("first")["status"]["phase"] == "Bound"
    env.run(lambda: env.add_pvc(pvc("second", "1Gi", volume="v1")))
    assert env.pvc("second")["status"]["phase"] == "Pending"
    assert ("Warning", "FailedBinding", 'volume "v1" already bound to a different claim.') in env.events
    env.run(lambda: env.add_pvc(pvc("later", "1Gi", volume="not-yet")))
    assert env.pvc("later")["status"]["phase"] == "Pending"
    env.run(lambda: env.add_pv(pv("not-yet", "1Gi")))  # appears: the claim binds without waiting for a resync
    assert env.pvc("later")["status"]["phase"] == "Bound"


def test_claim_before_volume_binds_when_the_volume_appears(env: Env) -> None:
    env.run(lambda: env.add_pvc(pvc("early", "1Gi")))
    assert env.pvc("early")["status"]["phase"] == "Pending"
    env.run(lambda: env.add_pv(pv("v1", "1Gi")))
    assert env.pvc("early")["status"]["phase"] == "Bound"
    assert env.pv("v1")["spec"]["claimRef"]["name"] == "early"


def test_wait_for_first_consumer(env: Env) -> None:
    env.api.add("storageclasses.storage.k8s.io", storage_class("local", "WaitForFirstConsumer"))
    env.api.add("storageclasses.storage.k8s.io", storage_class("now", "Immediate"))
    env.run(lambda: env.add_pv(pv("lv", cls="local"), pv("nv", cls="now"),
                               pv("pre", cls="local", claim_ref={"namespace": "default", "name": "pre"})))
    env.run(lambda: env.add_pvc(pvc("waits", cls="local"), pvc("binds", cls="now"), pvc("pre", cls="local")))
    assert env.pvc("waits")["status"]["phase"] == "Pending"
    assert ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding") in env.events
    assert env.pvc("binds")["spec"]["volumeName"] == "nv"
    assert env.pvc("pre")["spec"]["volumeName"] == "pre"  # pre-bound volumes bind at once, as in kube
    env.api.add("pods", {"metadata": {"name": "user", "namespace": "default", "uid": "uid-pod"},
                         "spec": {"containers": [{"name": "c", "image": "x"}],
                                  "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "waits"}}]},
                         "status": {"phase": "Pending"}})
    env.run(env.c.resync)
    assert ("Normal", "WaitForPodScheduled", "waiting for pod user to be scheduled") in env.events
    assert env.pvc("waits")["status"]["phase"] == "Pending"


def test_external_provisioner_class_annotates_the_claim(env: Env) -> None:
    env.api.add("storageclasses.storage.k8s.io", storage_class("ext", provisioner="example.com/nfs"))
    env.api.add("storageclasses.storage.k8s.io", storage_class("intree", provisioner="kubernetes.io/aws-ebs"))
    env.run(lambda: env.add_pvc(pvc("a", cls="ext"), pvc("b", cls="intree")))
    ann = env.pvc("a")["metadata"]["annotations"]
    assert ann["volume.kubernetes.io/storage-provisioner"] == "example.com/nfs"
    assert ann["volume.beta.kubernetes.io/storage-provisioner"] == "example.com/nfs"
    assert any(e[1] == "ExternalProvisioning" and "'example.com/nfs'" in e[2] for e in env.events)
    assert ("Warning", "ProvisioningFailed", "no volume plugin matched name: kubernetes.io/aws-ebs") in env.events


def bound_pair(env: Env, policy: str) -> None:
    env.run(lambda: env.add_pv(pv("v1", policy=policy)))
    env.run(lambda: env.add_pvc(pvc("c")))
    assert env.pv("v1")["status"]["phase"] == "Bound"


def delete_claim(env: Env, name: str = "c") -> None:
    async def body() -> None:
        await env.api.delete(env.c.claims.resource, name, "default")
        failures = await drain(env.c)
        assert not failures, failures
    asyncio.run(body())


def test_retain_volume_is_released(env: Env) -> None:
    bound_pair(env, "Retain")
    delete_claim(env)
    v = env.pv("v1")
    assert v["status"]["phase"] == "Released"
    assert v["spec"]["claimRef"]["uid"] == "uid-pvc-c"  # kept, as kube does: an admin clears it
    env.run(lambda: env.add_pvc(pvc("c2")))  # a Released volume is not taken again
    assert env.pvc("c2")["status"]["phase"] == "Pending"


def test_delete_volume_is_deleted(env: Env) -> None:
    bound_pair(env, "Delete")
    delete_claim(env)
    assert env.pv("v1") is None


def test_recycle_volume_is_retained_with_a_warning(env: Env) -> None:
    bound_pair(env, "Recycle")
    delete_claim(env)
    assert env.pv("v1")["status"]["phase"] == "Released"
    assert ("Warning", "VolumeFailedRecycle", "No recycler plugin found for the volume!") in env.events
    env.run(env.c.resync)
    assert [e for e in env.events if e[1] == "VolumeFailedRecycle"] == [
        ("Warning", "VolumeFailedRecycle", "No recycler plugin found for the volume!")]


def test_claim_ref_to_a_vanished_claim_is_released(env: Env) -> None:
    ref = {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "gone", "uid": "uid-gone"}
    env.run(lambda: env.add_pv(pv("v1", claim_ref=ref, phase="Bound")))
    assert env.pv("v1")["status"]["phase"] == "Released"
    # a new claim of the same name (another uid) does not revive it
    env.run(lambda: env.add_pv(pv("v2", claim_ref=dict(ref, name="again", uid="uid-old"), phase="Bound")))
    env.run(lambda: env.add_pvc(pvc("again")))
    assert env.pv("v2")["status"]["phase"] == "Released"
    assert env.pvc("again")["status"]["phase"] == "Pending"


def test_claim_that_lost_its_volume(env: Env) -> None:
    bound_pair(env, "Retain")

    async def body() -> None:
        env.api._delete(env.c.volumes.resource, "v1", None, None, None, None)
        failures = await drain(env.c)
        assert not failures, failures
    asyncio.run(body())
    assert env.pvc("c")["status"]["phase"] == "Lost"
    assert ("Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!") \
        in env.events


def test_unbound_pv_side_is_repaired_from_the_claim(env: Env) -> None:
    """Someone cleared the bound PV's claimRef: the claim's next sync binds it again."""
    bound_pair(env, "Retain")
    v = env.pv("v1")
    v["spec"].pop("claimRef")
    env.run(lambda: env.api.add("persistentvolumes", v))
    env.run(env.c.resync)
    assert env.pv("v1")["spec"]["claimRef"]["uid"] == "uid-pvc-c"
    assert env.pv("v1")["status"]["phase"] == "Bound"


def test_find_best_match_is_pure() -> None:
    vols = [pv("a", "3Gi", phase="Available"), pv("b", "2Gi", phase="Available"),
            pv("c", "2Gi", phase="Pending")]
    assert find_best_match_for_claim(pvc("x", "1Gi"), vols, False)["metadata"]["name"] == "b"
    assert find_best_match_for_claim(pvc("x", "1Gi"), vols, True) is None
    assert find_best_match_for_claim(pvc("x", "4Gi"), vols, False) is None


# -- pvc-protection / pv-protection ------------------------------------------------------------------------

def pod_using(name: str, claim: str, node: str = "n1", phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-pod-{name}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": phase}}


def test_pvc_protection_waits_for_the_pods_using_the_claim() -> None:
    api = FakeAPI()
    c = PVCProtectionController(make_context(api))

    async def body() -> None:
        claim = pvc("c")
        claim["metadata"]["finalizers"] = [PVC_PROTECTION_FINALIZER]
        api.add("persistentvolumeclaims", claim)
        api.add("pods", pod_using("user", "c"))
        api.add("pods", pod_using("unscheduled", "c", node=""))
        await drain(c)
        await api.delete(c.claims.resource, "c", "default")  # Terminating: the finalizer holds it
        assert not await drain(c)
        assert api.obj("persistentvolumeclaims", "default", "c")["metadata"]["deletionTimestamp"]
        done = pod_using("user", "c", phase="Succeeded")
        api.add("pods", done)  # the pod finished: the claim goes
        assert not await drain(c)
        assert api.obj("persistentvolumeclaims", "default", "c") is None
        # a claim created without the finalizer gets it
        api.add("persistentvolumeclaims", pvc("bare"))
        assert not await drain(c)
        assert api.obj("persistentvolumeclaims", "default", "bare")["metadata"]["finalizers"] == [
            PVC_PROTECTION_FINALIZER]
    asyncio.run(body())


def test_pvc_protection_asks_the_api_before_letting_go() -> None:
    """A pod the informer has not seen yet still holds the claim."""
    api = FakeAPI()
    c = PVCProtectionController(make_context(api))

    async def body() -> None:
        claim = pvc("c")
        claim["metadata"]["finalizers"] = [PVC_PROTECTION_FINALIZER]
        api.add("persistentvolumeclaims", claim)
        api.add("pods", pod_using("new", "c"), notify=False)
        await api.delete(c.claims.resource, "c", "default")
        assert not await drain(c)
        assert api.obj("persistentvolumeclaims", "default", "c") is not None
    asyncio.run(body())


def test_pv_protection_holds_a_bound_volume() -> None:
    env = Env()
    p = PVProtectionController(env.ctx)

    async def body() -> None:
        env.add_pv(pv("v1", policy="Retain"))
        env.add_pvc(pvc("c"))
        assert not await drain(env.c) and not await drain(p)
        assert env.pv("v1")["metadata"]["finalizers"] == [PV_PROTECTION_FINALIZER]
        assert env.pv("v1")["status"]["phase"] == "Bound"
        await env.api.delete(env.c.volumes.resource, "v1")
        assert not await drain(env.c) and not await drain(p)
        assert env.pv("v1")["metadata"]["deletionTimestamp"]  # bound: kept
        await env.api.delete(env.c.claims.resource, "c", "default")
        for _ in range(3):
            assert not await drain(env.c) and not await drain(p)
        assert env.pv("v1") is None  # released, then let go
    asyncio.run(body())
