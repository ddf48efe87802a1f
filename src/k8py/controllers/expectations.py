"""Controller expectations (kube's ``controller.ControllerExpectations``):
after a sync creates or deletes N children, the controller waits until its
informer has seen those N events before acting on that owner again, so a
lagging cache never makes it create twice.  Expectations expire after five
minutes, so a lost event cannot wedge an owner for ever.

Also :class:`UIDSet` for "finalizer removal expected" tracking (kube's
``uidTrackingExpectations``)."""

from __future__ import annotations

import time
from typing import Callable, Hashable

EXPECTATIONS_TIMEOUT = 300.0


class Expectations:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._exp: dict[Hashable, list[float]] = {}  # key -> [adds, dels, timestamp]

    def satisfied(self, key: Hashable) -> bool:
        e = self._exp.get(key)
        if e is None:
            return True
        return (e[0] <= 0 and e[1] <= 0) or self.clock() - e[2] > EXPECTATIONS_TIMEOUT

    def expect(self, key: Hashable, adds: int = 0, dels: int = 0) -> None:
        self._exp[key] = [adds, dels, self.clock()]

    def creation_observed(self, key: Hashable, n: int = 1) -> None:
        e = self._exp.get(key)
        if e is not None:
            e[0] -= n

    def deletion_observed(self, key: Hashable, n: int = 1) -> None:
        e = self._exp.get(key)
        if e is not None:
            e[1] -= n

    def delete(self, key: Hashable) -> None:
        self._exp.pop(key, None)


class UIDSet:
    """Per-owner sets of child UIDs whose change the controller still waits to observe."""

    def __init__(self) -> None:
        self._uids: dict[Hashable, set[str]] = {}

    def get(self, key: Hashable) -> frozenset[str]:
        return frozenset(self._uids.get(key, ()))

    def expect(self, key: Hashable, uids: list[str]) -> None:
        if uids:
            self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: Hashable, uid: str) -> None:
        s = self._uids.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self._uids[key]

    def delete(self, key: Hashable) -> None:
        self._uids.pop(key, None)
