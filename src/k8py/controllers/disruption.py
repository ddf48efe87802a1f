"""The disruption controller (kube's ``pkg/controller/disruption``): the
status of every PodDisruptionBudget, which the eviction subresource reads.

- ``expectedPods``: with ``maxUnavailable``, or a percentage
  ``minAvailable``, the sum of the scales of the selected pods' controllers
  (Deployment through its ReplicaSet, ReplicaSet, ReplicationController,
  StatefulSet, or any kind with a scale subresource); with an integer
  ``minAvailable``, the number of selected pods.  Percentages round up.
- ``desiredHealthy``: minAvailable, or expectedPods - maxUnavailable.
- ``currentHealthy``: selected pods that are Ready, not being deleted and
  not recently evicted (in ``disruptedPods``).
- ``disruptionsAllowed``: currentHealthy - desiredHealthy (0 when no pods
  are expected), with the ``DisruptionAllowed`` condition
  (SufficientPods / InsufficientPods).
- ``disruptedPods``: evicted pods still present; an entry older than two
  minutes is dropped (with a ``NotDeleted`` event on the pod), and the
  budget is looked at again when the next one would expire.

When the status cannot be computed (a pod whose controller cannot be
found), the budget fails safe: no disruptions allowed, condition reason
``SyncFailed``."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from ..api import labels
from ..api.registry import REGISTRY
from ..client.controller import Controller
from ..client.informer import key_of
from ..client.rest import APIError, is_conflict, resource
from ..client.timeutil import now_rfc3339, parse_time
from .context import ControllerContext, register
from .endpointutil import is_pod_ready

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PDBS = resource("poddisruptionbudgets.policy")
DELETION_TIMEOUT = 120.0


class SyncError(Exception):
    pass


def scaled_value(v: int | str, total: int) -> int:
    """``GetScaledValueFromIntOrPercent`` rounding up."""
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.endswith("%"):
        try:
            pct = int(v[:-1])
        except ValueError:
            raise SyncError(f"invalid value for IntOrString: invalid value {v!r}") from None
        return math.ceil(pct * total / 100)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    raise SyncError(f"invalid value for IntOrString: invalid type: string is not a percentage")


def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def count_healthy(pods: list[Obj], disrupted: dict[str, str], now: float) -> int:
    n = 0
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        t = parse_time(disrupted.get(p["metadata"]["name"]))
        if t is not None and t + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(p):
            n += 1
    return n


def build_disrupted(pods: list[Obj], pdb: Obj, now: float,
                    not_deleted: Callable[[Obj], None] | None = None) -> tuple[dict[str, str], float | None]:
    """The disruptedPods entries still pending, and when the next one expires."""
    have = (pdb.get("status") or {}).get("disruptedPods") or {}
    out: dict[str, str] = {}
    recheck: float | None = None
    if not have:
        return out, None
    for p in pods:
        name = p["metadata"]["name"]
        if p["metadata"].get("deletionTimestamp") or name not in have:
            continue
        t = parse_time(have[name])
        if t is None:
            continue
        expires = t + DELETION_TIMEOUT
        if expires < now:
            if not_deleted is not None:
                not_deleted(p)
        else:
            recheck = expires if recheck is None else min(recheck, expires)
            out[name] = have[name]
    return out, recheck


def set_condition(conds: list[Obj], cond: Obj) -> list[Obj]:
    """``meta.SetStatusCondition``: the transition time moves only when the status does."""
    out = [dict(c) for c in conds]
    for c in out:
        if c.get("type") == cond["type"]:
            if c.get("status") != cond["status"]:
                c["status"] = cond["status"]
                c["lastTransitionTime"] = now_rfc3339()
            c["reason"], c["message"] = cond["reason"], cond.get("message", "")
            c["observedGeneration"] = cond.get("observedGeneration", 0)
            return out
    out.append(dict(cond, lastTransitionTime=now_rfc3339()))
    return out


def conditions_up_to_date(pdb: Obj) -> bool:
    st = pdb.get("status") or {}
    cond = next((c for c in st.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
    if cond is None or st.get("observedGeneration") != pdb["metadata"].get("generation"):
        return False
    if st.get("disruptionsAllowed", 0) > 0:
        return cond.get("status") == "True" and cond.get("reason") == "SufficientPods"
    return cond.get("status") == "False" and cond.get("reason") == "InsufficientPods"


def new_status(pdb: Obj, healthy: int, desired: int, expected: int, disrupted: dict[str, str]) -> Obj | None:
    """The status to write (``updatePdbStatus``), None when nothing changed."""
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    st = pdb.get("status") or {}
    gen = pdb["metadata"].get("generation", 0)
    if (st.get("currentHealthy", 0) == healthy and st.get("desiredHealthy", 0) == desired
            and st.get("expectedPods", 0) == expected and st.get("disruptionsAllowed", 0) == allowed
            and (st.get("disruptedPods") or {}) == disrupted and st.get("observedGeneration") == gen
            and conditions_up_to_date(pdb)):
        return None
    out: Obj = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                "disruptionsAllowed": allowed, "observedGeneration": gen}
    if disrupted:
        out["disruptedPods"] = disrupted
    ok = allowed > 0
    out["conditions"] = set_condition(st.get("conditions") or [], {
        "type": "DisruptionAllowed", "status": "True" if ok else "False",
        "reason": "SufficientPods" if ok else "InsufficientPods", "message": "", "observedGeneration": gen})
    return out


@register("disruption")
class DisruptionController(Controller):
    name = "disruption"
    workers = 2

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.recorder = ctx.recorder("controllermanager")
        inf = ctx.informers.informer
        self.pdbs = inf(PDBS)
        self.pods = inf("pods")
        self.rss = inf("replicasets.apps")
        self.deployments = inf("deployments.apps")
        self.statefulsets = inf("statefulsets.apps")
        self.rcs = inf("replicationcontrollers")
        self.pdbs.add_handler(lambda p: self.enqueue(key_of(p)), lambda o, n: self.enqueue(key_of(n)), None)
        self.pods.add_handler(self._pod_event, self._pod_updated, self._pod_event)

    # -- events ---------------------------------------------------------------
    def _pdbs_for(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace", "")
        lab = pod["metadata"].get("labels") or {}
        out = []
        for pdb in self.pdbs.store.list(ns):
            try:
                if labels.from_label_selector((pdb.get("spec") or {}).get("selector")).matches(lab):
                    out.append(key_of(pdb))
            except labels.SelectorError:
                continue
        return out

    def _pod_event(self, pod: Obj) -> None:
        for k in self._pdbs_for(pod):
            self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        keys = set(self._pdbs_for(new))
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys.update(self._pdbs_for(old))
        for k in keys:
            self.enqueue(k)

    # -- scale of a pod's controller ----------------------------------------------
    async def _controller_scale(self, ref: Obj, ns: str) -> tuple[str, int] | None:
        kind, name, uid = ref.get("kind"), ref.get("name", ""), ref.get("uid")
        group = (ref.get("apiVersion") or "").rpartition("/")[0]
        if kind == "ReplicaSet" and group == "apps":
            rs = self.rss.store.get_by(ns, name)
            if rs is None or rs["metadata"].get("uid") != uid:
                return None
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                dep = self.deployments.store.get_by(ns, owner.get("name", ""))
                if dep is None or dep["metadata"].get("uid") != owner.get("uid"):
                    return None
                return dep["metadata"]["uid"], (dep.get("spec") or {}).get("replicas", 1)
            return uid, (rs.get("spec") or {}).get("replicas", 1)
        for kind_, group_, store in (("ReplicationController", "", self.rcs), ("StatefulSet", "apps", self.statefulsets)):
            if kind == kind_ and group == group_:
                obj = store.store.get_by(ns, name)
                if obj is None or obj["metadata"].get("uid") != uid:
                    return None
                return uid, (obj.get("spec") or {}).get("replicas", 1)
        r = REGISTRY.for_api_version(ref.get("apiVersion") or "", kind or "")
        if r is None or "scale" not in (getattr(r, "subresources", None) or ()):
            return None
        try:
            scale = await self.client.request("GET", _scale_path(r, ns, name))
        except APIError:
            return None
        if (scale.get("metadata") or {}).get("uid") != uid:
            return None
        return uid, (scale.get("spec") or {}).get("replicas", 0)

    async def _expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The sum of the scales of the pods' controllers (a Deployment
        counted once however many ReplicaSets it has); pods without a
        controller are returned as unmanaged."""
        seen: set[str] = set()
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for p in pods:
            ref = controller_ref(p)
            if ref is None:
                unmanaged.append(p["metadata"]["name"])
                continue
            if ref.get("uid", "") in seen:
                continue
            found = await self._controller_scale(ref, p["metadata"].get("namespace", ""))
            if found is None:
                raise SyncError(f'found no controllers for pod "{p["metadata"]["name"]}"')
            seen.add(ref.get("uid", ""))
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    async def expected_counts(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = await self._expected_scale(pods)
            desired = max(expected - scaled_value(spec["maxUnavailable"], expected), 0)
            return expected, desired, unmanaged
        mina = spec.get("minAvailable")
        if isinstance(mina, int):
            return len(pods), mina, []
        if mina is not None:
            expected, unmanaged = await self._expected_scale(pods)
            return expected, scaled_value(mina, expected), unmanaged
        return 0, 0, []

    # -- sync ---------------------------------------------------------------------
    async def sync(self, key: Any) -> None:
        pdb = self.pdbs.store.get(key)
        if pdb is None:
            return
        try:
            await self._try_sync(pdb)
        except APIError as e:
            if is_conflict(e) or e.code == 404:
                raise
            await self._fail_safe(pdb, str(e))
        except SyncError as e:
            self.recorder.warning(pdb, "CalculateExpectedPodCountFailed",
                                  f"Failed to calculate the number of expected pods: {e}")
            await self._fail_safe(pdb, str(e))

    async def _try_sync(self, pdb: Obj) -> None:
        ns = pdb["metadata"].get("namespace", "")
        sel = labels.from_label_selector((pdb.get("spec") or {}).get("selector"))
        pods = [p for p in self.pods.store.list(ns) if sel.matches(p["metadata"].get("labels") or {})]
        if not pods:
            self.recorder.normal(pdb, "NoPods", "No matching pods found")
        expected, desired, unmanaged = await self.expected_counts(pdb, pods)
        if unmanaged:
            self.recorder.warning(pdb, "UnmanagedPods",
                                  f"Pods selected by this PodDisruptionBudget (selector: {_go_selector(pdb)}) were "
                                  "found to be unmanaged. As a result, the status of the PDB cannot be calculated "
                                  "correctly, which may result in undefined behavior. To account for these pods "
                                  "please set \".spec.minAvailable\" field of the PDB to an integer value.")
        now = self.clock()
        ns_name = f"{ns}/{pdb['metadata']['name']}"
        disrupted, recheck = build_disrupted(pods, pdb, now, lambda p: self.recorder.warning(
            p, "NotDeleted", f"Pod was expected by PDB {ns_name} to be deleted but it wasn't"))
        healthy = count_healthy(pods, disrupted, now)
        status = new_status(pdb, healthy, desired, expected, disrupted)
        if status is not None:
            await self.client.update_status(PDBS, dict(pdb, status=status))
        if recheck is not None:
            self.queue.add_after(key_of(pdb), max(recheck - now, 0.0) + 0.1)

    async def _fail_safe(self, pdb: Obj, why: str) -> None:
        st = dict(pdb.get("status") or {})
        gen = pdb["metadata"].get("generation", 0)
        st["disruptionsAllowed"] = 0
        st["conditions"] = set_condition(st.get("conditions") or [], {
            "type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed", "message": why,
            "observedGeneration": st.get("observedGeneration", gen)})
        if st == (pdb.get("status") or {}):
            return
        await self.client.update_status(PDBS, dict(pdb, status=st))


def _scale_path(r: Any, ns: str, name: str) -> str:
    base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    return f"{base}/namespaces/{ns}/{r.plural}/{name}/scale"


def _go_selector(pdb: Obj) -> str:
    sel = (pdb.get("spec") or {}).get("selector") or {}
    parts = []
    if sel.get("matchLabels"):
        parts.append("MatchLabels:map[" + " ".join(f"{k}:{v}" for k, v in sorted(sel["matchLabels"].items())) + "]")
    else:
        parts.append("MatchLabels:map[]")
    parts.append(f"MatchExpressions:[]LabelSelectorRequirement{{{','.join(str(e) for e in sel.get('matchExpressions') or [])}}}")
    return "&LabelSelector{" + ",".join(parts) + ",}"
