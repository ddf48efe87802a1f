"""Import images from a tarball: an OCI image layout archive or a `docker save` archive.

An OCI layout has `oci-layout`, `index.json` and `blobs/<algo>/<hex>`; each
entry of index.json (nested indexes choose linux/amd64) is an image, named by
its `org.opencontainers.image.ref.name` or `io.containerd.image.name`
annotation. A docker archive has `manifest.json` listing Config, RepoTags and
Layers (paths inside the archive: `<id>/layer.tar` or, since Docker 25,
`blobs/sha256/<hex>`). The archive itself may be plain or gzip-compressed. Layers are verified against the
config's diff IDs while unpacking. Blocking: call through `asyncio.to_thread`.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from typing import Any

from .manifest import DEFAULT_PLATFORM, INDEX_TYPES, ManifestError, choose_platform, media_type
from .reference import InvalidReference, parse_reference
from .store import Image, ImageStore

REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


class ArchiveError(Exception):
    """A tarball that is neither an OCI layout nor a docker archive, or is incomplete."""


def _clean(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


class _Archive:
    def __init__(self, tar: tarfile.TarFile, store: ImageStore):
        self.tar = tar
        self.store = store
        self.members = {_clean(m.name): m for m in tar.getmembers() if m.isfile() or m.islnk()}

    def has(self, name: str) -> bool:
        return name in self.members

    def read(self, name: str) -> bytes:
        f = self.open(name)
        return f.read()

    def open(self, name: str) -> Any:
        m = self.members.get(name)
        f = self.tar.extractfile(m) if m is not None else None
        if f is None:
            raise ArchiveError(f"missing from the archive: {name}")
        return f

    def copy_out(self, name: str) -> str:
        tmp = self.store.temp_path("import-")
        with self.open(name) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return tmp

    def blob_name(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        return f"blobs/{algo}/{hexpart}"

    def store_config(self, name: str, digest: str | None = None) -> str:
        data = self.read(name)
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest and digest != actual:
            raise ArchiveError(f"config digest mismatch: expected {digest}, got {actual}")
        self.store.put_blob(actual, data)
        return actual

    def store_layers(self, config_digest: str, layer_names: list[str]) -> None:
        config = json.loads(self.store.read_blob(config_digest))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layer_names):
            raise ArchiveError(f"{len(layer_names)} layers but {len(diff_ids)} diff IDs in the config")
        for name, diff_id in zip(layer_names, diff_ids):
            if not self.store.has_layer(diff_id):
                self.store.add_layer(self.copy_out(name), diff_id)


def _names(annotations: dict[str, str], extra: list[str]) -> list[str]:
    names: list[str] = []
    for key in REF_ANNOTATIONS:
        value = annotations.get(key)
        if not value:
            continue
        try:
            names.append(str(parse_reference(value)))
            break
        except InvalidReference:
            continue
    return names + [n for n in extra if n not in names]


def _import_oci(a: _Archive, extra: list[str], platform: tuple[str, str]) -> list[Image]:
    index = json.loads(a.read("index.json"))
    images: list[Image] = []
    for desc in index.get("manifests") or []:
        digest, annotations = desc["digest"], dict(desc.get("annotations") or {})
        doc = json.loads(a.read(a.blob_name(digest)))
        while media_type(doc, desc.get("mediaType")) in INDEX_TYPES:
            desc = choose_platform(doc, platform)
            digest = desc["digest"]
            doc = json.loads(a.read(a.blob_name(digest)))
        raw = a.read(a.blob_name(digest))
        config_digest = a.store_config(a.blob_name(doc["config"]["digest"]), doc["config"]["digest"])
        a.store_layers(config_digest, [a.blob_name(layer["digest"]) for layer in doc.get("layers") or []])
        a.store.put_blob(digest, raw)
        names = _names(annotations, extra)
        images.append(a.store.put_image(names, config_digest, digest))
    return images


def _import_docker(a: _Archive, extra: list[str]) -> list[Image]:
    images: list[Image] = []
    for entry in json.loads(a.read("manifest.json")):
        config_digest = a.store_config(entry["Config"])
        a.store_layers(config_digest, list(entry.get("Layers") or []))
        names = [str(parse_reference(t)) for t in entry.get("RepoTags") or []]
        images.append(a.store.put_image(names + [n for n in extra if n not in names], config_digest))
    return images


def import_archive(store: ImageStore, path: str, names: list[str] | None = None, platform: tuple[str, str] = DEFAULT_PLATFORM) -> list[Image]:
    """Import every image in the tarball at `path`; `names` adds references to each one."""
    extra = [str(parse_reference(n)) for n in names or []]
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.TarError as e:
        raise ArchiveError(f"{path}: not a tar archive ({str(e).splitlines()[0].rstrip(':')})") from e
    with tar:
        a = _Archive(tar, store)
        if a.has("index.json") and a.has("oci-layout"):
            if a.has("manifest.json"):  # docker 25+ writes both; manifest.json carries the tags
                return _import_docker(a, extra)
            return _import_oci(a, extra, platform)
        if a.has("manifest.json"):
            return _import_docker(a, extra)
    raise ArchiveError(f"{path}: neither an OCI image layout nor a docker archive")


__all__ = ["ArchiveError", "ManifestError", "import_archive"]
