"""Self-healing across nodes, with the real kubectl against ``k8py server``
and three hollow nodes: a Deployment's pods on a node that stops
heartbeating come back on the other nodes while the node is lost; a
cordoned node gets no new pods until it is uncordoned."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

PREFIX = "nf-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster("--default-unreachable-toleration-seconds=3", "--default-not-ready-toleration-seconds=3",
                "--kube-controller-manager-arg=--node-monitor-grace-period=4",
                "--kube-controller-manager-arg=--node-monitor-period=1").start()
    try:
        c.add_nodes(3, PREFIX, "--lease-period", "1")
        yield c
    finally:
        c.close()


def pods_by_node(cluster: Cluster, selector: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    items = json.loads(cluster.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    for p in items:
        if p["metadata"].get("deletionTimestamp") or p["status"].get("phase") != "Running":
            continue
        out.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    return out


def test_pods_of_a_lost_node_come_back_on_the_others(cluster: Cluster) -> None:
    cluster.kubectl("create", "deployment", "heal", "--image=httpd", "--replicas=6")
    cluster.kubectl("rollout", "status", "deployment/heal", "--timeout=60s")
    placed = pods_by_node(cluster, "app=heal")
    lost = max(placed, key=lambda n: len(placed[n]))
    victims = set(placed[lost])
    assert victims
    cluster.kubectl("annotate", "node", lost, "hollow.k8py.io/heartbeat=stopped")
    try:
        wait_for(lambda: "NotReady" in cluster.kubectl("get", "node", lost).stdout, 30, what="node NotReady")

        def healed() -> dict[str, list[str]] | None:
            now = pods_by_node(cluster, "app=heal")
            running = [p for node, ps in now.items() if node != lost for p in ps]
            return now if len(running) == 6 else None
        now = wait_for(healed, 60, what="6 pods Running on the remaining nodes")
        assert lost not in now and not victims & {p for ps in now.values() for p in ps}
        out = cluster.kubectl("get", "deployment", "heal").stdout
        assert "6/6" in out
        # the lost node's pods were evicted: Terminating until their kubelet answers
        gone = json.loads(cluster.kubectl("get", "pods", "-l", "app=heal", "-o", "json").stdout)["items"]
        assert {p["metadata"]["name"] for p in gone if p["metadata"].get("deletionTimestamp")} == victims
    finally:
        cluster.kubectl("annotate", "node", lost, "hollow.k8py.io/heartbeat-")
    wait_for(lambda: not json.loads(cluster.kubectl("get", "node", lost, "-o", "json").stdout)["spec"].get("taints"),
             30, what="node back without taints")
    wait_for(lambda: len(json.loads(cluster.kubectl("get", "pods", "-l", "app=heal", "-o", "json").stdout)["items"])
             == 6, 30, what="evicted pods finished terminating once their node answered")
    cluster.kubectl("delete", "deployment", "heal")


def test_cordon_keeps_new_pods_away(cluster: Cluster) -> None:
    node = f"{PREFIX}0"
    cluster.kubectl("cordon", node)
    try:
        assert "Ready,SchedulingDisabled" in cluster.kubectl("get", "node", node).stdout
        cluster.kubectl("create", "deployment", "corded", "--image=httpd", "--replicas=4")
        cluster.kubectl("rollout", "status", "deployment/corded", "--timeout=60s")
        assert node not in pods_by_node(cluster, "app=corded")
    finally:
        cluster.kubectl("uncordon", node)
    assert "SchedulingDisabled" not in cluster.kubectl("get", "node", node).stdout
    cluster.kubectl("scale", "deployment", "corded", "--replicas=9")
    cluster.kubectl("rollout", "status", "deployment/corded", "--timeout=60s")
    # least-allocated scoring now prefers the emptied node
    assert node in wait_for(lambda: pods_by_node(cluster, "app=corded"), 10)
    cluster.kubectl("delete", "deployment", "corded")
