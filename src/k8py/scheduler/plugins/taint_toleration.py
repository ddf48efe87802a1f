"""TaintToleration: a pod must tolerate a node's NoSchedule and NoExecute
taints; untolerated PreferNoSchedule taints lower a node's score."""

from __future__ import annotations

from ..framework import ADD, NODE, UNSCHEDULED_POD, UPDATE_NODE_TAINT, UPDATE_POD_TOLERATION, ClusterEvent, \
    CycleState, Plugin, PreFilterResult, SKIPPED, Status, default_normalize, register, unresolvable
from ...api.nodeaffinity import tolerated, untolerated_taint
from ..nodeinfo import NodeInfo, PodInfo

NAME = "TaintToleration"
_EFFECTS = ("NoSchedule", "NoExecute")


def reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '') or ''}}}"


@register
class TaintToleration(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ADD | UPDATE_NODE_TAINT), ClusterEvent(UNSCHEDULED_POD, UPDATE_POD_TOLERATION)]

    # The skips below are not kube's; they give the same answers: with no
    # tainted node the filter passes everywhere, and with no PreferNoSchedule
    # taint every node scores the same.
    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        return None, (None if self.handle.cache.tainted_nodes else SKIPPED)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        return None if self.handle.cache.prefer_no_schedule_nodes else SKIPPED

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = untolerated_taint(node.taints, pod.tolerations, _EFFECTS)
        if taint is None:
            return None
        return unresolvable(reason(taint))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        tols = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return sum(1 for t in node.taints
                   if t.get("effect") == "PreferNoSchedule" and not tolerated(t, tols))

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)
