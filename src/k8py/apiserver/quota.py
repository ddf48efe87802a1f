"""ResourceQuota admission (kube's ``plugin/pkg/admission/resourcequota``):
a create that would take a namespace over one of its quotas is refused
with 403 Forbidden and kube's message::

    pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2

A pod without cpu/memory requests or limits in a namespace whose quota
tracks them is refused (``failed quota: q: must specify limits.cpu for:
c``), as is any charge against a quota whose usage the controller has not
computed yet (``status unknown for quota``).

Updates of Services and PVCs are checked and charged for what they add
(a ClusterIP Service turned NodePort, a bigger storage request), as kube's
evaluators do; other updates are not quota'd.

An admitted create is charged to ``status.used`` of every matching quota
with a compare-and-swap on the quota object, re-checking on the fresh
quota after a conflict, so concurrent creates cannot overshoot.  The
resourcequota controller later recomputes usage from what exists.

Quotas are read from the watch cache: a namespace without quotas costs a
dictionary lookup per create."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..api import quota
from ..api.registry import REGISTRY, Resource
from . import errors

if TYPE_CHECKING:
    from .rest import ObjectStore, WriteOptions
    from .watchcache import CacheSet

QUOTA_PREFIX = "/registry/core/resourcequotas/"
UPDATE_CHARGED = {("", "services"), ("", "persistentvolumeclaims")}


def _hard(q: dict[str, Any]) -> quota.Usage:
    return quota.parse_list((q.get("status") or {}).get("hard"))


def _used(q: dict[str, Any]) -> quota.Usage:
    return quota.parse_list((q.get("status") or {}).get("used"))


def check(q: dict[str, Any], delta: quota.Usage, r: Resource, name: str) -> quota.Usage | None:
    """The quota's new usage after charging ``delta``, None if it tracks
    none of it; raises Forbidden when a limit would be exceeded."""
    hard = _hard(q)
    requested = quota.mask(delta, hard)
    if not requested:
        return None
    used = _used(q)
    new = quota.add(used, requested)
    exceeded = sorted(k for k in requested if new[k].nanos > hard[k].nanos)
    if exceeded:
        qname = q["metadata"]["name"]
        raise errors.forbidden(r.plural, r.group, name,
                               f"exceeded quota: {qname}, requested: {quota.pretty(quota.mask(requested, exceeded))}, "
                               f"used: {quota.pretty({k: used.get(k, quota.zero()) for k in exceeded})}, "
                               f"limited: {quota.pretty(quota.mask(hard, exceeded))}")
    return new


class QuotaAdmission:
    def __init__(self, caches: "CacheSet"):
        self.caches = caches
        self._quotas_r = REGISTRY.lookup("", "v1", "resourcequotas")

    def _namespace_quotas(self, ns: str) -> list[dict[str, Any]]:
        c = self.caches.caches.get(QUOTA_PREFIX)
        if c is None or not c.objects:
            return []
        return [e.obj() for e in c.objects.values() if e.namespace == ns]

    async def admit_create(self, ostore: "ObjectStore", r: Resource, ns: str | None, obj: dict[str, Any],
                           opts: "WriteOptions", old: dict[str, Any] | None = None) -> None:
        """Checks and charges a create, or (``old`` given) an update of a kind
        whose usage can grow in place: Services (type, ports) and PVCs
        (storage), as kube's evaluators handle only those updates.  An update
        is charged only what it adds."""
        if not ns or not r.namespaced:
            return
        if old is not None and (r.group, r.plural) not in UPDATE_CHARGED:
            return
        quotas = self._namespace_quotas(ns)
        if not quotas:
            return
        ev = quota.evaluator_for(r.group, r.plural)
        name = obj["metadata"].get("name", "")
        pertinent = []
        for q in quotas:
            hard_names = list(((q.get("status") or {}).get("hard") or {}))
            restricted = ev.matching_resources(hard_names)
            if not restricted or not ev.matches(q, obj, hard_names):
                continue
            why = ev.constraints(restricted, obj)
            if why:
                raise errors.forbidden(r.plural, r.group, name, f"failed quota: {q['metadata']['name']}: {why}")
            used = (q.get("status") or {}).get("used") or {}
            missing = [n for n in restricted if n not in used]
            if missing:
                raise errors.forbidden(r.plural, r.group, name,
                                       f"status unknown for quota: {q['metadata']['name']}, resources: "
                                       f"{','.join(sorted(missing))}")
            pertinent.append(q)
        if not pertinent:
            return
        delta = ev.usage(obj)
        if old is not None:  # only growth is charged (kube's SubtractWithNonNegativeResult)
            grown = quota.subtract(delta, quota.mask(ev.usage(old), delta))
            delta = {k: v for k, v in grown.items() if v.nanos > 0}
        if all(v.is_zero() for v in delta.values()):
            return
        charges = []
        for q in pertinent:  # refuse before charging anything
            if check(q, delta, r, name) is not None:
                charges.append(q)
        if opts.dry_run:
            return
        for q in charges:
            await self._charge(ostore, q, delta, r, name)

    async def _charge(self, ostore: "ObjectStore", q: dict[str, Any], delta: quota.Usage, r: Resource,
                      name: str) -> None:
        from .rest import WriteOptions

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            new = check(cur, delta, r, name)  # on the fresh quota: a racing create may have won
            if new is not None:
                st = cur.setdefault("status", {})
                used = dict(st.get("used") or {})
                for k in quota.mask(new, _hard(cur)):
                    used[k] = str(new[k])
                st["used"] = used
            return cur

        assert self._quotas_r is not None
        try:
            await ostore.guaranteed_update(self._quotas_r, q["metadata"]["namespace"], q["metadata"]["name"],
                                           mutate, WriteOptions(), "status", managed=lambda old, new: None)
        except errors.APIError as e:
            if e.code != 404:  # a quota deleted meanwhile charges nothing
                raise
