"""Test images: the busybox/httpd archive built once per session, and a push to a registry over plain HTTP.

    from tests.support.images import busybox_archive  # noqa: F401  (registers the fixture)

    def test_x(busybox_archive: BusyboxArchive) -> None:
        busybox_archive.path                      # the OCI layout tarball
        busybox_archive.manifests["docker.io/library/httpd:latest"]   # its manifest digest

`push_archive(base_url, archive, "library/httpd:latest", auth=("u", "p"))` uploads
one image of an OCI layout tarball with the registry v2 upload API (a POST to
open each blob upload, a monolithic PUT with `?digest=`, then the manifest
PUT), as `docker push` does without chunking.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterator

import pytest

from k8py.kubelet.images.busybox import build_busybox_archive
from k8py.kubelet.images.manifest import OCI_MANIFEST
from k8py.kubelet.images.reference import parse_reference

BUSYBOX = "/usr/bin/busybox"


@dataclass(frozen=True)
class BusyboxArchive:
    path: str
    manifests: dict[str, str]  # "docker.io/library/busybox:latest" -> manifest digest


def _read_layout(path: str) -> tuple[dict[str, bytes], list[dict]]:
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                files["/".join(x for x in m.name.split("/") if x not in ("", "."))] = f.read()
    if "index.json" not in files:
        raise ValueError(f"{path}: not an OCI image layout")
    return files, list(json.loads(files["index.json"]).get("manifests") or [])


def _choose(entries: list[dict], repo_tag: str, source: str | None) -> dict:
    """The index entry to push: `source` by name, else the one whose repository's last part matches."""
    def name(e: dict) -> str:
        return (e.get("annotations") or {}).get("io.containerd.image.name", "")
    if source is not None:
        want = str(parse_reference(source))
        hits = [e for e in entries if name(e) == want]
    elif len(entries) == 1:
        hits = entries
    else:
        base = parse_reference(repo_tag).path.rsplit("/", 1)[-1]
        hits = [e for e in entries if name(e) and parse_reference(name(e)).path.rsplit("/", 1)[-1] == base]
    if len(hits) != 1:
        raise ValueError(f"cannot tell which image of the archive to push as {repo_tag} (source={source})")
    return hits[0]


class _Client:
    def __init__(self, base: str, auth: tuple[str, str] | None):
        self.base = base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None

    def request(self, method: str, url: str, data: bytes | None = None, ctype: str | None = None):  # type: ignore[no-untyped-def]
        req = urllib.request.Request(url if url.startswith("http") else self.base + url, data=data, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            return urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {req.full_url}: HTTP {e.code} {e.read()[:300]!r}") from None

    def has_blob(self, repo: str, digest: str) -> bool:
        try:
            self.request("HEAD", f"/v2/{repo}/blobs/{digest}").close()
            return True
        except RuntimeError:
            return False

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.has_blob(repo, digest):
            return digest
        with self.request("POST", f"/v2/{repo}/blobs/uploads/") as resp:
            loc = resp.headers["Location"]
        loc = loc if loc.startswith("http") else self.base + loc
        sep = "&" if "?" in loc else "?"
        self.request("PUT", f"{loc}{sep}digest={digest}", data, "application/octet-stream").close()
        return digest


def push_archive(base_url: str, archive_path: str, repo_tag: str, source: str | None = None,
                 auth: tuple[str, str] | None = None) -> str:
    """Push one image of the OCI layout at `archive_path` as `repo_tag` ("library/busybox:latest")
    to the registry at `base_url`; return the manifest digest. `source` names the image in
    the archive; by default the one whose repository name ends like `repo_tag`'s."""
    files, entries = _read_layout(archive_path)
    entry = _choose(entries, repo_tag, source)
    repo, _, tag = repo_tag.partition(":")
    tag = tag or "latest"
    manifest = files["blobs/sha256/" + entry["digest"][7:]]
    doc = json.loads(manifest)
    c = _Client(base_url, auth)
    for desc in [doc["config"], *doc.get("layers", [])]:
        c.push_blob(repo, files["blobs/sha256/" + desc["digest"][7:]])
    c.request("PUT", f"/v2/{repo}/manifests/{tag}", manifest, doc.get("mediaType") or OCI_MANIFEST).close()
    return str(entry["digest"])


@pytest.fixture(scope="session")
def busybox_archive() -> Iterator[BusyboxArchive]:
    """The busybox/httpd OCI archive, built once per test session into a temporary directory."""
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing: install busybox-static (make test-deps does)")
    d = tempfile.mkdtemp(prefix="k8py-busybox-")
    try:
        path = os.path.join(d, "busybox-oci.tar")
        yield BusyboxArchive(path, build_busybox_archive(path, BUSYBOX))
    finally:
        shutil.rmtree(d, ignore_errors=True)
