"""The official ``kubernetes`` Python client against k8py: CRUD on each kind,
watch from a resourceVersion, 410 handling, pagination, create_from_yaml."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, utils, watch
from kubernetes.client.rest import ApiException

NS = "pyclient"


@pytest.fixture(scope="module")
def api(server):
    c = server.client()
    client.CoreV1Api(c).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    return c


POD_SPEC = {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "x"}}

# (api class, kind, create/read/patch/delete method suffix, namespaced, body)
KINDS = [
    ("CoreV1Api", "namespaced_config_map", {"data": {"a": "1"}}),
    ("CoreV1Api", "namespaced_secret", {"stringData": {"a": "1"}}),
    ("CoreV1Api", "namespaced_pod", {"spec": POD_SPEC}),
    ("CoreV1Api", "namespaced_service", {"spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}),
    ("CoreV1Api", "namespaced_endpoints", {"subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]}),
    ("CoreV1Api", "namespaced_service_account", {}),
    ("CoreV1Api", "namespaced_event", {"involvedObject": {"kind": "Pod", "name": "x", "namespace": NS},
                                        "reason": "Test", "message": "hello", "type": "Normal"}),
    ("CoreV1Api", "namespaced_replication_controller", {"spec": {"replicas": 1, "selector": {"app": "x"},
                                                                  "template": TEMPLATE}}),
    ("CoreV1Api", "namespaced_persistent_volume_claim", {"spec": {"accessModes": ["ReadWriteOnce"],
                                                                   "resources": {"requests": {"storage": "1Gi"}}}}),
    ("CoreV1Api", "namespaced_resource_quota", {"spec": {"hard": {"pods": "10"}}}),
    ("CoreV1Api", "namespaced_limit_range", {"spec": {"limits": [{"type": "Container",
                                                                   "default": {"cpu": "100m"}}]}}),
    ("CoreV1Api", "namespaced_pod_template", {"template": TEMPLATE}),
    ("CoreV1Api", "persistent_volume", {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                 "hostPath": {"path": "/tmp/pv"}}}),
    ("CoreV1Api", "node", {}),
    ("CoreV1Api", "namespace", {}),
    ("AppsV1Api", "namespaced_deployment", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    ("AppsV1Api", "namespaced_replica_set", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    ("AppsV1Api", "namespaced_stateful_set", {"spec": {"selector": SELECTOR, "template": TEMPLATE,
                                                        "serviceName": "x"}}),
    ("AppsV1Api", "namespaced_daemon_set", {"spec": {"selector": SELECTOR, "template": TEMPLATE}}),
    ("AppsV1Api", "namespaced_controller_revision", {"revision": 1, "data": {"a": 1}}),
    ("BatchV1Api", "namespaced_job", {"spec": {"template": {"spec": dict(POD_SPEC, restartPolicy="Never")}}}),
    ("BatchV1Api", "namespaced_cron_job", {"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {
        "template": {"spec": dict(POD_SPEC, restartPolicy="OnFailure")}}}}}),
    ("CoordinationV1Api", "namespaced_lease", {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
    ("EventsV1Api", "namespaced_event", {"eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "t",
                                         "reportingInstance": "t1", "action": "Test", "reason": "Test",
                                         "type": "Normal", "regarding": {"kind": "Pod", "name": "x", "namespace": NS}}),
    ("DiscoveryV1Api", "namespaced_endpoint_slice", {"addressType": "IPv4", "endpoints": [
        {"addresses": ["10.42.0.7"]}], "ports": [{"port": 80}]}),
    ("NetworkingV1Api", "namespaced_ingress", {"spec": {"defaultBackend": {"service": {"name": "x", "port": {
        "number": 80}}}}}),
    ("NetworkingV1Api", "ingress_class", {"spec": {"controller": "k8py.io/ingress"}}),
    ("NetworkingV1Api", "namespaced_network_policy", {"spec": {"podSelector": {}}}),
    ("PolicyV1Api", "namespaced_pod_disruption_budget", {"spec": {"minAvailable": 1, "selector": SELECTOR}}),
    ("AutoscalingV1Api", "namespaced_horizontal_pod_autoscaler", {"spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "x", "apiVersion": "apps/v1"}, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50}}),
    ("AutoscalingV2Api", "namespaced_horizontal_pod_autoscaler", {"spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "y", "apiVersion": "apps/v1"}, "maxReplicas": 4}}),
    ("RbacAuthorizationV1Api", "namespaced_role", {"rules": [{"apiGroups": [""], "resources": ["pods"],
                                                              "verbs": ["get"]}]}),
    ("RbacAuthorizationV1Api", "namespaced_role_binding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                       "kind": "Role", "name": "x"},
                                                           "subjects": [{"kind": "User", "name": "u",
                                                                         "apiGroup": "rbac.authorization.k8s.io"}]}),
    ("RbacAuthorizationV1Api", "cluster_role", {"rules": [{"apiGroups": [""], "resources": ["pods"],
                                                           "verbs": ["list"]}]}),
    ("RbacAuthorizationV1Api", "cluster_role_binding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                    "kind": "ClusterRole", "name": "x"}}),
    ("StorageV1Api", "storage_class", {"provisioner": "k8py.io/local"}),
    ("SchedulingV1Api", "priority_class", {"value": 1000}),
]


@pytest.mark.parametrize("api_cls,suffix,body", KINDS, ids=[f"{a}.{s}" for a, s, _ in KINDS])
def test_crud_each_kind(api, api_cls, suffix, body):
    a = getattr(client, api_cls)(api)
    namespaced = suffix.startswith("namespaced_")
    ns_args = (NS,) if namespaced else ()
    name = "obj-" + api_cls.lower()[:6] + "-" + suffix.replace("_", "-")[-20:].strip("-")
    obj = dict(body, metadata={"name": name, "labels": {"app": "x"}})
    created = getattr(a, f"create_{suffix}")(*ns_args, obj)
    assert created.metadata.name == name and created.metadata.uid
    got = getattr(a, f"read_{suffix}")(name, *ns_args)
    assert got.metadata.resource_version == created.metadata.resource_version
    listed = getattr(a, f"list_{suffix}")(*ns_args, label_selector="app=x")
    assert name in [i.metadata.name for i in listed.items]
    patched = getattr(a, f"patch_{suffix}")(name, *ns_args, {"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels["patched"] == "yes"
    got.metadata.labels = {"replaced": "yes"}
    got.metadata.resource_version = patched.metadata.resource_version
    replaced = getattr(a, f"replace_{suffix}")(name, *ns_args, got)
    expected = {"replaced": "yes"}
    if suffix == "namespace":  # kube keeps this label on every namespace
        expected["kubernetes.io/metadata.name"] = name
    assert replaced.metadata.labels == expected
    getattr(a, f"delete_{suffix}")(name, *ns_args)
    if suffix == "namespace":  # Terminating until the namespace controller finalizes it (none runs here)
        assert getattr(a, f"read_{suffix}")(name).status.phase == "Terminating"
        return
    if suffix == "namespaced_replication_controller":
        # core/v1 RCs orphan their pods by default, as in kube: the `orphan`
        # finalizer holds the RC until the garbage collector (none runs here)
        # releases the pods
        rc = getattr(a, f"read_{suffix}")(name, *ns_args)
        assert rc.metadata.deletion_timestamp and rc.metadata.finalizers == ["orphan"]
        return
    if suffix in ("namespaced_persistent_volume_claim", "persistent_volume"):
        # admission's storage-object-in-use protection, as in kube: Terminating until the
        # pvc-/pv-protection controller (none runs here) lets go
        held = getattr(a, f"read_{suffix}")(name, *ns_args)
        assert held.metadata.deletion_timestamp and held.metadata.finalizers == [
            "kubernetes.io/pvc-protection" if "claim" in suffix else "kubernetes.io/pv-protection"]
        return
    with pytest.raises(ApiException) as e:
        getattr(a, f"read_{suffix}")(name, *ns_args)
    assert e.value.status == 404


def test_status_only_through_subresource(api):
    apps = client.AppsV1Api(api)
    d = apps.create_namespaced_deployment(NS, {"metadata": {"name": "st"},
                                               "spec": {"selector": SELECTOR, "template": TEMPLATE}})
    d2 = apps.patch_namespaced_deployment("st", NS, {"status": {"replicas": 9}})
    assert (d2.status.replicas or 0) == 0
    d3 = apps.patch_namespaced_deployment_status("st", NS, {"status": {"replicas": 9}})
    assert d3.status.replicas == 9
    assert d3.metadata.generation == d.metadata.generation
    sc = apps.read_namespaced_deployment_scale("st", NS)
    assert sc.spec.replicas == 1 and sc.kind == "Scale"
    apps.patch_namespaced_deployment_scale("st", NS, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("st", NS).spec.replicas == 3


def test_watch_from_resource_version(api):
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(NS, {"metadata": {"name": "w0"}})
    rv = first.metadata.resource_version
    for i in range(1, 4):
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"w{i}"}})
    core.delete_namespaced_config_map("w1", NS)
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 4:
            w.stop()
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("ADDED", "w3"), ("DELETED", "w1")]


def test_watch_live_events(api):
    core = client.CoreV1Api(api)
    lst = core.list_namespaced_secret(NS)
    got: list[tuple[str, str]] = []

    def run():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_secret, NS, resource_version=lst.metadata.resource_version,
                           timeout_seconds=10):
            got.append((ev["type"], ev["object"].metadata.name))
            if len(got) >= 2:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    core.create_namespaced_secret(NS, {"metadata": {"name": "live"}, "stringData": {"a": "b"}})
    core.patch_namespaced_secret("live", NS, {"metadata": {"labels": {"x": "y"}}})
    t.join(15)
    assert got == [("ADDED", "live"), ("MODIFIED", "live")]


def test_pagination(api):
    core = client.CoreV1Api(api)
    for i in range(25):
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"page-{i:02d}", "labels": {"page": "y"}}})
    names, token, pages = [], None, 0
    while True:
        res = core.list_namespaced_config_map(NS, label_selector="page=y", limit=10, _continue=token)
        names += [i.metadata.name for i in res.items]
        pages += 1
        token = res.metadata._continue
        if not token:
            break
    assert pages == 3 and names == [f"page-{i:02d}" for i in range(25)]
    first = core.list_namespaced_config_map(NS, limit=5)
    assert first.metadata.remaining_item_count is not None and first.metadata.remaining_item_count > 0


def test_create_from_yaml(api, tmp_path):
    f = tmp_path / "objs.yaml"
    f.write_text(f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: fromyaml, namespace: {NS}}}
data: {{k: v}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: fromyaml, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: fy}}}}
  template:
    metadata: {{labels: {{app: fy}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
""")
    utils.create_from_yaml(api, str(f))
    assert client.CoreV1Api(api).read_namespaced_config_map("fromyaml", NS).data == {"k": "v"}
    assert client.AppsV1Api(api).read_namespaced_deployment("fromyaml", NS).spec.replicas == 1
