"""Watch streams: newline-delimited ``{"type": ..., "object": ...}`` events
over chunked HTTP, each written as soon as it exists.

A watch subscribes to its resource's cache first, then sends what came
before: the current objects as synthetic ADDED events (resourceVersion 0 or
unset, or sendInitialEvents), or the cache's recent events after the
requested resourceVersion (410 Expired when those are gone).  Objects that
start or stop matching a selector arrive as ADDED or DELETED.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Callable

import orjson
from aiohttp import web

from ..api.registry import Resource
from . import errors
from .watchcache import Entry, WatchEvent

Matcher = Callable[[Entry], bool]
Render = Callable[[Entry], bytes]

BOOKMARK_EVERY = 30.0


def _line(kind: str, obj: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj + b"}\n"


def _with_rv(e: Entry, rv: int) -> Entry:
    obj = orjson.loads(e.raw)
    obj["metadata"]["resourceVersion"] = str(rv)
    return Entry(e.key, orjson.dumps(obj), rv, e.labels, e.namespace, e.name, e.fields)


def transform(ev: WatchEvent, match: Matcher) -> tuple[str, Entry] | None:
    if ev.type == "DELETE":
        return ("DELETED", ev.entry) if match(ev.entry) else None
    cur = match(ev.entry)
    prev = ev.prev is not None and match(ev.prev)
    if cur:
        return ("MODIFIED" if prev else "ADDED", ev.entry)
    if prev:
        return ("DELETED", _with_rv(ev.prev, ev.rv))  # type: ignore[arg-type]
    return None


async def serve(request: web.Request, ostore: Any, r: Resource, ns: str | None, match: Matcher,
                render: Render, query: Any) -> web.StreamResponse:
    caches = ostore.caches
    cache = ostore.cache(r)
    rv = query.get("resourceVersion", "")
    send_initial = query.get("sendInitialEvents") == "true"
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    try:
        timeout = float(query.get("timeoutSeconds") or 0) or random.uniform(1800, 3600)
    except ValueError:
        raise errors.bad_request("invalid timeoutSeconds") from None
    if send_initial and query.get("resourceVersionMatch") != "NotOlderThan":
        raise errors.invalid("ListOptions", "meta.k8s.io", "", 'ListOptions.meta.k8s.io "" is invalid: '
                             'resourceVersionMatch: Forbidden: sendInitialEvents requires setting '
                             'resourceVersionMatch to NotOlderThan', [])
    w = cache.subscribe()
    try:
        initial: list[tuple[str, Entry]] = []
        error: dict[str, Any] | None = None
        if rv == "" and not send_initial:
            await ostore.fresh()
            start = caches.rev
            initial = [("ADDED", e) for e in cache.list(ns) if match(e)]
        elif rv in ("", "0") or send_initial:
            if rv not in ("", "0"):
                await caches.wait_fresh(_int(rv))
            elif rv == "":
                await ostore.fresh()
            start = caches.rev
            initial = [("ADDED", e) for e in cache.list(ns) if match(e)]
        else:
            n = _int(rv)
            if n > caches.rev:
                await caches.wait_fresh(n)
            evs = cache.since(n) if n >= ostore.store.compact_revision else None
            start = n
            if evs is None:
                error = errors.gone_too_old(n).status()
            else:
                for ev in evs:
                    t = transform(ev, match)
                    if t:
                        initial.append(t)
                    start = ev.rv
                start = max(start, n)
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if error is not None:
            await resp.write(_line("ERROR", orjson.dumps(error)))
            return resp
        buf = [_line(t, render(e)) for t, e in initial]
        if send_initial:
            buf.append(_line("BOOKMARK", _bookmark(r, caches.rev, initial_end=True)))
        if buf:
            await resp.write(b"".join(buf))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bm = loop.time() + BOOKMARK_EVERY
        q = w.queue
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wait = min(deadline, next_bm) - now if bookmarks else deadline - now
            try:
                ev = await asyncio.wait_for(q.get(), max(wait, 0.001))
            except TimeoutError:
                if bookmarks and loop.time() >= next_bm:
                    await resp.write(_line("BOOKMARK", _bookmark(r, caches.rev)))
                    next_bm = loop.time() + BOOKMARK_EVERY
                continue
            out: list[bytes] = []
            while True:
                if ev is None:
                    if out:
                        await resp.write(b"".join(out))
                    return resp
                if ev.rv > start:
                    t = transform(ev, match)
                    if t:
                        out.append(_line(t[0], render(t[1])))
                if q.empty():
                    break
                ev = q.get_nowait()
            if out:
                await resp.write(b"".join(out))
        return resp
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        cache.unsubscribe(w)


def _bookmark(r: Resource, rev: int, initial_end: bool = False) -> bytes:
    md: dict[str, Any] = {"resourceVersion": str(rev)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return orjson.dumps({"kind": r.kind, "apiVersion": r.api_version, "metadata": md})


def _int(rv: str) -> int:
    try:
        return int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
