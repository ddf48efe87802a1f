"""The hollow kubelet's pod state machine: fill its (trimmed) cache, run
one sync, compare the writes; and the node objects it registers."""

from __future__ import annotations

import asyncio
from typing import Any

from k8py.hollow.node import NodeConfig, conditions_healthy, node_object, parse_taints, resources
from k8py.hollow.podips import PodIPs
from k8py.hollow.pods import PodRunner, trim
from k8py.hollow.status import image_ref
from tests.controllers.nodefakes import Clock, PatchingClient


class FakeNodes:
    def __init__(self) -> None:
        self.cidr: str | None = "10.42.3.0/24"
        self.stopped: set[str] = set()
        self.ips = PodIPs("10.42.3.0/24")

    def is_mine(self, name: str) -> bool:
        return name.startswith("n")

    def is_stopped(self, name: str) -> bool:
        return name in self.stopped

    def host_ip(self, name: str) -> str:
        return "10.200.0.1"

    def pod_cidr(self, name: str) -> str | None:
        return self.cidr

    def allocate_ip(self, name: str, cidr: str) -> str | None:
        return self.ips.allocate()

    def reserve_ip(self, name: str, ip: str) -> str:
        self.ips.reserve(ip)
        return "10.42.3.0/24"

    def release_ip(self, name: str, cidr: str, ip: str) -> None:
        self.ips.release(ip)


def make_pod(name: str = "p", node: str = "n1", **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "5",
                         "labels": {"big": "x" * 100}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "env": []}], **spec},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"}]}}


def setup(**kw: Any):
    client = PatchingClient()
    nodes = FakeNodes()
    clock = Clock(1_700_000_000.0)
    r = PodRunner(client, nodes, clock=clock, **kw)  # type: ignore[arg-type]
    return r, client, nodes, clock


def cache(r: PodRunner, pod: dict) -> None:
    t = trim(pod, r.nodes.is_mine)
    assert t is not None
    r.informer.store.put(t)


def test_trim_keeps_what_is_used_and_drops_other_nodes():
    t = trim(make_pod(), lambda n: n == "n1")
    assert t is not None and "labels" not in t["metadata"] and "env" not in t["spec"]["containers"][0]
    assert trim(make_pod(node="other"), lambda n: n == "n1") is None


def test_pending_to_running_in_one_write():
    r, client, nodes, clock = setup()
    cache(r, make_pod(initContainers=[{"name": "init", "image": "busybox"}]))
    asyncio.run(r.sync("default/p"))
    assert len(client.calls) == 1
    verb, plural, (key, body) = client.calls[0]
    assert (verb, plural, key) == ("patch/status", "pods", "default/p")
    st = body["status"]
    assert st["phase"] == "Running" and st["podIP"] == "10.42.3.2" and st["hostIP"] == "10.200.0.1"
    assert [c["type"] for c in st["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                     "ContainersReady", "PodScheduled"]
    assert st["conditions"][-1]["lastTransitionTime"] == "T0"
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["state"]["running"]["startedAt"] == st["startTime"]
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_waits_for_pod_cidr():
    r, client, nodes, clock = setup()
    nodes.cidr = None
    cache(r, make_pod())
    asyncio.run(r.sync("default/p"))
    assert client.calls == [] and r.waiting == {"n1": {"default/p"}}


def test_never_pod_succeeds_after_run_seconds():
    r, client, nodes, clock = setup(run_seconds=5)
    cache(r, make_pod(restartPolicy="Never"))

    async def scenario():
        await r.sync("default/p")
        clock.t += 5
        await r.sync("default/p")
    asyncio.run(scenario())
    st = client.calls[-1][2][1]["status"]
    assert st["phase"] == "Succeeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert {c["type"]: c.get("reason") for c in st["conditions"]}["Ready"] == "PodCompleted"
    assert len(nodes.ips) == 0  # address released


def test_fail_annotation_restarts_with_backoff():
    r, client, nodes, clock = setup(restart_backoff=10)
    pod = make_pod()
    cache(r, pod)

    async def scenario():
        await r.sync("default/p")
        pod["metadata"]["annotations"] = {"hollow.k8py.io/fail": "3"}
        cache(r, pod)
        clock.t += 2
        await r.sync("default/p")
        clock.t += 10
        await r.sync("default/p")
    asyncio.run(scenario())
    crash = client.calls[1][2][1]["status"]["containerStatuses"][0]
    assert crash["state"]["waiting"]["reason"] == "CrashLoopBackOff" and crash["restartCount"] == 0
    assert crash["lastState"]["terminated"]["exitCode"] == 3
    again = client.calls[2][2][1]["status"]["containerStatuses"][0]
    assert again["restartCount"] == 1 and "running" in again["state"]
    assert again["lastState"]["terminated"]["reason"] == "Error"


def test_deletion_marks_terminated_then_deletes_with_uid():
    r, client, nodes, clock = setup()
    pod = make_pod()
    cache(r, pod)

    async def scenario():
        await r.sync("default/p")
        pod["metadata"]["deletionTimestamp"] = "T"
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
        cache(r, pod)
        await r.sync("default/p")  # containers are being stopped
        clock.t += 1
        await r.sync("default/p")
    asyncio.run(scenario())
    assert [v for v, _, _ in client.calls] == ["patch/status", "patch/status", "delete"]
    assert client.calls[1][2][1]["status"]["phase"] == "Succeeded"
    assert client.calls[2][2] == "default/p"


def test_stopped_node_leaves_pods_alone():
    r, client, nodes, clock = setup()
    nodes.stopped.add("n1")
    cache(r, make_pod())
    asyncio.run(r.sync("default/p"))
    assert client.calls == []
    nodes.stopped.clear()
    r.node_changed("n1")
    assert "default/p" in r.queue._queue


def test_node_object_shapes():
    cfg = NodeConfig(extended={"nvidia.com/gpu": "2"}, taints=parse_taints("role=gpu:NoSchedule"))
    n = node_object("n1", "10.200.0.2", cfg, "boot", "NOW")
    assert n["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert n["spec"]["taints"] == [{"key": "role", "value": "gpu", "effect": "NoSchedule"}]
    assert conditions_healthy(n["status"])
    capacity, allocatable = resources(cfg)
    assert capacity["memory"] == "16777216Ki" and allocatable["memory"] == "16674816Ki"
    assert allocatable["nvidia.com/gpu"] == "2"
    assert image_ref("busybox:1.36") == ("docker.io/library/busybox:1.36",
                                         image_ref("busybox:1.36")[1])
    assert image_ref("busybox:1.36")[1].startswith("docker.io/library/busybox@sha256:")
