"""The scheduler end to end: real kubectl 1.32 against ``k8py server``
with hollow nodes: placement, kube's unschedulable message and events,
event-driven retry, preemption, and leader election."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.conftest import K8PY
from tests.support.cluster import Cluster, wait_for


@pytest.fixture(scope="module")
def cluster():
    c = Cluster().start()
    try:
        c.add_nodes(3, "sched-", "--cpu", "2", "--memory", "4Gi")
        yield c
    finally:
        c.close()


def pod_yaml(name: str, ns: str = "default", cpu: str = "100m", extra_spec: str = "",
             labels: str = "") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: busybox
    resources:
      requests:
        cpu: {cpu}
{extra_spec}"""


def node_of(c: Cluster, name: str, ns: str = "default") -> str:
    return c.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.spec.nodeName}").stdout


def test_pod_is_scheduled_with_event(cluster):
    cluster.kubectl("apply", "-f", "-", input=pod_yaml("simple"))
    node = wait_for(lambda: node_of(cluster, "simple"), 30, what="simple scheduled")
    assert node.startswith("sched-")
    def described():
        out = cluster.kubectl("describe", "pod", "simple").stdout
        return out if "Scheduled" in out else ""
    out = wait_for(described, 20, what="Scheduled event")
    assert f"Successfully assigned default/simple to {node}" in out
    assert "default-scheduler" in out
    cond = json.loads(cluster.kubectl("get", "pod", "simple", "-o", "json").stdout)["status"]["conditions"]
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in cond)
    cluster.kubectl("delete", "pod", "simple", "--wait=false")


def test_insufficient_cpu_message_and_event(cluster):
    cluster.kubectl("apply", "-f", "-", input=pod_yaml("huge", cpu="64"))

    def cond():
        pod = json.loads(cluster.kubectl("get", "pod", "huge", "-o", "json").stdout)
        return next((c for c in pod["status"].get("conditions") or () if c["type"] == "PodScheduled"), None)
    c = wait_for(cond, 30, what="PodScheduled condition")
    assert c["status"] == "False" and c["reason"] == "Unschedulable"
    assert c["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")
    out = wait_for(lambda: (o := cluster.kubectl("describe", "pod", "huge").stdout) and
                   "FailedScheduling" in o and o, 20, what="FailedScheduling event")
    assert "Warning  FailedScheduling" in out
    assert "0/3 nodes are available: 3 Insufficient cpu." in out
    assert "default-scheduler" in out
    cluster.kubectl("delete", "pod", "huge", "--wait=false")


def test_pending_pod_scheduled_when_node_added(cluster):
    cluster.kubectl("apply", "-f", "-", input=pod_yaml("waiter", extra_spec="  nodeSelector:\n    pool: late\n"))
    wait_for(lambda: "node affinity/selector" in cluster.kubectl(
        "get", "pod", "waiter", "-o", "jsonpath={.status.conditions[0].message}").stdout, 30,
        what="waiter unschedulable")
    start = time.monotonic()
    cluster.add_nodes(1, "late-", "--node-labels", "pool=late")
    wait_for(lambda: node_of(cluster, "waiter") == "late-0", 30, what="waiter on the new node")
    # moved by the NodeAdd event, not by the 5-minute flush
    assert time.monotonic() - start < 60
    cluster.kubectl("delete", "pod", "waiter", "--wait=false")


def test_two_schedulers_one_leader(cluster):
    """A second scheduler stands by while the first holds the Lease."""
    log = open(f"{cluster.data_dir}/sched2.log", "ab")
    p = subprocess.Popen([K8PY, "scheduler", "--kubeconfig", cluster.kubeconfig,
                          "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                          "--leader-elect-retry-period", "1"],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        holder = wait_for(lambda: cluster.kubectl("get", "lease", "-n", "kube-system", "kube-scheduler", "-o",
                                                  "jsonpath={.spec.holderIdentity}").stdout, 30,
                          what="lease holder")
        time.sleep(3)
        assert cluster.kubectl("get", "lease", "-n", "kube-system", "kube-scheduler", "-o",
                               "jsonpath={.spec.holderIdentity}").stdout == holder
        cluster.kubectl("apply", "-f", "-", input=pod_yaml("while-two"))
        wait_for(lambda: node_of(cluster, "while-two"), 30, what="scheduled with two schedulers")
        events = cluster.kubectl("get", "events", "--field-selector",
                                 "involvedObject.name=while-two,reason=Scheduled", "-o",
                                 "jsonpath={.items[*].count}").stdout.split()
        assert events in (["1"], [])  # bound once, by one scheduler
    finally:
        p.terminate()
        p.wait(timeout=15)
        log.close()
        cluster.kubectl("delete", "pod", "while-two", "--wait=false", check=False)
