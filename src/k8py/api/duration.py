"""Kubernetes' human-readable durations (``k8s.io/apimachinery/pkg/util/duration``).

``human_duration`` is what every AGE cell (and the RESTARTS "ago", the job
DURATION, ...) shows: about 2-3 significant figures, e.g. ``45s``, ``3m20s``,
``12m``, ``5h10m``, ``20h``, ``3d4h``, ``40d``, ``2y30d``.  ``short_human_duration``
keeps a single unit.  Both take a duration in seconds (a float is fine) and,
like kube, tolerate a clock skew of up to one second in the past ("0s") before
answering ``<invalid>``.
"""

from __future__ import annotations

__all__ = ["human_duration", "short_human_duration"]


def _whole_seconds(seconds: float) -> int:
    # Go's int(d.Seconds()) truncates toward zero.
    return int(seconds)


def short_human_duration(seconds: float) -> str:
    """ShortHumanDuration: one unit (``s``, ``m``, ``h``, ``d``, ``y``)."""
    s = _whole_seconds(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60:
        return f"{s}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = int(seconds // 3600)
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{int(seconds / 3600 / 24 / 365)}y"


def human_duration(seconds: float) -> str:
    """HumanDuration: ~2-3 significant figures, as ``kubectl get`` shows AGE."""
    s = _whole_seconds(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rem = days % 365
        return f"{days // 365}y" if rem == 0 else f"{days // 365}y{rem}d"
    return f"{hours // 24 // 365}y"
