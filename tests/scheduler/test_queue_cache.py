"""The scheduling queue (priority, backoff, event-driven moves, flush)
and the cache's assumed pods."""

from __future__ import annotations

import asyncio

from k8py.scheduler import framework as fw
from k8py.scheduler.cache import Cache
from k8py.scheduler.nodeinfo import PodInfo
from k8py.scheduler.queue import SchedulingQueue
from tests.scheduler.builders import make_node, make_pod


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


EVENTS = {"NodeResourcesFit": [fw.ClusterEvent(fw.POD, fw.DELETE), fw.ClusterEvent(fw.NODE, fw.ADD)],
          "NodeAffinity": [fw.ClusterEvent(fw.NODE, fw.ADD | fw.UPDATE_NODE_LABEL)]}


def pop(q: SchedulingQueue) -> PodInfo:
    return asyncio.run(asyncio.wait_for(q.pop(), 1))


def test_priority_then_fifo():
    clock = Clock()
    q = SchedulingQueue(EVENTS, clock=clock)
    for name, prio in (("a", 0), ("b", 10), ("c", 0), ("d", 10)):
        clock.t += 1
        q.add(PodInfo(make_pod(name, priority=prio)))
    assert [pop(q).name for _ in range(4)] == ["b", "d", "a", "c"]


def test_backoff_doubles_to_max():
    q = SchedulingQueue(EVENTS, clock=Clock())
    p = PodInfo(make_pod("a"))
    durations = []
    for attempts in range(1, 7):
        p.attempts = attempts
        durations.append(q.backoff_duration(p))
    assert durations == [1, 2, 4, 8, 10, 10]


def test_unschedulable_moved_only_by_relevant_event_then_backoff():
    clock = Clock()
    q = SchedulingQueue(EVENTS, clock=clock)
    q.add(PodInfo(make_pod("a")))
    p = pop(q)
    p.unschedulable_plugins = {"NodeAffinity"}
    q.add_unschedulable(p)
    assert q.pending() == {"active": 0, "backoff": 0, "unschedulable": 1}
    assert q.move_all(fw.ASSIGNED_POD_DELETE) == 0  # cannot help a node-affinity failure
    assert q.move_all(fw.NODE_ADD) == 1
    assert q.pending() == {"active": 0, "backoff": 1, "unschedulable": 0}  # still backing off (1 s)
    clock.t += 1.5
    q.flush_backoff()
    assert q.pending()["active"] == 1 and pop(q).name == "a"


def test_event_during_cycle_sends_to_backoff():
    clock = Clock()
    q = SchedulingQueue(EVENTS, clock=clock)
    q.add(PodInfo(make_pod("a")))
    p = pop(q)
    q.move_all(fw.NODE_ADD)  # arrives while "a" is being scheduled
    p.unschedulable_plugins = {"NodeAffinity"}
    q.add_unschedulable(p)
    assert q.pending() == {"active": 0, "backoff": 1, "unschedulable": 0}


def test_unschedulable_flushed_after_five_minutes():
    clock = Clock()
    q = SchedulingQueue(EVENTS, clock=clock)
    q.add(PodInfo(make_pod("a")))
    p = pop(q)
    p.unschedulable_plugins = {"NodeAffinity"}
    q.add_unschedulable(p)
    clock.t += 200
    q.flush_unschedulable()
    assert q.pending()["unschedulable"] == 1
    clock.t += 101
    q.flush_unschedulable()
    assert q.pending()["active"] == 1


def test_spec_update_of_unschedulable_pod_requeues():
    clock = Clock()
    q = SchedulingQueue(EVENTS, clock=clock)
    q.add(PodInfo(make_pod("a")))
    p = pop(q)
    p.unschedulable_plugins = {"NodeAffinity"}
    q.add_unschedulable(p)
    clock.t += 5
    q.update(p, changed_spec=True)
    assert q.pending()["active"] == 1


def test_assume_forget_confirm():
    c = Cache()
    c.add_node(make_node("n1", cpu="2"))
    pod = make_pod("a", cpu="1")
    p = PodInfo(pod)
    c.assume(p, "n1")
    assert c.nodes["n1"].requested.cpu == 1000 and c.is_assumed(p.uid)
    c.forget(p)
    assert c.nodes["n1"].requested.cpu == 0 and not c.is_assumed(p.uid)
    c.assume(p, "n1")
    bound = dict(pod, spec=dict(pod["spec"], nodeName="n1"))
    c.add_pod(bound)  # the informer confirms it
    assert not c.is_assumed(p.uid) and c.nodes["n1"].requested.cpu == 1000
    c.remove_pod(bound)
    assert c.nodes["n1"].requested.cpu == 0 and not c.nodes["n1"].pods


def test_pods_before_their_node_and_node_removal():
    c = Cache()
    c.add_pod(make_pod("a", cpu="1", node="late"))
    assert c.node_list() == []
    c.add_node(make_node("late"))
    assert [n.name for n in c.node_list()] == ["late"] and c.nodes["late"].requested.cpu == 1000
    c.remove_node(make_node("late"))
    assert c.node_list() == [] and "late" in c.nodes  # its pod still counted until deleted
