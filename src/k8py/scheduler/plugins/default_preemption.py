"""DefaultPreemption (post-filter): when no node fits, find a node where
evicting pods of lower priority would let the pod fit, as kube does it:
on each node where preemption might help, remove every lower-priority
pod, check the pod fits, then reprieve as many as possible (highest
priority first, PDB-violating ones first); pick the node with the fewest
PDB violations, then the lowest highest-victim priority, the lowest
priority sum, the fewest victims, the latest start.  The victims get the
DisruptionTarget condition and are deleted gracefully; the pod is
nominated to the node (status.nominatedNodeName) and retried when they
are gone."""

from __future__ import annotations

import asyncio
import logging
import random



from ...api import labels as labelsel
from ...client.rest import STRATEGIC, APIError, resource
from ...client.timeutil import now_rfc3339
from ..framework import (UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE, CycleState, Plugin, Status, implements,
                         register, unresolvable)
from ..nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)
NAME = "DefaultPreemption"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATE_PERCENTAGE = 10
MIN_CANDIDATE_ABSOLUTE = 100
PODS = resource("pods")
INT32_MAX = 2 ** 31 - 1


def _start(p: PodInfo) -> str:
    return (p.pod.get("status") or {}).get("startTime") or "9999"


def more_important(a: PodInfo, b: PodInfo) -> bool:
    if a.priority != b.priority:
        return a.priority > b.priority
    return _start(a) < _start(b)


class Candidate:
    __slots__ = ("node", "victims", "violations")

    def __init__(self, node: str, victims: list[PodInfo], violations: int):
        self.node, self.victims, self.violations = node, victims, violations


def pdb_violations(victims: list[PodInfo], pdbs: list[dict]) -> tuple[list[PodInfo], list[PodInfo]]:
    """filterPodsWithPDBViolation: (violating, non-violating)."""
    allowed = [int((p.get("status") or {}).get("disruptionsAllowed") or 0) for p in pdbs]
    sels = []
    for p in pdbs:
        try:
            sels.append(labelsel.from_label_selector((p.get("spec") or {}).get("selector")))
        except labelsel.SelectorError:
            sels.append(None)
    violating, ok = [], []
    for v in victims:
        bad = False
        for i, pdb in enumerate(pdbs):
            if pdb["metadata"].get("namespace") != v.namespace:
                continue
            sel = sels[i]
            if sel is None or sel.empty() or not sel.matches(v.labels):
                continue
            if v.name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                bad = True
        (violating if bad else ok).append(v)
    return violating, ok


