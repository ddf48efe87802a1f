"""A container's environment, as the kubelet's ``makeEnvironmentVariables`` builds it.

Usage (by the kubelet, for each container it starts)::

    from k8py.kubelet import envvars

    svc_env = envvars.service_env_vars(services, pod_ns, pod["spec"].get("enableServiceLinks", True))
    try:
        env = await envvars.container_env(pod, container, get, pod_ip=ip, pod_ips=[ip],
                                          host_ip=node_ip, node_name=node,
                                          node_allocatable=alloc, service_env=svc_env)
    except envvars.CreateContainerConfigError as e:
        # waiting reason CreateContainerConfigError, message str(e); event "Error: <message>"
        ...

``get(kind, namespace, name)`` is the kubelet's async getter for "configmaps" and
"secrets" (None: not found).  The result is a list of (name, value) with unique
names: the service variables first, then envFrom, then env, each later source
overriding an earlier one in place, as kube's map-based merge does.

The module also holds what the downward API volume shares with env:
:func:`expand` (kube's ``third_party/forked/golang/expansion``),
:func:`pod_field_value` (``fieldRef``) and :func:`container_resource_value`
(``resourceFieldRef``, with limits defaulted to the node's allocatable).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from k8py.api import quantity

__all__ = [
    "CreateContainerConfigError",
    "Getter",
    "container_env",
    "container_resource_value",
    "expand",
    "format_map",
    "mapping_func_for",
    "pod_field_value",
    "service_env_vars",
]

Getter = Callable[[str, str, str], Awaitable[dict | None]]
Warn = Callable[[str, str], None]

# kube's masterServices: variables for these services in "default" reach every pod
MASTER_SERVICES = frozenset({"kubernetes"})

_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


class CreateContainerConfigError(Exception):
    """The container's config cannot be made (a missing ConfigMap, Secret or key...).

    The kubelet reports it as the waiting reason ``CreateContainerConfigError``
    with ``str(err)`` as the message, and retries on the next sync.
    """

    reason = "CreateContainerConfigError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- $(VAR) expansion -----------------------------------------------------------

def mapping_func_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """kube's ``MappingFuncFor``: the first context that has the name wins; an
    unknown name maps back to ``$(name)``, so the reference is left as written."""
    def mapping(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"
    return mapping


def expand(value: str, mapping: Callable[[str], str]) -> str:
    """Replace ``$(VAR)`` references as kube's expansion package does.

    ``$$`` is an escaped ``$``; an unclosed ``$(`` and a ``$`` before anything
    else are copied as they are; a ``$`` at the very end is kept.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(value)
    while cursor < n:
        if value[cursor] == "$" and cursor + 1 < n:
            out.append(value[checkpoint:cursor])
            rest = value[cursor + 1:]
            nxt = rest[0]
            if nxt == "$":                      # escaped operator
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = rest.find(")", 1)
                if close != -1:                 # a complete reference
                    out.append(mapping(rest[1:close]))
                    advance = close + 1
                else:                           # incomplete: keep "$("
                    out.append("$(")
                    advance = 1
            else:                               # an operator that starts nothing
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


# -- service links ---------------------------------------------------------------

def _env_name(s: str) -> str:
    name = s.replace(".", "_").replace("-", "_").upper()
    return "_" + name if name[:1].isdigit() else name


def _service_ip_set(svc: dict) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _from_service(svc: dict) -> list[tuple[str, str]]:
    """kube's envvars.FromServices for one service (host, ports, docker links)."""
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports:
        return []
    ip = spec["clusterIP"]
    prefix = _env_name(svc["metadata"]["name"])
    out = [(prefix + "_SERVICE_HOST", ip), (prefix + "_SERVICE_PORT", str(ports[0].get("port", 0)))]
    for p in ports:
        if p.get("name"):
            out.append((prefix + "_SERVICE_PORT_" + _env_name(p["name"]), str(p.get("port", 0))))
    for i, p in enumerate(ports):
        proto = p.get("protocol") or "TCP"
        port = p.get("port", 0)
        url = f"{proto.lower()}://{_join_host_port(ip, port)}"
        if i == 0:
            out.append((prefix + "_PORT", url))   # docker special-cases the first port
        pp = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [(pp, url), (pp + "_PROTO", proto.lower()), (pp + "_PORT", str(port)), (pp + "_ADDR", ip)]
    return out


def service_env_vars(services: Iterable[dict], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The service variables a pod in ``namespace`` sees (kube's getServiceEnvVarMap).

    The master services (``kubernetes`` in ``default``) always; the services of
    the pod's own namespace when ``enableServiceLinks`` (default true).  Services
    without a cluster IP (headless, ExternalName) give none.
    """
    chosen: dict[str, dict] = {}
    for svc in services:
        if not _service_ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "default")
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_from_service(chosen[name]))
    return env


# -- downward API: fieldRef -------------------------------------------------------

def _go_quote(s: str) -> str:
    """Go's strconv.Quote (what ``%q`` prints), for FormatMap."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif c < 0x80:
            out.append(f"\\x{c:02x}")
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


def format_map(m: Mapping[str, str] | None) -> str:
    """kube's fieldpath.FormatMap: ``key="value"`` lines, sorted, no final newline."""
    return "\n".join(f"{k}={_go_quote(m[k])}" for k in sorted(m or {}))


_SUBSCRIPT_RE = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]\Z", re.S)


def pod_field_value(pod: dict, field_path: str, *, pod_ip: str = "", pod_ips: list[str] | None = None,
                    host_ip: str = "", host_ips: list[str] | None = None) -> str:
    """The value of a ``fieldRef`` (kube's podFieldSelectorRuntimeValue + ExtractFieldPathAsString).

    Raises CreateContainerConfigError for a path kube does not support.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ips = list(pod_ips or ([pod_ip] if pod_ip else []))
    if ips:
        pod_ip = ips[0]
    if field_path == "spec.nodeName":
        return spec.get("nodeName", "")
    if field_path == "spec.serviceAccountName":
        return spec.get("serviceAccountName", "")
    if field_path == "status.hostIP":
        return (host_ips or [host_ip])[0] if (host_ips or host_ip) else ""
    if field_path == "status.hostIPs":
        return ",".join(host_ips or ([host_ip] if host_ip else []))
    if field_path == "status.podIP":
        return pod_ip
    if field_path == "status.podIPs":
        return ",".join(ips)
    if field_path == "spec.terminationGracePeriodSeconds":
        t = spec.get("terminationGracePeriodSeconds")
        return "30" if t is None else str(t)
    return metadata_field_value(pod, field_path)


def metadata_field_value(pod: dict, field_path: str) -> str:
    """kube's fieldpath.ExtractFieldPathAsString: the metadata fields (all a downward API volume may use)."""
    meta = pod.get("metadata") or {}
    m = _SUBSCRIPT_RE.match(field_path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if field_path == "metadata.annotations":
        return format_map(meta.get("annotations"))
    if field_path == "metadata.labels":
        return format_map(meta.get("labels"))
    if field_path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return meta.get(field_path.split(".", 1)[1], "")
    raise CreateContainerConfigError(f"unsupported fieldPath: {field_path}")


# -- downward API: resourceFieldRef -----------------------------------------------

_DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")


def _find_container(pod: dict, name: str) -> dict | None:
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        if c.get("name") == name:
            return c
    return None


def container_resource_value(ref: Mapping[str, Any], pod: dict, container: dict | None,
                             node_allocatable: Mapping[str, Any] | None) -> str:
    """The value of a ``resourceFieldRef`` (kube's ExtractContainerResourceValue).

    ``ref.containerName`` (required in volumes) picks the container; limits
    that are unset or zero default to the node's allocatable, as
    ``defaultPodLimitsForDownwardAPI`` does.  cpu is ``ceil(milli / divisor milli)``,
    memory, ephemeral-storage and hugepages ``ceil(value / divisor value)``.
    """
    cname = ref.get("containerName") or ""
    if cname:
        container = _find_container(pod, cname)
        if container is None:
            raise CreateContainerConfigError(f"container {cname} not found")
    if container is None:
        raise CreateContainerConfigError("resourceFieldRef needs a container")
    resources = container.get("resources") or {}
    limits = dict(resources.get("limits") or {})
    requests = dict(resources.get("requests") or {})
    for name in _DEFAULTED_LIMITS:
        cur = limits.get(name)
        if (cur is None or quantity.parse(cur).is_zero()) and node_allocatable and name in node_allocatable:
            limits[name] = node_allocatable[name]
    divisor_raw = ref.get("divisor")
    divisor = quantity.parse(divisor_raw) if divisor_raw not in (None, "", 0, "0") else quantity.parse("1")
    if divisor.is_zero():
        divisor = quantity.parse("1")
    res = ref.get("resource", "")
    kind, _, rname = res.partition(".")
    if kind not in ("limits", "requests") or not rname:
        raise CreateContainerConfigError(f"unsupported container resource : {res}")
    table = limits if kind == "limits" else requests
    if rname not in ("cpu", "memory", "ephemeral-storage") and not rname.startswith("hugepages-"):
        raise CreateContainerConfigError(f"unsupported container resource : {res}")
    q = quantity.parse(table[rname]) if rname in table else quantity.Quantity()
    if rname == "cpu":
        return str(math.ceil(q.milli_value() / divisor.milli_value()) if divisor.milli_value() else 0)
    d = divisor.value()
    return str(-(-q.value() // d) if d else 0)


# -- the whole environment ----------------------------------------------------------

def _b64(v: str) -> str:
    """A Secret's data value (base64 in API JSON) as the string Go's string([]byte) gives."""
    return base64.b64decode(v).decode("utf-8", "surrogateescape")


async def container_env(pod: dict, container: dict, get: Getter, *, pod_ip: str = "",
                        pod_ips: list[str] | None = None, host_ip: str = "",
                        host_ips: list[str] | None = None, node_name: str = "",
                        node_allocatable: Mapping[str, Any] | None = None,
                        service_env: Mapping[str, str] | None = None,
                        warn: Warn | None = None) -> list[tuple[str, str]]:
    """The container's environment (kube's makeEnvironmentVariables).

    ``warn(reason, message)`` is called for kube's warning events
    (InvalidEnvironmentVariableNames when envFrom keys are skipped).  ``node_name``
    fills ``spec.nodeName`` when the pod (a static pod) has none yet.
    """
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    if node_name and not (pod.get("spec") or {}).get("nodeName"):
        pod = {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node_name}}
    service_env = dict(service_env or {})
    configmaps: dict[str, dict] = {}
    secrets: dict[str, dict] = {}

    async def fetch(kind: str, name: str) -> dict | None:
        cache = configmaps if kind == "configmaps" else secrets
        if name in cache:
            return cache[name]
        obj = await get(kind, ns, name)
        if obj is not None:
            cache[name] = obj
        return obj

    def not_found(kind: str, name: str) -> CreateContainerConfigError:
        # the kubelet's configmap/secret managers answer NewNotFound("configmap"|"secret", name)
        return CreateContainerConfigError(f'{"configmap" if kind == "configmaps" else "secret"} "{name}" not found')

    tmp_env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        if src.get("configMapRef") is not None:
            kind, ref = "configmaps", src["configMapRef"]
        elif src.get("secretRef") is not None:
            kind, ref = "secrets", src["secretRef"]
        else:
            continue
        name = ref.get("name", "")
        obj = await fetch(kind, name)
        if obj is None:
            if ref.get("optional"):
                continue
            raise not_found(kind, name)
        if kind == "configmaps":
            items = dict(obj.get("data") or {})
        else:
            items = {k: _b64(v) for k, v in (obj.get("data") or {}).items()}
        invalid = []
        for k, v in items.items():
            k = prefix + k
            if not _ENV_NAME_RE.match(k):
                invalid.append(k)
                continue
            tmp_env[k] = v
        if invalid and warn is not None:
            what = "configMap" if kind == "configmaps" else "secret"
            warn("InvalidEnvironmentVariableNames",
                 f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {what} {ns}/{name} were skipped "
                 "since they are considered invalid environment variable names.")

    mapping = mapping_func_for(tmp_env, service_env)
    for ev in container.get("env") or []:
        value = ev.get("value") or ""
        vf = ev.get("valueFrom")
        if value:
            value = expand(value, mapping)
        elif vf:
            if vf.get("fieldRef") is not None:
                value = pod_field_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip,
                                        pod_ips=pod_ips, host_ip=host_ip, host_ips=host_ips)
            elif vf.get("resourceFieldRef") is not None:
                value = container_resource_value(vf["resourceFieldRef"], pod, container, node_allocatable)
            elif vf.get("configMapKeyRef") is not None or vf.get("secretKeyRef") is not None:
                is_cm = vf.get("configMapKeyRef") is not None
                kind = "configmaps" if is_cm else "secrets"
                ref = vf["configMapKeyRef"] if is_cm else vf["secretKeyRef"]
                name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
                obj = await fetch(kind, name)
                if obj is None:
                    if optional:
                        continue
                    raise not_found(kind, name)
                data = obj.get("data") or {}
                if key not in data:
                    if optional:
                        continue
                    raise CreateContainerConfigError(
                        f"couldn't find key {key} in {'ConfigMap' if is_cm else 'Secret'} {ns}/{name}")
                value = data[key] if is_cm else _b64(data[key])
        tmp_env[ev["name"]] = value

    merged = dict(service_env)
    merged.update(tmp_env)
    return list(merged.items())
