"""OCI images: a test image built from busybox-static, pushed to a real docker-registry and pulled back."""
from __future__ import annotations

import asyncio
import base64
import crypt
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import aiohttp
import pytest
from aiohttp import web

from k8py.kubelet.images import (
    ImageNotFound, ImageStore, InvalidReference, LayerError, RegistryClient, Unauthorized, parse_reference,
)
from k8py.kubelet.images.commands import format_table, import_images, list_images, remove_image
from k8py.kubelet.images.registry import parse_www_authenticate

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ownership, devices, trusted xattrs)")
BUSYBOX = "/usr/bin/busybox"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: list[tuple[str, str, Any]]) -> bytes:
    """entries: (kind, name, payload) with kind file/dir/sym/link; payload bytes or a target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, payload, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.uid = info.gid = rest[0] if rest else 0
            if kind == "file":
                info.size, info.mode = len(payload), 0o755 if name.startswith("bin/") else 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tar.addfile(info)
    return buf.getvalue()


class BuiltImage:
    """Three layers (gzip, gzip, zstd) over busybox-static, with a whiteout and an opaque dir."""

    def __init__(self, arch: str = "amd64"):
        with open(BUSYBOX, "rb") as f:
            busybox = f.read()
        l1 = tar_bytes([("dir", "bin", None), ("file", "bin/busybox", busybox), ("sym", "bin/sh", "busybox"),
                        ("sym", "bin/ls", "busybox"), ("sym", "bin/cat", "busybox"), ("dir", "data", None),
                        ("file", "data/old.txt", b"old\n"), ("dir", "etc", None), ("file", "etc/passwd", b"root:x:0:0::/:/bin/sh\n")])
        l2 = tar_bytes([("file", "bin/.wh.ls", b""), ("dir", "data", None), ("file", "data/.wh..wh..opq", b""),
                        ("file", "data/new.txt", b"new\n", 1000), ("file", "etc/hosts", b"127.0.0.1 localhost\n"),
                        ("link", "etc/hosts2", "etc/hosts")])
        l3 = tar_bytes([("dir", "tmp", None), ("file", "tmp/z.txt", b"zstd layer\n")])
        self.diffs = [l1, l2, l3]
        z = subprocess.run(["zstd", "-q", "-c"], input=l3, stdout=subprocess.PIPE, check=True).stdout
        self.blobs = [gzip.compress(l1, mtime=0), gzip.compress(l2, mtime=0), z]
        self.media = ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2 + ["application/vnd.oci.image.layer.v1.tar+zstd"]
        self.config = json.dumps({
            "architecture": arch, "os": "linux",
            "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin", "A=1"],
                       "WorkingDir": "/data", "User": "1000:1000"},
            "rootfs": {"type": "layers", "diff_ids": [sha(d) for d in self.diffs]},
        }, sort_keys=True).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": m, "digest": sha(b), "size": len(b)} for m, b in zip(self.media, self.blobs)],
        }).encode()

    def docker_manifest(self) -> bytes:
        """The same image as a Docker v2 schema2 manifest."""
        doc = json.loads(self.manifest)
        doc["mediaType"] = DOCKER_MANIFEST
        doc["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
        for layer in doc["layers"][:2]:
            layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        return json.dumps(doc).encode()

    def index(self, *others: "BuiltImage") -> bytes:
        ms = [{"mediaType": OCI_MANIFEST, "digest": sha(i.manifest), "size": len(i.manifest),
               "platform": {"os": "linux", "architecture": json.loads(i.config)["architecture"]}} for i in (*others, self)]
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    def __init__(self, user: str | None = None, password: str | None = None):
        self.dir = tempfile.mkdtemp(prefix="k8py-registry-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.auth = base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        cfg = [f"version: 0.1", "log:", "  level: error", "storage:", "  filesystem:", f"    rootdirectory: {self.dir}/data",
               "  delete:", "    enabled: true", "http:", f"  addr: 127.0.0.1:{self.port}"]
        if user:
            with open(f"{self.dir}/htpasswd", "w") as f:
                f.write(f"{user}:{crypt.crypt(password or '', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
            cfg += ["auth:", "  htpasswd:", "    realm: k8py-test", f"    path: {self.dir}/htpasswd"]
        with open(f"{self.dir}/config.yml", "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", f"{self.dir}/config.yml"],
                                     stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/log", "w"))
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.base + "/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401 with auth: it is up
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.1)

    def request(self, method: str, url: str, data: bytes | None = None, ctype: str | None = None) -> Any:
        req = urllib.request.Request(url if url.startswith("http") else self.base + url, data=data, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if self.auth:
            req.add_header("Authorization", "Basic " + self.auth)
        return urllib.request.urlopen(req, timeout=30)

    def push_blob(self, repo: str, data: bytes) -> None:
        loc = self.request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        loc = loc if loc.startswith("http") else self.base + loc
        self.request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + sha(data), data, "application/octet-stream")

    def push_manifest(self, repo: str, ref: str, data: bytes, ctype: str) -> None:
        self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, ctype)

    def push_image(self, repo: str, image: BuiltImage, tag: str | None = None) -> None:
        for b in [image.config, *image.blobs]:
            self.push_blob(repo, b)
        self.push_manifest(repo, tag or sha(image.manifest), image.manifest, OCI_MANIFEST)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return BuiltImage()


@pytest.fixture(scope="module")
def registry(image: BuiltImage) -> Iterator[Registry]:
    reg = Registry()
    try:
        arm = BuiltImage("arm64")
        reg.push_image("k8py/test", image, "plain")
        reg.push_image("k8py/test", arm)
        reg.push_manifest("k8py/test", "v1", image.index(arm), OCI_INDEX)
        reg.push_manifest("k8py/test", "docker", image.docker_manifest(), DOCKER_MANIFEST)
        yield reg
    finally:
        reg.close()


@pytest.fixture
def store() -> Iterator[ImageStore]:
    d = tempfile.mkdtemp(prefix="k8py-images-")
    try:
        yield ImageStore(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_unpacked(store: ImageStore, ref: str, image: BuiltImage) -> None:
    img = store.get(ref)
    assert img.id == sha(image.config)
    assert img.architecture == "amd64"
    assert img.config.entrypoint == ["/bin/sh", "-c"] and img.config.cmd == ["echo hi"]
    assert img.config.env == ["PATH=/bin", "A=1"] and img.config.working_dir == "/data" and img.config.user == "1000:1000"
    l1, l2, l3 = img.layer_dirs
    assert img.lowerdir == f"{l3}:{l2}:{l1}"
    assert os.readlink(f"{l1}/bin/sh") == "busybox"
    assert os.stat(f"{l1}/bin/busybox").st_mode & 0o777 == 0o755
    wh = os.lstat(f"{l2}/bin/ls")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(f"{l2}/data", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(f"{l2}/data/.wh..wh..opq")
    assert os.stat(f"{l2}/data/new.txt").st_uid == 1000
    assert os.stat(f"{l2}/etc/hosts").st_ino == os.stat(f"{l2}/etc/hosts2").st_ino
    with open(f"{l3}/tmp/z.txt") as f:
        assert f.read() == "zstd layer\n"


# -- unit tests ------------------------------------------------------------------------------------
def test_references() -> None:
    assert str(parse_reference("busybox")) == "docker.io/library/busybox:latest"
    assert str(parse_reference("index.docker.io/u/app:1")) == "docker.io/u/app:1"
    r = parse_reference("localhost:5000/a/b@sha256:" + "0" * 64)
    assert (r.domain, r.path, r.tag, r.object) == ("localhost:5000", "a/b", None, "sha256:" + "0" * 64)
    assert parse_reference("quay.io/x/y:v2").api_host == "quay.io"
    assert parse_reference("nginx").api_host == "registry-1.docker.io"
    for bad in ("", "UPPER/case", "a:b:c", "x@sha256"):
        with pytest.raises(InvalidReference):
            parse_reference(bad)


def test_www_authenticate() -> None:
    scheme, p = parse_www_authenticate('Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull"')
    assert scheme == "bearer" and p == {"realm": "https://auth.io/token", "service": "registry.io", "scope": "repository:a/b:pull"}
    assert parse_www_authenticate('Basic realm="x"') == ("basic", {"realm": "x"})


@root_only
def test_layer_refuses_escapes(store: ImageStore, tmp_path: Any) -> None:
    for entries in ([("file", "../evil", b"x")], [("sym", "up", "/tmp"), ("file", "up/evil", b"x")],
                    [("sym", "up", "../../.."), ("file", "up/evil", b"x")], [("link", "h", "../../etc/passwd")]):
        data = tar_bytes(entries)
        path = store.temp_path()
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(LayerError):
            store.add_layer(path, sha(data))
        assert not store.has_layer(sha(data))
    assert not os.path.exists("/tmp/evil")
    data = tar_bytes([("file", "a", b"1")])
    path = store.temp_path()
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(LayerError, match="diff ID mismatch"):
        store.add_layer(path, sha(b"other"))


# -- against a real registry -----------------------------------------------------------------------
@root_only
def test_pull_index_tag_and_digest(registry: Registry, image: BuiltImage, store: ImageStore) -> None:
    async def main() -> None:
        async with RegistryClient(store) as client:
            img = await client.pull(f"127.0.0.1:{registry.port}/k8py/test:v1")
            assert img.repo_digests == [f"127.0.0.1:{registry.port}/k8py/test@{sha(image.manifest)}"]
            again = await client.pull(f"127.0.0.1:{registry.port}/k8py/test@{sha(image.manifest)}")
            assert again.id == img.id
            await client.pull(f"127.0.0.1:{registry.port}/k8py/test:plain")
            docker = await client.pull(f"127.0.0.1:{registry.port}/k8py/test:docker")
            assert docker.id == img.id and len(docker.repo_digests) == 2
    asyncio.run(main())
    check_unpacked(store, f"127.0.0.1:{registry.port}/k8py/test:v1", image)
    assert os.listdir(os.path.join(store.root, "tmp")) == []
    assert len(os.listdir(os.path.join(store.root, "layers", "sha256"))) == 3
    assert store.get(f"127.0.0.1:{registry.port}/k8py/test@{sha(image.manifest)}").id == sha(image.config)

    # The layers make a working root with overlayfs, whiteouts included.
    with tempfile.TemporaryDirectory() as d:
        img = store.get(f"127.0.0.1:{registry.port}/k8py/test:v1")
        os.makedirs(f"{d}/m")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={img.lowerdir}", f"{d}/m"], check=True)
        try:
            assert not os.path.lexists(f"{d}/m/bin/ls") and os.path.lexists(f"{d}/m/bin/cat")
            assert sorted(os.listdir(f"{d}/m/data")) == ["new.txt"]
            out = subprocess.run(["chroot", f"{d}/m", "/bin/sh", "-c", "cat /tmp/z.txt /etc/hosts2"], capture_output=True, text=True)
            assert out.stdout == "zstd layer\n127.0.0.1 localhost\n", out.stderr
        finally:
            subprocess.run(["umount", f"{d}/m"], check=True)


async def _bearer_proxy(upstream: str, token: str, seen: list[str]) -> web.AppRunner:
    """A registry front that wants a bearer token (as Docker Hub does) and proxies to `upstream`."""
    async def token_handler(request: web.Request) -> web.Response:
        seen.append(f"token {request.query.get('service')} {request.query.get('scope')}")
        return web.json_response({"token": token})

    async def v2(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            realm = f"http://{request.host}/token"
            return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="test",scope="repository:k8py/test:pull"'})
        seen.append(request.path)
        async with aiohttp.ClientSession() as s:
            async with s.get(upstream + request.path_qs, headers={"Accept": request.headers.get("Accept", "*/*")}) as r:
                body = await r.read()
                return web.Response(status=r.status, body=body, headers={"Content-Type": r.headers.get("Content-Type", "")})

    app = web.Application()
    app.router.add_get("/token", token_handler)
    app.router.add_get("/v2/{tail:.*}", v2)
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


@root_only
def test_pull_through_mirror_with_bearer_token(registry: Registry, image: BuiltImage, store: ImageStore) -> None:
    async def main() -> None:
        seen: list[str] = []
        runner = await _bearer_proxy(registry.base, "s3cret", seen)
        port = free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            dead = f"http://127.0.0.1:{free_port()}"
            mirrors = {"docker.io": [dead, f"http://127.0.0.1:{port}"]}
            async with RegistryClient(store, mirrors=mirrors) as client:
                img = await client.pull("k8py/test:v1")
            assert img.repo_tags == ["docker.io/k8py/test:v1"]
            assert seen[0] == "token test repository:k8py/test:pull"
            assert any(p.startswith("/v2/k8py/test/blobs/") for p in seen)
        finally:
            await runner.cleanup()
    asyncio.run(main())
    check_unpacked(store, "k8py/test:v1", image)


@root_only
def test_basic_auth_registry(image: BuiltImage, store: ImageStore) -> None:
    reg = Registry("alice", "pa55")
    try:
        reg.push_image("private/app", image, "v1")
        ref = f"127.0.0.1:{reg.port}/private/app:v1"

        async def main() -> None:
            async with RegistryClient(store) as client:
                with pytest.raises(Unauthorized):
                    await client.pull(ref)
                with pytest.raises(Unauthorized):
                    await client.pull(ref, ("alice", "wrong"))
            async with RegistryClient(store, credentials={f"127.0.0.1:{reg.port}": ("alice", "pa55")}) as client:
                await client.pull(ref)
        asyncio.run(main())
        check_unpacked(store, ref, image)
    finally:
        reg.close()


# -- tarballs, list, remove ------------------------------------------------------------------------
def write_oci_layout(path: str, image: BuiltImage, name: str) -> None:
    idx = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(image.manifest),
                      "size": len(image.manifest), "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": idx}
    for b in [image.config, image.manifest, *image.blobs]:
        files["blobs/sha256/" + sha(b)[7:]] = b
    with tarfile.open(path, "w") as tar:
        for n, data in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_docker_save(path: str, image: BuiltImage, tag: str) -> None:
    cfg = sha(image.config)[7:] + ".json"
    layers = [f"{hashlib.sha256(d).hexdigest()}/layer.tar" for d in image.diffs]
    files = {cfg: image.config, "manifest.json": json.dumps([{"Config": cfg, "RepoTags": [tag], "Layers": layers}]).encode()}
    files.update(zip(layers, image.diffs))
    with tarfile.open(path, "w:gz") as tar:
        for n, data in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@root_only
def test_import_list_remove(image: BuiltImage, store: ImageStore, tmp_path: Any) -> None:
    write_oci_layout(f"{tmp_path}/oci.tar", image, "k8py/oci:1")
    write_docker_save(f"{tmp_path}/docker.tar.gz", image, "k8py/docker:1")

    async def main() -> None:
        [a] = await import_images(store, f"{tmp_path}/oci.tar", names=["busybox"])
        [b] = await import_images(store, f"{tmp_path}/docker.tar.gz")
        assert a.id == b.id == sha(image.config)
        rows = await list_images(store)
        assert len(rows) == 1
        assert rows[0]["repoTags"] == ["docker.io/k8py/docker:1", "docker.io/k8py/oci:1", "docker.io/library/busybox:latest"]
        assert rows[0]["repoDigests"] == [f"docker.io/k8py/oci@{sha(image.manifest)}", f"docker.io/library/busybox@{sha(image.manifest)}"]
        assert "docker.io/library/busybox" in format_table(rows)
        check_unpacked(store, "busybox", image)
        assert await remove_image(store, "k8py/oci:1") == ["untagged: docker.io/k8py/oci:1"]
        assert store.get("k8py/docker:1").id == a.id and len(os.listdir(f"{store.root}/layers/sha256")) == 3
        with pytest.raises(ImageNotFound):
            store.get("k8py/oci:1")
        assert await remove_image(store, a.id[7:19]) == [
            "untagged: docker.io/k8py/docker:1", "untagged: docker.io/library/busybox:latest", f"deleted: {a.id}"]
        assert await list_images(store) == []
        assert os.listdir(f"{store.root}/layers/sha256") == [] and os.listdir(f"{store.root}/blobs/sha256") == []
    asyncio.run(main())
