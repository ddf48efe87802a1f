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
        c.add_nodes(3, "sched-", "--cpu", "2", "--memory", "4Gi", "--node-labels", "pool=main")
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


def apply_pods(c: Cluster, n: int, prefix: str, **kw) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(n)]
    c.kubectl("apply", "-f", "-", input="\n---\n".join(pod_yaml(x, **kw) for x in names))
    return names


def cleanup(c: Cluster, label: str) -> None:
    c.kubectl("delete", "pods", "-l", label, "--wait=false", check=False)


def scheduled(c: Cluster, label: str) -> dict[str, str]:
    out = c.kubectl("get", "pods", "-l", label, "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{\"\\n\"}{end}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


MAIN = "  nodeSelector:\n    pool: main\n"


def test_required_anti_affinity_one_per_node(cluster):
    spec = MAIN + """  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels: {app: anti}
        topologyKey: kubernetes.io/hostname
"""
    names = apply_pods(cluster, 4, "anti", extra_spec=spec, labels="app: anti")
    try:
        placed = wait_for(lambda: (m := scheduled(cluster, "app=anti")) and
                          sum(1 for v in m.values() if v) == 3 and m, 30, what="3 anti pods placed")
        nodes = [v for v in placed.values() if v]
        assert sorted(nodes) == ["sched-0", "sched-1", "sched-2"]
        pending = next(n for n in names if not placed.get(n))
        msg = wait_for(lambda: cluster.kubectl("get", "pod", pending, "-o",
                                               "jsonpath={.status.conditions[0].message}").stdout, 30)
        assert "3 node(s) didn't match pod anti-affinity rules" in msg
        assert " preemption: " in msg
    finally:
        cleanup(cluster, "app=anti")


def test_taints_and_tolerations(cluster):
    cluster.kubectl("taint", "node", "sched-0", "dedicated=gpu:NoSchedule")
    try:
        pin = "  nodeSelector:\n    kubernetes.io/hostname: sched-0\n"
        apply_pods(cluster, 1, "untol", extra_spec=pin, labels="app: taint")
        msg = wait_for(lambda: cluster.kubectl("get", "pod", "untol-0", "-o",
                                               "jsonpath={.status.conditions[0].message}").stdout, 30)
        assert "1 node(s) had untolerated taint {dedicated: gpu}" in msg
        tol = pin + """  tolerations:
  - key: dedicated
    operator: Equal
    value: gpu
    effect: NoSchedule
"""
        apply_pods(cluster, 1, "tol", extra_spec=tol, labels="app: taint")
        wait_for(lambda: node_of(cluster, "tol-0") == "sched-0", 30, what="tolerating pod placed")
        # removing the taint is a node update that retries the waiting pod at once
        cluster.kubectl("taint", "node", "sched-0", "dedicated=gpu:NoSchedule-")
        wait_for(lambda: node_of(cluster, "untol-0") == "sched-0", 20, what="untol placed after untaint")
    finally:
        cluster.kubectl("taint", "node", "sched-0", "dedicated=gpu:NoSchedule-", check=False)
        cleanup(cluster, "app=taint")


def test_topology_spread_even_over_nodes(cluster):
    spec = MAIN + """  topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels: {app: spread}
"""
    apply_pods(cluster, 6, "spread", extra_spec=spec, labels="app: spread")
    try:
        placed = wait_for(lambda: (m := scheduled(cluster, "app=spread")) and all(m.values()) and len(m) == 6
                          and m, 30, what="spread pods placed")
        counts = {n: list(placed.values()).count(n) for n in ("sched-0", "sched-1", "sched-2")}
        assert counts == {"sched-0": 2, "sched-1": 2, "sched-2": 2}
    finally:
        cleanup(cluster, "app=spread")


def test_preemption_with_priority_class(cluster):
    cluster.kubectl("apply", "-f", "-", input="""apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: e2e-high}
value: 1000000
""")
    apply_pods(cluster, 3, "victim", cpu="1500m", extra_spec=MAIN, labels="app: victim")
    try:
        wait_for(lambda: (m := scheduled(cluster, "app=victim")) and len(m) == 3 and all(m.values()), 30,
                 what="victims placed")
        high = MAIN + "  priorityClassName: e2e-high\n"
        apply_pods(cluster, 1, "preemptor", cpu="1500m", extra_spec=high, labels="app: preemptor")
        pod = json.loads(cluster.kubectl("get", "pod", "preemptor-0", "-o", "json").stdout)
        assert pod["spec"]["priority"] == 1000000
        node = wait_for(lambda: node_of(cluster, "preemptor-0"), 60, what="preemptor scheduled")
        left = scheduled(cluster, "app=victim")
        assert len(left) == 2 and node not in left.values()
        ev = cluster.kubectl("get", "events", "--field-selector", "reason=Preempted", "-o",
                             "jsonpath={.items[*].message}").stdout
        assert "Preempted by pod" in ev and f"on node {node}" in ev
        assert pod["status"].get("nominatedNodeName") in (None, node)
    finally:
        cleanup(cluster, "app in (victim, preemptor)")


def _leader_log(paths: list[str]) -> int | None:
    for i, path in enumerate(paths):
        with open(path, "rb") as f:
            if b"became leader" in f.read():
                return i
    return None


def test_two_schedulers_one_leader_and_failover(cluster):
    """Two more schedulers on their own Lease: one acts, the other takes
    over when the leader dies."""
    paths = [f"{cluster.data_dir}/sched-extra-{i}.log" for i in range(2)]
    procs = []
    for path in paths:
        log = open(path, "wb")
        procs.append(subprocess.Popen(
            [K8PY, "scheduler", "--kubeconfig", cluster.kubeconfig, "--scheduler-name", "second-scheduler",
             "--leader-elect-resource-name", "second-scheduler", "--leader-elect-lease-duration", "3",
             "--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "0.5"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()
    spec = "  schedulerName: second-scheduler\n"
    try:
        leader = wait_for(lambda: (i := _leader_log(paths)) is not None and (i,), 30, what="a leader")[0]
        time.sleep(2)
        assert _leader_log([paths[1 - leader]]) is None  # the other stands by
        holder = cluster.kubectl("get", "lease", "-n", "kube-system", "second-scheduler", "-o",
                                 "jsonpath={.spec.holderIdentity}").stdout
        assert holder
        apply_pods(cluster, 1, "second-a", extra_spec=spec, labels="app: second")
        wait_for(lambda: node_of(cluster, "second-a-0"), 30, what="scheduled by the leader")
        procs[leader].kill()  # no clean release: the standby waits out the lease
        procs[leader].wait()
        apply_pods(cluster, 1, "second-b", extra_spec=spec, labels="app: second")
        wait_for(lambda: node_of(cluster, "second-b-0"), 30, what="scheduled by the new leader")
        assert _leader_log([paths[1 - leader]]) == 0
        assert cluster.kubectl("get", "lease", "-n", "kube-system", "second-scheduler", "-o",
                               "jsonpath={.spec.holderIdentity}").stdout != holder
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
        cleanup(cluster, "app=second")
