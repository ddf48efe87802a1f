"""Storage object in-use protection: kube's ``pvc-protection`` and
``pv-protection`` controllers (``pkg/controller/volume/pvcprotection`` and
``pvprotection``).

The API server's admission puts ``kubernetes.io/pvc-protection`` on every new
PersistentVolumeClaim and ``kubernetes.io/pv-protection`` on every new
PersistentVolume (kube's StorageObjectInUseProtection plugin), so deleting
one only marks it Terminating.  These controllers take the finalizer off
once nothing needs the object any more:

- a claim, when no scheduled pod that has not finished uses it (the kubelet
  refuses to start a pod whose claim is being deleted, so unscheduled pods
  do not count).  The informer may lag behind a new pod, so before letting
  a claim go its namespace's pods are listed live, as kube does;
- a volume, when it is not Bound (its claim is gone, or it never had one).

Both also add their finalizer to objects that lack it (objects created
before the admission did it), as kube's do."""

from __future__ import annotations

import logging
from typing import Any, Hashable

from ..client.controller import Controller
from ..client.informer import Informer, key_of, split_key
from ..client.rest import APIError, is_not_found, resource
from .context import ControllerContext, register
from .persistentvolume import (PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER, VOLUME_BOUND, pod_claim_names,
                               pod_pvc_index)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = resource("pods")
PVS = resource("persistentvolumes")
PVCS = resource("persistentvolumeclaims")


def _finalizers(o: Obj) -> list[str]:
    return list((o.get("metadata") or {}).get("finalizers") or [])


def _deleting(o: Obj) -> bool:
    return bool((o.get("metadata") or {}).get("deletionTimestamp"))


def pod_uses_claim(pod: Obj, claim_name: str) -> bool:
    """``podUsesPVC``: a scheduled pod that has not shut down and names the
    claim (directly or through a generic ephemeral volume)."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return claim_name in pod_claim_names(pod)


async def _set_finalizers(client: Any, r: Any, obj: Obj, finalizers: list[str]) -> None:
    new = dict(obj, metadata=dict(obj["metadata"], finalizers=finalizers))
    if not finalizers:
        del new["metadata"]["finalizers"]
    try:
        await client.update(r, new)
    except APIError as e:
        if not is_not_found(e):
            raise  # a conflict: the next event brings the fresh copy


@register("pvc-protection")
class PVCProtectionController(Controller):
    name = "pvc-protection"
    workers = 1

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.claims: Informer = ctx.informers.informer("persistentvolumeclaims")
        self.pods: Informer = ctx.informers.informer("pods")
        self.pods.store.add_indexer("pvc", pod_pvc_index)
        self.claims.add_handler(self._claim, lambda o, n: self._claim(n), None)
        self.pods.add_handler(self._pod, lambda o, n: self._pod(n), self._pod)

    def _claim(self, c: Obj) -> None:
        fins = _finalizers(c)
        if _deleting(c) == (PVC_PROTECTION_FINALIZER in fins):  # deleting with it, or live without it
            self.enqueue(key_of(c))

    def _pod(self, p: Obj) -> None:
        """A pod that stops, goes or is scheduled changes whether its claims are in use."""
        for k in pod_pvc_index(p):
            c = self.claims.store.get(k)
            if c is not None and _deleting(c):
                self.enqueue(k)

    async def sync(self, key: Hashable) -> None:
        c = self.claims.store.get(str(key))
        if c is None:
            return
        fins = _finalizers(c)
        if not _deleting(c):
            if PVC_PROTECTION_FINALIZER not in fins:
                await _set_finalizers(self.client, PVCS, c, fins + [PVC_PROTECTION_FINALIZER])
            return
        if PVC_PROTECTION_FINALIZER not in fins:
            return
        if await self.in_use(c):
            return  # a pod event brings it back
        log.info("pvc-protection: %s is no longer used by pods: finalizer removed", key)
        await _set_finalizers(self.client, PVCS, c, [f for f in fins if f != PVC_PROTECTION_FINALIZER])

    async def in_use(self, claim: Obj) -> bool:
        ns, name = claim["metadata"].get("namespace", ""), claim["metadata"]["name"]
        if any(pod_uses_claim(p, name) for p in self.pods.store.by_index("pvc", f"{ns}/{name}")):
            return True
        pods = await self.client.list(PODS, ns)  # the cache may not have a pod created just now
        return any(pod_uses_claim(p, name) for p in pods.get("items") or ())


@register("pv-protection")
class PVProtectionController(Controller):
    name = "pv-protection"
    workers = 1

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.volumes: Informer = ctx.informers.informer("persistentvolumes")
        self.volumes.add_handler(self._volume, lambda o, n: self._volume(n), None)

    def _volume(self, v: Obj) -> None:
        if _deleting(v) == (PV_PROTECTION_FINALIZER in _finalizers(v)):
            self.enqueue(key_of(v))

    async def sync(self, key: Hashable) -> None:
        _, name = split_key(str(key))
        v = self.volumes.store.get(name)
        if v is None:
            return
        fins = _finalizers(v)
        if not _deleting(v):
            if PV_PROTECTION_FINALIZER not in fins:
                await _set_finalizers(self.client, PVS, v, fins + [PV_PROTECTION_FINALIZER])
            return
        if PV_PROTECTION_FINALIZER not in fins or (v.get("status") or {}).get("phase") == VOLUME_BOUND:
            return  # bound: the update that releases it brings it back
        log.info("pv-protection: %s is not bound: finalizer removed", name)
        await _set_finalizers(self.client, PVS, v, [f for f in fins if f != PV_PROTECTION_FINALIZER])
