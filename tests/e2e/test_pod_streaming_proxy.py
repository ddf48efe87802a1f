"""Real kubectl (1.32 and 1.27) and the official Python client doing logs, exec,
attach, port-forward and cp through `k8py apiserver`'s proxy to a kubelet
server.  The kubelet runs in this process with a fake host (tests/kubelet/
test_server.py): its "containers" are host processes, exec runs in a temp
dir, logs are CRI files the test writes, port-forward reaches loopback."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
import fcntl

import pytest

from tests.e2e.conftest import Server, free_port, kubectl_bin, stop_process
from tests.kubelet.test_server import FakeHost, KubeletThread

VERSIONS = [None, "1.27"]  # None: the default kubectl (1.32)


class Cluster:
    def __init__(self) -> None:
        self.api = Server().start()
        self.root = tempfile.mkdtemp(prefix="k8py-streaming-")
        self.host = FakeHost(os.path.join(self.root, "root"))
        self.kubelet = KubeletThread(self.host, os.path.join(self.root, "kubelet-tls"),
                                     os.path.join(self.api.data_dir, "tls", "ca.crt"))
        from kubernetes import client
        self.api_client = self.api.client()
        core = client.CoreV1Api(self.api_client)
        self.core = core
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fake-node"}})
        core.patch_node_status("fake-node", {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "fake"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet.port}}}})
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"nodeName": "fake-node",
                     "containers": [{"name": "main", "image": "busybox", "stdin": True}]}})
        core.patch_namespaced_pod_status("web", "default", {"status": {
            "phase": "Running", "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "",
                                                        "ready": True, "restartCount": 0,
                                                        "state": {"running": {}}}]}})
        # a pod on no node, and one of two containers
        core.create_namespaced_pod("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nowhere"},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two"},
            "spec": {"nodeName": "fake-node", "containers": [{"name": "a", "image": "busybox"},
                                                             {"name": "b", "image": "busybox"}]}})

    def close(self) -> None:
        self.kubelet.close()
        self.api.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


def _cleanup_logs(c: Cluster) -> None:
    for f in os.listdir(os.path.join(c.host.root, "logs")):
        os.unlink(os.path.join(c.host.root, "logs", f))
    c.host.running = True


@pytest.mark.parametrize("version", VERSIONS)
def test_logs(cluster: Cluster, version):
    c = cluster
    _cleanup_logs(c)
    c.host.write_log("main", ("stdout", "line one"), ("stderr", "line two"), ("stdout", "line three"))
    c.host.write_log("main", ("stdout", "before restart"), previous=True)
    assert c.api.kubectl("logs", "web", version=version).stdout == "line one\nline two\nline three\n"
    assert c.api.kubectl("logs", "web", "--tail=2", version=version).stdout == "line two\nline three\n"
    out = c.api.kubectl("logs", "web", "--tail=1", "--timestamps", version=version).stdout
    ts, text = out.split(" ", 1)
    assert text == "line three\n" and ts.startswith("20") and ts.endswith("Z")
    assert c.api.kubectl("logs", "web", "-p", "-c", "main", version=version).stdout == "before restart\n"
    assert c.api.kubectl("logs", "web", "--limit-bytes=6", version=version).stdout == "line o"
    # follow: sees a new line, ends when the container does
    p = subprocess.Popen([kubectl_bin(version), "logs", "-f", "web"], env=c.api.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "line one\n"
        p.stdout.readline(), p.stdout.readline()
        c.host.write_log("main", ("stdout", "later"))
        assert p.stdout.readline() == "later\n"
        c.host.running = False
        assert p.wait(10) == 0
    finally:
        stop_process(p)
    # errors as kube words them
    r = c.api.kubectl("logs", "nowhere", version=version, check=False)
    assert r.returncode != 0 and "does not have a host assigned" in r.stderr
    r = c.api.kubectl("logs", "web", "-c", "nope", version=version, check=False)
    assert r.returncode != 0 and "container nope is not valid for pod web" in r.stderr
    _cleanup_logs(c)


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_exit_code_and_stdin(cluster: Cluster, version):
    c = cluster
    r = c.api.kubectl("exec", "web", "--", "sh", "-c", "echo hi; echo err >&2; exit 3", version=version, check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hi\n" and "err\n" in r.stderr
    r = c.api.kubectl("exec", "-i", "web", "--", "tr", "a-z", "A-Z", input="hello world\n", version=version)
    assert r.stdout == "HELLO WORLD\n"
    r = c.api.kubectl("exec", "web", "-c", "nope", "--", "true", version=version, check=False)
    assert r.returncode != 0 and "container nope is not valid for pod web" in r.stderr


def _run_in_pty(args: list[str], env: dict[str, str], rows: int, cols: int, timeout: float = 30) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(args, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
            elif p.poll() is not None:
                break
        return p.wait(5), out.decode(errors="replace")
    finally:
        stop_process(p)
        os.close(master)


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_tty(cluster: Cluster, version):
    code, out = _run_in_pty([kubectl_bin(version), "exec", "-it", "web", "--", "sh", "-c", "tty; stty size; exit 5"],
                            cluster.api.env(), 33, 101)
    assert "/dev/pts/" in out, out
    assert "33 101" in out, out
    assert code == 5, out


@pytest.mark.parametrize("version", VERSIONS)
def test_attach(cluster: Cluster, version):
    c = cluster
    p = subprocess.Popen([kubectl_bin(version), "attach", "-i", "web"], env=c.api.env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = b""
        deadline = time.monotonic() + 20
        while b"got ping" not in got and time.monotonic() < deadline:
            p.stdin.write(b"ping\n")
            p.stdin.flush()
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                got += os.read(p.stdout.fileno(), 4096)
        assert b"got ping" in got
    finally:
        stop_process(p, signal.SIGINT, grace=5)


class EchoServer:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(b"echo:" + data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def echo():
    e = EchoServer()
    try:
        yield e
    finally:
        e.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_port_forward(cluster: Cluster, echo: EchoServer, version):
    local = free_port()
    p = subprocess.Popen([kubectl_bin(version), "port-forward", "pod/web", f"{local}:{echo.port}"],
                         env=cluster.api.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from" in p.stdout.readline()
        for i in range(2):  # two connections through one forward
            with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
                s.sendall(f"ping{i}".encode())
                assert s.recv(100) == f"echo:ping{i}".encode()
    finally:
        stop_process(p, signal.SIGINT, grace=5)


@pytest.mark.parametrize("version", VERSIONS)
def test_cp_both_ways(cluster: Cluster, version, tmp_path):
    c = cluster
    remote_dir = tempfile.mkdtemp(prefix="k8py-cp-remote-")
    try:
        src = tmp_path / "up.txt"
        src.write_bytes(b"to the pod\n" * 1000)
        c.api.kubectl("cp", str(src), f"web:{remote_dir}/up.txt", version=version)
        assert open(os.path.join(remote_dir, "up.txt"), "rb").read() == src.read_bytes()
        with open(os.path.join(remote_dir, "down.txt"), "wb") as f:
            f.write(b"from the pod\n" * 500)
        dst = tmp_path / "down.txt"
        c.api.kubectl("cp", f"web:{remote_dir}/down.txt", str(dst), version=version)
        assert dst.read_bytes() == b"from the pod\n" * 500
    finally:
        shutil.rmtree(remote_dir, ignore_errors=True)


def test_python_client_exec_and_portforward(cluster: Cluster, echo: EchoServer):
    from kubernetes import client
    from kubernetes.stream import portforward, stream
    core = cluster.core
    out = stream(core.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "echo py; exit 0"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "py\n"
    resp = stream(core.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "exit 7"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.returncode == 7
    resp = stream(core.connect_get_namespaced_pod_exec, "web", "default", command=["cat"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("from python\n")
    got = ""
    deadline = time.monotonic() + 10
    while "from python" not in got and time.monotonic() < deadline:
        resp.update(timeout=1)
        got += resp.read_stdout() if resp.peek_stdout() else ""
    resp.close()
    assert got == "from python\n"
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports=str(echo.port))
    s = pf.socket(echo.port)
    s.settimeout(10)
    s.sendall(b"hello")
    assert s.recv(100) == b"echo:hello"
    s.close()
    assert pf.error(echo.port) is None
    # errors through the proxy are kube Statuses
    with pytest.raises(client.ApiException) as e:
        core.read_namespaced_pod_log("two", "default")
    assert e.value.status == 400 and "a container name must be specified for pod two, choose one of: [a b]" in \
        e.value.body
