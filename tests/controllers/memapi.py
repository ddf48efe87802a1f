"""A small in-memory API for controller tests (garbage collector,
namespace, serviceaccount, pod GC): it keeps objects,
applies kube's deletion rules (preconditions, finalizers, propagation
finalizers) and the patches the collector sends, and feeds every change to
the informers' handlers as a watch would."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from k8py.client.informer import InformerFactory
from k8py.client.rest import APIError, resource
from k8py.controllers.context import ControllerContext, Options


def err(code: int, reason: str, msg: str = "") -> APIError:
    return APIError(code, {"reason": reason, "code": code, "message": msg})


class FakeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.calls: list[tuple] = []
        self.rv = itertools.count(100)
        self.grace: dict[str, int | None] = {}  # gracePeriodSeconds of each delete, by name
        self.informers = InformerFactory(self)  # type: ignore[arg-type]

    # ---- test helpers ----------------------------------------------------
    def add(self, spec: str, obj: dict, notify: bool = True) -> dict:
        r = resource(spec)
        obj = copy.deepcopy(obj)
        obj.setdefault("kind", r.kind)
        obj.setdefault("apiVersion", r.api_version)
        md = obj["metadata"]
        md["resourceVersion"] = str(next(self.rv))
        self.objects[(r.plural, md.get("namespace", ""), md["name"])] = obj
        if notify:
            self._emit(r, obj)
        return obj

    def obj(self, plural: str, ns: str, name: str) -> dict | None:
        return self.objects.get((plural, ns, name))

    def _emit(self, r: Any, obj: dict | None, deleted: dict | None = None) -> None:
        inf = self.informers.informer(r)
        if deleted is not None:
            key = f"{deleted['metadata'].get('namespace')}/{deleted['metadata']['name']}" \
                if deleted["metadata"].get("namespace") else deleted["metadata"]["name"]
            inf.store.remove(key)
            for h in inf.handlers:
                if h.on_delete:
                    h.on_delete(deleted)
            return
        assert obj is not None
        obj = copy.deepcopy(obj)
        old = inf.store.put(obj)
        for h in inf.handlers:
            if old is None and h.on_add:
                h.on_add(obj)
            elif old is not None and h.on_update:
                h.on_update(old, obj)

    def _write(self, r: Any, key: tuple, obj: dict) -> dict:
        md = obj["metadata"]
        gone = md.get("deletionTimestamp") and not md.get("finalizers")
        if r.kind == "Namespace":  # a namespace also waits for spec.finalizers
            gone = gone and not (obj.get("spec") or {}).get("finalizers")
        if gone:
            del self.objects[key]
            self._emit(r, None, obj)
            return obj
        md["resourceVersion"] = str(next(self.rv))
        self.objects[key] = obj
        self._emit(r, obj)
        return obj

    # ---- the client interface the collector uses -------------------------
    async def get(self, r: Any, name: str, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("get", r.plural, namespace or "", name))
        o = self.objects.get((r.plural, namespace or "", name))
        if o is None:
            raise err(404, "NotFound")
        return copy.deepcopy(o)

    async def delete(self, r: Any, name: str, namespace: str | None = None, *, uid: str | None = None,
                     resource_version: str | None = None, propagation: str | None = None,
                     grace_period: int | None = None) -> Any:
        self.calls.append(("delete", r.plural, namespace or "", name, propagation))
        self.grace[name] = grace_period
        return self._delete(r, name, namespace, uid, resource_version, propagation)

    def _delete(self, r: Any, name: str, namespace: str | None, uid: str | None, resource_version: str | None,
                propagation: str | None) -> dict:
        key = (r.plural, namespace or "", name)
        o = self.objects.get(key)
        if o is None:
            raise err(404, "NotFound")
        md = o["metadata"]
        if (uid and uid != md.get("uid")) or (resource_version and resource_version != md["resourceVersion"]):
            raise err(409, "Conflict", "Precondition failed")
        o = copy.deepcopy(o)
        md = o["metadata"]
        fins = list(md.get("finalizers") or [])
        if propagation == "Orphan" and "orphan" not in fins:
            fins.append("orphan")
        if propagation == "Foreground" and "foregroundDeletion" not in fins:
            fins.append("foregroundDeletion")
        if not fins:
            del self.objects[key]
            self._emit(r, None, o)
            return o
        md["finalizers"] = fins
        md.setdefault("deletionTimestamp", "2024-01-01T00:00:00Z")
        return self._write(r, key, o)

    async def patch(self, r: Any, name: str, patch: Any, namespace: str | None = None, *,
                    content_type: str = "", subresource: str | None = None, **_: Any) -> dict:
        self.calls.append(("patch", r.plural, namespace or "", name, patch))
        key = (r.plural, namespace or "", name)
        o = self.objects.get(key)
        if o is None:
            raise err(404, "NotFound")
        o = copy.deepcopy(o)
        md, pmd = o["metadata"], patch.get("metadata") or {}
        if pmd.get("resourceVersion") and pmd["resourceVersion"] != md["resourceVersion"]:
            raise err(409, "Conflict", "the object has been modified")
        if "finalizers" in pmd:
            md["finalizers"] = pmd["finalizers"] or []
            if not md["finalizers"]:
                del md["finalizers"]
        for pr in pmd.get("ownerReferences") or []:
            refs = md.get("ownerReferences") or []
            if pr.get("$patch") == "delete":
                refs = [x for x in refs if x["uid"] != pr["uid"]]
            else:
                refs = [dict(x, **pr) if x["uid"] == pr["uid"] else x for x in refs]
            md["ownerReferences"] = refs
        if "ownerReferences" in md and not md["ownerReferences"]:
            del md["ownerReferences"]
        return self._write(r, key, o)


    async def list(self, r: Any, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("list", r.plural, namespace or ""))
        items = [copy.deepcopy(o) for (p, ns, _n), o in sorted(self.objects.items())
                 if p == r.plural and (namespace is None or ns == namespace)]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    async def delete_collection(self, r: Any, namespace: str | None = None, *, propagation: str | None = None,
                                **_: Any) -> Any:
        self.calls.append(("deletecollection", r.plural, namespace or "", propagation))
        for (p, ns, n) in list(self.objects):
            if p == r.plural and ns == (namespace or ""):
                self._delete(r, n, ns or None, None, None, propagation)

    async def create(self, r: Any, obj: dict, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("create", r.plural, namespace or "", obj["metadata"]["name"]))
        key = (r.plural, namespace or "", obj["metadata"]["name"])
        if key in self.objects:
            raise err(409, "AlreadyExists")
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        return self.add(r.plural if not r.group else f"{r.plural}.{r.group}", obj)

    async def update(self, r: Any, obj: dict, subresource: str | None = None, **_: Any) -> dict:
        md = obj["metadata"]
        self.calls.append(("update" + (f"/{subresource}" if subresource else ""), r.plural,
                           md.get("namespace", ""), md["name"]))
        key = (r.plural, md.get("namespace", ""), md["name"])
        cur = self.objects.get(key)
        if cur is None:
            raise err(404, "NotFound")
        if md.get("resourceVersion") and md["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise err(409, "Conflict", "the object has been modified")
        new = copy.deepcopy(cur)
        if subresource == "status":
            new["status"] = copy.deepcopy(obj.get("status"))
        elif subresource == "finalize":
            new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
            if not new["spec"]["finalizers"] and new["metadata"].get("deletionTimestamp"):
                del self.objects[key]
                self._emit(r, None, new)
                return new
        else:
            new = copy.deepcopy(obj)
        return self._write(r, key, new)

    async def update_status(self, r: Any, obj: dict) -> dict:
        return await self.update(r, obj, "status")


def make_context(api: FakeAPI, **opts: Any) -> ControllerContext:
    ctx = ControllerContext(api, api.informers, Options(**opts))  # type: ignore[arg-type]

    class Rec:
        def __init__(self) -> None:
            self.events: list[tuple[str, str, str]] = []

        def normal(self, obj: dict, reason: str, msg: str) -> None:
            self.events.append(("Normal", reason, msg))

        def warning(self, obj: dict, reason: str, msg: str) -> None:
            self.events.append(("Warning", reason, msg))
    rec = Rec()
    ctx.recorder = lambda component: rec  # type: ignore[method-assign]
    return ctx


async def drain(controller: Any, limit: int = 1000) -> list[Exception]:
    """Runs ``sync`` on queued keys until the queue is empty (timers aside)."""
    failures: list[Exception] = []
    for _ in range(limit):
        if not len(controller.queue):
            break
        key = await controller.queue.get()
        try:
            await controller.sync(key)
        except Exception as e:  # noqa: BLE001 - kept for the test to inspect
            failures.append(e)
        finally:
            controller.queue.done(key)
    return failures


def cm(name: str, *owners: dict, ns: str = "default", block: bool = False, finalizers: list[str] | None = None,
       deleting: bool = False) -> dict:
    md: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}"}
    if owners:
        md["ownerReferences"] = [{"apiVersion": o.get("apiVersion", "v1"), "kind": o.get("kind", "ConfigMap"),
                                  "name": o["metadata"]["name"], "uid": o["metadata"]["uid"],
                                  "blockOwnerDeletion": block} for o in owners]
    if finalizers:
        md["finalizers"] = finalizers
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
