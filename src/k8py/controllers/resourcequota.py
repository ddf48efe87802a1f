"""The resourcequota controller (kube's ``pkg/controller/resourcequota``):
``status.hard`` and ``status.used`` of every ResourceQuota, computed from
the objects in its namespace (``api/quota.py`` says what each uses and
which scopes select it).

A quota is recomputed when its spec changes (status changes are the API
server's admission charging creates, and are ignored), when something it
counts goes away (a pod deleted or finished, a service deleted or retyped,
any other counted object deleted: "replenishment"), and on a full resync
every five minutes.  Informers for the counted kinds beyond pods and
services are started only when a quota first needs them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..api import quota
from ..client.controller import Controller
from ..client.informer import Informer, key_of, split_key
from ..client.rest import APIError, resource
from .context import ControllerContext, register

log = logging.getLogger(__name__)
Obj = dict[str, Any]
QUOTAS = resource("resourcequotas")
RESYNC_PERIOD = 300.0


def _spec_res(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def compute_status(q: Obj, objects_of: Any) -> dict[str, dict[str, str]]:
    """The status a quota should have; ``objects_of(group, plural)`` gives
    the namespace's objects of a kind."""
    hard_raw = (q.get("spec") or {}).get("hard") or {}
    hard_names = list(hard_raw)
    used: quota.Usage = {n: quota.zero() for n in hard_names}
    kinds: dict[tuple[str, str], None] = {}
    for n in hard_names:
        gp = quota.resource_of(n)
        if gp is not None:
            kinds[gp] = None
    for group, plural in kinds:
        ev = quota.evaluator_for(group, plural)
        matched = ev.matching_resources(hard_names)
        if not matched:
            continue
        total: quota.Usage = {}
        for obj in objects_of(group, plural):
            if ev.matches(q, obj, hard_names):
                total = quota.add(total, quota.mask(ev.usage(obj), matched))
        used.update(total)
    return {"hard": dict(hard_raw), "used": quota.to_strings(quota.mask(used, hard_names))}


def _same(a: dict[str, str] | None, b: dict[str, str] | None) -> bool:
    a, b = a or {}, b or {}
    if set(a) != set(b):
        return False
    try:
        return all(quota.parse_list({k: a[k]})[k] == quota.parse_list({k: b[k]})[k] for k in a)
    except KeyError:
        return False


@register("resourcequota")
class ResourceQuotaController(Controller):
    name = "resourcequota"
    workers = 5

    def __init__(self, ctx: ControllerContext, resync_period: float = RESYNC_PERIOD):
        super().__init__()
        self.client = ctx.client
        self.informers = ctx.informers
        self.resync_period = resync_period
        self.quotas = ctx.informers.informer("resourcequotas")
        self.pods = ctx.informers.informer("pods")
        self.services = ctx.informers.informer("services")
        self._watched: dict[tuple[str, str], Informer] = {("", "pods"): self.pods, ("", "services"): self.services}
        self._hooked: set[tuple[str, str]] = set()
        self.quotas.add_handler(self._quota_added, self._quota_updated, None)
        self.pods.add_handler(None, self._pod_updated, self._replenish)
        self.services.add_handler(None, self._service_updated, self._replenish)

    # -- events ---------------------------------------------------------------
    def _quota_added(self, q: Obj) -> None:
        self.enqueue(key_of(q))

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        spec_hard = (new.get("spec") or {}).get("hard") or {}
        st = new.get("status") or {}
        if (_same((old.get("spec") or {}).get("hard"), spec_hard) and _same(st.get("hard"), spec_hard)
                and set(st.get("used") or {}) >= set(spec_hard)):
            return  # a status change: admission charging, or our own write
        self.enqueue(key_of(new))

    def _replenish(self, obj: Obj) -> None:
        ns = obj.get("metadata", {}).get("namespace", "")
        for k in self.quotas.store.keys_by_index("namespace", ns):
            self.enqueue(k)

    def _has_quota(self, obj: Obj) -> bool:
        return bool(self.quotas.store.keys_by_index("namespace", obj["metadata"].get("namespace", "")))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if not self._has_quota(new):
            return
        if quota.pod_counts_for_quota(old) and not quota.pod_counts_for_quota(new):
            self._replenish(new)
        elif quota.pod_usage(old) != quota.pod_usage(new):
            self._replenish(new)

    def _service_updated(self, old: Obj, new: Obj) -> None:
        if self._has_quota(new) and quota.evaluator_for("", "services").usage(old) != quota.evaluator_for("", "services").usage(new):
            self._replenish(new)

    # -- informers on demand ------------------------------------------------------
    async def _informer(self, group: str, plural: str) -> Informer | None:
        inf = self._watched.get((group, plural))
        if inf is None:
            try:
                inf = self.informers.informer(resource(_spec_res(group, plural)))
            except KeyError:
                return None  # not a kind this API serves
            self._watched[(group, plural)] = inf
        if (group, plural) not in self._hooked and inf not in (self.pods, self.services):
            self._hooked.add((group, plural))
            inf.add_handler(None, None, self._replenish)
        if not inf.synced.is_set():
            inf.start()
            await asyncio.wait_for(inf.synced.wait(), 60)
        return inf

    # -- sync -------------------------------------------------------------------
    async def sync(self, key: Any) -> None:
        q = self.quotas.store.get(key)
        if q is None:
            return
        ns, _ = split_key(key)
        hard = (q.get("spec") or {}).get("hard") or {}
        stores = {}
        for n in hard:
            gp = quota.resource_of(n)
            if gp is not None and gp not in stores:
                inf = await self._informer(*gp)
                stores[gp] = inf.store if inf is not None else None

        def objects_of(group: str, plural: str) -> list[Obj]:
            st = stores.get((group, plural))
            return st.list(ns) if st is not None else []

        status = compute_status(q, objects_of)
        cur = q.get("status") or {}
        if _same(cur.get("hard"), status["hard"]) and _same(cur.get("used"), status["used"]):
            return
        new = dict(q, status=status)
        new.setdefault("apiVersion", "v1")
        new.setdefault("kind", "ResourceQuota")
        try:
            await self.client.update_status(QUOTAS, new)
        except APIError as e:
            if e.code == 404:
                return
            raise  # a conflict: admission charged meanwhile; retried from the fresh cache

    async def run(self) -> None:
        async def resync() -> None:
            while True:
                await asyncio.sleep(self.resync_period)
                for k in list(self.quotas.store.items):
                    self.enqueue(k)
        task = asyncio.create_task(resync(), name="resourcequota resync")
        try:
            await super().run()
        finally:
            task.cancel()
