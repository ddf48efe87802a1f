"""What the controller-manager hands each controller: the API client, the
shared informers, an event recorder and the options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..client.events import EventRecorder
from ..client.informer import InformerFactory
from ..client.rest import Client


T = TypeVar("T", bound=type)
CONTROLLERS: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: makes a controller known to the controller-manager."""
    def deco(cls: T) -> T:
        CONTROLLERS[name] = cls
        return cls
    return deco


@dataclass
class Options:
    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 5.0
    cluster_cidr: str = "10.42.0.0/16"
    node_cidr_mask_size: int = 24
    allocate_node_cidrs: bool = True
    terminated_pod_gc_threshold: int = 12500
    pod_gc_check_period: float = 20.0  # kube's gcCheckPeriod
    pod_gc_quarantine: float = 40.0  # kube's quarantineTime for pods of vanished nodes
    workers: dict[str, int] = field(default_factory=dict)


@dataclass
class ControllerContext:
    client: Client
    informers: InformerFactory
    options: Options
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def recorder(self, component: str) -> EventRecorder:
        r = self._recorders.get(component)
        if r is None:
            r = self._recorders[component] = EventRecorder(self.client, component)
        return r
