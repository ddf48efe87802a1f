"""The scheduling cycle without an API server: filters, messages, assume."""

from __future__ import annotations

import asyncio

from k8py.scheduler.nodeinfo import PodInfo
from k8py.scheduler.scheduler import fit_error_message
from tests.scheduler.builders import make_node, make_pod, offline_scheduler


def schedule(s, pod) -> tuple[str | None, str]:
    """Runs one cycle; returns (node, failure message)."""
    p = PodInfo(pod)
    msgs = []
    s._fail = lambda p, st, message, reason, nominated=None: msgs.append(message)  # type: ignore[method-assign]
    s._spawn = lambda coro: coro.close()  # type: ignore[method-assign]

    async def go():
        return await s.schedule_one(p)
    node = asyncio.run(go())
    return node, (msgs[0] if msgs else "")


def schedule_msg(s, pod) -> str:
    """The failure message without its preemption part."""
    return schedule(s, pod)[1].split(" preemption: ")[0]


def test_insufficient_cpu_message():
    s = offline_scheduler([make_node(f"n{i}", cpu="1") for i in range(3)])
    node, msg = schedule(s, make_pod(cpu="2"))
    assert node is None
    assert msg == ("0/3 nodes are available: 3 Insufficient cpu. "
                   "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")


def test_assumed_pod_counts_at_once():
    s = offline_scheduler([make_node("n1", cpu="1")])
    assert schedule(s, make_pod(cpu="600m"))[0] == "n1"
    assert schedule_msg(s, make_pod(cpu="600m")) == "0/1 nodes are available: 1 Insufficient cpu."


def test_combined_reasons_sorted():
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    s = offline_scheduler([make_node("cp", taints=[taint]), make_node("a", memory="1Gi"),
                           make_node("b", memory="1Gi")])
    node, msg = schedule(s, make_pod(memory="2Gi"))
    assert msg == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                   "{node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes are "
                   "available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for "
                   "incoming pod.")


def test_multiple_resources_and_pod_count():
    s = offline_scheduler([make_node("n1", cpu="1", memory="1Gi", pods="1")],
                          [make_pod(node="n1")])
    msg = schedule_msg(s, make_pod(cpu="2", memory="2Gi", requests={"nvidia.com/gpu": "1"}))
    assert msg == ("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
                   "1 Insufficient nvidia.com/gpu, 1 Too many pods.")


def test_extended_resource_fits():
    s = offline_scheduler([make_node("plain"), make_node("gpu", extra={"nvidia.com/gpu": "2"})])
    assert schedule(s, make_pod(requests={"nvidia.com/gpu": "2"}))[0] == "gpu"


def test_init_containers_max_and_overhead():
    s = offline_scheduler([make_node("n1", cpu="2")])
    pod = make_pod(cpu="500m", initContainers=[{"name": "i", "image": "x",
                                                "resources": {"requests": {"cpu": "1500m"}}}],
                   overhead={"cpu": "600m"})
    msg = schedule_msg(s, pod)
    assert msg == "0/1 nodes are available: 1 Insufficient cpu."  # max(0.5, 1.5) + 0.6 > 2


def test_node_selector_and_unschedulable_and_name():
    s = offline_scheduler([make_node("a", labels={"disk": "ssd"}, unschedulable=True),
                           make_node("b", labels={"disk": "ssd"}), make_node("c")])
    assert schedule(s, make_pod(nodeSelector={"disk": "ssd"}))[0] == "b"
    msg = schedule_msg(s, make_pod(nodeSelector={"disk": "nvme"}))
    assert msg == ("0/3 nodes are available: 1 node(s) were unschedulable, "
                   "2 node(s) didn't match Pod's node affinity/selector.")


def test_required_and_preferred_node_affinity():
    s = offline_scheduler([make_node("a", labels={"zone": "z1"}), make_node("b", labels={"zone": "z2"}),
                           make_node("c", labels={"zone": "z3"})])
    aff = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In",
                                                                "values": ["z2"]}]}}]}}
    for _ in range(5):
        assert schedule(s, make_pod(affinity=aff))[0] == "b"


def test_tolerations_and_prefer_no_schedule():
    s = offline_scheduler([make_node("t", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                           make_node("p", taints=[{"key": "soft", "effect": "PreferNoSchedule"}])])
    for _ in range(3):
        assert schedule(s, make_pod())[0] == "p"
    tol = [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]
    assert schedule(s, make_pod(tolerations=tol))[0] == "t"


def test_host_port_conflict():
    s = offline_scheduler([make_node("n1")])
    ports = [{"containerPort": 80, "hostPort": 8080}]
    assert schedule(s, make_pod(ports=ports))[0] == "n1"
    msg = schedule_msg(s, make_pod(ports=ports))
    assert msg == "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."


def test_least_allocated_spreads():
    s = offline_scheduler([make_node("a"), make_node("b")])
    placed = [schedule(s, make_pod(cpu="1", memory="1Gi"))[0] for _ in range(4)]
    assert sorted(placed) == ["a", "a", "b", "b"]


def test_fit_error_message_prefilter_and_postfilter():
    assert (fit_error_message(2, {}, "x failed", "preemption: y.")
            == "0/2 nodes are available: x failed. preemption: y.")
