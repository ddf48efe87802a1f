"""Helpers shared by the controllers that own pods or other children
(kube's ``pkg/controller/controller_utils.go`` and ``controller_ref_manager.go``):

* controller references: reading one, building one, store indexes of
  children by their controller's UID and of orphans by namespace (so an
  owner finds its children without scanning every pod);
* pod predicates: active, ready, available after ``minReadySeconds``;
* ``slow_start_batch``: creates in batches of 1, 2, 4, ... stopping at the
  first failing batch;
* ``pod_from_template``: the pod an owner creates from its template;
* ``claim``: adopt matching orphans and release non-matching children, as
  ``ClaimPods``/``ClaimReplicaSets`` do, with the owner re-read (uncached)
  once before the first adoption;
* ``deletion_order``: kube's ``ActivePodsWithRanks`` ordering of pods to
  remove first when scaling down;
* ``compute_hash``: ``controller.ComputeHash`` — FNV-32a of a template
  (canonical JSON) and a collision count, in kube's safe alphabet.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import math
from typing import Any, Awaitable, Callable, Iterable

import orjson

from ..api.labels import Selector
from ..client.rest import STRATEGIC, APIError, Client
from ..client.timeutil import parse_time

Obj = dict[str, Any]

BY_CONTROLLER = "controller-uid"
ORPHANS = "orphans-by-namespace"
SLOW_START_INITIAL_BATCH = 1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


# --- hashing ------------------------------------------------------------------------------------
def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: no vowels, no look-alike characters."""
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in s)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Any, collision_count: int | None = None) -> str:
    """Stable across processes; a collision count, when set, perturbs it."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    return safe_encode(str(fnv32a(data)))


# --- controller references ----------------------------------------------------------------------
def controller_ref(obj: Obj) -> Obj | None:
    for r in obj["metadata"].get("ownerReferences") or ():
        if r.get("controller"):
            return r
    return None


def new_controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    md = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _by_controller(obj: Obj) -> Iterable[str]:
    ref = controller_ref(obj)
    return (ref["uid"],) if ref and ref.get("uid") else ()


def _orphans(obj: Obj) -> Iterable[str]:
    return () if controller_ref(obj) else (obj["metadata"].get("namespace", ""),)


def add_owner_indexes(store: Any) -> None:
    """Index a store's objects by controller UID and its orphans by namespace."""
    store.add_indexer(BY_CONTROLLER, _by_controller)
    store.add_indexer(ORPHANS, _orphans)


def candidates(store: Any, owner: Obj) -> list[Obj]:
    """What an owner may claim: its children and the orphans of its namespace."""
    md = owner["metadata"]
    return store.by_index(BY_CONTROLLER, md["uid"]) + store.by_index(ORPHANS, md.get("namespace", ""))


