"""The server answers as Kubernetes does: version, discovery, health,
authentication."""

from __future__ import annotations

import json

from .conftest import Raw


def test_kubectl_version(server):
    out = json.loads(server.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == "32"
    assert out["serverVersion"]["gitVersion"].startswith("v1.32")


def test_api_versions_and_resources(server):
    versions = server.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "coordination.k8s.io/v1",
               "events.k8s.io/v1", "discovery.k8s.io/v1", "networking.k8s.io/v1", "policy/v1",
               "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1", "scheduling.k8s.io/v1"):
        assert gv in versions
    out = server.kubectl("api-resources", "-o", "wide").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "po" in lines["pods"].split() and "all" in lines["pods"]
    assert "deploy" in lines["deployments"].split()
    assert "false" in lines["nodes"].split() and "Node" in lines["nodes"]
    names = server.kubectl("api-resources", "--namespaced=true", "-o", "name").stdout.split()
    assert "pods" in names and "namespaces" not in names
    assert "deployments.apps" in names


def test_health_and_anonymous(server):
    anon = Raw(server, anonymous=True)
    for path in ("/healthz", "/livez", "/readyz"):
        code, body = anon("GET", path)
        assert code == 200 and body == b"ok"
    code, body = anon("GET", "/version")
    assert code == 200 and body["major"] == "1"
    code, body = anon("GET", "/api/v1/namespaces")
    assert code == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and body["code"] == 401


def test_get_raw(server):
    out = json.loads(server.kubectl("get", "--raw", "/api/v1/namespaces/default").stdout)
    assert out["kind"] == "Namespace" and out["status"]["phase"] == "Active"


def test_initial_namespaces(server):
    out = server.kubectl("get", "namespaces", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in out


def test_kubectl_127_works(server):
    out = server.kubectl("get", "ns", "default", "-o", "jsonpath={.metadata.name}", version="1.27").stdout
    assert out == "default"
