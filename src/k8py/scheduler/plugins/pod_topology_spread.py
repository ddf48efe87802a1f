"""PodTopologySpread: topologySpreadConstraints.  DoNotSchedule
constraints filter: placing the pod must keep (matching pods in the
domain + 1 if the pod matches itself) - (global minimum) <= maxSkew, where
the minimum is 0 while fewer than minDomains domains exist; ScheduleAnyway
constraints score, fewer matching pods being better.  Which nodes count
follows nodeAffinityPolicy (default Honor) and nodeTaintsPolicy (default
Ignore); matchLabelKeys add the pod's own label values to the selector.
kube's system default constraints are not applied."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ...api import labels as labelsel
from ..framework import (ADD, DELETE, MAX_NODE_SCORE, NODE, POD, SKIPPED, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT,
                         UPDATE_POD_LABEL, ClusterEvent, CycleState, Plugin, PreFilterResult, Status, register,
                         unresolvable, unschedulable)
from ...api.nodeaffinity import pod_matches_node_affinity, untolerated_taint
from ..nodeinfo import NodeInfo, PodInfo

NAME = "PodTopologySpread"
CONSTRAINTS_REASON = "node(s) didn't match pod topology spread constraints"
LABEL_REASON = "node(s) didn't match pod topology spread constraints (missing required label)"
_SKEW = unschedulable(CONSTRAINTS_REASON)
_LABEL = unresolvable(LABEL_REASON)
HOSTNAME = "kubernetes.io/hostname"


class Constraint:
    __slots__ = ("max_skew", "key", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, c: dict[str, Any], pod: PodInfo):
        self.max_skew = int(c.get("maxSkew") or 1)
        self.key = c.get("topologyKey") or ""
        try:
            sel = labelsel.from_label_selector(c.get("labelSelector"))
        except labelsel.SelectorError:
            sel = labelsel.nothing()
        extra = [labelsel.Requirement(k, labelsel.IN, (pod.labels[k],))
                 for k in c.get("matchLabelKeys") or () if k in pod.labels]
        if extra and c.get("labelSelector") is not None:
            sel = sel.add(*extra)
        self.selector = sel
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"


def constraints(pod: PodInfo, when: str) -> list[Constraint]:
    return [Constraint(c, pod) for c in (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or ()
            if (c.get("whenUnsatisfiable") or "DoNotSchedule") == when]


def count_matching(node: NodeInfo, sel: labelsel.Selector, ns: str) -> int:
    n = 0
    for p in node.pods.values():
        if p.namespace == ns and not p.pod["metadata"].get("deletionTimestamp") and sel.matches(p.labels):
            n += 1
    return n


def node_counts(pod: PodInfo, c: Constraint, node: NodeInfo, cache_affinity: dict) -> bool:
    """Whether ``node`` takes part in constraint ``c`` (its policies)."""
    if c.honor_affinity:
        ok = cache_affinity.get(node.name)
        if ok is None:
            ok = cache_affinity[node.name] = pod_matches_node_affinity(pod.pod, node.labels, node.name)
        if not ok:
            return False
    if c.honor_taints and node.taints and untolerated_taint(node.taints, pod.tolerations,
                                                            ("NoSchedule", "NoExecute")) is not None:
        return False
    return True


class _FilterState:
    __slots__ = ("constraints", "counts")

    def __init__(self, cs: list[Constraint]):
        self.constraints = cs
        self.counts: list[Counter[str]] = [Counter() for _ in cs]

    def clone(self) -> "_FilterState":
        c = _FilterState(self.constraints)
        c.counts = [Counter(x) for x in self.counts]
        return c

    def min_match(self, i: int) -> int:
        counts = self.counts[i]
        if len(counts) < self.constraints[i].min_domains or not counts:
            return 0
        return min(counts.values())


@register
class PodTopologySpread(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(POD, ADD | DELETE | UPDATE_POD_LABEL),
                ClusterEvent(NODE, ADD | DELETE | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT)]

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        if not (pod.pod.get("spec") or {}).get("topologySpreadConstraints"):
            return None, SKIPPED
        cs = constraints(pod, "DoNotSchedule")
        if not cs:
            return None, SKIPPED
        s = _FilterState(cs)
        aff: dict[str, bool] = {}
        for ni in self.handle.cache.node_list():
            if any(c.key not in ni.labels for c in cs):
                continue
            for i, c in enumerate(cs):
                if not node_counts(pod, c, ni, aff):
                    continue
                s.counts[i][ni.labels[c.key]] += count_matching(ni, c.selector, pod.namespace)
        state[NAME] = s
        return None, None

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, mult: int) -> None:
        s: _FilterState | None = state.get(NAME)
        if s is None or other.namespace != pod.namespace:
            return
        for i, c in enumerate(s.constraints):
            v = node.labels.get(c.key)
            if v is not None and v in s.counts[i] and c.selector.matches(other.labels):
                s.counts[i][v] += mult

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, other, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _FilterState = state[NAME]
        for i, c in enumerate(s.constraints):
            v = node.labels.get(c.key)
            if v is None:
                return _LABEL
            self_match = 1 if c.selector.matches(pod.labels) else 0
            if s.counts[i].get(v, 0) + self_match - s.min_match(i) > c.max_skew:
                return _SKEW
        return None

    # -- scoring -------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        if not (pod.pod.get("spec") or {}).get("topologySpreadConstraints"):
            return SKIPPED
        cs = constraints(pod, "ScheduleAnyway")
        if not cs:
            return SKIPPED
        ignored = {n.name for n in nodes if any(c.key not in n.labels for c in cs)}
        pairs: Counter[tuple[str, str]] = Counter()
        domains: list[set[str]] = [set() for _ in cs]
        for n in nodes:
            if n.name in ignored:
                continue
            for i, c in enumerate(cs):
                domains[i].add(n.labels[c.key])
                if c.key != HOSTNAME:
                    pairs[(c.key, n.labels[c.key])] += 0
        weights = [math.log(len(d) + 2) for d in domains]
        aff: dict[str, bool] = {}
        if pairs:
            for ni in self.handle.cache.node_list():
                if any(c.key not in ni.labels for c in cs):
                    continue
                for c in cs:
                    pair = (c.key, ni.labels[c.key])
                    if c.key == HOSTNAME or pair not in pairs or not node_counts(pod, c, ni, aff):
                        continue
                    pairs[pair] += count_matching(ni, c.selector, pod.namespace)
        state[NAME + "/score"] = (cs, ignored, pairs, weights)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        cs, ignored, pairs, weights = state[NAME + "/score"]
        if node.name in ignored:
            return -1
        total = 0.0
        for i, c in enumerate(cs):
            v = node.labels.get(c.key)
            if v is None:
                continue
            cnt = count_matching(node, c.selector, pod.namespace) if c.key == HOSTNAME else pairs[(c.key, v)]
            total += cnt * weights[i] + (c.max_skew - 1)
        return int(total + 0.5)  # Go math.Round

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        lo = min(valid) if valid else 0
        hi = max(valid) if valid else 0
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - s) // hi
