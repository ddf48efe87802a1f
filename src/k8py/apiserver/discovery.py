"""Discovery documents: /api, /apis, /api/v1, /apis/<group>/<version>, and /version."""

from __future__ import annotations

import base64
import hashlib
import platform
from typing import Any

from .. import __version__
from ..api.registry import Registry, Resource

KUBE_VERSION = (1, 32, 0)

# subresource -> (kind, group, version, verbs); kind None means the parent's kind
_SUBRESOURCES: dict[str, tuple[str | None, str, str, list[str]]] = {
    "status": (None, "", "", ["get", "patch", "update"]),
    "scale": ("Scale", "autoscaling", "v1", ["get", "patch", "update"]),
    "binding": ("Binding", "", "", ["create"]),
    "eviction": ("Eviction", "policy", "v1", ["create"]),
    "log": (None, "", "", ["get"]),
    "exec": ("PodExecOptions", "", "", ["create", "get"]),
    "attach": ("PodAttachOptions", "", "", ["create", "get"]),
    "portforward": ("PodPortForwardOptions", "", "", ["create", "get"]),
    "proxy": (None, "", "", ["create", "delete", "get", "patch", "update"]),
    "ephemeralcontainers": (None, "", "", ["get", "patch", "update"]),
    "finalize": (None, "", "", ["update"]),
    "token": ("TokenRequest", "authentication.k8s.io", "v1", ["create"]),
}
_PROXY_KINDS = {"Pod": "PodProxyOptions", "Node": "NodeProxyOptions", "Service": "ServiceProxyOptions"}


def version_info() -> dict[str, Any]:
    major, minor, patch = KUBE_VERSION
    return {
        "major": str(major), "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.{patch}+k8py{__version__}",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z", "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython", "platform": f"linux/{_arch()}",
    }


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _hash(r: Resource) -> str:
    h = hashlib.sha256(f"{r.group}/{r.stored_version}/{r.kind}".encode()).digest()[:8]
    return base64.b64encode(h).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(reg: Registry) -> dict[str, Any]:
    groups = [api_group(g, vs) for g, vs in reg.groups() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_doc(reg: Registry, group: str) -> dict[str, Any] | None:
    for g, vs in reg.groups():
        if g == group and g:
            doc = api_group(g, vs)
            doc.update({"kind": "APIGroup", "apiVersion": "v1"})
            return doc
    return None


def resource_list(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = reg.in_group_version(group, version)
    if not rs:
        return None
    out: list[dict[str, Any]] = []
    for r in sorted(rs, key=lambda x: x.plural):
        item: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            item["shortNames"] = list(r.short_names)
        if r.categories:
            item["categories"] = list(r.categories)
        if "list" in r.verbs:
            item["storageVersionHash"] = _hash(r)
        out.append(item)
        for sub in r.subresources:
            kind, g, v, verbs = _SUBRESOURCES[sub]
            if sub == "proxy":
                kind = _PROXY_KINDS.get(r.kind, r.kind)
            s: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                 "kind": kind or r.kind, "verbs": verbs}
            if g:
                s["group"], s["version"] = g, v
            out.append(s)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
