"""A scheduling profile: the plugins of ``default-scheduler`` in kube's
order, and the code that runs an extension point over them.

Filtering walks the nodes from a round-robin start and stops after
kube's ``percentageOfNodesToScore`` of them have passed (adaptive:
50% - nodes/125, at least 5%, at least 100 nodes); a plugin whose
pre_filter answers Skip is not asked at any node."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .framework import (DEFAULT_PLUGINS, DEFAULT_WEIGHTS, REGISTRY, SKIP, ClusterEvent, CycleState,
                        Plugin, PreFilterResult, Status, implements, load_plugins)
from .nodeinfo import NodeInfo, PodInfo

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import Client
    from .cache import Cache

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5


@dataclass
class Handle:
    """What plugins may use: the cache, the API client and informers
    (absent in unit tests), and the profile itself."""

    cache: "Cache"
    client: "Client | None" = None
    informers: "InformerFactory | None" = None
    profile: "Profile | None" = None
    scheduler: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    if num_all < MIN_FEASIBLE_NODES:
        return num_all
    if percentage <= 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_PERCENTAGE)
    n = num_all * percentage // 100
    return max(n, MIN_FEASIBLE_NODES)


class Profile:
    def __init__(self, handle: Handle, plugins: tuple[str, ...] = DEFAULT_PLUGINS,
                 weights: dict[str, int] | None = None, args: dict[str, dict[str, Any]] | None = None,
                 name: str = "default-scheduler", percentage_of_nodes_to_score: int = 0):
        load_plugins()
        self.name = name
        self.handle = handle
        handle.profile = self
        self.plugins: list[Plugin] = [REGISTRY[n](handle, (args or {}).get(n)) for n in plugins if n in REGISTRY]
        self.by_name = {p.name: p for p in self.plugins}
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.pre_filters = [p for p in self.plugins if implements(p, "pre_filter")]
        self.filters = [p for p in self.plugins if implements(p, "filter")]
        self.post_filters = [p for p in self.plugins if implements(p, "post_filter")]
        self.pre_scores = [p for p in self.plugins if implements(p, "pre_score")]
        self.scorers = [p for p in self.plugins if implements(p, "score") and self.weights.get(p.name, 0)]
        self.reservers = [p for p in self.plugins if implements(p, "reserve")]
        self.binders = [p for p in self.plugins if implements(p, "bind")]
        self.percentage = percentage_of_nodes_to_score
        self.next_start = 0

    def events(self) -> dict[str, list[ClusterEvent]]:
        return {p.name: p.events() for p in self.plugins}

    # -- filtering ---------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status | None]:
        result: PreFilterResult | None = None
        for p in self.pre_filters:
            r, st = p.pre_filter(state, pod)
            if st is not None:
                if st.code == SKIP:
                    state.skip_filter.add(p.name)
                    continue
                if not st.ok:
                    return None, st.with_plugin(p.name)
            if r is not None and r.node_names is not None:
                if result is None or result.node_names is None:
                    result = PreFilterResult(set(r.node_names))
                else:
                    result.node_names &= r.node_names
        return result, None

    def active_filters(self, state: CycleState) -> list[Plugin]:
        return [p for p in self.filters if p.name not in state.skip_filter]

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                   filters: list[Plugin] | None = None) -> Status | None:
        for p in filters if filters is not None else self.active_filters(state):
            st = p.filter(state, pod, node)
            if st is not None and not st.ok:
                return st.with_plugin(p.name)
        return None

    def find_feasible(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                      statuses: dict[str, Status]) -> list[NodeInfo]:
        """Filters from the round-robin start until enough nodes pass."""
        n = len(nodes)
        if not n:
            return []
        want = num_feasible_nodes_to_find(n, self.percentage)
        checks = [(p.name, p.node_filter(state, pod)) for p in self.active_filters(state)]
        feasible: list[NodeInfo] = []
        start = self.next_start % n
        order = nodes[start:] + nodes[:start] if start else nodes
        processed = 0
        if len(checks) == 1:  # the common case: NodeResourcesFit alone
            name, check = checks[0]
            for ni in order:
                processed += 1
                st = check(ni)
                if st is None:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
                else:
                    statuses[ni.name] = st.with_plugin(name)
        else:
            for ni in order:
                processed += 1
                for name, check in checks:
                    st = check(ni)
                    if st is not None:
                        statuses[ni.name] = st.with_plugin(name)
                        break
                else:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
        self.next_start = (start + processed) % n
        return feasible

    # -- scoring ---------------------------------------------------------------------

    def prioritize(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        for p in self.pre_scores:
            st = p.pre_score(state, pod, nodes)
            if st is not None and st.code == SKIP:
                state.skip_score.add(p.name)
        totals = [0] * len(nodes)
        for p in self.scorers:
            if p.name in state.skip_score:
                continue
            scores = p.score_nodes(state, pod, nodes)
            if implements(p, "normalize_score"):
                p.normalize_score(state, pod, scores)
            w = self.weights.get(p.name, 1)
            if w == 1:
                totals = [t + s for t, s in zip(totals, scores)]
            else:
                totals = [t + s * w for t, s in zip(totals, scores)]
        return totals

    @staticmethod
    def select_host(nodes: list[NodeInfo], scores: list[int]) -> NodeInfo:
        """The best score; ties broken at random."""
        top = max(scores)
        best = [i for i, s in enumerate(scores) if s == top]
        return nodes[best[0] if len(best) == 1 else random.choice(best)]
