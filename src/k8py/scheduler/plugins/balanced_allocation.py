"""NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory
would be used in equal fractions after placing the pod."""

from __future__ import annotations

from ..framework import ADD, DELETE, MAX_NODE_SCORE, NODE, POD, UPDATE_NODE_ALLOCATABLE, ClusterEvent, \
    CycleState, Plugin, register
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodeResourcesBalancedAllocation"


def balanced_score(cpu_req: int, cpu_alloc: int, mem_req: int, mem_alloc: int) -> int:
    if cpu_alloc == 0 or mem_alloc == 0:
        return 0
    fc = min(cpu_req / cpu_alloc, 1.0)
    fm = min(mem_req / mem_alloc, 1.0)
    std = abs(fc - fm) / 2
    return int((1 - std) * MAX_NODE_SCORE)


@register
class NodeResourcesBalancedAllocation(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(POD, DELETE), ClusterEvent(NODE, ADD | UPDATE_NODE_ALLOCATABLE)]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        pc, pm = pod.req.cpu, pod.req.memory
        key = f"B{pc},{pm}"  # memoized until the node changes (a str hashes once)
        out = []
        for n in nodes:
            v = n.memo.get(key)
            if v is None:
                v = n.memo[key] = balanced_score(n.requested.cpu + pc, n.alloc.cpu,
                                                 n.requested.memory + pm, n.alloc.memory)
            out.append(v)
        return out

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return balanced_score(node.requested.cpu + pod.req.cpu, node.alloc.cpu,
                              node.requested.memory + pod.req.memory, node.alloc.memory)
