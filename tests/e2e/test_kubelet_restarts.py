"""Pods outlive their control plane and their kubelet: the containers run
in their own shims, so stopping ``k8py server`` (API server, scheduler,
controller-manager and kubelet) leaves them serving, and the kubelet that
comes back adopts them: same container IDs, restartCount 0."""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
from typing import Iterator

import pytest

from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")


@pytest.fixture
def node(busybox_registry: Registry) -> Iterator[NodeCluster]:  # noqa: F811
    c = NodeCluster(busybox_registry.host).start()
    try:
        yield c
    finally:
        c.close()


def page(ip: str) -> bytes:
    return urllib.request.urlopen(f"http://{ip}/", timeout=2).read()


def snapshot(node: NodeCluster) -> dict[str, tuple[str, int, str]]:
    out = {}
    for name in ("keep-web", "keep-sleep"):
        st = node.pod_json(name)["status"]
        cs = st["containerStatuses"][0]
        out[name] = (cs["containerID"], cs["restartCount"], st["podIP"])
    return out


def kubelet_pid(server_pid: int) -> int | None:
    """The server's kubelet child, found among the server's own children."""
    try:
        children = open(f"/proc/{server_pid}/task/{server_pid}/children").read().split()
    except OSError:
        return None
    for pid in children:
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"kubelet" in argv:
            return int(pid)
    return None


def test_pods_survive_control_plane_and_kubelet_restarts(node: NodeCluster) -> None:
    node.kubectl("run", "keep-web", "--image=httpd")
    node.kubectl("run", "keep-sleep", "--image=busybox", "--", "sleep", "3600")
    ip = node.wait_ready("keep-web")["status"]["podIP"]
    node.wait_ready("keep-sleep")
    wait_for(lambda: b"It works!" in page(ip), 10, what="page")
    before = snapshot(node)

    # the whole control plane (and the kubelet with it) goes away: the pods keep serving
    node.stop()
    for _ in range(3):
        assert b"It works!" in page(ip)
        time.sleep(0.5)
    node.start()
    wait_for(lambda: node.node_ready(), 60, what="node Ready again")
    time.sleep(3)  # a few sync passes of the new kubelet
    assert snapshot(node) == before
    assert b"It works!" in page(ip)

    # only the kubelet restarts (killed outright): nothing restarts either
    assert node.proc is not None
    old = wait_for(lambda: kubelet_pid(node.proc.pid), 10, what="kubelet pid")
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (kubelet_pid(node.proc.pid) or old) != old, 30, what="a new kubelet")
    time.sleep(4)
    assert snapshot(node) == before
    assert b"It works!" in page(ip)
    node.kubectl("delete", "pod", "keep-web", "keep-sleep", "--grace-period=1")
