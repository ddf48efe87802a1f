"""A cluster of several real nodes on one machine: each node a network namespace, joined by a
bridge the test owns, each running its own ``k8py agent``.

    with MultiNodeCluster(busybox_archive.path, count=3) as mn:
        mn.kubectl("get", "nodes")           # n1 n2 n3, Ready
        mn.nodes["n2"].ip                     # 10.200.<x>.12
        mn.stop_node("n3")                    # the node goes away (agent stopped, netns gone)

Layout (``<hex>`` is random per cluster, ``<x>`` a free /24):

    host netns:  bridge k8pymn<hex>  10.200.<x>.1/24   ``k8py server --disable-agent`` bound there
                 veth   mn<hex>n1 ... (one per node, enslaved to the bridge)
    node netns:  k8pymn-<hex>-n1 ...: eth0 10.200.<x>.11/24 (.12, .13), lo up; the agent sets
                 ip_forward=1 (its own namespace), its kubelet makes the pod bridge k8py<tag>
                 on the node's podCIDR and routes the other nodes' podCIDRs (host-gw)

Only the network namespace is the node's own: agents run under ``nsenter --net`` (not ``ip netns
exec``, which also unshares the mount namespace and remounts /sys, hiding the cgroup hierarchy
from runc and keeping the kubelet's mounts out of reach of the teardown).  So the nodes share the
host's filesystem: each has its own data dir, cgroup root and pod bridge name (derived from its
data dir, as ``k8py agent`` does).  Images are imported into each node's store beforehand
(``k8py images import``): the nodes cannot reach a registry on the host's loopback.

The bridge does not hand its traffic to the host's iptables/nftables (``nf_call_iptables 0``),
so whatever else runs on the host cannot filter or rewrite traffic between the nodes.

With ``dns=True`` the cluster DNS runs as ``k8py server`` runs it next to its node: ``k8py dns`` a
host process on the bridge address, port 53 (``--create-service``: kube-system/kube-dns at
10.43.0.10, its endpoints that address), and every agent's kubelet gets ``--cluster-dns
10.43.0.10``. Pods reach it through their node's proxy (10.43.0.10 -> the bridge address,
masqueraded to the node's address on the way out). Names outside the cluster are not forwarded
anywhere (an empty resolv.conf: SERVFAIL), so nothing leaves the machine.

Teardown deletes workloads and pods through the API, stops each agent by its pid, removes what
each node's kubelet left (``k8py killall``, run inside the node's namespace), deletes the
namespaces, veths and the bridge by name, and checks that none of them is left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from k8py.supervisor import data_tag
from tests.e2e.conftest import K8PY, ROOT, Server, free_port, stop_process
from tests.support.cluster import wait_for

NETNS_DIR = "/run/netns"
CLUSTER_DNS = "10.43.0.10"


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def _free_subnet() -> int:
    """A third octet x with nothing of 10.200.x.0/24 on this machine (addresses or routes)."""
    used: list[ipaddress.IPv4Network] = []
    for r in json.loads(sh("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = r.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False))
    for _ in range(200):
        x = random.randint(1, 254)
        net = ipaddress.ip_network(f"10.200.{x}.0/24")
        if not any(net.overlaps(u) for u in used):
            return x
    raise RuntimeError("no free 10.200.x.0/24")


# a busybox pod on node n1 to send requests from
CLIENT_POD = """
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"""


@dataclass
class Node:
    name: str
    netns: str
    veth: str          # host side, on the bridge
    ip: str
    data_dir: str
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None
    gone: bool = False

    @property
    def tag(self) -> str:
        return data_tag(self.data_dir)

    @property
    def pod_bridge(self) -> str:
        return f"k8py{self.tag}"

    def nsenter(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR}/{self.netns}", "--", *argv]

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A command inside the node's network namespace."""
        return sh(*self.nsenter(*argv), check=check, timeout=timeout)

    def tail(self, n: int = 4000) -> str:
        try:
            with open(os.path.join(self.data_dir, "agent.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


@dataclass
class MultiNodeCluster:
    archive: str                          # OCI archive with busybox and httpd (tests.support.images)
    count: int = 3
    server_args: tuple[str, ...] = ()
    agent_args: tuple[str, ...] = ()
    dns: bool = False                     # run k8py dns for the cluster (kubelets get --cluster-dns)
    dns_port: int = 53
    hex: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix=f"k8pymn-{self.hex}-")
        self.bridge = f"k8pymn{self.hex}"
        self.x = 0
        self.server: Server | None = None
        self.dns_proc: subprocess.Popen[bytes] | None = None
        self.dns_log: Any = None
        self.made_links: list[str] = []
        self.made_netns: list[str] = []

    # -- start -------------------------------------------------------------------------------

    @property
    def bridge_ip(self) -> str:
        return f"10.200.{self.x}.1"

    @property
    def server_url(self) -> str:
        assert self.server is not None
        return f"https://{self.bridge_ip}:{self.server.port}"

    def __enter__(self) -> "MultiNodeCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self, timeout: float = 90) -> "MultiNodeCluster":
        try:
            self._start(timeout)
        except BaseException:
            print(self.logs(), file=sys.stderr)
            self.close()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.x = _free_subnet()
        sh("ip", "link", "add", self.bridge, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0",
           "nf_call_arptables", "0")
        self.made_links.append(self.bridge)
        sh("ip", "addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.count + 1):
            self._make_node(f"n{i}", i)
        self.server = Server(cmd="server", data_dir=os.path.join(self.dir, "server"), extra_args=(
            "--disable-agent", "--bind-address", self.bridge_ip, "--advertise-address", self.bridge_ip,
            *self.server_args))
        self.server.start()
        token = wait_for(lambda: _read(os.path.join(self.server.data_dir, "token")), 10, what="join token")
        self.token = token.strip()
        if self.dns:
            self.start_dns()
        for n in self.nodes.values():
            self.start_agent(n)
        wait_for(lambda: all(self.node_ready(n) for n in self.nodes), timeout, interval=0.5,
                 what=f"nodes {list(self.nodes)} Ready")

    def _make_node(self, name: str, i: int) -> None:
        ns = f"k8pymn-{self.hex}-{name}"
        veth = f"mn{self.hex}{name}"
        node = Node(name, ns, veth, f"10.200.{self.x}.{10 + i}", os.path.join(self.dir, name))
        os.makedirs(node.data_dir)
        sh("ip", "netns", "add", ns)
        self.made_netns.append(ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.made_links.append(veth)
        sh("ip", "link", "set", veth, "master", self.bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(K8PY, "images", "import", self.archive, "--data-dir", node.data_dir, timeout=120)
        self.nodes[name] = node

    def start_dns(self) -> None:
        """``k8py dns`` on the bridge address, with the flags ``k8py server`` gives its own."""
        assert self.server is not None
        resolv = os.path.join(self.dir, "dns-resolv.conf")
        with open(resolv, "w"):
            pass  # no upstream: the cluster's own names only
        addr = f"{self.bridge_ip}:{self.dns_port}"
        self.dns_log = open(os.path.join(self.dir, "dns.log"), "ab")
        self.dns_proc = subprocess.Popen(
            [K8PY, "dns", "--kubeconfig", self.server.kubeconfig, "--listen", addr, "--create-service",
             "--service-ip", CLUSTER_DNS, "--advertise-address", addr, "--health-port", "0",
             "--resolv-conf", resolv],
            stdout=self.dns_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(ROOT))

    def stop_dns(self) -> None:
        stop_process(self.dns_proc, signal.SIGTERM, grace=10)
        self.dns_proc = None
        if self.dns_log is not None:
            self.dns_log.close()
            self.dns_log = None

    def start_agent(self, n: Node) -> None:
        argv = n.nsenter(K8PY, "agent", "--server", self.server_url, "--token", self.token,
                         "--hostname-override", n.name, "--data-dir", n.data_dir, "--node-ip", n.ip,
                         "--kubelet-arg=--sync-frequency=2", "--kubelet-arg=--crashloop-backoff=2",
                         *(("--kubelet-arg=--cluster-dns=" + CLUSTER_DNS,) if self.dns else ()),
                         *self.agent_args)
        n.log = open(os.path.join(n.data_dir, "agent.log"), "ab")
        n.proc = subprocess.Popen(argv, stdout=n.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=str(ROOT))

    # -- use ---------------------------------------------------------------------------------

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        assert self.server is not None
        return self.server.kubectl(*args, **kw)

    def node_ready(self, name: str) -> bool:
        p = self.kubectl("get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                         check=False)
        return p.stdout.strip() == "True"

    def logs(self) -> str:
        out = []
        if self.server is not None:
            out.append("--- server ---\n" + self.server.tail())
        if self.dns:
            out.append("--- dns ---\n" + _read(os.path.join(self.dir, "dns.log"))[-4000:])
        for n in self.nodes.values():
            out.append(f"--- agent {n.name} ---\n" + n.tail())
        return "\n".join(out)

    # -- a node going away ---------------------------------------------------------------------

    def stop_agent(self, n: Node) -> None:
        stop_process(n.proc, signal.SIGTERM, grace=20)
        n.proc = None
        if n.log is not None:
            n.log.close()
            n.log = None

    def stop_node(self, name: str) -> None:
        """The node goes away: its agent stops, its containers are removed and its namespace and
        veth deleted. Its Node and pods stay in the API, for the control plane to notice."""
        n = self.nodes[name]
        self.stop_agent(n)
        self._remove_node(n)

    def _remove_node(self, n: Node) -> None:
        if n.gone:
            return
        if os.path.exists(os.path.join(NETNS_DIR, n.netns)):
            n.run(K8PY, "killall", "--data-dir", n.data_dir, check=False, timeout=120)
            self._kill_stragglers(n)
        if n.veth in self.made_links:
            sh("ip", "link", "del", n.veth, check=False)
            self.made_links.remove(n.veth)
        if n.netns in self.made_netns:
            sh("ip", "netns", "del", n.netns, check=False)
            self.made_netns.remove(n.netns)
        n.gone = True

    def _kill_stragglers(self, n: Node) -> None:
        """Processes still in the node's namespace (ours: it is the test's): SIGTERM, then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [int(p) for p in sh("ip", "netns", "pids", n.netns, check=False).stdout.split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sh("ip", "netns", "pids", n.netns, check=False).stdout.strip():
                time.sleep(0.1)

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self.server is not None and self.server.proc is not None and self.server.proc.poll() is None:
                self._delete_workloads()
            for n in self.nodes.values():
                self.stop_agent(n)
            for n in self.nodes.values():
                self._remove_node(n)
        finally:
            self.stop_dns()
            if self.server is not None:
                self.server.stop()
            for ns in list(self.made_netns):
                sh("ip", "netns", "del", ns, check=False)
                self.made_netns.remove(ns)
            for link in reversed(self.made_links):
                sh("ip", "link", "del", link, check=False)
            self.made_links.clear()
            leftovers = self.leftovers()
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not leftovers, f"left behind: {leftovers}"

    def _delete_workloads(self) -> None:
        k = self.kubectl
        k("delete", "deployments,replicasets,daemonsets,statefulsets,jobs,services", "--all", "-A",
          "--wait=false", check=False)
        k("delete", "services", "--all", "-n", "default", "--wait=false", check=False)
        k("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not self._live_pods(), 40, interval=0.5, what="pods gone")
        # pods of a node that went away stay Terminating: nobody is left to confirm their end
        k("delete", "pods", "--all", "-A", "--force", "--grace-period=0", check=False)

    def _live_pods(self) -> list[str]:
        out = self.kubectl("get", "pods", "-A", "-o", "json", check=False).stdout
        live = {n.name for n in self.nodes.values() if not n.gone}
        return [p["metadata"]["name"] for p in json.loads(out or '{"items": []}')["items"]
                if (p.get("spec") or {}).get("nodeName") in live or not (p.get("spec") or {}).get("nodeName")]

    def leftovers(self) -> list[str]:
        """Anything of this cluster still on the machine: links, namespaces, cgroups, mounts."""
        left = []
        links = json.loads(sh("ip", "-j", "link", "show", check=False).stdout or "[]")
        left += [f"link {link['ifname']}" for link in links if self.hex in link.get("ifname", "")]
        left += [f"netns {ns}" for ns in os.listdir(NETNS_DIR) if self.hex in ns] \
            if os.path.isdir(NETNS_DIR) else []
        for n in self.nodes.values():
            for top in ("/sys/fs/cgroup", *(os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup"))):
                if os.path.isdir(os.path.join(top, f"k8py-{n.tag}")):
                    left.append(f"cgroup {top}/k8py-{n.tag}")
        with open("/proc/self/mounts") as f:
            left += [f"mount {line.split()[1]}" for line in f if line.split()[1].startswith(self.dir + "/")]
        return left


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


__all__ = ["MultiNodeCluster", "Node", "free_port", "sh"]