@register
class DefaultPreemption(Plugin):
    name = NAME

    def _pdbs(self) -> list[dict]:
        inf = self.handle.informers
        if inf is None:
            return self.handle.extra.get("pdbs", [])
        return inf.informer("poddisruptionbudgets.policy").store.list()

    def eligible(self, pod: PodInfo, statuses: dict[str, Status]) -> str:
        spec = pod.pod.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nom = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nom:
            st = statuses.get(nom)
            if st is not None and st.code == UNSCHEDULABLE_AND_UNRESOLVABLE:
                return ""
            ni = self.handle.cache.nodes.get(nom)
            if ni is not None:
                for p in ni.pods.values():
                    if p.pod["metadata"].get("deletionTimestamp") and p.priority < pod.priority:
                        return "not eligible due to a terminating pod on the nominated node."
        return ""

    async def post_filter(self, state: CycleState, pod: PodInfo,
                          statuses: dict[str, Status]) -> tuple[str | None, Status | None]:
        msg = self.eligible(pod, statuses)
        if msg:
            return None, Status(UNSCHEDULABLE, ("preemption: " + msg,))
        cands, node_statuses = self.find_candidates(state, pod, statuses)
        if not cands:
            from ..scheduler import fit_error_message
            return None, Status(UNSCHEDULABLE, ("preemption: " + fit_error_message(len(node_statuses),
                                                                                   node_statuses),))
        best = self.select(cands)
        await self.prepare(best, pod)
        return best.node, None

    def find_candidates(self, state: CycleState, pod: PodInfo,
                        statuses: dict[str, Status]) -> tuple[list[Candidate], dict[str, Status]]:
        cache = self.handle.cache
        node_statuses: dict[str, Status] = {}
        potential: list[NodeInfo] = []
        for ni in cache.node_list():
            st = statuses.get(ni.name)
            if st is not None and st.code == UNSCHEDULABLE_AND_UNRESOLVABLE:
                node_statuses[ni.name] = unresolvable(NOT_HELPFUL)
            else:
                potential.append(ni)
        if not potential:
            return [], node_statuses
        pdbs = self._pdbs()
        n = len(potential)
        want = min(max(n * MIN_CANDIDATE_PERCENTAGE // 100, MIN_CANDIDATE_ABSOLUTE), n)
        offset = random.randrange(n)
        violating: list[Candidate] = []
        clean: list[Candidate] = []
        for i in range(n):
            ni = potential[(offset + i) % n]
            victims, nviol, st = self.select_victims(state.clone(), pod, ni.clone(), pdbs)
            if st is not None:
                node_statuses[ni.name] = st
                continue
            (violating if nviol else clean).append(Candidate(ni.name, victims, nviol))
            if clean and len(clean) + len(violating) >= want:
                break
        return clean + violating, node_statuses

    def _ext(self, point: str) -> list[Plugin]:
        prof = self.handle.profile
        assert prof is not None
        return [p for p in prof.pre_filters if implements(p, point)]

    def select_victims(self, state: CycleState, pod: PodInfo, ni: NodeInfo,
                       pdbs: list[dict]) -> tuple[list[PodInfo], int, Status | None]:
        sched = self.handle.scheduler
        removers = [p for p in self._ext("remove_pod") if p.name not in state.skip_filter]
        adders = [p for p in self._ext("add_pod") if p.name not in state.skip_filter]

        def remove(v: PodInfo) -> None:
            ni.remove_pod(v)
            for p in removers:
                p.remove_pod(state, pod, v, ni)

        def add(v: PodInfo) -> None:
            ni.add_pod(v)
            for p in adders:
                p.add_pod(state, pod, v, ni)

        def fits() -> Status | None:
            if sched is not None:
                return sched.filter_with_nominated(state, pod, ni)
            prof = self.handle.profile
            assert prof is not None
            return prof.run_filter(state, pod, ni)

        potential = [p for p in ni.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], 0, unresolvable(NO_VICTIMS)
        for v in potential:
            remove(v)
        st = fits()
        if st is not None:
            return [], 0, st
        potential.sort(key=lambda p: (-p.priority, _start(p)))
        bad, ok = pdb_violations(potential, pdbs)
        victims: list[PodInfo] = []
        nviol = 0
        for group, violating in ((bad, True), (ok, False)):
            for v in group:
                add(v)
                if fits() is not None:
                    remove(v)
                    victims.append(v)
                    if violating:
                        nviol += 1
        return victims, nviol, None

    @staticmethod
    def select(cands: list[Candidate]) -> Candidate:
        """pickOneNodeForPreemption's criteria, in order."""
        def highest(c: Candidate) -> int:
            return max((v.priority for v in c.victims), default=-INT32_MAX - 1)

        def prio_sum(c: Candidate) -> int:
            return sum(v.priority + INT32_MAX + 1 for v in c.victims)

        def latest_start(c: Candidate) -> str:
            top = highest(c)
            starts = [_start(v) for v in c.victims if v.priority == top]
            return min(starts) if starts else ""

        best = cands
        for key in (lambda c: c.violations, highest, prio_sum, lambda c: len(c.victims)):
            lo = min(key(c) for c in best)
            best = [c for c in best if key(c) == lo]
            if len(best) == 1:
                return best[0]
        top = max(latest_start(c) for c in best)
        return next(c for c in best if latest_start(c) == top)

    async def prepare(self, c: Candidate, pod: PodInfo) -> None:
        client = self.handle.client
        sched = self.handle.scheduler
        if client is None:
            return
        name = (pod.pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": f"{name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": now_rfc3339()}

        async def evict(v: PodInfo) -> None:
            try:
                await client.patch(PODS, v.name, {"status": {"conditions": [cond]}}, v.namespace,
                                   content_type=STRATEGIC, subresource="status")
                await client.delete(PODS, v.name, v.namespace, uid=v.uid)
            except (APIError, OSError) as e:
                log.info("preempting %s: %s", v.key, e)
                return
            if sched is not None and sched.recorder is not None:
                sched.recorder.normal(v.pod, "Preempted", f"Preempted by pod {pod.uid} on node {c.node}")

        await asyncio.gather(*(evict(v) for v in c.victims))
        # lower-priority pods nominated to this node lose their nomination
        if sched is not None:
            for other in list(sched.nominated.get(c.node, {}).values()):
                if other.priority < pod.priority and other.uid != pod.uid:
                    sched.clear_nomination(other)



