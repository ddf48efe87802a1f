"""A real registry for tests: Debian's `docker-registry` on a free loopback port.

    with Registry() as reg:                                  # anonymous
        reg.push_archive(archive, "library/busybox:latest")  # -> manifest digest
        reg.host                                             # "127.0.0.1:PORT"
    with Registry(auth=("alice", "s3cret")) as reg: ...      # htpasswd (bcrypt) basic auth

Each registry has its own temporary storage and config; it is stopped by its own
process id and its directory removed on exit. Pytest fixtures: `busybox_registry`
(session-scoped, anonymous, with library/busybox:latest and library/httpd:latest
pushed, i.e. a mirror for docker.io) needs `busybox_archive` from
tests.support.images imported into the test module too.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest

from tests.support.images import BusyboxArchive, push_archive

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd: glibc's crypt (Python's `crypt` module), else `htpasswd -B`.

    Cost 4, the least bcrypt allows: the registry checks the hash on every request."""
    try:
        import crypt  # deprecated in 3.11, gone in 3.13

        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if h and h.startswith("$2"):
            return h
    except (ImportError, AttributeError, OSError):
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", "-C", "4", "x", password], check=True, capture_output=True, text=True).stdout
        return out.strip().split(":", 1)[1]
    raise RuntimeError("no bcrypt: neither Python's crypt module nor htpasswd (apache2-utils)")


class Registry:
    def __init__(self, auth: tuple[str, str] | None = None):
        self.auth = auth
        self.dir = ""
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> "Registry":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="k8py-registry-")
        self.port = free_port()
        cfg = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
               f"    rootdirectory: {self.dir}/data", "  delete:", "    enabled: true",
               "http:", f"  addr: 127.0.0.1:{self.port}"]
        if self.auth:
            with open(f"{self.dir}/htpasswd", "w") as f:
                f.write(f"{self.auth[0]}:{bcrypt_hash(self.auth[1])}\n")
            cfg += ["auth:", "  htpasswd:", "    realm: k8py-test", f"    path: {self.dir}/htpasswd"]
        with open(f"{self.dir}/config.yml", "w") as f:
            f.write("\n".join(cfg) + "\n")
        with open(f"{self.dir}/log", "wb") as log:
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", f"{self.dir}/config.yml"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.base + "/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return  # up, and wants a password
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {log_text[-2000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            with open(f"{self.dir}/log", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def push_archive(self, archive_path: str, repo_tag: str, source: str | None = None) -> str:
        """Push one image of an OCI layout tarball as `repo_tag`; return its manifest digest."""
        return push_archive(self.base, archive_path, repo_tag, source=source, auth=self.auth)


@pytest.fixture(scope="session")
def busybox_registry(busybox_archive: BusyboxArchive) -> Iterator[Registry]:
    """An anonymous registry holding library/busybox:latest and library/httpd:latest (a docker.io mirror)."""
    with Registry() as reg:
        reg.push_archive(busybox_archive.path, "library/busybox:latest")
        reg.push_archive(busybox_archive.path, "library/httpd:latest")
        yield reg
