"""NodeUnschedulable: no pods on a cordoned node (spec.unschedulable)
unless they tolerate the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from ..framework import ADD, NODE, UPDATE_NODE_TAINT, UPDATE_POD_TOLERATION, UNSCHEDULED_POD, ClusterEvent, \
    CycleState, Plugin, Status, register, unresolvable
from ..helpers import tolerated
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
_REJECT = unresolvable(REASON)


@register
class NodeUnschedulable(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ADD | UPDATE_NODE_TAINT), ClusterEvent(UNSCHEDULED_POD, UPDATE_POD_TOLERATION)]

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.unschedulable and not tolerated(TAINT, pod.tolerations):
            return _REJECT
        return None
