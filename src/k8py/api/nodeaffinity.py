"""What a pod asks of a node, as kube's component-helpers
(``scheduling/corev1`` and ``.../nodeaffinity``): node selector terms,
the pod's required node affinity (``nodeSelector`` AND required
``nodeAffinity``), preferred terms' weights, and taints against
tolerations.  Shared by the scheduler's plugins and the DaemonSet
controller, which must agree on which nodes a pod may run on.

Objects are plain dicts; nothing here does I/O."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

Obj = dict[str, Any]

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"


def _int(s: str) -> int | None:
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def requirement_matches(req: Mapping[str, Any], values_of: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against a node's labels (or fields); an
    unknown operator or a non-integer Gt/Lt matches nothing."""
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


def term_matches_labels(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """One NodeSelectorTerm against a node's labels and name: its
    expressions and fields all hold; an empty term matches nothing.  (No
    selector objects are built: this is the scheduler's hot path.)"""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    for r in exprs:
        if not requirement_matches(r, labels):
            return False
    for r in fields:
        if r.get("key") != "metadata.name" or not requirement_matches(r, {"metadata.name": name}):
            return False
    return True


def selector_matches_labels(node_selector: Mapping[str, Any] | None, labels: Mapping[str, str], name: str) -> bool:
    """A NodeSelector: its terms are ORed; ``None`` matches every node."""
    if node_selector is None:
        return True
    return any(term_matches_labels(t, labels, name) for t in node_selector.get("nodeSelectorTerms") or ())


def _labels(node: Obj) -> Mapping[str, str]:
    return node["metadata"].get("labels") or {}


def term_matches(term: Mapping[str, Any], node: Obj) -> bool:
    return term_matches_labels(term, _labels(node), node["metadata"]["name"])


def selector_matches(node_selector: Mapping[str, Any] | None, node: Obj) -> bool:
    return selector_matches_labels(node_selector, _labels(node), node["metadata"]["name"])


def required_node_affinity(pod: Obj) -> tuple[Mapping[str, str], Mapping[str, Any] | None]:
    """The pod's nodeSelector and its required node affinity."""
    spec = pod.get("spec") or {}
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return spec.get("nodeSelector") or {}, na.get("requiredDuringSchedulingIgnoredDuringExecution")


def pod_matches_node_affinity(pod: Obj, labels: Mapping[str, str], name: str) -> bool:
    """``GetRequiredNodeAffinity(pod).Match`` over a node's labels and name."""
    sel, required = required_node_affinity(pod)
    if any(labels.get(k) != v for k, v in sel.items()):
        return False
    return selector_matches_labels(required, labels, name)


def required_affinity(pod: Obj) -> Callable[[Obj], bool]:
    """The same as one predicate over node objects."""
    return lambda node: pod_matches_node_affinity(pod, _labels(node), node["metadata"]["name"])


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
