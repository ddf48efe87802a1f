"""Informers: a local cache of one resource kept by list + watch, as
client-go's reflector/informer.

An informer lists (served from the API server's watch cache), then watches
from the list's resourceVersion; a broken stream re-watches from the last
revision seen; a 410 Expired relists and reconciles the cache, telling
handlers what changed meanwhile.  Handlers are plain callables run on the
event loop; controllers use them only to put keys on work queues.

Objects in the cache are shared: never mutate one (copy first).

``transform`` (client-go's SetTransform) trims each object before it is
cached, or drops it by returning None: a process that needs a few fields
of many objects keeps only those."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable, Iterable

from ..api.registry import Resource
from .rest import APIError, Client, resource

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]


def key_of(obj: Obj) -> str:
    md = obj["metadata"]
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else md["name"]


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def by_namespace(obj: Obj) -> Iterable[str]:
    return (obj["metadata"].get("namespace", ""),)


class Store:
    """Objects by key, with secondary indexes kept up to date."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None):
        self.items: dict[str, Obj] = {}
        self.indexers: dict[str, IndexFunc] = {"namespace": by_namespace}
        self.indexers.update(indexers or {})
        self._index: dict[str, dict[str, set[str]]] = {n: {} for n in self.indexers}

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        if name in self.indexers:
            return
        self.indexers[name] = fn
        idx: dict[str, set[str]] = {}
        for k, o in self.items.items():
            for v in fn(o):
                idx.setdefault(v, set()).add(k)
        self._index[name] = idx

    def get(self, key: str) -> Obj | None:
        return self.items.get(key)

    def get_by(self, namespace: str | None, name: str) -> Obj | None:
        return self.items.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self.items.values())
        return self.by_index("namespace", namespace)

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._index[name].get(value, ())
        return [self.items[k] for k in keys]

    def keys_by_index(self, name: str, value: str) -> set[str]:
        return set(self._index[name].get(value, ()))

    def put(self, obj: Obj) -> Obj | None:
        k = key_of(obj)
        old = self.items.get(k)
        if old is not None:
            self._unindex(k, old)
        self.items[k] = obj
        for n, fn in self.indexers.items():
            idx = self._index[n]
            for v in fn(obj):
                idx.setdefault(v, set()).add(k)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self.items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, k: str, obj: Obj) -> None:
        for n, fn in self.indexers.items():
            idx = self._index[n]
            for v in fn(obj):
                s = idx.get(v)
                if s is not None:
                    s.discard(k)
                    if not s:
                        del idx[v]

    def __len__(self) -> int:
        return len(self.items)


class Handler:
    def __init__(self, on_add: Callable[[Obj], None] | None = None,
                 on_update: Callable[[Obj, Obj], None] | None = None,
                 on_delete: Callable[[Obj], None] | None = None):
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete


