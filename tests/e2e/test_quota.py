"""ResourceQuota end to end (real kubectl against ``k8py server``): the
controller fills status.hard/used (``kubectl describe quota``), creates
over quota are refused with 403 and kube's message and store nothing,
pods without requests are refused where cpu/memory are quota'd, and
deleting objects gives quota back."""

from __future__ import annotations

import json
import re
from typing import Iterator

import pytest

from tests.support.cluster import Cluster, wait_for

NS = "quota-e2e"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    try:
        c.kubectl("create", "namespace", NS)
        yield c
    finally:
        c.close()


def create(cluster: Cluster, obj: dict, check: bool = True):
    return cluster.kubectl("create", "-n", NS, "-f", "-", input=json.dumps(obj), check=check)


def pod(name: str, cpu: str | None = "100m", mem: str | None = "64Mi") -> dict:
    res: dict = {}
    if cpu:
        res = {"requests": {"cpu": cpu, "memory": mem}, "limits": {"cpu": cpu, "memory": mem}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": res}]}}


def used(cluster: Cluster, name: str) -> dict[str, str]:
    """Resource -> "used/hard" as ``kubectl describe quota`` prints it."""
    out = cluster.kubectl("describe", "quota", name, "-n", NS).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+)\s+(\S+)\s+(\S+)$", line)
        if m and m.group(1) not in ("Resource", "--------"):
            rows[m.group(1)] = f"{m.group(2)}/{m.group(3)}"
    return rows


def test_describe_and_pods_over_quota(cluster: Cluster) -> None:
    create(cluster, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
                     "spec": {"hard": {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi",
                                       "limits.cpu": "2", "limits.memory": "2Gi"}}})
    rows = wait_for(lambda: (u := used(cluster, "compute")) and u.get("pods") == "0/2" and u, 30,
                    what="quota status computed")
    assert rows == {"limits.cpu": "0/2", "limits.memory": "0/2Gi", "pods": "0/2", "requests.cpu": "0/1",
                    "requests.memory": "0/1Gi"}

    r = create(cluster, pod("bare", cpu=None), check=False)
    assert r.returncode != 0
    assert ('pods "bare" is forbidden: failed quota: compute: must specify limits.cpu for: c; limits.memory for: c; '
            'requests.cpu for: c; requests.memory for: c') in r.stderr

    create(cluster, pod("p1"))
    create(cluster, pod("p2", cpu="200m", mem="128Mi"))
    assert used(cluster, "compute") == {"limits.cpu": "300m/2", "limits.memory": "192Mi/2Gi", "pods": "2/2",
                                        "requests.cpu": "300m/1", "requests.memory": "192Mi/1Gi"}
    r = create(cluster, pod("p3"), check=False)
    assert r.returncode != 0
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "p3" is forbidden: exceeded quota: '
            'compute, requested: pods=1, used: pods=2, limited: pods=2') in r.stderr
    assert cluster.kubectl("get", "pod", "p3", "-n", NS, check=False).returncode != 0

    r = cluster.kubectl("create", "-n", NS, "-f", "-", "-o", "json", check=False,
                        input=json.dumps(pod("big", cpu="2", mem="64Mi")))
    assert r.returncode != 0  # pods and cpu both over: kube names both
    assert "exceeded quota: compute, requested: limits.cpu=2,pods=1,requests.cpu=2, used: " \
           "limits.cpu=300m,pods=2,requests.cpu=300m, limited: limits.cpu=2,pods=2,requests.cpu=1" in r.stderr

    # deleting a pod gives its share back
    cluster.kubectl("delete", "pod", "p1", "-n", NS, "--grace-period=0", "--force")
    wait_for(lambda: used(cluster, "compute").get("pods") == "1/2", 30, what="quota replenished")
    create(cluster, pod("p3"))
    assert used(cluster, "compute")["pods"] == "2/2"


