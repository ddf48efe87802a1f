"""DefaultPreemption: victims, PDBs and the node choice."""

from __future__ import annotations

import asyncio

from k8py.scheduler.framework import CycleState
from k8py.scheduler.nodeinfo import PodInfo
from tests.scheduler.builders import make_node, make_pod, offline_scheduler
from tests.scheduler.test_basic import schedule


def run_preemption(s, pod):
    p = PodInfo(pod)
    state = CycleState()
    statuses: dict = {}
    s.profile.run_pre_filter(state, p)
    s.profile.find_feasible(state, p, s.cache.node_list(), statuses)
    pl = s.profile.by_name["DefaultPreemption"]
    return asyncio.run(pl.post_filter(state, p, statuses))


def test_preempts_lowest_priority_on_best_node():
    s = offline_scheduler([make_node("n0", cpu="2"), make_node("n1", cpu="2")],
                          [make_pod("low0", cpu="1", priority=10, node="n0"),
                           make_pod("mid0", cpu="1", priority=100, node="n0"),
                           make_pod("low1", cpu="1", priority=50, node="n1"),
                           make_pod("low1b", cpu="1", priority=50, node="n1")])
    node, st = run_preemption(s, make_pod(cpu="1", priority=1000))
    assert node == "n0" and st is None  # one victim of priority 10 beats one of priority 50


def test_no_victims_message():
    s = offline_scheduler([make_node("n0", cpu="1")], [make_pod(cpu="1", priority=100, node="n0")])
    node, msg = schedule(s, make_pod(cpu="1", priority=100))
    assert node is None
    assert msg.endswith("preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")


def test_victims_not_enough_gives_filter_reason():
    s = offline_scheduler([make_node("n0", cpu="1")], [make_pod(cpu="500m", priority=0, node="n0")])
    _, msg = schedule(s, make_pod(cpu="2", priority=100))
    assert msg.endswith("preemption: 0/1 nodes are available: 1 Insufficient cpu.")


def test_preemption_policy_never():
    s = offline_scheduler([make_node("n0", cpu="1")], [make_pod(cpu="1", node="n0")])
    _, msg = schedule(s, make_pod(cpu="1", priority=100, preemptionPolicy="Never"))
    assert msg == ("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
                   "preemptionPolicy=Never.")


def test_pdb_protected_pods_spared_when_possible():
    s = offline_scheduler([make_node("n0", cpu="2"), make_node("n1", cpu="2")],
                          [make_pod("a", cpu="2", labels={"app": "guarded"}, node="n0"),
                           make_pod("b", cpu="2", labels={"app": "free"}, node="n1")])
    s.handle.extra["pdbs"] = [{"metadata": {"name": "g", "namespace": "default"},
                               "spec": {"selector": {"matchLabels": {"app": "guarded"}}},
                               "status": {"disruptionsAllowed": 0}}]
    node, st = run_preemption(s, make_pod(cpu="2", priority=10))
    assert node == "n1"


def test_nominated_pod_holds_its_space():
    s = offline_scheduler([make_node("n0", cpu="1")])
    high = make_pod("high", cpu="1", priority=100)
    high["status"]["nominatedNodeName"] = "n0"
    s.on_pod_add(high)
    _, msg = schedule(s, make_pod(cpu="1", priority=1))
    assert msg.startswith("0/1 nodes are available: 1 Insufficient cpu.")
