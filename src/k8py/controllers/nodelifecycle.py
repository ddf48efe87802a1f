"""The node-lifecycle controller: node health from heartbeats, and the
taints that follow from node conditions (kube's NodeLifecycleController
with TaintNodesByCondition and taint-based eviction).

- A node's heartbeat is observed when its Lease's renewTime or its Ready
  condition's lastHeartbeatTime changes (local clock, so no clock
  agreement is needed).  Not observed for ``--node-monitor-grace-period``
  (60 s before the kubelet's first Ready): Ready, MemoryPressure,
  DiskPressure and PIDPressure become Unknown, "Kubelet stopped posting
  node status.".  Each node is looked at when its deadline passes (a
  timer, not a scan of all nodes).
- Ready leaving True: a NodeNotReady event, and the node's pods get
  Ready=False (each with a NodeNotReady event).
- NoSchedule taints mirror conditions (not-ready, unreachable,
  memory/disk/pid-pressure, network-unavailable) and spec.unschedulable.
- NoExecute taints: ``node.kubernetes.io/not-ready`` when Ready=False,
  ``node.kubernetes.io/unreachable`` when Unknown, removed when Ready;
  new ones are rate-limited per zone (0.1 node/s; in a partially disrupted
  zone 0.01/s, or none in zones of up to 50 nodes), and none are kept when
  every node of the cluster is not Ready, as kube protects against a
  control-plane network split.  The taint-eviction controller acts on them."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any, Callable

from ..client.controller import Controller
from ..client.rest import APIError, resource
from ..client.timeutil import now_rfc3339
from .context import ControllerContext, register

log = logging.getLogger(__name__)
NODES = resource("nodes")
PODS = resource("pods")
Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {("Ready", "False"): NOT_READY, ("Ready", "Unknown"): UNREACHABLE,
                    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
                    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
                    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
                    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable"}
NO_SCHEDULE_KEYS = frozenset(CONDITION_TAINTS.values()) | {UNSCHEDULABLE}
NO_EXECUTE_KEYS = frozenset((NOT_READY, UNREACHABLE))
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
STARTUP_GRACE = 60.0
EVICTION_QPS, SECONDARY_QPS = 0.1, 0.01
LARGE_CLUSTER, UNHEALTHY_ZONE = 50, 0.55
ZONE_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone")
POD_NODE_INDEX = "spec.nodeName"


def pods_by_node(pod: Obj) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


def condition(node: Obj, typ: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == typ:
            return c
    return None


def zone_of(node: Obj) -> str:
    labels = node["metadata"].get("labels") or {}
    return ":\x00:".join(labels.get(k, "") for k in ZONE_LABELS)


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """The conditions with the kubelet's set Unknown; None when already so."""
    conds = copy.deepcopy((node.get("status") or {}).get("conditions") or [])
    seen = {c.get("type") for c in conds}
    changed = False
    for c in conds:
        if c.get("type") in KUBELET_CONDITIONS and c.get("status") != "Unknown":
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
            changed = True
    for t in KUBELET_CONDITIONS:
        if t not in seen:
            conds.append({"type": t, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                          "message": "Kubelet never posted node status.",
                          "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                          "lastTransitionTime": now})
            changed = True
    return conds if changed else None


def desired_taints(node: Obj, no_execute: bool) -> tuple[set[str], str | None]:
    """The NoSchedule taint keys the node's conditions call for, and the
    NoExecute one (None when Ready, or when ``no_execute`` is off)."""
    sched = {key for c in (node.get("status") or {}).get("conditions") or ()
             if (key := CONDITION_TAINTS.get((c.get("type"), c.get("status")))) is not None}
    if (node.get("spec") or {}).get("unschedulable"):
        sched.add(UNSCHEDULABLE)
    ready = condition(node, "Ready")
    status = ready.get("status") if ready else "Unknown"
    execute = None if status == "True" else (NOT_READY if status == "False" else UNREACHABLE)
    return sched, execute if no_execute else None


def merged_taints(taints: list[Obj], sched: set[str], execute: str | None, keep_execute: bool,
                  now: str) -> list[Obj] | None:
    """``taints`` with the managed ones made as wanted; None when unchanged.
    ``keep_execute``: leave an existing managed NoExecute taint alone."""
    out, changed = [], False
    have_sched, have_exec = set(), None
    for t in taints:
        k, eff = t.get("key"), t.get("effect")
        if eff == "NoSchedule" and k in NO_SCHEDULE_KEYS:
            if k not in sched:
                changed = True
                continue
            have_sched.add(k)
        elif eff == "NoExecute" and k in NO_EXECUTE_KEYS:
            if k != execute and not keep_execute:
                changed = True
                continue
            have_exec = k
        out.append(t)
    for k in sorted(sched - have_sched):
        out.append({"key": k, "effect": "NoSchedule"})
        changed = True
    if execute and have_exec is None:
        out.append({"key": execute, "effect": "NoExecute", "timeAdded": now})
        changed = True
    return out if changed else None


class Health:
    __slots__ = ("probe", "heartbeat", "ready")

    def __init__(self, probe: float, heartbeat: str | None, ready: str):
        self.probe = probe
        self.heartbeat = heartbeat
        self.ready = ready


class TokenBucket:
    def __init__(self, qps: float, clock: Callable[[], float]):
        self.qps, self.clock = qps, clock
        self.tokens = 1.0
        self.last = clock()

    def wait(self) -> float:
        """0 when a token is taken now, else seconds until one is due (none taken)."""
        now = self.clock()
        if self.qps <= 0:
            return float("inf")
        self.tokens = min(1.0, self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.qps


@register("node-lifecycle")
class NodeLifecycleController(Controller):
    name = "node-lifecycle"
    workers = 4

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.client = ctx.client
        self.grace = ctx.options.node_monitor_grace_period
        self.period = ctx.options.node_monitor_period
        self.recorder = ctx.recorder("node-controller")
        self.clock = clock
        self.health: dict[str, Health] = {}
        self.zone_state: dict[str, str] = {}  # zone -> Normal | PartialDisruption | FullDisruption
        self.all_down = False
        self.limiters: dict[tuple[str, float], TokenBucket] = {}
        self.nodes = ctx.informers.informer("nodes")
        self.leases = ctx.informers.informer("leases.coordination.k8s.io")
        self.pods = ctx.informers.informer("pods")
        self.pods.store.add_indexer(POD_NODE_INDEX, pods_by_node)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.leases.add_handler(self._lease_seen, lambda old, new: self._lease_seen(new))

    # -- observing heartbeats -----------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ready = condition(node, "Ready")
        self.health[name] = Health(self.clock(), ready.get("lastHeartbeatTime") if ready else None,
                                   ready.get("status", "Unknown") if ready else "Unknown")
        self.enqueue(name)

    def _node_updated(self, old: Obj, node: Obj) -> None:
        name = node["metadata"]["name"]
        h = self.health.get(name)
        if h is None:
            self._node_added(node)
            return
        ready = condition(node, "Ready")
        beat = ready.get("lastHeartbeatTime") if ready else None
        if beat != h.heartbeat:
            h.heartbeat = beat
            h.probe = self.clock()
        self.enqueue(name)

    def _node_deleted(self, node: Obj) -> None:
        self.health.pop(node["metadata"]["name"], None)

    def _lease_seen(self, lease: Obj) -> None:
        if lease["metadata"].get("namespace") != "kube-node-lease":
            return
        h = self.health.get(lease["metadata"]["name"])
        if h is not None:
            h.probe = self.clock()

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        monitor = asyncio.create_task(self._monitor_zones(), name="node-lifecycle zones")
        try:
            await super().run()
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)

    async def _monitor_zones(self) -> None:
        while True:
            self.compute_zones()
            await asyncio.sleep(self.period)

    def compute_zones(self) -> None:
        """Zone disruption states, from the Ready conditions in the cache
        (one pass over the nodes every --node-monitor-period)."""
        counts: dict[str, list[int]] = {}
        members: dict[str, list[str]] = {}
        for node in self.nodes.store.list():
            z = zone_of(node)
            c = condition(node, "Ready")
            ok = bool(c) and c.get("status") == "True"
            counts.setdefault(z, [0, 0])[0 if ok else 1] += 1
            members.setdefault(z, []).append(node["metadata"]["name"])
        states = {}
        for z, (ready, not_ready) in counts.items():
            if ready == 0 and not_ready > 0:
                states[z] = "FullDisruption"
            elif not_ready > 2 and not_ready / (ready + not_ready) >= UNHEALTHY_ZONE:
                states[z] = "PartialDisruption"
            else:
                states[z] = "Normal"
        all_down = bool(states) and all(s == "FullDisruption" for s in states.values())
        changed = {z for z in states if states[z] != self.zone_state.get(z)}
        if all_down != self.all_down:
            changed = set(states)
            log.info("all nodes not ready: %s; NoExecute taints %s", all_down,
                     "withheld" if all_down else "resumed")
        self.zone_state, self.all_down = states, all_down
        for z in changed:
            for name in members.get(z, ()):
                self.enqueue(name)

    def _zone_wait(self, zone: str) -> float:
        """0 when a new NoExecute taint may go on a node of this zone now."""
        state = self.zone_state.get(zone, "Normal")
        qps = EVICTION_QPS
        if state == "PartialDisruption":
            size = sum(1 for n in self.nodes.store.list() if zone_of(n) == zone)
            qps = SECONDARY_QPS if size > LARGE_CLUSTER else 0.0
        lim = self.limiters.get((zone, qps))
        if lim is None:
            lim = self.limiters[(zone, qps)] = TokenBucket(qps, self.clock)
        return lim.wait()

    async def sync(self, key: Any) -> None:
        name = str(key)
        node = self.nodes.store.get(name)
        h = self.health.get(name)
        if node is None or h is None:
            return
        now = self.clock()
        ready = condition(node, "Ready")
        grace = self.grace if ready is not None else STARTUP_GRACE
        if now - h.probe > grace:
            conds = unknown_conditions(node, now_rfc3339())
            if conds is not None:
                body = copy.deepcopy(node)
                body["status"]["conditions"] = conds
                node = await self.client.update_status(NODES, body)
                log.info("node %s: no heartbeat for %.0f s; conditions Unknown", name, now - h.probe)
        else:
            self.queue.add_after(name, h.probe + grace - now + 0.05)
        ready = condition(node, "Ready")
        status = ready.get("status", "Unknown") if ready else "Unknown"
        if h.ready == "True" and status != "True":
            self.recorder.normal(_ref(node), "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        h.ready = status
        await self._taint(node)

    async def _taint(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        sched, execute = desired_taints(node, not self.all_down)
        taints = (node.get("spec") or {}).get("taints") or []
        has_exec = next((t["key"] for t in taints if t.get("effect") == "NoExecute"
                         and t.get("key") in NO_EXECUTE_KEYS), None)
        keep = False
        if execute and has_exec is None:  # a new NoExecute taint waits for its zone's rate limiter
            wait = self._zone_wait(zone_of(node))
            if wait > 0:
                execute = None
                keep = True
                if wait != float("inf"):
                    self.queue.add_after(name, wait)
        new = merged_taints(taints, sched, execute, keep, now_rfc3339())
        if new is None:
            return
        body = copy.deepcopy(node)
        body["spec"]["taints"] = new
        if not new:
            del body["spec"]["taints"]
        await self.client.update(NODES, body)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        now = now_rfc3339()
        for pod in self.pods.store.by_index(POD_NODE_INDEX, node_name):
            st = pod.get("status") or {}
            if st.get("phase") in ("Succeeded", "Failed"):
                continue
            conds = copy.deepcopy(st.get("conditions") or [])
            hit = False
            for c in conds:
                if c.get("type") == "Ready" and c.get("status") != "False":
                    c.update(status="False", lastTransitionTime=now)
                    hit = True
            if not hit:
                continue
            md = pod["metadata"]
            try:
                await self.client.patch(PODS, md["name"], {"metadata": {"uid": md["uid"]},
                                                           "status": {"conditions": conds}},
                                        md["namespace"], subresource="status")
            except APIError as e:
                if e.code != 404:
                    raise
                continue
            self.recorder.warning(pod, "NodeNotReady", "Node is not ready")


def _ref(node: Obj) -> Obj:
    name = node["metadata"]["name"]
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": name}}
