"""Without root: ``k8py server`` run as the unprivileged user ``nobody``
picks the process runtime for its kubelet, says that there is no
isolation, and still runs pods (plain host processes, images pulled from
the local registry)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Iterator

import pytest

from tests.e2e.conftest import K8PY, Server, free_port
from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root to become nobody")
NOBODY = 65534


class NobodyServer(Server):
    def __init__(self, registry_host: str):
        d = tempfile.mkdtemp(prefix="k8py-nonroot-")
        os.chmod(d, 0o755)
        os.chown(d, NOBODY, NOBODY)
        super().__init__(data_dir=d, cmd="server")
        self.own_dir = True
        os.chown(self.home, NOBODY, NOBODY)
        self.kubelet_port = free_port()
        self.extra_args = (f"--kubelet-arg=--registry-mirror=docker.io=http://{registry_host}",
                           "--kubelet-arg=--hostname-override=nonroot-node", "--kubelet-arg=--node-ip=127.0.0.1",
                           f"--kubelet-arg=--port={self.kubelet_port}")

    def start(self, timeout: float = 30.0) -> "NobodyServer":
        # CAP_DAC_READ_SEARCH alone is kept (ambient), only so that nobody can reach an interpreter
        # installed under root's home (pyenv in /root); everything else is unprivileged: no mounts,
        # no namespaces, no runc
        args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", K8PY, "server",
                "--data-dir", self.data_dir, "--https-listen-port", str(self.port), "--bind-address", "127.0.0.1",
                "--write-kubeconfig", self.kubeconfig, *self.extra_args]
        self.log = open(os.path.join(self.data_dir, "apiserver.log"), "ab")
        env = dict(os.environ, HOME=self.data_dir)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.data_dir)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.kubeconfig):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + self.tail())
            time.sleep(0.05)
        return self


@pytest.fixture
def server(busybox_registry: Registry) -> Iterator[NobodyServer]:  # noqa: F811
    s = NobodyServer(busybox_registry.host).start()
    try:
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.kubectl("delete", "pods", "--all", "--grace-period=1", check=False, timeout=60)
        s.close()


def test_server_without_root_runs_pods_as_processes(server: NobodyServer) -> None:
    def node_runtime() -> str:
        return server.kubectl("get", "node", "nonroot-node", "-o",
                              "jsonpath={.status.nodeInfo.containerRuntimeVersion}", check=False).stdout
    wait_for(lambda: node_runtime().startswith("process://"), 60, what="node with the process runtime")
    wait_for(lambda: "True" == server.kubectl(
        "get", "node", "nonroot-node", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        check=False).stdout, 60, what="node Ready")
    server.kubectl("run", "plain", "--image=busybox", "--", "sh", "-c", "echo hello from $(id -u); sleep 3600")

    def phase() -> str:
        return server.kubectl("get", "pod", "plain", "-o", "jsonpath={.status.phase}", check=False).stdout
    wait_for(lambda: phase() == "Running", 60, what="pod Running")
    ip = server.kubectl("get", "pod", "plain", "-o", "jsonpath={.status.podIP}").stdout
    assert ip == "127.0.0.1"  # host network: no isolation
    wait_for(lambda: server.kubectl("logs", "plain", check=False).stdout == f"hello from {NOBODY}\n", 20,
             what="the container's log")
    assert "no isolation" in server.tail(200_000).lower()
