"""NodeUnschedulable: no pods on a cordoned node (spec.unschedulable)
unless they tolerate the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from ..framework import ADD, NODE, UPDATE_NODE_TAINT, UPDATE_POD_TOLERATION, UNSCHEDULED_POD, ClusterEvent, \
    CycleState, Plugin, PreFilterResult, SKIPPED, Status, register, unresolvable
from ...api.nodeaffinity import tolerated
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

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        # not in kube (it has no PreFilter here): with no cordoned node the filter cannot fail
        return None, (None if self.handle.cache.unschedulable_nodes else SKIPPED)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.unschedulable and not tolerated(TAINT, pod.tolerations):
            return _REJECT
        return None
