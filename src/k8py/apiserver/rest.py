"""Generic object storage: kube's REST semantics over the revisioned store.

One :class:`ObjectStore` serves every resource in the registry: create
(generateName, uid, defaulting, admission, validation), get, list (from the
watch cache or, for pages and exact revisions, from storage), update and
patch with optimistic concurrency (GuaranteedUpdate: retry when the client
gave no resourceVersion), the status and scale subresources, delete with
preconditions, finalizers, propagation policy and graceful pod deletion,
deletecollection, and dry runs.  HTTP lives in ``handlers.py``.
"""

from __future__ import annotations

import base64
import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from ..api import conversion
from ..api.registry import Registry, Resource
from ..storage.interface import (CompactedError, ConflictError, KeyExistsError, KeyNotFoundError,
                                 KeyValue, Store)
from . import errors, strategy
from .admission import Admission
from .clock import now_rfc3339, rfc3339_at
from .watchcache import CacheSet, Entry, make_entry





@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    user_agent: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    entries: list[Entry]
    revision: int
    continue_token: str = ""
    remaining: int | None = None


Matcher = Callable[[Entry], bool]


def encode_continue(rev: int, key: str) -> str:
    return base64.b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": key + "\x00"})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        d = orjson.loads(base64.b64decode(token, validate=False))
        rev, start = int(d["rv"]), str(d["start"])
    except Exception:  # noqa: BLE001
        raise errors.bad_request("continue key is not valid: continue key is not valid")
    if rev <= 0:
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    return rev, start.rstrip("\x00")


TOO_OLD_CONTINUE = ("The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this "
                    "response to retrieve the remainder of the results. Continuing with the provided token "
                    "results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list.")


