"""Object semantics through the API, checked with plain HTTPS requests:
namespaces' lifecycle, graceful pod deletion, finalizers, preconditions,
binding and eviction, generation, selectors, watch transitions, conversion."""

from __future__ import annotations

import json
import threading
import time

import pytest

from .conftest import Raw

PODS = "/api/v1/namespaces/{ns}/pods"


def pod(name, labels=None, node=""):
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


@pytest.fixture(scope="module")
def api(server):
    a = Raw(server)
    for ns in ("sem", "sem2"):
        code, _ = a("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        assert code == 201
    return a


def test_namespace_lifecycle(api):
    code, ns = api("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    assert code == 201 and ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "doomed"
    code, _ = api("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "c"}})
    assert code == 201
    code, ns = api("DELETE", "/api/v1/namespaces/doomed")
    assert code == 200 and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    code, body = api("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "d"}})
    assert code == 403 and body["reason"] == "Forbidden" and "being terminated" in body["message"]
    code, _ = api("GET", "/api/v1/namespaces/doomed")
    assert code == 200
    # the namespace controller (a later issue) empties it and calls /finalize
    ns["spec"]["finalizers"] = []
    code, _ = api("PUT", "/api/v1/namespaces/doomed/finalize", ns)
    assert code == 200
    code, _ = api("GET", "/api/v1/namespaces/doomed")
    assert code == 404
    code, body = api("DELETE", "/api/v1/namespaces/kube-system")
    assert code == 403


def test_graceful_pod_deletion_and_binding(api):
    p = PODS.format(ns="sem")
    code, _ = api("POST", p, pod("graceful"))
    assert code == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "graceful"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    code, body = api("POST", p + "/graceful/binding", binding)
    assert code == 201, body
    code, got = api("GET", p + "/graceful")
    assert got["spec"]["nodeName"] == "node-a"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    code, body = api("POST", p + "/graceful/binding", binding)
    assert code == 409
    code, deleting = api("DELETE", p + "/graceful", {"gracePeriodSeconds": 20})
    assert code == 200 and deleting["metadata"]["deletionGracePeriodSeconds"] == 20
    assert deleting["metadata"]["deletionTimestamp"]
    code, _ = api("GET", p + "/graceful")
    assert code == 200  # still there until the kubelet confirms
    code, _ = api("DELETE", p + "/graceful", {"gracePeriodSeconds": 0})
    assert code == 200
    code, _ = api("GET", p + "/graceful")
    assert code == 404
    # an unscheduled pod goes at once
    api("POST", p, pod("unscheduled"))
    code, _ = api("DELETE", p + "/unscheduled")
    assert code == 200 and api("GET", p + "/unscheduled")[0] == 404


def test_finalizers_and_preconditions(api):
    cm = "/api/v1/namespaces/sem/configmaps"
    code, obj = api("POST", cm, {"metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})
    assert code == 201
    code, body = api("DELETE", cm + "/fin", {"preconditions": {"uid": "wrong"}})
    assert code == 409 and "Precondition failed: UID in precondition" in body["message"]
    code, body = api("DELETE", cm + "/fin", {"preconditions": {"uid": obj["metadata"]["uid"]}})
    assert code == 200 and body["metadata"]["deletionTimestamp"]
    code, body = api("PATCH", cm + "/fin", {"metadata": {"finalizers": ["example.com/hold", "new.io/x"]}},
                     content_type="application/merge-patch+json")
    assert code == 422 and "no new finalizers" in body["message"]
    code, body = api("PATCH", cm + "/fin", {"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")
    assert code == 200
    assert api("GET", cm + "/fin")[0] == 404


def test_generation_and_status(api):
    d = "/apis/apps/v1/namespaces/sem/deployments"
    dep = {"metadata": {"name": "gen"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    code, obj = api("POST", d, dep)
    assert code == 201 and obj["metadata"]["generation"] == 1
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                                   "maxSurge": "25%"}}
    code, obj = api("PATCH", d + "/gen", {"metadata": {"labels": {"x": "y"}}},
                    content_type="application/merge-patch+json")
    assert obj["metadata"]["generation"] == 1
    code, obj = api("PATCH", d + "/gen", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert obj["metadata"]["generation"] == 2
    rv = obj["metadata"]["resourceVersion"]
    code, same = api("PATCH", d + "/gen", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert same["metadata"]["resourceVersion"] == rv  # a no-op write stores nothing


def test_eviction_respects_pdb(api):
    p = PODS.format(ns="sem2")
    api("POST", p, pod("guarded", {"app": "guarded"}, node="n1"))
    api("PATCH", p + "/guarded/status", {"status": {"phase": "Running"}},
        content_type="application/merge-patch+json")
    code, pdb = api("POST", "/apis/policy/v1/namespaces/sem2/poddisruptionbudgets",
                    {"metadata": {"name": "pdb"}, "spec": {"minAvailable": 1,
                                                           "selector": {"matchLabels": {"app": "guarded"}}}})
    assert code == 201
    ev = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "guarded", "namespace": "sem2"}}
    code, body = api("POST", p + "/guarded/eviction", ev)
    assert code == 429 and body["reason"] == "TooManyRequests"
    api("PATCH", "/apis/policy/v1/namespaces/sem2/poddisruptionbudgets/pdb/status",
        {"status": {"disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}},
        content_type="application/merge-patch+json")
    code, body = api("POST", p + "/guarded/eviction", ev)
    assert code == 201, body
    code, pdb = api("GET", "/apis/policy/v1/namespaces/sem2/poddisruptionbudgets/pdb")
    assert pdb["status"]["disruptionsAllowed"] == 0 and "guarded" in pdb["status"]["disruptedPods"]
    assert api("GET", p + "/guarded")[0] == 200  # deleting gracefully (it is on a node)
    code, body = api("GET", p + "/guarded")
    assert body["metadata"]["deletionTimestamp"]
    # a second budget-protected pod cannot use the disruption the first one spent
    api("POST", p, pod("guarded2", {"app": "guarded"}, node="n1"))
    api("PATCH", p + "/guarded2/status", {"status": {"phase": "Running"}},
        content_type="application/merge-patch+json")
    ev2 = dict(ev, metadata={"name": "guarded2", "namespace": "sem2"})
    code, body = api("POST", p + "/guarded2/eviction", ev2)
    assert code == 429


def test_selectors(api):
    p = PODS.format(ns="sem2")
    api("POST", p, pod("s1", {"tier": "web", "env": "prod"}, node="n1"))
    api("POST", p, pod("s2", {"tier": "db", "env": "prod"}, node="n2"))
    api("POST", p, pod("s3", {"tier": "web"}))

    def names(q):
        code, body = api("GET", p + "?" + q)
        assert code == 200, body
        return sorted(i["metadata"]["name"] for i in body["items"] if i["metadata"]["name"].startswith("s"))

    assert names("labelSelector=tier%3Dweb") == ["s1", "s3"]
    assert names("labelSelector=tier%3D%3Dweb,env") == ["s1"]
    assert names("labelSelector=tier!%3Dweb") == ["s2"]
    assert names("labelSelector=tier+in+(web,db),!env") == ["s3"]
    assert names("labelSelector=tier+notin+(web)") == ["s2"]
    assert names("fieldSelector=spec.nodeName%3Dn2") == ["s2"]
    assert names("fieldSelector=spec.nodeName%3D") == ["s3"]
    assert names("fieldSelector=status.phase%3DPending,metadata.name!%3Ds1") == ["s2", "s3"]
    code, body = api("GET", p + "?fieldSelector=spec.bogus%3Dx")
    assert code == 400 and "field label not supported" in body["message"]
    code, body = api("GET", p + "?labelSelector=a+in+(")
    assert code == 400
    code, body = api("GET", "/api/v1/pods?labelSelector=tier%3Dweb&resourceVersion=0")
    assert code == 200 and len([i for i in body["items"] if i["metadata"]["name"] in ("s1", "s3")]) == 2


def test_watch_selector_transitions_and_bookmarks(api, server):
    cm = "/api/v1/namespaces/sem2/configmaps"
    events: list[dict] = []
    import urllib3
    import os
    tls = os.path.join(server.data_dir, "tls")
    http = urllib3.PoolManager(ca_certs=os.path.join(tls, "ca.crt"), cert_file=os.path.join(tls, "admin.crt"),
                               key_file=os.path.join(tls, "admin.key"))

    def run():
        r = http.request("GET", server.url + cm + "?watch=1&labelSelector=color%3Dblue&timeoutSeconds=5"
                         "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
                         preload_content=False)
        buf = b""
        for chunk in r.stream(1024):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                events.append(json.loads(line))

    api("POST", cm, {"metadata": {"name": "pre", "labels": {"color": "blue"}}})
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    api("POST", cm, {"metadata": {"name": "tw", "labels": {"color": "red"}}})
    api("PATCH", cm + "/tw", {"metadata": {"labels": {"color": "blue"}}}, content_type="application/merge-patch+json")
    api("PATCH", cm + "/tw", {"data": {"k": "v"}}, content_type="application/merge-patch+json")
    api("PATCH", cm + "/tw", {"metadata": {"labels": {"color": "green"}}}, content_type="application/merge-patch+json")
    t.join(10)
    seq = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
    assert seq[0] == ("ADDED", "pre")
    assert seq[1][0] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert seq[2:5] == [("ADDED", "tw"), ("MODIFIED", "tw"), ("DELETED", "tw")]


def test_deletecollection(api):
    cm = "/api/v1/namespaces/sem2/configmaps"
    for i in range(3):
        api("POST", cm, {"metadata": {"name": f"dc{i}", "labels": {"batch": "x"}}})
    code, body = api("DELETE", cm + "?labelSelector=batch%3Dx")
    assert code == 200 and len(body["items"]) == 3
    code, body = api("GET", cm + "?labelSelector=batch%3Dx")
    assert body["items"] == []


def test_hpa_versions_share_storage(api):
    v1 = "/apis/autoscaling/v1/namespaces/sem/horizontalpodautoscalers"
    code, obj = api("POST", v1, {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 60}})
    assert code == 201, obj
    code, v2 = api("GET", "/apis/autoscaling/v2/namespaces/sem/horizontalpodautoscalers/h")
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    code, back = api("GET", v1 + "/h")
    assert back["spec"]["targetCPUUtilizationPercentage"] == 60


def test_events_both_apis(api):
    code, ev = api("POST", "/api/v1/namespaces/sem/events", {
        "metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "sem"},
        "reason": "Started", "message": "hello", "type": "Normal", "source": {"component": "test"}})
    assert code == 201, ev
    code, new = api("GET", "/apis/events.k8s.io/v1/namespaces/sem/events/e1")
    assert code == 200 and new["note"] == "hello" and new["regarding"]["name"] == "p"
    code, body = api("GET", "/api/v1/namespaces/sem/events?fieldSelector=involvedObject.name%3Dp")
    assert [i["metadata"]["name"] for i in body["items"]] == ["e1"]


def test_table_and_partial_metadata(api):
    acc = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    code, t = api("GET", "/api/v1/namespaces", headers=acc)
    assert t["kind"] == "Table" and [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    code, pm = api("GET", "/api/v1/namespaces/default",
                   headers={"Accept": "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"})
    assert pm["kind"] == "PartialObjectMetadata" and pm["metadata"]["name"] == "default"


def test_service_ip_and_node_port_allocation(api):
    svc = "/api/v1/namespaces/sem/services"
    code, a = api("POST", svc, {"metadata": {"name": "np"}, "spec": {
        "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
    assert code == 201, a
    ip, node_port = a["spec"]["clusterIP"], a["spec"]["ports"][0]["nodePort"]
    assert ip.startswith("10.43.") and a["spec"]["clusterIPs"] == [ip]
    assert 30000 <= node_port <= 32767
    code, body = api("POST", svc, {"metadata": {"name": "dup-ip"}, "spec": {
        "clusterIP": ip, "ports": [{"port": 80}]}})
    assert code == 422 and "already allocated" in body["message"]
    code, body = api("POST", svc, {"metadata": {"name": "off-range"}, "spec": {
        "clusterIP": "192.168.1.1", "ports": [{"port": 80}]}})
    assert code == 422 and "not in the valid range" in body["message"]
    code, headless = api("POST", svc, {"metadata": {"name": "headless"}, "spec": {
        "clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
    assert code == 201 and headless["spec"]["clusterIPs"] == ["None"]
    # the address is free again once its Service is gone
    assert api("DELETE", svc + "/np")[0] == 200
    code, again = api("POST", svc, {"metadata": {"name": "reuse"}, "spec": {
        "clusterIP": ip, "ports": [{"port": 80}]}})
    assert code == 201, again
