"""InterPodAffinity: required pod affinity and anti-affinity over a
topologyKey (and the symmetry: an existing pod's required anti-affinity
keeps matching pods away from its domain), and preferred terms scored.

PreFilter counts, per (topologyKey, value), the existing pods matching the
incoming pod's terms and the existing pods whose anti-affinity matches the
incoming pod; Filter is then a few dict lookups per node.  A pod with no
terms, in a cluster with no required anti-affinity, skips the plugin."""

from __future__ import annotations

from collections import Counter

from ..framework import (ADD, DELETE, MAX_NODE_SCORE, NODE, POD, SKIPPED, UPDATE_NODE_LABEL, UPDATE_POD_LABEL,
                         ClusterEvent, CycleState, Plugin, PreFilterResult, Status, register, unresolvable,
                         unschedulable)
from ..nodeinfo import AffinityTerm, NodeInfo, PodInfo

NAME = "InterPodAffinity"
AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
_AFF = unresolvable(AFFINITY_REASON)
_ANTI = unschedulable(ANTI_AFFINITY_REASON)
_EXISTING = unschedulable(EXISTING_ANTI_AFFINITY_REASON)
HARD_POD_AFFINITY_WEIGHT = 1


def matches_all(terms: list[AffinityTerm], pod: PodInfo, ns_labels: dict | None) -> bool:
    return bool(terms) and all(t.matches(pod, ns_labels) for t in terms)


class _State:
    __slots__ = ("affinity", "anti", "existing")

    def __init__(self) -> None:
        self.affinity: Counter[tuple[str, str]] = Counter()
        self.anti: Counter[tuple[str, str]] = Counter()
        self.existing: Counter[tuple[str, str]] = Counter()

    def clone(self) -> "_State":
        c = _State()
        c.affinity, c.anti, c.existing = Counter(self.affinity), Counter(self.anti), Counter(self.existing)
        return c


@register
class InterPodAffinity(Plugin):
    name = NAME

    def events(self) -> list[ClusterEvent]:
        return [ClusterEvent(POD, ADD | DELETE | UPDATE_POD_LABEL), ClusterEvent(NODE, ADD | UPDATE_NODE_LABEL)]

    def _ns_labels(self, ns: str) -> dict | None:
        return self.handle.cache.namespace_labels.get(ns)

    def _update(self, s: _State, pod: PodInfo, other: PodInfo, node: NodeInfo, mult: int) -> None:
        labels = node.labels
        own_ns = self._ns_labels(pod.namespace)
        for t in other.anti_affinity:
            if t.matches(pod, own_ns):
                v = labels.get(t.topology_key)
                if v is not None:
                    s.existing[(t.topology_key, v)] += mult
        other_ns = self._ns_labels(other.namespace)
        if pod.affinity and matches_all(pod.affinity, other, other_ns):
            for t in pod.affinity:
                v = labels.get(t.topology_key)
                if v is not None:
                    s.affinity[(t.topology_key, v)] += mult
        for t in pod.anti_affinity:
            if t.matches(other, other_ns):
                v = labels.get(t.topology_key)
                if v is not None:
                    s.anti[(t.topology_key, v)] += mult

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        cache = self.handle.cache
        if not pod.affinity and not pod.anti_affinity and not cache.anti_affinity_nodes:
            return None, SKIPPED
        s = _State()
        if pod.affinity or pod.anti_affinity:
            for ni in cache.node_list():
                for other in ni.pods.values():
                    self._update(s, pod, other, ni, 1)
        else:
            own_ns = self._ns_labels(pod.namespace)
            for name in cache.anti_affinity_nodes:
                ni = cache.nodes.get(name)
                if ni is None or ni.node is None:
                    continue
                for other in ni.anti_affinity_pods.values():
                    for t in other.anti_affinity:
                        if t.matches(pod, own_ns):
                            v = ni.labels.get(t.topology_key)
                            if v is not None:
                                s.existing[(t.topology_key, v)] += 1
        state[NAME] = s
        return None, None

    def add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        if NAME in state:
            self._update(state[NAME], pod, other, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        if NAME in state:
            self._update(state[NAME], pod, other, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _State = state[NAME]
        labels = node.labels
        if pod.affinity:
            exist = True
            for t in pod.affinity:
                v = labels.get(t.topology_key)
                if v is None:
                    return _AFF
                if s.affinity[(t.topology_key, v)] <= 0:
                    exist = False
            # the first pod of a group with affinity to itself may go anywhere
            if not exist and not (not +s.affinity and matches_all(pod.affinity, pod, self._ns_labels(pod.namespace))):
                return _AFF
        if pod.anti_affinity and +s.anti:
            for t in pod.anti_affinity:
                v = labels.get(t.topology_key)
                if v is not None and s.anti[(t.topology_key, v)] > 0:
                    return _ANTI
        if +s.existing:
            for k, v in labels.items():
                if s.existing.get((k, v), 0) > 0:
                    return _EXISTING
        return None

    # -- scoring -------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cache = self.handle.cache
        has_constraints = bool(pod.pref_affinity or pod.pref_anti_affinity)
        if not has_constraints and not cache.affinity_nodes:
            return SKIPPED
        own_ns = self._ns_labels(pod.namespace)
        scores: Counter[tuple[str, str]] = Counter()

        def process(terms: list[AffinityTerm], target: PodInfo, ns_labels: dict | None, labels: dict,
                    mult: int, weight: int | None = None) -> None:
            for t in terms:
                if t.matches(target, ns_labels):
                    v = labels.get(t.topology_key)
                    if v is not None:
                        scores[(t.topology_key, v)] += (t.weight if weight is None else weight) * mult

        node_infos = cache.node_list() if has_constraints else [
            cache.nodes[n] for n in cache.affinity_nodes if n in cache.nodes]
        for ni in node_infos:
            if ni.node is None or not ni.labels:
                continue
            others = ni.pods.values() if has_constraints else ni.affinity_pods.values()
            for other in others:
                other_ns = self._ns_labels(other.namespace)
                process(pod.pref_affinity, other, other_ns, ni.labels, 1)
                process(pod.pref_anti_affinity, other, other_ns, ni.labels, -1)
                process(other.affinity, pod, own_ns, ni.labels, 1, HARD_POD_AFFINITY_WEIGHT)
                process(other.pref_affinity, pod, own_ns, ni.labels, 1)
                process(other.pref_anti_affinity, pod, own_ns, ni.labels, -1)
        scores = Counter({k: v for k, v in scores.items() if v})
        if not scores:
            return SKIPPED
        state[NAME + "/score"] = scores
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores = state[NAME + "/score"]
        total = 0
        for k, v in node.labels.items():
            total += scores.get((k, v), 0)
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * ((s - lo) / diff)) if diff > 0 else 0
