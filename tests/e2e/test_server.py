"""``k8py server`` as one command: the API server plus the scheduler and the
controller-manager as child processes that take their leader Leases, are
restarted when they die, and stop with the server."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import Server
from tests.support.cluster import Cluster, wait_for


def child_pids(pid: int) -> dict[str, int]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for k in (task / "children").read_text().split():
            cmd = Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")
            for name in ("controller-manager", "scheduler"):
                if name.encode() in cmd:
                    out[name] = int(k)
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster().start()
    try:
        yield c
    finally:
        c.close()


def holder(c: Cluster, lease: str) -> str:
    out = c.kubectl("-n", "kube-system", "get", "lease", lease, "-o", "json", check=False)
    if out.returncode:
        return ""
    return json.loads(out.stdout)["spec"].get("holderIdentity") or ""


def test_control_plane_runs_as_children_holding_their_leases(cluster: Cluster):
    kids = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(child_pids(cluster.proc.pid)), 20,
                    what="scheduler and controller-manager started")
    assert set(kids) == {"controller-manager", "scheduler"}
    wait_for(lambda: holder(cluster, "kube-controller-manager"), 30, what="controller-manager lease")
    wait_for(lambda: holder(cluster, "kube-scheduler"), 30, what="scheduler lease")


def test_a_dead_component_is_restarted(cluster: Cluster):
    kids = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(child_pids(cluster.proc.pid)), 20)
    old = kids["controller-manager"]
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (lambda p: p if p and p != old else None)(
        child_pids(cluster.proc.pid).get("controller-manager")), 20, what="controller-manager restarted")
    assert alive(new)


def test_stopping_the_server_stops_the_children():
    c = Cluster().start()
    try:
        kids = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(child_pids(c.proc.pid)), 20)
    finally:
        c.close()
    for pid in kids.values():
        wait_for(lambda: not alive(pid), 10, what=f"child {pid} gone")


def test_kubernetes_service_endpoints_follow_the_advertise_address():
    # 192.0.2.0/24 is TEST-NET-1: only written into objects, never contacted
    s = Server(
        extra_args=("--advertise-address", "192.0.2.10")).start()
    try:
        ep = json.loads(s.kubectl("-n", "default", "get", "endpoints", "kubernetes", "-o", "json").stdout)
        assert ep["subsets"] == [{"addresses": [{"ip": "192.0.2.10"}],
                                  "ports": [{"name": "https", "port": s.port, "protocol": "TCP"}]}]
        sl = json.loads(s.kubectl("-n", "default", "get", "endpointslice", "kubernetes", "-o", "json").stdout)
        assert sl["endpoints"][0]["addresses"] == ["192.0.2.10"]
        assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
        s.stop()
        s.extra_args = ("--advertise-address", "192.0.2.11")
        s.start()  # same data, new address: brought up to date
        ep = json.loads(s.kubectl("-n", "default", "get", "endpoints", "kubernetes", "-o", "json").stdout)
        assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.11"}]
    finally:
        s.close()
