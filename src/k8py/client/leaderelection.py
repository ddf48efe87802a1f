"""Leader election through a coordination.k8s.io Lease, as client-go's
leaderelection package does it.

A candidate takes the Lease when it is absent, released, or not renewed
for ``lease_duration`` seconds *as observed locally* (no clock agreement
between machines is needed); the holder renews every ``retry_period`` and
gives up leadership when it cannot renew within ``renew_deadline``.  Every
write is a compare-and-swap on the Lease's resourceVersion, so two
candidates never both win.  On a clean stop the holder releases the Lease so
a successor need not wait."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from typing import Awaitable, Callable

from .rest import APIError, Client, is_not_found, resource
from .timeutil import now_micro

log = logging.getLogger(__name__)
LEASES = resource("leases.coordination.k8s.io")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaderElector:
    def __init__(self, client: Client, name: str, namespace: str = "kube-system", *,
                 identity: str | None = None, lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0):
        self.client = client
        self.name, self.namespace = name, namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: dict | None = None  # the record's spec as last seen
        self._observed_at = 0.0  # monotonic time it last changed
        self.is_leader = False

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign until leader, then run ``lead()`` while renewing; return
        when leadership is lost or ``lead`` ends (the caller then exits, as
        kube's components do)."""
        while not await self._try():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        log.info("%s: became leader of %s/%s", self.identity, self.namespace, self.name)
        work = asyncio.create_task(lead())
        renew = asyncio.create_task(self._renew_loop())
        try:
            done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            if renew in done:
                log.error("%s: lost leadership of %s/%s", self.identity, self.namespace, self.name)
        finally:
            self.is_leader = False
            for t in (work, renew):
                t.cancel()
            await asyncio.gather(work, renew, return_exceptions=True)
            await self.release()

    async def _renew_loop(self) -> None:
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                ok = await asyncio.wait_for(self._try(), self.renew_deadline)
            except (asyncio.TimeoutError, OSError, APIError) as e:
                log.info("lease renewal failed: %s", e)
                ok = False
            if ok:
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > self.renew_deadline:
                return

    async def _try(self) -> bool:
        now = now_micro()
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except APIError as e:
            if not is_not_found(e):
                return False
            try:
                await self.client.create(LEASES, {"metadata": {"name": self.name, "namespace": self.namespace},
                                                  "spec": spec}, self.namespace)
            except APIError:
                return False
            self._observe(spec)
            return True
        except OSError:
            return False
        old = lease.get("spec") or {}
        self._observe(old)
        holder = old.get("holderIdentity") or ""
        expired = time.monotonic() > self._observed_at + float(old.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and not expired:
            return False
        if holder == self.identity:
            spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = old.get("leaseTransitions") or 0
        else:
            spec["leaseTransitions"] = (old.get("leaseTransitions") or 0) + 1
        lease["spec"] = spec
        try:
            await self.client.update(LEASES, lease)
        except (APIError, OSError):
            return False
        self._observe(spec)
        return True

    def _observe(self, spec: dict) -> None:
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = time.monotonic()

    async def release(self) -> None:
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = now_micro()
            lease["spec"].update(holderIdentity=None, leaseDurationSeconds=1, renewTime=now, acquireTime=now)
            await self.client.update(LEASES, lease)
        except (APIError, OSError, asyncio.CancelledError):
            pass
