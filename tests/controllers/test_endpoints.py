"""Endpoints and EndpointSlice controllers: fill the caches, run one sync,
compare the writes."""

from __future__ import annotations

import asyncio

from k8py.controllers.endpoints import EndpointsController, compute_subsets
from k8py.controllers.endpointslice import (CONTROLLER_NAME, MANAGED_BY, SERVICE_NAME, EndpointSliceController,
                                            desired_endpoints, reconcile)
from tests.controllers.fakeapi import make_context, pod, put, service


def run(coro):
    return asyncio.run(coro)


def test_subsets_ready_not_ready_and_named_ports():
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [pod("a", ip="10.42.0.2", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
            pod("b", ip="10.42.0.3", ready=False, ports=[{"name": "web", "containerPort": 8080}]),
            pod("c", ip="10.42.0.4", ports=[{"name": "web", "containerPort": 9090}]),
            pod("d", ip=None), pod("e", ip="10.42.0.6", phase="Succeeded"),
            pod("f", ip="10.42.0.7", deleting=True, ports=[{"name": "web", "containerPort": 8080}]),
            pod("g", ip="10.42.0.8")]  # no port named web: left out
    subsets, ready, not_ready = compute_subsets(svc, pods)
    assert (ready, not_ready) == (2, 1)
    assert subsets == [
        {"addresses": [{"ip": "10.42.0.2", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}],
         "notReadyAddresses": [{"ip": "10.42.0.3", "nodeName": "n1",
                                "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
        {"addresses": [{"ip": "10.42.0.4", "nodeName": "n1",
                        "targetRef": {"kind": "Pod", "namespace": "default", "name": "c", "uid": "uid-c"}}],
         "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}]},
    ]


def test_publish_not_ready_and_hostname():
    svc = service(publishNotReadyAddresses=True)
    p = pod("a", ready=False, hostname="h0", subdomain="web")
    subsets, ready, not_ready = compute_subsets(svc, [p])
    assert (ready, not_ready) == (1, 0)
    assert subsets[0]["addresses"][0]["hostname"] == "h0"


def test_sync_creates_then_is_quiet_then_updates():
    ctx, client = make_context()
    c = EndpointsController(ctx)
    put(ctx, "services", service())
    put(ctx, "pods", pod("a"))
    run(c.sync("default/web"))
    [(verb, plural, ep)] = client.calls
    assert (verb, plural) == ("create", "endpoints")
    assert ep["metadata"]["labels"] == {"tier": "front"}
    assert ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] == "2024-01-01T00:00:00Z"
    assert ep["subsets"][0]["addresses"][0]["ip"] == "10.42.0.5"
    put(ctx, "endpoints", ep)
    client.calls.clear()
    run(c.sync("default/web"))
    assert client.calls == []
    put(ctx, "pods", pod("a", ready=False))
    run(c.sync("default/web"))
    [(verb, _, ep2)] = client.calls
    assert verb == "update" and "addresses" not in ep2["subsets"][0]


def test_selectorless_service_left_alone_and_deleted_service_deletes():
    ctx, client = make_context()
    c = EndpointsController(ctx)
    svc = service(selector=None)
    del svc["spec"]["selector"]
    put(ctx, "services", svc)
    run(c.sync("default/web"))
    assert client.calls == []
    run(c.sync("default/gone"))
    assert client.calls == [("delete", "endpoints", "default/gone")]


def test_pod_events_enqueue_matching_services_only():
    ctx, _ = make_context()
    c = EndpointsController(ctx)
    put(ctx, "services", service("web"), service("db", selector={"app": "db"}))
    while len(c.queue):
        c.queue._queue.popleft()
    c.queue._dirty.clear()
    put(ctx, "pods", pod("a"))
    assert list(c.queue._queue) == ["default/web"]


def _slices(client):
    return [o for v, p, o in client.calls if v in ("create", "update") and p == "endpointslices"]


def test_slices_conditions_and_labels():
    ctx, client = make_context()
    c = EndpointSliceController(ctx)
    put(ctx, "nodes", {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}}})
    put(ctx, "services", service())
    put(ctx, "pods", pod("a", ip="10.42.0.2"), pod("b", ip="10.42.0.3", ready=False),
        pod("t", ip="10.42.0.4", deleting=True))
    run(c.sync("default/web"))
    [s] = _slices(client)
    md = s["metadata"]
    assert md["generateName"] == "web-"
    assert md["labels"] == {"tier": "front", SERVICE_NAME: "web", MANAGED_BY: CONTROLLER_NAME}
    assert md["ownerReferences"][0]["kind"] == "Service" and md["ownerReferences"][0]["controller"]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    eps = {e["targetRef"]["name"]: e for e in s["endpoints"]}
    assert eps["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert eps["t"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert eps["a"]["zone"] == "z1" and eps["a"]["nodeName"] == "n1"


def test_slices_max_per_slice_and_minimal_churn():
    svc = service()
    pods = [pod(f"p{i}", ip=f"10.42.{i // 200}.{i % 200 + 1}") for i in range(250)]
    desired = desired_endpoints(svc, pods, lambda n: None, "IPv4")
    plan = reconcile(svc, [], desired, "IPv4")
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    existing = []
    for i, s in enumerate(plan.create):
        s = dict(s, metadata=dict(s["metadata"], name=f"web-{i}", resourceVersion="5"))
        existing.append(s)
    # one pod goes away, one new pod comes: one slice updated, nothing created
    pods2 = pods[1:] + [pod("new", ip="10.42.9.9")]
    plan = reconcile(svc, existing, desired_endpoints(svc, pods2, lambda n: None, "IPv4"), "IPv4")
    assert not plan.create and not plan.delete
    [u] = plan.update
    assert u["metadata"]["name"] == "web-0" and len(u["endpoints"]) == 100
    assert {e["targetRef"]["name"] for e in u["endpoints"]} >= {"new"}
    # nothing changed: nothing to do
    plan = reconcile(svc, existing, desired, "IPv4")
    assert not plan.create and not plan.update and not plan.delete


def test_placeholder_slice_when_no_endpoints():
    svc = service()
    plan = reconcile(svc, [], {}, "IPv4")
    [p] = plan.create
    assert p["endpoints"] == [] and p["ports"] == []
    existing = [dict(p, metadata=dict(p["metadata"], name="web-x"))]
    plan = reconcile(svc, existing, {}, "IPv4")
    assert not plan.create and not plan.update and not plan.delete
    # endpoints appear: the placeholder goes, a real slice comes
    desired = desired_endpoints(svc, [pod("a")], lambda n: None, "IPv4")
    plan = reconcile(svc, existing, desired, "IPv4")
    assert len(plan.create) == 1 and [s["metadata"]["name"] for s in plan.delete] == ["web-x"]


def test_slice_sync_waits_for_own_writes():
    ctx, client = make_context()
    c = EndpointSliceController(ctx)
    put(ctx, "services", service())
    put(ctx, "pods", pod("a"))
    run(c.sync("default/web"))
    assert len(_slices(client)) == 1
    client.calls.clear()

    async def again():
        await c.sync("default/web")  # the cache has not seen the created slice: no second create
        c.queue.shutdown()
    run(again())
    assert _slices(client) == []
