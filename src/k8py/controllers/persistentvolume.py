"""The persistent-volume binder (kube's ``pkg/controller/volume/persistentvolume``:
``pv_controller.go``, ``index.go`` and the storage helpers it calls).

PersistentVolumeClaims and PersistentVolumes point at each other:
``pvc.spec.volumeName`` and ``pv.spec.claimRef``.  This controller makes the
two halves agree, as kube's does, with the same writes in the same order
(each step survives a crash in the middle: the next sync finishes it):

1. ``pv.spec.claimRef`` (name, namespace, uid, resourceVersion of the claim),
   with ``pv.kubernetes.io/bound-by-controller`` when the user did not
   pre-bind the volume;
2. ``pv.status.phase`` = Bound;
3. ``pvc.spec.volumeName`` with ``pv.kubernetes.io/bind-completed`` (and
   ``bound-by-controller`` when the user did not name the volume);
4. ``pvc.status``: phase Bound, ``capacity`` and ``accessModes`` of the PV.

Matching (``findBestMatchForClaim``): among Available PVs whose access modes
are a superset of the claim's (the smallest such set of modes tried first),
with the claim's storage class (an empty class matches PVs without one),
capacity >= the request, the same volumeMode, labels matching the claim's
selector and no deletionTimestamp, the smallest wins.  A PV pre-bound with
``spec.claimRef`` is only for that claim (and is taken whatever its class
and labels); a claim with ``spec.volumeName`` only takes that PV
(``checkVolumeSatisfyClaim``: size, class, volumeMode, access modes).

When the claim goes away, the volume is Released and its reclaim policy
runs: Retain keeps it Released; Delete deletes the PV object.

Where k8py is simpler than kube, on purpose:

- **No dynamic provisioning.**  A claim with a class and no matching PV gets
  kube's events and stays Pending: ``ProvisioningFailed`` when the class
  does not exist or names an in-tree ``kubernetes.io/...`` provisioner (k8py
  has no in-tree plugins, as kube has none enabled for hostPath/local), and
  for any other provisioner the ``volume.kubernetes.io/storage-provisioner``
  annotations and ``ExternalProvisioning``, so an external provisioner could
  take over.  No default class is assigned retroactively.
- **WaitForFirstConsumer classes:** kube binds those claims from the
  scheduler's VolumeBinding plugin once a pod using them is placed; k8py's
  scheduler has no such plugin, so these claims stay Pending (with kube's
  ``WaitForFirstConsumer`` / ``WaitForPodScheduled`` events) unless they are
  pre-bound (``volumeName``, or a PV whose claimRef names them), which binds
  at once as in kube.  Immediate classes, and classes that do not exist,
  bind at once.
- **Delete** removes only the PV object: k8py has no volume plugin deleter
  (kube's hostPath deleter only removes ``/tmp/...`` directories, and local
  volumes have none); the data on the host stays.
- **Recycle** is deprecated in kube and k8py has no recycler: the volume is
  kept Released, as Retain, with a ``VolumeFailedRecycle`` warning carrying
  kube's "No recycler plugin found for the volume!".
- No CSI migration annotations, no volume-attributes classes, no metrics.

As kube's, the controller keeps the objects it wrote itself (an informer
lags behind its own writes: without them the next sync would see the old
versions and fight its own binding), syncs claims and volumes on one worker
(binding is not reentrant: two workers could give one volume to two claims)
and resyncs everything every 15 s.  A PV that becomes Available also wakes
the claims still waiting, so a claim created before its PV binds at once.

The ``kubernetes.io/pvc-protection`` / ``pv-protection`` finalizers are the
business of ``volumeprotection.py``."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, Hashable, Iterable

from ..api import quantity
from ..api.labels import SelectorError, from_label_selector
from ..client.controller import Controller
from ..client.informer import Informer, key_of
from ..client.rest import APIError, is_not_found, resource
from ..client.timeutil import now_rfc3339
from .context import ControllerContext, register

log = logging.getLogger(__name__)
Obj = dict[str, Any]

PVS = resource("persistentvolumes")
PVCS = resource("persistentvolumeclaims")

RESYNC_PERIOD = 15.0  # kube-controller-manager's --pvclaimbinder-sync-period

# annotations (kube's storagehelpers)
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"

# phases
VOLUME_PENDING, VOLUME_AVAILABLE, VOLUME_BOUND, VOLUME_RELEASED, VOLUME_FAILED = (
    "Pending", "Available", "Bound", "Released", "Failed")
CLAIM_PENDING, CLAIM_BOUND, CLAIM_LOST = "Pending", "Bound", "Lost"

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"

COMPONENT = "persistentvolume-controller"


# -- helpers (kube's storagehelpers) ------------------------------------------------------------------------

def _md(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _spec(o: Obj) -> Obj:
    return o.get("spec") or {}


def _status(o: Obj) -> Obj:
    return o.get("status") or {}


def _ann(o: Obj) -> dict[str, str]:
    return _md(o).get("annotations") or {}


def _phase(o: Obj) -> str:
    return _status(o).get("phase") or ""


def claim_key(claim: Obj) -> str:
    return key_of(claim)


def claimref_key(ref: Obj) -> str:
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


def claim_class(claim: Obj) -> str:
    """``GetPersistentVolumeClaimClass``: the beta annotation wins over
    ``spec.storageClassName``; no class is ""."""
    ann = _ann(claim)
    if ANN_BETA_STORAGE_CLASS in ann:
        return ann[ANN_BETA_STORAGE_CLASS]
    return _spec(claim).get("storageClassName") or ""


def volume_class(volume: Obj) -> str:
    """``GetPersistentVolumeClass``."""
    ann = _ann(volume)
    if ANN_BETA_STORAGE_CLASS in ann:
        return ann[ANN_BETA_STORAGE_CLASS]
    return _spec(volume).get("storageClassName") or ""


def _qty(v: Any) -> quantity.Quantity:
    try:
        return quantity.parse(v if v is not None else "0")
    except Exception:  # noqa: BLE001 - validation refuses bad quantities; treat leftovers as zero
        return quantity.parse("0")


def requested_storage(claim: Obj) -> quantity.Quantity:
    return _qty(((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_storage(volume: Obj) -> quantity.Quantity:
    return _qty((_spec(volume).get("capacity") or {}).get("storage"))


def volume_mode_mismatch(claim: Obj, volume: Obj) -> bool:
    """``CheckVolumeModeMismatches``: an unset mode is Filesystem."""
    return (_spec(claim).get("volumeMode") or "Filesystem") != (_spec(volume).get("volumeMode") or "Filesystem")


def access_modes_satisfied(claim: Obj, volume: Obj) -> bool:
    """``CheckAccessModes``: the volume offers every mode the claim asks for."""
    return set(_spec(claim).get("accessModes") or ()) <= set(_spec(volume).get("accessModes") or ())


def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """``IsVolumeBoundToClaim``: claimRef names the claim (and, if it has a
    uid, the claim's uid)."""
    ref = _spec(volume).get("claimRef")
    if not ref:
        return False
    md = _md(claim)
    if ref.get("name") != md.get("name") or ref.get("namespace") != md.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


def check_volume_satisfy_claim(volume: Obj, claim: Obj) -> str | None:
    """``checkVolumeSatisfyClaim``, for a claim naming its volume: the
    reason it cannot have it, or None."""
    if _md(volume).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{_md(volume).get("name")}"'
    if volume_storage(volume).value() < requested_storage(claim).value():
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_satisfied(claim, volume):
        return "incompatible accessMode"
    return None


def find_matching_volume(claim: Obj, volumes: Iterable[Obj], delay_binding: bool) -> Obj | None:
    """``FindMatchingVolume`` (the controller's path: no node): a volume
    pre-bound to the claim if there is one, else the smallest Available
    volume that fits."""
    requested = requested_storage(claim)
    cls = claim_class(claim)
    sel_raw = _spec(claim).get("selector")
    selector = None
    if sel_raw is not None:
        try:
            selector = from_label_selector(sel_raw)
        except SelectorError as e:
            raise ValueError(f"error creating internal label selector for claim: {claim_key(claim)}: {e}") from e
    smallest: Obj | None = None
    smallest_q: quantity.Quantity | None = None
    for volume in volumes:
        if _spec(volume).get("claimRef") and not is_volume_bound_to_claim(volume, claim):
            continue
        vq = volume_storage(volume)
        if vq < requested:
            continue
        if volume_mode_mismatch(claim, volume):
            continue
        if _md(volume).get("deletionTimestamp"):
            continue
        if is_volume_bound_to_claim(volume, claim):
            return volume  # pre-bound by the user: taken whatever else
        if delay_binding:
            continue  # the scheduler binds these (not in k8py: see the module docstring)
        if _phase(volume) != VOLUME_AVAILABLE:
            continue
        if selector is not None and not selector.matches(_md(volume).get("labels") or {}):
            continue
        if volume_class(volume) != cls:
            continue
        if smallest_q is None or smallest_q > vq:
            smallest, smallest_q = volume, vq
    return smallest


def find_best_match_for_claim(claim: Obj, volumes: Iterable[Obj], delay_binding: bool) -> Obj | None:
    """``persistentVolumeOrderedIndex.findBestMatchForClaim``: volumes are
    grouped by their set of access modes; groups offering every mode the
    claim asks for are tried from the fewest modes up, so a claim for RWO
    takes an RWO volume before an RWO+ROX one."""
    wanted = set(_spec(claim).get("accessModes") or ())
    groups: dict[frozenset[str], list[Obj]] = {}
    for v in volumes:
        groups.setdefault(frozenset(_spec(v).get("accessModes") or ()), []).append(v)
    for modes in sorted((m for m in groups if wanted <= m), key=lambda m: (len(m), sorted(m))):
        best = find_matching_volume(claim, sorted(groups[modes], key=lambda v: _md(v).get("name", "")),
                                    delay_binding)
        if best is not None:
            return best
    return None


def claim_ref(claim: Obj) -> Obj:
    """``reference.GetReference`` of a claim, as kube puts in ``claimRef``."""
    md = _md(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": md.get("namespace", ""), "name": md.get("name", ""),
            "uid": md.get("uid", ""), "apiVersion": "v1", "resourceVersion": md.get("resourceVersion", "")}


def pod_claim_names(pod: Obj) -> list[str]:
    """The claims a pod uses: persistentVolumeClaim volumes, and the claims
    of generic ephemeral volumes (``<pod>-<volume>``); kube's PodPVCIndex."""
    md = _md(pod)
    out = []
    for vol in _spec(pod).get("volumes") or ():
        pvc = vol.get("persistentVolumeClaim")
        if pvc and pvc.get("claimName"):
            out.append(pvc["claimName"])
        elif vol.get("ephemeral") is not None:
            out.append(f"{md.get('name', '')}-{vol.get('name', '')}")
    return out


def pod_pvc_index(pod: Obj) -> list[str]:
    ns = _md(pod).get("namespace", "")
    return [f"{ns}/{c}" for c in pod_claim_names(pod)]


def pod_terminated(pod: Obj) -> bool:
    """``IsPodTerminated``: finished, or being deleted with every container stopped."""
    st = _status(pod)
    if st.get("phase") in ("Succeeded", "Failed"):
        return True
    if _md(pod).get("deletionTimestamp"):
        statuses = st.get("containerStatuses") or []
        return all("running" not in (c.get("state") or {}) and "waiting" not in (c.get("state") or {})
                   for c in statuses)
    return False


def _newer(a: Obj | None, b: Obj | None) -> Obj | None:
    """The later of two copies of one object, by resourceVersion (kube's
    ``storeObjectUpdate`` compares them as integers)."""
    if a is None or b is None:
        return a or b

    def rv(o: Obj) -> int:
        try:
            return int(_md(o).get("resourceVersion") or 0)
        except ValueError:
            return 0
    return b if rv(b) > rv(a) else a


# -- the binder ---------------------------------------------------------------------------------------------

@register("persistentvolume-binder")
class PersistentVolumeController(Controller):
    """Keys are ``("claim", "ns/name")`` and ``("volume", "name")``; one
    worker, as kube runs one per queue (and binding is not reentrant)."""

    name = "persistentvolume-binder"
    workers = 1

    def __init__(self, ctx: ControllerContext, resync_period: float = RESYNC_PERIOD):
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.resync_period = resync_period
        self.volumes: Informer = ctx.informers.informer("persistentvolumes")
        self.claims: Informer = ctx.informers.informer("persistentvolumeclaims")
        self.classes: Informer = ctx.informers.informer("storageclasses.storage.k8s.io")
        self.pods: Informer = ctx.informers.informer("pods")
        self.pods.store.add_indexer("pvc", pod_pvc_index)
        # what we wrote, until the informers catch up (kube's own volume/claim caches)
        self._written: dict[tuple[str, str], Obj] = {}
        self.volumes.add_handler(self._volume_added, self._volume_updated, self._volume_deleted)
        self.claims.add_handler(self._claim_added, self._claim_updated, self._claim_deleted)

    # -- events ----------------------------------------------------------------------------------------------
    def _seen(self, kind: str, obj: Obj) -> None:
        k = (kind, key_of(obj))
        mine = self._written.get(k)
        if mine is not None and _newer(mine, obj) is obj:
            del self._written[k]

    def _volume_added(self, v: Obj) -> None:
        self._seen("volume", v)
        self.enqueue(("volume", key_of(v)))
        self._wake_claims(v)

    def _volume_updated(self, old: Obj, new: Obj) -> None:
        self._volume_added(new)

    def _volume_deleted(self, v: Obj) -> None:
        self._written.pop(("volume", key_of(v)), None)
        ref = _spec(v).get("claimRef")
        if ref:  # the claim may have lost its volume
            self.enqueue(("claim", claimref_key(ref)))

    def _wake_claims(self, v: Obj) -> None:
        """A volume anyone could take: the claims still waiting get another
        try now instead of at the next resync."""
        if _phase(v) != VOLUME_AVAILABLE or _md(v).get("deletionTimestamp"):
            return
        ref = _spec(v).get("claimRef")
        if ref:
            if not ref.get("uid"):
                self.enqueue(("claim", claimref_key(ref)))
            return
        for k, c in list(self.claims.store.items.items()):
            if ANN_BIND_COMPLETED not in _ann(c):
                self.enqueue(("claim", k))

    def _claim_added(self, c: Obj) -> None:
        self._seen("claim", c)
        self.enqueue(("claim", key_of(c)))

    def _claim_updated(self, old: Obj, new: Obj) -> None:
        self._claim_added(new)

    def _claim_deleted(self, c: Obj) -> None:
        self._written.pop(("claim", key_of(c)), None)
        vn = _spec(c).get("volumeName")
        if vn:  # its volume is released now
            self.enqueue(("volume", vn))

    # -- reads: the informer's copy or our own later one ----------------------------------------------------
    def volume(self, name: str) -> Obj | None:
        cur = self.volumes.store.get(name)
        if cur is None:
            return None
        return _newer(cur, self._written.get(("volume", name)))

    def claim(self, key: str) -> Obj | None:
        cur = self.claims.store.get(key)
        if cur is None:
            return None
        return _newer(cur, self._written.get(("claim", key)))

    def all_volumes(self) -> list[Obj]:
        return [_newer(v, self._written.get(("volume", k))) or v for k, v in self.volumes.store.items.items()]

    def _store(self, kind: str, obj: Obj) -> Obj:
        self._written[(kind, key_of(obj))] = obj
        return obj

    # -- sync -------------------------------------------------------------------------------------------------
    async def sync(self, key: Hashable) -> None:
        kind, k = key  # type: ignore[misc]
        if kind == "claim":
            claim = self.claim(k)
            if claim is not None:
                await self.sync_claim(claim)
        else:
            volume = self.volume(k)
            if volume is not None:
                await self.sync_volume(volume)

    async def sync_claim(self, claim: Obj) -> None:
        if ANN_BIND_COMPLETED not in _ann(claim):
            await self.sync_unbound_claim(claim)
        else:
            await self.sync_bound_claim(claim)

    def is_delay_binding(self, claim: Obj) -> bool:
        """``IsDelayBindingMode``: the claim's class exists and says
        WaitForFirstConsumer."""
        cls = claim_class(claim)
        if not cls:
            return False
        sc = self.classes.store.get(cls)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    async def sync_unbound_claim(self, claim: Obj) -> None:
        spec = _spec(claim)
        vn = spec.get("volumeName") or ""
        if not vn:
            delay = self.is_delay_binding(claim)
            try:
                volume = find_best_match_for_claim(claim, self.all_volumes(), delay)
            except ValueError as e:
                raise RuntimeError(f'error finding PV for claim "{claim_key(claim)}": {e}') from e
            if volume is not None:
                await self.bind(volume, claim)
                return
            if delay and ANN_SELECTED_NODE not in _ann(claim):
                self._event_for_delay_binding(claim)
            elif claim_class(claim):
                await self.provision_claim(claim)
                return
            else:
                self.recorder.normal(claim, "FailedBinding",
                                     "no persistent volumes available for this claim and no storage class is set")
            await self.update_claim_status(claim, CLAIM_PENDING, None)
            return
        volume = self.volume(vn)
        if volume is None:
            await self.update_claim_status(claim, CLAIM_PENDING, None)  # asked for a PV that does not exist (yet)
            return
        if not _spec(volume).get("claimRef"):
            why = check_volume_satisfy_claim(volume, claim)
            if why is not None:
                self.recorder.warning(claim, "VolumeMismatch", f'Cannot bind to requested volume "{vn}": {why}')
                await self.update_claim_status(claim, CLAIM_PENDING, None)
            else:
                await self.bind(volume, claim)
            return
        if is_volume_bound_to_claim(volume, claim):
            await self.bind(volume, claim)  # finish the binding: claimRef gets the uid
            return
        self.recorder.warning(claim, "FailedBinding", f'volume "{vn}" already bound to a different claim.')
        if ANN_BOUND_BY_CONTROLLER not in _ann(claim):
            await self.update_claim_status(claim, CLAIM_PENDING, None)  # the user's choice: wait for it
            return
        ref = _spec(volume)["claimRef"]
        raise RuntimeError(f'invalid binding of claim "{claim_key(claim)}" to volume "{vn}": volume already '
                           f'claimed by "{claimref_key(ref)}"')

    def _event_for_delay_binding(self, claim: Obj) -> None:
        """``emitEventForUnboundDelayBindingClaim``."""
        pods = [p for p in self.pods.store.by_index("pvc", claim_key(claim))
                if not pod_terminated(p) and not _spec(p).get("nodeName")]
        if not pods:
            self.recorder.normal(claim, "WaitForFirstConsumer",
                                 "waiting for first consumer to be created before binding")
            return
        names = sorted(_md(p).get("name", "") for p in pods)
        msg = (f"waiting for pods {','.join(names)} to be scheduled" if len(names) > 1
               else f"waiting for pod {names[0]} to be scheduled")
        self.recorder.normal(claim, "WaitForPodScheduled", msg)

    async def provision_claim(self, claim: Obj) -> None:
        """``provisionClaim`` without plugins: what kube tells the user when
        nothing in the controller-manager can provision the class."""
        cls = claim_class(claim)
        sc = self.classes.store.get(cls)
        if sc is None:
            self.recorder.warning(claim, "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls}" not found')
            return
        prov = sc.get("provisioner") or ""
        if prov.startswith("kubernetes.io/"):
            self.recorder.warning(claim, "ProvisioningFailed", f"no volume plugin matched name: {prov}")
            return
        ann = _ann(claim)
        if ann.get(ANN_STORAGE_PROVISIONER) != prov or ann.get(ANN_BETA_STORAGE_PROVISIONER) != prov:
            new = copy.deepcopy(claim)
            a = new["metadata"].setdefault("annotations", {})
            a[ANN_STORAGE_PROVISIONER] = prov
            a[ANN_BETA_STORAGE_PROVISIONER] = prov
            claim = self._store("claim", await self.client.update(PVCS, new))
        self.recorder.normal(claim, "ExternalProvisioning",
                             f"Waiting for a volume to be created either by the external provisioner '{prov}' "
                             "or manually by the system administrator. If volume creation is delayed, please "
                             "verify that the provisioner is running and correctly registered.")

    async def sync_bound_claim(self, claim: Obj) -> None:
        vn = _spec(claim).get("volumeName") or ""
        if not vn:
            await self.update_claim_status_with_event(
                claim, CLAIM_LOST, None, "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volume(vn)
        if volume is None:
            await self.update_claim_status_with_event(
                claim, CLAIM_LOST, None, "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = _spec(volume).get("claimRef")
        if not ref or ref.get("uid") == _md(claim).get("uid"):
            await self.bind(volume, claim)  # rebind a volume that came unbound; a no-op when all is well
            return
        await self.update_claim_status_with_event(
            claim, CLAIM_LOST, None, "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly")

    async def sync_volume(self, volume: Obj) -> None:
        ref = _spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            # unused, or pre-bound to a claim that has not bound yet: the claim's sync binds it
            await self.update_volume_phase(volume, VOLUME_AVAILABLE)
            return
        ckey = claimref_key(ref)
        claim = self.claim(ckey)
        if claim is None and _phase(volume) not in (VOLUME_RELEASED, VOLUME_FAILED):
            claim = await self._get_claim(ref)  # the informer may lag behind a new claim: never reclaim wrongly
        if claim is not None and _md(claim).get("uid") != ref.get("uid"):
            claim = await self._get_claim(ref)  # the cache may be older than the claimRef
            if claim is not None and _md(claim).get("uid") != ref.get("uid"):
                claim = None  # a new claim of the same name: ours was deleted
        if claim is None:
            just_released = False
            if _phase(volume) not in (VOLUME_RELEASED, VOLUME_FAILED):
                log.info("volume %s is released and reclaim policy %r will be executed", _md(volume).get("name"),
                         _spec(volume).get("persistentVolumeReclaimPolicy"))
                volume = await self.update_volume_phase(volume, VOLUME_RELEASED)
                just_released = True
            await self.reclaim_volume(volume, just_released)
            return
        cspec = _spec(claim)
        if not cspec.get("volumeName"):
            if volume_mode_mismatch(claim, volume):
                name = _md(volume).get("name", "")
                self.recorder.warning(volume, "VolumeMismatch",
                                      f'Cannot bind PersistentVolume to requested PersistentVolumeClaim '
                                      f'"{_md(claim).get("name", "")}" due to incompatible volumeMode.')
                self.recorder.warning(claim, "VolumeMismatch",
                                      f'Cannot bind PersistentVolume "{name}" to requested PersistentVolumeClaim '
                                      "due to incompatible volumeMode.")
                return
            self.enqueue(("claim", ckey))  # the claim's sync finishes the binding
            return
        if cspec["volumeName"] == _md(volume).get("name"):
            await self.update_volume_phase(volume, VOLUME_BOUND)
            return
        # bound to a claim that is bound elsewhere
        if (ANN_DYNAMICALLY_PROVISIONED in _ann(volume)
                and _spec(volume).get("persistentVolumeReclaimPolicy") == "Delete"):
            just_released = False
            if _phase(volume) not in (VOLUME_RELEASED, VOLUME_FAILED):
                volume = await self.update_volume_phase(volume, VOLUME_RELEASED)
                just_released = True
            await self.reclaim_volume(volume, just_released)
            return
        await self.unbind_volume(volume)

    async def _get_claim(self, ref: Obj) -> Obj | None:
        try:
            return await self.client.get(PVCS, ref.get("name", ""), ref.get("namespace", ""))
        except APIError as e:
            if is_not_found(e):
                return None
            raise

    # -- writes ----------------------------------------------------------------------------------------------
    async def update_claim_status(self, claim: Obj, phase: str, volume: Obj | None) -> Obj:
        """``updateClaimStatus``: phase, and the volume's access modes and
        capacity (capacity only when the claim becomes Bound: a later
        difference may be an intended resize)."""
        st = _status(claim)
        new_st = dict(st)
        dirty = False
        if st.get("phase") != phase:
            new_st["phase"] = phase
            dirty = True
        if volume is None:
            for f in ("accessModes", "capacity"):
                if f in new_st:
                    del new_st[f]
                    dirty = True
        else:
            vspec = _spec(volume)
            if st.get("accessModes") != vspec.get("accessModes"):
                new_st["accessModes"] = list(vspec.get("accessModes") or [])
                dirty = True
            if st.get("phase") != phase:
                vcap = (vspec.get("capacity") or {}).get("storage")
                if vcap is None:
                    raise RuntimeError(f'PersistentVolume "{_md(volume).get("name")}" is without a storage capacity')
                ccap = (st.get("capacity") or {}).get("storage")
                if ccap is None or quantity.cmp(vcap, ccap) != 0:
                    new_st["capacity"] = dict(vspec.get("capacity") or {})
                    dirty = True
        if not dirty:
            return claim
        new = dict(claim, status=new_st)
        out = await self.client.update_status(PVCS, new)
        log.info("claim %s entered phase %s", claim_key(claim), phase)
        return self._store("claim", out)

    async def update_claim_status_with_event(self, claim: Obj, phase: str, volume: Obj | None, reason: str,
                                             message: str) -> Obj:
        if _phase(claim) == phase:
            return claim
        new = await self.update_claim_status(claim, phase, volume)
        self.recorder.warning(new, reason, message)
        return new

    async def update_volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        """``updateVolumePhase``: the phase, its message and
        ``lastPhaseTransitionTime``."""
        if _phase(volume) == phase:
            return volume
        st = dict(_status(volume), phase=phase, lastPhaseTransitionTime=now_rfc3339())
        if message:
            st["message"] = message
        else:
            st.pop("message", None)
        out = await self.client.update_status(PVS, dict(volume, status=st))
        log.info("volume %s entered phase %s", _md(volume).get("name"), phase)
        return self._store("volume", out)

    async def update_volume_phase_with_event(self, volume: Obj, phase: str, reason: str, message: str) -> Obj:
        if _phase(volume) == phase:
            return volume
        new = await self.update_volume_phase(volume, phase, message)
        self.recorder.warning(new, reason, message)
        return new

    async def bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        """``GetBindVolumeToClaim`` + save: claimRef with the claim's uid and
        resourceVersion; bound-by-controller unless the user pre-bound it."""
        by_controller = not is_volume_bound_to_claim(volume, claim)
        ref = _spec(volume).get("claimRef") or {}
        md = _md(claim)
        dirty = False
        new = copy.deepcopy(volume)
        if (ref.get("name") != md.get("name") or ref.get("namespace") != md.get("namespace")
                or ref.get("uid") != md.get("uid")):
            new["spec"]["claimRef"] = claim_ref(claim)
            dirty = True
        if by_controller and ANN_BOUND_BY_CONTROLLER not in _ann(new):
            new["metadata"].setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
            dirty = True
        if not dirty:
            return volume
        log.info("claim %s bound to volume %s", claim_key(claim), _md(volume).get("name"))
        return self._store("volume", await self.client.update(PVS, new))

    async def bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        """``bindClaimToVolume``: volumeName (bound-by-controller when we chose
        the volume) and bind-completed."""
        new = copy.deepcopy(claim)
        ann = new["metadata"].setdefault("annotations", {})
        dirty = False
        name = _md(volume).get("name")
        if _spec(claim).get("volumeName") != name:
            new.setdefault("spec", {})["volumeName"] = name
            ann.setdefault(ANN_BOUND_BY_CONTROLLER, "yes")
            dirty = True
        if ANN_BIND_COMPLETED not in ann:
            ann[ANN_BIND_COMPLETED] = "yes"
            dirty = True
        if not dirty:
            return claim
        return self._store("claim", await self.client.update(PVCS, new))

    async def bind(self, volume: Obj, claim: Obj) -> None:
        """Volume first, then claim, each spec then status; any failure is
        retried by the next sync, which picks up where this one stopped."""
        volume = await self.bind_volume_to_claim(volume, claim)
        volume = await self.update_volume_phase(volume, VOLUME_BOUND)
        claim = await self.bind_claim_to_volume(claim, volume)
        await self.update_claim_status(claim, CLAIM_BOUND, volume)

    async def unbind_volume(self, volume: Obj) -> None:
        """``unbindVolume``: a binding the controller made is removed; a
        user's pre-binding keeps its name and loses only the uid."""
        new = copy.deepcopy(volume)
        if ANN_BOUND_BY_CONTROLLER in _ann(volume):
            new["spec"].pop("claimRef", None)
            anns = new["metadata"].get("annotations") or {}
            anns.pop(ANN_BOUND_BY_CONTROLLER, None)
            if not anns:
                new["metadata"].pop("annotations", None)
        else:
            new["spec"]["claimRef"] = {k: v for k, v in new["spec"]["claimRef"].items() if k != "uid"}
        out = self._store("volume", await self.client.update(PVS, new))
        await self.update_volume_phase(out, VOLUME_AVAILABLE)

    async def reclaim_volume(self, volume: Obj, just_released: bool = False) -> None:
        """``reclaimVolume``: the volume's reclaim policy, once it is released."""
        policy = _spec(volume).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain":
            return
        if policy == "Recycle":
            if just_released:
                self.recorder.warning(volume, "VolumeFailedRecycle", "No recycler plugin found for the volume!")
            return
        if policy == "Delete":
            await self.delete_volume(volume)
            return
        await self.update_volume_phase_with_event(volume, VOLUME_FAILED, "VolumeUnknownReclaimPolicy",
                                                  "Volume has unrecognized PersistentVolumeReclaimPolicy")

    async def delete_volume(self, volume: Obj) -> None:
        """``deleteVolumeOperation`` with nothing to delete but the object:
        re-read the volume, check it is still released, delete it (by uid,
        so a new PV of the same name is safe)."""
        name = _md(volume).get("name", "")
        try:
            fresh = await self.client.get(PVS, name)
        except APIError as e:
            if is_not_found(e):
                return
            raise
        if not await self.is_volume_released(fresh):
            return
        try:
            await self.client.delete(PVS, name, uid=_md(fresh).get("uid"))
        except APIError as e:
            if not is_not_found(e):
                raise
        log.info("volume %s deleted (reclaim policy Delete)", name)

    async def is_volume_released(self, volume: Obj) -> bool:
        """``isVolumeReleased``: bound (with a uid) to a claim that is gone,
        replaced, or bound to another volume."""
        ref = _spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            return False
        claim = self.claim(claimref_key(ref))
        if claim is not None and _md(claim).get("uid") == ref.get("uid"):
            vn = _spec(claim).get("volumeName")
            return bool(vn) and vn != _md(volume).get("name")
        return True

    # -- run --------------------------------------------------------------------------------------------------
    def resync(self) -> None:
        """Every claim and volume again (kube's periodic resync)."""
        for k in list(self.claims.store.items):
            self.enqueue(("claim", k))
        for k in list(self.volumes.store.items):
            self.enqueue(("volume", k))

    async def run(self) -> None:
        async def resync() -> None:
            while True:
                await asyncio.sleep(self.resync_period)
                self.resync()
        task = asyncio.create_task(resync(), name="persistentvolume-binder resync")
        try:
            await super().run()
        finally:
            task.cancel()
