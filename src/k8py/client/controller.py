"""The controller pattern: informer handlers put keys on a work queue;
``workers`` tasks pop keys and call ``sync(key)``; success forgets the
key's back-off, an exception puts it back rate-limited."""

from __future__ import annotations

import asyncio
import logging
from typing import Hashable

from .workqueue import WorkQueue

log = logging.getLogger(__name__)


class Controller:
    name = "controller"
    workers = 1

    def __init__(self) -> None:
        self.queue = WorkQueue(self.name)

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    async def sync(self, key: Hashable) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}")
                 for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - retried with back-off
                log.info("%s: sync %r failed: %s", self.name, key, e, exc_info=log.isEnabledFor(logging.DEBUG))
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)
