"""The kubelet's Node: registration with what the machine has, the Lease
renewed every 10 s, and node status (conditions, addresses, images,
daemon endpoint) written every nodeStatusUpdateFrequency when it changed
or every nodeStatusReportFrequency (5 min) regardless, as kubelet does.

Capacity is read off the machine: cpu from the cores this process may use,
memory from /proc/meminfo, ephemeral-storage from the file system holding
the kubelet's root dir, pods from --max-pods.  Allocatable subtracts the
default hard eviction thresholds (memory.available<100Mi,
nodefs.available<10%).  Pressure conditions are real: MemoryPressure when
MemAvailable is under 100Mi, DiskPressure when the root dir's file system
has under 10% free, PIDPressure when under 10% of pid_max is free.

The node shapes (Lease, condition texts) are those the hollow kubelet
uses too (``k8py.hollow.node``), so both kinds of node look alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..client.rest import APIError, Client, resource
from ..client.timeutil import now_micro, now_rfc3339
from .shapes import KUBELET_VERSION, LEASE_DURATION, LEASE_NAMESPACE, lease_object, parse_taints

log = logging.getLogger(__name__)
NODES = resource("nodes")
LEASES = resource("leases.coordination.k8s.io")
Obj = dict[str, Any]

EVICTION_MEMORY = 100 * 1024 * 1024
EVICTION_NODEFS_PERCENT = 10


@dataclass
class NodeOptions:
    name: str
    node_ip: str
    root_dir: str
    port: int = 10250
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: str = ""
    runtime_version: str = "runc://1.1.5"
    status_update_period: float = 10.0
    status_report_period: float = 300.0
    lease_period: float = 10.0


def detect_node_ip() -> str:
    """The address the host uses towards the outside (no packet is sent), else loopback."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def _meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, rest = line.partition(":")
            out[k] = int(rest.split()[0]) * 1024
    return out


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


