"""``k8py killall`` after ``k8py server`` stopped: the pods it left running are stopped and
everything the node put on the machine (containers, network namespaces, the bridge, cgroups,
volume mounts, the proxy's table) is gone, found through the node's own records."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import K8PY
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def test_killall_removes_what_a_stopped_node_left(busybox_registry: Registry) -> None:  # noqa: F811
    node = NodeCluster(busybox_registry.host).start()
    try:
        node.kubectl("run", "left", "--image=busybox", "--overrides",
                     '{"spec": {"volumes": [{"name": "m", "emptyDir": {"medium": "Memory"}}], "containers": '
                     '[{"name": "left", "image": "busybox", "command": ["sleep", "3600"], '
                     '"volumeMounts": [{"name": "m", "mountPath": "/m"}]}]}}')
        node.wait_ready("left")
        node.stop()  # the server goes; its pod runs on

        data, tag = node.data_dir, node.tag
        runc_root = os.path.join(data, "runtime", "runc")
        networks = os.listdir(os.path.join(data, "cni", "results"))
        table = f"k8py-proxy-{tag}"
        sh("nft", "add", "table", "ip", table)  # as the server's proxy would have left it
        assert sh("runc", "--root", runc_root, "list", "-q").split(), "no container left running"
        assert networks and os.path.exists(f"/sys/class/net/k8py{tag}")
        assert any(f" {data}/kubelet/pods/" in line for line in Path("/proc/self/mounts").read_text().splitlines())

        out = subprocess.run([K8PY, "killall", "--data-dir", data], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "1 pod sandboxes stopped and removed, 1 pod networks deleted" in out.stdout, out.stdout
        assert f"bridge k8py{tag} deleted" in out.stdout and f"table ip {table} deleted" in out.stdout

        assert sh("runc", "--root", runc_root, "list", "-q").split() == []
        assert not os.listdir(os.path.join(data, "cni", "results"))
        assert not os.path.exists(f"/sys/class/net/k8py{tag}")
        assert table not in sh("nft", "list", "tables")
        assert not [line for line in Path("/proc/self/mounts").read_text().splitlines() if f" {data}/" in line]
        cgroups = [*Path("/sys/fs/cgroup").glob(f"k8py-{tag}"), *Path("/sys/fs/cgroup").glob(f"*/k8py-{tag}")]
        assert cgroups == []
        # and again: nothing left to do, nothing fails
        again = subprocess.run([K8PY, "killall", "--data-dir", data], capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "0 pod sandboxes" in again.stdout, again
    finally:
        node.close()
