"""node-ipam: CIDR set arithmetic, and one sync giving a node its podCIDR."""

from __future__ import annotations

import asyncio

import pytest

from k8py.controllers.nodeipam import CIDRSet, NodeIPAMController
from tests.controllers.fakeapi import put
from tests.controllers.nodefakes import node, node_context


def test_cidrset_round_robin_occupy_release():
    s = CIDRSet("10.42.0.0/22", 24)
    assert s.occupy("10.42.1.0/24")
    assert s.allocate() == "10.42.0.0/24"
    assert s.allocate() == "10.42.2.0/24"
    assert s.allocate() == "10.42.3.0/24"
    assert s.allocate() is None
    s.release("10.42.1.0/24")
    assert s.allocate() == "10.42.1.0/24"
    assert not s.occupy("10.43.0.0/24") and not s.occupy("10.42.0.0/25")


def test_cidrset_rejects_bad_mask():
    with pytest.raises(ValueError):
        CIDRSet("10.42.0.0/16", 8)


def test_sync_assigns_next_free_cidr_once():
    ctx, client = node_context()
    c = NodeIPAMController(ctx)
    put(ctx, "nodes", node("a", cidr="10.42.0.0/24"), node("b"))
    assert list(c.queue._queue) == ["b"]
    asyncio.run(c.sync("b"))
    assert client.calls == [("patch", "nodes", ("b", {"spec": {"podCIDR": "10.42.1.0/24",
                                                                "podCIDRs": ["10.42.1.0/24"]}}))]
    asyncio.run(c.sync("b"))  # the informer has not shown it yet: no second CIDR
    assert len(client.calls) == 1


def test_deleted_node_frees_its_cidr():
    ctx, client = node_context()
    c = NodeIPAMController(ctx)
    put(ctx, "nodes", node("a", cidr="10.42.0.0/24"))
    inf = ctx.informers.informer("nodes")
    old = inf.store.remove("a")
    for h in inf.handlers:
        h.on_delete(old)
    put(ctx, "nodes", node("b"))
    asyncio.run(c.sync("b"))
    assert client.calls[0][2][1]["spec"]["podCIDR"] == "10.42.0.0/24"  # free again
    assert c.cidrs.count == 1
