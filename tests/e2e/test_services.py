"""Services through `k8py proxy` (nftables) on a real single-node cluster:
three httpd pods behind `kubectl expose deployment`, reached from a busybox
pod by ClusterIP (spread over all three), by NodePort from the host, with
sessionAffinity ClientIP, a pod reaching its own Service (hairpin), a
not-ready pod left out, and the built-in ServiceLB's status; the proxy is
started here with its own table and removed with --cleanup at the end."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import urllib.request
from typing import Iterator

import pytest

from tests.e2e.conftest import K8PY, stop_process
from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster, node  # noqa: F401 - fixture
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("nft"),
                                reason="needs root, runc and nft")

HTDOCS = "/usr/local/apache2/htdocs"
SERVICE_CIDR = "10.43.0.0/16"


class Proxy:
    def __init__(self, node: NodeCluster, pod_cidr: str):
        self.table = f"k8pye{node.tag}"
        self.bridge = f"k8py{node.tag}"
        self.args = ["--kubeconfig", node.kubeconfig, "--hostname-override", node.node_name,
                     "--nft-table", self.table, "--bridge", self.bridge, "--cluster-cidr", pod_cidr,
                     "--service-cidr", SERVICE_CIDR, "--min-sync-period", "0",
                     # the node reports 127.0.0.1, and (as in kube's nftables mode) loopback serves no
                     # NodePorts: serve them on the node's address on its pod bridge
                     "--nodeport-addresses", pod_cidr]
        self.log = open(os.path.join(node.data_dir, "proxy.log"), "ab")
        self.proc = subprocess.Popen([K8PY, "proxy", *self.args], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def table_text(self) -> str:
        p = subprocess.run(["nft", "list", "table", "ip", self.table], capture_output=True, text=True)
        return p.stdout if p.returncode == 0 else ""

    def route(self) -> str:
        return subprocess.run(["ip", "route", "show", SERVICE_CIDR, "dev", self.bridge], capture_output=True,
                              text=True).stdout.strip()

    def stop_and_clean(self) -> None:
        stop_process(self.proc)
        subprocess.run([K8PY, "proxy", "--cleanup", *self.args], capture_output=True, timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def proxy(node: NodeCluster) -> Iterator[Proxy]:
    pod_cidr = wait_for(lambda: json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)
                        ["spec"].get("podCIDR"), 30, what="podCIDR")
    p = Proxy(node, pod_cidr)
    try:
        wait_for(lambda: "chain services" in p.table_text(), 30, what="proxy table")
        yield p
    finally:
        p.stop_and_clean()
        # a forgotten table or route would outlive the test: both must be gone
        assert p.table_text() == ""
        assert p.route() == ""


def svc_json(node: NodeCluster, name: str) -> dict:
    return json.loads(node.kubectl("get", "svc", name, "-o", "json").stdout)


def wget_from(node: NodeCluster, pod: str, url: str, n: int) -> list[str]:
    out = node.kubectl("exec", pod, "--", "sh", "-c",
                       # (busybox 1.35's wget -T crashes: the time limit comes from timeout)
                       f"for i in $(seq {n}); do timeout 3 wget -q -O- {url} || echo FAIL; done").stdout
    return out.split()


def test_services_through_the_proxy(node: NodeCluster, proxy: Proxy) -> None:
    node.apply("""
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
      containers:
      - name: httpd
        image: httpd
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /index.html, port: 80}, periodSeconds: 1, failureThreshold: 1}
""")
    node.kubectl("run", "client", "--image=busybox", "--", "sleep", "3600")

    def web_pods() -> list[str] | None:
        pods = json.loads(node.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        ready = [p["metadata"]["name"] for p in pods
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or ())]
        return sorted(ready) if len(ready) == 3 else None

    names = wait_for(web_pods, 120, what="3 web pods ready")
    node.wait_ready("client", timeout=60)
    for name in names:  # each pod serves its own name
        node.kubectl("exec", name, "--", "sh", "-c", f"echo {name} > {HTDOCS}/index.html")

    node.kubectl("expose", "deployment", "web", "--port=80")
    cip = svc_json(node, "web")["spec"]["clusterIP"]
    assert cip.startswith("10.43.")
    wait_for(lambda: f"{cip} . tcp . 80 : goto service-" in proxy.table_text(), 20, what="ClusterIP rule")
    assert proxy.route(), "service CIDR not routed to the pod bridge"

    # ClusterIP from a busybox pod: every request answered, spread over all three
    got = wget_from(node, "client", f"http://{cip}/", 45)
    counts = collections.Counter(got)
    assert set(counts) == set(names), counts
    assert min(counts.values()) >= 5, counts

    # NodePort from the host, on the node's address on the pod bridge
    node.kubectl("expose", "deployment", "web", "--name=web-np", "--type=NodePort", "--port=80")
    np = svc_json(node, "web-np")["spec"]["ports"][0]["nodePort"]
    pod_cidr = proxy.args[proxy.args.index("--nodeport-addresses") + 1]
    gw = pod_cidr.rsplit(".", 2)[0] + "." + pod_cidr.split(".")[2] + ".1"

    def via_nodeport() -> list[str]:
        return [urllib.request.urlopen(f"http://{gw}:{np}/", timeout=3).read().decode().strip() for _ in range(15)]
    got = wait_for(via_nodeport, 20, what="NodePort answers")
    assert set(got) <= set(names) and len(set(got)) >= 2, got

    # LoadBalancer: the built-in ServiceLB puts the node's address in the status
    node.kubectl("expose", "deployment", "web", "--name=web-lb", "--type=LoadBalancer", "--port=8080",
                 "--target-port=80")
    node_ips = [a["address"] for a in json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)
                ["status"]["addresses"] if a["type"] == "InternalIP"]
    ingress = wait_for(lambda: svc_json(node, "web-lb").get("status", {}).get("loadBalancer", {}).get("ingress"),
                       20, what="LoadBalancer ingress")
    assert [i["ip"] for i in ingress] == node_ips
    assert "EXTERNAL-IP" in node.kubectl("get", "svc", "web-lb").stdout
    lb_np = svc_json(node, "web-lb")["spec"]["ports"][0]["nodePort"]
    assert urllib.request.urlopen(f"http://{gw}:{lb_np}/", timeout=3).read().decode().strip() in names

    # sessionAffinity ClientIP: one client, one pod
    node.kubectl("expose", "deployment", "web", "--name=web-sticky", "--port=80", "--session-affinity=ClientIP")
    sticky = svc_json(node, "web-sticky")["spec"]["clusterIP"]
    wait_for(lambda: "affinity-" in proxy.table_text(), 20, what="affinity sets")
    got = wget_from(node, "client", f"http://{sticky}/", 20)
    assert len(set(got)) == 1 and got[0] in names, got

    # a Service without endpoints refuses connections at once (kube-proxy's reject), as does a
    # ClusterIP's port that its Service does not have
    node.kubectl("create", "service", "clusterip", "nobody", "--tcp=80")
    nobody = svc_json(node, "nobody")["spec"]["clusterIP"]
    wait_for(lambda: f"{nobody} . tcp . 80 : goto reject-chain" in proxy.table_text(), 20, what="reject rule")
    for url in (f"http://{nobody}/", f"http://{cip}:81/"):
        out = node.kubectl("exec", "client", "--", "sh", "-c", f"timeout 3 wget -q -O- {url} 2>&1; echo rc=$?").stdout
        assert "Connection refused" in out and "rc=1" in out, out

    # hairpin: a pod reaching a Service whose only endpoint is itself
    solo = names[0]
    node.kubectl("label", "pod", solo, "solo=yes")
    node.apply("""