# --- pods ---------------------------------------------------------------------------------------
def is_pod_active(pod: Obj) -> bool:
    return ((pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not pod["metadata"].get("deletionTimestamp"))


def _ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_ready_time(pod: Obj) -> float | None:
    c = _ready_condition(pod)
    return parse_time(c.get("lastTransitionTime")) if c else None


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (``podutil.IsPodAvailable``)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    t = pod_ready_time(pod)
    return t is not None and t + min_ready_seconds <= now


def pod_from_template(template: Obj, owner: Obj, ref: Obj) -> Obj:
    """``GetPodFromTemplate``: labels, annotations and finalizers of the
    template, ``generateName`` from the owner, the controller reference."""
    tmd = template.get("metadata") or {}
    md: Obj = {"generateName": owner["metadata"]["name"] + "-",
               "namespace": owner["metadata"].get("namespace"), "ownerReferences": [ref]}
    for k in ("labels", "annotations", "finalizers"):
        if tmd.get(k):
            md[k] = copy.deepcopy(tmd[k])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


async def slow_start_batch(count: int, fn: Callable[[], Awaitable[None]],
                           initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, BaseException | None]:
    """Calls ``fn`` ``count`` times in concurrent batches of 1, 2, 4, ...;
    stops after a batch with a failure.  Returns (successes, first error)."""
    done = 0
    size = min(count, initial)
    while size > 0:
        results = await asyncio.gather(*(fn() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done += size - len(errors)
        if errors:
            for e in errors:
                if isinstance(e, asyncio.CancelledError):
                    raise e
            return done, errors[0]
        count -= size
        size = min(2 * size, count)
    return done, None


def namespace_terminating(e: BaseException) -> bool:
    """A create refused because the namespace is being deleted."""
    if not isinstance(e, APIError):
        return False
    causes = (e.status.get("details") or {}).get("causes") or ()
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


# --- adoption and release -----------------------------------------------------------------------
def owner_reader(client: Client, res: Any, owner: Obj) -> Callable[[], Awaitable[Obj | None]]:
    """A :class:`Claimer`'s ``fresh_owner``: ``owner`` re-read from the API, None once it is gone."""
    md = owner["metadata"]

    async def read() -> Obj | None:
        try:
            return await client.get(res, md["name"], md.get("namespace"))
        except APIError as e:
            if e.code == 404:
                return None
            raise
    return read


class Claimer:
    """``ControllerRefManager``: ``claim`` returns the children an owner
    controls after adopting matching orphans and releasing children whose
    labels no longer match.  ``fresh_owner`` re-reads the owner from the API
    (not the cache); adoption stops if it is gone, replaced or being deleted."""

    def __init__(self, client: Client, child_resource: Any, owner: Obj, ref: Obj, selector: Selector,
                 fresh_owner: Callable[[], Awaitable[Obj | None]]):
        self.client, self.res, self.owner, self.ref = client, child_resource, owner, ref
        self.selector = selector
        self.fresh_owner = fresh_owner
        self._can_adopt: bool | None = None

    async def _adoptable(self) -> bool:
        if self._can_adopt is None:
            fresh = await self.fresh_owner()
            self._can_adopt = bool(fresh and fresh["metadata"].get("uid") == self.owner["metadata"]["uid"]
                                   and not fresh["metadata"].get("deletionTimestamp"))
        return self._can_adopt

    async def claim(self, objs: Iterable[Obj], filter_: Callable[[Obj], bool] | None = None) -> list[Obj]:
        uid = self.owner["metadata"]["uid"]
        owner_deleting = bool(self.owner["metadata"].get("deletionTimestamp"))
        out: list[Obj] = []
        for o in objs:
            ref = controller_ref(o)
            matches = self.selector.matches(o["metadata"].get("labels") or {})
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches or owner_deleting:
                    out.append(o)
                else:
                    await self._release(o)
                continue
            if owner_deleting or not matches or o["metadata"].get("deletionTimestamp"):
                continue
            if filter_ is not None and not filter_(o):
                continue
            if not await self._adoptable():
                continue
            adopted = await self._adopt(o)
            if adopted is not None:
                out.append(adopted)
        return out

    async def _adopt(self, o: Obj) -> Obj | None:
        md = o["metadata"]
        patch = {"metadata": {"ownerReferences": [self.ref], "uid": md["uid"]}}
        try:
            return await self.client.patch(self.res, md["name"], patch, md.get("namespace"),
                                           content_type=STRATEGIC)
        except APIError as e:
            if e.code in (404, 409, 422):  # gone, replaced or changed meanwhile: not ours
                return None
            raise

    async def _release(self, o: Obj) -> None:
        md = o["metadata"]
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": self.owner["metadata"]["uid"]}],
                              "uid": md["uid"]}}
        try:
            await self.client.patch(self.res, md["name"], patch, md.get("namespace"), content_type=STRATEGIC)
        except APIError as e:
            if e.code not in (404, 409, 422):
                raise


# --- which pods go first ------------------------------------------------------------------------
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _max_restarts(pod: Obj) -> tuple[int, int]:
    st = pod.get("status") or {}
    regular = max((c.get("restartCount", 0) for c in st.get("containerStatuses") or ()), default=0)
    sidecars = {c["name"] for c in (pod.get("spec") or {}).get("initContainers") or ()
                if c.get("restartPolicy") == "Always"}
    side = max((c.get("restartCount", 0) for c in st.get("initContainerStatuses") or ()
                if c.get("name") in sidecars), default=0)
    return regular, side


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def _log_rank(t: float, now: float) -> int:
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _newer_first(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float) -> bool | None:
    """kube's LogarithmicScaleDown comparison: unset first, then newer by
    powers-of-two age buckets, ties broken by UID."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return t1 is None
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def deletion_order(pods: list[Obj], related: Iterable[Obj], now: float) -> list[Obj]:
    """Pods sorted as kube's ``ActivePodsWithRanks``: the first ones are the
    ones to delete.  ``related`` are the pods of the owner's siblings
    (same controller): a pod doubled up on a node with them goes first."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            n = (p.get("spec") or {}).get("nodeName", "")
            on_node[n] = on_node.get(n, 0) + 1
    info = {}
    for p in pods:
        ready = is_pod_ready(p)
        info[id(p)] = (ready, pod_ready_time(p) if ready else None,
                       parse_time(p["metadata"].get("creationTimestamp")),
                       on_node.get((p.get("spec") or {}).get("nodeName", ""), 0))

    def less(a: Obj, b: Obj) -> bool:
        na, nb = (a.get("spec") or {}).get("nodeName", ""), (b.get("spec") or {}).get("nodeName", "")
        if na != nb and (not na or not nb):
            return not na
        pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase", ""), 0)
        pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase", ""), 0)
        if pa != pb:
            return pa < pb
        ra, rta, ca, rank_a = info[id(a)]
        rb, rtb, cb, rank_b = info[id(b)]
        if ra != rb:
            return not ra
        cost_a, cost_b = _deletion_cost(a), _deletion_cost(b)
        if cost_a != cost_b:
            return cost_a < cost_b
        if rank_a != rank_b:
            return rank_a > rank_b
        ua, ub = a["metadata"].get("uid", ""), b["metadata"].get("uid", "")
        if ra and rb:
            r = _newer_first(rta, rtb, ua, ub, now)
            if r is not None:
                return r
        xa, xb = _max_restarts(a), _max_restarts(b)
        if xa != xb:
            return xa > xb
        r = _newer_first(ca, cb, ua, ub, now)
        return bool(r)

    def cmp(a: Obj, b: Obj) -> int:
        return -1 if less(a, b) else (1 if less(b, a) else 0)

    return sorted(pods, key=functools.cmp_to_key(cmp))
