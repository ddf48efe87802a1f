"""The scheduling queue, as kube's PriorityQueue: an active queue (higher
priority first, then first in), a backoff queue (a pod that failed waits
1 s, doubling per attempt up to 10 s) and the unschedulable pods, which go
back when a cluster event that could help them happens (the plugins that
rejected a pod say which events those are), or after five minutes anyway.

A pod that failed while an event arrived during its scheduling cycle goes
straight to backoff rather than waiting for another event (kube's
moveRequestCycle)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable

from .framework import ClusterEvent
from .nodeinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE = 300.0  # podMaxInUnschedulablePodsDuration


class SchedulingQueue:
    def __init__(self, plugin_events: dict[str, list[ClusterEvent]], *,
                 clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_unschedulable: float = MAX_UNSCHEDULABLE):
        self.plugin_events = plugin_events
        self.clock = clock
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.max_unschedulable = max_unschedulable
        self._seq = itertools.count()
        self.active: list[tuple[int, float, int, str]] = []  # (-priority, timestamp, seq, key)
        self.backoff: list[tuple[float, int, str]] = []  # (until, seq, key)
        self.unschedulable: dict[str, PodInfo] = {}
        self.where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable"
        self.infos: dict[str, PodInfo] = {}
        self.in_flight: set[str] = set()
        self.cycle = 0
        self.move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self.where)

    # -- entry points -----------------------------------------------------------

    def add(self, p: PodInfo) -> None:
        """A new pending pod."""
        now = self.clock()
        p.timestamp = now
        if not p.initial_attempt:
            p.initial_attempt = now
        self.infos[p.key] = p
        self._to_active(p)

    def update(self, p: PodInfo, changed_spec: bool) -> None:
        """A pending pod changed. If it waits as unschedulable and its spec
        or labels changed, it may fit now."""
        where = self.where.get(p.key)
        self.infos[p.key] = p
        if where is None and p.key not in self.in_flight:
            self.add(p)
        elif where == "unschedulable" and changed_spec:
            del self.unschedulable[p.key]
            self._requeue(p)

    def delete(self, key: str) -> None:
        self.where.pop(key, None)
        self.unschedulable.pop(key, None)
        self.infos.pop(key, None)

    def done(self, key: str) -> None:
        self.in_flight.discard(key)

    async def pop(self) -> PodInfo:
        while True:
            while self.active:
                _, ts, _, key = heapq.heappop(self.active)
                p = self.infos.get(key)
                if p is None or self.where.get(key) != "active" or p.timestamp != ts:
                    continue  # stale entry
                del self.where[key]
                self.cycle += 1
                p.cycle = self.cycle
                p.attempts += 1
                self.in_flight.add(key)
                return p
            self._wakeup.clear()
            await self._wakeup.wait()

    def add_unschedulable(self, p: PodInfo, backoff_only: bool = False) -> None:
        """After a failed attempt: to backoff if an event came meanwhile
        (or for errors), else to the unschedulable pods."""
        self.in_flight.discard(p.key)
        if p.key not in self.infos or p.key in self.where:
            return
        p.backoff_until = self.clock() + self.backoff_duration(p)
        p.timestamp = self.clock()
        if backoff_only or self.move_request_cycle >= p.cycle:
            self._to_backoff(p)
        else:
            self.unschedulable[p.key] = p
            self.where[p.key] = "unschedulable"

    def backoff_duration(self, p: PodInfo) -> float:
        d = self.initial_backoff
        for _ in range(1, p.attempts):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return d

    # -- moves -----------------------------------------------------------------

    def move_all(self, event: ClusterEvent, pred: Callable[[PodInfo], bool] | None = None) -> int:
        """Moves the unschedulable pods this event could help to backoff or
        active (MoveAllToActiveOrBackoffQueue)."""
        self.move_request_cycle = self.cycle
        moved = []
        for key, p in self.unschedulable.items():
            if self._helps(p, event) and (pred is None or pred(p)):
                moved.append(p)
        for p in moved:
            del self.unschedulable[p.key]
            self._requeue(p)
        return len(moved)

    def _helps(self, p: PodInfo, event: ClusterEvent) -> bool:
        if event.resource == "*" or not p.unschedulable_plugins:
            return True
        for name in p.unschedulable_plugins:
            for interest in self.plugin_events.get(name, ()):
                if interest.matches(event):
                    return True
        return False

    def _requeue(self, p: PodInfo) -> None:
        if p.backoff_until > self.clock():
            self._to_backoff(p)
        else:
            self._to_active(p)

    def _to_active(self, p: PodInfo) -> None:
        self.where[p.key] = "active"
        heapq.heappush(self.active, (-p.priority, p.timestamp, next(self._seq), p.key))
        self._wakeup.set()

    def _to_backoff(self, p: PodInfo) -> None:
        self.where[p.key] = "backoff"
        heapq.heappush(self.backoff, (p.backoff_until, next(self._seq), p.key))

    def flush_backoff(self) -> None:
        now = self.clock()
        while self.backoff and self.backoff[0][0] <= now:
            until, _, key = heapq.heappop(self.backoff)
            p = self.infos.get(key)
            if p is None or self.where.get(key) != "backoff" or p.backoff_until != until:
                continue
            self._to_active(p)

    def flush_unschedulable(self) -> None:
        now = self.clock()
        old = [p for p in self.unschedulable.values() if now - p.timestamp > self.max_unschedulable]
        for p in old:
            del self.unschedulable[p.key]
            self._requeue(p)

    async def run_flushes(self, backoff_period: float = 1.0, unschedulable_period: float = 30.0) -> None:
        last_u = self.clock()
        while True:
            await asyncio.sleep(backoff_period)
            self.flush_backoff()
            if self.clock() - last_u >= unschedulable_period:
                last_u = self.clock()
                self.flush_unschedulable()

    def pending(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0}
        for w in self.where.values():
            out[w] += 1
        return out
