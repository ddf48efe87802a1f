"""Endpoints and EndpointSlices end to end (real kubectl against ``k8py
server`` with hollow nodes): a Service's Endpoints and slices follow its
pods' readiness and deletion; selector-less Services are left alone."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

PREFIX = "ep-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.add_nodes(2, PREFIX, "--restart-backoff", "30")
        yield c
    finally:
        c.close()


def get(cluster: Cluster, *args: str, check: bool = True) -> dict:
    r = cluster.kubectl("get", *args, "-o", "json", check=check)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def apply(cluster: Cluster, *objs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def web_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "ports": [
                {"name": "http", "containerPort": 8080}]}]}}


def addresses(ep: dict, kind: str = "addresses") -> list[str]:
    return sorted(a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get(kind) or [])


def slice_endpoints(cluster: Cluster, svc: str) -> dict[str, dict]:
    items = get(cluster, "endpointslices", "-l", f"kubernetes.io/service-name={svc}")["items"]
    return {e["targetRef"]["name"]: e["conditions"] for s in items for e in s.get("endpoints") or []}


def test_endpoints_follow_pods(cluster: Cluster) -> None:
    apply(cluster, web_pod("web-a", f"{PREFIX}0"), web_pod("web-b", f"{PREFIX}1"),
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"tier": "front"}},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    ep = wait_for(lambda: (e := get(cluster, "endpoints", "web", check=False)) and
                  addresses(e) == ["web-a", "web-b"] and e, 30, what="both pods in the Endpoints")
    assert ep["metadata"]["labels"] == {"tier": "front"}
    # kube clears the trigger-time annotation on a write with no newer trigger (timestamps are whole seconds)
    trigger = (ep["metadata"].get("annotations") or {}).get("endpoints.kubernetes.io/last-change-trigger-time")
    assert trigger is None or trigger.endswith("Z")
    [subset] = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    nodes = {a["targetRef"]["name"]: a["nodeName"] for a in subset["addresses"]}
    assert nodes == {"web-a": f"{PREFIX}0", "web-b": f"{PREFIX}1"}
    out = cluster.kubectl("get", "endpoints", "web").stdout
    assert "web" in out and ":8080" in out

    [sl] = wait_for(lambda: (items := get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=web")["items"])
                    and len(items[0].get("endpoints") or []) == 2 and items, 30, what="a slice with both pods")
    assert sl["metadata"]["name"].startswith("web-")
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sl["metadata"]["labels"]["tier"] == "front"
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    for e in sl["endpoints"]:
        assert e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert e["nodeName"].startswith(PREFIX)
    assert "web-" in cluster.kubectl("get", "endpointslices").stdout

    # web-a's container crashes: it is no longer ready
    cluster.kubectl("annotate", "pod", "web-a", "hollow.k8py.io/fail=1")
    ep = wait_for(lambda: (e := get(cluster, "endpoints", "web")) and addresses(e, "notReadyAddresses") == ["web-a"]
                  and e, 30, what="web-a not ready")
    assert addresses(ep) == ["web-b"]
    wait_for(lambda: slice_endpoints(cluster, "web").get("web-a", {}).get("ready") is False, 30,
             what="web-a's slice endpoint not ready")

    # web-b is deleted: gone from the Endpoints, and from the slices once it has terminated
    cluster.kubectl("delete", "pod", "web-b", "--wait=false")
    wait_for(lambda: addresses(get(cluster, "endpoints", "web")) == [], 30, what="web-b gone from Endpoints")
    wait_for(lambda: "web-b" not in slice_endpoints(cluster, "web"), 30, what="web-b gone from slices")

    # the Service goes: its Endpoints and slices go with it
    cluster.kubectl("delete", "service", "web")
    wait_for(lambda: cluster.kubectl("get", "endpoints", "web", check=False).returncode != 0, 30,
             what="Endpoints deleted")
    wait_for(lambda: not get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=web")["items"], 30,
             what="slices deleted")


def test_service_without_pods_has_placeholder_slice(cluster: Cluster) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                    "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]}})
    ep = wait_for(lambda: get(cluster, "endpoints", "empty", check=False), 30, what="empty Endpoints")
    assert not ep.get("subsets")
    [sl] = wait_for(lambda: get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=empty")["items"], 30,
                    what="placeholder slice")
    assert not sl.get("endpoints")


def test_selectorless_service_endpoints_left_alone(cluster: Cluster) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                    "spec": {"ports": [{"port": 80}]}},
          {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
           "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]})
    import time
    time.sleep(2)
    ep = get(cluster, "endpoints", "ext")
    assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]
    assert not get(cluster, "endpointslices", "-l", "kubernetes.io/service-name=ext")["items"]
