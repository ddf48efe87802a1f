"""PersistentVolumes and claims end to end (real kubectl against ``k8py
server --disable-agent``): the controller-manager's persistentvolume-binder
binds a static PV to a fitting claim (``kubectl get`` shows Bound and the
CLAIM), leaves misfits Pending with kube's events, honours pre-binding both
ways, and runs the reclaim policy when the claim is deleted.

PVs are cluster-wide: each test uses its own names and deletes its claims
and volumes, so a claim left Pending by one test cannot take another's PV."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        yield c
    finally:
        c.close()


def pv(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), *, cls: str = "",
       policy: str = "Retain", labels: dict | None = None, claim: str = "") -> dict:
    md: dict = {"name": name}
    if labels:
        md["labels"] = labels
    spec: dict = {"capacity": {"storage": size}, "accessModes": list(modes),
                  "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/tmp/k8py-e2e-{name}"}}
    if cls:
        spec["storageClassName"] = cls
    if claim:
        spec["claimRef"] = {"namespace": "default", "name": claim}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": md, "spec": spec}


def pvc(name: str, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), *, cls: str = "",
        selector: dict | None = None, volume: str = "") -> dict:
    spec: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "storageClassName": cls}
    if selector:
        spec["selector"] = selector
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def apply(cluster: Cluster, *objs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def get(cluster: Cluster, *args: str) -> dict:
    r = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def phase(cluster: Cluster, kind: str, name: str) -> str:
    return ((get(cluster, kind, name).get("status") or {}).get("phase")) or ""


def wait_phase(cluster: Cluster, kind: str, name: str, want: str, timeout: float = 30) -> None:
    wait_for(lambda: phase(cluster, kind, name) == want, timeout, what=f"{kind} {name} {want}")


def events_of(cluster: Cluster, name: str) -> list[tuple[str, str, str]]:
    items = get(cluster, "events", "-n", "default").get("items") or []
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in items
            if (e.get("involvedObject") or {}).get("name") == name]


def cleanup(cluster: Cluster, claims: list[str], volumes: list[str]) -> None:
    if claims:
        cluster.kubectl("delete", "pvc", *claims, "--ignore-not-found", "--wait=false", check=False)
    if volumes:
        cluster.kubectl("delete", "pv", *volumes, "--ignore-not-found", "--wait=false", check=False)


def columns(cluster: Cluster, kind: str, name: str) -> dict[str, str]:
    """``kubectl get`` as the user sees it: header -> value."""
    out = cluster.kubectl("get", kind, name).stdout.splitlines()
    head, row = out[0], out[1]
    starts = [0] + [i for i in range(2, len(head)) if head[i] != " " and head[i - 2:i] == "  "]
    cols = {}
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(row)
        cols[head[s:e].strip()] = row[s:e].strip()
    return cols


def test_static_volume_binds_and_kubectl_shows_it(cluster: Cluster) -> None:
    try:
        both = ("ReadWriteOnce", "ReadOnlyMany")
        apply(cluster, pv("pv-big", "5Gi", both), pv("pv-fit", "2Gi", both))
        wait_phase(cluster, "pv", "pv-fit", "Available")
        wait_phase(cluster, "pv", "pv-big", "Available")
        apply(cluster, pvc("claim-a", "1Gi"))
        wait_phase(cluster, "pvc", "claim-a", "Bound")
        wait_phase(cluster, "pv", "pv-fit", "Bound")  # the smallest that fits
        c = get(cluster, "pvc", "claim-a")
        v = get(cluster, "pv", "pv-fit")
        assert c["spec"]["volumeName"] == "pv-fit"
        assert c["status"]["capacity"] == {"storage": "2Gi"}
        assert c["status"]["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
        assert c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
        assert c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        ref = v["spec"]["claimRef"]
        assert (ref["namespace"], ref["name"], ref["uid"]) == ("default", "claim-a", c["metadata"]["uid"])
        assert v["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        pvcols = columns(cluster, "pv", "pv-fit")
        assert pvcols["STATUS"] == "Bound" and pvcols["CLAIM"] == "default/claim-a", pvcols
        assert pvcols["CAPACITY"] == "2Gi" and pvcols["RECLAIM POLICY"] == "Retain", pvcols
        claimcols = columns(cluster, "pvc", "claim-a")
        assert claimcols["STATUS"] == "Bound" and claimcols["VOLUME"] == "pv-fit", claimcols
        assert claimcols["CAPACITY"] == "2Gi" and claimcols["ACCESS MODES"] == "RWO,ROX", claimcols
        assert phase(cluster, "pv", "pv-big") == "Available"
    finally:
        cleanup(cluster, ["claim-a"], ["pv-big", "pv-fit"])


def test_misfits_stay_pending_with_events(cluster: Cluster) -> None:
    claims = ["too-big", "wants-rwx", "wants-gold", "wants-fast"]
    try:
        apply(cluster, pv("pv-silver", "1Gi", labels={"tier": "silver"}))
        wait_phase(cluster, "pv", "pv-silver", "Available")
        apply(cluster, pvc("too-big", "5Gi"), pvc("wants-rwx", modes=("ReadWriteMany",)),
              pvc("wants-gold", selector={"matchExpressions": [{"key": "tier", "operator": "In",
                                                                 "values": ["gold"]}]}),
              pvc("wants-fast", cls="fast"))
        failed = ("Normal", "FailedBinding",
                  "no persistent volumes available for this claim and no storage class is set")
        for name in claims[:3]:
            wait_for(lambda: failed in events_of(cluster, name), 30, what=f"FailedBinding on {name}")
        # a class that does not exist: kube's provisioning error, still Pending
        wait_for(lambda: ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found')
                 in events_of(cluster, "wants-fast"), 30, what="ProvisioningFailed")
        for name in claims:
            assert phase(cluster, "pvc", name) == "Pending"
            assert columns(cluster, "pvc", name)["STATUS"] == "Pending"
        assert phase(cluster, "pv", "pv-silver") == "Available"
        assert "claimRef" not in get(cluster, "pv", "pv-silver")["spec"]
        # a PV of another class is no match for a claim without one
        cleanup(cluster, claims, [])
        apply(cluster, pv("pv-classy", "1Gi", cls="manual"))
        cluster.kubectl("delete", "pv", "pv-silver")
        apply(cluster, pvc("no-class", "1Gi"))
        wait_for(lambda: failed in events_of(cluster, "no-class"), 30, what="FailedBinding on no-class")
        assert phase(cluster, "pvc", "no-class") == "Pending"
        # the selector and class that fit: bound at once
        apply(cluster, pvc("classy", "1Gi", cls="manual"))
        wait_phase(cluster, "pvc", "classy", "Bound")
        assert get(cluster, "pvc", "classy")["spec"]["volumeName"] == "pv-classy"
    finally:
        cleanup(cluster, claims + ["no-class", "classy"], ["pv-silver", "pv-classy"])


def test_claim_created_before_its_volume(cluster: Cluster) -> None:
    try:
        apply(cluster, pvc("early", "1Gi"))
        wait_for(lambda: events_of(cluster, "early"), 30, what="an event on the early claim")
        assert phase(cluster, "pvc", "early") == "Pending"
        apply(cluster, pv("pv-late", "1Gi"))
        wait_phase(cluster, "pvc", "early", "Bound", timeout=10)  # at once, not at the next resync
        assert columns(cluster, "pv", "pv-late")["CLAIM"] == "default/early"
    finally:
        cleanup(cluster, ["early"], ["pv-late"])


def test_prebinding_both_ways(cluster: Cluster) -> None:
    try:
        # a claim naming its volume takes it, not the smaller one that also fits
        apply(cluster, pv("pv-small", "1Gi"), pv("pv-named", "3Gi"),
              pv("pv-reserved", "1Gi", claim="reserved-claim"))
        wait_phase(cluster, "pv", "pv-named", "Available")
        apply(cluster, pvc("named", "1Gi", volume="pv-named"))
        wait_phase(cluster, "pvc", "named", "Bound")
        c = get(cluster, "pvc", "named")
        assert c["status"]["capacity"] == {"storage": "3Gi"}
        assert "pv.kubernetes.io/bound-by-controller" not in c["metadata"]["annotations"]  # the user chose
        assert columns(cluster, "pv", "pv-named")["CLAIM"] == "default/named"
        # a PV whose claimRef names a claim is only for that claim
        wait_phase(cluster, "pv", "pv-reserved", "Available")
        apply(cluster, pvc("other", "1Gi"))
        wait_phase(cluster, "pvc", "other", "Bound")
        assert get(cluster, "pvc", "other")["spec"]["volumeName"] == "pv-small"
        apply(cluster, pvc("reserved-claim", "500Mi"))
        wait_phase(cluster, "pvc", "reserved-claim", "Bound")
        v = get(cluster, "pv", "pv-reserved")
        assert v["spec"]["claimRef"]["uid"] == get(cluster, "pvc", "reserved-claim")["metadata"]["uid"]
        assert "pv.kubernetes.io/bound-by-controller" not in (v["metadata"].get("annotations") or {})
        # a claim naming a volume someone else holds waits, and says why
        apply(cluster, pvc("latecomer", "1Gi", volume="pv-named"))
        wait_for(lambda: ("Warning", "FailedBinding", 'volume "pv-named" already bound to a different claim.')
                 in events_of(cluster, "latecomer"), 30, what="FailedBinding on latecomer")
        assert phase(cluster, "pvc", "latecomer") == "Pending"
    finally:
        cleanup(cluster, ["named", "other", "reserved-claim", "latecomer"], ["pv-small", "pv-named", "pv-reserved"])


def test_deleted_claim_releases_or_deletes_its_volume(cluster: Cluster) -> None:
    try:
        apply(cluster, pv("pv-keep", "1Gi", policy="Retain"), pv("pv-drop", "1Gi", policy="Delete"))
        apply(cluster, pvc("keep", "1Gi", volume="pv-keep"), pvc("drop", "1Gi", volume="pv-drop"))
        wait_phase(cluster, "pvc", "keep", "Bound")
        wait_phase(cluster, "pvc", "drop", "Bound")
        cluster.kubectl("delete", "pvc", "keep", "drop")
        wait_phase(cluster, "pv", "pv-keep", "Released")
        cols = columns(cluster, "pv", "pv-keep")
        assert cols["STATUS"] == "Released" and cols["CLAIM"] == "default/keep", cols
        wait_for(lambda: cluster.kubectl("get", "pv", "pv-drop", check=False).returncode != 0, 30,
                 what="pv-drop deleted")
        # a Released volume is not handed to the next claim
        apply(cluster, pvc("next", "1Gi"))
        wait_for(lambda: events_of(cluster, "next"), 30, what="an event on next")
        assert phase(cluster, "pvc", "next") == "Pending"
        assert phase(cluster, "pv", "pv-keep") == "Released"
    finally:
        cleanup(cluster, ["keep", "drop", "next"], ["pv-keep", "pv-drop"])


def test_protection_finalizers_hold_claims_in_use(cluster: Cluster) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "prot-user"},
           "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox"}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "prot"}}]}}
    try:
        apply(cluster, pv("pv-prot", "1Gi"), pvc("prot", "1Gi", volume="pv-prot"), pod)
        wait_phase(cluster, "pvc", "prot", "Bound")
        assert get(cluster, "pvc", "prot")["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        assert get(cluster, "pv", "pv-prot")["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
        # a bound PV being deleted waits for its claim; a claim a scheduled pod uses waits for the pod
        cluster.kubectl("delete", "pv", "pv-prot", "--wait=false")
        cluster.kubectl("delete", "pvc", "prot", "--wait=false")
        wait_for(lambda: columns(cluster, "pvc", "prot")["STATUS"] == "Terminating", 10, what="prot Terminating")
        assert columns(cluster, "pv", "pv-prot")["STATUS"] == "Terminating"
        assert get(cluster, "pvc", "prot")["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        cluster.kubectl("delete", "pod", "prot-user", "--grace-period=0", "--force")
        wait_for(lambda: cluster.kubectl("get", "pvc", "prot", check=False).returncode != 0, 30, what="prot gone")
        wait_for(lambda: cluster.kubectl("get", "pv", "pv-prot", check=False).returncode != 0, 30,
                 what="pv-prot gone once released")
    finally:
        cluster.kubectl("delete", "pod", "prot-user", "--grace-period=0", "--force", "--ignore-not-found",
                        check=False)
        cleanup(cluster, ["prot"], ["pv-prot"])
