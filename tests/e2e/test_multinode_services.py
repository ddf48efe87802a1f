"""Services, cluster DNS and Ingress on a three-node cluster (tests/support/multinode.py with
``dns=True``: ``k8py dns`` on the test's bridge behind kube-dns 10.43.0.10, three netns nodes each
running ``k8py agent``, so kubelet, proxy and ingress controller per node). Real kubectl, runc,
nftables and routing throughout:

- the seeds' picture: nginx-1, nginx-2 and nginx-3 (one per node, each serving its own name)
  behind one Service; from a busybox pod on n1 the ClusterIP spreads over all three, the
  NodePort answers on every node's address, and ``nslookup nginx`` / ``wget http://nginx/`` work
  through the cluster DNS;
- ``kubectl expose deployment`` and a rolling update under a steady stream of requests (from a
  pod through the ClusterIP and from the host through a NodePort), with readiness probes, a
  preStop hook and a grace period longer than it: no request fails, the new pods serve;
- an Ingress answered on port 80 of every node by Host header, its status.loadBalancer listing
  every Ready node's address, written once (no flapping between the nodes' controllers).
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from k8py.ingress.controller import ready_node_addresses
from tests.e2e.conftest import kubectl_bin
from tests.support.cluster import wait_for
from tests.support.images import BusyboxArchive, busybox_archive  # noqa: F401 (fixture)
from tests.support.multinode import CLIENT_POD, CLUSTER_DNS, MultiNodeCluster

HTDOCS = "/usr/local/apache2/htdocs"

NGINX = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: nginx}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: httpd
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'hostname > {htdocs}/index.html && exec httpd -f -p 80 -h {htdocs}']
    ports: [{{containerPort: 80}}]
    readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1}}
"""


# maxSurge 1 / maxUnavailable 0 (the defaults' rounding for 3 replicas); the preStop sleep keeps the
# old server answering while its endpoint is withdrawn and every proxy drops it from the rules. The
# server stops at once on SIGTERM, as nginx does (httpd exec'd as the container's PID 1 would ignore
# SIGTERM and serve on until the SIGKILL, hiding what the preStop hook is for)
WEB = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  minReadySeconds: 2
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 10
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector: {{matchLabels: {{app: web}}}}
      containers:
      - name: httpd
        image: httpd
        imagePullPolicy: IfNotPresent
        env: [{{name: VERSION, value: v1}}]
        command: [sh, -c, 'echo "$(hostname) $VERSION" > {HTDOCS}/index.html; httpd -f -p 80 -h {HTDOCS} & trap "kill $!; exit 0" TERM; wait']
        ports: [{{containerPort: 80}}]
        readinessProbe: {{httpGet: {{path: /, port: 80}}, periodSeconds: 1, failureThreshold: 1}}
        lifecycle: {{preStop: {{exec: {{command: [sleep, "3"]}}}}}}
"""


@pytest.fixture(scope="module")
def mn(busybox_archive: BusyboxArchive) -> Iterator[MultiNodeCluster]:  # noqa: F811
    c = MultiNodeCluster(busybox_archive.path, count=3, dns=True).start()
    try:
        yield c
    finally:
        c.close()


def client_pod(mn: MultiNodeCluster) -> None:
    """The busybox pod on n1 the requests come from (made once per module)."""
    if mn.kubectl("get", "pod", "client", check=False).returncode != 0:
        mn.kubectl("apply", "-f", "-", input=CLIENT_POD)
    wait_for(lambda: ready(json.loads(mn.kubectl("get", "pod", "client", "-o", "json").stdout)), 60,
             what="client ready")


def pods(mn: MultiNodeCluster, selector: str) -> list[dict]:
    return json.loads(mn.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def ready(p: dict) -> bool:
    return not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())


def svc(mn: MultiNodeCluster, name: str) -> dict:
    return json.loads(mn.kubectl("get", "service", name, "-o", "json").stdout)


def in_client(mn: MultiNodeCluster, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return mn.kubectl("exec", "client", "--", "sh", "-c", script, check=False, timeout=timeout)


def wget_n(mn: MultiNodeCluster, url: str, n: int) -> list[str]:
    # busybox wget -T crashes (SIGSEGV) here: timeout(1) bounds it instead
    out = in_client(mn, f"for i in $(seq {n}); do timeout 3 wget -qO- {url} || echo FAIL; done").stdout
    return out.split()


def http(url: str, host: str | None = None, timeout: float = 3) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_ready_node_addresses_sorted() -> None:
    """What every node's ingress controller publishes: the same list, from the same Nodes."""
    def node(ip: str, ready: str = "True", ext: str = "") -> dict:
        addrs = [{"type": "InternalIP", "address": ip}] + ([{"type": "ExternalIP", "address": ext}] if ext else [])
        return {"status": {"addresses": addrs, "conditions": [{"type": "Ready", "status": ready}]}}
    nodes = [node("10.0.0.13"), node("10.0.0.9"), node("10.0.0.11", "Unknown"), node("10.0.0.2", ext="192.0.2.7")]
    assert ready_node_addresses(nodes) == ["10.0.0.9", "10.0.0.13", "192.0.2.7"]
    assert ready_node_addresses(list(reversed(nodes))) == ready_node_addresses(nodes)


