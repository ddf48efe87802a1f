"""NodeAffinity: spec.nodeSelector and required node affinity filter
nodes; preferred node affinity terms add their weights to a node's score."""

from __future__ import annotations

from ..framework import ADD, NODE, UNSCHEDULED_POD, UPDATE, UPDATE_NODE_LABEL, ClusterEvent, CycleState, \
    Plugin, PreFilterResult, Status, SKIPPED, default_normalize, register, unresolvable
from ...api.nodeaffinity import required_node_affinity, selector_matches_labels, term_matches_labels
from ..nodeinfo import NodeInfo, PodInfo

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
_REJECT = unresolvable(REASON)


def _names_from_fields(req: dict | None) -> set[str] | None:
    """Nodes named by metadata.name In [...] in every term (PreFilterResult)."""
    if not req:
        return None
    out: set[str] = set()
    for term in req.get("nodeSelectorTerms") or ():
        names = None
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                vals = set(f.get("values") or ())
                names = vals if names is None else names & vals
        if names is None:
            return None
        out |= names
    return out


@register
class NodeAffinity(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ADD | UPDATE_NODE_LABEL), ClusterEvent(UNSCHEDULED_POD, UPDATE)]

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        sel, req = required_node_affinity(pod.pod)
        if not sel and req is None:
            return None, SKIPPED
        if req is not None and not req.get("nodeSelectorTerms"):
            return None, unresolvable(REASON)
        state[NAME] = (sel, req)
        names = _names_from_fields(req)
        return (PreFilterResult(names) if names is not None else None), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        sel, req = state[NAME]
        labels = node.labels
        for k, v in sel.items():
            if labels.get(k) != v:
                return _REJECT
        if req is not None and not selector_matches_labels(req, labels, node.name):
            return _REJECT
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        na = ((pod.pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
        pref = na.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        if not pref:
            return SKIPPED
        state[NAME + "/pref"] = [(p.get("weight") or 0, p.get("preference") or {}) for p in pref]
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = 0
        for weight, pref in state[NAME + "/pref"]:
            if weight and term_matches_labels(pref, node.labels, node.name):
                total += weight
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)

