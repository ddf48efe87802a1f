"""Bad input gets a clear Kubernetes Status with the right HTTP code, and
nothing is stored — on both storage backends."""

from __future__ import annotations

import pytest

from .conftest import Raw

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def api(any_server):
    return Raw(any_server)


def status_of(code, body, expect_code, reason):
    assert code == expect_code, body
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["code"] == expect_code and body["status"] == "Failure"
    assert body["reason"] == reason, body
    assert body["message"]
    return body


def stored_names(api, path=CM):
    code, body = api("GET", path)
    assert code == 200
    return {i["metadata"]["name"] for i in body["items"]}


def test_not_found(api):
    status_of(*api("GET", CM + "/nope"), 404, "NotFound")
    b = status_of(*api("POST", "/api/v1/namespaces/missing/configmaps",
                       {"metadata": {"name": "x"}, "data": {}}), 404, "NotFound")
    assert b["message"] == 'namespaces "missing" not found'
    status_of(*api("GET", "/api/v1/nonsense"), 404, "NotFound")


def test_already_exists_and_conflict(api):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}, "data": {"a": "1"}}
    code, created = api("POST", CM, obj)
    assert code == 201 and created["metadata"]["resourceVersion"]
    b = status_of(*api("POST", CM, obj), 409, "AlreadyExists")
    assert b["message"] == 'configmaps "dup" already exists'
    assert b["details"] == {"name": "dup", "kind": "configmaps"}
    stale = dict(created, data={"a": "2"})
    code, updated = api("PUT", CM + "/dup", stale)
    assert code == 200 and updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    b = status_of(*api("PUT", CM + "/dup", dict(created, data={"a": "3"})), 409, "Conflict")
    assert "the object has been modified" in b["message"]
    code, now = api("GET", CM + "/dup")
    assert now["data"] == {"a": "2"}


def test_invalid_with_causes(api):
    b = status_of(*api("POST", CM, {"metadata": {"name": "Bad_Name"}}), 422, "Invalid")
    assert b["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    assert b["details"]["causes"][0]["field"] == "metadata.name"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    b = status_of(*api("POST", "/api/v1/namespaces/default/pods", pod), 422, "Invalid")
    assert "spec.containers[0].image: Required value" in b["message"]
    status_of(*api("POST", CM, {"metadata": {"labels": {"a": "b"}}}), 422, "Invalid")
    assert "Bad_Name" not in stored_names(api)


def test_malformed_bodies(api):
    b = status_of(*api("POST", CM, b'{"metadata": {"name": "x"'), 400, "BadRequest")
    assert "json" in b["message"].lower()
    status_of(*api("POST", CM, b"metadata: [unclosed", content_type="application/yaml"), 400, "BadRequest")
    code, _ = api("POST", CM, b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n",
                  content_type="application/yaml")
    assert code == 201
    status_of(*api("POST", CM, b"<xml/>", content_type="application/xml"), 415, "UnsupportedMediaType")
    assert "x" not in stored_names(api)


def test_kind_and_namespace_mismatch(api):
    b = status_of(*api("POST", CM, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k1"}}),
                  400, "BadRequest")
    assert "Secret" in b["message"]
    b = status_of(*api("POST", CM, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "k2"}}),
                  400, "BadRequest")
    b = status_of(*api("POST", CM, {"metadata": {"name": "k3", "namespace": "kube-system"}}), 400, "BadRequest")
    assert "does not match the namespace" in b["message"]
    names = stored_names(api)
    assert not {"k1", "k2", "k3"} & names


def test_unknown_fields_strict(api):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict1"}, "dta": {"a": "1"}}
    b = status_of(*api("POST", CM + "?fieldValidation=Strict", obj), 400, "BadRequest")
    assert 'unknown field "dta"' in b["message"]
    assert "strict1" not in stored_names(api)
    code, _ = api("POST", CM + "?fieldValidation=Ignore", dict(obj, metadata={"name": "lenient"}))
    assert code == 201


def test_body_too_large(api):
    big = {"metadata": {"name": "big"}, "data": {"a": "x" * (3 * 1024 * 1024 + 10)}}
    status_of(*api("POST", CM, big), 413, "RequestEntityTooLarge")
    assert "big" not in stored_names(api)


def test_unauthorized(any_server):
    anon = Raw(any_server, anonymous=True)
    status_of(*anon("GET", CM), 401, "Unauthorized")
    status_of(*anon("POST", CM, {"metadata": {"name": "anon"}}), 401, "Unauthorized")


def test_bad_list_parameters(api):
    # (410 Expired after compaction is in test_durability.py)
    status_of(*api("GET", CM + "?limit=1&continue=garbage!"), 400, "BadRequest")
    status_of(*api("GET", CM + "?resourceVersion=abc"), 400, "BadRequest")
    status_of(*api("GET", CM + "?resourceVersionMatch=Exact"), 400, "BadRequest")
    status_of(*api("GET", CM + "?labelSelector=a%20in%20("), 400, "BadRequest")
    status_of(*api("GET", CM + "?fieldSelector=data.x%3Dy"), 400, "BadRequest")


def test_dry_run_stores_nothing(api):
    code, body = api("POST", CM + "?dryRun=All", {"metadata": {"name": "dry"}, "data": {"a": "1"}})
    assert code == 201 and body["metadata"]["name"] == "dry"
    assert "dry" not in stored_names(api)
    status_of(*api("POST", CM + "?dryRun=Some", {"metadata": {"name": "dry2"}}), 400, "BadRequest")
