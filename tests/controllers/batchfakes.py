"""Builders and a recording API client for the Job, CronJob and
TTL-after-finished controller tests: fill the caches, run one sync, compare
the calls made.  The clock is a settable number."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from k8py.client.informer import InformerFactory
from k8py.client.rest import APIError
from k8py.controllers.context import ControllerContext, Options

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def normal(self, obj: dict, reason: str, msg: str) -> None:
        self.events.append(("Normal", reason, msg))

    def warning(self, obj: dict, reason: str, msg: str) -> None:
        self.events.append(("Warning", reason, msg))

    def reasons(self) -> list[str]:
        return [r for _, r, _ in self.events]


class FakeClient:
    """Records every call; ``objects`` answers GETs by (plural, ns/name)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.objects: dict[tuple[str, str], dict] = {}
        self._rv = itertools.count(1000)
        self._n = itertools.count(1)

    def verbs(self) -> list[tuple[str, str]]:
        return [(c[0], c[1]) for c in self.calls]

    def of(self, verb: str, plural: str | None = None) -> list[Any]:
        return [c[2] for c in self.calls if c[0] == verb and (plural is None or c[1] == plural)]

    async def create(self, r: Any, obj: dict, namespace: str | None = None, **_: Any) -> dict:
        obj = copy.deepcopy(obj)
        md = obj["metadata"]
        if not md.get("name"):
            md["name"] = f"{md['generateName']}{next(self._n):05d}"
        md.setdefault("uid", f"uid-{md['name']}")
        md["resourceVersion"] = str(next(self._rv))
        self.calls.append(("create", r.plural, obj))
        return obj

    async def update_status(self, r: Any, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.calls.append(("status", r.plural, obj))
        return copy.deepcopy(obj)

    async def patch(self, r: Any, name: str, patch: Any, namespace: str | None = None, **kw: Any) -> dict:
        self.calls.append(("patch", r.plural, (f"{namespace}/{name}", patch)))
        return {"metadata": {"name": name, "namespace": namespace}}

    async def delete(self, r: Any, name: str, namespace: str | None = None, **kw: Any) -> Any:
        self.calls.append(("delete", r.plural, (f"{namespace}/{name}", kw)))
        return {}

    async def get(self, r: Any, name: str, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("get", r.plural, f"{namespace}/{name}"))
        o = self.objects.get((r.plural, f"{namespace}/{name}"))
        if o is None:
            raise APIError(404, {"reason": "NotFound", "message": f'{r.plural} "{name}" not found'})
        return copy.deepcopy(o)


def make_context(*components: str) -> tuple[ControllerContext, FakeClient, Recorder]:
    client = FakeClient()
    ctx = ControllerContext(client, InformerFactory(client), Options())  # type: ignore[arg-type]
    rec = Recorder()
    for c in components:
        ctx._recorders[c] = rec  # type: ignore[assignment]
    return ctx, client, rec


def put(ctx: ControllerContext, spec: str, *objs: dict) -> None:
    """Into the informer cache, without running handlers."""
    inf = ctx.informers.informer(spec)
    for o in objs:
        o["metadata"].setdefault("resourceVersion", "1")
        inf.store.put(o)


def ts(t: float) -> str:
    from k8py.client.timeutil import now_rfc3339
    return now_rfc3339(t)


def job(name: str = "pi", ns: str = "default", *, completions: int | None = 1, parallelism: int = 1,
        backoff: int = 6, status: dict | None = None, uid: str | None = None, **spec: Any) -> dict:
    uid = uid or f"uid-{name}"
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
              "controller-uid": uid, "job-name": name}
    sp: dict[str, Any] = {
        "parallelism": parallelism, "backoffLimit": backoff, "completionMode": "NonIndexed", "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
        "template": {"metadata": {"labels": labels},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}
    if completions is not None:
        sp["completions"] = completions
    sp.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "uid": uid, "generation": 1,
                         "creationTimestamp": ts(T0 - 100)},
            "spec": sp, "status": status if status is not None else {}}


def job_pod(j: dict, name: str, phase: str = "Running", *, ready: bool | None = None, finalizer: bool = True,
            index: int | None = None, deleting: bool = False, finished_at: float | None = None) -> dict:
    md: dict[str, Any] = {
        "name": name, "namespace": j["metadata"]["namespace"], "uid": f"uid-{name}",
        "labels": dict(j["spec"]["template"]["metadata"]["labels"]), "creationTimestamp": ts(T0 - 50),
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": j["metadata"]["name"],
                             "uid": j["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]}
    if finalizer:
        md["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    if index is not None:
        md["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    if deleting:
        md["deletionTimestamp"] = ts(T0 - 1)
        md["deletionGracePeriodSeconds"] = 0
    if ready is None:
        ready = phase == "Running"
    st: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": ts(finished_at if finished_at is not None else T0 - 40)}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {"nodeName": "n1"}, "status": st}
