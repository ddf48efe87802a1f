"""node-lifecycle: conditions Unknown after the grace period, taints from
conditions, pods marked not ready, zone disruption withholding NoExecute."""

from __future__ import annotations

import asyncio

from k8py.controllers.nodelifecycle import (NOT_READY, UNREACHABLE, NodeLifecycleController, desired_taints,
                                            merged_taints, unknown_conditions)
from tests.controllers.fakeapi import pod, put
from tests.controllers.nodefakes import Clock, node, node_context


def make(*nodes: dict):
    ctx, client = node_context()
    clock = Clock()
    c = NodeLifecycleController(ctx, clock=clock)
    put(ctx, "nodes", *nodes)
    return c, ctx, client, clock


def test_unknown_conditions_keep_heartbeat_and_add_missing():
    n = node("a")
    n["status"]["conditions"] = n["status"]["conditions"][1:]  # no MemoryPressure
    conds = {c["type"]: c for c in unknown_conditions(n, "NOW")}
    assert conds["Ready"]["status"] == "Unknown" and conds["Ready"]["reason"] == "NodeStatusUnknown"
    assert conds["Ready"]["message"] == "Kubelet stopped posting node status."
    assert conds["Ready"]["lastHeartbeatTime"] == "2024-01-01T00:00:00Z"
    assert conds["Ready"]["lastTransitionTime"] == "NOW"
    assert conds["MemoryPressure"]["reason"] == "NodeStatusNeverUpdated"
    n["status"]["conditions"] = list(conds.values())
    assert unknown_conditions(n, "LATER") is None


def test_taints_follow_conditions():
    assert desired_taints(node("a"), True) == (set(), None)
    assert desired_taints(node("a", ready="False"), True) == ({NOT_READY}, NOT_READY)
    assert desired_taints(node("a", ready="Unknown", unschedulable=True), True) == (
        {UNREACHABLE, "node.kubernetes.io/unschedulable"}, UNREACHABLE)
    assert desired_taints(node("a", ready="Unknown"), False) == ({UNREACHABLE}, None)
    user = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    got = merged_taints([user], {UNREACHABLE}, UNREACHABLE, False, "NOW")
    assert got == [user, {"key": UNREACHABLE, "effect": "NoSchedule"},
                   {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "NOW"}]
    assert merged_taints(got, {UNREACHABLE}, UNREACHABLE, False, "LATER") is None
    # not-ready replaces unreachable; ready removes both, keeps the user's
    swapped = merged_taints(got, {NOT_READY}, NOT_READY, False, "T")
    assert [(t["key"], t["effect"]) for t in swapped] == [("dedicated", "NoSchedule"), (NOT_READY, "NoSchedule"),
                                                         (NOT_READY, "NoExecute")]
    assert merged_taints(swapped, set(), None, False, "T") == [user]


def test_healthy_node_is_left_alone_until_its_deadline():
    c, ctx, client, clock = make(node("a"), node("b"))
    asyncio.run(c.sync("a"))
    assert client.calls == []
    assert "a" in c.queue._due  # looked at again when the grace period would end


def test_lost_node_goes_unknown_tainted_and_its_pods_not_ready():
    c, ctx, client, clock = make(node("a"), node("b"), node("c"))
    put(ctx, "pods", pod("p1", node="a"), pod("p2", node="b"))
    c.compute_zones()
    put(ctx, "leases.coordination.k8s.io",
        {"metadata": {"name": "b", "namespace": "kube-node-lease"}, "spec": {}})
    clock.t += 41
    put(ctx, "leases.coordination.k8s.io",
        {"metadata": {"name": "b", "namespace": "kube-node-lease", "resourceVersion": "99"}, "spec": {}})
    asyncio.run(c.sync("b"))
    assert client.calls == []  # its lease was renewed
    asyncio.run(c.sync("a"))
    verbs = [(v, r) for v, r, _ in client.calls]
    assert verbs == [("update/status", "nodes"), ("patch/status", "pods"), ("update", "nodes")]
    status = {x["type"]: x["status"] for x in client.calls[0][2]["status"]["conditions"]}
    assert set(status.values()) == {"Unknown"}
    key, body = client.calls[1][2]
    assert key == "default/p1"
    assert body["status"]["conditions"][0]["status"] == "False"
    taints = client.calls[2][2]["spec"]["taints"]
    assert [(t["key"], t["effect"]) for t in taints] == [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
    events = ctx._recorders.events  # type: ignore[attr-defined]
    assert ("Normal", "NodeNotReady", "Node a status is now: NodeNotReady") in events
    assert ("Warning", "NodeNotReady", "Node is not ready") in events


def test_back_from_the_dead_untaints():
    tainted = [{"key": UNREACHABLE, "effect": "NoSchedule"},
               {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "T"}]
    c, ctx, client, clock = make(node("a", taints=tainted), node("b"))
    asyncio.run(c.sync("a"))
    assert client.calls[0][0] == "update" and "taints" not in client.calls[0][2]["spec"]


def test_every_node_down_withholds_no_execute():
    c, ctx, client, clock = make(node("a", ready="Unknown"), node("b", ready="Unknown"))
    c.compute_zones()
    assert c.all_down
    asyncio.run(c.sync("a"))
    taints = client.calls[-1][2]["spec"]["taints"]
    assert [(t["key"], t["effect"]) for t in taints] == [(UNREACHABLE, "NoSchedule")]


def test_new_no_execute_taints_are_rate_limited_per_zone():
    c, ctx, client, clock = make(node("a", ready="False"), node("b", ready="False"), *(
        node(f"ok{i}") for i in range(5)))
    c.compute_zones()
    asyncio.run(c.sync("a"))
    asyncio.run(c.sync("b"))
    tainted = {call[2]["metadata"]["name"]: [t["effect"] for t in call[2]["spec"]["taints"]]
               for call in client.calls if call[0] == "update"}
    assert tainted == {"a": ["NoSchedule", "NoExecute"], "b": ["NoSchedule"]}
    assert "b" in c.queue._due  # retried when the zone's limiter allows (10 s at 0.1 node/s)
