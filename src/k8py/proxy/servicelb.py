"""A built-in service load balancer, as k3s's ServiceLB (klipper-lb) is:
a Service of type LoadBalancer gets the nodes' addresses as its
``status.loadBalancer.ingress``, and every node's proxy accepts traffic to
those addresses on the Service's port (proxier.py puts them in the
``service-ips`` map like any load-balancer VIP).

Where it runs: inside ``k8py proxy``, under the Lease
``kube-system/k8py-servicelb``, so with one proxy per node exactly one of
them writes statuses (the others wait as candidates and take over when the
holder goes).  k3s runs its controller in the server; the proxy is the one
component present on every node here, and the Lease keeps it single.

Addresses, as k3s picks them: every Ready node's ExternalIP addresses, or
its InternalIP ones when it has none.  Services with a
``spec.loadBalancerClass`` belong to another implementation and are left
alone."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from ..client.informer import Informer
from ..client.rest import APIError, Client, resource

log = logging.getLogger(__name__)
SERVICES = resource("services")

Obj = dict[str, Any]


def node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def node_addresses(node: Obj) -> list[str]:
    addrs = (node.get("status") or {}).get("addresses") or ()
    ext = [a["address"] for a in addrs if a.get("type") == "ExternalIP" and a.get("address")]
    return ext or [a["address"] for a in addrs if a.get("type") == "InternalIP" and a.get("address")]


def desired_ingress(nodes: list[Obj]) -> list[Obj]:
    ips: set[str] = set()
    for n in nodes:
        if node_ready(n):
            ips.update(node_addresses(n))
    ordered = sorted(ips, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))
    return [{"ip": ip, "ipMode": "VIP"} for ip in ordered]


def wants_servicelb(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class ServiceLB:
    """Keeps the ingress of every LoadBalancer Service equal to
    :func:`desired_ingress` of the current nodes."""

    def __init__(self, client: Client, services: Informer, nodes: Informer):
        self.client = client
        self.services, self.nodes = services, nodes
        self._event = asyncio.Event()
        for inf in (services, nodes):
            inf.add_handler(lambda o: self._event.set(), lambda a, b: self._event.set(), lambda o: self._event.set())

    async def sync_once(self) -> int:
        """Write every status that differs; the number written."""
        want = desired_ingress(self.nodes.store.list())
        written = 0
        for svc in self.services.store.list():
            if not wants_servicelb(svc):
                continue
            lb = (svc.get("status") or {}).get("loadBalancer") or {}
            if (lb.get("ingress") or []) == want:
                continue
            obj = dict(svc)
            obj["status"] = dict(svc.get("status") or {}, loadBalancer=dict(lb, ingress=want))
            try:
                await self.client.update_status(SERVICES, obj)
                written += 1
            except APIError as e:  # a conflict or a deletion: the informer brings the news, then we retry
                log.info("servicelb: status of %s/%s: %s", svc["metadata"].get("namespace"),
                         svc["metadata"]["name"], e)
                self._event.set()
        return written

    async def run(self) -> None:
        while True:
            await self._event.wait()
            self._event.clear()
            try:
                await self.sync_once()
            except OSError as e:
                log.warning("servicelb: %s", e)
                self._event.set()
            # coalesce bursts; after a failed write, give the informer time to bring the newer object
            await asyncio.sleep(1.0 if self._event.is_set() else 0.05)
