"""From a pod's container spec to the runtime's ContainerConfig, as kubelet's
kuberuntime does it: the argv from command/args over the image's
entrypoint/cmd, the image's env under the container's, the working dir,
the user (securityContext over the image's numeric USER), resources in
the runtime's units, the merged pod and container security context, and
the pod's QoS cgroup parent.
"""

from __future__ import annotations

import re
from typing import Any

from ..api.defaults import pod_qos_class
from ..api.quantity import parse as parse_quantity
from .runtime.interface import Resources, SecurityContext

Obj = dict[str, Any]
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)|\$\$")


def expand(s: str, env: dict[str, str]) -> str:
    """kube's $(VAR) expansion: $$ is a literal $, unknown references stay as written."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _VAR.sub(sub, s)


def argv(container: Obj, image_entrypoint: list[str], image_cmd: list[str], env: dict[str, str]) -> list[str]:
    """kuberuntime's command resolution: command replaces the entrypoint (and drops the image's cmd);
    args replace the cmd; both expanded with the container's env."""
    command = container.get("command")
    args = container.get("args")
    if command:
        out = list(command) + list(args or [])
    else:
        out = list(image_entrypoint or []) + list(args if args else (image_cmd or []))
    return [expand(a, env) for a in out]


def merge_env(image_env: list[str], env: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The image's KEY=VALUE list first, the container's env over it (kube passes both; later wins)."""
    merged: dict[str, str] = {}
    for kv in image_env or []:
        k, _, v = kv.partition("=")
        merged[k] = v
    for k, v in env:
        merged[k] = v
    return tuple(merged.items())


def _millis(q: Any) -> int | None:
    if q in (None, ""):
        return None
    return int(parse_quantity(str(q)).milli_value())


def _bytes(q: Any) -> int | None:
    if q in (None, ""):
        return None
    return int(parse_quantity(str(q)).value())


def resources(container: Obj) -> Resources:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req = _millis(req.get("cpu"))
    if cpu_req is None and lim.get("cpu") not in (None, ""):
        cpu_req = _millis(lim.get("cpu"))  # kube defaults the request to the limit
    return Resources(cpu_request_millis=cpu_req, cpu_limit_millis=_millis(lim.get("cpu")),
                     memory_limit_bytes=_bytes(lim.get("memory")))


def _image_user(user: str) -> tuple[int | None, int | None]:
    """The image's USER when numeric ("1000" or "1000:1000"); names are not resolved."""
    u, _, g = (user or "").partition(":")
    uid = int(u) if u.isdigit() else None
    gid = int(g) if g.isdigit() else None
    return uid, gid


def security(pod: Obj, container: Obj, image_user: str = "") -> SecurityContext:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    img_uid, img_gid = _image_user(image_user)

    def pick(key: str) -> Any:
        v = csc.get(key)
        return psc.get(key) if v is None else v

    uid = pick("runAsUser")
    if uid is None:
        uid = img_uid or 0
    gid = pick("runAsGroup")
    if gid is None:
        gid = img_gid or 0
    groups = list(psc.get("supplementalGroups") or [])
    if psc.get("fsGroup") is not None:
        groups.append(psc["fsGroup"])
    caps = csc.get("capabilities") or {}
    return SecurityContext(run_as_user=int(uid), run_as_group=int(gid),
                           supplemental_groups=tuple(int(g) for g in groups),
                           readonly_rootfs=bool(csc.get("readOnlyRootFilesystem")),
                           privileged=bool(csc.get("privileged")),
                           add_capabilities=tuple(caps.get("add") or ()),
                           drop_capabilities=tuple(caps.get("drop") or ()))


def qos_class(pod: Obj) -> str:
    return (pod.get("status") or {}).get("qosClass") or pod_qos_class(pod)


def cgroup_parent(root: str, pod: Obj) -> str:
    """kubelet's cgroup layout with the cgroupfs driver: <root>/kubepods/[burstable|besteffort/]pod<uid>."""
    uid = pod["metadata"]["uid"]
    qos = qos_class(pod)
    base = f"{root.strip('/')}/kubepods"
    if qos == "Guaranteed":
        return f"{base}/pod{uid}"
    return f"{base}/{qos.lower()}/pod{uid}"


def image_policy(container: Obj) -> str:
    """imagePullPolicy, defaulted as the API server does (Always for :latest or no tag)."""
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = container.get("image") or ""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if not tag or tag == "latest" else "IfNotPresent"


def container_port_names(pod: Obj) -> dict[str, dict[str, int]]:
    """Per container, its named ports (for probes and hooks that name a port)."""
    out: dict[str, dict[str, int]] = {}
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        out[c["name"]] = {p["name"]: int(p["containerPort"]) for p in c.get("ports") or () if p.get("name")}
    return out


def host_ports(pod: Obj) -> list[tuple[int, int, str, str]]:
    """(hostPort, containerPort, protocol, hostIP) of every container port that asks for one."""
    out = []
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                out.append((int(p["hostPort"]), int(p["containerPort"]), str(p.get("protocol") or "TCP"),
                            str(p.get("hostIP") or "")))
    return out
