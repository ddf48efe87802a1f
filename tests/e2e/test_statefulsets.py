"""StatefulSets end to end (real kubectl and the official Python client
against ``k8py server`` with hollow nodes): ordinal pods created in order,
each after its predecessor is Ready, removed from the top down; one claim
per pod and template, kept after a scale down; a partitioned rolling
update, rollout status, history and undo."""

from __future__ import annotations

import json
import threading
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(2, "stsn-", "--lease-period", "2")
        yield c
    finally:
        c.close()


class PodWatch:
    """Records the order in which pods of ``app`` are added and deleted
    (the official client's watch, in a thread)."""

    def __init__(self, cluster: Cluster, app: str):
        from kubernetes import client, watch
        self.api = client.CoreV1Api(cluster.client())
        self.w = watch.Watch()
        self.added: list[str] = []
        self.deleted: list[str] = []
        rv = self.api.list_namespaced_pod("default", label_selector=f"app={app}").metadata.resource_version
        self.thread = threading.Thread(target=self._run, args=(app, rv), daemon=True)
        self.thread.start()

    def _run(self, app: str, rv: str) -> None:
        try:
            for ev in self.w.stream(self.api.list_namespaced_pod, "default", label_selector=f"app={app}",
                                    resource_version=rv, timeout_seconds=300):
                name = ev["object"].metadata.name
                if ev["type"] == "ADDED":
                    self.added.append(name)
                elif ev["type"] == "DELETED":
                    self.deleted.append(name)
        except Exception:  # noqa: BLE001 - the stream ends when the test stops it
            pass

    def stop(self) -> None:
        self.w.stop()


def get(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def web_pods(cluster: Cluster) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in get(cluster, "pods", "-l", "app=web")["items"]}


def ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or ())


def images(cluster: Cluster) -> dict[str, str]:
    return {n: p["spec"]["containers"][0]["image"] for n, p in web_pods(cluster).items()
            if not p["metadata"].get("deletionTimestamp")}


