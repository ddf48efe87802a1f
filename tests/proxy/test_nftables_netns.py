"""The generated ruleset applied for real: a node network namespace with a
bridge, three "pods" (namespaces on veth pairs, each serving its name and
the peer address it sees), a client pod and an outside host; nft runs inside
the node namespace.  Everything is made here, by unique names, and deleted."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from typing import Iterator

import pytest

from k8py.proxy.proxier import RulesConfig, SyncState, build_ruleset, run_nft

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")

SERVER = r"""
import socket, sys
name = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
print("up", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"{name} {peer[0]}\n".encode()); c.close()
"""

CLIENT = r"""
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(n):
    try:
        c = socket.create_connection((host, port), timeout=2)
        print(c.recv(100).decode().strip(), flush=True); c.close()
    except OSError as e:
        print("ERR", e, flush=True)
"""

PODS = {"s0": "10.42.0.10", "s1": "10.42.0.11", "s2": "10.42.0.12", "c": "10.42.0.20"}


def sh(*argv: str, ns: str = "") -> str:
    if ns:
        argv = ("ip", "netns", "exec", ns, *argv)
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Lab:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.node = f"k8pyp{self.tag}n"
        self.ns = {k: f"k8pyp{self.tag}{k}" for k in (*PODS, "ext")}
        self.procs: list[subprocess.Popen] = []

    def up(self) -> None:
        sh("ip", "netns", "add", self.node)
        for ns in self.ns.values():
            sh("ip", "netns", "add", ns)
        n = self.node
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=n)
        sh("ip", "link", "set", "lo", "up", ns=n)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=n)
        sh("ip", "addr", "add", "10.42.0.1/24", "dev", "br0", ns=n)
        sh("ip", "link", "set", "br0", "up", ns=n)
        # replies from a pod to a pod on the same bridge must pass conntrack to be un-DNATed: the
        # proxy turns the bridge's own nf_call_iptables on
        sh("ip", "link", "set", "br0", "type", "bridge", "nf_call_iptables", "0", ns=n)
        sh(sys.executable, "-c", "from k8py.proxy.proxier import bridge_calls_netfilter as f; f('br0')", ns=n)
        assert sh("cat", "/sys/class/net/br0/bridge/nf_call_iptables", ns=n).strip() == "1"
        sh("ip", "route", "add", "10.43.0.0/16", "dev", "br0", ns=n)
        for i, (k, ip) in enumerate(PODS.items()):
            ns = self.ns[k]
            sh("ip", "link", "add", f"v{k}", "type", "veth", "peer", "name", "eth0", "netns", ns, ns=n)
            sh("ip", "link", "set", f"v{k}", "master", "br0", "up", ns=n)
            # as the CNI bridge plugin's hairpinMode: br_netfilter bridges a DNATed frame back out its port
            sh("ip", "link", "set", f"v{k}", "type", "bridge_slave", "hairpin", "on", ns=n)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            sh("ip", "route", "add", "default", "via", "10.42.0.1", ns=ns)
        ext = self.ns["ext"]
        sh("ip", "link", "add", "vext", "type", "veth", "peer", "name", "eth0", "netns", ext, ns=n)
        sh("ip", "addr", "add", "192.0.2.1/24", "dev", "vext", ns=n)
        sh("ip", "link", "set", "vext", "up", ns=n)
        sh("ip", "addr", "add", "192.0.2.2/24", "dev", "eth0", ns=ext)
        sh("ip", "link", "set", "eth0", "up", ns=ext)
        sh("ip", "link", "set", "lo", "up", ns=ext)
        sh("ip", "route", "add", "default", "via", "192.0.2.1", ns=ext)
        for k in ("s0", "s1", "s2"):
            p = subprocess.Popen(["ip", "netns", "exec", self.ns[k], sys.executable, "-c", SERVER, k],
                                 stdout=subprocess.PIPE, text=True)
            self.procs.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "up"

    def down(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in (*self.ns.values(), self.node):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def connect(self, frm: str, host: str, port: int, n: int) -> list[tuple[str, str]]:
        out = sh(sys.executable, "-c", CLIENT, host, str(port), str(n), ns=self.ns[frm])
        res = []
        for line in out.splitlines():
            assert not line.startswith("ERR"), line
            name, peer = line.split()
            res.append((name, peer))
        return res

    def apply(self, services: list[dict], slices: list[dict], prev: SyncState | None) -> SyncState:
        cfg = RulesConfig(table=f"k8pyp{self.tag}", hostname="n1", cluster_cidr="10.42.0.0/16",
                          service_cidr="10.43.0.0/16")
        rs = build_ruleset(cfg, services, slices, ["192.0.2.1"], prev)
        asyncio.run(run_nft(rs.text, netns=self.node))
        return rs.state


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"k8pyp{lab.tag}" not in leftover


def service(name: str, cip: str, typ: str = "ClusterIP", node_port: int = 0, **spec: object) -> dict:
    port = {"name": "http", "port": 80, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    s = {"metadata": {"name": name, "namespace": "default"},
         "spec": {"type": typ, "clusterIP": cip, "ports": [port], **spec}}
    if typ == "LoadBalancer":
        s["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}}
    return s


def slice_(svc: str, ready: dict[str, bool]) -> dict:
    return {"metadata": {"name": f"{svc}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [PODS[k]], "conditions": {"ready": r}, "nodeName": "n1"}
                          for k, r in ready.items()]}


def test_dnat_spreading_readiness_affinity_nodeport_lb_hairpin(lab: Lab) -> None:
    all_ready = {"s0": True, "s1": True, "s2": True}
    services = [service("web", "10.43.0.5", "LoadBalancer", node_port=30080),
                service("sticky", "10.43.0.6", sessionAffinity="ClientIP",
                        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}}),
                service("solo", "10.43.0.7")]
    slices = [slice_("web", all_ready), slice_("sticky", all_ready), slice_("solo", {"s0": True})]
    state = lab.apply(services, slices, None)

    # ClusterIP from a pod: spread over all three, source kept (no masquerade inside the cluster)
    got = lab.connect("c", "10.43.0.5", 80, 60)
    counts = {k: sum(1 for n, _ in got if n == k) for k in ("s0", "s1", "s2")}
    assert all(c >= 5 for c in counts.values()), counts
    assert {peer for _, peer in got} == {PODS["c"]}

    # a not-ready endpoint gets no new connections (incremental sync on the same table)
    state = lab.apply(services, [slice_("web", {"s0": True, "s1": True, "s2": False}), *slices[1:]], state)
    got = lab.connect("c", "10.43.0.5", 80, 30)
    assert {n for n, _ in got} == {"s0", "s1"}

    # session affinity: one client, one endpoint
    got = lab.connect("c", "10.43.0.6", 80, 20)
    assert len({n for n, _ in got}) == 1, got
    # ...which survives a resync
    state = lab.apply(services, slices, state)
    assert {n for n, _ in lab.connect("c", "10.43.0.6", 80, 5)} == {got[0][0]}

    # NodePort and LoadBalancer VIP from outside: answered, masqueraded to the node (Cluster policy)
    for host, port in (("192.0.2.1", 30080), ("192.0.2.1", 80)):
        got = lab.connect("ext", host, port, 12)
        assert {n for n, _ in got} <= {"s0", "s1", "s2"} and len({n for n, _ in got}) >= 2, got
        assert {peer for _, peer in got} == {"10.42.0.1"}

    # hairpin: s0 reaching its own Service lands on itself, masqueraded so the reply comes back through us
    got = lab.connect("s0", "10.43.0.7", 80, 3)
    assert got == [("s0", "10.42.0.1")] * 3

    # a service with no endpoints, and a ClusterIP's port that no Service has: refused at once
    # (by reject-chain: its counter moves), not left to time out
    lab.apply([*services, service("empty", "10.43.0.8")], slices, state)
    t = f"k8pyp{lab.tag}"
    sh("nft", "insert", "rule", "ip", t, "reject-chain", "counter", ns=lab.node)
    for port in ("80", "81"):
        out = sh(sys.executable, "-c", CLIENT, "10.43.0.8", port, "1", ns=lab.ns["c"])
        assert out.startswith("ERR") and "refused" in out, out
    assert "packets 2 " in sh("nft", "list", "chain", "ip", t, "reject-chain", ns=lab.node)


def test_external_traffic_policy_local_keeps_the_client_address(lab: Lab) -> None:
    s = service("loc", "10.43.0.9", "NodePort", node_port=30090, externalTrafficPolicy="Local")
    sl = {"metadata": {"name": "loc-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "loc"}},
          "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": [PODS["s1"]], "conditions": {"ready": True}, "nodeName": "n1"},
                        {"addresses": [PODS["s2"]], "conditions": {"ready": True}, "nodeName": "other"}]}
    lab.apply([s], [sl], None)
    got = lab.connect("ext", "192.0.2.1", 30090, 10)
    assert got == [("s1", "192.0.2.2")] * 10  # only the local endpoint, client address preserved
