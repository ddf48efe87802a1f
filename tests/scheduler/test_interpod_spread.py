"""InterPodAffinity and PodTopologySpread placing pods as kube would."""

from __future__ import annotations

from k8py.scheduler.nodeinfo import PodInfo
from tests.scheduler.builders import make_node, make_pod, offline_scheduler
from tests.scheduler.test_basic import schedule, schedule_msg


def zones(n_per_zone: int = 1, zs=("a", "b", "c")) -> list[dict]:
    return [make_node(f"{z}{i}", labels={"zone": z}) for z in zs for i in range(n_per_zone)]


def place(s, pod) -> str:
    if pod["spec"].get("nodeName"):  # already bound: as the informer delivers it
        s.on_pod_add(pod)
        return pod["spec"]["nodeName"]
    node = schedule(s, pod)[0]
    assert node, "pod not scheduled"
    bound = dict(pod, spec=dict(pod["spec"], nodeName=node))
    s.cache.add_pod(bound)  # as the informer would confirm the assumed pod
    return node


def anti(key: str, **sel) -> dict:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": sel}, "topologyKey": key}]}}


def aff(key: str, **sel) -> dict:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": sel}, "topologyKey": key}]}}


def test_required_anti_affinity_one_per_node():
    s = offline_scheduler([make_node(f"n{i}") for i in range(3)])
    nodes = {place(s, make_pod(labels={"app": "web"}, affinity=anti("kubernetes.io/hostname", app="web")))
             for _ in range(3)}
    assert nodes == {"n0", "n1", "n2"}
    msg = schedule_msg(s, make_pod(labels={"app": "web"}, affinity=anti("kubernetes.io/hostname", app="web")))
    assert msg == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."


def test_existing_pods_anti_affinity_symmetry():
    s = offline_scheduler([make_node("n0"), make_node("n1")])
    assert place(s, make_pod(node="", labels={"app": "db"}, affinity=anti("kubernetes.io/hostname", app="web"),
                             nodeName="n0")) == "n0"
    for _ in range(3):
        assert place(s, make_pod(labels={"app": "web"})) == "n1"
    s2 = offline_scheduler([make_node("n0")])
    place(s2, make_pod(labels={"app": "db"}, affinity=anti("kubernetes.io/hostname", app="web")))
    assert schedule_msg(s2, make_pod(labels={"app": "web"})) == (
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules.")


def test_required_affinity_follows_zone_and_first_pod_rule():
    s = offline_scheduler(zones(2))
    # no pod matches yet, and the pod does not match itself: unschedulable
    msg = schedule_msg(s, make_pod(labels={"app": "web"}, affinity=aff("zone", app="cache")))
    assert msg == "0/6 nodes are available: 6 node(s) didn't match pod affinity rules."
    # a pod matching its own term may go anywhere
    place(s, make_pod(labels={"app": "cache"}, affinity=aff("zone", app="cache")))
    cache_zone = next(iter(s.cache.nodes[n].labels["zone"] for n in s.cache.pod_node.values()))
    for _ in range(4):
        n = place(s, make_pod(labels={"app": "web"}, affinity=aff("zone", app="cache")))
        assert s.cache.nodes[n].labels["zone"] == cache_zone


def test_affinity_namespaces_and_selector():
    s = offline_scheduler([make_node("n0"), make_node("n1")])
    s.cache.namespace_labels.update({"other": {"team": "x"}, "default": {}})
    place(s, make_pod(ns="other", labels={"app": "db"}, nodeName="n1"))
    term = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname",
         "namespaceSelector": {"matchLabels": {"team": "x"}}}]}}
    assert place(s, make_pod(affinity=term)) == "n1"
    same_ns = aff("kubernetes.io/hostname", app="db")  # own namespace only: no match
    assert "didn't match pod affinity rules" in schedule_msg(s, make_pod(affinity=same_ns))


def test_preferred_anti_affinity_spreads():
    s = offline_scheduler([make_node(f"n{i}") for i in range(3)])
    pref = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "x"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}
    nodes = [place(s, make_pod(labels={"app": "x"}, affinity=pref)) for _ in range(3)]
    assert sorted(nodes) == ["n0", "n1", "n2"]


def spread(max_skew: int = 1, key: str = "zone", when: str = "DoNotSchedule", **extra) -> list[dict]:
    return [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "s"}}, **extra}]


def test_topology_spread_do_not_schedule():
    s = offline_scheduler(zones(2))
    placed = [s.cache.nodes[place(s, make_pod(labels={"app": "s"}, topologySpreadConstraints=spread()))]
              .labels["zone"] for _ in range(6)]
    assert sorted(placed) == ["a", "a", "b", "b", "c", "c"]


def test_topology_spread_skew_message_and_missing_label():
    s = offline_scheduler([make_node("a0", labels={"zone": "a"}, cpu="1"), make_node("b0", labels={"zone": "b"}),
                           make_node("x")])
    for _ in range(2):
        place(s, make_pod(labels={"app": "s"}, nodeName="b0"))
    msg = schedule_msg(s, make_pod(cpu="2", labels={"app": "s"}, topologySpreadConstraints=spread()))
    assert msg == ("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology spread "
                   "constraints, 1 node(s) didn't match pod topology spread constraints (missing required label).")


def test_topology_spread_min_domains():
    s = offline_scheduler(zones(1, ("a", "b")))
    c = spread(minDomains=3)
    place(s, make_pod(labels={"app": "s"}, topologySpreadConstraints=c))
    place(s, make_pod(labels={"app": "s"}, topologySpreadConstraints=c))
    # two domains < minDomains 3: the global minimum counts as 0, so a third pod exceeds maxSkew 1
    assert "topology spread" in schedule_msg(s, make_pod(labels={"app": "s"}, topologySpreadConstraints=c))


def test_topology_spread_schedule_anyway_scores():
    s = offline_scheduler(zones(1))
    place(s, make_pod(labels={"app": "s"}, nodeName="a0"))
    place(s, make_pod(labels={"app": "s"}, nodeName="b0"))
    assert schedule(s, make_pod(labels={"app": "s"},
                                topologySpreadConstraints=spread(when="ScheduleAnyway")))[0] == "c0"


def test_node_affinity_policy_honored():
    s = offline_scheduler([make_node("a0", labels={"zone": "a", "pool": "x"}),
                           make_node("b0", labels={"zone": "b", "pool": "x"}),
                           make_node("c0", labels={"zone": "c"})])
    for _ in range(2):
        n = place(s, make_pod(labels={"app": "s"}, nodeSelector={"pool": "x"}, topologySpreadConstraints=spread()))
        assert n in ("a0", "b0")
    # zone c does not count (the pod's nodeSelector excludes it): one per zone a/b, then a third fits
    assert place(s, make_pod(labels={"app": "s"}, nodeSelector={"pool": "x"},
                             topologySpreadConstraints=spread())) in ("a0", "b0")


def test_pod_info_terms_default_namespace():
    p = PodInfo(make_pod(ns="team", affinity=aff("zone", app="x")))
    assert p.affinity[0].namespaces == {"team"}
