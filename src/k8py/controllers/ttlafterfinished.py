"""The TTL-after-finished controller (kube's ``pkg/controller/ttlafterfinished``):
a finished Job (``Complete`` or ``Failed``) with ``ttlSecondsAfterFinished``
is deleted, with foreground propagation, that many seconds after its terminal
condition's ``lastTransitionTime``.  The key is re-queued exactly at expiry
(no polling); before deleting, the Job is re-read from the API server and
deleted with a UID precondition.  Like kube, it records no events."""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable

from ..client.controller import Controller
from ..client.informer import key_of, split_key
from ..client.rest import APIError, is_not_found, resource
from .context import ControllerContext, register
from .jobutil import deleting, finish_time, finished

JOBS = resource("jobs.batch")
Obj = dict[str, Any]


def needs_cleanup(job: Obj) -> bool:
    return (job["spec"].get("ttlSecondsAfterFinished") is not None and not deleting(job)
            and finished(job) is not None)


def expire_at(job: Obj) -> float | None:
    """When the Job's TTL runs out; None if its terminal condition has no time."""
    t = finish_time(job)
    return None if t is None else t + job["spec"]["ttlSecondsAfterFinished"]


@register("ttl-after-finished")
class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 5

    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time):
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.jobs = ctx.informers.informer("jobs.batch")
        self.jobs.add_handler(self._observe, lambda old, cur: self._observe(cur))

    def _observe(self, job: Obj) -> None:
        if needs_cleanup(job):
            self.queue.add(key_of(job))

    def _time_left(self, job: Obj) -> float | None:
        at = expire_at(job)
        return None if at is None else at - self.clock()

    async def sync(self, key: Hashable) -> None:
        job = self.jobs.store.get(str(key))
        if job is None or not needs_cleanup(job):
            return
        left = self._time_left(job)
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        ns, name = split_key(str(key))
        try:
            fresh = await self.client.get(JOBS, name, ns)
        except APIError as e:
            if is_not_found(e):
                return
            raise
        if not needs_cleanup(fresh):
            return
        left = self._time_left(fresh)
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            await self.client.delete(JOBS, name, ns, uid=fresh["metadata"]["uid"], propagation="Foreground")
        except APIError as e:
            if not is_not_found(e) and e.code != 409:
                raise
