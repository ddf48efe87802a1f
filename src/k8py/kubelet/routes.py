"""host-gw: every other node's podCIDR routed to that node, as flannel's host-gw backend does.

    HostGwRoutes(client, "n1", "10.42.0.0/16").run()

For every other Node with a podCIDR inside the cluster CIDR and an
InternalIP of the same family, this node keeps

    ip route replace <podCIDR> via <InternalIP> proto 107

in its main table, and deletes routes of that protocol that no Node asks
for any more (a node deleted, its podCIDR or address changed).  The routes
carry their own protocol number (``ROUTE_PROTO``, 107, free in iproute2's
rt_protos), so the manager only ever touches routes it made: an operator's
static route to the same prefix stays (ours then fails and is logged).
Nodes need to share a link for this (the next hop must be on-link; the
kernel refuses anything else), which is exactly host-gw's limitation.

Routes are left in place when the kubelet stops (a restarting kubelet must
not cut its pods off from the cluster; flannel leaves them too); they are
re-read and corrected at start, and every ``resync`` seconds in case
someone removed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from typing import Any

from ..client.informer import Informer
from ..client.rest import Client, resource
from ..netutil import is_ip
from . import execute

log = logging.getLogger(__name__)

ROUTE_PROTO = 107
NODES = resource("nodes")
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _pod_cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def _internal_ips(node: dict[str, Any]) -> list[str]:
    return [a["address"] for a in (node.get("status") or {}).get("addresses") or ()
            if a.get("type") == "InternalIP" and a.get("address")]


def desired_routes(nodes: list[dict[str, Any]], own_name: str, cluster_cidrs: list[Net],
                   own_ips: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    """{podCIDR: next hop} for every other node (pure: the informer's nodes in, routes out)."""
    out: dict[str, str] = {}
    for node in nodes:
        if node["metadata"]["name"] == own_name:
            continue
        ips = [ipaddress.ip_address(i) for i in _internal_ips(node) if is_ip(i)]
        for cidr in _pod_cidrs(node):
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                continue
            if not any(net.version == c.version and net.subnet_of(c) for c in cluster_cidrs):  # type: ignore[arg-type]
                continue  # never route anything outside the pod network
            via = next((str(i) for i in ips if i.version == net.version and str(i) not in own_ips), None)
            if via is not None:
                out[str(net)] = via
    return out


async def _ip(*args: str) -> tuple[int, str]:
    rc, out, err = await execute.run(["ip", *args], timeout=10)
    return rc, (out if rc == 0 else err).decode(errors="replace").strip()


async def current_routes(version: int = 4) -> dict[str, str]:
    """{dst: gateway} of the routes with our protocol number in the main table."""
    rc, out = await _ip("-j", f"-{version}", "route", "show", "table", "main", "proto", str(ROUTE_PROTO))
    if rc != 0:
        raise OSError(f"ip route show: {out}")
    routes: dict[str, str] = {}
    for r in json.loads(out or "[]"):
        dst = r.get("dst", "")
        if dst and dst != "default":
            if "/" not in dst:
                dst += "/32" if version == 4 else "/128"
            routes[dst] = r.get("gateway", "")
    return routes


async def remove_all() -> int:
    """Deletes every route of ours (cleanup, e.g. when a node leaves for good); returns how many."""
    n = 0
    for v in (4, 6):
        for dst in await current_routes(v):
            rc, _ = await _ip(f"-{v}", "route", "del", dst, "table", "main", "proto", str(ROUTE_PROTO))
            n += rc == 0
    return n


MASQ_TABLE = "k8py-hostgw"


async def node_subnet(node_ip: str) -> str:
    """The prefix of the link that carries the node's InternalIP (the nodes' shared link, which
    host-gw needs): pods route it through their bridge so that they can answer node addresses
    (NodePorts and health checks arrive from them); "" when no local address is the node IP."""
    rc, out = await _ip("-j", "addr", "show")
    if rc != 0:
        return ""
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info") or ():
            if a.get("local") == node_ip and a.get("prefixlen") is not None:
                return str(ipaddress.ip_interface(f"{node_ip}/{a['prefixlen']}").network)
    return ""


async def ensure_masquerade(cluster_cidrs: list[Net]) -> None:
    """Pod traffic to anything outside the pod network leaves with the node's address (flannel's
    --ip-masq): the other end has no route back to pod addresses, and must not answer them
    through its own default route. One nftables table of ours, replaced whole."""
    rules = "".join(f"    ip saddr {c} ip daddr != {c} masquerade\n" for c in cluster_cidrs if c.version == 4)
    script = (f"table ip {MASQ_TABLE} {{}}\ndelete table ip {MASQ_TABLE}\n"
              f"table ip {MASQ_TABLE} {{\n  chain postrouting {{\n"
              f"    type nat hook postrouting priority srcnat + 10; policy accept;\n{rules}  }}\n}}\n")
    rc, out, err = await execute.run(["nft", "-f", "-"], input=script.encode(), timeout=10)
    if rc != 0:
        log.warning("host-gw: cannot install the masquerade table: %s", err.decode(errors="replace").strip())


class HostGwRoutes:
    """Keeps this node's routes to the other nodes' podCIDRs (started by the kubelet)."""

    def __init__(self, client: Client, node_name: str, cluster_cidr: str, *, resync: float = 30.0) -> None:
        self.client = client
        self.node_name = node_name
        self.cluster_cidrs: list[Net] = [ipaddress.ip_network(c.strip()) for c in cluster_cidr.split(",")
                                         if c.strip()]
        self.resync = resync
        self.informer = Informer(client, NODES)
        self.informer.add_handler(self._poke, self._updated, self._poke)
        self._dirty = asyncio.Event()
        self.routes: dict[str, str] = {}  # what the last sync left in place
        self.syncs = 0

    def _poke(self, *_: Any) -> None:
        self._dirty.set()

    def _updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Heartbeats rewrite every Node's status every few seconds: only an address or CIDR change counts."""
        if (_pod_cidrs(old), _internal_ips(old)) != (_pod_cidrs(new), _internal_ips(new)):
            self._dirty.set()

    def desired(self) -> dict[str, str]:
        own = self.informer.store.get_by(None, self.node_name)
        own_ips = set(_internal_ips(own)) if own else set()
        return desired_routes(list(self.informer.store.list()), self.node_name, self.cluster_cidrs, own_ips)

    async def sync(self) -> None:
        want = self.desired()
        have: dict[str, str] = {}
        for v in sorted({c.version for c in self.cluster_cidrs}):
            have.update(await current_routes(v))
        for dst, via in sorted(want.items()):
            if have.get(dst) == via:
                continue
            rc, err = await _ip("route", "replace", dst, "via", via, "table", "main", "proto", str(ROUTE_PROTO))
            if rc == 0:
                log.info("host-gw: route %s via %s", dst, via)
            else:
                log.warning("host-gw: cannot route %s via %s: %s", dst, via, err)
        for dst in sorted(set(have) - set(want)):
            rc, err = await _ip("route", "del", dst, "table", "main", "proto", str(ROUTE_PROTO))
            if rc == 0:
                log.info("host-gw: route %s (via %s) removed: no node has it", dst, have[dst])
            else:
                log.warning("host-gw: cannot remove route %s: %s", dst, err)
        self.routes = want
        self.syncs += 1

    async def run(self) -> None:
        self.informer.start()
        try:
            await ensure_masquerade(self.cluster_cidrs)
            await self.informer.synced.wait()
            while True:
                self._dirty.clear()
                try:
                    await self.sync()
                except Exception:  # noqa: BLE001 - keep the loop; the next change or resync retries
                    log.exception("host-gw: sync failed")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), self.resync)
                await asyncio.sleep(0.2)  # a burst of node updates: one sync
        finally:
            await self.informer.stop()
