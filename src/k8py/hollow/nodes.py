"""The node half of a hollow kubelet, for all the nodes of one process:
registration, Lease renewal and node status heartbeats, podCIDRs.

Renewals are spread evenly over the 10 s period by one timer task (node i
in slot i % 100), so 1,000 nodes cost ten small writes every 100 ms and no
task per node.  Node status follows kubelet's rule: checked every
nodeStatusUpdateFrequency (10 s) and written only when the conditions in
the API are not the ones this kubelet reports (e.g. the node-lifecycle
controller set them Unknown), or nodeStatusReportFrequency (5 min) passed.

``hollow.k8py.io/heartbeat: stopped`` on a Node stops its Lease and status
(node loss); removing it brings the node back."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from typing import Any, Callable

from ..client.informer import Informer
from ..client.rest import APIError, Client, resource
from ..client.timeutil import now_micro, now_rfc3339
from .node import (ANNOTATION_HEARTBEAT, LEASE_DURATION, LEASE_NAMESPACE, NODE_IP_BASE, NodeConfig, conditions,
                   conditions_healthy, internal_ip, lease_object, node_object, transitions_of)
from .podips import PodIPs

log = logging.getLogger(__name__)
NODES = resource("nodes")
LEASES = resource("leases.coordination.k8s.io")
Obj = dict[str, Any]
SLOTS = 100
FALLBACK_BASE = ipaddress.ip_address("10.64.0.0")  # /26 per node when no podCIDR comes


def trim_node(node: Obj, names: dict[str, int]) -> Obj | None:
    md = node.get("metadata") or {}
    if md.get("name") not in names:
        return None
    ann = md.get("annotations") or {}
    tmd: Obj = {"name": md["name"], "uid": md.get("uid")}
    if ANNOTATION_HEARTBEAT in ann:
        tmd["annotations"] = {ANNOTATION_HEARTBEAT: ann[ANNOTATION_HEARTBEAT]}
    spec = node.get("spec") or {}
    tspec = {k: spec[k] for k in ("podCIDR", "podCIDRs") if k in spec}
    st = node.get("status") or {}
    return {"kind": "Node", "apiVersion": "v1", "metadata": tmd, "spec": tspec,
            "status": {"conditions": st.get("conditions") or []}}


def stopped(node: Obj | None) -> bool:
    return bool(node) and (node["metadata"].get("annotations") or {}).get(ANNOTATION_HEARTBEAT) == "stopped"


class NodeSet:
    def __init__(self, client: Client, prefix: str, count: int, cfg: NodeConfig, *,
                 lease_period: float = 10.0, report_period: float = 300.0, cidr_wait: float = 10.0,
                 clock: Callable[[], float] = time.time):
        self.client = client
        self.cfg = cfg
        self.names = [f"{prefix}{i}" for i in range(count)]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.ips = [internal_ip(prefix, i) for i in range(count)]
        self.lease_period = lease_period
        self.report_period = report_period
        self.cidr_wait = cidr_wait
        self.clock = clock
        self.boot_id = str(uuid.uuid4())
        self.uids: dict[str, str] = {}
        self.leases: dict[str, Obj] = {}
        self.last_report: dict[str, float] = {}
        self.registered_at: dict[str, float] = {}
        self.gone: set[str] = set()
        self._ips: dict[tuple[str, str], PodIPs] = {}
        self._beating: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_change: Callable[[str], None] = lambda name: None
        self.informer = Informer(client, NODES, transform=lambda n: trim_node(n, self.index))
        self.informer.add_handler(None, self._on_update, self._on_delete)

    # -- what pods ask -----------------------------------------------------------

    def is_mine(self, name: str) -> bool:
        return name in self.index

    def is_stopped(self, name: str) -> bool:
        return stopped(self.informer.store.get(name))

    def host_ip(self, name: str) -> str:
        return self.ips[self.index[name]]

    def pod_cidr(self, name: str) -> str | None:
        node = self.informer.store.get(name)
        cidr = node and node["spec"].get("podCIDR")
        if cidr:
            return cidr
        waited = self.clock() - self.registered_at.get(name, self.clock())
        if name in self.registered_at and waited >= self.cidr_wait:
            off = int(ipaddress.ip_address(self.host_ip(name))) - int(NODE_IP_BASE)
            return f"{FALLBACK_BASE + off * 64}/26"
        asyncio.get_running_loop().call_later(self.cidr_wait - waited + 0.1, self.on_change, name)
        return None

    def allocate_ip(self, name: str, cidr: str) -> str | None:
        ips = self._ips.get((name, cidr))
        if ips is None:
            ips = self._ips[(name, cidr)] = PodIPs(cidr)
        return ips.allocate()

    def reserve_ip(self, name: str, ip: str) -> str:
        """An address in use by a pod found running; returns the CIDR it came from."""
        cidr = self.pod_cidr_of(name, ip)
        if cidr:
            ips = self._ips.get((name, cidr))
            if ips is None:
                ips = self._ips[(name, cidr)] = PodIPs(cidr)
            ips.reserve(ip)
        return cidr

    def pod_cidr_of(self, name: str, ip: str) -> str:
        node = self.informer.store.get(name)
        cidr = (node and node["spec"].get("podCIDR")) or ""
        if cidr and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False):
            return cidr
        for (n, c) in self._ips:
            if n == name and ipaddress.ip_address(ip) in ipaddress.ip_network(c, strict=False):
                return c
        return ""

    def release_ip(self, name: str, cidr: str, ip: str) -> None:
        ips = self._ips.get((name, cidr))
        if ips is not None:
            ips.release(ip)

    # -- informer ----------------------------------------------------------------

    def _on_update(self, old: Obj, new: Obj) -> None:
        name = new["metadata"]["name"]
        if old["spec"].get("podCIDR") != new["spec"].get("podCIDR"):
            self.on_change(name)
        if stopped(old) != stopped(new):
            log.info("node %s: heartbeat %s", name, "stopped" if stopped(new) else "resumed")
            if not stopped(new):
                self.last_report.pop(name, None)  # report at the next tick
                self.on_change(name)

    def _on_delete(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if name in self.uids:
            log.info("node %s deleted; its heartbeats stop", name)
            self.gone.add(name)

    # -- registration ------------------------------------------------------------

    async def register(self, concurrency: int = 32) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, name: str) -> None:
            async with sem:
                await self._register(name, self.ips[i])

        await asyncio.gather(*(one(i, n) for i, n in enumerate(self.names)))
        log.info("registered %d nodes", len(self.names))

    async def _register(self, name: str, ip: str) -> None:
        now = now_rfc3339()
        obj = node_object(name, ip, self.cfg, self.boot_id, now)
        while True:
            try:
                try:
                    node = await self.client.create(NODES, obj)
                except APIError as e:
                    if not (e.code == 409 and e.reason == "AlreadyExists"):
                        raise
                    existing = await self.client.get(NODES, name)
                    # re-registration: kubelet updates what it owns in status
                    st = dict(obj["status"])
                    st["conditions"] = conditions(now, transitions_of(existing.get("status") or {}))
                    node = await self.client.patch(NODES, name, {"status": st}, subresource="status")
                self.uids[name] = node["metadata"]["uid"]
                self.registered_at[name] = self.clock()
                self.last_report[name] = self.clock()
                await self._renew(name)
                return
            except (APIError, OSError, asyncio.TimeoutError) as e:
                log.warning("node %s: registration failed (%s); retrying", name, e)
                await asyncio.sleep(2.0)

    # -- heartbeats --------------------------------------------------------------

    async def heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.lease_period / SLOTS
        slots: list[list[str]] = [[] for _ in range(SLOTS)]
        for i, n in enumerate(self.names):
            slots[i % SLOTS].append(n)
        start = loop.time()
        k = 0
        while True:
            k += 1
            await asyncio.sleep(max(0.0, start + k * tick - loop.time()))
            for n in slots[k % SLOTS]:
                # a beat still under way (slow API server) is not doubled
                if n in self.uids and n not in self.gone and n not in self._beating \
                        and not self.is_stopped(n):
                    self._beating.add(n)
                    t = asyncio.create_task(self._beat(n))
                    self._tasks.add(t)
                    t.add_done_callback(self._tasks.discard)

    async def _beat(self, name: str) -> None:
        try:
            await self._renew(name)
            await self._report(name)
        except (APIError, OSError, asyncio.TimeoutError) as e:
            log.info("node %s: heartbeat failed: %s", name, e)
        finally:
            self._beating.discard(name)

    async def _renew(self, name: str) -> None:
        lease = self.leases.get(name)
        now = now_micro()
        if lease is None:
            try:
                self.leases[name] = await self.client.create(
                    LEASES, lease_object(name, self.uids[name], now), LEASE_NAMESPACE)
                return
            except APIError as e:
                if not (e.code == 409 and e.reason == "AlreadyExists"):
                    raise
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
        for _ in range(2):
            spec = dict(lease.get("spec") or {}, holderIdentity=name, renewTime=now,
                        leaseDurationSeconds=LEASE_DURATION)
            body = dict(lease, spec=spec)
            try:
                self.leases[name] = await self.client.update(LEASES, body)
                return
            except APIError as e:
                if e.code == 404:
                    self.leases.pop(name, None)
                    self.leases[name] = await self.client.create(
                        LEASES, lease_object(name, self.uids[name], now), LEASE_NAMESPACE)
                    return
                if e.code != 409:
                    raise
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)

    async def _report(self, name: str) -> None:
        node = self.informer.store.get(name)
        if node is None:
            return
        due = self.clock() - self.last_report.get(name, 0.0) >= self.report_period
        if not due and conditions_healthy(node["status"]):
            return
        conds = conditions(now_rfc3339(), transitions_of(node["status"]))
        await self.client.patch(NODES, name, {"status": {"conditions": conds}}, subresource="status")
        self.last_report[name] = self.clock()
