"""The kubelet half of a hollow node: the pods bound to this process's
nodes, taken through what a kubelet reports, without running anything.

One pod informer for all nodes (``spec.nodeName!=``), trimmed to the
fields used and filtered to this process's nodes; handlers queue keys;
``sync(key)`` compares the pod with its simulated state (a small
``PodRec``) and makes at most one status write per transition:

- Pending -> Running: a podIP from the node's podCIDR, init containers
  completed, containers running and ready (one write);
- Never/OnFailure pods: Succeeded (exit 0, Completed) after --pod-run-seconds;
- ``hollow.k8py.io/fail: "<code>"`` on a pod: its containers exit with
  that code after a second of running; restartPolicy decides (back-off and
  restart with restartCount+1, or Failed);
- deletionTimestamp: containers terminated after min(grace, 1 s), then
  the pod is deleted with gracePeriodSeconds=0 and a uid precondition.

A node whose heartbeat is stopped stands still: its pods are left alone
until it comes back, as with a kubelet that lost its network."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..client.events import EventRecorder
from ..client.informer import Informer
from ..client.rest import APIError, Client, resource
from ..client.timeutil import now_rfc3339, parse_time
from ..client.workqueue import RateLimiter, WorkQueue
from .node import ANNOTATION_FAIL
from .status import Terminated, conditions, container_status, init_statuses

log = logging.getLogger(__name__)
PODS = resource("pods")
Obj = dict[str, Any]
CRASH_AFTER = 1.0  # seconds a container of a pod marked to fail runs before it exits
KILL_AFTER = 1.0  # simulated time to stop containers on deletion (at most the grace period)
MAX_BACKOFF = 300.0


class PodRec:
    """What the simulated kubelet knows of one pod."""
    __slots__ = ("uid", "node", "ip", "state", "start_time", "started_at", "restarts", "last",
                 "next_at", "kill_at", "cidr")

    def __init__(self, uid: str, node: str):
        self.uid = uid
        self.node = node
        self.ip = ""
        self.cidr = ""
        self.state = "pending"  # pending | running | backoff | done
        self.start_time = ""
        self.started_at = 0.0  # when the current container instances started
        self.restarts = 0
        self.last: Terminated | None = None
        self.next_at = 0.0
        self.kill_at = 0.0


def trim(pod: Obj, mine: Callable[[str], bool]) -> Obj | None:
    """The fields the hollow kubelet uses, for pods on this process's nodes only."""
    spec = pod.get("spec") or {}
    node = spec.get("nodeName") or ""
    if not mine(node):
        return None
    md = pod.get("metadata") or {}
    # no resourceVersion: our own status writes then leave metadata equal
    tmd: Obj = {"name": md.get("name"), "namespace": md.get("namespace"), "uid": md.get("uid")}
    if md.get("deletionTimestamp"):
        tmd["deletionTimestamp"] = md["deletionTimestamp"]
        tmd["deletionGracePeriodSeconds"] = md.get("deletionGracePeriodSeconds")
    ann = md.get("annotations") or {}
    if ANNOTATION_FAIL in ann:
        tmd["annotations"] = {ANNOTATION_FAIL: ann[ANNOTATION_FAIL]}
    tspec: Obj = {"nodeName": node, "restartPolicy": spec.get("restartPolicy") or "Always",
                  "containers": [{"name": c.get("name"), "image": c.get("image", "")}
                                 for c in spec.get("containers") or ()]}
    if spec.get("initContainers"):
        tspec["initContainers"] = [{"name": c.get("name"), "image": c.get("image", ""),
                                    "restartPolicy": c.get("restartPolicy")}
                                   for c in spec["initContainers"]]
    st = pod.get("status") or {}
    tst = {k: st[k] for k in ("phase", "podIP", "startTime", "conditions", "containerStatuses") if k in st}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": tmd, "spec": tspec, "status": tst}


def ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod["status"].get("conditions") or ())


def shows_running(pod: Obj, rec: PodRec) -> bool:
    """Whether the API already shows the container instance last started."""
    cs = (pod["status"].get("containerStatuses") or [{}])[0]
    return "running" in (cs.get("state") or {}) and cs.get("restartCount") == rec.restarts


