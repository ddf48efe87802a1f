"""taint-eviction-controller: toleration arithmetic, immediate and delayed
eviction, cancellation when the taint goes."""

from __future__ import annotations

import asyncio

from k8py.controllers.taintmanager import TaintEvictionController, toleration_time, tolerates
from tests.controllers.fakeapi import pod, put
from tests.controllers.nodefakes import Clock, node, node_context

UNREACH = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "T"}


def tol(seconds: int | None = None, key: str = "node.kubernetes.io/unreachable", **kw: str) -> dict:
    t = {"key": key, "operator": "Exists", "effect": "NoExecute", **kw}
    if seconds is not None:
        t["tolerationSeconds"] = seconds
    return t


def test_toleration_matching():
    assert tolerates({"operator": "Exists"}, UNREACH)
    assert tolerates({"key": UNREACH["key"], "operator": "Exists"}, UNREACH)
    assert not tolerates({"key": UNREACH["key"], "operator": "Exists", "effect": "NoSchedule"}, UNREACH)
    assert tolerates({"key": "k", "value": "v", "effect": "NoExecute"}, {"key": "k", "value": "v",
                                                                          "effect": "NoExecute"})
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"})


def test_toleration_time():
    assert toleration_time([], [UNREACH]) == 0
    assert toleration_time([tol()], [UNREACH]) is None
    assert toleration_time([tol(300), tol(20, key="")], [UNREACH]) == 20
    other = {"key": "x", "effect": "NoExecute"}
    assert toleration_time([tol(300)], [UNREACH, other]) == 0


def make():
    ctx, client = node_context()
    clock = Clock()
    c = TaintEvictionController(ctx, clock=clock)
    return c, ctx, client, clock


def test_untolerated_pod_is_evicted_at_once():
    c, ctx, client, clock = make()
    put(ctx, "nodes", node("a", taints=[UNREACH]))
    put(ctx, "pods", pod("p", node="a"))
    asyncio.run(c.sync("default/p"))
    assert [(v, r) for v, r, _ in client.calls] == [("patch/status", "pods"), ("delete", "pods")]
    cond = client.calls[0][2][1]["status"]["conditions"][-1]
    assert (cond["type"], cond["reason"]) == ("DisruptionTarget", "DeletionByTaintManager")
    assert ("Normal", "TaintManagerEviction", "Marking for deletion Pod default/p") in ctx._recorders.events


def test_tolerating_pod_waits_its_seconds_then_goes():
    c, ctx, client, clock = make()
    put(ctx, "nodes", node("a", taints=[UNREACH]))
    put(ctx, "pods", pod("p", node="a", tolerations=[tol(30)]), pod("forever", node="a", tolerations=[tol()]))

    async def scenario():
        await c.sync("default/p")
        await c.sync("default/forever")
        assert client.calls == [] and "default/p" in c.queue._due
        clock.t += 30
        await c.sync("default/p")
        await c.sync("default/forever")
    asyncio.run(scenario())
    assert [(v, x) for v, _, x in client.calls if v == "delete"] == [("delete", "default/p")]


def test_taint_removed_cancels():
    c, ctx, client, clock = make()
    put(ctx, "nodes", node("a", taints=[UNREACH]))
    put(ctx, "pods", pod("p", node="a", tolerations=[tol(30)]))
    asyncio.run(c.sync("default/p"))
    put(ctx, "nodes", node("a"))
    assert "default/p" in c.queue._queue or "default/p" in c.queue._dirty
    clock.t += 60
    asyncio.run(c.sync("default/p"))
    assert client.calls == []
    assert ("Normal", "TaintManagerEviction", "Cancelling deletion of Pod default/p") in ctx._recorders.events
