"""The image store: content-addressed blobs, unpacked layers and image records under one root.

    <root>/blobs/sha256/<hex>        manifests and configs (verified by digest on the way in)
    <root>/layers/sha256/<hex>/      one directory per layer diff ID, unpacked once with
                                     overlayfs whiteouts: an overlayfs lowerdir as it stands
    <root>/images/<hex>.json         one record per image, named by its config digest (the image ID)
    <root>/refs.json                 reference ("docker.io/library/busybox:latest") -> image ID
    <root>/tmp/                      downloads and unpacks in progress, renamed into place when done

Layers are keyed by diff ID (the digest of the uncompressed tar), so a layer
shared by several images, however they were obtained, is stored once. The
compressed layer blob is dropped once unpacked. Methods block (file I/O):
async callers use `asyncio.to_thread`, as `commands.py` does.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .layers import LayerError, sha256_file, unpack_layer
from .reference import InvalidReference, parse_reference


class ImageNotFound(LookupError):
    """No image answers to that reference or ID."""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config that a container's process needs."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    @classmethod
    def from_oci(cls, config: dict[str, Any]) -> "ImageConfig":
        c = config.get("config") or {}
        return cls(
            entrypoint=list(c.get("Entrypoint") or []),
            cmd=list(c.get("Cmd") or []),
            env=list(c.get("Env") or []),
            working_dir=c.get("WorkingDir") or "",
            user=c.get("User") or "",
            exposed_ports=sorted(c.get("ExposedPorts") or {}),
            labels=dict(c.get("Labels") or {}),
            stop_signal=c.get("StopSignal") or "",
        )


@dataclass(frozen=True)
class Image:
    """One stored image. `layer_dirs` runs bottom to top; `lowerdir` is overlayfs' order."""

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    config: ImageConfig
    diff_ids: list[str]
    layer_dirs: list[str]
    size: int
    os: str = "linux"
    architecture: str = "amd64"

    @property
    def lowerdir(self) -> str:
        """The `lowerdir=` value for mounting this image with overlayfs (topmost layer first)."""
        return ":".join(reversed(self.layer_dirs))


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"unsupported digest {digest!r}")
    return hexpart


class ImageStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._lock = threading.RLock()
        for sub in ("blobs/sha256", "layers/sha256", "images", "tmp"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def temp_path(self, prefix: str = "dl-") -> str:
        fd, path = tempfile.mkstemp(prefix=prefix, dir=os.path.join(self.root, "tmp"))
        os.close(fd)
        return path

    def put_blob(self, digest: str, data: bytes) -> str:
        """Store `data` under `digest` after checking that it hashes to it."""
        tmp = self.temp_path()
        with open(tmp, "wb") as f:
            f.write(data)
        return self.commit_blob(tmp, digest)

    def commit_blob(self, tmp_path: str, digest: str) -> str:
        """Move a downloaded file into the store if it matches `digest` (else delete it and raise)."""
        actual = sha256_file(tmp_path)
        if actual != digest:
            os.unlink(tmp_path)
            raise LayerError(f"digest mismatch: expected {digest}, got {actual}")
        path = self.blob_path(digest)
        os.replace(tmp_path, path)
        return path

    # -- layers ------------------------------------------------------------------------------
    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.root, "layers", "sha256", _hex(diff_id))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_dir(diff_id))

    def add_layer(self, blob_path: str, diff_id: str, remove_blob: bool = True) -> str:
        """Unpack a (possibly compressed) layer file as `diff_id`; return its directory."""
        final = self.layer_dir(diff_id)
        if os.path.isdir(final):
            if remove_blob:
                os.unlink(blob_path)
            return final
        work = tempfile.mkdtemp(prefix="layer-", dir=os.path.join(self.root, "tmp"))
        try:
            got = unpack_layer(blob_path, work)
            if got != diff_id:
                raise LayerError(f"layer diff ID mismatch: expected {diff_id}, got {got}")
            os.chmod(work, 0o755)
            try:
                os.rename(work, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
        finally:
            if os.path.lexists(work):
                shutil.rmtree(work, ignore_errors=True)
            if remove_blob and os.path.exists(blob_path):
                os.unlink(blob_path)
        return final

    # -- images ------------------------------------------------------------------------------
    def _refs(self) -> dict[str, str]:
        try:
            with open(os.path.join(self.root, "refs.json")) as f:
                refs: dict[str, str] = json.load(f)
                return refs
        except FileNotFoundError:
            return {}

    def _write_json(self, path: str, obj: Any) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def _record_path(self, image_id: str) -> str:
        return os.path.join(self.root, "images", _hex(image_id) + ".json")

    def put_image(self, references: list[str], config_digest: str, manifest_digest: str | None = None) -> Image:
        """Record an image whose config blob and layers are already stored; tag it with `references`."""
        config = json.loads(self.read_blob(config_digest))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        missing = [d for d in diff_ids if not self.has_layer(d)]
        if missing:
            raise LayerError(f"layers missing from the store: {missing}")
        with self._lock:
            path = self._record_path(config_digest)
            try:
                with open(path) as f:
                    record = json.load(f)
            except FileNotFoundError:
                record = {"id": config_digest, "repoDigests": [], "manifests": []}
            names = [str(parse_reference(r)) for r in references]
            if manifest_digest:
                if manifest_digest not in record["manifests"]:
                    record["manifests"].append(manifest_digest)
                for n in names:
                    rd = f"{parse_reference(n).name}@{manifest_digest}"
                    if rd not in record["repoDigests"]:
                        record["repoDigests"].append(rd)
            record["size"] = sum(_du(self.layer_dir(d)) for d in diff_ids)
            self._write_json(path, record)
            refs = self._refs()
            for n in names:
                if parse_reference(n).digest is None:
                    refs[n] = config_digest
            self._write_json(os.path.join(self.root, "refs.json"), refs)
        return self.get(config_digest)

    def _load(self, image_id: str, refs: dict[str, str]) -> Image:
        with open(self._record_path(image_id)) as f:
            record = json.load(f)
        config = json.loads(self.read_blob(image_id))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        dirs = [self.layer_dir(d) for d in diff_ids]
        size = int(record.get("size") or 0)
        return Image(
            id=image_id,
            repo_tags=sorted(r for r, i in refs.items() if i == image_id),
            repo_digests=list(record.get("repoDigests") or []),
            config=ImageConfig.from_oci(config),
            diff_ids=diff_ids,
            layer_dirs=dirs,
            size=size,
            os=config.get("os", "linux"),
            architecture=config.get("architecture", "amd64"),
        )

    def resolve(self, ref: str) -> str:
        """The image ID for a reference, a repo digest, a full ID or a unique ID prefix."""
        with self._lock:
            refs = self._refs()
            ids = [n[:-5] for n in os.listdir(os.path.join(self.root, "images")) if n.endswith(".json")]
            bare = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
            if len(bare) >= 4 and all(c in "0123456789abcdef" for c in bare):
                hits = [i for i in ids if i.startswith(bare)]
                if len(hits) == 1:
                    return "sha256:" + hits[0]
            try:
                parsed = parse_reference(ref)
            except InvalidReference:
                raise ImageNotFound(ref) from None
            if parsed.digest is None:
                if str(parsed) in refs:
                    return refs[str(parsed)]
                raise ImageNotFound(ref)
            wanted = f"{parsed.name}@{parsed.digest}"
            for i in ids:
                img = self._load("sha256:" + i, refs)
                if wanted in img.repo_digests:
                    return img.id
            raise ImageNotFound(ref)

    def get(self, ref: str) -> Image:
        """The image for `ref` (see `resolve`); raises ImageNotFound."""
        with self._lock:
            return self._load(self.resolve(ref), self._refs())

    def find(self, ref: str) -> Image | None:
        try:
            return self.get(ref)
        except ImageNotFound:
            return None

    def list(self) -> list[Image]:
        with self._lock:
            refs = self._refs()
            names = sorted(os.listdir(os.path.join(self.root, "images")))
            return [self._load("sha256:" + n[:-5], refs) for n in names if n.endswith(".json")]

    def remove(self, ref: str, gc_min_age: float = 0.0) -> list[str]:
        """Untag `ref`; delete the image when no tag is left (or `ref` names it by ID or digest).

        Returns what was removed ("untagged: ..." / "deleted: ...") and collects unused layers
        (see `gc` for `gc_min_age`)."""
        out: list[str] = []
        with self._lock:
            image_id = self.resolve(ref)
            refs = self._refs()
            by_tag = False
            try:
                p = parse_reference(ref)
                by_tag = p.digest is None and refs.get(str(p)) == image_id
            except InvalidReference:
                pass
            tags = [str(parse_reference(ref))] if by_tag else [r for r, i in refs.items() if i == image_id]
            for t in tags:
                refs.pop(t, None)
                out.append(f"untagged: {t}")
            self._write_json(os.path.join(self.root, "refs.json"), refs)
            if image_id not in refs.values():
                os.unlink(self._record_path(image_id))
                out.append(f"deleted: {image_id}")
                self.gc(gc_min_age)
        return out

    def gc(self, min_age: float = 0.0) -> list[str]:
        """Delete layers and blobs that no image record uses; return what went.

        A pull or import under way has blobs and layers without a record yet: within one
        process do not run this meanwhile; `min_age` spares what was stored (ctime) in the
        last `min_age` seconds, for an import by another process (`k8py images import`)."""
        removed: list[str] = []
        cutoff = time.time() - min_age

        def young(path: str) -> bool:
            try:
                return min_age > 0 and os.lstat(path).st_ctime > cutoff
            except FileNotFoundError:
                return True
        with self._lock:
            used_layers: set[str] = set()
            used_blobs: set[str] = set()
            for n in os.listdir(os.path.join(self.root, "images")):
                if not n.endswith(".json"):
                    continue
                with open(os.path.join(self.root, "images", n)) as f:
                    record = json.load(f)
                used_blobs.add(_hex(record["id"]))
                used_blobs.update(_hex(m) for m in record.get("manifests") or [])
                config = json.loads(self.read_blob(record["id"]))
                used_layers.update(_hex(d) for d in (config.get("rootfs") or {}).get("diff_ids") or [])
            for h in os.listdir(os.path.join(self.root, "layers", "sha256")):
                if h not in used_layers and not young(os.path.join(self.root, "layers", "sha256", h)):
                    shutil.rmtree(os.path.join(self.root, "layers", "sha256", h))
                    removed.append("layer sha256:" + h)
            for h in os.listdir(os.path.join(self.root, "blobs", "sha256")):
                if h not in used_blobs and not young(os.path.join(self.root, "blobs", "sha256", h)):
                    os.unlink(os.path.join(self.root, "blobs", "sha256", h))
                    removed.append("blob sha256:" + h)
        return removed

    def clean_tmp(self) -> None:
        """Drop unfinished downloads and unpacks (call at start-up, before any pull)."""
        tmp = os.path.join(self.root, "tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp, exist_ok=True)


def _du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
