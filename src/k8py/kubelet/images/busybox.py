"""The test and demo image: busybox and httpd built from Debian's busybox-static, off-line.

    from k8py.kubelet.images.busybox import build_busybox_archive
    info = build_busybox_archive("/tmp/busybox.tar")      # an OCI image layout tarball
    info["docker.io/library/httpd:latest"]               # -> that image's manifest digest

One gzip layer holds `/bin/busybox`, a symlink per applet (`busybox --list-full`),
`/etc/passwd` and `/etc/group` (root and nobody), `/tmp` (1777), `/var/www` and
`/usr/local/apache2/htdocs/index.html` with the page the official httpd image
serves. Two image configs share that layer: `busybox:latest` (Cmd `sh`) and
`httpd:latest` (busybox's httpd in the foreground on port 80, serving that
page), so `k8py images import` gives the seeds' examples their images without
a network. Every mtime, owner and the gzip header are fixed, so the same busybox
binary always gives the same digests (a registry push gives the same manifest
digests too). `k8py images build-busybox OUT` calls this.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import tarfile
from typing import Any

from .manifest import OCI_INDEX, OCI_MANIFEST

DEFAULT_BUSYBOX = "/usr/bin/busybox"
MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
INDEX_HTML = b"<html><body><h1>It works!</h1></body></html>\n"
HTDOCS = "/usr/local/apache2/htdocs"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n"

# name -> (Cmd, extra config fields)
IMAGES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "docker.io/library/busybox:latest": (["sh"], {}),
    "docker.io/library/httpd:latest": (
        ["httpd", "-f", "-v", "-p", "80", "-h", HTDOCS],
        {"ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/usr/local/apache2"},
    ),
}


class BusyboxError(Exception):
    """busybox-static is missing or does not list its applets."""


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}.get(m, m)


def _applets(busybox: str) -> list[str]:
    try:
        out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise BusyboxError(f"{busybox}: cannot list applets ({e}); install busybox-static") from e
    names = sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})
    if "bin/sh" not in names:
        raise BusyboxError(f"{busybox}: no sh applet; is it busybox?")
    return [n for n in names if n != "bin/busybox"]


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def layer_tar(busybox: str = DEFAULT_BUSYBOX) -> bytes:
    """The uncompressed layer (its sha256 is the diff ID)."""
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = _applets(busybox)
    files: dict[str, bytes] = {
        "bin/busybox": binary,
        "etc/passwd": PASSWD,
        "etc/group": GROUP,
        "etc/hostname": b"busybox\n",
        HTDOCS.lstrip("/") + "/index.html": INDEX_HTML,
        "var/www/index.html": INDEX_HTML,
    }
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "home", "var", "var/www", "proc",
            "sys", "dev", "usr/local", "usr/local/apache2", HTDOCS.lstrip("/")}
    for path in [*files, *applets]:
        parent = os.path.dirname(path)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries: list[tuple[str, str]] = [(d, "dir") for d in dirs] + [(f, "file") for f in files]
        entries += [(a, "link") for a in applets if a not in files and a not in dirs]
        for path, kind in sorted(entries):
            if kind == "dir":
                tar.addfile(_info(path + "/", tarfile.DIRTYPE, 0o1777 if path == "tmp" else 0o700 if path == "root" else 0o755))
            elif kind == "file":
                data = files[path]
                info = _info(path, tarfile.REGTYPE, 0o755 if path == "bin/busybox" else 0o644)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info = _info(path, tarfile.SYMTYPE, 0o777)
                info.linkname = "/bin/busybox"
                tar.addfile(info)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as z:
        z.write(data)
    return out.getvalue()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_busybox_blobs(busybox: str = DEFAULT_BUSYBOX) -> tuple[dict[str, bytes], dict[str, str]]:
    """(blobs by digest, image name -> manifest digest): the content of the archive."""
    diff = layer_tar(busybox)
    layer = _gzip(diff)
    blobs = {_digest(layer): layer}
    names: dict[str, str] = {}
    for name, (cmd, extra) in IMAGES.items():
        config = {
            "architecture": _arch(), "os": "linux", "created": CREATED,
            "config": {"Env": [PATH_ENV], "Cmd": cmd, **extra},
            "rootfs": {"type": "layers", "diff_ids": [_digest(diff)]},
            "history": [{"created": CREATED, "created_by": f"k8py images build-busybox ({os.path.basename(busybox)})"}],
        }
        cfg = _json(config)
        manifest = _json({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(cfg), "size": len(cfg)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(layer), "size": len(layer)}],
        })
        blobs[_digest(cfg)] = cfg
        blobs[_digest(manifest)] = manifest
        names[name] = _digest(manifest)
    return blobs, names


def build_busybox_archive(out_path: str, busybox: str = DEFAULT_BUSYBOX) -> dict[str, str]:
    """Write the OCI layout tarball to `out_path`; return image name -> manifest digest."""
    blobs, names = build_busybox_blobs(busybox)
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(blobs[d]), "platform": {"os": "linux", "architecture": _arch()},
         "annotations": {"io.containerd.image.name": n, "org.opencontainers.image.ref.name": n.rsplit(":", 1)[1]}}
        for n, d in names.items()]})
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    files.update({"blobs/sha256/" + d[7:]: b for d, b in sorted(blobs.items())})
    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        for name, data in files.items():
            info = _info(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out_path)
    return names


__all__ = ["BusyboxError", "DEFAULT_BUSYBOX", "IMAGES", "INDEX_HTML", "build_busybox_archive", "build_busybox_blobs", "layer_tar"]
