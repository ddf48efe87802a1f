"""Node selector terms, required affinity and taints vs tolerations."""

from __future__ import annotations

from k8py.api import nodeaffinity as na


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}}


def pod(node_selector=None, required=None) -> dict:
    spec: dict = {}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if required is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    return {"spec": spec}


def test_terms_are_ored_and_requirements_anded():
    sel = {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                              {"key": "gpu", "operator": "Exists"}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]}]}
    assert na.selector_matches(sel, node("n1", zone="a", gpu="1"))
    assert not na.selector_matches(sel, node("n1", zone="a"))
    assert na.selector_matches(sel, node("n9"))
    assert not na.selector_matches({"nodeSelectorTerms": [{}]}, node("n1"))
    assert not na.selector_matches({"nodeSelectorTerms": []}, node("n1"))
    assert na.selector_matches(None, node("n1"))


def test_gt_lt_and_not_in():
    term = {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]},
                                 {"key": "zone", "operator": "NotIn", "values": ["b"]}]}
    assert na.term_matches(term, node("n", cores="8"))
    assert not na.term_matches(term, node("n", cores="2"))
    assert not na.term_matches(term, node("n", cores="8", zone="b"))
    assert not na.term_matches({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}, node("n", x="1"))


def test_required_affinity_combines_node_selector():
    m = na.required_affinity(pod({"disk": "ssd"}, {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}))
    assert m(node("n1", disk="ssd"))
    assert not m(node("n1"))
    assert not m(node("n2", disk="ssd"))
    assert na.required_affinity(pod())(node("any"))


def test_tolerations():
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert na.tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert na.tolerates({"key": "k", "value": "v", "effect": "NoSchedule"}, taint)
    assert not na.tolerates({"key": "k", "value": "w"}, taint)
    assert not na.tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert na.tolerates({"operator": "Exists"}, taint)
    pref = {"key": "p", "effect": "PreferNoSchedule"}
    assert na.untolerated_taint([pref, taint], []) is taint
    assert na.untolerated_taint([pref, taint], [{"key": "k", "operator": "Exists"}]) is None


def test_add_toleration_is_idempotent():
    tols: list = []
    t = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert na.add_toleration(tols, dict(t))
    assert not na.add_toleration(tols, dict(t))
    assert tols == [t]
