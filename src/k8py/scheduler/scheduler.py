"""The scheduling loop: pop a pod, filter and score nodes through the
profile, assume the pod on the chosen node in the cache, and bind it in
the background (many binds in flight), so that the next pod's cycle
does not wait for the API server.

Informer handlers keep the cache (assigned pods, nodes) and the queue
(pending pods) current and turn changes into the cluster events that
move unschedulable pods back.  A pod that does not fit gets
PodScheduled=False with kube's "0/N nodes are available: ..." message
and a FailedScheduling event; a bound pod gets a Scheduled event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from ..client.events import EventRecorder
from ..client.informer import InformerFactory
from ..client.rest import STRATEGIC, APIError, Client, resource
from ..client.timeutil import now_rfc3339
from . import framework as fw
from .cache import Cache
from .framework import ClusterEvent, CycleState, Status
from .nodeinfo import NodeInfo, PodInfo
from .profile import Handle, Profile
from .queue import SchedulingQueue
from .trim import trim_node, trim_pod

log = logging.getLogger(__name__)
PODS = resource("pods")
NO_NODES = "no nodes available to schedule pods"
ACTIVE_PHASES = "status.phase!=Succeeded,status.phase!=Failed"


def fit_error_message(num_nodes: int, statuses: dict[str, Status], pre_filter_msg: str = "",
                      post_filter_msg: str = "") -> str:
    """framework.FitError.Error(): counted reasons, sorted as strings."""
    msg = f"0/{num_nodes} nodes are available:"
    if pre_filter_msg:
        msg += f" {pre_filter_msg}."
    else:
        hist: Counter[str] = Counter()
        for st in statuses.values():
            hist.update(st.reasons)
        items = sorted(f"{n} {r}" for r, n in hist.items())
        if items:
            msg += " " + ", ".join(items) + "."
    if post_filter_msg:
        msg += f" {post_filter_msg}"
    return msg


class Scheduler:
    def __init__(self, client: Client | None, informers: InformerFactory | None, *,
                 names: tuple[str, ...] = ("default-scheduler",), percentage_of_nodes_to_score: int = 0,
                 parallel_binds: int = 64, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 send_events: bool = True, event_qps: float = 50.0, event_burst: int = 100):
        self.client = client
        self.names = names
        self.cache = Cache()
        self.handle = Handle(self.cache, client, informers, scheduler=self)
        self.profile = Profile(self.handle, name=names[0], percentage_of_nodes_to_score=percentage_of_nodes_to_score)
        self.queue = SchedulingQueue(self.profile.events(), initial_backoff=initial_backoff,
                                     max_backoff=max_backoff)
        self.nominated: dict[str, dict[str, PodInfo]] = {}  # node -> uid -> pod nominated there
        self.recorder = EventRecorder(client, names[0]) if client is not None and send_events else None
        self.event_limiter = TokenBucket(event_qps, event_burst)
        self._bind_sem = asyncio.Semaphore(parallel_binds)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.scheduled = 0
        self.failed = 0
        self.pods_store = None
        if informers is not None:
            pods = informers.informer("pods", field_selector=ACTIVE_PHASES, transform=trim_pod, page_size=500)
            nodes = informers.informer("nodes", transform=trim_node)
            namespaces = informers.informer("namespaces")
            informers.informer("poddisruptionbudgets.policy")  # for preemption
            self.pods_store = pods.store
            namespaces.add_handler(self.on_namespace, lambda old, new: self.on_namespace(new),
                                   lambda ns: self.cache.namespace_labels.pop(ns["metadata"]["name"], None))
            nodes.add_handler(self.on_node_add, self.on_node_update, self.on_node_delete)
            pods.add_handler(self.on_pod_add, self.on_pod_update, self.on_pod_delete)

    # -- informer handlers ----------------------------------------------------------

    def responsible(self, pod: dict) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or "default-scheduler") in self.names

    def on_namespace(self, ns: dict) -> None:
        self.cache.namespace_labels[ns["metadata"]["name"]] = ns["metadata"].get("labels") or {}

    def on_node_add(self, node: dict) -> None:
        self.cache.add_node(node)
        self.queue.move_all(fw.NODE_ADD)

    def on_node_update(self, old: dict, new: dict) -> None:
        self.cache.add_node(new)
        actions = node_update_actions(old, new)
        if actions:
            self.queue.move_all(ClusterEvent(fw.NODE, actions, "NodeUpdate"))

    def on_node_delete(self, node: dict) -> None:
        self.cache.remove_node(node)

    def on_pod_add(self, pod: dict) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            p = self.cache.add_pod(pod)
            self._unnominate(p)
            if p.has_affinity or pod["metadata"].get("labels"):
                self.queue.move_all(fw.ASSIGNED_POD_ADD)
        elif self.responsible(pod) and not pod["metadata"].get("deletionTimestamp"):
            p = PodInfo(pod)
            self._nominate(p)
            if not p.gated:
                self.queue.add(p)

    def on_pod_update(self, old: dict, new: dict) -> None:
        spec = new.get("spec") or {}
        key = f"{new['metadata'].get('namespace', '')}/{new['metadata']['name']}"
        if spec.get("nodeName"):
            if not (old.get("spec") or {}).get("nodeName"):
                self.queue.delete(key)
                p = self.cache.add_pod(new)
                self._unnominate(p)
                if p.has_affinity or new["metadata"].get("labels"):
                    self.queue.move_all(fw.ASSIGNED_POD_ADD)
            else:
                self.cache.update_pod(old, new)
                if old["metadata"].get("labels") != new["metadata"].get("labels"):
                    self.queue.move_all(ClusterEvent(fw.POD, fw.UPDATE_POD_LABEL, "AssignedPodUpdate"))
            return
        if not self.responsible(new):
            return
        if new["metadata"].get("deletionTimestamp"):
            self.queue.delete(key)
            return
        p = self.queue.infos.get(key)
        changed = (old.get("spec") != new.get("spec")
                   or old["metadata"].get("labels") != new["metadata"].get("labels"))
        if p is None:
            p = PodInfo(new)
        elif changed:
            q = PodInfo(new)
            for attr in ("timestamp", "initial_attempt", "attempts", "unschedulable_plugins",
                         "pending_plugins", "backoff_until", "cycle"):
                setattr(q, attr, getattr(p, attr))
            p = q
        else:
            p.set_pod(new)
        self._nominate(p)
        if p.gated:
            self.queue.delete(key)
        else:
            self.queue.update(p, changed)

    def on_pod_delete(self, pod: dict) -> None:
        key = f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"
        removed = self.cache.remove_pod(pod)
        uid = pod["metadata"].get("uid") or ""
        for noms in self.nominated.values():
            noms.pop(uid, None)
        if (pod.get("spec") or {}).get("nodeName") or removed is not None:
            self.queue.move_all(fw.ASSIGNED_POD_DELETE)
        else:
            self.queue.delete(key)

    def _nominate(self, p: PodInfo) -> None:
        node = (p.pod.get("status") or {}).get("nominatedNodeName")
        self._unnominate(p)
        if node:
            self.nominated.setdefault(node, {})[p.uid] = p

    def clear_nomination(self, p: PodInfo) -> None:
        """A nominated pod of lower priority loses its place to a preemptor."""
        self._unnominate(p)
        if self.client is not None and (p.pod.get("status") or {}).get("nominatedNodeName"):
            self._spawn(self._patch_status(p, {"status": {"nominatedNodeName": None}}))

    def _unnominate(self, p: PodInfo) -> None:
        for name in [n for n, noms in self.nominated.items() if p.uid in noms]:
            del self.nominated[name][p.uid]
            if not self.nominated[name]:
                del self.nominated[name]

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        flush = asyncio.create_task(self.queue.run_flushes())
        try:
            while True:
                p = await self.queue.pop()
                try:
                    await self.schedule_one(p)
                except Exception:  # noqa: BLE001 - one pod must not stop the scheduler
                    log.exception("scheduling %s failed", p.key)
                    self.queue.add_unschedulable(p, backoff_only=True)
                await asyncio.sleep(0)
        finally:
            flush.cancel()
            for t in list(self._tasks):
                t.cancel()
            if self.recorder is not None:
                await self.recorder.flush(2.0)

    def _current(self, p: PodInfo) -> dict | None:
        if self.pods_store is None:
            return p.pod
        cur = self.pods_store.get(p.key)
        if cur is None or (cur["metadata"].get("uid") or p.uid) != p.uid:
            return None
        return cur

    async def schedule_one(self, p: PodInfo) -> str | None:
        cur = self._current(p)
        if (cur is None or (cur.get("spec") or {}).get("nodeName") or cur["metadata"].get("deletionTimestamp")
                or self.cache.is_assumed(p.uid)):
            self.queue.done(p.key)
            return None
        state = CycleState()
        nodes = self.cache.node_list()
        if not nodes:
            self._fail(p, Status(fw.ERROR, (NO_NODES,)), NO_NODES, "SchedulerError")
            return None
        statuses: dict[str, Status] = {}
        result, st = self.profile.run_pre_filter(state, p)
        pre_msg = ""
        feasible: list[NodeInfo] = []
        if st is not None:
            if st.code == fw.ERROR:
                self._fail(p, st, st.message, "SchedulerError")
                return None
            pre_msg = st.message
            p.unschedulable_plugins = {st.plugin}
            for n in nodes:
                statuses[n.name] = st
        else:
            candidates = nodes
            if result is not None and result.node_names is not None:
                candidates = [self.cache.nodes[n] for n in sorted(result.node_names)
                              if n in self.cache.nodes and self.cache.nodes[n].node is not None]
                for n in nodes:
                    if n.name not in result.node_names:
                        statuses[n.name] = fw.unresolvable("node(s) didn't satisfy plugin(s) [%s]"
                                                           % " ".join(sorted(self._pre_filter_narrowers(state, p))))
            feasible = self._find_feasible(state, p, candidates, statuses)
            p.unschedulable_plugins = {s.plugin for s in statuses.values() if s.plugin}
        if not feasible:
            post_msg = ""
            nominated = None
            for pf in self.profile.post_filters:
                nominated, pst = await pf.post_filter(state, p, statuses)
                if pst is not None and pst.message:
                    post_msg = pst.message
                if nominated:
                    break
            msg = fit_error_message(len(nodes), statuses, pre_msg, post_msg)
            self._fail(p, Status(fw.UNSCHEDULABLE, (msg,)), msg, "Unschedulable", nominated)
            return None
        if len(feasible) == 1:
            host = feasible[0]
        else:
            scores = self.profile.prioritize(state, p, feasible)
            host = self.profile.select_host(feasible, scores)
        self.cache.assume(p, host.name)
        for r in self.profile.reservers:
            rst = r.reserve(state, p, host.name)
            if rst is not None and not rst.ok:
                self.cache.forget(p)
                self._fail(p, rst, rst.message, "SchedulerError")
                return None
        self._spawn(self._bind(state, p, host.name))
        return host.name

    def _pre_filter_narrowers(self, state: CycleState, p: PodInfo) -> set[str]:
        return {pl.name for pl in self.profile.pre_filters if pl.name not in state.skip_filter
                and pl.name in ("NodeAffinity", "NodeName")}

    def _find_feasible(self, state: CycleState, p: PodInfo, nodes: list[NodeInfo],
                       statuses: dict[str, Status]) -> list[NodeInfo]:
        # a pod nominated by an earlier preemption tries its node first
        nom = (p.pod.get("status") or {}).get("nominatedNodeName")
        if nom and nom in self.cache.nodes and self.cache.nodes[nom].node is not None:
            ni = self.cache.nodes[nom]
            if self.filter_with_nominated(state, p, ni) is None:
                return [ni]
        if not self.nominated:
            return self.profile.find_feasible(state, p, nodes, statuses)
        # nodes with pods nominated to them: filter as if those pods were there too
        plain = [n for n in nodes if n.name not in self.nominated]
        feasible = self.profile.find_feasible(state, p, plain, statuses) if plain else []
        for n in nodes:
            if n.name in self.nominated:
                st = self.filter_with_nominated(state, p, n)
                if st is None:
                    feasible.append(n)
                else:
                    statuses[n.name] = st
        return feasible

    def filter_with_nominated(self, state: CycleState, p: PodInfo, ni: NodeInfo) -> Status | None:
        """RunFilterPluginsWithNominatedPods: pods of equal or higher priority
        nominated to the node count as if already there."""
        others = [q for q in self.nominated.get(ni.name, {}).values()
                  if q.uid != p.uid and q.priority >= p.priority]
        if others:
            clone = ni.clone()
            for q in others:
                clone.add_pod(q)
            st = self.profile.run_filter(state, p, clone)
            if st is not None:
                return st
        return self.profile.run_filter(state, p, ni)

    # -- binding ---------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _bind(self, state: CycleState, p: PodInfo, node: str) -> None:
        st: Status | None = None
        async with self._bind_sem:
            for b in self.profile.binders:
                st = await b.bind(state, p, node)
                if st is None or st.code != fw.SKIP:
                    break
        if st is None or st.ok:
            self.scheduled += 1
            self.queue.done(p.key)
            if self.recorder is not None and self.event_limiter.take():
                self.recorder.normal(p.pod, "Scheduled", f"Successfully assigned {p.key} to {node}")
            return
        log.info("binding %s to %s failed: %s", p.key, node, st.message)
        self.cache.forget(p)
        for r in self.profile.reservers:
            r.unreserve(state, p, node)
        self.queue.move_all(fw.ASSIGNED_POD_DELETE)
        self._fail(p, st, st.message, "SchedulerError")

    # -- failures ------------------------------------------------------------------------

    def _fail(self, p: PodInfo, st: Status, message: str, reason: str, nominated: str | None = None) -> None:
        self.failed += 1
        cur = self._current(p)
        if cur is None or (cur.get("spec") or {}).get("nodeName"):
            self.queue.done(p.key)
            return
        self.queue.add_unschedulable(p, backoff_only=st.code == fw.ERROR)
        if nominated:
            self._unnominate(p)
            self.nominated.setdefault(nominated, {})[p.uid] = p
        if self.recorder is not None and self.event_limiter.take():
            self.recorder.warning(cur, "FailedScheduling", message[:1024])
        if self.client is not None:
            patch = self._status_patch(cur, reason, message, nominated)
            if patch is not None:
                self._spawn(self._patch_status(p, patch))

    @staticmethod
    def _status_patch(pod: dict, reason: str, message: str, nominated: str | None) -> dict | None:
        status = pod.get("status") or {}
        old = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
        same = (old is not None and old.get("status") == "False" and old.get("reason") == reason
                and old.get("message") == message)
        nom_same = not nominated or status.get("nominatedNodeName") == nominated
        if same and nom_same:
            return None
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": (old.get("lastTransitionTime") if old is not None and old.get("status") == "False"
                                       else None) or now_rfc3339()}
        out: dict[str, Any] = {"conditions": [cond]}
        if nominated:
            out["nominatedNodeName"] = nominated
        return {"status": out}

    async def _patch_status(self, p: PodInfo, patch: dict) -> None:
        assert self.client is not None
        async with self._bind_sem:
            try:
                await self.client.patch(PODS, p.name, patch, p.namespace, content_type=STRATEGIC,
                                        subresource="status")
            except (APIError, OSError) as e:
                log.debug("status of %s not updated: %s", p.key, e)


class TokenBucket:
    """Events are API writes: at most ``qps`` a second (bursts of ``burst``),
    like kube-scheduler's client rate limit; the rest are dropped."""

    def __init__(self, qps: float, burst: int, clock: Any = time.monotonic):
        self.qps, self.burst, self.clock = qps, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def node_update_actions(old: dict, new: dict) -> int:
    """Which node changes happened (framework's NodeUpdate action types)."""
    a = 0
    os_, ns = old.get("status") or {}, new.get("status") or {}
    if os_.get("allocatable") != ns.get("allocatable"):
        a |= fw.UPDATE_NODE_ALLOCATABLE
    if old["metadata"].get("labels") != new["metadata"].get("labels"):
        a |= fw.UPDATE_NODE_LABEL
    osp, nsp = old.get("spec") or {}, new.get("spec") or {}
    if osp.get("taints") != nsp.get("taints") or bool(osp.get("unschedulable")) != bool(nsp.get("unschedulable")):
        a |= fw.UPDATE_NODE_TAINT
    oc = [(c.get("type"), c.get("status")) for c in os_.get("conditions") or ()]
    nc = [(c.get("type"), c.get("status")) for c in ns.get("conditions") or ()]
    if oc != nc:
        a |= fw.UPDATE_NODE_CONDITION
    return a



