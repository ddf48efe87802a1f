"""Quota accounting (api/quota.py), the admission check's messages and the
resourcequota controller's status computation."""

from __future__ import annotations

import asyncio

import pytest

from k8py.api import quota
from k8py.api.registry import REGISTRY
from k8py.apiserver import errors
from k8py.apiserver.quota import check
from k8py.controllers.resourcequota import ResourceQuotaController, compute_status
from tests.controllers.fakeapi import make_context, pod, put, service

PODS = REGISTRY.lookup("", "v1", "pods")


def with_resources(p: dict, requests: dict | None = None, limits: dict | None = None) -> dict:
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    p["spec"]["containers"][0]["resources"] = res
    return p


def rq(hard: dict, used: dict | None = None, scopes: list | None = None, name: str = "q") -> dict:
    q = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": "default"},
         "spec": {"hard": hard}}
    if scopes:
        q["spec"]["scopes"] = scopes
    if used is not None:
        q["status"] = {"hard": hard, "used": used}
    return q


def test_pod_usage_sums_containers_and_init_peak():
    p = with_resources(pod("a"), {"cpu": "100m", "memory": "64Mi"}, {"cpu": "200m"})
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "300m", "memory": "64Mi"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}]
    u = quota.to_strings(quota.pod_usage(p))
    assert u == {"count/pods": "1", "pods": "1", "cpu": "1", "requests.cpu": "1", "memory": "128Mi",
                 "requests.memory": "128Mi", "limits.cpu": "200m"}
    assert quota.to_strings(quota.pod_usage(pod("b", phase="Succeeded"))) == {"count/pods": "1"}


def test_scopes():
    be = pod("a")
    nbe = with_resources(pod("b"), {"cpu": "1"})
    term = pod("c", activeDeadlineSeconds=30)
    ev = quota.PODS
    assert ev.matches(rq({"pods": "1"}, scopes=["BestEffort"]), be, ["pods"])
    assert not ev.matches(rq({"pods": "1"}, scopes=["BestEffort"]), nbe, ["pods"])
    assert ev.matches(rq({"pods": "1"}, scopes=["Terminating"]), term, ["pods"])
    assert not ev.matches(rq({"pods": "1"}, scopes=["Terminating"]), be, ["pods"])
    hi = pod("d", priorityClassName="high")
    q = rq({"pods": "1"})
    q["spec"]["scopeSelector"] = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In",
                                                        "values": ["high"]}]}
    assert ev.matches(q, hi, ["pods"]) and not ev.matches(q, be, ["pods"])
    # a scoped quota never matches kinds without scopes
    assert not quota.SERVICES.matches(rq({"services": "1"}, scopes=["BestEffort"]), service(), ["services"])


def test_constraints_message():
    p = with_resources(pod("a"), {"cpu": "1"})
    p["spec"]["initContainers"] = [{"name": "init"}]
    msg = quota.PODS.constraints(["pods", "requests.cpu", "limits.cpu", "limits.memory"], p)
    assert msg == "must specify limits.cpu for: c,init; limits.memory for: c,init; requests.cpu for: init"
    assert quota.PODS.constraints(["pods"], p) is None


def test_exceeded_message():
    q = rq({"pods": "2", "requests.cpu": "1"}, {"pods": "2", "requests.cpu": "500m"})
    delta = quota.pod_usage(with_resources(pod("p"), {"cpu": "100m"}))
    with pytest.raises(errors.APIError) as e:
        check(q, delta, PODS, "p")
    assert e.value.code == 403
    assert e.value.message == ('pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, '
                               'limited: pods=2')
    q = rq({"pods": "3", "requests.cpu": "1"}, {"pods": "2", "requests.cpu": "500m"})
    assert quota.to_strings(check(q, delta, PODS, "p")) == {
        "pods": "3", "requests.cpu": "600m"}


def test_service_and_generic_usage():
    np = service(type="NodePort", ports=[{"port": 80}, {"port": 81}])
    assert quota.to_strings(quota.SERVICES.usage(np))["services.nodeports"] == "2"
    lb = service(type="LoadBalancer")
    assert quota.to_strings(quota.SERVICES.usage(lb))["services.loadbalancers"] == "1"
    cm = quota.evaluator_for("", "configmaps")
    assert quota.to_strings(cm.usage({})) == {"configmaps": "1", "count/configmaps": "1"}
    dep = quota.evaluator_for("apps", "deployments")
    assert dep.matching_resources(["count/deployments.apps", "pods"]) == ["count/deployments.apps"]
    assert quota.resource_of("count/deployments.apps") == ("apps", "deployments")
    assert quota.resource_of("requests.memory") == ("", "pods")


def test_compute_status():
    pods = [with_resources(pod("a"), {"cpu": "250m", "memory": "64Mi"}),
            with_resources(pod("b"), {"cpu": "250m", "memory": "64Mi"}),
            with_resources(pod("c", phase="Failed"), {"cpu": "1"})]
    objs = {("", "pods"): pods, ("", "services"): [service()], ("", "configmaps"): [{}, {}]}
    st = compute_status(rq({"pods": "10", "requests.cpu": "2", "requests.memory": "1Gi", "services": "5",
                            "configmaps": "3", "count/pods": "20", "secrets": "4"}),
                        lambda g, p: objs.get((g, p), []))
    assert st["used"] == {"configmaps": "2", "count/pods": "3", "pods": "2", "requests.cpu": "500m",
                          "requests.memory": "128Mi", "secrets": "0", "services": "1"}
    assert st["hard"]["pods"] == "10"


def test_controller_writes_status_once():
    ctx, client = make_context()
    c = ResourceQuotaController(ctx)
    ctx.informers.informer("pods").synced.set()
    ctx.informers.informer("services").synced.set()
    put(ctx, "pods", pod("a"), pod("b"))
    put(ctx, "resourcequotas", rq({"pods": "5"}))
    asyncio.run(c.sync("default/q"))
    [(verb, plural, q)] = client.calls
    assert (verb, plural) == ("update/status", "resourcequotas")
    assert q["status"] == {"hard": {"pods": "5"}, "used": {"pods": "2"}}
    client.calls.clear()
    put(ctx, "resourcequotas", q)
    asyncio.run(c.sync("default/q"))
    assert client.calls == []
