"""NodeName: a pod that names its node (spec.nodeName) fits only there."""

from __future__ import annotations

from ..framework import ADD, NODE, ClusterEvent, CycleState, Plugin, PreFilterResult, Status, SKIPPED, \
    register, unresolvable
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"
_REJECT = unresolvable(REASON)


@register
class NodeName(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ADD)]

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        if not pod.node_name:
            return None, SKIPPED
        return PreFilterResult({pod.node_name}), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if pod.node_name and pod.node_name != node.name:
            return _REJECT
        return None
