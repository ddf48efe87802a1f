"""Node selectors and node affinity matched against a node's label dict
and name (nodeaffinity.RequiredNodeAffinity) without building selector
objects per node, for the filters' hot path; taints and tolerations come
from :mod:`k8py.api.nodeaffinity`, shared with the DaemonSet controller."""

from __future__ import annotations

from typing import Any, Iterable

from ..api.nodeaffinity import tolerated, tolerates, untolerated_taint

__all__ = ["tolerated", "tolerates", "first_untolerated", "node_selector_matches", "term_matches",
           "pod_matches_node_affinity", "required_node_affinity"]

Obj = dict[str, Any]


def first_untolerated(taints: Iterable[Obj], tolerations: Iterable[Obj], effects: tuple[str, ...]) -> Obj | None:
    return untolerated_taint(taints, tolerations, effects)  # type: ignore[return-value]


def _int(s: str) -> int | None:
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def requirement_matches(req: Obj, values_of: dict[str, str]) -> bool:
    key = req.get("key") or ""
    op = req.get("operator") or ""
    vals = req.get("values") or ()
    has = key in values_of
    v = values_of.get(key)
    if op == "In":
        return has and v in vals
    if op == "NotIn":
        return not has or v not in vals
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt"):
        if not has or len(vals) != 1:
            return False
        a, b = _int(v or ""), _int(vals[0])
        if a is None or b is None:
            return False
        return a > b if op == "Gt" else a < b
    return False


def term_matches(term: Obj, node_labels: dict[str, str], node_name: str) -> bool:
    """One NodeSelectorTerm: its expressions and fields are ANDed; an empty
    term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    for r in exprs:
        if not requirement_matches(r, node_labels):
            return False
    for r in fields:
        if r.get("key") != "metadata.name" or not requirement_matches(r, {"metadata.name": node_name}):
            return False
    return True


def node_selector_matches(ns: Obj | None, node_labels: dict[str, str], node_name: str) -> bool:
    """A NodeSelector: terms ORed."""
    if ns is None:
        return True
    return any(term_matches(t, node_labels, node_name) for t in ns.get("nodeSelectorTerms") or ())


def required_node_affinity(pod: Obj) -> tuple[dict[str, str], Obj | None]:
    spec = pod.get("spec") or {}
    sel = spec.get("nodeSelector") or {}
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return sel, na.get("requiredDuringSchedulingIgnoredDuringExecution")


def pod_matches_node_affinity(pod: Obj, node_labels: dict[str, str], node_name: str) -> bool:
    sel, req = required_node_affinity(pod)
    for k, v in sel.items():
        if node_labels.get(k) != v:
            return False
    return node_selector_matches(req, node_labels, node_name)
