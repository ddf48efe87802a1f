"""Pod garbage collection against an in-memory API, with a test clock."""

from __future__ import annotations

import asyncio

from k8py.controllers.podgc import PodGCController
from tests.controllers.memapi import FakeAPI, make_context


def run(coro):
    return asyncio.run(coro)


def pod(name: str, node: str = "n1", phase: str = "Running", created: str = "2024-01-01T00:00:00Z",
        deleting: bool = False, reason: str = "") -> dict:
    md = {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": created}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T01:00:00Z"
    st = {"phase": phase}
    if reason:
        st["reason"] = reason
    return {"metadata": md, "spec": {"nodeName": node}, "status": st}


def node(name: str, ready: bool = True, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def setup(**opts) -> tuple[FakeAPI, PodGCController, Clock]:
    api, clock = FakeAPI(), Clock()
    return api, PodGCController(make_context(api, **opts), clock=clock), clock


def deleted(api: FakeAPI) -> list[str]:
    return [c[3] for c in api.calls if c[0] == "delete"]


def test_terminated_over_threshold_evicted_then_oldest_first():
    api, c, _ = setup(terminated_pod_gc_threshold=2)
    api.add("nodes", node("n1"))
    api.add("pods", pod("new", phase="Succeeded", created="2024-01-03T00:00:00Z"))
    api.add("pods", pod("old", phase="Failed", created="2024-01-01T00:00:00Z"))
    api.add("pods", pod("evicted", phase="Failed", created="2024-01-05T00:00:00Z", reason="Evicted"))
    api.add("pods", pod("mid", phase="Succeeded", created="2024-01-02T00:00:00Z"))
    api.add("pods", pod("running", created="2023-01-01T00:00:00Z"))
    run(c.gc())
    assert sorted(deleted(api)) == ["evicted", "old"]
    assert not [x for x in api.calls if x[0] == "patch"]  # already terminal: no status write


def test_orphans_wait_for_the_quarantine_and_a_live_check():
    api, c, clock = setup()
    api.add("pods", pod("orphan", node="ghost"))
    api.add("pods", pod("unbound", node=""))
    run(c.gc())
    assert deleted(api) == [] and "ghost" in c.missing_since
    clock.t += 39
    run(c.gc())
    assert deleted(api) == []
    clock.t += 2
    run(c.gc())
    assert deleted(api) == ["orphan"]
    [(_, plural, _, name, patch)] = [x for x in api.calls if x[0] == "patch"]
    assert patch["status"]["phase"] == "Failed"
    cond = patch["status"]["conditions"][0]
    assert (cond["type"], cond["reason"], cond["message"]) == (
        "DisruptionTarget", "DeletionByPodGC", "PodGC: node no longer exists")
    assert ("get", "nodes", "", "ghost") in api.calls


def test_node_that_shows_up_is_not_an_orphan_maker():
    api, c, clock = setup()
    api.add("pods", pod("p", node="late"))
    run(c.gc())
    api.objects[("nodes", "", "late")] = node("late")  # exists, but not yet in the cache
    clock.t += 41
    run(c.gc())
    assert deleted(api) == [] and not c.missing_since


def test_unscheduled_terminating_and_out_of_service():
    api, c, _ = setup()
    api.add("nodes", node("down", ready=False, taints=[{"key": "node.kubernetes.io/out-of-service",
                                                        "effect": "NoExecute"}]))
    api.add("nodes", node("up"))
    api.add("pods", pod("unscheduled", node="", phase="Pending", deleting=True))
    api.add("pods", pod("stuck", node="down", deleting=True))
    api.add("pods", pod("fine", node="up", deleting=True))
    run(c.gc())
    assert sorted(deleted(api)) == ["stuck", "unscheduled"]
    assert api.grace == {"stuck": 0, "unscheduled": 0}  # forced: no grace period