def test_seeds_picture(mn: MultiNodeCluster) -> None:
    for i in (1, 2, 3):
        mn.kubectl("apply", "-f", "-", input=NGINX.format(name=f"nginx-{i}", node=f"n{i}", htdocs=HTDOCS))
    client_pod(mn)
    names = ["nginx-1", "nginx-2", "nginx-3"]
    wait_for(lambda: sorted(p["metadata"]["name"] for p in pods(mn, "app=nginx") if ready(p)) == names, 90,
             interval=0.5, what="nginx-1..3 ready")
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(mn, "app=nginx")}
    assert placed == {"nginx-1": "n1", "nginx-2": "n2", "nginx-3": "n3"}

    # one Service in front of the three (kubectl expose of one pod, selecting all of them)
    mn.kubectl("expose", "pod", "nginx-1", "--name=nginx", "--selector=app=nginx", "--port=80", "--type=NodePort")
    s = svc(mn, "nginx")
    cip, node_port = s["spec"]["clusterIP"], s["spec"]["ports"][0]["nodePort"]
    assert cip.startswith("10.43.")

    # ClusterIP from the client on n1: every request answered, spread over the three nodes' pods
    wait_for(lambda: wget_n(mn, f"http://{cip}/", 1)[0] in names, 30, what="ClusterIP answers")
    got = wget_n(mn, f"http://{cip}/", 30)
    counts = collections.Counter(got)
    print(f"ClusterIP spread over 30 requests: {dict(counts)}")
    assert set(counts) == set(names), counts

    # NodePort on every node's address, from the host across the test's bridge
    for name, n in mn.nodes.items():
        wait_for(lambda: http(f"http://{n.ip}:{node_port}/")[1].strip() in names, 20, what=f"NodePort on {name}")
        seen = {http(f"http://{n.ip}:{node_port}/")[1].strip() for _ in range(12)}
        assert seen <= set(names) and len(seen) >= 2, (name, seen)

    # names: the pod's resolv.conf points at the cluster DNS, which answers for the Service
    resolv = in_client(mn, "cat /etc/resolv.conf").stdout
    assert f"nameserver {CLUSTER_DNS}" in resolv, resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv
    assert "ndots:5" in resolv, resolv
    kube_dns = json.loads(mn.kubectl("get", "service", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert kube_dns["spec"]["clusterIP"] == CLUSTER_DNS
    # busybox's nslookup asks for every search-domain expansion at once, prints each answer and
    # exits 1 when any of them is NXDOMAIN (nginx.svc.cluster.local is): the answer is what counts
    look = wait_for(lambda: (lambda out: out if f"Address: {cip}" in out else None)(
        in_client(mn, "timeout 5 nslookup nginx").stdout), 30, what="nslookup nginx")
    assert "Name:\tnginx.default.svc.cluster.local" in look, look
    assert "nginx.svc.cluster.local: NXDOMAIN" in look, look
    fq = in_client(mn, "timeout 5 nslookup nginx.default.svc.cluster.local")
    assert fq.returncode == 0 and cip in fq.stdout, fq.stdout + fq.stderr
    by_name = wget_n(mn, "http://nginx/", 6)
    assert set(by_name) <= set(names) and by_name, by_name
    # a name outside the cluster is not answered (no upstream in this test) and not made up
    assert in_client(mn, "timeout 5 nslookup example.invalid").returncode != 0


class HostStream(threading.Thread):
    """Requests from the host to a NodePort, back to back, until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.ok: collections.Counter[str] = collections.Counter()
        self.failed: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                code, body = http(self.url, timeout=2)
                if code == 200:
                    self.ok[body.strip()] += 1
                else:
                    self.failed.append(f"{code} {body[:80]!r}")
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self.failed.append(repr(e))
            time.sleep(0.02)


def test_rolling_update_without_failed_requests(mn: MultiNodeCluster) -> None:
    mn.kubectl("apply", "-f", "-", input=WEB)
    client_pod(mn)
    wait_for(lambda: len([p for p in pods(mn, "app=web") if ready(p)]) == 3, 90, interval=0.5,
             what="3 web pods ready")
    mn.kubectl("expose", "deployment", "web", "--port=80", "--type=NodePort")
    s = svc(mn, "web")
    cip, node_port = s["spec"]["clusterIP"], s["spec"]["ports"][0]["nodePort"]
    wait_for(lambda: wget_n(mn, f"http://{cip}/", 1)[-1] == "v1", 30, what="web ClusterIP answers")
    old = {p["metadata"]["name"] for p in pods(mn, "app=web")}

    # the in-cluster stream: a shell loop in the client on n1, one line per request
    log_path = os.path.join(mn.dir, "stream.log")
    loop = (f"rm -f /tmp/stop; n=0; while [ ! -e /tmp/stop ]; do n=$((n+1)); "
            f"r=$(timeout 2 wget -qO- http://{cip}/ 2>/dev/null) || r=FAIL; echo \"$n $r\"; usleep 20000; done")
    with open(log_path, "w") as log, open(log_path + ".err", "w") as err:
        stream = subprocess.Popen([kubectl_bin(), "exec", "client", "--", "sh", "-c", loop],
                                  stdout=log, stderr=err, env=mn.server.env())  # type: ignore[union-attr]
    host = HostStream(f"http://{mn.nodes['n2'].ip}:{node_port}/")
    host.start()
    try:
        wait_for(lambda: len(_lines(log_path)) >= 20, 30, what="the stream running")
        t0, n0 = time.monotonic(), len(_lines(log_path))
        mn.kubectl("set", "env", "deployment/web", "VERSION=v2")
        mn.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
        t_rollout = time.monotonic() - t0
        new = {p["metadata"]["name"] for p in pods(mn, "app=web") if p["metadata"]["name"] not in old}
        assert len(new) == 3, new
        # keep streaming until the old pods are gone and every new pod has answered
        wait_for(lambda: not (old & {p["metadata"]["name"] for p in pods(mn, "app=web")}), 40, interval=0.5,
                 what="old pods gone")
        t_gone, n_gone = time.monotonic() - t0, len(_lines(log_path))
        wait_for(lambda: new <= {line.split()[1] for line in _lines(log_path) if len(line.split()) == 3}, 20,
                 what="every new pod served")
    finally:
        in_client(mn, "touch /tmp/stop")
        try:
            stream.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait()
        host.stopping.set()
        host.join(10)
    lines = _lines(log_path)
    fails = [line for line in lines if "FAIL" in line or len(line.split()) != 3]
    versions = collections.Counter(line.split()[2] for line in lines if len(line.split()) == 3)
    served = collections.Counter(line.split()[1] for line in lines if len(line.split()) == 3)
    host_total = sum(host.ok.values()) + len(host.failed)
    print(f"rollout {t_rollout:.1f}s, old pods gone after {t_gone:.1f}s ({n_gone - n0} requests from the pod "
          f"meanwhile); pod stream: {len(lines)} requests, {len(fails)} failed, versions {dict(versions)}; "
          f"host NodePort stream: {host_total} requests, {len(host.failed)} failed")
    assert lines and not fails, fails[:10]
    assert not host.failed, host.failed[:10]
    assert versions["v1"] > 0 and versions["v2"] > 0, versions
    assert new <= set(served) and old & set(served), served
    assert any(k.endswith("v2") for k in host.ok) and any(k.endswith("v1") for k in host.ok), host.ok


def _lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except OSError:
        return []


INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: seeds}
spec:
  ingressClassName: k8py
  rules:
  - host: nginx.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: nginx, port: {number: 80}}}}]}
  - host: web.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"""


def test_ingress_on_every_node(mn: MultiNodeCluster) -> None:
    mn.kubectl("apply", "-f", "-", input=INGRESS)
    names = {"nginx-1", "nginx-2", "nginx-3"}
    for name, n in mn.nodes.items():
        wait_for(lambda: http(f"http://{n.ip}/", "nginx.example")[1].strip() in names, 30,
                 what=f"ingress on {name}")
        seen = {http(f"http://{n.ip}/", "nginx.example")[1].strip() for _ in range(9)}
        assert seen <= names and len(seen) >= 2, (name, seen)
        code, body = http(f"http://{n.ip}/", "web.example")
        assert code == 200 and body.startswith("web-"), (code, body)
        assert http(f"http://{n.ip}/", "other.example")[0] == 404
    # status: every Ready node's address, sorted, whichever node's controller wrote it
    want = sorted((n.ip for n in mn.nodes.values()), key=ipaddress.ip_address)

    def status() -> tuple[list[str], str]:
        ing = json.loads(mn.kubectl("get", "ingress", "seeds", "-o", "json").stdout)
        return ([i.get("ip") for i in ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()],
                ing["metadata"]["resourceVersion"])
    wait_for(lambda: status()[0] == want, 30, what=f"ingress status {want}")
    # three controllers agree: the status is not rewritten back and forth
    rv = status()[1]
    time.sleep(5)
    assert status() == (want, rv)
    assert " ".join(want) in mn.kubectl("get", "ingress", "seeds").stdout.replace(",", " ")
