"""A recording stand-in for the API client, for controller unit tests: fill
the informer caches, run one ``sync``, compare the calls made."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from k8py.client.informer import InformerFactory
from k8py.client.rest import APIError
from k8py.controllers.context import ControllerContext, Options


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self._rv = itertools.count(1000)
        self._n = itertools.count(1)
        self.fail: dict[str, APIError] = {}

    def _check(self, verb: str) -> None:
        if verb in self.fail:
            raise self.fail[verb]

    async def create(self, r: Any, obj: dict, namespace: str | None = None, **_: Any) -> dict:
        self._check("create")
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            md["name"] = f"{md['generateName']}{next(self._n):05d}"
        md["resourceVersion"] = str(next(self._rv))
        md.setdefault("uid", f"uid-{md['name']}")
        self.calls.append(("create", r.plural, obj))
        return obj

    async def update(self, r: Any, obj: dict, subresource: str | None = None, **_: Any) -> dict:
        self._check("update")
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.calls.append(("update" if not subresource else f"update/{subresource}", r.plural, obj))
        return obj

    async def update_status(self, r: Any, obj: dict) -> dict:
        return await self.update(r, obj, "status")

    async def delete(self, r: Any, name: str, namespace: str | None = None, **kw: Any) -> Any:
        self._check("delete")
        self.calls.append(("delete", r.plural, f"{namespace}/{name}" if namespace else name))
        return {}

    async def list(self, r: Any, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("list", r.plural, namespace))
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    async def get(self, r: Any, name: str, namespace: str | None = None, **_: Any) -> dict:
        raise APIError(404, {"reason": "NotFound"})

    class _Rec:
        def normal(self, *a: Any) -> None: ...
        def warning(self, *a: Any) -> None: ...


def make_context() -> tuple[ControllerContext, FakeClient]:
    client = FakeClient()
    ctx = ControllerContext(client, InformerFactory(client), Options())  # type: ignore[arg-type]
    ctx._recorders = _Recorders()  # type: ignore[assignment]
    return ctx, client


class _Recorders(dict):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def get(self, component: str, default: Any = None) -> Any:  # type: ignore[override]
        events = self.events

        class R:
            def normal(self, obj: dict, reason: str, msg: str) -> None:
                events.append(("Normal", reason, msg))

            def warning(self, obj: dict, reason: str, msg: str) -> None:
                events.append(("Warning", reason, msg))
        return R()


def put(ctx: ControllerContext, spec: str, *objs: dict) -> None:
    inf = ctx.informers.informer(spec)
    for i, o in enumerate(objs):
        o.setdefault("metadata", {}).setdefault("resourceVersion", str(10 + i))
        old = inf.store.put(o)
        for h in inf.handlers:
            if old is None and h.on_add:
                h.on_add(o)
            elif old is not None and h.on_update:
                h.on_update(old, o)


def pod(name: str, ns: str = "default", *, labels: dict | None = None, ip: str | None = "10.42.0.5",
        ready: bool = True, node: str = "n1", ports: list | None = None, deleting: bool = False,
        phase: str = "Running", owner: dict | None = None, **spec: Any) -> dict:
    md: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {"app": "web"},
                          "creationTimestamp": "2024-01-01T00:00:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:01:00Z"
        md["deletionGracePeriodSeconds"] = 30
    if owner:
        md["ownerReferences"] = [dict(owner, controller=True)]
    st: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2024-01-01T00:00:10Z"}]}
    if ip:
        st["podIP"] = ip
        st["podIPs"] = [{"ip": ip}]
    sp: dict[str, Any] = {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports or []}]}
    sp.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": sp, "status": st}


def service(name: str = "web", ns: str = "default", *, selector: dict | None = None, ports: list | None = None,
            **spec: Any) -> dict:
    sp: dict[str, Any] = {"selector": selector if selector is not None else {"app": "web"},
                          "ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                                      "targetPort": 8080, "protocol": "TCP"}],
                          "clusterIP": "10.43.0.20", "type": "ClusterIP"}
    sp.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-svc-{name}",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"tier": "front"}},
            "spec": sp}
