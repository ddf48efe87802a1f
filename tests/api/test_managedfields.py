"""Tests for field sets (``k8py.api.fieldset``) and managedFields bookkeeping (``k8py.api.managedfields``)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from fakeschema import FI

from k8py.api import fieldset as fs
from k8py.api.managedfields import (
    decode_managed,
    default_manager,
    encode_managed,
    update_managed_fields,
)

NOW = "2024-05-01T10:00:00Z"
LATER = "2024-05-01T10:05:00Z"


# ---------------------------------------------------------------------------
# A small fake schema with the duck-typed interface of k8py.api.schema
# ---------------------------------------------------------------------------

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
OWNER = "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"
SELECTOR = "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
DEPLOY = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"

TYPES: dict[str, dict[str, FI]] = {
    META: {f.name: f for f in [
        FI("name", "string"), FI("namespace", "string"), FI("uid", "string"), FI("resourceVersion", "string"),
        FI("generation", "integer"), FI("creationTimestamp", "date-time"),
        FI("labels", "map", items_type="string"), FI("annotations", "map", items_type="string"),
        FI("finalizers", "array", items_type="string", patch_strategy="merge"),
        FI("ownerReferences", "array", ref=OWNER, patch_strategy="merge", patch_merge_key="uid",
           list_type="map", list_map_keys=("uid",)),
        FI("managedFields", "array", ref="io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
           list_type="atomic"),
    ]},
    OWNER: {f.name: f for f in [FI("uid", "string"), FI("kind", "string"), FI("name", "string")]},
    SELECTOR: {f.name: f for f in [FI("matchLabels", "map", items_type="string")]},
    DEPLOY: {f.name: f for f in [
        FI("apiVersion", "string"), FI("kind", "string"), FI("metadata", "object", ref=META),
        FI("spec", "object", ref="io.k8s.api.apps.v1.DeploymentSpec"),
        FI("status", "object", ref="io.k8s.api.apps.v1.DeploymentStatus"),
    ]},
    "io.k8s.api.apps.v1.DeploymentSpec": {f.name: f for f in [
        FI("replicas", "integer"), FI("paused", "boolean"), FI("selector", "object", ref=SELECTOR),
        FI("template", "object", ref="io.k8s.api.core.v1.PodTemplateSpec"),
    ]},
    "io.k8s.api.apps.v1.DeploymentStatus": {f.name: f for f in [FI("replicas", "integer")]},
    "io.k8s.api.core.v1.PodTemplateSpec": {f.name: f for f in [
        FI("metadata", "object", ref=META), FI("spec", "object", ref="io.k8s.api.core.v1.PodSpec"),
    ]},
    POD: {f.name: f for f in [
        FI("apiVersion", "string"), FI("kind", "string"), FI("metadata", "object", ref=META),
        FI("spec", "object", ref="io.k8s.api.core.v1.PodSpec"),
        FI("status", "object", ref="io.k8s.api.core.v1.PodStatus"),
    ]},
    "io.k8s.api.core.v1.PodStatus": {f.name: f for f in [FI("phase", "string"), FI("podIP", "string")]},
    "io.k8s.api.core.v1.PodSpec": {f.name: f for f in [
        FI("containers", "array", ref="io.k8s.api.core.v1.Container", patch_strategy="merge",
           patch_merge_key="name"),  # no list-type: merge key makes it a map
        FI("volumes", "array", ref="io.k8s.api.core.v1.Volume", patch_strategy="merge,retainKeys",
           patch_merge_key="name", list_type="map", list_map_keys=("name",)),
        FI("nodeSelector", "map", items_type="string", map_type="atomic"),
        FI("restartPolicy", "string"), FI("dnsPolicy", "string"),
        FI("terminationGracePeriodSeconds", "integer"), FI("securityContext", "object",
                                                           ref="io.k8s.api.core.v1.PodSecurityContext"),
    ]},
    "io.k8s.api.core.v1.PodSecurityContext": {f.name: f for f in [FI("runAsUser", "integer")]},
    "io.k8s.api.core.v1.Volume": {f.name: f for f in [FI("name", "string"), FI("emptyDir", "any")]},
    "io.k8s.api.core.v1.Container": {f.name: f for f in [
        FI("name", "string"), FI("image", "string"), FI("args", "array", items_type="string"),
        FI("ports", "array", ref="io.k8s.api.core.v1.ContainerPort", patch_strategy="merge",
           patch_merge_key="containerPort", list_type="map", list_map_keys=("containerPort", "protocol")),
        FI("env", "array", ref="io.k8s.api.core.v1.EnvVar", patch_strategy="merge", patch_merge_key="name"),
        FI("resources", "object", ref="io.k8s.api.core.v1.ResourceRequirements"),
    ]},
    "io.k8s.api.core.v1.ResourceRequirements": {f.name: f for f in [
        FI("limits", "map", items_type="quantity"), FI("requests", "map", items_type="quantity"),
    ]},
    "io.k8s.api.core.v1.ContainerPort": {f.name: f for f in [
        FI("containerPort", "integer"), FI("protocol", "string"), FI("name", "string"),
    ]},
    "io.k8s.api.core.v1.EnvVar": {f.name: f for f in [FI("name", "string"), FI("value", "string")]},
}
ATOMIC_TYPES = {OWNER, SELECTOR}


class FakeSchema:
    def field(self, type_name: str, field: str) -> FI | None:
        return TYPES.get(type_name, {}).get(field)

    def has(self, type_name: str) -> bool:
        return type_name in TYPES

    def is_atomic(self, type_name: str) -> bool:
        return type_name in ATOMIC_TYPES


SCHEMA = FakeSchema()


def pod(**spec_extra: Any) -> dict:
    spec: dict[str, Any] = {
        "containers": [{"name": "nginx", "image": "nginx", "resources": {}}],
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    }
    spec.update(spec_extra)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"run": "p"}},
            "spec": spec, "status": {"phase": "Pending"}}


def stored(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"uid": "u-1", "resourceVersion": "5", "creationTimestamp": NOW})
    return obj


# ---------------------------------------------------------------------------
# fieldsV1 and set algebra
# ---------------------------------------------------------------------------


def test_decode_canonicalises_and_sorts() -> None:
    raw = {"f:b": {}, "f:a": {"k:{\"protocol\":\"TCP\", \"containerPort\":80}": {".": {}, "f:x": {}}},
           "f:c": {".": {}}, "x:unknown": {}}
    s = fs.decode_fields(raw)
    assert list(s) == ["f:a", "f:b", "f:c"]
    assert s["f:a"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:x": {}}}
    assert s["f:c"] == {}
    canonical = {"f:a": {".": {}, "f:b": {}}}
    assert fs.decode_fields(canonical) is canonical  # no copy when already canonical
    with pytest.raises(fs.FieldSetError):
        fs.decode_fields({"nocolon": {}})


def test_path_element_order() -> None:
    s = fs.sort_content({"i:10": {}, 'v:"b"': {}, "i:9": {}, "v:2": {}, "v:true": {}, 'k:{"a":1}': {}, "f:z": {}})
    assert list(s) == ["f:z", 'k:{"a":1}', "v:2", 'v:"b"', "v:true", "i:9", "i:10"]


def test_set_operations() -> None:
    a = fs.make_set(("f:spec", "f:replicas"), ("f:spec", "f:template"), ("f:metadata", "f:labels", "f:x"))
    b = fs.make_set(("f:spec", "f:replicas"), ("f:spec", "f:paused"))
    assert fs.union(a, b)["f:spec"] == {"f:paused": {}, "f:replicas": {}, "f:template": {}}
    assert fs.intersection(a, b) == {"f:spec": {"f:replicas": {}}}
    assert fs.difference(a, b) == {"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:template": {}}}
    # Difference keeps children of a removed member; RecursiveDifference drops them
    c = {"f:spec": {".": {}, "f:replicas": {}}}
    assert fs.difference(c, {"f:spec": {}}) == {"f:spec": {"f:replicas": {}}}
    assert fs.recursive_difference(c, {"f:spec": {}}) == {}
    assert list(fs.iter_paths({"f:a": {".": {}, "f:c": {}}, "f:b": {}})) == [("f:a",), ("f:b",), ("f:a", "f:c")]


def test_path_string() -> None:
    assert fs.path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert fs.path_string(("f:spec", 'k:{"name":"nginx"}', "f:image")) == '.spec[name="nginx"].image'
    assert fs.path_string(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')) == \
        '.ports[containerPort=80,protocol="TCP"]'
    assert fs.path_string(("f:finalizers", 'v:"a"')) == '.finalizers[="a"]'


def test_to_fieldset_of_applied_configuration() -> None:
    td = fs.root_td(SCHEMA, POD)
    cfg = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x"]},
           "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                    "args": ["a"], "resources": {}}],
                    "nodeSelector": {"k": "v"}, "securityContext": {}}}
    s = fs.to_fieldset(cfg, td)
    assert s == {
        "f:apiVersion": {}, "f:kind": {},
        "f:metadata": {"f:finalizers": {'v:"x"': {}}, "f:labels": {"f:a": {}}, "f:name": {}},
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': {
                ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                "f:resources": {}}},
            "f:nodeSelector": {}, "f:securityContext": {}},
    }


# ---------------------------------------------------------------------------
# update_managed_fields
# ---------------------------------------------------------------------------


def test_create_records_everything_like_kubectl_run() -> None:
    obj = pod()
    update_managed_fields(None, obj, "kubectl-run", "Update", "v1", NOW, SCHEMA, POD)
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl-run", "operation": "Update", "apiVersion": "v1", "time": NOW,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:run": {}}},
            "f:spec": {
                "f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}},
                "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:securityContext": {},
                "f:terminationGracePeriodSeconds": {},
            },
        },
    }]


def test_update_moves_ownership_and_drops_empty_entries() -> None:
    old = pod()
    update_managed_fields(None, old, "creator", "Update", "v1", NOW, SCHEMA, POD)
    old = stored(old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["metadata"]["labels"]["extra"] = "1"
    update_managed_fields(old, new, "kubectl-edit", "Update", "v1", LATER, SCHEMA, POD)
    mf = new["metadata"]["managedFields"]
    assert [e["manager"] for e in mf] == ["creator", "kubectl-edit"]
    creator, edit = mf[0]["fieldsV1"], mf[1]["fieldsV1"]
    assert "f:image" not in creator["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert edit == {"f:metadata": {"f:labels": {"f:extra": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:image": {}}}}}
    assert mf[1]["time"] == LATER and mf[0]["time"] == NOW

    # a later change by the same manager merges into its entry; removing a field drops it
    old2 = stored(new)
    new2 = copy.deepcopy(old2)
    del new2["metadata"]["labels"]["extra"]
    new2["spec"]["restartPolicy"] = "Never"
    update_managed_fields(old2, new2, "kubectl-edit", "Update", "v1", LATER, SCHEMA, POD)
    edit = [e for e in new2["metadata"]["managedFields"] if e["manager"] == "kubectl-edit"][0]["fieldsV1"]
    assert edit == {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:image": {}}}, "f:restartPolicy": {}}}

    # a manager that loses everything disappears
    only = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u",
            "managedFields": [{"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:restartPolicy": {}}}}]},
            "spec": {"restartPolicy": "Always"}}
    nxt = copy.deepcopy(only)
    nxt["spec"]["restartPolicy"] = "Never"
    update_managed_fields(only, nxt, "b", "Update", "v1", NOW, SCHEMA, POD)
    assert [e["manager"] for e in nxt["metadata"]["managedFields"]] == ["b"]


def test_noop_update_keeps_time_and_status_is_not_owned_by_main_resource() -> None:
    old = pod()
    update_managed_fields(None, old, "creator", "Update", "v1", NOW, SCHEMA, POD)
    old = stored(old)
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Running"  # reset by the strategy; never owned through the main resource
    update_managed_fields(old, new, "someone", "Update", "v1", LATER, SCHEMA, POD)
    assert new["metadata"]["managedFields"] == old["metadata"]["managedFields"]


def test_status_subresource_entry() -> None:
    old = pod()
    update_managed_fields(None, old, "creator", "Update", "v1", NOW, SCHEMA, POD)
    old = stored(old)
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    new["spec"]["restartPolicy"] = "Never"  # ignored through /status
    update_managed_fields(old, new, "kubelet", "Update", "v1", LATER, SCHEMA, POD, "status")
    kubelet = new["metadata"]["managedFields"][-1]
    assert kubelet["subresource"] == "status"
    assert kubelet["fieldsV1"] == {"f:status": {"f:phase": {}, "f:podIP": {}}}


def test_scale_subresource_owns_only_replicas() -> None:
    old = stored({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicas": 1, "paused": False}})
    old["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                                         "time": NOW, "fieldsType": "FieldsV1",
                                         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 4
    new["spec"]["paused"] = True
    update_managed_fields(old, new, "kubectl", "Update", "apps/v1", LATER, SCHEMA, DEPLOY, "scale")
    assert new["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": LATER,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}]


def test_untracked_objects_stay_untracked_and_reset() -> None:
    old = stored(pod())
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    update_managed_fields(old, new, "x", "Update", "v1", NOW, SCHEMA, POD)
    assert "managedFields" not in new["metadata"]

    # managedFields: [] in an update request clears them
    tracked = pod()
    update_managed_fields(None, tracked, "creator", "Update", "v1", NOW, SCHEMA, POD)
    tracked = stored(tracked)
    req = copy.deepcopy(tracked)
    req["metadata"]["managedFields"] = []
    update_managed_fields(tracked, req, "x", "Update", "v1", NOW, SCHEMA, POD)
    assert "managedFields" not in req["metadata"]


def test_entries_sorted_and_capped() -> None:
    obj: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {}}, "spec": {}}
    update_managed_fields(None, obj, "m00", "Update", "v1", "2024-01-01T00:00:00Z", SCHEMA, POD)
    obj["metadata"]["uid"] = "u"
    for i in range(1, 13):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "x"
        update_managed_fields(obj, new, f"m{i:02d}", "Update", "v1", f"2024-01-01T00:00:{i:02d}Z", SCHEMA, POD)
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert managers[0] == "ancient-changes"
    assert managers[1:] == [f"m{i:02d}" for i in range(4, 13)]
    ancient = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]
    assert set(ancient) == {".", "f:l1", "f:l2", "f:l3"}  # m00 owned the (empty) map itself


def test_managed_fields_roundtrip() -> None:
    entries = [
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": LATER, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {}}},
        {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": NOW, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:x": {}}, "subresource": "status"},
    ]
    assert encode_managed(decode_managed(entries)) == entries  # Apply sorts before Update


def test_default_manager() -> None:
    assert default_manager("kubectl/v1.30.1 (linux/amd64) kubernetes/7c48c2b", "update") == "kubectl"
    assert default_manager("kubectl-client-side-apply/v1.27.3 (linux/amd64) kubernetes/x", "patch") == \
        "kubectl-client-side-apply"
    assert default_manager("kubectl-edit/v1.33.0", "update") == "kubectl-edit"
    assert default_manager("OpenAPI-Generator/29.0.0/python", "create") == "OpenAPI-Generator"
    assert default_manager("Go-http-client/2.0", "create") == "Go-http-client"
    assert default_manager("a\x00b/1", "create") == "ab"
    assert default_manager("", "create") == "unknown"
    assert len(default_manager("x" * 300, "create")) == 128


def test_create_performance() -> None:
    obj = pod()
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        o = dict(obj)
        o["metadata"] = dict(obj["metadata"])
        update_managed_fields(None, o, "kubectl", "Update", "v1", NOW, SCHEMA, POD)
    per = (time.perf_counter() - t) / n
    assert per < 0.002  # ~0.03 ms on a laptop; generous bound for slow CI
