"""A pod's status as kubelet computes it from its containers (kubelet's
generateAPIPodStatus and getPhase): container states with reasons,
restartCount and lastState, the phase, and the conditions in kubelet's
order (PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled), each keeping its lastTransitionTime while unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..client.timeutil import now_rfc3339
from .shapes import conditions as pod_conditions
from .runtime.interface import EXITED, RUNNING, ContainerStatus

Obj = dict[str, Any]
CONTAINER_ID_PREFIX = "k8py://"


def rfc3339(t: float) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated(st: ContainerStatus) -> Obj:
    t: Obj = {"exitCode": st.exit_code, "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
              "startedAt": rfc3339(st.started_at or st.created_at), "finishedAt": rfc3339(st.finished_at),
              "containerID": CONTAINER_ID_PREFIX + st.id}
    if st.message:
        t["message"] = st.message
    return {"terminated": t}


@dataclass
class ContainerView:
    """What the worker knows of one spec container when the status is made."""
    spec: Obj
    current: ContainerStatus | None      # the newest instance
    previous: ContainerStatus | None     # the one before it
    waiting: tuple[str, str] | None      # (reason, message) when not running and not shown terminated
    ready: bool
    started: bool | None
    image: str                           # the image as pulled (docker.io/library/x:tag)
    image_id: str


def container_status(v: ContainerView) -> Obj:
    cur = v.current
    st: Obj = {"name": v.spec["name"], "image": v.image or v.spec.get("image", ""), "imageID": v.image_id,
               "ready": v.ready, "restartCount": cur.attempt if cur else 0}
    last = v.previous
    if v.waiting is not None:
        reason, message = v.waiting
        w: Obj = {"reason": reason}
        if message:
            w["message"] = message
        st["state"] = {"waiting": w}
        if cur is not None and cur.state == EXITED:
            last = cur
    elif cur is not None and cur.state == RUNNING:
        st["state"] = {"running": {"startedAt": rfc3339(cur.started_at)}}
    elif cur is not None and cur.state == EXITED:
        st["state"] = terminated(cur)
    else:
        st["state"] = {"waiting": {"reason": "ContainerCreating"}}
    st["lastState"] = terminated(last) if last is not None and last.state == EXITED else {}
    if cur is not None:
        st["containerID"] = CONTAINER_ID_PREFIX + cur.id
    st["started"] = bool(v.started) if cur is not None and cur.state == RUNNING else False
    return st


def phase(spec: Obj, init: list[Obj], regular: list[Obj], pending_init: bool, terminal: bool) -> str:
    """kubelet's getPhase over the container statuses just made."""
    policy = spec.get("restartPolicy") or "Always"
    running = waiting = stopped = succeeded = 0
    for st in regular:
        state = st.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if (st.get("lastState") or {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
    if pending_init:
        if policy == "Never" and any(((s.get("state") or {}).get("terminated") or {}).get("exitCode", 0) != 0
                                     for s in init):
            return "Failed"
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped == len(regular) and regular:
        if policy == "Always" and not terminal:
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never" or terminal:
            return "Failed"
        return "Running"
    return "Pending"


def pod_status(pod: Obj, *, init: list[Obj], regular: list[Obj], pending_init: bool, sandbox_ready: bool,
               pod_ips: tuple[str, ...], host_ip: str, start_time: str, qos: str, terminal: bool = False,
               reason: str = "", message: str = "") -> Obj:
    old = pod.get("status") or {}
    ph = phase(pod.get("spec") or {}, init, regular, pending_init, terminal)
    not_ready = [s["name"] for s in regular if not s.get("ready")]
    done = ph if ph in ("Succeeded", "Failed") else ""
    conds = pod_conditions(old.get("conditions"), now_rfc3339(), sandbox=sandbox_ready and not done,
                           initialized=not pending_init, ready=not not_ready and not done,
                           not_ready=not_ready, terminal=done)
    # keep conditions that others own (e.g. DisruptionTarget, readiness gates)
    mine = {c["type"] for c in conds}
    conds += [c for c in old.get("conditions") or () if c.get("type") not in mine]
    status: Obj = {"phase": ph, "conditions": conds, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                   "startTime": start_time, "qosClass": qos, "containerStatuses": regular}
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    if init:
        status["initContainerStatuses"] = init
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status
