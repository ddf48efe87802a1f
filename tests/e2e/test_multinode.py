"""A three-node cluster on one machine (tests/support/multinode.py): ``k8py server`` on a bridge the
test owns, three network namespaces each running ``k8py agent --server URL --token TOKEN``.
Everything through the real kubectl, runc and the real kernel's routing:

- the nodes join with the printed token and their own credentials, and become Ready;
- every node routes the other nodes' podCIDRs to them (host-gw), and only its own routes;
- a Deployment spread over the three nodes, pod to pod across nodes by IP;
- pod to Service ClusterIP across nodes, and NodePort on every node (when ``k8py proxy`` exists);
- a node that goes away: its pods come back on the others, the Service keeps answering.
"""

from __future__ import annotations

import json
import os
import stat
import time
import urllib.request
from typing import Iterator

import pytest

from k8py.kubelet.routes import ROUTE_PROTO
from tests.e2e.conftest import K8PY
from tests.support.cluster import wait_for
from tests.support.images import BusyboxArchive, busybox_archive  # noqa: F401 (fixture)
from tests.support.multinode import CLIENT_POD, MultiNodeCluster

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector: {matchLabels: {app: web}}
      containers:
      - name: httpd
        image: httpd
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 80}]
        readinessProbe:
          tcpSocket: {port: 80}
          periodSeconds: 1
