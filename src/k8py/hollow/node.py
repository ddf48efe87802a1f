"""What a hollow kubelet registers: the Node object (labels, taints,
capacity and allocatable, nodeInfo, addresses, the kubelet's four
conditions) and its Lease in ``kube-node-lease``.  Pure functions, so the
shapes are easy to test against kube's."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..api.quantity import parse as parse_quantity
from ..kubelet.shapes import (KUBELET_VERSION, LEASE_DURATION, LEASE_NAMESPACE, lease_object,  # noqa: F401
                              parse_labels, parse_taints)

NODE_IP_BASE = ipaddress.ip_address("10.200.0.0")  # never routed anywhere
ANNOTATION_HEARTBEAT = "hollow.k8py.io/heartbeat"
ANNOTATION_FAIL = "hollow.k8py.io/fail"

# (type, healthy status, healthy reason, healthy message), in the order kubelet reports them
CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


@dataclass
class NodeConfig:
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    extended: dict[str, str] = field(default_factory=dict)


def internal_ip(prefix: str, index: int) -> str:
    """A distinct address per node: 10.200.0.0/16 in 64 blocks of 1,024, the
    block chosen by the name prefix so that processes rarely overlap."""
    block = zlib.crc32(prefix.encode()) % 64
    return str(NODE_IP_BASE + block * 1024 + (index % 1024) + 1)


def _ki(q: str) -> int:
    return parse_quantity(q).value() // 1024


def resources(cfg: NodeConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Capacity and allocatable as kubelet computes them with its default
    hard eviction thresholds (memory.available<100Mi, nodefs.available<10%)."""
    mem_ki = _ki(cfg.memory)
    storage = parse_quantity(cfg.ephemeral_storage).value()
    capacity = {"cpu": str(cfg.cpu), "ephemeral-storage": f"{storage // 1024}Ki",
                "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": f"{mem_ki}Ki", "pods": str(cfg.pods)}
    allocatable = dict(capacity, memory=f"{max(mem_ki - 100 * 1024, 0)}Ki",
                       **{"ephemeral-storage": str(storage * 9 // 10)})
    for k, v in cfg.extended.items():
        capacity[k] = allocatable[k] = v
    return capacity, allocatable


def conditions(now: str, transitions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The kubelet's healthy conditions; ``transitions`` keeps each type's
    lastTransitionTime when its status did not change."""
    out = []
    for typ, status, reason, message in CONDITIONS:
        out.append({"type": typ, "status": status, "lastHeartbeatTime": now,
                    "lastTransitionTime": (transitions or {}).get(typ, now),
                    "reason": reason, "message": message})
    return out


def conditions_healthy(status: dict[str, Any]) -> bool:
    """Whether the conditions in the API are the ones this kubelet reports."""
    have = {c.get("type"): (c.get("status"), c.get("reason")) for c in status.get("conditions") or ()}
    return all(have.get(t) == (s, r) for t, s, r, _ in CONDITIONS)


def transitions_of(status: dict[str, Any]) -> dict[str, str]:
    """lastTransitionTime of the conditions already in their healthy state."""
    out = {}
    healthy = {t: s for t, s, _, _ in CONDITIONS}
    for c in status.get("conditions") or ():
        t = c.get("type")
        if t in healthy and c.get("status") == healthy[t] and c.get("lastTransitionTime"):
            out[t] = c["lastTransitionTime"]
    return out


def node_object(name: str, ip: str, cfg: NodeConfig, boot_id: str, now: str) -> dict[str, Any]:
    capacity, allocatable = resources(cfg)
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    labels.update(cfg.labels)
    digest = hashlib.md5(name.encode()).hexdigest()
    node: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {},
        "status": {
            "capacity": capacity, "allocatable": allocatable,
            "conditions": conditions(now),
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": digest, "systemUUID": str(uuid.UUID(digest)), "bootID": boot_id,
                         "kernelVersion": "6.1.0-k8py-hollow", "osImage": "k8py hollow node",
                         "containerRuntimeVersion": "hollow://0.1.0", "kubeletVersion": KUBELET_VERSION,
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
        },
    }
    if cfg.taints:
        node["spec"]["taints"] = [dict(t) for t in cfg.taints]
    return node
