"""Namespaces end to end (real kubectl against ``k8py server``): a new
namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``;
``kubectl delete namespace`` empties it and returns once it is gone; content
held by a finalizer keeps it Terminating with kube's status conditions."""

from __future__ import annotations

import base64
import json
from typing import Iterator

import pytest
import yaml

from tests.support.cluster import Cluster, wait_for

CONTROLLERS = "namespace,serviceaccount,root-ca-cert-publisher,garbage-collector"
PREFIX = "nsn-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster("--disable-scheduler", f"--kube-controller-manager-arg=--controllers={CONTROLLERS}").start()
    try:
        c.add_nodes(1, PREFIX)
        yield c
    finally:
        c.close()


def get(c: Cluster, *args: str) -> dict | None:
    p = c.kubectl("get", *args, "-o", "json", check=False)
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return json.loads(p.stdout)


def apply(c: Cluster, ns: str, *objs: dict) -> None:
    c.kubectl("-n", ns, "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                               "items": list(objs)}))


def test_new_namespace_gets_default_serviceaccount_and_root_ca(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "fresh")
    sa = wait_for(lambda: get(cluster, "-n", "fresh", "serviceaccount", "default"), 20, what="default SA")
    assert sa["metadata"]["namespace"] == "fresh"
    cm = wait_for(lambda: get(cluster, "-n", "fresh", "configmap", "kube-root-ca.crt"), 20, what="root CA")
    with open(cluster.kubeconfig) as f:
        ca = base64.b64decode(yaml.safe_load(f)["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    assert cm["data"] == {"ca.crt": ca}
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver")
    # the system namespaces have them too
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(lambda: get(cluster, "-n", ns, "serviceaccount", "default"), 20, what=f"{ns} SA")
        wait_for(lambda: get(cluster, "-n", ns, "configmap", "kube-root-ca.crt"), 20, what=f"{ns} CA")


def test_deleted_or_edited_ones_come_back(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "mended")
    sa = wait_for(lambda: get(cluster, "-n", "mended", "serviceaccount", "default"), 20)
    cm = wait_for(lambda: get(cluster, "-n", "mended", "configmap", "kube-root-ca.crt"), 20)
    cluster.kubectl("-n", "mended", "delete", "serviceaccount", "default")
    cluster.kubectl("-n", "mended", "delete", "configmap", "kube-root-ca.crt")

    def recreated(kind: str, old: dict) -> dict | None:
        new = get(cluster, "-n", "mended", kind, old["metadata"]["name"])
        return new if new and new["metadata"]["uid"] != old["metadata"]["uid"] else None
    wait_for(lambda: recreated("serviceaccount", sa), 20, what="default SA re-created")
    cm2 = wait_for(lambda: recreated("configmap", cm), 20, what="kube-root-ca.crt re-created")
    cluster.kubectl("-n", "mended", "patch", "configmap", "kube-root-ca.crt", "--type=merge",
                    "-p", '{"data":{"ca.crt":"tampered"}}')
    wait_for(lambda: get(cluster, "-n", "mended", "configmap", "kube-root-ca.crt")["data"] == cm2["data"], 20,
             what="kube-root-ca.crt restored")


def test_delete_namespace_removes_content_then_namespace(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    wait_for(lambda: get(cluster, "-n", "doomed", "serviceaccount", "default"), 20)
    apply(cluster, "doomed",
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}},
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
           "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}},
          {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "x"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "running"},
           "spec": {"nodeName": f"{PREFIX}0", "terminationGracePeriodSeconds": 30,
                    "containers": [{"name": "c", "image": "nginx"}]}})
    wait_for(lambda: (get(cluster, "-n", "doomed", "pod", "running") or {}).get("status", {}).get("phase")
             == "Running", 30, what="pod running on the hollow node")
    out = cluster.kubectl("delete", "namespace", "doomed", timeout=90).stdout  # waits until it is gone
    assert out.strip() == 'namespace "doomed" deleted'
    assert get(cluster, "namespace", "doomed") is None
    for kind in ("configmaps", "secrets", "services", "deployments", "pods", "serviceaccounts"):
        p = cluster.kubectl("get", kind, "-n", "doomed", "-o", "name")
        assert p.stdout.strip() == "", (kind, p.stdout)


def test_finalizer_keeps_namespace_terminating_with_conditions(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "held")
    apply(cluster, "held", {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    cluster.kubectl("delete", "namespace", "held", "--wait=false")

    def conditions() -> dict | None:
        ns = get(cluster, "namespace", "held")
        conds = {c["type"]: c for c in (ns or {}).get("status", {}).get("conditions") or []}
        return conds if conds.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None
    conds = wait_for(conditions, 30, what="conditions reported")
    ns = get(cluster, "namespace", "held")
    assert ns["status"]["phase"] == "Terminating"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert {t: (c["status"], c["reason"], c["message"]) for t, c in conds.items()} == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                        "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted",
                                            "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining": ("True", "SomeResourcesRemain",
                                      "Some resources are remaining: configmaps. has 1 resource instances"),
        "NamespaceFinalizersRemaining": ("True", "SomeFinalizerRemain",
                                         "Some finalizers are remaining: example.com/hold in 1 resource instances"),
    }
    p = cluster.kubectl("-n", "held", "create", "configmap", "late", check=False)
    assert p.returncode != 0 and "being terminated" in p.stderr
    from kubernetes.client import CoreV1Api, V1ConfigMap, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException
    with pytest.raises(ApiException) as exc:
        CoreV1Api(cluster.client()).create_namespaced_config_map("held", V1ConfigMap(metadata=V1ObjectMeta(name="x")))
    assert exc.value.status == 403
    assert json.loads(exc.value.body)["details"]["causes"] == [
        {"reason": "NamespaceTerminating", "message": "namespace held is being terminated",
         "field": "metadata.namespace"}]
    cluster.kubectl("-n", "held", "patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: get(cluster, "namespace", "held") is None, 30, what="namespace gone once its content is")
