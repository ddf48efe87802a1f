"""The cluster DNS end to end: ``k8py server`` (control plane, hollow nodes
whose pods get addresses) and ``k8py dns`` as a process on loopback, asked
by a small stdlib client; other names go to a fake upstream on loopback."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import subprocess
import threading
import time
import urllib.request
from typing import Iterator

import pytest

from k8py.dns import wire
from k8py.dns.wire import RR, Message
from tests.e2e.conftest import K8PY, free_port, stop_process
from tests.support.cluster import Cluster, wait_for

PREFIX = "dnsn-"
ADVERTISED = "192.0.2.53"


def free_udp_tcp_port() -> int:
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


class Upstream(socketserver.ThreadingUDPServer):
    """A fake upstream resolver: example.com names only."""

    def __init__(self) -> None:
        self.records = {("www.example.com", wire.A): [RR("www.example.com", wire.A, 120, "192.0.2.80")],
                        ("db.example.com", wire.A): [RR("db.example.com", wire.A, 120, "192.0.2.81")]}
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)


class _UpstreamHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        srv: Upstream = self.server  # type: ignore[assignment]
        q = wire.parse(data)
        name = q.question[0].name.lower()
        srv.asked.append(name)
        r = Message(q.id, wire.QR | wire.RA | wire.RD, q.question)
        r.answer = srv.records.get((name, q.question[0].qtype), [])
        if not r.answer:
            r.flags |= wire.NXDOMAIN
            r.authority = [RR("example.com", wire.SOA, 60, ("ns.example.com", "a.example.com", 1, 2, 3, 4, 30))]
        sock.sendto(r.to_wire(), self.client_address)


class DNS:
    def __init__(self, cluster: Cluster, upstream: Upstream):
        self.port = free_udp_tcp_port()
        self.health = free_port()
        self.log_path = os.path.join(cluster.data_dir, "dns.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [K8PY, "dns", "--kubeconfig", cluster.kubeconfig, "--listen", f"127.0.0.1:{self.port}",
             "--upstream", f"127.0.0.1:{upstream.server_address[1]}", "--health-port", str(self.health),
             # Endpoints may not hold loopback addresses (API validation): a documentation address
             # stands in for the node's; nothing is sent to it (no proxy runs here)
             "--create-service", "--advertise-address", f"{ADVERTISED}:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.http("/ready") == 200, 30, what="dns ready")
        except AssertionError as e:
            self.close()
            raise AssertionError(f"{e}\n{self.tail()}") from None

    def http(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def ask(self, name: str, qtype: int = wire.A, tcp: bool = False) -> Message:
        mid = int.from_bytes(os.urandom(2), "big")
        q = wire.make_query(name, qtype, mid)
        if tcp:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(struct.pack(">H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                    chunk = s.recv(65535)
                    assert chunk, "connection closed"
                    buf += chunk
                m = wire.parse(buf[2:])
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(q, ("127.0.0.1", self.port))
                m = wire.parse(s.recv(65535))
        assert m.id == mid
        return m

    def addrs(self, name: str, qtype: int = wire.A) -> list:
        m = self.ask(name, qtype)
        return sorted(rr.data for rr in m.answer if rr.rtype == qtype) if m.rcode == wire.NOERROR else []

    def tail(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def close(self) -> None:
        stop_process(self.proc)
        self.log.close()


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Cluster, DNS, Upstream]]:
    c = Cluster().start()
    up = Upstream()
    t = threading.Thread(target=up.serve_forever, daemon=True)
    t.start()
    dns = None
    try:
        c.add_nodes(2, PREFIX)
        dns = DNS(c, up)
        yield c, dns, up
    finally:
        if dns is not None:
            dns.close()
        up.shutdown()
        up.server_close()
        c.close()


def apply(cluster: Cluster, *objs: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def test_kube_dns_service_and_health(env: tuple[Cluster, DNS, Upstream]) -> None:
    c, dns, _ = env
    assert dns.http("/health") == 200
    svc = json.loads(c.kubectl("get", "service", "-n", "kube-system", "kube-dns", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.43.0.10"
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert sorted((p["name"], p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]) == [
        ("dns", 53, "UDP", dns.port), ("dns-tcp", 53, "TCP", dns.port)]
    eps = json.loads(c.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                               "kubernetes.io/service-name=kube-dns", "-o", "json").stdout)["items"]
    assert [e["addresses"] for s in eps for e in s["endpoints"]] == [[ADVERTISED]]
    assert dns.addrs("kube-dns.kube-system.svc.cluster.local") == ["10.43.0.10"]
    assert dns.addrs("kubernetes.default.svc.cluster.local") == ["10.43.0.1"]
    assert dns.addrs("dns-version.cluster.local", wire.TXT) == [(b"1.1.0",)]
    # deleted, it comes back
    c.kubectl("delete", "endpointslice", "-n", "kube-system", "kube-dns-k8py")
    wait_for(lambda: c.kubectl("get", "endpointslice", "-n", "kube-system", "kube-dns-k8py",
                               check=False).returncode == 0, 10, what="slice re-made")


def test_cluster_ip_service_follows_the_api(env: tuple[Cluster, DNS, Upstream]) -> None:
    c, dns, _ = env
    name = "web.default.svc.cluster.local"
    m = dns.ask(name)
    assert m.rcode == wire.NXDOMAIN and m.authority[0].rtype == wire.SOA and m.authority[0].data[6] == 5
    t0 = time.monotonic()
    apply(c, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
              "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    ip = c.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert wait_for(lambda: dns.addrs(name) == [ip], 5, 0.05, what="A record")
    took = time.monotonic() - t0
    assert took < 3, took
    m = dns.ask("_http._tcp." + name, wire.SRV)
    assert [rr.data for rr in m.answer] == [(0, 100, 80, name)]
    assert [rr.data for rr in m.additional] == [ip]
    assert dns.ask(name, wire.AAAA).rcode == wire.NOERROR  # NODATA
    assert dns.ask(name, tcp=True).answer[0].data == ip
    assert [rr.data for rr in dns.ask(wire.reverse_name(ip), wire.PTR).answer] == [name]
    c.kubectl("delete", "service", "web")
    wait_for(lambda: dns.ask(name).rcode == wire.NXDOMAIN, 2, 0.05, what="NXDOMAIN after delete")


def test_statefulset_pods_by_name(env: tuple[Cluster, DNS, Upstream]) -> None:
    c, dns, _ = env
    apply(c, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
              "spec": {"clusterIP": "None", "selector": {"app": "db"},
                       "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]}},
          {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 2, "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "pg", "image": "postgres",
                                                          "ports": [{"containerPort": 5432}]}]}}}})

    def pod_ips() -> dict[str, str]:
        pods = json.loads(c.kubectl("get", "pods", "-l", "app=db", "-o", "json").stdout)["items"]
        return {p["metadata"]["name"]: p["status"].get("podIP") for p in pods
                if any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions", []))}
    ips = wait_for(lambda: (i := pod_ips()) and len(i) == 2 and i, 60, what="two ready pods")
    svc = "db.default.svc.cluster.local"
    wait_for(lambda: dns.addrs(svc) == sorted(ips.values()), 10, 0.1, what="headless A records")
    for pod, ip in ips.items():
        assert dns.addrs(f"{pod}.{svc}") == [ip]
    m = dns.ask(f"_pg._tcp.{svc}", wire.SRV)
    assert sorted(rr.data[3] for rr in m.answer) == [f"db-0.{svc}", f"db-1.{svc}"]
    assert sorted(rr.data for rr in m.additional) == sorted(ips.values())
    # scaled down, the name of the removed pod goes
    c.kubectl("scale", "statefulset", "db", "--replicas=1")
    wait_for(lambda: dns.ask(f"db-1.{svc}").rcode == wire.NXDOMAIN, 30, 0.1, what="db-1 gone")
    assert dns.addrs(svc) == [ips["db-0"]]
    c.kubectl("delete", "statefulset", "db")
    wait_for(lambda: dns.ask(svc).rcode == wire.NXDOMAIN, 30, 0.1, what="no ready endpoints: NXDOMAIN")
    c.kubectl("delete", "service", "db")


def test_external_name_and_forwarding(env: tuple[Cluster, DNS, Upstream]) -> None:
    c, dns, up = env
    apply(c, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
              "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
    name = "ext.default.svc.cluster.local"
    wait_for(lambda: dns.ask(name).answer, 5, 0.05, what="ExternalName")
    m = dns.ask(name)
    assert [(rr.rtype, rr.data) for rr in m.answer] == [(wire.CNAME, "db.example.com"), (wire.A, "192.0.2.81")]
    assert dns.addrs("www.example.com") == ["192.0.2.80"]
    assert dns.addrs("www.example.com") == ["192.0.2.80"]
    assert up.asked.count("www.example.com") == 1  # the second came from the cache
    m = dns.ask("missing.example.com")
    assert m.rcode == wire.NXDOMAIN
    dns.ask("missing.example.com")
    assert up.asked.count("missing.example.com") == 1  # cached negatively
    c.kubectl("delete", "service", "ext")
