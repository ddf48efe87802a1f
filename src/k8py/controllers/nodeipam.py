"""The node-ipam controller (kube's range allocator): every node gets
``spec.podCIDR``/``spec.podCIDRs``, a subnet of ``--cluster-cidr`` of size
``--node-cidr-mask-size``.

The allocation map is local: rebuilt from the nodes' existing podCIDRs as
the informer lists them (before any sync runs), marked on assignment,
freed when a node is deleted.  Candidates are tried round robin from the
last one given, as kube's cidrset does."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from ..client.controller import Controller
from ..client.rest import APIError, resource
from .context import ControllerContext, register

log = logging.getLogger(__name__)
NODES = resource("nodes")
Obj = dict[str, Any]


class CIDRSet:
    """Subnets of one cluster CIDR, each free or used."""

    def __init__(self, cluster_cidr: str, mask: int):
        self.net = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask < self.net.prefixlen or mask > self.net.max_prefixlen:
            raise ValueError(f"node CIDR mask /{mask} does not fit in {self.net}")
        if mask - self.net.prefixlen > 24:
            raise ValueError(f"/{mask} subnets of {self.net}: too many")
        self.mask = mask
        self.size = 1 << (mask - self.net.prefixlen)
        self._step = 1 << (self.net.max_prefixlen - mask)
        self._used = bytearray(self.size)
        self._next = 0
        self.count = 0

    def _index(self, cidr: str) -> int | None:
        try:
            sub = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if sub.version != self.net.version or sub.prefixlen != self.mask or not sub.subnet_of(self.net):
            return None
        return (int(sub.network_address) - int(self.net.network_address)) // self._step

    def _cidr(self, i: int) -> str:
        addr = ipaddress.ip_address(int(self.net.network_address) + i * self._step)
        return f"{addr}/{self.mask}"

    def allocate(self) -> str | None:
        if self.count >= self.size:
            return None
        i = self._next
        for _ in range(self.size):
            if not self._used[i]:
                self._used[i] = 1
                self.count += 1
                self._next = (i + 1) % self.size
                return self._cidr(i)
            i = (i + 1) % self.size
        return None

    def occupy(self, cidr: str) -> bool:
        i = self._index(cidr)
        if i is None:
            return False
        if not self._used[i]:
            self._used[i] = 1
            self.count += 1
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None and self._used[i]:
            self._used[i] = 0
            self.count -= 1


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


@register("node-ipam")
class NodeIPAMController(Controller):
    name = "node-ipam"
    workers = 4

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.enabled = ctx.options.allocate_node_cidrs
        self.recorder = ctx.recorder("node-controller")
        self.cidrs = CIDRSet(ctx.options.cluster_cidr, ctx.options.node_cidr_mask_size)
        self.assigned: dict[str, str] = {}  # node -> the CIDR this controller gave, until seen
        self.nodes = ctx.informers.informer("nodes")
        if self.enabled:
            self.nodes.add_handler(self._on_add, lambda old, new: self._on_add(new), self._on_delete)

    def _on_add(self, node: Obj) -> None:
        have = pod_cidrs(node)
        for c in have:
            self.cidrs.occupy(c)
        if not have:
            self.enqueue(node["metadata"]["name"])

    def _on_delete(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for c in pod_cidrs(node):
            self.cidrs.release(c)
        given = self.assigned.pop(name, None)
        if given and given not in pod_cidrs(node):
            self.cidrs.release(given)

    async def sync(self, key: Any) -> None:
        name = str(key)
        node = self.nodes.store.get(name)
        if node is None or pod_cidrs(node):
            self.assigned.pop(name, None)
            return
        if name in self.assigned:  # given; the informer has not shown it yet
            return
        cidr = self.cidrs.allocate()
        if cidr is None:
            self.recorder.normal(_ref(node), "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            raise RuntimeError(f"no CIDR left in {self.cidrs.net} for node {name}")
        try:
            await self.client.patch(NODES, name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except APIError as e:
            self.cidrs.release(cidr)
            if e.code == 404:
                return
            self.recorder.warning(_ref(node), "CIDRAssignmentFailed", f"Node {name} status is now: "
                                  "CIDRAssignmentFailed")
            raise
        self.assigned[name] = cidr
        log.debug("node %s: podCIDR %s", name, cidr)


def _ref(node: Obj) -> Obj:
    """Node events name the node as its UID too, as kube's node controllers do."""
    name = node["metadata"]["name"]
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": name}}
