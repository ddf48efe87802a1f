"""Builders for the node controllers' unit tests, and a fake client that
also records patches."""

from __future__ import annotations

from typing import Any

from tests.controllers.fakeapi import FakeClient, make_context


class PatchingClient(FakeClient):
    async def patch(self, r: Any, name: str, patch: Any, namespace: str | None = None, *,
                    subresource: str | None = None, **_: Any) -> dict:
        self._check("patch")
        verb = f"patch/{subresource}" if subresource else "patch"
        self.calls.append((verb, r.plural, (f"{namespace}/{name}" if namespace else name, patch)))
        return {}


def node_context():
    ctx, _ = make_context()
    client = PatchingClient()
    ctx.client = client  # type: ignore[assignment]
    ctx.informers.client = client  # type: ignore[assignment]
    return ctx, client


def node(name: str, *, ready: str = "True", cidr: str = "", taints: list | None = None,
         heartbeat: str = "2024-01-01T00:00:00Z", labels: dict | None = None, **spec: Any) -> dict:
    sp: dict[str, Any] = dict(spec)
    if cidr:
        sp["podCIDR"], sp["podCIDRs"] = cidr, [cidr]
    if taints:
        sp["taints"] = taints
    conds = [{"type": t, "status": s, "reason": "Kubelet", "lastHeartbeatTime": heartbeat,
              "lastTransitionTime": "2024-01-01T00:00:00Z"}
             for t, s in (("MemoryPressure", "False"), ("DiskPressure", "False"), ("PIDPressure", "False"),
                          ("Ready", ready))]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels or {},
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": sp, "status": {"conditions": conds}}


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t
