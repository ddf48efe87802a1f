"""Kubernetes' time formats: Time (seconds) and MicroTime (microseconds)."""

from __future__ import annotations

import datetime as dt
import time


def now_rfc3339(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def now_micro(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> float | None:
    """Seconds since the epoch of a Time or MicroTime string, None if unset."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None