def machine_resources(root_dir: str, max_pods: int) -> tuple[dict[str, str], dict[str, str]]:
    cpus = len(os.sched_getaffinity(0))
    mem = _meminfo()["MemTotal"]
    st = os.statvfs(root_dir)
    disk = st.f_blocks * st.f_frsize
    capacity = {"cpu": str(cpus), "ephemeral-storage": f"{disk // 1024}Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": f"{mem // 1024}Ki", "pods": str(max_pods)}
    allocatable = dict(capacity, memory=f"{max(mem - EVICTION_MEMORY, 0) // 1024}Ki",
                       **{"ephemeral-storage": str(disk * (100 - EVICTION_NODEFS_PERCENT) // 100)})
    return capacity, allocatable


def pressure(root_dir: str) -> dict[str, bool]:
    mem = _meminfo()
    st = os.statvfs(root_dir)
    pid_max = _read_int("/proc/sys/kernel/pid_max", 32768)
    try:
        procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    except OSError:
        procs = 0
    return {
        "MemoryPressure": mem.get("MemAvailable", mem["MemFree"]) < EVICTION_MEMORY,
        "DiskPressure": st.f_bavail * 100 < st.f_blocks * EVICTION_NODEFS_PERCENT,
        "PIDPressure": (pid_max - procs) * 10 < pid_max,
    }


_TEXTS = {
    "MemoryPressure": (("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
    "DiskPressure": (("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                     ("KubeletHasDiskPressure", "kubelet has disk pressure")),
    "PIDPressure": (("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
}


def conditions(pressures: dict[str, bool], ready: tuple[bool, str], now: str, old: list[Obj]) -> list[Obj]:
    """The four conditions in kubelet's order, keeping lastTransitionTime while a status stays."""
    prev = {c.get("type"): c for c in old or ()}
    out = []

    def add(typ: str, status: str, reason: str, message: str) -> None:
        p = prev.get(typ)
        ltt = p.get("lastTransitionTime") if p and p.get("status") == status else now
        out.append({"type": typ, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": ltt,
                    "reason": reason, "message": message})

    for typ, texts in _TEXTS.items():
        bad = pressures.get(typ, False)
        reason, message = texts[1 if bad else 0]
        add(typ, "True" if bad else "False", reason, message)
    ok, why = ready
    add("Ready", "True" if ok else "False", "KubeletReady" if ok else "KubeletNotReady",
        "kubelet is posting ready status" if ok else why)
    return out


def _same_conditions(a: list[Obj], b: list[Obj]) -> bool:
    def key(cs: list[Obj]) -> list[tuple[Any, ...]]:
        return [(c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in cs or ()]
    return key(a) == key(b)


def _machine_id() -> str:
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(p) as f:
                return f.read().strip()
        except OSError:
            pass
    return uuid.uuid5(uuid.NAMESPACE_DNS, socket.gethostname()).hex


def _os_image() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_info(runtime_version: str) -> Obj:
    mid = _machine_id()
    boot = ""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        pass
    return {"machineID": mid, "systemUUID": str(uuid.UUID(mid.ljust(32, "0")[:32])), "bootID": boot,
            "kernelVersion": platform.release(), "osImage": _os_image(),
            "containerRuntimeVersion": runtime_version, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}


class NodeAgent:
    """Registers the node and keeps its Lease and status fresh.

    ``ready`` says whether the kubelet can run pods (runtime up, network
    configured) and, when not, why; ``images`` lists the node's images for
    status.images.
    """

    def __init__(self, client: Client, opts: NodeOptions, *, ready: Callable[[], tuple[bool, str]],
                 images: Callable[[], list[Obj]] = list) -> None:
        self.client = client
        self.opts = opts
        self.ready = ready
        self.images = images
        self.uid = ""
        self.node: Obj | None = None
        self._lease: Obj | None = None
        self._last_report = 0.0
        self._wake = asyncio.Event()
        self.on_node: Callable[[Obj], None] = lambda node: None

    def _status(self, old: Obj) -> Obj:
        capacity, allocatable = machine_resources(self.opts.root_dir, self.opts.max_pods)
        addresses = [{"type": "InternalIP", "address": self.opts.node_ip},
                     {"type": "Hostname", "address": self.opts.name}]
        return {"capacity": capacity, "allocatable": allocatable,
                "conditions": conditions(pressure(self.opts.root_dir), self.ready(), now_rfc3339(),
                                         old.get("conditions") or []),
                "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.opts.port}},
                "nodeInfo": node_info(self.opts.runtime_version),
                "images": self.images()}

    def _object(self) -> Obj:
        labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": self.opts.name,
                  "kubernetes.io/os": "linux", **self.opts.labels}
        node: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.opts.name, "labels": labels,
                                  "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                     "spec": {}, "status": self._status({})}
        taints = parse_taints(self.opts.taints)
        if taints:
            node["spec"]["taints"] = taints
        return node

    async def register(self) -> Obj:
        """Create the Node, or take over the existing one (kubelet's re-registration), retrying until it works."""
        delay = 0.2
        while True:
            try:
                try:
                    node = await self.client.create(NODES, self._object())
                except APIError as e:
                    if e.code != 409:
                        raise
                    existing = await self.client.get(NODES, self.opts.name)
                    status = self._status(existing.get("status") or {})
                    node = await self.client.patch(NODES, self.opts.name, {"status": status},
                                                   subresource="status")
                self._set(node)
                self._last_report = time.monotonic()
                log.info("node %s registered (%s)", self.opts.name, self.opts.node_ip)
                return node
            except (APIError, OSError, asyncio.TimeoutError) as e:
                log.warning("node %s: registration failed (%s); retrying", self.opts.name, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)

    def _set(self, node: Obj) -> None:
        self.node = node
        self.uid = node["metadata"]["uid"]
        self.on_node(node)

    def poke(self) -> None:
        """Report status soon (readiness changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Lease and status loop; keeps going through API server outages."""
        next_lease = 0.0
        while True:
            now = time.monotonic()
            if now >= next_lease:
                try:
                    await self.renew_lease()
                    next_lease = now + self.opts.lease_period
                except (APIError, OSError, asyncio.TimeoutError) as e:
                    log.info("node %s: lease renewal failed: %s", self.opts.name, e)
                    next_lease = now + min(self.opts.lease_period, 1.0)
                try:
                    await self.update_status()
                except (APIError, OSError, asyncio.TimeoutError) as e:
                    log.info("node %s: status update failed: %s", self.opts.name, e)
            self._wake.clear()
            timeout = max(0.05, min(next_lease, now + self.opts.status_update_period) - time.monotonic())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                await self.update_status()
            except asyncio.TimeoutError:
                pass
            except (APIError, OSError) as e:
                log.info("node %s: status update failed: %s", self.opts.name, e)

    async def update_status(self, force: bool = False) -> None:
        try:
            node = await self.client.get(NODES, self.opts.name)
        except APIError as e:
            if e.code == 404:  # deleted under us: register again, as kubelet does
                await self.register()
                return
            raise
        old = node.get("status") or {}
        status = self._status(old)
        due = force or time.monotonic() - self._last_report >= self.opts.status_report_period
        same = (_same_conditions(old.get("conditions") or [], status["conditions"])
                and all(old.get(k) == status[k] for k in ("addresses", "capacity", "allocatable",
                                                           "daemonEndpoints", "images")))
        if same and not due:
            self._set(node)
            return
        node = await self.client.patch(NODES, self.opts.name, {"status": status}, subresource="status")
        self._last_report = time.monotonic()
        self._set(node)

    async def renew_lease(self) -> None:
        name = self.opts.name
        now = now_micro()
        lease = self._lease
        if lease is None:
            try:
                self._lease = await self.client.create(LEASES, lease_object(name, self.uid, now), LEASE_NAMESPACE)
                return
            except APIError as e:
                if e.code != 409:
                    raise
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
        for _ in range(2):
            spec = dict(lease.get("spec") or {}, holderIdentity=name, renewTime=now,
                        leaseDurationSeconds=LEASE_DURATION)
            try:
                self._lease = await self.client.update(LEASES, dict(lease, spec=spec))
                return
            except APIError as e:
                if e.code == 404:
                    self._lease = None
                    self._lease = await self.client.create(LEASES, lease_object(name, self.uid, now),
                                                           LEASE_NAMESPACE)
                    return
                if e.code != 409:
                    raise
                lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
