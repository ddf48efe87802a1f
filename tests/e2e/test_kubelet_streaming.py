"""kubectl logs / exec / attach / port-forward / cp, and the Python
client's exec and port-forward, against real containers: API server →
kubelet server → runc (exec, attach through the shim, port-forward inside
the pod's network namespace). kubectl 1.32 speaks WebSocket (v5, and SPDY
tunnelled over WebSocket for port-forward), 1.27 speaks SPDY."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import time
from typing import Iterator

import pytest

from tests.e2e.conftest import free_port, kubectl_bin, stop_process
from tests.e2e.test_pod_streaming_proxy import _run_in_pty
from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster, node  # noqa: F401 - fixture
from tests.support.registry import busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")
VERSIONS = ["1.32", "1.27"]

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: st-web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: web, image: httpd}
  - name: counter
    image: busybox
    command: [sh, -c, 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.3; done']
---
apiVersion: v1
kind: Pod
metadata: {name: st-attach}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: busybox
    stdin: true
    command: [sh, -c, 'while read l; do echo "got $l"; done']
---
apiVersion: v1
kind: Pod
metadata: {name: st-prev}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo "run at $(cat /proc/uptime)"; sleep 1; exit 1']
"""


@pytest.fixture(scope="module")
def pods(node: NodeCluster) -> Iterator[NodeCluster]:  # noqa: F811
    node.apply(PODS)
    for name in ("st-web", "st-attach"):
        node.wait_ready(name)
    try:
        yield node
    finally:
        node.kubectl("delete", "pod", "st-web", "st-attach", "st-prev", "--grace-period=1", "--wait=false",
                     check=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_logs(pods: NodeCluster, version: str) -> None:
    wait_for(lambda: pods.kubectl("logs", "st-web", "-c", "counter").stdout.count("\n") >= 3, 10, what="3 lines")
    out = pods.kubectl("logs", "st-web", "-c", "counter", "--tail=2", version=version).stdout
    assert len(out.splitlines()) == 2 and out.startswith("line ")
    ts = pods.kubectl("logs", "st-web", "-c", "counter", "--tail=1", "--timestamps", version=version).stdout
    assert ts[:4].isdigit() and "T" in ts.split()[0] and ts.split()[1] == "line"
    # kubectl picks the first container (and says so) when none is named
    r = pods.kubectl("logs", "st-web", "--tail=1", version=version)
    assert 'Defaulted container "web"' in r.stderr
    # -f follows new lines as they come
    p = subprocess.Popen([kubectl_bin(version), "logs", "-f", "st-web", "-c", "counter", "--tail=1"],
                         env=pods.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 15
        while got.count(b"\n") < 4 and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                got += os.read(p.stdout.fileno(), 4096)  # type: ignore[union-attr]
        lines = got.decode().splitlines()
        assert len(lines) >= 4
        nums = [int(x.split()[1]) for x in lines[:4]]
        assert nums == sorted(nums) and nums[-1] > nums[0]
    finally:
        stop_process(p, signal.SIGINT, grace=5)


def test_logs_previous(pods: NodeCluster) -> None:
    def restarted() -> bool:
        st = (pods.pod_json("st-prev")["status"].get("containerStatuses") or [{}])[0]
        return st.get("restartCount", 0) >= 1
    wait_for(restarted, 30, what="st-prev restarted")
    prev = pods.kubectl("logs", "st-prev", "--previous").stdout
    assert prev.startswith("run at ")
    now = wait_for(lambda: pods.kubectl("logs", "st-prev", check=False).stdout, 10, what="current log")
    assert now.startswith("run at ") and now != prev


@pytest.mark.parametrize("version", VERSIONS)
def test_exec(pods: NodeCluster, version: str) -> None:
    r = pods.kubectl("exec", "st-web", "-c", "web", "--", "sh", "-c", "echo hi; echo err >&2; exit 3",
                     version=version, check=False)
    assert r.returncode == 3 and r.stdout == "hi\n" and "err" in r.stderr
    r = pods.kubectl("exec", "-i", "st-web", "-c", "web", "--", "tr", "a-z", "A-Z", input="hello\n",
                     version=version)
    assert r.stdout == "HELLO\n"
    host = pods.kubectl("exec", "st-web", "-c", "web", "--", "hostname", version=version).stdout.strip()
    assert host == "st-web"
    code, out = _run_in_pty([kubectl_bin(version), "exec", "-it", "st-web", "-c", "web", "--",
                             "sh", "-c", "tty; sleep 1; stty size; exit 5"], pods.env(), 33, 101)
    assert "/dev/pts/" in out, out
    assert "33 101" in out, out
    assert code == 5, out


@pytest.mark.parametrize("version", VERSIONS)
def test_attach(pods: NodeCluster, version: str) -> None:
    p = subprocess.Popen([kubectl_bin(version), "attach", "-i", "st-attach"], env=pods.env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 20
        while b"got ping" not in got and time.monotonic() < deadline:
            p.stdin.write(b"ping\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                got += os.read(p.stdout.fileno(), 4096)  # type: ignore[union-attr]
        assert b"got ping" in got
    finally:
        stop_process(p, signal.SIGINT, grace=5)


@pytest.mark.parametrize("version", VERSIONS)
def test_port_forward(pods: NodeCluster, version: str) -> None:
    local = free_port()
    p = subprocess.Popen([kubectl_bin(version), "port-forward", "pod/st-web", f"{local}:80"], env=pods.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from" in p.stdout.readline()  # type: ignore[union-attr]
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            assert b"200 OK" in data and b"It works!" in data
    finally:
        stop_process(p, signal.SIGINT, grace=5)


@pytest.mark.parametrize("version", VERSIONS)
def test_cp_both_ways(pods: NodeCluster, version: str, tmp_path) -> None:
    src = tmp_path / "up.txt"
    src.write_bytes(b"to the pod\n" * 1000)
    pods.kubectl("cp", str(src), "st-web:/tmp/up.txt", "-c", "web", version=version)
    r = pods.kubectl("exec", "st-web", "-c", "web", "--", "md5sum", "/tmp/up.txt", version=version)
    import hashlib
    assert r.stdout.split()[0] == hashlib.md5(src.read_bytes()).hexdigest()
    pods.kubectl("exec", "st-web", "-c", "web", "--", "sh", "-c", "seq 1 500 > /tmp/down.txt", version=version)
    dst = tmp_path / "down.txt"
    pods.kubectl("cp", "st-web:/tmp/down.txt", str(dst), "-c", "web", version=version)
    assert dst.read_text() == "".join(f"{i}\n" for i in range(1, 501))


def test_python_client_exec_and_portforward(pods: NodeCluster) -> None:
    from kubernetes import client
    from kubernetes.stream import portforward, stream
    core = client.CoreV1Api(pods.client())
    out = stream(core.connect_get_namespaced_pod_exec, "st-web", "default", container="web",
                 command=["sh", "-c", "echo py"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "py\n"
    resp = stream(core.connect_get_namespaced_pod_exec, "st-web", "default", container="web",
                  command=["sh", "-c", "exit 7"], stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.returncode == 7
    pf = portforward(core.connect_get_namespaced_pod_portforward, "st-web", "default", ports="80")
    s = pf.socket(80)
    s.settimeout(10)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert b"It works!" in data
