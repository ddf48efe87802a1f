"""NodePorts: two pods cannot use the same hostPort (and protocol) on one
node; 0.0.0.0 conflicts with every address."""

from __future__ import annotations

from ..framework import ADD, DELETE, NODE, POD, ClusterEvent, CycleState, Plugin, PreFilterResult, Status, \
    SKIPPED, register, unschedulable
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"
_REJECT = unschedulable(REASON)
ANY = "0.0.0.0"


def conflicts(want: list[tuple[str, str, int]], used: dict[tuple[str, str, int], int]) -> bool:
    if not used:
        return False
    for ip, proto, port in want:
        if ip == ANY:
            if any(p == port and pr == proto for (_, pr, p) in used):
                return True
        elif (ip, proto, port) in used or (ANY, proto, port) in used:
            return True
    return False


@register
class NodePorts(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(POD, DELETE), ClusterEvent(NODE, ADD)]

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        return None, (None if pod.ports else SKIPPED)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if conflicts(pod.ports, node.ports):
            return _REJECT
        return None
