"""Tests for server-side apply (``k8py.api.apply``), against a fake schema and the real one."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from k8py.api import fieldset as fs
from k8py.api.apply import (
    ApplyConflict,
    ApplyError,
    merge,
    server_side_apply,
    update_managed_fields,
    validate_patch_options,
)



def _sibling(name: str) -> Any:
    """The fake schema lives in test_managedfields.py (tests/api is not a package)."""
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(name + ".py"))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


_mf = _sibling("test_managedfields")
DEPLOY, POD, SCHEMA = _mf.DEPLOY, _mf.POD, _mf.SCHEMA

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:01:00Z"
T2 = "2024-05-01T10:02:00Z"


def deploy_cfg(replicas: int | None = 3, image: str = "nginx:1", labels: dict | None = None,
               containers: list | None = None) -> dict:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": containers if containers is not None else
                              [{"name": "nginx", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": spec}


def persist(obj: dict, rv: int = 1) -> dict:
    """What the server would store: defaults filled in, system metadata set."""
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"uid": "uid-1", "resourceVersion": str(rv), "creationTimestamp": T0, "generation": 1})
    obj["spec"].setdefault("replicas", 1)
    obj["spec"].setdefault("paused", False)
    return obj


def apply(live: dict | None, cfg: dict, manager: str = "kubectl", force: bool = False, now: str = T0) -> dict:
    return server_side_apply(live, cfg, manager, force, SCHEMA, DEPLOY, "apps/v1", now)


def entry(obj: dict, manager: str) -> dict:
    found = [e for e in obj["metadata"]["managedFields"] if e["manager"] == manager]
    assert len(found) == 1, obj["metadata"]["managedFields"]
    return found[0]


# ---------------------------------------------------------------------------


def test_apply_create() -> None:
    obj = apply(None, deploy_cfg())
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx:1"}]
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}},
                },
            },
        },
    }]


def test_reapply_without_a_field_removes_it() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3, labels={"app": "web", "tier": "fe"})))
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    out = apply(live, deploy_cfg(replicas=None, labels={"app": "web"}), now=T1)
    assert "replicas" not in out["spec"]  # defaulting puts 1 back
    assert out["metadata"]["labels"] == {"app": "web"}
    # fields nobody applied (defaults) stay
    assert out["spec"]["paused"] is False
    assert out["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert "f:replicas" not in entry(out, "kubectl")["fieldsV1"]["f:spec"]
    assert entry(out, "kubectl")["time"] == T1
    # server-set metadata is kept from the live object
    assert out["metadata"]["creationTimestamp"] == T0 and out["metadata"]["uid"] == "uid-1"


def test_removed_field_owned_by_another_manager_stays() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3)))
    live = persist(apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                "spec": {"replicas": 3}}, manager="other", now=T1), 2)
    out = apply(live, deploy_cfg(replicas=None), now=T2)
    assert out["spec"]["replicas"] == 3
    assert entry(out, "other")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_shared_field_with_equal_value_is_not_a_conflict() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3)))
    out = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"replicas": 3}}, manager="hpa-ish", now=T1)
    assert entry(out, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert entry(out, "hpa-ish")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "time" not in entry(out, "hpa-ish")  # a no-op apply does not stamp a time (as kube)


def test_conflict_with_an_update_manager_and_force() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3)))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 5
    update_managed_fields(live, edited, "kubectl-client-side-apply", "Update", "apps/v1", T1, SCHEMA, DEPLOY)
    edited = persist(edited, 2)
    assert entry(edited, "kubectl-client-side-apply")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entry(edited, "kubectl")["fieldsV1"]["f:spec"]

    with pytest.raises(ApplyConflict) as exc:
        apply(edited, deploy_cfg(replicas=3), now=T2)
    err = exc.value
    assert err.message() == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                             'using apps/v1: .spec.replicas')
    assert err.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert err.causes() == [{"reason": "FieldManagerConflict",
                             "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                             "field": ".spec.replicas"}]
    assert err.status()["code"] == 409 and err.status()["reason"] == "Conflict"

    forced = apply(edited, deploy_cfg(replicas=3), force=True, now=T2)
    assert forced["spec"]["replicas"] == 3
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["kubectl"]
    assert forced["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_multiple_conflicts_message() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3)))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 5
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    update_managed_fields(live, edited, "kubectl-edit", "Update", "apps/v1", T1, SCHEMA, DEPLOY)
    edited = persist(edited, 2)
    other = apply(edited, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
                           "labels": {"app": "web"}}}, manager="labeler", now=T1)
    other = persist(other, 3)
    with pytest.raises(ApplyConflict) as exc:
        apply(other, deploy_cfg(replicas=4, labels={"app": "api"}), now=T2)
    assert exc.value.message() == (
        "Apply failed with 3 conflicts: conflicts with \"kubectl-edit\" using apps/v1:\n"
        "- .spec.replicas\n"
        "- .spec.template.spec.containers[name=\"nginx\"].image\n"
        "conflicts with \"labeler\":\n"
        "- .metadata.labels.app"
    )


def test_apply_containers_keyed_by_name() -> None:
    two = [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
           {"name": "b", "image": "b:1", "ports": [{"containerPort": 80}]}]
    live = persist(apply(None, deploy_cfg(containers=two)))
    # a controller adds a sidecar and an env var on "a"
    mutated = copy.deepcopy(live)
    mutated["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    mutated["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "Y", "value": "2"})
    update_managed_fields(live, mutated, "injector", "Update", "apps/v1", T1, SCHEMA, DEPLOY)
    mutated = persist(mutated, 2)
    inj = entry(mutated, "injector")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(inj) == {'k:{"name":"a"}', 'k:{"name":"sidecar"}'}
    assert inj['k:{"name":"a"}'] == {"f:env": {'k:{"name":"Y"}': {".": {}, "f:name": {}, "f:value": {}}}}

    # re-apply: change b's image, drop container a entirely
    out = apply(mutated, deploy_cfg(containers=[{"name": "b", "image": "b:2", "ports": [{"containerPort": 80}]}]),
                now=T2)
    containers = out["spec"]["template"]["spec"]["containers"]
    # a is removed (nobody else owns the item itself), the sidecar stays, b is updated in place
    assert [c["name"] for c in containers] == ["b", "sidecar"]
    assert containers[0] == {"name": "b", "image": "b:2", "ports": [{"containerPort": 80}]}
    mine = entry(out, "kubectl")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(mine) == ['k:{"name":"b"}']
    assert mine['k:{"name":"b"}']["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}':
                                                 {".": {}, "f:containerPort": {}}}
    # the injector lost what went away with container a
    inj = entry(out, "injector")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(inj) == {'k:{"name":"sidecar"}'}


def test_list_merge_order_follows_smd() -> None:
    td = fs.root_td(SCHEMA, "io.k8s.api.core.v1.PodSpec")
    live = {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}
    cfg = {"containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}]}
    got = merge(live, cfg, td)
    assert [c["name"] for c in got["containers"]] == ["x", "b", "c", "a"]
    # atomic lists and maps are replaced; granular maps merge
    live = {"containers": [{"name": "a", "args": ["1", "2"], "resources": {"limits": {"cpu": "1"}}}],
            "nodeSelector": {"a": "1"}}
    cfg = {"containers": [{"name": "a", "args": ["3"], "resources": {"limits": {"memory": "1Gi"}}}],
           "nodeSelector": {"b": "2"}}
    got = merge(live, cfg, td)
    assert got["containers"][0]["args"] == ["3"]
    assert got["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert got["nodeSelector"] == {"b": "2"}


def test_sets_and_finalizers() -> None:
    cfg = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a/b"]},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    live = server_side_apply(None, cfg, "m1", False, SCHEMA, POD, "v1", T0)
    assert entry(live, "m1")["fieldsV1"]["f:metadata"] == {"f:finalizers": {'v:"a/b"': {}}}
    live = persist_pod(live)
    cfg2 = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["c/d"]}}
    out = server_side_apply(live, cfg2, "m2", False, SCHEMA, POD, "v1", T1)
    assert out["metadata"]["finalizers"] == ["a/b", "c/d"]


def persist_pod(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"uid": "uid-p", "resourceVersion": "1", "creationTimestamp": T0})
    return obj


def test_first_apply_to_untracked_object() -> None:
    live = persist(deploy_cfg(replicas=2))  # stored without managedFields
    with pytest.raises(ApplyConflict) as exc:
        apply(live, deploy_cfg(replicas=3))
    assert exc.value.message() == ('Apply failed with 1 conflict: conflict with "before-first-apply" '
                                   'using apps/v1: .spec.replicas')
    out = apply(live, deploy_cfg(replicas=2))
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["kubectl", "before-first-apply"]


def test_request_errors() -> None:
    with pytest.raises(ApplyError) as exc:
        apply(None, deploy_cfg(), manager="")
    assert exc.value.code == 422
    assert exc.value.message == ('PatchOptions.meta.k8s.io "" is invalid: '
                                 'fieldManager: Required value: is required for apply patch')
    assert exc.value.status()["details"]["causes"][0]["field"] == "fieldManager"

    bad = deploy_cfg()
    bad["apiVersion"] = "apps/v1beta1"
    with pytest.raises(ApplyError) as exc:
        apply(None, bad)
    assert (exc.value.code, exc.value.message) == (400, "invalid object type: apps/v1beta1, Kind=Deployment")

    bad = deploy_cfg()
    bad["metadata"]["managedFields"] = []
    with pytest.raises(ApplyError) as exc:
        apply(None, bad)
    assert (exc.value.code, exc.value.message) == (400, "metadata.managedFields must be nil")

    bad = deploy_cfg()
    bad["spec"]["replicas"] = "three"
    with pytest.raises(ApplyError) as exc:
        apply(None, bad)
    assert exc.value.message == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                                 ".spec.replicas: expected numeric (int or float), got string")

    bad = deploy_cfg()
    bad["spec"]["bogus"] = 1
    with pytest.raises(ApplyError) as exc:
        apply(None, bad)
    assert exc.value.message.endswith(".spec.bogus: field not declared in schema")

    bad = deploy_cfg(containers=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ApplyError) as exc:
        apply(None, bad)
    assert 'duplicate entries for key [name="a"]' in exc.value.message

    assert validate_patch_options("kubectl", True, False).message == (  # type: ignore[union-attr]
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch')
    assert validate_patch_options("kubectl", None, True) is None


def test_null_in_configuration() -> None:
    live = persist(apply(None, deploy_cfg(replicas=3)))
    cfg = deploy_cfg(replicas=None)
    cfg["spec"]["paused"] = None
    out = apply(live, cfg, now=T1)
    assert "paused" not in out["spec"]
    assert entry(out, "kubectl")["fieldsV1"]["f:spec"]["f:paused"] == {}


# ---------------------------------------------------------------------------
# Against the real schema (k8py.api.schema), when present
# ---------------------------------------------------------------------------


def _real_schema() -> Any:
    schema_mod = pytest.importorskip("k8py.api.schema")
    try:
        return schema_mod.load()
    except (FileNotFoundError, OSError):  # pragma: no cover - data not generated yet
        pytest.skip("schema data missing")


def test_real_schema_deployment_apply_and_update() -> None:
    sc = _real_schema()
    t = sc.type_for_kind("apps", "v1", "Deployment")
    cfg = deploy_cfg(containers=[{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}])
    obj = server_side_apply(None, cfg, "kubectl", False, sc, t, "apps/v1", T0)
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    c = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert c["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert fields["f:spec"]["f:selector"] == {}  # LabelSelector is atomic
    live = persist(obj)
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 9
    update_managed_fields(live, edited, "kubectl-edit", "Update", "apps/v1", T1, sc, t)
    with pytest.raises(ApplyConflict) as exc:
        server_side_apply(persist(edited, 2), cfg, "kubectl", False, sc, t, "apps/v1", T2)
    assert exc.value.conflicts == [("kubectl-edit", ".spec.replicas")]


def test_real_schema_pod_create_matches_kube() -> None:
    sc = _real_schema()
    t = sc.type_for_kind("", "v1", "Pod")
    obj = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "default",
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                             "uid": "abc", "controller": True}]},
           "spec": {"containers": [{"name": "c", "image": "i", "resources": {},
                                    "env": [{"name": "A", "value": "1"}]}],
                    "volumes": [{"name": "v", "emptyDir": {}}], "dnsPolicy": "ClusterFirst"}}
    update_managed_fields(None, obj, "kube-controller-manager", "Update", "v1", T0, sc, t)
    f = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert f["f:metadata"] == {"f:ownerReferences": {".": {}, 'k:{"uid":"abc"}': {}}}
    assert f["f:spec"]["f:volumes"] == {".": {}, 'k:{"name":"v"}': {".": {}, "f:emptyDir": {}, "f:name": {}}}
    c = f["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert c["f:env"] == {".": {}, 'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}}
    assert "." not in f["f:spec"]["f:containers"]  # containers exists (null) in Go's zero Pod


# ---------------------------------------------------------------------------
# Cases ported from structured-merge-diff's merge tests (multiple_appliers_test.go,
# set_test.go, leaf_test.go): object and ownership after a sequence of operations.
# ---------------------------------------------------------------------------

_SMD_TYPES = {
    "smd.T": {
        "apiVersion": _mf.FI("apiVersion", "string"), "kind": _mf.FI("kind", "string"),
        "metadata": _mf.FI("metadata", "object", ref=_mf.META),
        "list": _mf.FI("list", "array", ref="smd.Item", list_type="map", list_map_keys=("name",)),
        "listOfLists": _mf.FI("listOfLists", "array", ref="smd.LL", list_type="map", list_map_keys=("name",)),
        "set": _mf.FI("set", "array", items_type="string", list_type="set"),
        "struct": _mf.FI("struct", "object", ref="smd.S"),
        "numeric": _mf.FI("numeric", "number"), "string": _mf.FI("string", "string"),
        "bool": _mf.FI("bool", "boolean"),
    },
    "smd.Item": {"name": _mf.FI("name", "string"), "value": _mf.FI("value", "string")},
    "smd.LL": {"name": _mf.FI("name", "string"),
               "value": _mf.FI("value", "array", items_type="string", list_type="set")},
    "smd.S": {"name": _mf.FI("name", "string"), "scalarField": _mf.FI("scalarField", "string"),
              "complexField": _mf.FI("complexField", "object", ref="smd.C")},
    "smd.C": {"name": _mf.FI("name", "string")},
}


class _SmdSchema:
    def field(self, type_name: str, field: str) -> Any:
        got = _SMD_TYPES.get(type_name)
        return got.get(field) if got is not None else SCHEMA.field(type_name, field)

    def has(self, type_name: str) -> bool:
        return type_name in _SMD_TYPES or SCHEMA.has(type_name)

    def is_atomic(self, type_name: str) -> bool:
        return False


def _run_smd(ops: list[tuple[str, str, dict]]) -> tuple[dict, dict[str, list[str]]]:
    sc = _SmdSchema()
    live: dict | None = None
    for i, (op, manager, body) in enumerate(ops):
        now = f"2024-01-01T00:00:{i:02d}Z"
        cfg = {"apiVersion": "v1", "kind": "T", "metadata": {"name": "x"}, **copy.deepcopy(body)}
        if op == "apply" or op == "force":
            new = server_side_apply(live, cfg, manager, op == "force", sc, "smd.T", "v1", now)
        else:
            new = cfg
            if live is not None:
                new["metadata"] = copy.deepcopy(live["metadata"])
            update_managed_fields(live, new, manager, "Update", "v1", now, sc, "smd.T")
        new["metadata"]["uid"] = "u"
        live = new
    assert live is not None
    obj = {k: v for k, v in live.items() if k not in ("apiVersion", "kind", "metadata")}
    owners = {e["manager"]: sorted(fs.path_string(p) for p in fs.iter_paths(e["fieldsV1"]))
              for e in live["metadata"].get("managedFields", [])}
    return obj, owners


def _k(name: str) -> str:
    return f'[name="{name}"]'


@pytest.mark.parametrize("ops,obj,owners", [
    pytest.param(  # remove_one_keep_one
        [("apply", "one", {"list": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
         ("apply", "two", {"list": [{"name": "c"}, {"name": "d"}]}),
         ("apply", "one", {"list": [{"name": "a"}]})],
        {"list": [{"name": "a"}, {"name": "c"}, {"name": "d"}]},
        {"one": [".list" + _k("a"), ".list" + _k("a") + ".name"],
         "two": [".list" + _k("c"), ".list" + _k("c") + ".name", ".list" + _k("d"), ".list" + _k("d") + ".name"]},
        id="remove_one_keep_one"),
    pytest.param(
        [("apply", "one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
         ("apply", "two", {"listOfLists": [{"name": "b", "value": ["d"]}]}),
         ("update", "controller", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c", "d", "e"]}]}),
         ("apply", "one", {"listOfLists": [{"name": "a"}]})],
        {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["d", "e"]}]},
        {"one": [".listOfLists" + _k("a"), ".listOfLists" + _k("a") + ".name"],
         "two": [".listOfLists" + _k("b"), ".listOfLists" + _k("b") + ".name",
                 ".listOfLists" + _k("b") + '.value[="d"]'],
         "controller": [".listOfLists" + _k("b") + '.value[="e"]']},
        id="remove_one_keep_one_with_dangling_subitem"),
    pytest.param(
        [("apply", "one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
         ("apply", "two", {"listOfLists": [{"name": "a", "value": ["b"]}]}),
         ("update", "controller", {"listOfLists": [{"name": "a", "value": ["b"]},
                                                   {"name": "b", "value": ["c", "d"]}]}),
         ("apply", "one", {"listOfLists": [{"name": "a"}]})],
        {"listOfLists": [{"name": "a", "value": ["b"]}]},
        {"one": [".listOfLists" + _k("a"), ".listOfLists" + _k("a") + ".name"],
         "two": [".listOfLists" + _k("a"), ".listOfLists" + _k("a") + ".name",
                 ".listOfLists" + _k("a") + '.value[="b"]']},
        id="remove_one_with_dangling_subitem_keep_one"),
    pytest.param(
        [("update", "updater", {"struct": {"name": "a", "scalarField": "a"}}),
         ("apply", "applier", {"struct": {"name": "a", "scalarField": "a"}}),
         ("apply", "applier", {"struct": {"name": "a"}})],
        {"struct": {"name": "a", "scalarField": "a"}},
        {"updater": [".struct", ".struct.name", ".struct.scalarField"], "applier": [".struct.name"]},
        id="unset_scalar_shared_with_updater"),
    pytest.param(
        [("apply", "one", {"struct": {"name": "a", "complexField": {"name": "b"}}}),
         ("apply", "one", {"struct": {"name": "a"}})],
        {"struct": {"name": "a"}}, {"one": [".struct.name"]},
        id="unset_complex_sole_owner"),
    pytest.param(
        [("apply", "default", {"numeric": 1, "string": "string"}),
         ("update", "controller", {"numeric": 1, "string": "controller string", "bool": True}),
         ("force", "default", {"numeric": 2, "string": "user string"})],
        {"numeric": 2, "string": "user string", "bool": True},
        {"default": [".numeric", ".string"], "controller": [".bool"]},
        id="apply_update_apply_with_conflict_forced"),
    pytest.param(
        [("apply", "d", {"set": ["a", "c"]}),
         ("update", "c", {"set": ["a", "b", "c", "d"]}),
         ("apply", "d", {"set": ["a", "aprime", "c", "cprime"]})],
        {"set": ["a", "b", "aprime", "c", "d", "cprime"]},
        {"d": ['.set[="a"]', '.set[="aprime"]', '.set[="c"]', '.set[="cprime"]'],
         "c": ['.set[="b"]', '.set[="d"]']},
        id="set_apply_update_apply_no_overlap"),
])
def test_smd_fixtures(ops: list, obj: dict, owners: dict) -> None:
    got_obj, got_owners = _run_smd(ops)
    assert got_obj == obj
    assert got_owners == {k: sorted(v) for k, v in owners.items()}
