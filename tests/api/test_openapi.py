"""OpenAPI v3 / v2 documents served by k8py."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import pytest

from k8py.api import openapi
from k8py.api.registry import REGISTRY

V3_REF = "#/components/schemas/"


def gv_keys() -> list[str]:
    keys = []
    for r in REGISTRY.resources:
        k = f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"
        if k not in keys:
            keys.append(k)
    return keys


def doc(key: str) -> dict[str, Any]:
    data = openapi.openapi_document(key)
    assert data is not None, key
    return json.loads(data)


def refs(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                out.append(v)
            else:
                out += refs(v)
    elif isinstance(node, list):
        for v in node:
            out += refs(v)
    return out


def test_index_lists_every_group_version_with_hash():
    index = json.loads(openapi.openapi_index())
    assert sorted(index["paths"]) == sorted(gv_keys())
    for key, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        h = url.split("hash=", 1)[1]
        assert h == hashlib.sha512(openapi.openapi_document(key)).hexdigest().upper()
        assert openapi.document_hash(key) == h


def test_index_is_stable():
    assert openapi.openapi_index() is openapi.openapi_index()
    assert openapi.openapi_document("/openapi/v3/api/v1?hash=x") == openapi.openapi_document("api/v1")
    assert openapi.openapi_document("apis/nope/v1") is None


@pytest.mark.parametrize("key", gv_keys())
def test_documents_are_valid_and_refs_resolve(key):
    d = doc(key)
    assert d["openapi"].startswith("3.0")
    schemas = d["components"]["schemas"]
    for ref in refs(d):
        assert ref.startswith(V3_REF), ref
        assert ref[len(V3_REF):] in schemas, ref
    for name, s in schemas.items():
        for fname, prop in s.get("properties", {}).items():
            if "$ref" in prop:
                assert len(prop) == 1, f"{name}.{fname}: $ref with siblings must use allOf"


@pytest.mark.parametrize("r", REGISTRY.resources, ids=lambda r: f"{r.api_version}/{r.kind}")
def test_kinds_have_gvk_and_paths(r):
    key = f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"
    d = doc(key)
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    assert any(gvk in s.get("x-kubernetes-group-version-kind", []) for s in d["components"]["schemas"].values())
    base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    ops = [op for path in (coll, coll + "/{name}") for m, op in d["paths"].get(path, {}).items()
           if m != "parameters"]
    assert ops, coll
    assert all(op["x-kubernetes-group-version-kind"] == gvk for op in ops)
    for op in ops:
        if op["x-kubernetes-action"] in ("post", "put", "patch"):
            names = {(p["name"], p["in"]) for p in op["parameters"]}
            assert {("fieldValidation", "query"), ("dryRun", "query"), ("fieldManager", "query")} <= names


def test_pod_paths_and_patch_operation():
    d = doc("api/v1")
    paths = d["paths"]
    for p in ("/api/v1/namespaces/{namespace}/pods", "/api/v1/namespaces/{namespace}/pods/{name}",
              "/api/v1/pods", "/api/v1/watch/namespaces/{namespace}/pods",
              "/api/v1/namespaces/{namespace}/pods/{name}/status",
              "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
              "/api/v1/namespaces/{namespace}/pods/{name}/binding",
              "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale",
              "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
              "/api/v1/namespaces/{namespace}/bindings", "/api/v1/nodes/{name}"):
        assert p in paths, p
    patch = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    assert patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == V3_REF + "io.k8s.api.core.v1.Pod"
    lst = paths["/api/v1/namespaces/{namespace}/pods"]["get"]
    assert lst["x-kubernetes-action"] == "list"
    assert lst["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == V3_REF + "io.k8s.api.core.v1.PodList"
    scale = paths["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    evict = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert evict["x-kubernetes-group-version-kind"]["kind"] == "Eviction"
    assert "io.k8s.api.policy.v1.Eviction" in d["components"]["schemas"]
    assert "io.k8s.api.autoscaling.v1.Scale" in d["components"]["schemas"]
    # binding resource only allows create
    assert list(k for k in paths["/api/v1/namespaces/{namespace}/bindings"] if k != "parameters") == ["post"]


def test_patch_metadata_in_components():
    schemas = doc("api/v1")["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": V3_REF + "io.k8s.api.core.v1.Container"}
    strategy = doc("apis/apps/v1")["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["allOf"] == [{"$ref": V3_REF + "io.k8s.api.apps.v1.DeploymentStrategy"}]
    q = schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert "type" not in q and q["oneOf"]


def test_both_hpa_and_event_versions():
    v1 = doc("apis/autoscaling/v1")["components"]["schemas"]
    v2 = doc("apis/autoscaling/v2")["components"]["schemas"]
    assert v1["io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"]["x-kubernetes-group-version-kind"] == [
        {"group": "autoscaling", "kind": "HorizontalPodAutoscaler", "version": "v1"}]
    assert "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler" in v2
    assert "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler" not in v1
    assert "io.k8s.api.events.v1.Event" in doc("apis/events.k8s.io/v1")["components"]["schemas"]
    assert "io.k8s.api.core.v1.Event" in doc("api/v1")["components"]["schemas"]


def test_serve_v3_headers():
    status, headers, body = openapi.serve_v3("")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == openapi.openapi_index()
    h = openapi.document_hash("apis/apps/v1")
    status, headers, body = openapi.serve_v3("/apis/apps/v1", h)
    assert status == 200 and body == openapi.openapi_document("apis/apps/v1")
    assert headers["Cache-Control"] == "public, immutable"
    assert headers["ETag"] == f'"{h}"' and "Expires" in headers
    status, headers, _ = openapi.serve_v3("apis/apps/v1", "stale")
    assert status == 301 and headers["Location"] == f"/openapi/v3/apis/apps/v1?hash={h}"
    status, headers, _ = openapi.serve_v3("apis/apps/v1")
    assert status == 200 and "Cache-Control" not in headers
    assert openapi.serve_v3("apis/apps/v1", None, f'"{h}"')[0] == 304
    assert openapi.serve_v3("apis/nope/v1")[0] == 404


# --------------------------------------------------------------------------- v2


def test_v2_json_is_valid_swagger():
    d = json.loads(openapi.openapi_v2_json())
    assert d["swagger"] == "2.0"
    defs = d["definitions"]
    for ref in refs(d):
        assert ref.startswith("#/definitions/") and ref[len("#/definitions/"):] in defs, ref
    patch = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "description": defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["description"],
        "format": "int-or-string", "type": "string"}


def _pb_fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message level: [(field, wiretype, value)]."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.append((num, wire, varint()))
        elif wire == 1:
            out.append((num, wire, struct.unpack("<d", data[i:i + 8])[0]))
            i += 8
        elif wire == 2:
            n = varint()
            out.append((num, wire, data[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    assert i == len(data)
    return out


def test_v2_protobuf_structure():
    top = _pb_fields(openapi.openapi_v2_protobuf())
    assert (1, 2, b"2.0") in top
    definitions = [v for n, _, v in top if n == 9]
    assert len(definitions) == 1
    names = {}
    for _, _, named in _pb_fields(definitions[0]):
        fields = dict((n, v) for n, _, v in _pb_fields(named))
        names[fields[1].decode()] = fields[2]
    assert "io.k8s.api.core.v1.Pod" in names
    pod = _pb_fields(names["io.k8s.api.core.v1.Pod"])
    exts = [dict((n, v) for n, _, v in _pb_fields(v)) for n, _, v in pod if n == 31]
    gvk = [e for e in exts if e[1] == b"x-kubernetes-group-version-kind"]
    assert gvk
    yaml_text = dict((n, v) for n, _, v in _pb_fields(gvk[0][2]))[2].decode()
    assert json.loads(yaml_text) == [{"group": "", "kind": "Pod", "version": "v1"}]
    paths = [v for n, _, v in top if n == 8]
    assert len(paths) == 1 and len(_pb_fields(paths[0])) == len(json.loads(openapi.openapi_v2_json())["paths"])


def test_serve_v2_negotiation():
    pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    status, headers, body = openapi.serve_v2(pb)
    assert status == 200 and body == openapi.openapi_v2_protobuf()
    assert headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    status, headers, body = openapi.serve_v2("application/json")
    assert status == 200 and headers["Content-Type"] == "application/json" and body == openapi.openapi_v2_json()
    assert openapi.serve_v2(None)[0] == 200
    assert openapi.serve_v2("text/html")[0] == 406
    etag = openapi.openapi_v2_etag()
    assert openapi.serve_v2(pb, f'"{etag}"')[0] == 304