class ObjectStore:
    def __init__(self, store: Store, registry: Registry, caches: CacheSet, admission: Admission):
        self.store = store
        self.registry = registry
        self.caches = caches
        self.admission = admission
        self.store_revision_is_local = bool(getattr(store, "revision_is_local", False))

    # ---- encoding -------------------------------------------------------
    def stored(self, r: Resource) -> Resource:
        return self.registry.storage_resource(r)

    def decode(self, r: Resource, kv: KeyValue) -> dict[str, Any]:
        obj = orjson.loads(kv.value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        return conversion.to_version(r, obj)

    def encode(self, r: Resource, obj: dict[str, Any]) -> bytes:
        st = self.stored(r)
        out = conversion.to_storage(r, st, obj)
        md = out.get("metadata")
        if md and "resourceVersion" in md:
            out = dict(out)
            out["metadata"] = {k: v for k, v in md.items() if k != "resourceVersion"}
        return orjson.dumps(out)

    def entry_obj(self, r: Resource, e: Entry) -> dict[str, Any]:
        return conversion.to_version(r, orjson.loads(e.raw))

    # ---- reads ----------------------------------------------------------
    async def read_for_update(self, r: Resource, key: str, use_cache: bool) -> tuple[KeyValue | None, bool]:
        """The object a read-modify-write starts from: the watch cache's copy
        when ``use_cache`` and it has one (True: it may be stale, so the
        write must be a compare-and-swap and any verdict be re-judged on
        storage's copy), else storage's."""
        if use_cache:
            e = self.cache(r).objects.get(key)
            if e is not None:
                return KeyValue(key, e.raw, 0, e.rv), True
        return await self.store.get(key), False


    async def get_kv(self, r: Resource, ns: str | None, name: str) -> KeyValue:
        kv = await self.store.get(r.key(ns, name))
        if kv is None:
            raise errors.not_found(r.plural, r.group, name)
        return kv

    async def get(self, r: Resource, ns: str | None, name: str, rv: str = "") -> dict[str, Any]:
        e = await self.get_cached(r, ns, name, rv)
        if e is not None:
            return self.entry_obj(r, e)
        return self.decode(r, await self.get_kv(r, ns, name))

    async def get_cached(self, r: Resource, ns: str | None, name: str, rv: str = "") -> Entry | None:
        """The cache's entry for a consistent read (or any recent one, for
        resourceVersion=0), once the cache has caught up with storage, when
        that is cheap to know (SQLite). None: read storage instead."""
        if rv == "0" or (self.store_revision_is_local and await self.caches.wait_fresh(
                await self.store.current_revision(), 1.0)):
            e = self.cache(r).objects.get(r.key(ns, name))
            if e is None:
                raise errors.not_found(r.plural, r.group, name)
            return e
        return None

    def cache(self, r: Resource):
        return self.caches.caches[self.stored(r).key_prefix]

    async def fresh(self) -> int:
        rev = await self.store.current_revision()
        await self.caches.wait_fresh(rev)
        return rev

    async def list(self, r: Resource, ns: str | None, match: Matcher | None, limit: int, cont: str,
                   rv: str, rv_match: str) -> ListResult:
        if cont:
            if rv not in ("", "0") or rv_match:
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            rev, start = decode_continue(cont)
            return await self._list_storage(r, ns, match, limit, rev, start)
        if rv_match == "Exact":
            if not rv or rv == "0":
                raise errors.bad_request("resourceVersionMatch \"Exact\" requires a non-zero resourceVersion")
            return await self._list_storage(r, ns, match, limit, _int_rv(rv), None)
        if rv_match not in ("", "NotOlderThan"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{rv_match}"')
        if rv == "" and limit > 0:
            return await self._list_storage(r, ns, match, limit, 0, None)
        if rv == "":
            rev = await self.fresh()
        else:
            want = _int_rv(rv)
            if want and not await self.caches.wait_fresh(want):
                raise errors.APIError(504, "Timeout", f"Too large resource version: {want}, current: "
                                      f"{self.caches.rev}", {"causes": [{"reason": "ResourceVersionTooLarge",
                                                                         "message": "Too large resource version"}],
                                                              "retryAfterSeconds": 1})
            rev = self.caches.rev
        entries = self.cache(r).list(ns)
        if match is not None:
            entries = [e for e in entries if match(e)]
        return ListResult(entries, max(rev, self.caches.rev))

    async def _list_storage(self, r: Resource, ns: str | None, match: Matcher | None, limit: int, rev: int,
                            start: str | None) -> ListResult:
        st = self.stored(r)
        prefix = st.prefix(ns)
        cache = self.cache(r)
        out: list[Entry] = []
        after = st.key_prefix + start if start is not None else None  # tokens hold keys relative to it
        read_rev = rev
        while True:
            want = (limit - len(out)) if limit else 0
            try:
                res = await self.store.range(prefix, start_after=after, limit=max(want, 0) if limit else 0,
                                             revision=read_rev)
            except CompactedError:
                if start is not None:
                    raise errors.expired(TOO_OLD_CONTINUE)
                raise errors.gone_too_old(rev)
            read_rev = res.revision
            for kv in res.kvs:
                e = make_entry(kv.key, kv.value, kv.mod_revision, cache.fields_fn)
                if match is None or match(e):
                    out.append(e)
            if res.kvs:
                after = res.kvs[-1].key
            if not res.more or (limit and len(out) >= limit):
                break
        token, remaining = "", None
        if res.more:
            token = encode_continue(read_rev, after[len(st.key_prefix):])
            if match is None:
                remaining = res.count - len(res.kvs)
        return ListResult(out, read_rev, token, remaining)

    # ---- writes ---------------------------------------------------------
    async def create(self, r: Resource, ns: str | None, obj: dict[str, Any], opts: WriteOptions,
                     *, managed: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            base_name = md["generateName"]
            md["name"] = strategy.generate_name(base_name)
        else:
            base_name = ""
        strategy.prepare_create(r, obj, now_rfc3339())
        await self.admission.admit_create(r, ns, obj, opts)
        self.admission.validate(r, obj, None)
        if managed is not None:
            managed(obj)
        else:
            self.admission.track_fields(r, None, obj, opts, "")
        await self.admission.admit_quota(self, r, ns, obj, opts)
        if opts.dry_run:
            return obj
        for attempt in range(8):
            try:
                rev = await self.store.create(r.key(ns, md["name"]), self.encode(r, obj))
                break
            except KeyExistsError:
                if not base_name or attempt == 7:
                    self.admission.release(r, obj)
                    raise errors.already_exists(r.plural, r.group, md["name"])
                md["name"] = strategy.generate_name(base_name)
        else:  # pragma: no cover
            raise errors.internal("create retries exhausted")
        md["resourceVersion"] = str(rev)
        return obj

    async def update(self, r: Resource, ns: str | None, name: str, body: dict[str, Any], opts: WriteOptions,
                     subresource: str = "") -> dict[str, Any]:
        want_rv = (body.get("metadata") or {}).get("resourceVersion") or ""

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            return copy.deepcopy(body)

        return await self.guaranteed_update(r, ns, name, mutate, opts, subresource, want_rv)

    async def guaranteed_update(self, r: Resource, ns: str | None, name: str,
                                mutate: Callable[[dict[str, Any]], dict[str, Any]], opts: WriteOptions,
                                subresource: str = "", want_rv: str = "",
                                managed: Callable[[dict[str, Any] | None, dict[str, Any]], None] | None = None,
                                ) -> dict[str, Any]:
        """Read, mutate, write if unchanged since the read; retry on a race
        unless the caller pinned a resourceVersion.

        The first read is the watch cache's copy, as kube's cacher hands its
        object to etcd's GuaranteedUpdate: the write is a compare-and-swap,
        so a stale copy only costs a retry from storage, and any verdict
        that a stale copy could make wrong (not found, stale resourceVersion)
        is taken again on a storage read."""
        key = r.key(ns, name)
        use_cache = True
        for _ in range(32):
            kv, from_cache = await self.read_for_update(r, key, use_cache)
            use_cache = False
            if kv is None:
                raise errors.not_found(r.plural, r.group, name)
            old = self.decode(r, kv)
            try:
                new = mutate(self.decode(r, kv))  # a second decode: cheaper than a deep copy
                nmd = new.setdefault("metadata", {})
                pinned = want_rv or ""
                body_rv = nmd.get("resourceVersion") or ""
                if (pinned and pinned != str(kv.mod_revision)) or (body_rv and body_rv != str(kv.mod_revision)):
                    raise errors.conflict(r.plural, r.group, name, errors.STALE)
                if nmd.get("name", name) != name:
                    raise errors.bad_request(
                        f"the name of the object ({nmd.get('name')}) does not match the name on the URL ({name})")
                nmd["name"] = name
                if r.namespaced:
                    nmd["namespace"] = ns
                if subresource == "status":
                    new = strategy.prepare_status_update(r, new, old)
                elif subresource == "finalize":
                    new = strategy.prepare_finalize(new, old)
                else:
                    strategy.prepare_update(r, new, old)
                    self.admission.admit_update(r, new, old)
                nmd = new.setdefault("metadata", {})  # status/finalize writes build a new object
                omd = old.get("metadata") or {}
                if omd.get("deletionTimestamp"):
                    added = set(nmd.get("finalizers") or []) - set(omd.get("finalizers") or [])
                    if added:
                        raise errors.invalid(r.kind, r.group, name,
                                             f'{r.kind} "{name}" is invalid: metadata.finalizers: Forbidden: '
                                             f'no new finalizers can be added if the object is being deleted, '
                                             f'found new finalizers {sorted(added)!r}'.replace("'", '"'),
                                             [{"reason": "FieldValueForbidden", "field": "metadata.finalizers"}])
                self.admission.validate(r, new, old, subresource)
                if not subresource:
                    await self.admission.admit_quota(self, r, ns, new, opts, old)
                nmd["resourceVersion"] = str(kv.mod_revision)
                if managed is not None:
                    managed(old, new)
                else:
                    self.admission.track_fields(r, old, new, opts, subresource)
            except errors.APIError:
                if from_cache:  # judged on a copy that may be stale: judge again on storage's
                    continue
                raise
            if new == old:
                if from_cache:  # nothing to write, unless the copy was stale
                    continue
                return old
            if opts.dry_run:
                if from_cache:  # a dry run answers from storage's copy
                    continue
                return new
            if nmd.get("deletionTimestamp") and not nmd.get("finalizers") and not (
                    r.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")):
                try:
                    rev, _ = await self.store.delete(key, kv.mod_revision)
                except ConflictError:
                    if pinned and not from_cache:
                        raise errors.conflict(r.plural, r.group, name, errors.STALE)
                    continue
                except KeyNotFoundError:
                    if from_cache:
                        continue
                    raise errors.not_found(r.plural, r.group, name)
                self.admission.release(r, new)
                nmd["resourceVersion"] = str(rev)
                return new
            try:
                rev = await self.store.update(key, self.encode(r, new), kv.mod_revision)
            except ConflictError:
                # a resourceVersion the caller gave is checked again against
                # the fresh read on the next round; only a pinned one fails now
                if pinned and not from_cache:
                    raise errors.conflict(r.plural, r.group, name, errors.STALE)
                continue
            except KeyNotFoundError:
                if from_cache:
                    continue
                raise errors.not_found(r.plural, r.group, name)
            nmd["resourceVersion"] = str(rev)
            return new
        raise errors.conflict(r.plural, r.group, name, "too many concurrent updates; try again")

    async def delete(self, r: Resource, ns: str | None, name: str, options: dict[str, Any],
                     opts: WriteOptions) -> tuple[dict[str, Any], bool]:
        """Returns (object, removed_now)."""
        key = r.key(ns, name)
        pre = options.get("preconditions") or {}
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is not None and policy is None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise errors.invalid("DeleteOptions", "", "", f'DeleteOptions.meta.k8s.io "" is invalid: '
                                 f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                                 f'"Foreground", "Background", "Orphan", "nil"',
                                 [{"reason": "FieldValueNotSupported", "field": "propagationPolicy"}])
        grace_req = options.get("gracePeriodSeconds")
        for _ in range(32):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(r.plural, r.group, name)
            obj = self.decode(r, kv)
            md = obj["metadata"]
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(r.plural, r.group, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, "
                                      f"UID in object meta: {md.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict(r.plural, r.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                      f"{md.get('resourceVersion')}")
            self.admission.admit_delete(r, obj)
            new = copy.deepcopy(obj)
            nmd = new["metadata"]
            finalizers = strategy.gc_finalizers(r, nmd.get("finalizers") or [], policy)
            grace = strategy.graceful_period(r, obj, grace_req)
            if r.kind == "Namespace":
                if md.get("deletionTimestamp"):
                    return obj, False
                nmd["deletionTimestamp"] = now_rfc3339()
                nmd["deletionGracePeriodSeconds"] = 0
                new.setdefault("status", {})["phase"] = "Terminating"
                spec_fin = (new.get("spec") or {}).get("finalizers") or []
                if not spec_fin and not finalizers:
                    return await self._remove(r, key, kv, obj, opts)
            elif finalizers or grace > 0:
                if md.get("deletionTimestamp"):
                    old_grace = md.get("deletionGracePeriodSeconds")
                    if grace > 0 and old_grace is not None and grace < old_grace:
                        nmd["deletionGracePeriodSeconds"] = grace
                        nmd["deletionTimestamp"] = rfc3339_at(time.time() + grace)
                    elif grace == 0 and not finalizers and r.kind == "Pod":
                        return await self._remove(r, key, kv, obj, opts)
                    elif finalizers == list(md.get("finalizers") or []):
                        return obj, False
                else:
                    nmd["deletionTimestamp"] = rfc3339_at(time.time() + grace)
                    nmd["deletionGracePeriodSeconds"] = grace
                if grace == 0 and not finalizers:
                    return await self._remove(r, key, kv, obj, opts)
                nmd["finalizers"] = finalizers
                if not finalizers:
                    nmd.pop("finalizers")
            else:
                return await self._remove(r, key, kv, obj, opts)
            if opts.dry_run:
                return new, False
            try:
                rev = await self.store.update(key, self.encode(r, new), kv.mod_revision)
            except ConflictError:
                if pre.get("resourceVersion"):
                    raise errors.conflict(r.plural, r.group, name, errors.STALE)
                continue
            nmd["resourceVersion"] = str(rev)
            return new, False
        raise errors.conflict(r.plural, r.group, name, "too many concurrent updates; try again")

    async def _remove(self, r: Resource, key: str, kv: KeyValue, obj: dict[str, Any],
                      opts: WriteOptions) -> tuple[dict[str, Any], bool]:
        if opts.dry_run:
            return obj, True
        try:
            await self.store.delete(key, kv.mod_revision)
        except KeyNotFoundError:
            raise errors.not_found(r.plural, r.group, obj["metadata"]["name"])
        except ConflictError:
            raise errors.conflict(r.plural, r.group, obj["metadata"]["name"], errors.STALE)
        self.admission.release(r, obj)
        return obj, True


def _int_rv(rv: str) -> int:
    try:
        n = int(rv)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
