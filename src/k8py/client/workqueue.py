"""A rate-limited work queue, as client-go's workqueue: a key is queued at
most once; a key being processed is not handed to a second worker, and if
it is added meanwhile it comes back once ``done`` is called.

Failures go back with ``add_rate_limited``: per-key exponential back-off
(5 ms doubling to 1000 s) combined with an overall token bucket (10/s,
burst 100), the larger delay winning, as client-go's default controller
rate limiter does.  ``forget`` ends a key's back-off after a success."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Hashable


class RateLimiter:
    def __init__(self, base: float = 0.005, cap: float = 1000.0, qps: float = 10.0, burst: int = 100):
        self.base, self.cap = base, cap
        self.qps, self.burst = qps, burst
        self._failures: dict[Hashable, int] = {}
        self._tokens = float(burst)
        self._last = time.monotonic()

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        backoff = min(self.cap, self.base * (2 ** n))
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        bucket = 0.0 if self._tokens >= 0 else -self._tokens / self.qps
        return max(backoff, bucket)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class WorkQueue:
    def __init__(self, name: str = "", rate_limiter: RateLimiter | None = None):
        self.name = name
        self.limiter = rate_limiter or RateLimiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._due: dict[Hashable, float] = {}
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        old = self._due.get(key)
        if old is not None and old <= due:
            return  # an earlier wake-up is already set
        if key in self._timers:
            self._timers[key].cancel()
        self._due[key] = due
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self._due.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Hashable) -> None:
        self.add_after(key, self.limiter.when(key))

    def forget(self, key: Hashable) -> None:
        self.limiter.forget(key)

    def retries(self, key: Hashable) -> int:
        return self.limiter.retries(key)

    async def get(self) -> Hashable:
        while not self._queue:
            if self._shutdown:
                raise asyncio.CancelledError("queue shut down")
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shutdown(self) -> None:
        self._shutdown = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