class Informer:
    def __init__(self, client: Client, r: Resource, namespace: str | None = None, *,
                 label_selector: str = "", field_selector: str = "",
                 indexers: dict[str, IndexFunc] | None = None,
                 transform: Callable[[Obj], Obj | None] | None = None, page_size: int = 0):
        self.client = client
        self.transform = transform
        self.page_size = page_size  # list in pages (client-go's pager): only one page of full objects at once
        self.resource = r
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.store = Store(indexers)
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, on_add: Callable[[Obj], None] | None = None,
                    on_update: Callable[[Obj, Obj], None] | None = None,
                    on_delete: Callable[[Obj], None] | None = None) -> None:
        h = Handler(on_add, on_update, on_delete)
        self.handlers.append(h)
        if h.on_add:  # a late handler sees what is already cached
            for o in list(self.store.items.values()):
                h.on_add(o)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def run(self) -> None:
        delay = 0.5
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    delay = 0.5
                await self._watch()
            except asyncio.CancelledError:
                raise
            except _Expired:
                need_list = True
            except Exception as e:  # noqa: BLE001 - a broken stream is retried
                log.info("%s informer: %s; retrying", self.resource.plural, e)
                if isinstance(e, APIError) and e.code == 410:
                    need_list = True
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 30.0)

    async def _list(self) -> None:
        kind, api_version = self.resource.kind, self.resource.api_version
        fresh: dict[str, Obj] = {}
        cont = ""
        while True:
            paging = {"limit": self.page_size, "continue": cont} if self.page_size else {}
            lst = await self.client.list(self.resource, self.namespace, labelSelector=self.label_selector,
                                         fieldSelector=self.field_selector, **paging)
            rv = lst["metadata"].get("resourceVersion", "")
            for o in lst.get("items") or ():
                o.setdefault("kind", kind)
                o.setdefault("apiVersion", api_version)
                if self.transform is not None:
                    o = self.transform(o)
                    if o is None:
                        continue
                fresh[key_of(o)] = o
            cont = lst["metadata"].get("continue") or ""
            del lst
            if not (self.page_size and cont):
                break
        for k in [k for k in self.store.items if k not in fresh]:
            old = self.store.remove(k)
            if old is not None:
                self._emit_delete(old)
        for k, o in fresh.items():
            old = self.store.put(o)
            if old is None:
                self._emit_add(o)
            elif old["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                self._emit_update(old, o)
        self.resource_version = rv
        self.synced.set()

    async def _watch(self) -> None:
        async for ev in self.client.watch(self.resource, self.namespace,
                                          resource_version=self.resource_version,
                                          labelSelector=self.label_selector,
                                          fieldSelector=self.field_selector):
            typ = ev.get("type")
            obj = ev.get("object") or {}
            if typ == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired()
                raise APIError(obj.get("code", 500), obj)
            rv = obj.get("metadata", {}).get("resourceVersion")
            if typ == "BOOKMARK":
                if rv:
                    self.resource_version = rv
                continue
            obj.setdefault("kind", self.resource.kind)
            obj.setdefault("apiVersion", self.resource.api_version)
            if self.transform is not None:
                trimmed = self.transform(obj)
                if trimmed is None:  # not (or no longer) wanted: gone from this cache
                    if self.store.get(key_of(obj)) is not None:
                        typ = "DELETED"
                    else:
                        typ = ""
                else:
                    obj = trimmed
            if typ in ("ADDED", "MODIFIED"):
                old = self.store.put(obj)
                if old is None:
                    self._emit_add(obj)
                else:
                    self._emit_update(old, obj)
            elif typ == "DELETED":
                if self.store.remove(key_of(obj)) is not None or self.transform is None:
                    self._emit_delete(obj)
            if rv:
                self.resource_version = rv

    def _emit_add(self, o: Obj) -> None:
        for h in self.handlers:
            if h.on_add:
                _safely(h.on_add, o)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for h in self.handlers:
            if h.on_update:
                _safely(h.on_update, old, new)

    def _emit_delete(self, o: Obj) -> None:
        for h in self.handlers:
            if h.on_delete:
                _safely(h.on_delete, o)


class _Expired(Exception):
    pass


def _safely(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - one bad handler must not stop the informer
        log.exception("informer handler %r failed", fn)


def strip_managed_fields(obj: Obj) -> Obj:
    """Controllers never read managedFields, which are often a third of an
    object; kube's controller-manager and scheduler drop them the same way.
    (An update sent without them keeps the stored ones.)"""
    obj["metadata"].pop("managedFields", None)
    return obj


class InformerFactory:
    """Shares one informer per resource among all the controllers of a
    process.  Cached objects carry no managedFields (see
    :func:`strip_managed_fields`); a caller's own ``transform`` runs after."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[str, Informer] = {}

    def informer(self, spec: str | Resource, **kw: Any) -> Informer:
        r = resource(spec) if isinstance(spec, str) else spec
        key = f"{r.group}/{r.plural}"
        inf = self._informers.get(key)
        if inf is None:
            own = kw.pop("transform", None)
            kw["transform"] = strip_managed_fields if own is None else (
                lambda o, own=own: own(strip_managed_fields(o)))
            inf = Informer(self.client, r, **kw)
            self._informers[key] = inf
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            inf.start()

    async def wait_for_sync(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self._informers.values())),
                               timeout)

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()
