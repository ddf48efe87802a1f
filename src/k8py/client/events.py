"""Recording core/v1 Events about objects, as client-go's record package:
events go out from a bounded background queue (dropped, not blocking, when
the API server falls behind), and a repeat of the same event about the same
object bumps its ``count`` and ``lastTimestamp`` instead of adding another.

As client-go's ``EventSourceObjectSpamFilter``, each (source, object, type)
has a token bucket of 25 events refilled at one per five minutes: a
1,000-replica ReplicaSet writes 25 "Created pod" events, not 1,000."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from typing import Any

from .rest import APIError, Client, resource
from .timeutil import now_rfc3339

log = logging.getLogger(__name__)
EVENTS = resource("events")
_MAX_QUEUE = 1000
_MAX_CACHE = 4096
SPAM_BURST = 25
SPAM_QPS = 1 / 300


def ref(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    out = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
           "name": md.get("name", ""), "uid": md.get("uid", ""),
           "resourceVersion": md.get("resourceVersion", "")}
    if md.get("namespace"):
        out["namespace"] = md["namespace"]
    if obj.get("_fieldPath"):  # a part of the object (kubelet: spec.containers{name})
        out["fieldPath"] = obj["_fieldPath"]
    return out


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None):
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self._queue: asyncio.Queue[tuple[dict, str, str, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen: OrderedDict[tuple, dict] = OrderedDict()
        self._buckets: OrderedDict[tuple, list[float]] = OrderedDict()  # key -> [tokens, last refill]

    def _allowed(self, obj: dict[str, Any], type_: str) -> bool:
        md = obj.get("metadata") or {}
        key = (obj.get("kind"), md.get("namespace"), md.get("name"), md.get("uid"), obj.get("apiVersion"), type_)
        now = time.monotonic()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = [float(SPAM_BURST), now]
            if len(self._buckets) > _MAX_CACHE:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            b[0] = min(float(SPAM_BURST), b[0] + (now - b[1]) * SPAM_QPS)
            b[1] = now
        if b[0] < 1:
            return False
        b[0] -= 1
        return True

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        if not self._allowed(obj, type_):
            log.debug("event filtered as spam: %s %s", reason, message)
            return
        if self._queue is None:
            self._queue = asyncio.Queue(_MAX_QUEUE)
            self._task = asyncio.create_task(self._run(), name=f"events {self.component}")
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            log.debug("event dropped: %s %s", reason, message)

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, "Normal", reason, message)

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, "Warning", reason, message)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            obj, type_, reason, message = await self._queue.get()
            try:
                await self._write(obj, type_, reason, message)
            except (APIError, OSError, asyncio.TimeoutError) as e:
                log.debug("event %s not written: %s", reason, e)

    async def _write(self, obj: dict, type_: str, reason: str, message: str) -> None:
        involved = ref(obj)
        ns = involved.get("namespace") or "default"
        key = (involved["kind"], ns, involved["name"], involved["uid"], type_, reason, message)
        now = now_rfc3339()
        prev = self._seen.get(key)
        if prev is not None:
            prev["count"] += 1
            try:
                await self.client.patch(EVENTS, prev["name"], {"count": prev["count"], "lastTimestamp": now},
                                        ns)
                self._seen.move_to_end(key)
                return
            except APIError as e:
                if e.code != 404:
                    raise
                del self._seen[key]
        name = f"{involved['name']}.{time.time_ns():x}"
        ev = {"metadata": {"name": name, "namespace": ns}, "involvedObject": involved,
              "reason": reason, "message": message, "type": type_, "count": 1,
              "firstTimestamp": now, "lastTimestamp": now,
              "source": {"component": self.component, "host": self.host},
              "reportingComponent": self.component, "reportingInstance": self.host}
        await self.client.create(EVENTS, ev, ns)
        self._seen[key] = {"name": name, "count": 1}
        if len(self._seen) > _MAX_CACHE:
            self._seen.popitem(last=False)

    async def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue is not None and not self._queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


