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


def test_nodes_get_pod_cidrs(cluster: Cluster) -> None:
    def cidrs() -> dict[str, str]:
        return {n["metadata"]["name"]: n["spec"].get("podCIDR", "") for n in get(cluster, "nodes")["items"]}
    got = wait_for(lambda: (c := cidrs()) and all(c.values()) and c, 30, what="podCIDRs")
    nets = [ipaddress.ip_network(c) for c in got.values()]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.ip_network("10.42.0.0/16")) for n in nets)
    assert len(set(nets)) == len(nets)
    node = get(cluster, "node", f"{PREFIX}0")
    assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]


def test_pod_failure_restarts(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=pod_manifest("crashy", f"{PREFIX}0"))
    wait_for(lambda: get(cluster, "pod", "crashy")["status"].get("phase") == "Running", 30)
    cluster.kubectl("annotate", "pod", "crashy", "hollow.k8py.io/fail=3")

    def crashed() -> dict | None:
        cs = get(cluster, "pod", "crashy")["status"]["containerStatuses"][0]
        return cs if cs["restartCount"] >= 1 and cs["lastState"].get("terminated") else None
    cs = wait_for(crashed, 30, what="a restart")
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    cluster.kubectl("annotate", "pod", "crashy", "hollow.k8py.io/fail-")

    def healthy() -> bool:
        st = get(cluster, "pod", "crashy")["status"]
        cs = st["containerStatuses"][0]
        return st["phase"] == "Running" and cs["ready"] and "running" in cs["state"]
    wait_for(healthy, 30, what="running again")
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=crashy").stdout
    assert "BackOff" in events


def test_pod_failure_never_restart_fails(cluster: Cluster) -> None:
    body = json.loads(pod_manifest("fails", f"{PREFIX}1", restartPolicy="Never"))
    body["metadata"]["annotations"] = {"hollow.k8py.io/fail": "2"}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    pod = wait_for(lambda: (p := get(cluster, "pod", "fails"))["status"].get("phase") == "Failed" and p, 30)
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 2 and term["reason"] == "Error"


def test_node_loss_taints_and_evicts(cluster: Cluster) -> None:
    node = f"{PREFIX}2"
    short = json.loads(pod_manifest("short", node, tolerations=[
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 2}]))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(short))
    cluster.kubectl("apply", "-f", "-", input=pod_manifest("long", node))
    for name in ("short", "long"):
        wait_for(lambda: get(cluster, "pod", name)["status"].get("phase") == "Running", 30)
    long_pod = get(cluster, "pod", "long")
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in long_pod["spec"]["tolerations"]
    cluster.kubectl("annotate", "node", node, "hollow.k8py.io/heartbeat=stopped")

    def unknown() -> dict | None:
        n = get(cluster, "node", node)
        ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
        return n if ready["status"] == "Unknown" else None
    n = wait_for(unknown, 30, what="Ready Unknown")
    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    taints = wait_for(lambda: len(t := get(cluster, "node", node)["spec"].get("taints") or []) >= 2 and t, 15)
    assert {(t["key"], t["effect"]) for t in taints} == {("node.kubernetes.io/unreachable", "NoExecute"),
                                                        ("node.kubernetes.io/unreachable", "NoSchedule")}
    assert "NotReady" in cluster.kubectl("get", "node", node).stdout
    # the short-tolerating pod is evicted (Terminating: its kubelet is gone), the other stays
    wait_for(lambda: get(cluster, "pod", "short")["metadata"].get("deletionTimestamp"), 20, what="eviction")
    long_pod = get(cluster, "pod", "long")
    assert "deletionTimestamp" not in long_pod["metadata"]
    assert {c["type"]: c["status"] for c in long_pod["status"]["conditions"]}["Ready"] == "False"
    events = cluster.kubectl("get", "events", "-o", "json")
    reasons = {(e["reason"], e["message"]) for e in json.loads(events.stdout)["items"]}
    assert ("TaintManagerEviction", "Marking for deletion Pod default/short") in reasons
    assert ("NodeNotReady", f"Node {node} status is now: NodeNotReady") in reasons
    # the node comes back: Ready, untainted; the evicted pod finishes terminating
    cluster.kubectl("annotate", "node", node, "hollow.k8py.io/heartbeat-")
    wait_for(lambda: not get(cluster, "node", node)["spec"].get("taints"), 30, what="taints removed")
    wait_for(lambda: "NotFound" in cluster.kubectl("get", "pod", "short", check=False).stderr, 30)
    wait_for(lambda: {c["type"]: c["status"] for c in
                      get(cluster, "pod", "long")["status"]["conditions"]}["Ready"] == "True", 30)


def test_default_toleration_seconds_flags() -> None:
    from tests.e2e.conftest import Server
    s = Server(extra_args=("--default-not-ready-toleration-seconds=7",
                           "--default-unreachable-toleration-seconds=9")).start()
    try:
        wait_for(lambda: s.kubectl("get", "ns", "default", check=False).returncode == 0, 20)
        s.kubectl("apply", "-f", "-", input=pod_manifest("tol", "nowhere"))
        tols = json.loads(s.kubectl("get", "pod", "tol", "-o", "json").stdout)["spec"]["tolerations"]
        assert {(t["key"], t["tolerationSeconds"]) for t in tols} == {
            ("node.kubernetes.io/not-ready", 7), ("node.kubernetes.io/unreachable", 9)}
    finally:
        s.close()
