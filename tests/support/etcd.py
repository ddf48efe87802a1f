"""A real etcd process on loopback for the tests, started and stopped by its
own handle (never by name)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ETCD_BIN = os.environ.get("K8PY_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdProcess:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="k8py-etcd-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> None:
        for _attempt in range(3):  # a "free" port can be taken in between: retry
            cport, pport = _free_port(), _free_port()
            client, peer = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{pport}"
            data = os.path.join(self.dir, f"data{_attempt}")
            log = open(os.path.join(self.dir, "etcd.log"), "ab")
            self.proc = subprocess.Popen(
                [ETCD_BIN, "--name", "default", "--data-dir", data,
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"default={peer}", "--log-level", "error"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(client + "/health", timeout=1) as r:
                        if b'"true"' in r.read():
                            self.url = client
                            return
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop_process()
        with open(os.path.join(self.dir, "etcd.log"), "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        self.close()
        raise RuntimeError(f"etcd did not become healthy:\n{tail}")

    def stop_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # exactly the process we started
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop_process()
        shutil.rmtree(self.dir, ignore_errors=True)