def test_object_counts(cluster: Cluster) -> None:
    # the namespace may hold kube-root-ca.crt already: room for exactly one more
    have = len(cluster.kubectl("get", "configmaps", "-n", NS, "-o", "name").stdout.split())
    n = str(have + 1)
    create(cluster, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "objects"},
                     "spec": {"hard": {"count/configmaps": n, "services": "1", "services.nodeports": "0",
                                       "count/deployments.apps": "1"}}})
    wait_for(lambda: used(cluster, "objects").get("services") == "0/1", 30, what="object quota computed")
    cluster.kubectl("create", "configmap", "one", "-n", NS)
    r = cluster.kubectl("create", "configmap", "two", "-n", NS, check=False)
    assert r.returncode != 0 and ('configmaps "two" is forbidden: exceeded quota: objects, requested: '
                                  f'count/configmaps=1, used: count/configmaps={n}, limited: count/configmaps={n}'
                                  ) in r.stderr
    r = cluster.kubectl("create", "service", "nodeport", "np", "--tcp=80:80", "-n", NS, check=False)
    assert r.returncode != 0 and "exceeded quota: objects, requested: services.nodeports=1" in r.stderr
    cluster.kubectl("create", "service", "clusterip", "web", "--tcp=80:80", "-n", NS)
    cluster.kubectl("create", "deployment", "d1", "--image=nginx", "-n", NS)
    r = cluster.kubectl("create", "deployment", "d2", "--image=nginx", "-n", NS, check=False)
    assert r.returncode != 0 and "count/deployments.apps=1" in r.stderr
    wait_for(lambda: used(cluster, "objects") == {"count/configmaps": f"{n}/{n}", "count/deployments.apps": "1/1",
                                                  "services": "1/1", "services.nodeports": "0/0"}, 30,
             what="object quota used")
    # a dry run is checked but not charged
    r = cluster.kubectl("create", "configmap", "three", "-n", NS, "--dry-run=server", check=False)
    assert r.returncode != 0 and "exceeded quota" in r.stderr
    cluster.kubectl("delete", "configmap", "one", "-n", NS)
    wait_for(lambda: used(cluster, "objects").get("count/configmaps") == f"{have}/{n}", 30,
             what="configmap given back")
    cluster.kubectl("create", "configmap", "two", "-n", NS)


def test_concurrent_creates_do_not_overshoot(cluster: Cluster) -> None:
    from concurrent.futures import ThreadPoolExecutor
    cluster.kubectl("create", "namespace", "quota-race")
    cluster.kubectl("create", "quota", "five", "--hard=count/secrets=5", "-n", "quota-race")
    wait_for(lambda: "count/secrets" in cluster.kubectl("describe", "quota", "five", "-n", "quota-race").stdout
             and json.loads(cluster.kubectl("get", "quota", "five", "-n", "quota-race", "-o", "json").stdout)
             .get("status", {}).get("used"), 30, what="quota computed")
    base = json.loads(cluster.kubectl("get", "quota", "five", "-n", "quota-race", "-o", "json").stdout
                      )["status"]["used"]["count/secrets"]

    def make(i: int) -> int:
        return cluster.kubectl("create", "secret", "generic", f"s{i}", "-n", "quota-race", check=False).returncode
    with ThreadPoolExecutor(12) as ex:
        codes = list(ex.map(make, range(12)))
    assert codes.count(0) == 5 - int(base)
    names = cluster.kubectl("get", "secrets", "-n", "quota-race", "-o", "name").stdout.split()
    assert len([n for n in names if re.match(r"secret/s\d+$", n)]) == 5 - int(base)


def test_updates_that_grow_usage_are_checked(cluster: Cluster) -> None:
    ns = "quota-update"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("create", "quota", "np", "--hard=services.nodeports=1", "-n", ns)
    wait_for(lambda: json.loads(cluster.kubectl("get", "quota", "np", "-n", ns, "-o", "json").stdout)
             .get("status", {}).get("used"), 30, what="quota computed")
    cluster.kubectl("create", "service", "clusterip", "a", "--tcp=80:80", "-n", ns)
    cluster.kubectl("create", "service", "clusterip", "b", "--tcp=80:80", "-n", ns)
    # ClusterIP -> NodePort adds a node port: charged, within the limit
    cluster.kubectl("patch", "service", "a", "-n", ns, "-p", '{"spec":{"type":"NodePort"}}')
    r = cluster.kubectl("patch", "service", "b", "-n", ns, "-p", '{"spec":{"type":"NodePort"}}', check=False)
    assert r.returncode != 0
    assert ('services "b" is forbidden: exceeded quota: np, requested: services.nodeports=1, '
            'used: services.nodeports=1, limited: services.nodeports=1') in r.stderr
    b = json.loads(cluster.kubectl("get", "service", "b", "-n", ns, "-o", "json").stdout)
    assert b["spec"]["type"] == "ClusterIP"  # nothing changed
    # an update that adds nothing is not charged
    cluster.kubectl("label", "service", "a", "-n", ns, "x=y")
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
