"""What a pod asks of a node, as kube's component-helpers
(``scheduling/corev1`` and ``.../nodeaffinity``): node selector terms,
the pod's required node affinity (``nodeSelector`` AND required
``nodeAffinity``), preferred terms' weights, and taints against
tolerations.  Shared by the scheduler's plugins and the DaemonSet
controller, which must agree on which nodes a pod may run on.

Objects are plain dicts; nothing here does I/O."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from .labels import SelectorError, Requirement, Selector, selector_from_set

Obj = dict[str, Any]

_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}
NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"


def _requirements(exprs: Iterable[Mapping[str, Any]]) -> Selector:
    reqs = []
    for e in exprs:
        op = _OPS.get(e.get("operator") or "")
        if op is None:
            raise SelectorError(f"{e.get('operator')!r} is not a valid node selector operator")
        reqs.append(Requirement.new(e.get("key") or "", op, list(e.get("values") or ()) or None))
    return Selector(reqs)


def _field_matches(exprs: Iterable[Mapping[str, Any]], node: Obj) -> bool:
    name = node["metadata"]["name"]
    for e in exprs:
        if e.get("key") != "metadata.name":
            return False
        values = e.get("values") or ()
        op = e.get("operator")
        if op == "In":
            if name not in values:
                return False
        elif op == "NotIn":
            if name in values:
                return False
        else:
            return False
    return True


def term_matches(term: Mapping[str, Any], node: Obj) -> bool:
    """One NodeSelectorTerm: its expressions and fields all hold; an empty
    or invalid term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    if exprs:
        try:
            sel = _requirements(exprs)
        except SelectorError:
            return False
        if not sel.matches(node["metadata"].get("labels") or {}):
            return False
    return not fields or _field_matches(fields, node)


def selector_matches(node_selector: Mapping[str, Any] | None, node: Obj) -> bool:
    """A NodeSelector: its terms are ORed; ``None`` matches every node."""
    if node_selector is None:
        return True
    return any(term_matches(t, node) for t in node_selector.get("nodeSelectorTerms") or ())


def required_affinity(pod: Obj) -> Callable[[Obj], bool]:
    """``GetRequiredNodeAffinity(pod).Match``: the pod's nodeSelector and
    its required node affinity, as one predicate over nodes."""
    spec = pod.get("spec") or {}
    labels_sel = selector_from_set(spec.get("nodeSelector")) if spec.get("nodeSelector") else None
    na = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = na.get("requiredDuringSchedulingIgnoredDuringExecution")

    def match(node: Obj) -> bool:
        if labels_sel is not None and not labels_sel.matches(node["metadata"].get("labels") or {}):
            return False
        return selector_matches(required, node)
    return match


def preferred_score(pod: Obj, node: Obj) -> int:
    """Sum of the weights of the pod's preferred node-affinity terms the node matches."""
    na = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
    return sum(int(p.get("weight") or 0)
               for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
               if term_matches(p.get("preference") or {}, node))


# --- taints and tolerations ------------------------------------------------------------------------
def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``: an empty effect or key is a wildcard."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return op == "Exists"


def tolerated(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def untolerated_taint(taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]],
                      effects: Iterable[str] = (NO_SCHEDULE, NO_EXECUTE)) -> Mapping[str, Any] | None:
    """``FindMatchingUntoleratedTaint``: the first taint with one of
    ``effects`` that no toleration tolerates, or None."""
    tols = list(tolerations)
    wanted = set(effects)
    for taint in taints:
        if taint.get("effect") in wanted and not tolerated(taint, tols):
            return taint
    return None


def add_toleration(tolerations: list[Obj], toleration: Obj) -> bool:
    """``AddOrUpdateTolerationInPodSpec``: replaces a toleration with the
    same key, operator, value and effect, else appends; False when
    an identical one is already there."""
    for i, t in enumerate(tolerations):
        if all((t.get(k) or "") == (toleration.get(k) or "") for k in ("key", "operator", "value", "effect")):
            if t == toleration:
                return False
            tolerations[i] = toleration
            return True
    tolerations.append(toleration)
    return True
