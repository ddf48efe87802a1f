"""Pod networking for the kubelet: named network namespaces (`netns`), a
CNI plugin runner (`cni`) and `PodNetwork`, which the kubelet calls to give
each pod sandbox a namespace, a loopback and an IP on the node's bridge."""

from __future__ import annotations

from k8py.kubelet.network.cni import CNIError, CNIRunner, Result, RuntimeArgs
from k8py.kubelet.network.netns import NetnsError
from k8py.kubelet.network.pod import (
    PodNetwork,
    PodNetworkConfig,
    PodNetworkStatus,
    PortMapping,
)

__all__ = [
    "CNIError",
    "CNIRunner",
    "NetnsError",
    "PodNetwork",
    "PodNetworkConfig",
    "PodNetworkStatus",
    "PortMapping",
    "Result",
    "RuntimeArgs",
]
