"""NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage,
extended resources such as nvidia.com/gpu) must fit in what the node's
allocatable leaves after its pods' requests, and the pod count under
allocatable pods.  Scores by LeastAllocated over cpu and memory."""

from __future__ import annotations

from typing import Callable

from ..framework import (ADD, DELETE, MAX_NODE_SCORE, NODE, POD, UNSCHEDULED_POD, UPDATE_NODE_ALLOCATABLE,
                         UPDATE_POD_SCALE_DOWN, ClusterEvent, CycleState, Plugin, Status, register,
                         unschedulable)
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"


def insufficient(name: str) -> str:
    return f"Insufficient {name}"


_CPU = insufficient("cpu")
_MEM = insufficient("memory")
_EPH = insufficient("ephemeral-storage")


def fit_reasons(pod: PodInfo, node: NodeInfo) -> list[str]:
    reasons = []
    alloc, used, req = node.alloc, node.requested, pod.req
    if len(node.pods) + 1 > alloc.pods:
        reasons.append(TOO_MANY_PODS)
    if req.cpu > 0 and req.cpu > alloc.cpu - used.cpu:
        reasons.append(_CPU)
    if req.memory > 0 and req.memory > alloc.memory - used.memory:
        reasons.append(_MEM)
    if req.ephemeral > 0 and req.ephemeral > alloc.ephemeral - used.ephemeral:
        reasons.append(_EPH)
    for name, q in req.scalar.items():
        if q > 0 and q > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            reasons.append(insufficient(name))
    return reasons


def least_allocated(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


@register
class NodeResourcesFit(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(POD, DELETE | UPDATE_POD_SCALE_DOWN), ClusterEvent(NODE, ADD | UPDATE_NODE_ALLOCATABLE),
                ClusterEvent(UNSCHEDULED_POD, UPDATE_POD_SCALE_DOWN)]

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        # the common case inline: one comparison per resource
        alloc, used, req = node.alloc, node.requested, pod.req
        if (len(node.pods) < alloc.pods and req.cpu <= alloc.cpu - used.cpu
                and req.memory <= alloc.memory - used.memory
                and req.ephemeral <= alloc.ephemeral - used.ephemeral and not req.scalar):
            return None
        reasons = fit_reasons(pod, node)
        return unschedulable(*reasons) if reasons else None

    def node_filter(self, state: CycleState, pod: PodInfo) -> Callable[[NodeInfo], Status | None]:
        req = pod.req
        if req.scalar:
            return super().node_filter(state, pod)
        cpu, mem, eph = req.cpu, req.memory, req.ephemeral

        def fits(node: NodeInfo) -> Status | None:
            if node.free_pods > 0 and cpu <= node.free_cpu and mem <= node.free_mem and eph <= node.free_eph:
                return None
            reasons = fit_reasons(pod, node)
            return unschedulable(*reasons) if reasons else None
        return fits

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        pc, pm = pod.nz_cpu, pod.nz_mem
        key = f"F{pc},{pm}"  # a node's score for pods of this size, until the node changes (a str hashes once)
        out = []
        for n in nodes:
            v = n.memo.get(key)
            if v is None:
                ac, am = n.alloc.cpu, n.alloc.memory
                rc, rm = n.nz_cpu + pc, n.nz_mem + pm
                c = (ac - rc) * 100 // ac if ac and rc <= ac else 0
                m = (am - rm) * 100 // am if am and rm <= am else 0
                v = n.memo[key] = (c + m) // 2
            out.append(v)
        return out

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        alloc = node.alloc
        cpu = least_allocated(node.nz_cpu + pod.nz_cpu, alloc.cpu)
        mem = least_allocated(node.nz_mem + pod.nz_mem, alloc.memory)
        return (cpu + mem) // 2



