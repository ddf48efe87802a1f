"""The busybox/httpd archive (reproducible, what the tests and `make run` use) and the `k8py images` CLI."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from typing import Any

import pytest

from k8py.kubelet.images.busybox import INDEX_HTML, build_busybox_archive
from tests.support.images import BusyboxArchive, busybox_archive  # noqa: F401 (fixture)
from tests.support.registry import Registry, busybox_registry  # noqa: F401 (fixture)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (layers keep their owners)")
K8PY = os.path.join(os.path.dirname(sys.executable), "k8py")


def blobs(path: str) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_archive_is_reproducible_and_complete(busybox_archive: BusyboxArchive, tmp_path: Any) -> None:
    again = build_busybox_archive(f"{tmp_path}/again.tar")
    assert again == busybox_archive.manifests
    assert set(again) == {"docker.io/library/busybox:latest", "docker.io/library/httpd:latest"}
    with open(busybox_archive.path, "rb") as a, open(f"{tmp_path}/again.tar", "rb") as b:
        assert a.read() == b.read()
    files = blobs(busybox_archive.path)
    index = json.loads(files["index.json"])
    names = {m["annotations"]["io.containerd.image.name"]: m["digest"] for m in index["manifests"]}
    assert names == again
    configs = {}
    layers = set()
    for name, digest in names.items():
        manifest = json.loads(files["blobs/sha256/" + digest[7:]])
        configs[name] = json.loads(files["blobs/sha256/" + manifest["config"]["digest"][7:]])
        layers.update(layer["digest"] for layer in manifest["layers"])
    assert len(layers) == 1  # one layer shared by both images
    assert configs["docker.io/library/busybox:latest"]["config"]["Cmd"] == ["sh"]
    httpd = configs["docker.io/library/httpd:latest"]["config"]
    assert httpd["Cmd"] == ["httpd", "-f", "-v", "-p", "80", "-h", "/usr/local/apache2/htdocs"]
    assert httpd["ExposedPorts"] == {"80/tcp": {}}
    with tarfile.open(fileobj=io.BytesIO(files["blobs/sha256/" + layers.pop()[7:]]), mode="r:gz") as layer:
        members = {m.name.rstrip("/"): m for m in layer.getmembers()}
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
        assert members["usr/bin/wget"].issym() and members["bin/busybox"].mode == 0o755
        assert members["tmp"].mode == 0o1777
        assert {m.mtime for m in members.values()} == {1704067200}
        assert b"nobody:x:65534:65534" in layer.extractfile("etc/passwd").read()  # type: ignore[union-attr]
        assert b"nogroup" in layer.extractfile("etc/group").read()  # type: ignore[union-attr]
        assert layer.extractfile("usr/local/apache2/htdocs/index.html").read() == INDEX_HTML  # type: ignore[union-attr]
        assert members["var/www"].isdir()


def k8py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([K8PY, "images", *args], capture_output=True, text=True, timeout=60)


@root_only
def test_cli_import_ls_rm(busybox_archive: BusyboxArchive, tmp_path: Any) -> None:
    root = f"--image-root={tmp_path}/images"
    r = k8py("import", busybox_archive.path, "--name", "k8py/extra:1", root)
    assert r.returncode == 0, r.stderr
    assert "docker.io/library/busybox:latest" in r.stdout and "docker.io/library/httpd:latest" in r.stdout
    r = k8py("ls", root)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    rows = {tuple(line.split()[:2]) for line in lines[1:]}
    assert {("docker.io/library/busybox", "latest"), ("docker.io/library/httpd", "latest")} <= rows
    ids = k8py("ls", "-q", root).stdout.split()
    assert len(ids) == 2 and all(i.startswith("sha256:") for i in ids)
    listing = json.loads(k8py("ls", "-o", "json", root).stdout)["images"]
    httpd = next(i for i in listing if "docker.io/library/httpd:latest" in i["repoTags"])
    r = k8py("rm", "httpd", root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["untagged: docker.io/library/httpd:latest"]  # still tagged k8py/extra:1
    r = k8py("rm", httpd["id"][7:19], root)
    assert r.stdout.splitlines() == ["untagged: docker.io/k8py/extra:1", f"deleted: {httpd['id']}"]
    r = k8py("rm", "httpd", root)
    assert r.returncode == 1 and "no such image: httpd" in r.stderr
    r = k8py("import", "/etc/hostname", root)
    assert r.returncode == 1 and "not a tar archive" in r.stderr and "Traceback" not in r.stderr
    assert k8py("ls", "-q", root).stdout.split() == [i for i in ids if i != httpd["id"]]
    r = k8py("build-busybox", f"{tmp_path}/bb.tar", "--import", "--if-missing", root)
    assert r.returncode == 0 and "built" in r.stdout  # httpd was missing
    r = k8py("build-busybox", f"{tmp_path}/bb2.tar", "--import", "--if-missing", root)
    assert r.returncode == 0 and "already present" in r.stdout and not os.path.exists(f"{tmp_path}/bb2.tar")
    assert k8py("bogus", root).returncode == 2


@root_only
def test_cli_pull_through_mirror(busybox_registry: Registry, tmp_path: Any) -> None:
    root = f"--image-root={tmp_path}/images"
    r = k8py("pull", "busybox", "--registry-mirror", f"docker.io={busybox_registry.base}", root)
    assert r.returncode == 0, r.stderr
    assert "docker.io/library/busybox:latest" in r.stdout
    r = k8py("pull", f"{busybox_registry.host}/library/nothere:1", root)
    assert r.returncode == 1 and "not found" in r.stderr
    r = k8py("pull", "busybox", "--registry-mirror", "nonsense", root)
    assert r.returncode == 1 and "HOST=URL" in r.stderr