"""


@pytest.fixture(scope="module")
def mn(busybox_archive: BusyboxArchive) -> Iterator[MultiNodeCluster]:  # noqa: F811
    c = MultiNodeCluster(busybox_archive.path, count=3, server_args=(
        "--default-not-ready-toleration-seconds=3", "--default-unreachable-toleration-seconds=3",
        "--kube-controller-manager-arg=--node-monitor-grace-period=16",
        "--kube-controller-manager-arg=--node-monitor-period=2")).start()
    try:
        yield c
    finally:
        c.close()


def pods(mn: MultiNodeCluster, selector: str = "app=web") -> list[dict]:
    return json.loads(mn.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def ready(p: dict) -> bool:
    return not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())


def wget(mn: MultiNodeCluster, url: str, timeout: float = 3) -> str:
    # busybox wget -T crashes (SIGSEGV) here: timeout(1) bounds it instead
    p = mn.kubectl("exec", "client", "--", "timeout", str(int(timeout)), "wget", "-qO-", url, check=False,
                   timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"wget {url}: {p.returncode} {p.stderr.strip()}")
    return p.stdout


def test_nodes_join_with_the_token(mn: MultiNodeCluster) -> None:
    token_file = os.path.join(mn.server.data_dir, "token")  # type: ignore[union-attr]
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert mn.token.startswith("K10") and "::server:" in mn.token
    out = mn.kubectl("get", "nodes", "-o", "wide").stdout
    nodes = {n["metadata"]["name"]: n for n in json.loads(mn.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    assert sorted(nodes) == ["n1", "n2", "n3"], out
    cidrs = set()
    for name, n in nodes.items():
        conds = {c["type"]: c["status"] for c in n["status"]["conditions"]}
        assert conds["Ready"] == "True", out
        ips = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        assert ips == [mn.nodes[name].ip]
        cidrs.add(n["spec"]["podCIDR"])
    assert len(cidrs) == 3
    # each agent has its own identity (not the admin's) and key, kept under its data dir
    for name, node in mn.nodes.items():
        agent_dir = os.path.join(node.data_dir, "agent")
        assert stat.S_IMODE(os.stat(os.path.join(agent_dir, "client-kubelet.key")).st_mode) == 0o600
        who = mn.kubectl("--kubeconfig", os.path.join(agent_dir, "kubelet.kubeconfig"), "auth", "whoami",
                         "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}", check=False)
        if who.returncode == 0:  # SelfSubjectReview, where the API server has it
            assert who.stdout.startswith(f"system:node:{name} ") and "system:nodes" in who.stdout
        # forwarding on inside the node's namespace (set by the agent there), the host's untouched
        assert node.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    # a wrong token cannot join: the CA hash does not match
    bad = mn.nodes["n1"].run(K8PY, "agent", "--server", mn.server_url, "--token",
                             "K10" + "0" * 64 + "::server:" + mn.token.rsplit(":", 1)[1],
                             "--data-dir", os.path.join(mn.dir, "bad"), "--hostname-override", "bad",
                             check=False, timeout=30)
    assert bad.returncode == 1 and "is not the token's" in bad.stderr, bad.stderr
    assert "bad" not in mn.kubectl("get", "nodes", "-o", "name").stdout


def test_host_gw_routes(mn: MultiNodeCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in json.loads(mn.kubectl("get", "nodes", "-o", "json").stdout)["items"]}

    def routes(name: str) -> dict[str, str]:
        out = mn.nodes[name].run("ip", "-j", "route", "show", "proto", str(ROUTE_PROTO)).stdout
        return {r["dst"]: r.get("gateway", "") for r in json.loads(out or "[]")}

    for name in mn.nodes:
        want = {n["spec"]["podCIDR"]: mn.nodes[other].ip for other, n in nodes.items() if other != name}
        wait_for(lambda: routes(name) == want or None, 20, what=f"{name}'s routes {want}")


def test_pods_spread_and_reach_each_other_across_nodes(mn: MultiNodeCluster) -> None:
    mn.kubectl("apply", "-f", "-", input=WEB)
    mn.kubectl("apply", "-f", "-", input=CLIENT_POD)
    wait_for(lambda: len([p for p in pods(mn) if ready(p)]) == 3, 90, interval=0.5, what="3 web pods ready")
    placed = {p["spec"]["nodeName"]: p["status"]["podIP"] for p in pods(mn)}
    assert sorted(placed) == ["n1", "n2", "n3"], placed
    wait_for(lambda: ready(json.loads(mn.kubectl("get", "pod", "client", "-o", "json").stdout)), 60,
             what="client ready")
    for node, ip in placed.items():
        assert ip.startswith("10.42."), ip
        assert "It works!" in wait_for(lambda: wget(mn, f"http://{ip}/"), 15, what=f"pod on {node} by IP")


def test_service_across_nodes(mn: MultiNodeCluster) -> None:
    mn.kubectl("expose", "deployment", "web", "--port=80", "--type=NodePort")
    svc = json.loads(mn.kubectl("get", "service", "web", "-o", "json").stdout)
    cip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert cip.startswith("10.43.")
    # from the client on n1, to backends on all three nodes through the ClusterIP
    wait_for(lambda: "It works!" in wget(mn, f"http://{cip}/"), 30, what="ClusterIP from n1")
    for _ in range(6):
        assert "It works!" in wget(mn, f"http://{cip}/")
    # NodePort on every node's address, from the host across the test's bridge
    for name, n in mn.nodes.items():
        page = wait_for(lambda: urllib.request.urlopen(f"http://{n.ip}:{node_port}/", timeout=3).read(), 30,
                        what=f"NodePort on {name}")
        assert b"It works!" in page


def test_a_node_goes_away(mn: MultiNodeCluster) -> None:
    before = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(mn)}
    lost = [name for name, node in before.items() if node == "n3"]
    assert lost, before
    t0 = time.monotonic()
    mn.stop_node("n3")
    wait_for(lambda: not mn.node_ready("n3"), 60, interval=0.5, what="n3 not Ready")
    t_notready = time.monotonic() - t0

    def back() -> bool:
        live = [p for p in pods(mn) if ready(p)]
        return len(live) == 3 and all(p["spec"]["nodeName"] in ("n1", "n2") for p in live) \
            and not any(p["metadata"]["name"] in lost for p in live)
    wait_for(back, 90, interval=0.5, what="web pods back on n1 and n2")
    t_back = time.monotonic() - t0
    taints = json.loads(mn.kubectl("get", "node", "n3", "-o", "json").stdout)["spec"].get("taints") or []
    assert any(t["key"] in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
               and t["effect"] == "NoExecute" for t in taints), taints
    print(f"n3 gone: NotReady after {t_notready:.1f}s, pods back after {t_back:.1f}s")
    for p in pods(mn):
        if ready(p):
            assert "It works!" in wait_for(lambda: wget(mn, f"http://{p['status']['podIP']}/"), 15, what="pod")
    # the Node deleted: the others drop their route to its podCIDR, and keep routes not theirs
    n3_cidr = json.loads(mn.kubectl("get", "node", "n3", "-o", "json").stdout)["spec"]["podCIDR"]
    n1 = mn.nodes["n1"]
    n1.run("ip", "route", "add", "10.42.251.0/24", "via", mn.nodes["n2"].ip)
    try:
        mn.kubectl("delete", "node", "n3")
        for name in ("n1", "n2"):
            wait_for(lambda: n3_cidr not in mn.nodes[name].run("ip", "route", "show", "proto",
                                                                str(ROUTE_PROTO)).stdout, 20,
                     what=f"{name}'s route to n3's {n3_cidr} removed")
        assert "10.42.251.0/24" in n1.run("ip", "route", "show").stdout
    finally:
        n1.run("ip", "route", "del", "10.42.251.0/24", check=False)
    if mn.kubectl("get", "service", "web", check=False).returncode == 0:
        cip = json.loads(mn.kubectl("get", "service", "web", "-o", "json").stdout)["spec"]["clusterIP"]
        wait_for(lambda: all("It works!" in wget(mn, f"http://{cip}/") for _ in range(4)), 30,
                 what="the Service answers without n3")
