"""The watch cache: every stored object of every resource, kept in memory.

One storage watch on ``/registry/`` feeds a :class:`Cache` per storage
prefix (one per stored resource).  Each cache holds the current objects as
ready-to-send JSON (with ``resourceVersion`` set) plus what selectors need
(labels, selectable fields), and a ring of recent events so that watches
from a recent resourceVersion replay from memory.  ``wait_fresh(rev)`` lets
a consistent read wait until the cache has seen every write up to ``rev``.

Objects are kept as bytes, not dicts, so that 10,000 pods fit in tens of MB.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable, Iterable

import orjson

from ..storage.interface import CompactedError, Event, Store

log = logging.getLogger(__name__)

RING = 20000  # recent events kept per resource
MAX_PENDING = 50000  # a watcher this far behind is closed (it will re-watch)


class Entry:
    """One object version as the cache holds it."""

    __slots__ = ("key", "namespace", "name", "raw", "rv", "labels", "fields")

    def __init__(self, key: str, raw: bytes, rv: int, labels: dict[str, str], namespace: str, name: str,
                 fields: dict[str, str] | None):
        self.key = key
        self.raw = raw
        self.rv = rv
        self.labels = labels
        self.namespace = namespace
        self.name = name
        self.fields = fields

    def obj(self) -> dict[str, Any]:
        return orjson.loads(self.raw)


FieldsFn = Callable[[dict[str, Any]], dict[str, str]]


def compact_dumps(obj: Any) -> bytes:
    """orjson.dumps, copied into an exactly-sized bytes object: orjson's own
    result keeps its whole working buffer (at least 4 KiB) allocated, which
    would more than double what the cache holds per object."""
    return bytes(memoryview(orjson.dumps(obj)))


def make_entry(key: str, value: bytes, rv: int, fields_fn: FieldsFn | None) -> Entry:
    obj = orjson.loads(value)
    md = obj.setdefault("metadata", {})
    md["resourceVersion"] = str(rv)
    return Entry(key, compact_dumps(obj), rv, md.get("labels") or {}, md.get("namespace", ""),
                 md.get("name", ""), fields_fn(obj) if fields_fn else None)


class WatchEvent:
    __slots__ = ("type", "entry", "prev", "rv")

    def __init__(self, type: str, entry: Entry, prev: Entry | None, rv: int):
        self.type = type  # "PUT" | "DELETE"
        self.entry = entry  # for DELETE: the last value, with rv = the delete's revision
        self.prev = prev
        self.rv = rv


class Watcher:
    """A subscriber: gets every event of its cache; filtering happens in the
    stream writer so that dispatch stays cheap."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.closed = False

    def push(self, ev: WatchEvent) -> None:
        if self.closed:
            return
        if self.queue.qsize() > MAX_PENDING:
            self.close()
            return
        self.queue.put_nowait(ev)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class Cache:
    def __init__(self, prefix: str, fields_fn: FieldsFn | None):
        self.prefix = prefix
        self.fields_fn = fields_fn
        self.objects: dict[str, Entry] = {}
        self.ring: deque[WatchEvent] = deque()
        self.oldest_rv = 0  # events with rv > oldest_rv are all in the ring
        self.watchers: set[Watcher] = set()

    def reset(self, entries: Iterable[Entry], rev: int) -> None:
        self.objects = {e.key: e for e in entries}
        self.ring.clear()
        self.oldest_rv = rev
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()

    def apply(self, ev: Event) -> None:
        kv = ev.kv
        prev = self.objects.get(kv.key)
        if ev.type == "PUT":
            entry = make_entry(kv.key, kv.value, kv.mod_revision, self.fields_fn)
            self.objects[kv.key] = entry
        else:
            if prev is None:
                return
            del self.objects[kv.key]
            entry = make_entry(kv.key, kv.value, kv.mod_revision, self.fields_fn)
        wev = WatchEvent(ev.type, entry, prev, kv.mod_revision)
        ring = self.ring
        ring.append(wev)
        if len(ring) > RING:
            self.oldest_rv = ring.popleft().rv
        for w in self.watchers:
            w.push(wev)

    def since(self, rv: int) -> list[WatchEvent] | None:
        """Events after ``rv``, or None when the ring no longer has them all."""
        if rv < self.oldest_rv:
            return None
        ring = self.ring
        if not ring or ring[-1].rv <= rv:
            return []
        # binary search on rv
        lo, hi = 0, len(ring)
        while lo < hi:
            mid = (lo + hi) // 2
            if ring[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return [ring[i] for i in range(lo, len(ring))]

    def subscribe(self) -> Watcher:
        w = Watcher()
        self.watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers.discard(w)
        w.closed = True

    def list(self, namespace: str | None) -> list[Entry]:
        if namespace:
            p = self.prefix + namespace + "/"
            items = [e for k, e in self.objects.items() if k.startswith(p)]
        else:
            items = list(self.objects.values())
        items.sort(key=_key)
        return items


def _key(e: Entry) -> str:
    return e.key


def cache_prefix(key: str) -> str:
    parts = key.split("/", 4)
    return f"/registry/{parts[2]}/{parts[3]}/"


class CacheSet:
    """All caches, fed by one storage watch."""

    def __init__(self, store: Store):
        self.store = store
        self.caches: dict[str, Cache] = {}
        self.rev = 0
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def add(self, prefix: str, fields_fn: FieldsFn | None) -> Cache:
        c = self.caches.get(prefix)
        if c is None:
            c = self.caches[prefix] = Cache(prefix, fields_fn)
        return c

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._run(), name="watch-cache")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _load(self) -> None:
        res = await self.store.range("/registry/")
        grouped: dict[str, list[Entry]] = {p: [] for p in self.caches}
        for kv in res.kvs:
            p = cache_prefix(kv.key)
            c = self.caches.get(p)
            if c is None:
                continue
            grouped[p].append(make_entry(kv.key, kv.value, kv.mod_revision, c.fields_fn))
        for p, c in self.caches.items():
            c.reset(grouped[p], res.revision)
        self.rev = res.revision
        self.ready.set()

    async def _run(self) -> None:
        while True:
            try:
                async for batch in self.store.watch("/registry/", self.rev):
                    for ev in batch:
                        c = self.caches.get(cache_prefix(ev.kv.key))
                        if c is not None:
                            c.apply(ev)
                    self.rev = batch[-1].kv.mod_revision
                    async with self._cond:
                        self._cond.notify_all()
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning("watch cache fell behind compaction; reloading")
                await self._load()
            except Exception:  # noqa: BLE001 - keep the cache alive, reconnect
                log.exception("watch cache stream failed; retrying")
                await asyncio.sleep(0.5)

    async def wait_fresh(self, rev: int, timeout: float = 3.0) -> bool:
        if self.rev >= rev:
            return True
        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(lambda: self.rev >= rev)
            return True
        except TimeoutError:
            return False
