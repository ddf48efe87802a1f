"""End-to-end fixtures: a real ``k8py apiserver`` process (on SQLite or on a
real etcd that the suite starts) driven by the real kubectl and the official
Python client.  Every process is stopped by its own handle at teardown."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.etcd import EtcdProcess

ROOT = Path(__file__).resolve().parents[2]
K8PY = str(ROOT / ".venv" / "bin" / "k8py") if (ROOT / ".venv" / "bin" / "k8py").exists() else "k8py"
KUBECTL_DIR = Path(os.path.realpath(shutil.which("kubectl") or "/usr/bin/kubectl")).parent


def kubectl_bin(version: str | None = None) -> str:
    if version is None:
        return shutil.which("kubectl") or "kubectl"
    return str(KUBECTL_DIR / f"kubectl.{version}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: "subprocess.Popen[bytes] | None", sig: int = signal.SIGTERM, grace: float = 15) -> None:
    """Signals a process the test started and waits for it; SIGKILL after ``grace``."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """One API server process."""

    def __init__(self, datastore: str = "", data_dir: str | None = None, extra_args: tuple[str, ...] = (),
                 cmd: str = "apiserver"):
        self.cmd = cmd  # "apiserver" alone, or "server" with the control plane
        self.extra_args = tuple(extra_args)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="k8py-e2e-")
        self.datastore = datastore
        self.port = free_port()
        self.kubeconfig = os.path.join(self.data_dir, "kubeconfig.yaml")
        self.home = os.path.join(self.data_dir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Server":
        if os.path.exists(self.kubeconfig):
            os.unlink(self.kubeconfig)
        args = [K8PY, self.cmd, "--data-dir", self.data_dir, "--https-listen-port", str(self.port),
                "--bind-address", "127.0.0.1", "--write-kubeconfig", self.kubeconfig]
        if self.datastore:
            args += ["--datastore-endpoint", self.datastore]
        args += list(self.extra_args)
        self.log = open(os.path.join(self.data_dir, "apiserver.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.kubeconfig):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("apiserver did not start:\n" + self.tail())
            time.sleep(0.05)
        return self

    def tail(self, n: int = 4000) -> str:
        try:
            return Path(self.data_dir, "apiserver.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def close(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        env["HOME"] = self.home  # kubectl's discovery cache stays in the test's dir
        return env

    def kubectl(self, *args: str, version: str | None = None, input: str | None = None, check: bool = True,
                timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        e = self.env()
        if env:
            e.update(env)
        p = subprocess.run([kubectl_bin(version), *args], input=input, capture_output=True, text=True,
                           env=e, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def client(self):
        from kubernetes import client, config
        return config.new_client_from_config(config_file=self.kubeconfig)

    def report(self) -> str:
        """A short account of the cluster for a failed test: pods, recent events, the log's
        warnings and the machine's load (CI shows only the end of its output: keep it short)."""
        if self.proc is None or self.proc.poll() is not None:
            return f"server not running\n{self.tail(1500)}"
        def run(*args: str) -> str:
            try:
                p = self.kubectl(*args, check=False, timeout=15)
                return (p.stdout + p.stderr).rstrip()
            except subprocess.TimeoutExpired:
                return f"kubectl {' '.join(args)}: timed out"
        pods = run("get", "pods", "-A", "-o", "wide").splitlines()[:20]
        events = run("get", "events", "-A", "--sort-by=.lastTimestamp").splitlines()[-12:]
        noisy = [ln for ln in self.tail(200_000).splitlines() if " WARNING " in ln or " ERROR " in ln][-10:]
        busy = subprocess.run(["ps", "-eo", "pcpu,rss,etimes,args", "--sort=-pcpu"], capture_output=True,
                              text=True).stdout.splitlines()[:6]
        load = Path("/proc/loadavg").read_text().strip()
        return "\n".join(["pods:", *pods, "events:", *events, "log warnings:", *(ln[:300] for ln in noisy),
                          f"load {load}; busiest:", *(ln[:200] for ln in busy)])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used a cluster gets the cluster's report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    seen: set[int] = set()
    for value in item.funcargs.values():
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, Server) and id(v) not in seen:
                seen.add(id(v))
                try:
                    rep.sections.append((f"cluster {v.data_dir}", v.report()))
                except Exception as e:  # noqa: BLE001 - a report must not hide the failure
                    rep.sections.append((f"cluster {v.data_dir}", f"no report: {e!r}"))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """An API server on embedded SQLite, shared by a test module."""
    s = Server().start()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def any_server(request) -> Iterator[Server]:
    """An API server on each backend in turn."""
    etcd = None
    datastore = ""
    if request.param == "etcd":
        etcd = EtcdProcess()
        etcd.start()
        datastore = "etcd://" + etcd.url.removeprefix("http://")
    s = Server(datastore=datastore)
    try:
        yield s.start()
    finally:
        s.close()
        if etcd is not None:
            etcd.close()


class Raw:
    """Plain HTTPS requests with the admin certificate (or none), to check
    status codes and Status bodies exactly."""

    def __init__(self, server: Server, anonymous: bool = False):
        import urllib3
        tls = os.path.join(server.data_dir, "tls")
        kw = {} if anonymous else {"cert_file": os.path.join(tls, "admin.crt"),
                                   "key_file": os.path.join(tls, "admin.key")}
        self.http = urllib3.PoolManager(ca_certs=os.path.join(tls, "ca.crt"), cert_reqs="CERT_REQUIRED", **kw)
        self.base = server.url

    def __call__(self, method: str, path: str, body: bytes | str | dict | list | None = None,
                 content_type: str = "application/json", headers: dict[str, str] | None = None):
        import json
        h = dict(headers or {})
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            h.setdefault("Content-Type", content_type)
        r = self.http.request(method, self.base + path, body=body, headers=h, retries=False, timeout=30)
        try:
            data = json.loads(r.data) if r.data and r.headers.get("Content-Type", "").startswith(
                "application/json") else r.data
        except ValueError:
            data = r.data
        return r.status, data


@pytest.fixture(scope="module")
def raw(server: Server) -> Raw:
    return Raw(server)
