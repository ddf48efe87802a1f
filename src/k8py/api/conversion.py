"""Conversion between the versions that share one storage location.

Objects are stored in the resource's ``stored_version``; a request for
another version converts on the way out (``to_version``) and on the way in
(``to_storage``).  Pairs served here: autoscaling/v1 <-> v2
HorizontalPodAutoscaler, and core/v1 <-> events.k8s.io/v1 Event.
"""

from __future__ import annotations

from typing import Any

from .registry import Resource

_EVENT_RENAMES = (  # (core/v1 field, events.k8s.io/v1 field)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)
_CPU_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"


def needs_conversion(r: Resource) -> bool:
    return bool(r.storage_version and r.storage_version != r.version) or bool(
        r.storage_group and r.storage_group != (r.group or "core"))


def to_version(r: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """Stored object -> the version ``r`` serves (a new dict; input untouched)."""
    if not needs_conversion(r):
        return obj
    if r.kind == "Event":
        out = _rename(obj, {a: b for a, b in _EVENT_RENAMES})
    elif r.kind == "HorizontalPodAutoscaler":
        out = _hpa_v2_to_v1(obj)
    else:
        out = dict(obj)
    out["apiVersion"] = r.api_version
    out["kind"] = r.kind
    return out


def to_storage(r: Resource, stored: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """An object in ``r``'s version -> the stored version (a new dict)."""
    if not needs_conversion(r):
        return obj
    if r.kind == "Event":
        out = _rename(obj, {b: a for a, b in _EVENT_RENAMES})
    elif r.kind == "HorizontalPodAutoscaler":
        out = _hpa_v1_to_v2(obj)
    else:
        out = dict(obj)
    out["apiVersion"] = stored.api_version
    out["kind"] = stored.kind
    return out


def _rename(obj: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in obj.items()}


def _hpa_v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    spec = dict(obj.get("spec") or {})
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        res = m.get("resource") or {}
        tgt = res.get("target") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu" and tgt.get("type") == "Utilization":
            spec["targetCPUUtilizationPercentage"] = tgt.get("averageUtilization")
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    current = status.pop("currentMetrics", None) or []
    status.pop("conditions", None)
    for m in current:
        res = m.get("resource") or {}
        cur = res.get("current") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu" and "averageUtilization" in cur:
            status["currentCPUUtilizationPercentage"] = cur["averageUtilization"]
    status.setdefault("currentReplicas", 0)
    status.setdefault("desiredReplicas", 0)
    out["status"] = status
    return out


def _hpa_v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    spec = dict(obj.get("spec") or {})
    pct = spec.pop("targetCPUUtilizationPercentage", None)
    if pct is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}}}]
    out["spec"] = spec
    status = dict(obj.get("status") or {})
    cur = status.pop("currentCPUUtilizationPercentage", None)
    if cur is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": cur}}}]
    if status:
        out["status"] = status
    return out