def test_created_in_order_with_identity_and_claims(cluster: Cluster) -> None:
    watch = PodWatch(cluster, "web")
    try:
        cluster.kubectl("apply", "-f", "-", input=MANIFEST)
        out = cluster.kubectl("rollout", "status", "sts/web", "--timeout=90s").stdout
        # kube defaults rollingUpdate to {partition: 0}, so kubectl 1.32 reports a partitioned roll out
        assert out.endswith("partitioned roll out complete: 3 new pods have been updated...\n")
    finally:
        watch.stop()
    assert watch.added == ["web-0", "web-1", "web-2"]
    pods = web_pods(cluster)
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    for i in range(3):
        p = pods[f"web-{i}"]
        assert p["status"]["phase"] == "Running" and ready(p)
        assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
        assert p["metadata"]["labels"]["controller-revision-hash"].startswith("web-")
        assert p["spec"]["hostname"] == f"web-{i}" and p["spec"]["subdomain"] == "nginx"
        vol = next(v for v in p["spec"]["volumes"] if v["name"] == "www")
        assert vol["persistentVolumeClaim"]["claimName"] == f"www-web-{i}"
    # OrderedReady: each pod was created only after its predecessor was Ready
    for i in (1, 2):
        prev_ready = next(c["lastTransitionTime"] for c in pods[f"web-{i - 1}"]["status"]["conditions"]
                          if c["type"] == "Ready")
        assert pods[f"web-{i}"]["metadata"]["creationTimestamp"] >= prev_ready
    claims = get(cluster, "pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all(c["metadata"]["labels"] == {"app": "web"} for c in claims)

    st = get(cluster, "sts", "web")["status"]
    assert (st["replicas"], st["readyReplicas"], st["currentReplicas"], st["updatedReplicas"],
            st["availableReplicas"]) == (3, 3, 3, 3, 3)
    assert st["currentRevision"] == st["updateRevision"] and st["observedGeneration"] == 1
    assert cluster.kubectl("get", "sts", "web").stdout.split("\n")[1].split()[:2] == ["web", "3/3"]
    events = get(cluster, "events", "--field-selector", "involvedObject.name=web")["items"]
    messages = {e["message"] for e in events if e["reason"] == "SuccessfulCreate"}
    assert "create Pod web-0 in StatefulSet web successful" in messages
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages


def test_scale_down_in_reverse_order_keeps_claims_and_scale_up(cluster: Cluster) -> None:
    watch = PodWatch(cluster, "web")
    try:
        cluster.kubectl("scale", "sts", "web", "--replicas=1")
        wait_for(lambda: watch.deleted == ["web-2", "web-1"], 60, what="web-2 then web-1 deleted")
    finally:
        watch.stop()
    wait_for(lambda: sorted(web_pods(cluster)) == ["web-0"], 30)
    assert len(get(cluster, "pvc")["items"]) == 3  # retained
    wait_for(lambda: get(cluster, "sts", "web")["status"].get("replicas") == 1, 30)
    assert "delete Pod web-2 in StatefulSet web successful" in cluster.kubectl("describe", "sts", "web").stdout

    watch = PodWatch(cluster, "web")
    try:
        cluster.kubectl("scale", "sts", "web", "--replicas=3")
        cluster.kubectl("rollout", "status", "sts/web", "--timeout=90s")
    finally:
        watch.stop()
    assert watch.added == ["web-1", "web-2"]
    assert len(get(cluster, "pvc")["items"]) == 3  # the old claims were reused


def test_partitioned_rolling_update_history_and_undo(cluster: Cluster) -> None:
    first = get(cluster, "sts", "web")["status"]["currentRevision"]
    cluster.kubectl("patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    cluster.kubectl("set", "image", "sts/web", "c=nginx:1.26")
    wait_for(lambda: images(cluster) == {"web-0": "nginx:1.25", "web-1": "nginx:1.25", "web-2": "nginx:1.26"}
             and all(ready(p) for p in web_pods(cluster).values()), 60, what="only web-2 updated")
    out = cluster.kubectl("rollout", "status", "sts/web", "--timeout=60s").stdout
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    st = get(cluster, "sts", "web")["status"]
    assert st["currentRevision"] == first and st["updateRevision"] != first
    assert (st["currentReplicas"], st["updatedReplicas"]) == (2, 1)
    # a missing pod below the partition comes back at the current revision
    cluster.kubectl("delete", "pod", "web-0")
    wait_for(lambda: images(cluster).get("web-0") == "nginx:1.25" and ready(web_pods(cluster)["web-0"]), 60)

    watch = PodWatch(cluster, "web")
    try:
        cluster.kubectl("patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
        out = cluster.kubectl("rollout", "status", "sts/web", "--timeout=90s").stdout
        assert "partitioned roll out complete: 3 new pods have been updated..." in out
        wait_for(lambda: len(watch.deleted) == 2, 30)
    finally:
        watch.stop()
    assert watch.deleted == ["web-1", "web-0"]  # highest ordinal first
    assert set(images(cluster).values()) == {"nginx:1.26"}
    st = get(cluster, "sts", "web")["status"]
    assert st["currentRevision"] == st["updateRevision"] != first

    hist = cluster.kubectl("rollout", "history", "sts/web").stdout
    assert "REVISION" in hist
    revs = get(cluster, "controllerrevisions", "-l", "app=web")["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]
    assert all(r["metadata"]["labels"]["controller.kubernetes.io/hash"] for r in revs)
    cluster.kubectl("rollout", "undo", "sts/web")
    cluster.kubectl("rollout", "status", "sts/web", "--timeout=90s")
    wait_for(lambda: set(images(cluster).values()) == {"nginx:1.25"} and len(images(cluster)) == 3, 60)
    revs = get(cluster, "controllerrevisions", "-l", "app=web")["items"]
    assert sorted(r["revision"] for r in revs) == [2, 3]
    assert get(cluster, "sts", "web")["status"]["currentRevision"] == first  # revision 1 renumbered


def test_parallel_policy_creates_without_waiting(cluster: Cluster) -> None:
    body = MANIFEST.split("---")[1].replace("name: web}", "name: par}").replace("app: web", "app: par")
    body = body.replace("serviceName: nginx", "serviceName: nginx\n  podManagementPolicy: Parallel")
    cluster.kubectl("apply", "-f", "-", input=body)
    cluster.kubectl("rollout", "status", "sts/par", "--timeout=60s")
    assert sorted(p["metadata"]["name"] for p in get(cluster, "pods", "-l", "app=par")["items"]) == \
        ["par-0", "par-1", "par-2"]
    cluster.kubectl("delete", "sts", "par")
