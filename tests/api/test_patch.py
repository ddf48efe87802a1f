"""Tests for k8py.api.patch / k8py.api.strategicpatch.

Expected results follow kube-apiserver: evanphx/json-patch v4 for JSON and
merge patches, apimachinery's strategicpatch for strategic merge patches, and
the apiserver patch handler for status codes and messages.
"""

from __future__ import annotations

import copy
import json
import time

import pytest
from fakeschema import FI

from k8py.api.patch import (
    PatchError,
    json_patch,
    merge_patch,
    parse_patch_body,
    strategic_merge_patch,
)

# --------------------------------------------------------------------------
# a small fake schema with the patch metadata of the real types


def _obj(name: str, ref: str, strategy: str = "") -> FI:
    return FI(name, "object", ref, None, strategy)


def _list(name: str, ref: str | None, items: str | None = None, strategy: str = "", key: str = "") -> FI:
    return FI(name, "array", ref, items, strategy, key)


_TYPES: dict[str, dict[str, FI]] = {
    "Pod": {"metadata": _obj("metadata", "ObjectMeta"), "spec": _obj("spec", "PodSpec"), "status": FI("status", "any")},
    "ObjectMeta": {
        "name": FI("name", "string"),
        "labels": FI("labels", "map", None, "string"),
        "annotations": FI("annotations", "map", None, "string"),
        "finalizers": _list("finalizers", None, "string", "merge"),
        "ownerReferences": _list("ownerReferences", "OwnerReference", None, "merge", "uid"),
    },
    "OwnerReference": {"uid": FI("uid", "string"), "name": FI("name", "string")},
    "PodSpec": {
        "containers": _list("containers", "Container", None, "merge", "name"),
        "initContainers": _list("initContainers", "Container", None, "merge", "name"),
        "volumes": _list("volumes", "Volume", None, "merge,retainKeys", "name"),
        "tolerations": _list("tolerations", "Toleration"),
        "nodeSelector": FI("nodeSelector", "map", None, "string"),
        "imagePullSecrets": _list("imagePullSecrets", "LocalObjectReference", None, "merge", "name"),
        "restartPolicy": FI("restartPolicy", "string"),
    },
    "Container": {
        "name": FI("name", "string"),
        "image": FI("image", "string"),
        "args": _list("args", None, "string"),
        "env": _list("env", "EnvVar", None, "merge", "name"),
        "ports": _list("ports", "ContainerPort", None, "merge", "containerPort"),
        "resources": _obj("resources", "ResourceRequirements"),
        "volumeMounts": _list("volumeMounts", "VolumeMount", None, "merge", "mountPath"),
    },
    "EnvVar": {"name": FI("name", "string"), "value": FI("value", "string"), "valueFrom": _obj("valueFrom", "EnvVarSource")},
    "ContainerPort": {"containerPort": FI("containerPort", "integer"), "protocol": FI("protocol", "string")},
    "ResourceRequirements": {
        "limits": FI("limits", "map", None, "quantity"),
        "requests": FI("requests", "map", None, "quantity"),
    },
    "Volume": {
        "name": FI("name", "string"),
        "emptyDir": _obj("emptyDir", "EmptyDirVolumeSource"),
        "configMap": _obj("configMap", "ConfigMapVolumeSource"),
    },
    "Toleration": {"key": FI("key", "string"), "operator": FI("operator", "string"), "effect": FI("effect", "string")},
    "Deployment": {"metadata": _obj("metadata", "ObjectMeta"), "spec": _obj("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        "replicas": FI("replicas", "integer"),
        "strategy": _obj("strategy", "DeploymentStrategy", "retainKeys"),
        "template": _obj("template", "PodTemplateSpec"),
    },
    "DeploymentStrategy": {"type": FI("type", "string"), "rollingUpdate": _obj("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {"maxSurge": FI("maxSurge", "int-or-string"), "maxUnavailable": FI("maxUnavailable", "int-or-string")},
    "PodTemplateSpec": {"metadata": _obj("metadata", "ObjectMeta"), "spec": _obj("spec", "PodSpec")},
}


class FakeSchema:
    def field(self, type_name: str, field: str) -> FI | None:
        return _TYPES.get(type_name, {}).get(field)


SCHEMA = FakeSchema()


def smp(doc: dict, patch: object, type_name: str = "Pod") -> dict:
    """Apply and check that neither input was mutated."""
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = strategic_merge_patch(doc, patch, SCHEMA, type_name)
    assert doc == doc_before, "original mutated"
    assert patch == patch_before, "patch mutated"
    return out


def smp_error(doc: dict, patch: object, type_name: str = "Pod") -> PatchError:
    with pytest.raises(PatchError) as ei:
        strategic_merge_patch(doc, patch, SCHEMA, type_name)
    return ei.value


def jp(doc: dict, ops: object) -> dict:
    doc_before, ops_before = copy.deepcopy(doc), copy.deepcopy(ops)
    out = json_patch(doc, ops)
    assert doc == doc_before, "document mutated"
    assert ops == ops_before, "patch mutated"
    return out


def jp_error(doc: dict, ops: object) -> PatchError:
    with pytest.raises(PatchError) as ei:
        json_patch(doc, ops)
    return ei.value


def pod(**spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}}, "spec": spec}


# ==========================================================================
# parse_patch_body


class TestParsePatchBody:
    def test_content_types(self) -> None:
        assert parse_patch_body("application/json-patch+json", b'[{"op":"remove","path":"/a"}]') == (
            "json",
            [{"op": "remove", "path": "/a"}],
        )
        assert parse_patch_body("application/merge-patch+json", b'{"a":null}') == ("merge", {"a": None})
        assert parse_patch_body("application/strategic-merge-patch+json", b'{"a":1}') == ("strategic", {"a": 1})
        assert parse_patch_body("application/apply-patch+yaml", b"apiVersion: v1\nkind: ConfigMap\n") == (
            "apply",
            {"apiVersion": "v1", "kind": "ConfigMap"},
        )

    def test_parameters_are_ignored(self) -> None:
        assert parse_patch_body("application/merge-patch+json; charset=utf-8", b"{}") == ("merge", {})

    def test_body_shape_is_not_checked_here(self) -> None:
        # Kubernetes checks the shape when applying (after the object was
        # found): a JSON patch that is an object parses, and fails later.
        assert parse_patch_body("application/json-patch+json", b"{}") == ("json", {})
        assert parse_patch_body("application/merge-patch+json", b"null") == ("merge", None)

    def test_int64_is_preserved(self) -> None:
        assert parse_patch_body("application/merge-patch+json", b'{"a":9223372036854775807,"b":-9223372036854775808}') == (
            "merge",
            {"a": 9223372036854775807, "b": -9223372036854775808},
        )

    def test_lone_surrogate_escape(self) -> None:
        # encoding/json decodes an unpaired surrogate escape as U+FFFD
        assert parse_patch_body("application/merge-patch+json", b'{"a":"\\ud800x","b":"\\ud83d\\ude00"}') == (
            "merge",
            {"a": "\ufffdx", "b": "\U0001f600"},
        )

    @pytest.mark.parametrize("ctype", ["application/json", "text/plain", "", "application/apply-patch+cbor"])
    def test_unsupported_media_type_native(self, ctype: str) -> None:
        # go-restful rejects these before kube's handler runs.
        with pytest.raises(PatchError) as ei:
            parse_patch_body(ctype, b"{}")
        e = ei.value
        assert (e.code, e.reason, e.message) == (415, "UnsupportedMediaType", "415: Unsupported Media Type")
        assert e.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "415: Unsupported Media Type",
            "reason": "UnsupportedMediaType",
            "details": {},
            "code": 415,
        }

    def test_unsupported_media_type_empty_body(self) -> None:
        with pytest.raises(PatchError) as ei:
            parse_patch_body("application/json", b"")
        assert ei.value.message == "415: Unsupported Media Type\n\nAvailable representations: "

    def test_unsupported_media_type_from_the_patch_handler(self) -> None:
        # go-restful trims spaces around a media type, kube's handler does not.
        with pytest.raises(PatchError) as ei:
            parse_patch_body("application/merge-patch+json ; charset=utf-8", b"{}")
        assert ei.value.code == 415
        assert ei.value.message == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/strategic-merge-patch+json, application/apply-patch+yaml"
        )
        assert "details" not in ei.value.status()

    def test_custom_resources_reject_strategic_merge_patch(self) -> None:
        with pytest.raises(PatchError) as ei:
            parse_patch_body("application/strategic-merge-patch+json", b"{}", custom_resource=True)
        assert ei.value.code == 415
        assert ei.value.reason == "UnsupportedMediaType"
        assert ei.value.message == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        )
        assert parse_patch_body("application/merge-patch+json", b"{}", custom_resource=True) == ("merge", {})

    @pytest.mark.parametrize(
        "ctype", ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]
    )
    @pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"[1,]", b"NaN"])
    def test_malformed_json(self, ctype: str, body: bytes) -> None:
        with pytest.raises(PatchError) as ei:
            parse_patch_body(ctype, body)
        e = ei.value
        assert (e.code, e.reason, e.message) == (400, "BadRequest", "invalid JSON patch")
        assert e.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "invalid JSON patch",
            "reason": "BadRequest",
            "code": 400,
        }

    def test_apply_yaml(self) -> None:
        body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  when: 2024-01-02\n  flag: yes\n  on: x\n  1: y\n"
        kind, obj = parse_patch_body("application/apply-patch+yaml", body)
        assert kind == "apply"
        # timestamps stay strings (sigs.k8s.io/yaml); YAML 1.1 booleans are
        # booleans, also as keys, which become strings
        assert obj == {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"when": "2024-01-02", "flag": True, "true": "x", "1": "y"},
        }

    def test_apply_json_body(self) -> None:
        kind, obj = parse_patch_body("application/apply-patch+yaml", b'{"apiVersion":"v1","kind":"Secret"}')
        assert (kind, obj) == ("apply", {"apiVersion": "v1", "kind": "Secret"})

    def test_apply_empty(self) -> None:
        assert parse_patch_body("application/apply-patch+yaml", b"") == ("apply", {})

    def test_apply_not_an_object(self) -> None:
        with pytest.raises(PatchError) as ei:
            parse_patch_body("application/apply-patch+yaml", b"- a\n- b\n")
        assert ei.value.code == 400
        assert ei.value.message == (
            "error decoding patch: error unmarshaling JSON: while decoding JSON: "
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )

    def test_apply_bad_yaml(self) -> None:
        with pytest.raises(PatchError) as ei:
            parse_patch_body("application/apply-patch+yaml", b"a: b: c\n")
        assert ei.value.code == 400
        assert ei.value.message.startswith("error encoding patch: error converting YAML to JSON: yaml: ")


