"""Timestamps as Kubernetes writes them (RFC 3339, whole seconds, UTC),
formatted once per second: every write asks for one."""

from __future__ import annotations

import time

_last_ts: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (whole seconds)."""
    global _last_ts
    sec = int(time.time())
    if _last_ts[0] != sec:
        _last_ts = (sec, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec)))
    return _last_ts[1]


def rfc3339_at(t: float) -> str:
    """A moment (seconds since the epoch) as Kubernetes writes timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
