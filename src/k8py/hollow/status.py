"""Pod status as a kubelet reports it, built from a hollow pod's simulated
state: container statuses (running, back-off, terminated) with well-formed
fake container and image IDs, and the pod conditions in kubelet's order
(PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled), each keeping its lastTransitionTime while unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..kubelet.shapes import conditions  # noqa: F401 - the kubelet's, shared

Obj = dict[str, Any]


@dataclass
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    restart: int  # which instance of the container it was

    def state(self, uid: str, name: str) -> Obj:
        return {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                               "startedAt": self.started_at, "finishedAt": self.finished_at,
                               "containerID": container_id(uid, name, self.restart)}}


def image_ref(image: str) -> tuple[str, str]:
    """The image as containerd reports it (``docker.io/library/nginx:latest``)
    and an image ID (``repo@sha256:...``)."""
    name, at, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    repo = name
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo = name.rsplit(":", 1)[0]
    elif not at:
        name += ":latest"
    if at:
        return f"{name}@{digest}", f"{repo}@{digest}"
    return name, f"{repo}@sha256:{hashlib.sha256(name.encode()).hexdigest()}"


def container_id(uid: str, name: str, restart: int) -> str:
    return "containerd://" + hashlib.sha256(f"{uid}/{name}/{restart}".encode()).hexdigest()


def container_status(uid: str, c: Obj, *, state: Obj, ready: bool, started: bool | None,
                     restarts: int, last: Terminated | None) -> Obj:
    image, image_id = image_ref(c.get("image") or "")
    st: Obj = {"name": c["name"], "image": image, "imageID": image_id,
               "ready": ready, "restartCount": restarts, "state": state,
               "lastState": last.state(uid, c["name"]) if last else {}}
    if started is not None:
        st["started"] = started
    cid = (state.get("running") and container_id(uid, c["name"], restarts)) \
        or (state.get("terminated") or {}).get("containerID")
    if cid:
        st["containerID"] = cid
    elif last:
        st["containerID"] = container_id(uid, c["name"], last.restart)
    return st


def init_statuses(uid: str, spec: Obj, started_at: str, finished_at: str) -> list[Obj]:
    """Init containers, all completed (sidecars, restartPolicy Always, running)."""
    out = []
    for c in spec.get("initContainers") or ():
        if c.get("restartPolicy") == "Always":
            out.append(container_status(uid, c, state={"running": {"startedAt": started_at}}, ready=True,
                                        started=True, restarts=0, last=None))
        else:
            state = Terminated(0, "Completed", started_at, finished_at, 0).state(uid, c["name"])
            out.append(container_status(uid, c, state=state, ready=True, started=False, restarts=0, last=None))
    return out
