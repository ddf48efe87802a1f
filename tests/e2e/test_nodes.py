"""Hollow nodes end to end (real kubectl against ``k8py server``): nodes
register Ready with Leases and podCIDRs, pods bound to them run, succeed,
crash and terminate as a kubelet reports it; node loss taints the node and
evicts its pods."""

from __future__ import annotations

import ipaddress
import json
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

PREFIX = "hn-"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster("--kube-controller-manager-arg=--node-monitor-grace-period=4",
                "--kube-controller-manager-arg=--node-monitor-period=1").start()
    try:
        c.add_nodes(3, PREFIX, "--pod-run-seconds", "2", "--restart-backoff", "1", "--lease-period", "2")
        yield c
    finally:
        c.close()


def get(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pod_manifest(name: str, node: str, **spec: object) -> str:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}], **spec}}
    return json.dumps(body)


def test_nodes_ready_with_leases(cluster: Cluster) -> None:
    nodes = get(cluster, "nodes")["items"]
    mine = [n for n in nodes if n["metadata"]["name"].startswith(PREFIX)]
    assert sorted(n["metadata"]["name"] for n in mine) == [f"{PREFIX}{i}" for i in range(3)]
    ips = set()
    for n in mine:
        conds = {c["type"]: c for c in n["status"]["conditions"]}
        assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
        assert conds["Ready"]["message"] == "kubelet is posting ready status"
        assert conds["MemoryPressure"]["status"] == "False"
        assert n["metadata"]["labels"]["kubernetes.io/hostname"] == n["metadata"]["name"]
        assert n["status"]["allocatable"]["pods"] == "110"
        ips.add(next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"))
    assert len(ips) == 3
    leases = get(cluster, "leases", "-n", "kube-node-lease")["items"]
    held = {lease["metadata"]["name"]: lease["spec"]["holderIdentity"] for lease in leases}
    for i in range(3):
        assert held[f"{PREFIX}{i}"] == f"{PREFIX}{i}"
    out = cluster.kubectl("get", "nodes").stdout
    assert f"{PREFIX}0   Ready" in out


def test_bound_pod_runs(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod_manifest("web", f"{PREFIX}1"))
    pod = wait_for(lambda: (p := get(cluster, "pod", "web"))["status"].get("phase") == "Running" and p,
                   30, what="pod web Running")
    st = pod["status"]
    assert ipaddress.ip_address(st["podIP"])
    node = get(cluster, "node", f"{PREFIX}1")
    if node["spec"].get("podCIDR"):
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert st["hostIP"] == next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and "running" in cs["state"]
    assert cs["containerID"].startswith("containerd://") and cs["image"] == "docker.io/library/nginx:latest"
    assert "1/1     Running" in cluster.kubectl("get", "pod", "web").stdout


def test_job_pod_succeeds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod_manifest("once", f"{PREFIX}2", restartPolicy="Never"))
    pod = wait_for(lambda: (p := get(cluster, "pod", "once"))["status"].get("phase") == "Succeeded" and p,
                   30, what="pod once Succeeded")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert "Completed" in cluster.kubectl("get", "pod", "once").stdout


def test_deletion_terminates_then_removes(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod_manifest("doomed", f"{PREFIX}0"))
    wait_for(lambda: get(cluster, "pod", "doomed")["status"].get("phase") == "Running", 30)
    cluster.kubectl("delete", "pod", "doomed", "--wait=false")
    assert "Terminating" in cluster.kubectl("get", "pod", "doomed").stdout
    wait_for(lambda: "NotFound" in cluster.kubectl("get", "pod", "doomed", check=False).stderr, 30,
             what="pod doomed gone")