def fail_code(pod: Obj) -> int | None:
    v = ((pod["metadata"].get("annotations") or {}).get(ANNOTATION_FAIL))
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return 1


class PodRunner:
    def __init__(self, client: Client, nodes: Any, *, run_seconds: float = 5.0,
                 restart_backoff: float = 10.0, workers: int = 32,
                 recorder: EventRecorder | None = None, clock: Callable[[], float] = time.time):
        self.client = client
        self.nodes = nodes  # NodeSet: is_mine, is_stopped, host_ip, pod_cidr, ips_for
        self.run_seconds = run_seconds
        self.restart_backoff = restart_backoff
        self.workers = workers
        self.recorder = recorder
        self.clock = clock
        self.recs: dict[str, PodRec] = {}
        self.waiting: dict[str, set[str]] = {}  # node -> pods waiting for it (podCIDR, heartbeat)
        self.queue = WorkQueue("hollow-pods", RateLimiter(qps=1000.0, burst=1000))
        self.informer = Informer(client, PODS, field_selector="spec.nodeName!=",
                                 transform=lambda p: trim(p, nodes.is_mine))
        self.informer.add_handler(self._on_add, self._on_update, self._on_delete)

    # -- events ----------------------------------------------------------------

    def _key(self, pod: Obj) -> str:
        md = pod["metadata"]
        return f"{md['namespace']}/{md['name']}"

    def _on_add(self, pod: Obj) -> None:
        self.queue.add(self._key(pod))

    def _on_update(self, old: Obj, new: Obj) -> None:
        # our own status writes come back here; only spec/metadata changes matter
        rec = self.recs.get(self._key(new))
        if old["metadata"] != new["metadata"] or old["spec"] != new["spec"] or rec is None \
                or (rec.state == "running" and not ready(new) and ready(old)):
            self.queue.add(self._key(new))

    def _on_delete(self, pod: Obj) -> None:
        self.queue.add(self._key(pod))

    def node_changed(self, node: str) -> None:
        """The node got its podCIDR, or its heartbeat back: retry its waiting pods."""
        for key in self.waiting.pop(node, ()):
            self.queue.add(key)

    def _wait(self, node: str, key: str) -> None:
        self.waiting.setdefault(node, set()).add(key)

    # -- loop ------------------------------------------------------------------

    async def run(self) -> None:
        import asyncio
        self.informer.start()
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await self.informer.stop()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
            except APIError as e:
                log.info("pod %s: %s", key, e)
                self.queue.add_rate_limited(key)
            except Exception:  # noqa: BLE001 - retried with back-off
                log.exception("pod %s", key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)

    # -- the state machine -----------------------------------------------------

    async def sync(self, key: str) -> None:
        pod = self.informer.store.get(key)
        rec = self.recs.get(key)
        if pod is None:
            if rec is not None:
                self._forget(key, rec)
            return
        md, spec = pod["metadata"], pod["spec"]
        if rec is None or rec.uid != md["uid"]:
            if rec is not None:
                self._forget(key, rec)
            rec = self.recs[key] = self._adopt(pod)
        if self.nodes.is_stopped(rec.node):
            self._wait(rec.node, key)
            return
        now = self.clock()
        if md.get("deletionTimestamp"):
            await self._terminate(key, pod, rec, now)
            return
        if rec.state == "done":
            self._release(rec)
            return
        if rec.state == "pending":
            await self._start(key, pod, rec, now)
            return
        if rec.next_at > now:
            self.queue.add_after(key, rec.next_at - now)
            return
        code = fail_code(pod)
        if rec.state == "running" and code is None and not ready(pod) and shows_running(pod, rec):
            # someone else said not Ready (the node-lifecycle controller while
            # the node was lost): the kubelet reports its own view again
            await self._write(pod, self._running_status(pod, rec, now))
        if rec.state == "backoff":
            await self._restart(key, pod, rec, now)
        elif code is not None and now >= rec.started_at + CRASH_AFTER:
            await self._exit(key, pod, rec, now, code)
        elif code is not None:
            self.queue.add_after(key, rec.started_at + CRASH_AFTER - now)
        elif spec["restartPolicy"] != "Always":
            due = rec.started_at + self.run_seconds
            if now >= due:
                await self._exit(key, pod, rec, now, 0)
            else:
                rec.next_at = due
                self.queue.add_after(key, due - now)

    def _adopt(self, pod: Obj) -> PodRec:
        """A pod seen for the first time (maybe one this process ran before a restart)."""
        rec = PodRec(pod["metadata"]["uid"], pod["spec"]["nodeName"])
        st = pod["status"]
        phase = st.get("phase")
        if phase in ("Succeeded", "Failed"):
            rec.state = "done"
        elif phase == "Running" and st.get("podIP"):
            rec.ip = st["podIP"]
            rec.cidr = self.nodes.reserve_ip(rec.node, rec.ip)
            rec.start_time = st.get("startTime", "")
            rec.state = "running"
            cs = (st.get("containerStatuses") or [{}])[0]
            rec.restarts = cs.get("restartCount", 0)
            running = (cs.get("state") or {}).get("running")
            rec.started_at = parse_time((running or {}).get("startedAt")) or self.clock()
            term = (cs.get("lastState") or {}).get("terminated")
            if term:
                rec.last = Terminated(term.get("exitCode", 0), term.get("reason", ""), term.get("startedAt", ""),
                                      term.get("finishedAt", ""), max(rec.restarts - 1, 0))
            if not running:
                rec.state = "backoff"
                rec.next_at = self.clock() + self._backoff(rec.restarts)
        return rec

    def _backoff(self, restarts: int) -> float:
        return min(self.restart_backoff * (2 ** restarts), MAX_BACKOFF)

    async def _start(self, key: str, pod: Obj, rec: PodRec, now: float) -> None:
        cidr = self.nodes.pod_cidr(rec.node)
        if cidr is None:
            self._wait(rec.node, key)
            return
        ip = self.nodes.allocate_ip(rec.node, cidr)
        if ip is None:
            log.warning("pod %s: no free address in %s", key, cidr)
            self.queue.add_after(key, 5.0)
            return
        rec.ip, rec.cidr = ip, cidr
        rec.start_time = now_rfc3339(now)
        rec.started_at = now
        try:
            await self._write(pod, self._running_status(pod, rec, now))
        except APIError:
            self._release(rec)
            raise
        rec.state = "running"
        self._events_started(pod)
        self.queue.add(key)  # schedule what comes next (completion, crash)

    async def _exit(self, key: str, pod: Obj, rec: PodRec, now: float, code: int) -> None:
        policy = pod["spec"]["restartPolicy"]
        term = Terminated(code, "Completed" if code == 0 else "Error", now_rfc3339(rec.started_at),
                          now_rfc3339(now), rec.restarts)
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        if restart:
            rec.last = term
            rec.state = "backoff"
            delay = self._backoff(rec.restarts)
            rec.next_at = now + delay
            await self._write(pod, self._backoff_status(pod, rec, now, delay))
            if self.recorder:
                for c in pod["spec"]["containers"]:
                    self.recorder.warning(pod, "BackOff", "Back-off restarting failed container "
                                          f"{c['name']} in pod {pod['metadata']['name']}_"
                                          f"{pod['metadata']['namespace']}({rec.uid})")
            self.queue.add_after(key, delay)
        else:
            phase = "Succeeded" if code == 0 else "Failed"
            await self._write(pod, self._terminal_status(pod, rec, now, phase, term))
            rec.state = "done"
            self._release(rec)

    async def _restart(self, key: str, pod: Obj, rec: PodRec, now: float) -> None:
        rec.restarts += 1
        rec.started_at = now
        await self._write(pod, self._running_status(pod, rec, now))
        rec.state = "running"
        rec.next_at = 0.0
        self._events_started(pod)
        self.queue.add(key)

    async def _terminate(self, key: str, pod: Obj, rec: PodRec, now: float) -> None:
        md = pod["metadata"]
        if rec.state != "done" and rec.state != "pending":
            if not rec.kill_at:
                grace = md.get("deletionGracePeriodSeconds")
                rec.kill_at = now + min(KILL_AFTER, float(grace if grace is not None else 30))
                if self.recorder:
                    for c in pod["spec"]["containers"]:
                        self.recorder.normal(pod, "Killing", f"Stopping container {c['name']}")
            if now < rec.kill_at:
                self.queue.add_after(key, rec.kill_at - now)
                return
            term = Terminated(0, "Completed", now_rfc3339(rec.started_at), now_rfc3339(now), rec.restarts)
            await self._write(pod, self._terminal_status(pod, rec, now, "Succeeded", term))
            rec.state = "done"
        self._release(rec)
        try:
            await self.client.delete(PODS, md["name"], md["namespace"], uid=rec.uid, grace_period=0)
        except APIError as e:
            if e.code not in (404, 409):
                raise

    # -- status ----------------------------------------------------------------

    def _running_status(self, pod: Obj, rec: PodRec, now: float) -> Obj:
        spec, st, uid = pod["spec"], pod["status"], rec.uid
        started = now_rfc3339(rec.started_at)
        t = now_rfc3339(now)
        host = self.nodes.host_ip(rec.node)
        out: Obj = {"phase": "Running", "hostIP": host, "hostIPs": [{"ip": host}],
                    "podIP": rec.ip, "podIPs": [{"ip": rec.ip}], "startTime": rec.start_time,
                    "conditions": conditions(st.get("conditions"), t, sandbox=True, initialized=True,
                                             ready=True, not_ready=[]),
                    "containerStatuses": [container_status(uid, c, state={"running": {"startedAt": started}},
                                                           ready=True, started=True, restarts=rec.restarts,
                                                           last=rec.last) for c in spec["containers"]]}
        if spec.get("initContainers"):
            out["initContainerStatuses"] = init_statuses(uid, spec, rec.start_time, rec.start_time)
        return out

    def _backoff_status(self, pod: Obj, rec: PodRec, now: float, delay: float) -> Obj:
        spec, md = pod["spec"], pod["metadata"]
        names = [c["name"] for c in spec["containers"]]
        t = now_rfc3339(now)
        return {"phase": "Running",
                "conditions": conditions(pod["status"].get("conditions"), t, sandbox=True, initialized=True,
                                         ready=False, not_ready=names),
                "containerStatuses": [container_status(
                    rec.uid, c, ready=False, started=False, restarts=rec.restarts, last=rec.last,
                    state={"waiting": {"reason": "CrashLoopBackOff", "message":
                                       f"back-off {int(delay)}s restarting failed container={c['name']} "
                                       f"pod={md['name']}_{md['namespace']}({rec.uid})"}})
                    for c in spec["containers"]]}

    def _terminal_status(self, pod: Obj, rec: PodRec, now: float, phase: str, term: Terminated) -> Obj:
        spec = pod["spec"]
        t = now_rfc3339(now)
        return {"phase": phase,
                "conditions": conditions(pod["status"].get("conditions"), t, sandbox=False, initialized=True,
                                         ready=False, not_ready=[], terminal=phase),
                "containerStatuses": [container_status(rec.uid, c, state=term.state(rec.uid, c["name"]),
                                                       ready=False, started=False, restarts=rec.restarts,
                                                       last=rec.last) for c in spec["containers"]]}

    async def _write(self, pod: Obj, status: Obj) -> None:
        md = pod["metadata"]
        await self.client.patch(PODS, md["name"], {"metadata": {"uid": md["uid"]}, "status": status},
                                md["namespace"], subresource="status")

    def _events_started(self, pod: Obj) -> None:
        if not self.recorder:
            return
        for c in pod["spec"]["containers"]:
            self.recorder.normal(pod, "Pulled", f'Container image "{c["image"]}" already present on machine')
            self.recorder.normal(pod, "Created", f"Created container {c['name']}")
            self.recorder.normal(pod, "Started", f"Started container {c['name']}")

    # -- bookkeeping -----------------------------------------------------------

    def _release(self, rec: PodRec) -> None:
        if rec.ip:
            self.nodes.release_ip(rec.node, rec.cidr, rec.ip)
            rec.ip = ""

    def _forget(self, key: str, rec: PodRec) -> None:
        self._release(rec)
        self.recs.pop(key, None)
