"""Unpack one image layer (a tar, plain, gzip or zstd) into a directory for overlayfs.

Each layer is unpacked on its own into an empty directory that later serves as
an overlayfs lowerdir, so OCI whiteouts become overlayfs' own markers:
`.wh.<name>` becomes a 0/0 character device `<name>`, and `.wh..wh..opq`
sets the xattr `trusted.overlay.opaque=y` on its directory. Ownership, modes,
mtimes, symlinks, hard links, devices and `SCHILY.xattr.*` xattrs are kept.
A member whose path (or whose hard-link target) would land outside the
directory, directly or through a symlink, is refused with `LayerError`.

Without root (the `process` runtime's machines) overlayfs is never used, and
neither device nodes nor `trusted.*` xattrs nor other owners can be made: the
OCI whiteout files (`.wh.<name>`, `.wh..wh..opq`) are kept as empty files for
the runtime's own union lookup, device nodes are skipped, ownership is left to
the unpacking user, and directories keep their owner's rwx so the store can
remove them again.

The uncompressed stream is hashed while it is read: `unpack_layer` returns its
sha256 (the layer's diff ID) so the caller checks it against the image config.
Blocking: call it through `asyncio.to_thread`.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from typing import IO

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(Exception):
    """A layer that cannot be unpacked safely or does not match its digest."""


class _HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hash.hexdigest()


def _open_decompressed(path: str) -> tuple[IO[bytes], subprocess.Popen[bytes] | None]:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb"), None
    if magic == ZSTD_MAGIC:
        try:
            import zstandard  # type: ignore[import-not-found]

            return zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), None
        except ImportError:
            pass
        if shutil.which("zstd") is None:
            raise LayerError("zstd layer but neither the zstandard module nor the zstd program is available")
        proc = subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        return proc.stdout, proc
    return open(path, "rb"), None


def _clean_name(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerError(f"path escapes the layer: {name!r}")
    return "/".join(parts)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


class _Unpacker:
    def __init__(self, dest: str):
        self.root = os.path.realpath(dest)
        self.privileged = os.geteuid() == 0
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []

    def _parent(self, rel: str) -> str:
        """The real path of rel's parent, created if missing, refused if outside the root."""
        parent_rel = os.path.dirname(rel)
        parent = os.path.join(self.root, parent_rel) if parent_rel else self.root
        real = os.path.realpath(parent)
        if not _inside(self.root, real):
            raise LayerError(f"path escapes the layer through a symlink: {rel!r}")
        if not os.path.isdir(real):
            if os.path.lexists(real):
                os.unlink(real)
            os.makedirs(real, 0o755, exist_ok=True)
        return real

    @staticmethod
    def _remove(path: str, keep_dir: bool = False) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            if not keep_dir:
                shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _clean_name(m.name)
        if not rel:
            self.dirs.append((self.root, m))
            return
        parent = self._parent(rel)
        base = os.path.basename(rel)
        if base == OPAQUE_WHITEOUT:
            if self.privileged:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            else:
                open(os.path.join(parent, base), "wb").close()
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
            self._remove(target)
            if self.privileged:
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            else:
                open(os.path.join(parent, base), "wb").close()
            return
        path = os.path.join(parent, base)
        if m.isdir():
            self._remove(path, keep_dir=True)
            os.makedirs(path, 0o700, exist_ok=True)
            self.dirs.append((path, m))
            self._xattrs(path, m)
            return
        self._remove(path)
        if m.isreg():
            src = tar.extractfile(m)
            assert src is not None
            with open(path, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.islnk():
            target_rel = _clean_name(m.linkname)
            target = os.path.join(self._parent(target_rel), os.path.basename(target_rel))
            if not os.path.lexists(target):
                raise LayerError(f"hard link {rel!r} to a missing file {m.linkname!r}")
            os.link(target, path, follow_symlinks=False)
            return
        elif m.ischr() or m.isblk():
            if not self.privileged:
                return  # only root may make device nodes; a container without root has no use for them
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(path, m.mode & 0o7777)
        else:
            return
        self._attrs(path, m)

    def _xattrs(self, path: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                try:
                    raw = value.encode("utf-8", "surrogateescape")
                    os.setxattr(path, key[len("SCHILY.xattr."):], raw, follow_symlinks=False)
                except OSError:
                    pass

    def _attrs(self, path: str, m: tarfile.TarInfo) -> None:
        if self.privileged:
            os.lchown(path, m.uid, m.gid)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
            self._xattrs(path, m)
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)

    def finish(self) -> None:
        # Directories last and deepest first, so writing into them does not change their mtimes.
        for path, m in reversed(self.dirs):
            if self.privileged:
                os.lchown(path, m.uid, m.gid)
                os.chmod(path, m.mode & 0o7777)
            else:
                os.chmod(path, (m.mode & 0o7777) | 0o700)
            os.utime(path, (m.mtime, m.mtime))


def unpack_layer(blob_path: str, dest: str) -> str:
    """Unpack the layer blob at `blob_path` into the directory `dest`; return its diff ID."""
    os.makedirs(dest, 0o755, exist_ok=True)
    raw, proc = _open_decompressed(blob_path)
    try:
        reader = _HashingReader(raw)
        unpacker = _Unpacker(dest)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for m in tar:
                    unpacker.member(tar, m)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise LayerError(f"bad layer {os.path.basename(blob_path)}: {e}") from e
        unpacker.finish()
        diff_id = reader.drain()
    finally:
        raw.close()
        rc = proc.wait() if proc is not None else 0
    if rc != 0:
        raise LayerError(f"zstd failed on {blob_path}")
    return diff_id


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()