apiVersion: v1
kind: Service
metadata: {name: solo}
spec: {selector: {solo: "yes"}, ports: [{port: 80}]}
""")
    solo_ip = svc_json(node, "solo")["spec"]["clusterIP"]
    wait_for(lambda: wget_from(node, solo, f"http://{solo_ip}/", 1) == [solo], 20, what="hairpin answer")
    assert wget_from(node, solo, f"http://{solo_ip}/", 5) == [solo] * 5

    # readiness: a pod that fails its probe gets no traffic (all requests still succeed)
    sick = names[1]
    node.kubectl("exec", sick, "--", "rm", f"{HTDOCS}/index.html")

    def sick_out() -> bool:
        slices = json.loads(node.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                                         "-o", "json").stdout)["items"]
        return any(e.get("targetRef", {}).get("name") == sick and e["conditions"].get("ready") is False
                   for s in slices for e in s.get("endpoints") or ())
    wait_for(sick_out, 30, what="not-ready endpoint")
    wait_for(lambda: proxy.table_text().count("dnat to") and "FAIL" not in wget_from(node, "client", f"http://{cip}/", 3),
             10, what="rules without the sick pod")
    got = wget_from(node, "client", f"http://{cip}/", 30)
    assert "FAIL" not in got and sick not in got and set(got) == set(names) - {sick}, got

    for svc in ("web", "web-np", "web-lb", "web-sticky", "nobody", "solo"):
        node.kubectl("delete", "svc", svc, "--wait=false")
    node.kubectl("delete", "deployment", "web", "--wait=false")
    node.kubectl("delete", "pod", "client", "--grace-period=1", "--wait=false")
    wait_for(lambda: "chain service-" not in proxy.table_text(), 20, what="service chains gone")
