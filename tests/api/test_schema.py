"""k8py's schema of its kinds: structure, patch metadata, strict field validation."""

from __future__ import annotations

import pytest

from k8py.api import schema as sch
from k8py.api.registry import REGISTRY

S = sch.load()
POD = "io.k8s.api.core.v1.Pod"
POD_SPEC = "io.k8s.api.core.v1.PodSpec"
CONTAINER = "io.k8s.api.core.v1.Container"
META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def test_load_is_cached():
    assert sch.load() is S


@pytest.mark.parametrize("r", REGISTRY.resources, ids=lambda r: f"{r.api_version}/{r.kind}")
def test_every_registry_kind_has_a_definition(r):
    name = S.type_for_kind(r.group, r.version, r.kind)
    assert name is not None
    d = S.definition(name)
    assert {"group": r.group, "version": r.version, "kind": r.kind} in d["x-kubernetes-group-version-kind"]
    if "list" in r.verbs:
        assert S.type_for_kind(r.group, r.version, r.list_kind) is not None
    fields = S.fields(name)
    assert fields["apiVersion"].type == "string"
    assert fields["kind"].type == "string"
    assert fields["metadata"].ref == META


def test_kind_names():
    assert S.type_for_kind("", "v1", "Pod") == POD
    assert S.type_for_kind("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert S.type_for_kind("autoscaling", "v1", "HorizontalPodAutoscaler") == \
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"
    assert S.type_for_kind("autoscaling", "v2", "HorizontalPodAutoscaler") == \
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"
    assert S.type_for_kind("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert S.type_for_kind("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    assert S.type_for_kind("autoscaling", "v1", "Scale") == "io.k8s.api.autoscaling.v1.Scale"
    assert S.type_for_kind("policy", "v1", "Eviction") == "io.k8s.api.policy.v1.Eviction"
    assert S.type_for_kind("", "v1", "Binding") == "io.k8s.api.core.v1.Binding"
    assert S.type_for_kind("", "v1", "Status") == "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
    assert S.type_for_kind("apps", "v1", "DeleteOptions") == "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    assert S.type_for_api_version("v1", "Pod") == POD
    assert S.type_for_kind("", "v1", "Nope") is None


def test_every_ref_resolves():
    for name, d in S.definitions.items():
        for fname, f in S.fields(name).items():
            if f.ref is not None:
                assert S.has(f.ref), f"{name}.{fname} -> {f.ref}"


def test_pod_spec_containers():
    f = S.field(POD_SPEC, "containers")
    assert f == sch.FieldInfo(name="containers", type="array", ref=CONTAINER, items_type=None,
                              patch_strategy="merge", patch_merge_key="name", list_type="map",
                              list_map_keys=("name",), required=True)
    assert S.field(POD_SPEC, "initContainers").patch_merge_key == "name"
    vols = S.field(POD_SPEC, "volumes")
    assert vols.patch_strategy == "merge,retainKeys" and vols.patch_merge_key == "name"
    assert S.field(POD_SPEC, "tolerations").list_type == "atomic"
    assert S.field(POD_SPEC, "tolerations").patch_strategy == ""
    assert S.field(POD_SPEC, "nodeSelector").type == "map"
    assert S.field(POD_SPEC, "nodeSelector").map_type == "atomic"
    assert S.field(POD_SPEC, "nodeSelector").items_type == "string"


def test_container_facts():
    ports = S.field(CONTAINER, "ports")
    assert ports.patch_strategy == "merge" and ports.patch_merge_key == "containerPort"
    assert ports.list_map_keys == ("containerPort", "protocol")
    env = S.field(CONTAINER, "env")
    assert (env.patch_strategy, env.patch_merge_key, env.list_type) == ("merge", "name", "map")
    assert S.field(CONTAINER, "volumeMounts").patch_merge_key == "mountPath"
    assert S.field(CONTAINER, "command").list_type == "atomic"
    assert S.field(CONTAINER, "name").required
    assert not S.field(CONTAINER, "image").required
    limits = S.field("io.k8s.api.core.v1.ResourceRequirements", "limits")
    assert (limits.type, limits.items_type, limits.ref) == ("map", "quantity", None)
    port = S.field("io.k8s.api.core.v1.ContainerPort", "containerPort")
    assert port.type == "integer" and port.required


def test_meta_facts():
    fin = S.field(META, "finalizers")
    assert (fin.patch_strategy, fin.list_type, fin.items_type) == ("merge", "set", "string")
    owners = S.field(META, "ownerReferences")
    assert (owners.patch_strategy, owners.patch_merge_key, owners.list_map_keys) == ("merge", "uid", ("uid",))
    assert S.field(META, "creationTimestamp").type == "date-time"
    assert S.field(META, "labels").type == "map"
    mf = S.field("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", "fieldsV1")
    assert mf.type == "any"
    assert S.is_atomic("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")


def test_other_kinds_facts():
    svc = S.field("io.k8s.api.core.v1.ServiceSpec", "ports")
    assert (svc.patch_strategy, svc.patch_merge_key, svc.list_map_keys) == ("merge", "port", ("port", "protocol"))
    target = S.field("io.k8s.api.core.v1.ServicePort", "targetPort")
    assert target.type == "int-or-string"
    strategy = S.field("io.k8s.api.apps.v1.DeploymentSpec", "strategy")
    assert strategy.patch_strategy == "retainKeys" and strategy.type == "object"
    assert S.field("io.k8s.api.apps.v1.RollingUpdateDeployment", "maxSurge").type == "int-or-string"
    cond = S.field("io.k8s.api.core.v1.PodStatus", "conditions")
    assert (cond.patch_strategy, cond.patch_merge_key) == ("merge", "type")
    assert S.field("io.k8s.api.apps.v1.ControllerRevision", "data").type == "any"
    assert S.field("io.k8s.api.coordination.v1.LeaseSpec", "renewTime").type == "date-time"
    assert S.field("io.k8s.api.core.v1.Secret", "data").items_type == "string"
    assert S.field("io.k8s.api.rbac.v1.RoleBinding", "subjects").list_type == "atomic"


def test_resolve_path():
    f = S.resolve(POD, ["spec", "containers", "ports"])
    assert f is not None and f.patch_merge_key == "containerPort"
    assert S.resolve(POD, ["spec", "nope"]) is None


def pod(**spec_extra):
    spec = {"containers": [{"name": "a", "image": "nginx"}]}
    spec.update(spec_extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_known_object_has_no_unknown_fields():
    obj = pod(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
              tolerations=[{"key": "k", "operator": "Exists"}])
    obj["metadata"].update(labels={"a": "b"}, annotations={"x": "y"}, finalizers=["f"],
                           managedFields=[{"manager": "m", "fieldsV1": {"f:spec": {"f:anything": {}}}}])
    obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert S.unknown_fields(POD, obj) == []
    assert sch.strict_errors(POD, obj) == []


def test_unknown_fields_paths_in_document_order():
    obj = pod()
    obj["spec"]["foo"] = 1
    obj["spec"]["containers"].append({"name": "b", "imag": "x", "ports": [{"containerPort": 1, "bad": 2}]})
    obj["metadata"]["nam"] = "typo"
    obj["status"] = {"phasee": "x"}
    assert S.unknown_fields(POD, obj) == [
        "metadata.nam",
        "spec.containers[1].imag",
        "spec.containers[1].ports[0].bad",
        "spec.foo",
        "status.phasee",
    ]
    assert sch.strict_errors(POD, obj)[3] == 'unknown field "spec.foo"'
    assert sch.strict_decoding_error(POD, obj).startswith(
        'strict decoding error: unknown field "metadata.nam", unknown field "spec.containers[1].imag", ')
    assert sch.strict_decoding_error(POD, pod()) is None


def test_unknown_top_level_and_case_sensitivity():
    obj = pod()
    obj["Spec"] = {}
    obj["extra"] = None
    assert S.unknown_fields(POD, obj) == ["Spec", "extra"]


def test_opaque_values_are_not_descended():
    cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
          "revision": 1, "data": {"whatever": {"deep": 1}}}
    assert S.unknown_fields("io.k8s.api.apps.v1.ControllerRevision", cr) == []
    # int-or-string / quantity given an object is a type problem, not an unknown field
    dep = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": {"x": 1}}}}}
    assert S.unknown_fields("io.k8s.api.apps.v1.Deployment", dep) == []


def test_always_known_top_level_fields():
    # Status declares apiVersion/kind/metadata anyway; DeleteOptions has no metadata field.
    opts = {"apiVersion": "v1", "kind": "DeleteOptions", "metadata": {}, "propagationPolicy": "Foreground"}
    assert S.unknown_fields("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", opts) == []


def test_wrong_shapes_are_skipped():
    obj = pod()
    obj["spec"]["containers"] = "not-a-list"
    obj["metadata"] = ["x"]
    assert S.unknown_fields(POD, obj) == []
    assert S.unknown_fields(POD, "nope") == []
    assert S.unknown_fields("no.such.Type", {"a": 1}) == []


def test_missing_required():
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": [{"image": "x"}]}}
    assert S.missing_required(POD, obj) == ["spec.containers[0].name"]
    assert S.missing_required(POD, {"spec": {}}) == ["spec.containers"]
    dep = {"spec": {"template": {}}}
    assert S.missing_required("io.k8s.api.apps.v1.Deployment", dep) == ["spec.selector"]


def test_definition_is_openapi_v3_style():
    d = S.definition(POD_SPEC)
    assert d["type"] == "object"
    assert d["required"] == ["containers"]
    prop = d["properties"]["containers"]
    assert prop["items"]["$ref"] == "#/components/schemas/" + CONTAINER
    assert prop["x-kubernetes-patch-merge-key"] == "name"
    with pytest.raises(KeyError):
        S.definition("no.such.Type")