# ==========================================================================
# JSON patch (RFC 6902 as evanphx/json-patch v4 applies it)


DOC = {
    "metadata": {"name": "x", "labels": {"app": "web", "a/b": "1", "c~d": "2"}},
    "spec": {"items": ["a", "b", "c"], "nested": {"k": {"v": 1}}},
}


class TestJSONPatch:
    def test_add_replace_remove(self) -> None:
        out = jp(
            DOC,
            [
                {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
                {"op": "replace", "path": "/metadata/name", "value": "y"},
                {"op": "remove", "path": "/metadata/labels/app"},
            ],
        )
        assert out["metadata"] == {"name": "y", "labels": {"a/b": "1", "c~d": "2", "tier": "fe"}}
        assert out["spec"] is DOC["spec"]  # untouched subtrees are shared

    def test_array_indices(self) -> None:
        out = jp(
            DOC,
            [
                {"op": "add", "path": "/spec/items/1", "value": "X"},
                {"op": "add", "path": "/spec/items/-", "value": "end"},
                {"op": "add", "path": "/spec/items/-2", "value": "neg"},  # evanphx: negative indices count from the end
                {"op": "remove", "path": "/spec/items/0"},
                {"op": "replace", "path": "/spec/items/-1", "value": "last"},
                {"op": "add", "path": "/spec/items/-1", "value": "appended"},  # -1 is after the last item for add
            ],
        )
        assert out["spec"]["items"] == ["X", "b", "c", "neg", "last", "appended"]

    def test_pointer_escaping(self) -> None:
        out = jp(
            DOC,
            [
                {"op": "test", "path": "/metadata/labels/a~1b", "value": "1"},
                {"op": "remove", "path": "/metadata/labels/a~1b"},
                {"op": "replace", "path": "/metadata/labels/c~0d", "value": "3"},
                {"op": "add", "path": "/metadata/labels/~01", "value": "tilde-one"},
            ],
        )
        assert out["metadata"]["labels"] == {"app": "web", "c~d": "3", "~1": "tilde-one"}

    def test_move_and_copy(self) -> None:
        out = jp(
            DOC,
            [
                {"op": "copy", "from": "/spec/nested", "path": "/spec/copied"},
                {"op": "replace", "path": "/spec/copied/k/v", "value": 2},
                {"op": "move", "from": "/spec/items/0", "path": "/spec/items/-"},
                {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/app"},
            ],
        )
        assert out["spec"]["nested"] == {"k": {"v": 1}}  # the copy is deep
        assert out["spec"]["copied"] == {"k": {"v": 2}}
        assert out["spec"]["items"] == ["b", "c", "a"]
        assert out["metadata"]["app"] == "web"
        assert "app" not in out["metadata"]["labels"]

    def test_values_from_the_patch_are_not_mutated(self) -> None:
        value = {"a": {"b": 1}}
        ops = [{"op": "add", "path": "/x", "value": value}, {"op": "add", "path": "/x/a/c", "value": 2}]
        out = jp({}, ops)
        assert out == {"x": {"a": {"b": 1, "c": 2}}}
        assert value == {"a": {"b": 1}}

    def test_test_op(self) -> None:
        doc = {"a": 1, "b": None, "c": {"d": [1, "x", {"e": True}]}, "f": 1.5}
        jp(doc, [{"op": "test", "path": "/a", "value": 1}])
        jp(doc, [{"op": "test", "path": "/c", "value": {"d": [1, "x", {"e": True}]}}])
        jp(doc, [{"op": "test", "path": "/f", "value": 1.5}])
        jp(doc, [{"op": "test", "path": "/b", "value": None}])
        jp(doc, [{"op": "test", "path": "/missing", "value": None}])  # a missing value tests equal to null
        jp(doc, [{"op": "test", "path": "/missing"}])
        jp(doc, [{"op": "test", "path": "", "value": doc}])

    @pytest.mark.parametrize(
        "path,value",
        [("/a", 2), ("/a", "1"), ("/a", True), ("/a", 1.0), ("/b", 0), ("/c", {"d": []}), ("/missing", 1), ("/a", None)],
    )
    def test_test_op_failure(self, path: str, value: object) -> None:
        e = jp_error({"a": 1, "b": None, "c": {"d": [1]}}, [{"op": "test", "path": path, "value": value}])
        assert e.code == 422
        assert e.reason == "Invalid"
        # kube replaces the evanphx text with the generic message ...
        assert e.message == "the server rejected our request due to an error in our request"
        # ... which is still available for logging.
        assert e.detail == f"testing value {path} failed: test failed"
        assert e.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server rejected our request due to an error in our request",
            "reason": "Invalid",
            "details": {},
            "code": 422,
        }

    def test_test_op_without_value_on_present_field(self) -> None:
        assert jp_error({"a": []}, [{"op": "test", "path": "/a"}]).detail == "testing value /a failed: test failed"

    def test_evanphx_v4_quirks(self) -> None:
        # replace of a missing object member adds it
        assert jp({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]) == {"a": 1, "b": 2}
        # add without a value adds null
        assert jp({}, [{"op": "add", "path": "/a"}]) == {"a": None}
        # copy from a missing member copies null
        assert jp({"a": {}}, [{"op": "copy", "from": "/a/x", "path": "/y"}]) == {"a": {}, "y": None}
        # a null body is an empty patch
        assert jp({"a": 1}, None) == {"a": 1}

    def test_replace_root(self) -> None:
        assert jp({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}, {"op": "add", "path": "/c", "value": 3}]) == {
            "b": 2,
            "c": 3,
        }

    @pytest.mark.parametrize(
        "ops,detail",
        [
            ([{"op": "add", "path": "/nope/x", "value": 1}], 'add operation does not apply: doc is missing path: "/nope/x": missing value'),
            ([{"op": "add", "path": "", "value": 1}], 'add operation does not apply: doc is missing path: "": missing value'),
            ([{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
            ([{"op": "add", "path": "/spec/items/5", "value": 1}], "error in add for path: '/spec/items/5': Unable to access invalid index: 5: invalid index referenced"),
            ([{"op": "add", "path": "/spec/items/-5", "value": 1}], "error in add for path: '/spec/items/-5': Unable to access invalid index: -5: invalid index referenced"),
            (
                [{"op": "add", "path": "/spec/items/x", "value": 1}],
                "error in add for path: '/spec/items/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ([{"op": "remove", "path": "/metadata/nope"}], "error in remove for path: '/metadata/nope': Unable to remove nonexistent key: nope: missing value"),
            ([{"op": "remove", "path": "/a/b/c"}], 'remove operation does not apply: doc is missing path: "/a/b/c": missing value'),
            ([{"op": "remove", "path": "/spec/items/3"}], "error in remove for path: '/spec/items/3': Unable to access invalid index: 3: invalid index referenced"),
            ([{"op": "remove", "path": "/spec/items/-"}], "error in remove for path: '/spec/items/-': strconv.Atoi: parsing \"-\": invalid syntax"),
            ([{"op": "replace", "path": "/spec/items/3", "value": 1}], "replace operation does not apply: doc is missing key: /spec/items/3: missing value"),
            ([{"op": "replace", "path": "/x/y", "value": 1}], "replace operation does not apply: doc is missing path: /x/y: missing value"),
            ([{"op": "replace", "value": 1}], "replace operation failed to decode path: operation missing path field: missing value"),
            ([{"op": "replace", "path": 5, "value": 1}], "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string"),
            ([{"op": "replace", "path": "", "value": 1}], "replace operation value must be object or array: %!w(<nil>)"),
            ([{"op": "move", "from": "/metadata/nope", "path": "/x"}], "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value"),
            ([{"op": "move", "path": "/x"}], "move operation failed to decode from: operation, missing from field: missing value"),
            ([{"op": "move", "from": "/metadata/name", "path": "/x/y"}], "move operation does not apply: doc is missing destination path: /x/y: missing value"),
            ([{"op": "copy", "from": "/q/r", "path": "/x"}], "copy operation does not apply: doc is missing from path: /q/r: missing value"),
            ([{"op": "copy", "from": "/spec/items/9", "path": "/x"}], "error in copy for from: '/spec/items/9': Unable to access invalid index: 9: invalid index referenced"),
            ([{"op": "copy", "from": "/metadata/name", "path": "/spec/items/7"}], "error while adding value during copy: Unable to access invalid index: 7: invalid index referenced"),
            ([{"op": "test", "path": "/spec/items/7", "value": 1}], "error in test for path: '/spec/items/7': Unable to access invalid index: 7: invalid index referenced"),
            ([{"op": "test", "path": "/x/y", "value": 1}], "test operation does not apply: is missing path: /x/y: missing value"),
            ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
            ([{"path": "/a"}], "Unexpected kind: unknown"),
            ([None], "Unexpected kind: unknown"),
        ],
    )
    def test_failures(self, ops: list, detail: str) -> None:
        e = jp_error(DOC, ops)
        assert (e.code, e.reason, e.detail) == (422, "Invalid", detail)
        assert e.message == "the server rejected our request due to an error in our request"

    def test_failure_leaves_document_alone(self) -> None:
        doc = copy.deepcopy(DOC)
        jp_error(doc, [{"op": "remove", "path": "/metadata/name"}, {"op": "remove", "path": "/metadata/name"}])
        assert doc == DOC

    @pytest.mark.parametrize(
        "body,message",
        [
            ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
            ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
            ([{"op": "add", "path": "/a", "value": 1}, 7], "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
            ([[]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
        ],
    )
    def test_malformed_patch(self, body: object, message: str) -> None:
        e = jp_error(DOC, body)
        assert (e.code, e.reason, e.message) == (400, "BadRequest", message)

    def test_too_many_operations(self) -> None:
        jp({"a": 1}, [{"op": "test", "path": "/a", "value": 1}] * 10000)
        e = jp_error({"a": 1}, [{"op": "test", "path": "/a", "value": 1}] * 10001)
        assert (e.code, e.reason) == (413, "RequestEntityTooLarge")
        assert e.message == "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"

    def test_copy_size_limit(self) -> None:
        big = "x" * (1024 * 1024)
        jp({"a": big}, [{"op": "copy", "from": "/a", "path": f"/b{i}"} for i in range(2)])
        e = jp_error({"a": big}, [{"op": "copy", "from": "/a", "path": f"/b{i}"} for i in range(3)])
        assert e.code == 422
        assert e.detail == (
            f"Unable to complete the copy, the accumulated size increase of copy is {3 * (len(big) + 2)}, "
            f"exceeding the limit {3 * 1024 * 1024}"
        )

    def test_root_replaced_by_array_does_not_decode(self) -> None:
        e = jp_error({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])
        assert (e.code, e.reason) == (422, "Invalid")
        assert e.message.startswith(' "" is invalid: patch: Invalid value: "[1]": couldn\'t get version/kind')
        assert e.details is not None and e.details["causes"][0]["field"] == "patch"

    def test_kubectl_patch_type_json(self) -> None:
        # kubectl patch deploy web --type=json -p '[{"op":"replace","path":"/spec/replicas","value":3}]'
        dep = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
        out = jp(
            dep,
            [
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["-v"]},
            ],
        )
        assert out == {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x", "args": ["-v"]}]}}}}
        assert dep["spec"]["template"]["spec"]["containers"][0] == {"name": "a", "image": "x"}


# ==========================================================================
# JSON merge patch (RFC 7386 as evanphx/json-patch v4 applies it)


def mp(doc: dict, patch: object) -> dict:
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = merge_patch(doc, patch)
    assert doc == doc_before and patch == patch_before
    return out


class TestMergePatch:
    @pytest.mark.parametrize(
        "target,patch,expected",
        [  # RFC 7386 appendix A (object cases)
            ({"a": "b"}, {"a": "c"}, {"a": "c"}),
            ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
            ({"a": "b"}, {"a": None}, {}),
            ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
            ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
            ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
            ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
            ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
            ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
            ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ],
    )
    def test_rfc7386(self, target: dict, patch: dict, expected: dict) -> None:
        assert mp(target, patch) == expected

    def test_nulls(self) -> None:
        # null members of new objects are dropped, even inside arrays; null array items stay
        assert mp({}, {"a": [{"x": None, "y": 1}, None]}) == {"a": [{"y": 1}, None]}
        # replacing a null member merges into nothing
        assert mp({"a": None}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}
        assert mp({"a": 1}, {"missing": None}) == {"a": 1}

    def test_kubectl_label_and_annotate(self) -> None:
        # kubectl label pod p tier=fe app-   /   kubectl annotate pod p note=x
        p = pod(containers=[{"name": "a", "image": "x"}])
        out = mp(p, {"metadata": {"labels": {"tier": "fe", "app": None}}})
        assert out["metadata"]["labels"] == {"tier": "fe"}
        assert out["spec"] is p["spec"]
        out = mp(p, {"metadata": {"annotations": {"note": "x"}}})
        assert out["metadata"] == {"name": "p", "labels": {"app": "web"}, "annotations": {"note": "x"}}

    def test_lists_are_replaced(self) -> None:
        p = pod(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
        out = mp(p, {"spec": {"containers": [{"name": "a", "image": "z"}]}})
        assert out["spec"]["containers"] == [{"name": "a", "image": "z"}]

    def test_result_does_not_alias_patch(self) -> None:
        patch = {"a": {"b": [{"c": 1}]}}
        out = merge_patch({"a": "x"}, patch)
        out["a"]["b"][0]["c"] = 2
        assert patch == {"a": {"b": [{"c": 1}]}}

    @pytest.mark.parametrize("patch", [None, 1, "x", True])
    def test_not_an_object(self, patch: object) -> None:
        with pytest.raises(PatchError) as ei:
            merge_patch({"a": 1}, patch)
        assert (ei.value.code, ei.value.reason, ei.value.message) == (400, "BadRequest", "Invalid JSON Patch")

    def test_array_does_not_decode(self) -> None:
        with pytest.raises(PatchError) as ei:
            merge_patch({"a": 1}, [{"a": None}])
        assert ei.value.code == 422
        assert ei.value.message.startswith(' "" is invalid: patch: Invalid value: "[{}]": ')


# ==========================================================================
# strategic merge patch


class TestStrategicMergePatch:
    def test_kubectl_set_image(self) -> None:
        # kubectl set image pod/p b=nginx:2
        p = pod(containers=[{"name": "a", "image": "x", "args": ["1"]}, {"name": "b", "image": "nginx:1"}])
        out = smp(p, {"spec": {"containers": [{"name": "b", "image": "nginx:2"}]}})
        assert out["spec"]["containers"] == [{"name": "a", "image": "x", "args": ["1"]}, {"name": "b", "image": "nginx:2"}]
        assert out["spec"]["containers"][0] is p["spec"]["containers"][0]
        assert out["metadata"] is p["metadata"]

    def test_kubectl_rollout_restart(self) -> None:
        dep = {"spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}}}}
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}}}}}
        out = smp(dep, patch, "Deployment")
        assert out["spec"]["template"]["metadata"] == {
            "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"},
        }

    def test_maps_merge_and_null_deletes(self) -> None:
        p = pod(nodeSelector={"a": "1", "b": "2"}, restartPolicy="Always")
        out = smp(p, {"metadata": {"labels": {"app": None, "x": "y"}}, "spec": {"nodeSelector": {"b": None, "c": "3"}, "restartPolicy": None}})
        assert out["metadata"]["labels"] == {"x": "y"}
        assert out["spec"] == {"nodeSelector": {"a": "1", "c": "3"}}

    def test_merge_list_adds_and_merges(self) -> None:
        p = pod(containers=[{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
        out = smp(
            p,
            {"spec": {"containers": [
                {"name": "a", "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}]},
                {"name": "side", "image": "busybox"},
            ]}},
        )
        assert out["spec"]["containers"] == [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "22"}, {"name": "C", "value": "3"}]},
            {"name": "side", "image": "busybox"},
        ]

    def test_merge_key_is_compared_with_its_type(self) -> None:
        p = pod(containers=[{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
        out = smp(p, {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}})
        assert out["spec"]["containers"][0]["ports"] == [
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443},
        ]
        # "80" is not 80: a new item, which comes first (see below)
        out = smp(p, {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}})
        assert out["spec"]["containers"][0]["ports"] == [{"containerPort": "80"}, {"containerPort": 80, "protocol": "TCP"}]

    def test_new_items_come_in_patch_order(self) -> None:
        # mergeSortedSlice: patch items keep the patch's order, live-only
        # items the live order; a patch item unknown to the live list is
        # emitted as soon as it is reached -- so an added item comes first,
        # as in the kubectl patch docs (patch-demo-ctr-2 before patch-demo-ctr).
        p = pod(containers=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
        out = smp(p, {"spec": {"containers": [{"name": "new", "image": "redis"}]}})
        assert [c["name"] for c in out["spec"]["containers"]] == ["new", "a", "b", "c"]
        out = smp(p, {"spec": {"containers": [{"name": "x"}, {"name": "b", "image": "i"}]}})
        assert [c["name"] for c in out["spec"]["containers"]] == ["x", "a", "b", "c"]
        out = smp(p, {"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "a", "image": "j"}]}})
        assert [c["name"] for c in out["spec"]["containers"]] == ["b", "c", "a"]

    def test_delete_directive_in_list(self) -> None:
        p = pod(containers=[{"name": "a"}, {"name": "b"}, {"name": "a", "image": "dup"}])
        out = smp(p, {"spec": {"containers": [{"$patch": "delete", "name": "a"}, {"$patch": "delete", "name": "zzz"}]}})
        assert out["spec"]["containers"] == [{"name": "b"}]

    def test_replace_directive_in_list(self) -> None:
        p = pod(containers=[{"name": "a", "image": "x"}, {"name": "b"}])
        out = smp(p, {"spec": {"containers": [{"name": "c", "image": "y", "env": None}, {"$patch": "replace"}]}})
        assert out["spec"]["containers"] == [{"name": "c", "image": "y"}]
        out = smp(p, {"spec": {"containers": [{"$patch": "replace"}]}})
        assert out["spec"]["containers"] == []

    def test_replace_directive_in_map(self) -> None:
        p = pod(nodeSelector={"a": "1", "b": "2"})
        out = smp(p, {"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}})
        assert out["spec"]["nodeSelector"] == {"c": "3"}
        out = smp(p, {"$patch": "replace", "kind": "Pod"})
        assert out == {"kind": "Pod"}

    def test_delete_directive_in_map(self) -> None:
        p = pod(nodeSelector={"a": "1"})
        # $patch: delete empties the map (the key stays)
        assert smp(p, {"spec": {"nodeSelector": {"$patch": "delete"}}})["spec"]["nodeSelector"] == {}
        # on a field the original lacks, a directive map is dropped
        out = smp(p, {"spec": {"volumes": {"$patch": "delete"}, "initContainers": [{"$patch": "replace"}, {"name": "i"}]}})
        assert out["spec"] == {"nodeSelector": {"a": "1"}, "initContainers": [{"name": "i"}]}

    @pytest.mark.parametrize("directive", ["merge", "bogus", 1, None])
    def test_unknown_map_directive(self, directive: object) -> None:
        e = smp_error(pod(nodeSelector={"a": "1"}), {"spec": {"nodeSelector": {"$patch": directive, "b": "2"}}})
        assert (e.code, e.reason) == (500, "")
        shown = {"merge": "merge", "bogus": "bogus", 1: "%!s(int64=1)", None: "%!s(<nil>)"}[directive]  # type: ignore[index]
        value = {"merge": "merge", "bogus": "bogus", 1: "1", None: "<nil>"}[directive]  # type: ignore[index]
        assert e.message == f"unknown patch type: {shown} in map: map[$patch:{value} b:2]"
        assert "reason" not in e.status()

    def test_list_directive_errors(self) -> None:
        p = pod(containers=[{"name": "a"}])
        e = smp_error(p, {"spec": {"containers": [{"$patch": "merge"}]}})
        assert (e.code, e.message) == (500, "merging lists cannot yet be specified in the patch")
        e = smp_error(p, {"spec": {"containers": [{"$patch": "nope", "name": "a"}]}})
        assert e.message == "unknown patch type: nope in map: map[$patch:nope name:a]"
        e = smp_error(p, {"spec": {"containers": [{"$patch": "delete"}]}})
        assert e.message == "map: map[$patch:delete] does not contain declared merge key: name"

    def test_missing_merge_key(self) -> None:
        # the message kubectl shows as "Error from server: map: ... does not contain declared merge key: name"
        p = pod(volumes=[{"name": "v", "emptyDir": {}}])
        e = smp_error(p, {"spec": {"volumes": [{"hostPath": {"path": "/var/lib/kubelet/pods"}}]}})
        assert (e.code, e.reason) == (500, "")
        assert e.message == "map: map[hostPath:map[path:/var/lib/kubelet/pods]] does not contain declared merge key: name"

    def test_atomic_list_is_replaced(self) -> None:
        p = pod(tolerations=[{"key": "a", "operator": "Exists"}, {"key": "b"}])
        out = smp(p, {"spec": {"tolerations": [{"key": "c", "effect": None, "$patch": "delete"}]}})
        # replaced whole; what decoding drops (nulls, directive keys) is dropped
        assert out["spec"]["tolerations"] == [{"key": "c"}]
        p = pod(containers=[{"name": "a", "args": ["1", "2"]}])
        assert smp(p, {"spec": {"containers": [{"name": "a", "args": ["3"]}]}})["spec"]["containers"][0]["args"] == ["3"]

    def test_primitive_merge_list(self) -> None:
        p = {"metadata": {"name": "p", "finalizers": ["a", "b"]}}
        assert smp(p, {"metadata": {"finalizers": ["c", "a"]}})["metadata"]["finalizers"] == ["c", "a", "b"]
        assert smp(p, {"metadata": {"finalizers": ["b", "b", "d"]}})["metadata"]["finalizers"] == ["a", "b", "d"]
        out = smp(p, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zzz"]}})
        assert out["metadata"]["finalizers"] == ["b"]
        out = smp(p, {"metadata": {"$deleteFromPrimitiveList/labels": ["a"]}})  # field absent: nothing happens
        assert out["metadata"] == {"name": "p", "finalizers": ["a", "b"]}
        assert smp(p, {"metadata": {"finalizers": None}})["metadata"] == {"name": "p"}

    def test_primitive_set_element_order(self) -> None:
        p = {"metadata": {"finalizers": ["a", "b", "c"]}}
        out = smp(p, {"metadata": {"$setElementOrder/finalizers": ["c", "a", "d"], "finalizers": ["d"], "$deleteFromPrimitiveList/finalizers": ["b"]}})
        assert out["metadata"]["finalizers"] == ["c", "a", "d"]

    def test_set_element_order(self) -> None:
        p = pod(containers=[{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}])
        out = smp(p, {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}})
        assert [c["name"] for c in out["spec"]["containers"]] == ["c", "b", "a"]
        out = smp(p, {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "new"}, {"name": "a"}],
            "containers": [{"name": "new", "image": "n"}, {"name": "a", "image": "x"}],
        }})
        assert out["spec"]["containers"] == [
            {"name": "b", "image": "2"}, {"name": "new", "image": "n"}, {"name": "a", "image": "x"}, {"name": "c", "image": "3"},
        ]

    def test_set_element_order_keeps_server_only_items_in_place(self) -> None:
        # Live env [A, B, D] where D was added by someone else; apply renames
        # B to C.  apimachinery edits the live list in place, which leaves D
        # before the new item C.
        p = pod(containers=[{"name": "a", "env": [{"name": "A"}, {"name": "B"}, {"name": "D"}]}])
        patch = {"spec": {"containers": [{
            "name": "a",
            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
        }]}}
        assert smp(p, patch)["spec"]["containers"][0]["env"] == [{"name": "A"}, {"name": "D"}, {"name": "C", "value": "3"}]

    def test_set_element_order_on_empty_list(self) -> None:
        # an empty live list is no list at all for Kubernetes (omitempty)
        p = {"metadata": {"finalizers": []}}
        assert smp(p, {"metadata": {"$setElementOrder/finalizers": ["a"]}}) == p
        out = smp(p, {"metadata": {"$setElementOrder/finalizers": ["b", "a"], "finalizers": ["b", "a"]}})
        assert out == {"metadata": {"finalizers": ["b", "a"]}}

    def test_set_element_order_mismatch(self) -> None:
        p = pod(containers=[{"name": "a"}, {"name": "b"}])
        e = smp_error(p, {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}],
        }})
        assert e.code == 500
        assert e.message == (
            "The order in patch list:\n[map[image:x name:b] map[image:y name:a]]\n doesn't match "
            "$setElementOrder list:\n[map[name:a] map[name:b]]\n"
        )

    @pytest.mark.parametrize(
        "patch,code,message",
        [
            ({"$setElementOrder": []}, 400, "invalid patch format of setElementOrder list"),
            ({"$setElementOrderX/containers": []}, 400, "invalid patch format of setElementOrder list"),
            ({"$deleteFromPrimitiveList": ["a"]}, 400, "invalid patch format of primitive list"),
            ({"$retainKeys": "containers"}, 400, "invalid patch format of retainKeys"),
            ({"$retainKeys": ["containers"], "restartPolicy": "Never"}, 400, "invalid patch format of retainKeys"),
            ({"$setElementOrder/containers": "a"}, 500, "expected a []interface {}, but received a string"),
            ({"initContainers": [[1]]}, 422, "lists of lists are not supported"),
            ({"containers": [{"name": "b"}, "c"]}, 500, "list element types are not identical: [[map[name:a]] [map[name:b] c]]"),
            ({"tolerations": [{"$patch": "replace"}], "$deleteFromPrimitiveList/tolerations": [{"key": "a"}]}, 500, "cannot merge lists without merge key for struct"),
        ],
    )
    def test_directive_errors(self, patch: dict, code: int, message: str) -> None:
        e = smp_error(pod(containers=[{"name": "a"}], initContainers=[], tolerations=[{"key": "a"}]), {"spec": patch})
        assert (e.code, e.detail) == (code, message)
        if code == 400:
            assert (e.reason, e.message) == ("BadRequest", message)
        if code == 422:
            assert (e.reason, e.message) == ("Invalid", "the server rejected our request due to an error in our request")

    def test_retain_keys(self) -> None:
        dep = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}}}
        out = smp(dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}, "Deployment")
        assert out["spec"]["strategy"] == {"type": "Recreate"}
        # without the directive a retainKeys field merges like any map
        out = smp(dep, {"spec": {"strategy": {"type": "Recreate"}}}, "Deployment")
        assert out["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}

    def test_retain_keys_in_merging_list(self) -> None:
        # a volume switched from emptyDir to configMap by kubectl apply
        p = pod(volumes=[{"name": "v", "emptyDir": {"medium": "Memory"}}, {"name": "w", "emptyDir": {}}])
        out = smp(p, {"spec": {
            "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "emptyDir": None, "name": "v"}],
        }})
        assert out["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}]

    def test_kubectl_apply_three_way_patch(self) -> None:
        # What client-side `kubectl apply` sends for a Deployment whose
        # manifest changed replicas, the strategy, an image, an env var (B
        # renamed C), dropped a label and added one.
        live = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "resourceVersion": "7",
                "labels": {"app": "web", "old": "x"},
                "annotations": {"deployment.kubernetes.io/revision": "1", "kubectl.kubernetes.io/last-applied-configuration": "{old}"},
            },
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "nginx:1",
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "terminationMessagePath": "/dev/termination-log",
                            },
                            {"name": "sidecar", "image": "envoy"},
                        ],
                        "restartPolicy": "Always",
                    },
                },
            },
            "status": {"replicas": 2},
        }
        patch = {
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{new}"},
                "labels": {"old": None, "tier": "fe"},
            },
            "spec": {
                "replicas": 3,
                "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                        "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                        "image": "nginx:2",
                        "name": "app",
                    }],
                }},
            },
        }
        out = smp(live, patch, "Deployment")
        assert out == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "resourceVersion": "7",
                "labels": {"app": "web", "tier": "fe"},
                "annotations": {"deployment.kubernetes.io/revision": "1", "kubectl.kubernetes.io/last-applied-configuration": "{new}"},
            },
            "spec": {
                "replicas": 3,
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "nginx:2",
                                "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "terminationMessagePath": "/dev/termination-log",
                            },
                            {"name": "sidecar", "image": "envoy"},
                        ],
                        "restartPolicy": "Always",
                    },
                },
            },
            "status": {"replicas": 2},
        }
        assert out["status"] is live["status"]
        assert out["spec"]["template"]["spec"]["containers"][1] is live["spec"]["template"]["spec"]["containers"][1]

    def test_kubectl_apply_creates_list(self) -> None:
        # first apply of a field the live object lacks: directives are consumed
        p = pod(restartPolicy="Always")
        out = smp(p, {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "1", "env": None}],
        }})
        assert out["spec"]["containers"] == [{"name": "b", "image": "2"}, {"name": "a", "image": "1"}]

    def test_new_values_are_cleaned(self) -> None:
        # values the original lacks go through removeDirectives, and lose what
        # decoding into the Go type would drop (nulls, directive keys)
        p = pod()
        out = smp(p, {"spec": {"containers": [
            {"name": "a", "image": None, "env": [{"name": "X", "$patch": "delete"}, {"name": "Y"}],
             "$setElementOrder/env": [{"name": "Y"}], "resources": {"$retainKeys": ["limits"], "limits": {"cpu": "1"}}},
        ]}})
        assert out["spec"]["containers"] == [{"name": "a", "env": [{"name": "Y"}], "resources": {"limits": {"cpu": "1"}}}]

    def test_appended_items_keep_nested_directive_items(self) -> None:
        # an item appended to a merging list is taken raw (decoding drops the
        # directive key but keeps the element)
        p = pod(containers=[{"name": "a"}])
        out = smp(p, {"spec": {"containers": [{"name": "b", "env": [{"name": "X", "$patch": "delete"}]}]}})
        assert out["spec"]["containers"] == [{"name": "b", "env": [{"name": "X"}]}, {"name": "a"}]

    def test_type_change_replaces(self) -> None:
        p = pod(nodeSelector={"a": "1"})
        assert smp(p, {"spec": {"nodeSelector": "x"}})["spec"]["nodeSelector"] == "x"
        assert smp(p, {"spec": {"nodeSelector": ["x"]}})["spec"]["nodeSelector"] == ["x"]

    def test_fields_without_schema_info(self) -> None:
        # unknown fields and map values: maps merge, lists are replaced
        p = {"spec": {"containers": [{"name": "a"}]}, "status": {"conditions": [{"type": "Ready"}, {"type": "X"}], "info": {"a": {"b": 1, "c": 2}}}}
        out = smp(p, {"status": {"conditions": [{"type": "Ready", "status": "True"}], "info": {"a": {"c": None, "d": 3}}}})
        assert out["status"] == {"conditions": [{"type": "Ready", "status": "True"}], "info": {"a": {"b": 1, "d": 3}}}
        out = smp({"x": {"y": [1, 2]}}, {"x": {"y": [3], "z": {"$patch": "delete"}}}, "Unknown")
        assert out == {"x": {"y": [3]}}

    def test_resource_maps_merge(self) -> None:
        p = pod(containers=[{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
        out = smp(p, {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "2", "memory": None}, "requests": {"cpu": "1"}}}]}})
        assert out["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "2"}, "requests": {"cpu": "1"}}

    def test_owner_references_merge_by_uid(self) -> None:
        p = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
        out = smp(p, {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "1"}, {"uid": "3", "name": "c"}]}})
        assert out["metadata"]["ownerReferences"] == [{"uid": "3", "name": "c"}, {"uid": "2", "name": "b"}]

    def test_empty_lists(self) -> None:
        p = pod(containers=[])
        assert smp(p, {"spec": {"containers": []}})["spec"]["containers"] == []
        assert smp(pod(containers=[{"name": "a"}]), {"spec": {"containers": []}})["spec"]["containers"] == [{"name": "a"}]

    def test_result_does_not_alias_patch(self) -> None:
        patch = {"spec": {"containers": [{"name": "b", "env": [{"name": "X"}]}], "nodeSelector": {"a": "1"}}}
        out = strategic_merge_patch(pod(containers=[{"name": "a"}]), patch, SCHEMA, "Pod")
        out["spec"]["containers"][0]["env"][0]["name"] = "changed"
        out["spec"]["nodeSelector"]["a"] = "changed"
        assert patch == {"spec": {"containers": [{"name": "b", "env": [{"name": "X"}]}], "nodeSelector": {"a": "1"}}}

    @pytest.mark.parametrize("patch,kind", [([1], "array"), ("x", "string"), (3, "number"), (True, "bool")])
    def test_patch_not_an_object(self, patch: object, kind: str) -> None:
        e = smp_error({}, patch)
        assert (e.code, e.message) == (400, f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")

    def test_null_patch(self) -> None:
        assert smp({"a": 1}, None) == {"a": 1}

    def test_pod_sized_patch_is_fast(self) -> None:
        live = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {
                "containers": [
                    {"name": f"c{i}", "image": "img", "env": [{"name": f"E{j}", "value": str(j)} for j in range(10)],
                     "ports": [{"containerPort": 8000 + i, "protocol": "TCP"}], "resources": {"limits": {"cpu": "1"}}}
                    for i in range(3)
                ],
                "volumes": [{"name": "v", "emptyDir": {}}, {"name": "cm", "configMap": {"name": "cm"}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "status": {"phase": "Running"},
        }
        patch = {
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}, "labels": {"a": None}},
            "spec": {
                "$setElementOrder/containers": [{"name": "c0"}, {"name": "c1"}, {"name": "c2"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": f"E{j}"} for j in range(10)] + [{"name": "N"}],
                    "env": [{"name": "E3", "value": "x"}, {"name": "N", "value": "n"}],
                    "image": "img2",
                    "name": "c1",
                }],
                "$setElementOrder/volumes": [{"name": "v"}, {"name": "cm"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm2"}, "name": "cm"}],
            },
        }
        strategic_merge_patch(live, patch, SCHEMA, "Pod")
        runs = 200
        start = time.perf_counter()
        for _ in range(runs):
            strategic_merge_patch(live, patch, SCHEMA, "Pod")
        assert (time.perf_counter() - start) / runs < 1e-3


# ==========================================================================
# with the real schema


@pytest.fixture(scope="module")
def real_schema():  # type: ignore[no-untyped-def]
    schema_mod = pytest.importorskip("k8py.api.schema")
    return schema_mod.load()


class TestRealSchema:
    def test_pod(self, real_schema) -> None:  # type: ignore[no-untyped-def]
        t = real_schema.type_for_kind("", "v1", "Pod")
        live = {
            "metadata": {"name": "p", "finalizers": ["a"]},
            "spec": {
                "containers": [{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}], "ports": [{"containerPort": 80}]}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "tolerations": [{"key": "k"}],
            },
        }
        patch = {
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "containers": [{"name": "a", "image": "2", "env": [{"name": "Y", "value": "2"}], "ports": [{"containerPort": 81}]}],
                "volumes": [{"$retainKeys": ["name", "hostPath"], "name": "v", "hostPath": {"path": "/x"}}],
                "tolerations": [{"key": "j"}],
            },
        }
        out = strategic_merge_patch(live, patch, real_schema, t)
        assert out == {
            "metadata": {"name": "p", "finalizers": ["b", "a"]},
            "spec": {
                "containers": [{
                    "name": "a",
                    "image": "2",
                    "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}],
                    "ports": [{"containerPort": 81}, {"containerPort": 80}],
                }],
                "volumes": [{"name": "v", "hostPath": {"path": "/x"}}],
                "tolerations": [{"key": "j"}],
            },
        }

    def test_deployment_strategy(self, real_schema) -> None:  # type: ignore[no-untyped-def]
        t = real_schema.type_for_kind("apps", "v1", "Deployment")
        live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}, "template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}
        out = strategic_merge_patch(
            live,
            {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}, "template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}}},
            real_schema,
            t,
        )
        assert out == {"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}}}

    def test_service_ports_merge_by_port(self, real_schema) -> None:  # type: ignore[no-untyped-def]
        t = real_schema.type_for_kind("", "v1", "Service")
        live = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "a"}}}
        out = strategic_merge_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}], "selector": {"tier": "fe"}}}, real_schema, t)
        assert out["spec"] == {
            "ports": [{"port": 80, "targetPort": 9090, "protocol": "TCP"}, {"port": 443}],
            "selector": {"app": "a", "tier": "fe"},
        }

    def test_configmap_data(self, real_schema) -> None:  # type: ignore[no-untyped-def]
        t = real_schema.type_for_kind("", "v1", "ConfigMap")
        out = strategic_merge_patch({"data": {"a": "1", "b": "2"}}, {"data": {"a": None, "c": "3"}}, real_schema, t)
        assert out == {"data": {"b": "2", "c": "3"}}


def test_status_json_roundtrip() -> None:
    e = PatchError(400, "invalid JSON patch")
    assert json.loads(json.dumps(e.status()))["reason"] == "BadRequest"
    assert repr(e) == "PatchError(400, 'invalid JSON patch')"
