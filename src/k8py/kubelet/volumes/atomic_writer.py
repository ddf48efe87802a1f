"""kube's AtomicWriter: publish a set of files so readers never see a half-update.

Usage::

    w = AtomicWriter("/var/lib/k8py/kubelet/pods/<uid>/volumes/kubernetes.io~configmap/cfg")
    changed = w.write({"game.properties": FileProjection(b"...", 0o644),
                       "ui/colour": FileProjection(b"red", 0o400)})

Layout (the same as kube's, so tools that know it work here)::

    <target>/..2026_01_31_12_00_00.123456789/   the payload, written completely first
    <target>/..data -> ..2026_01_31_12_00_00.123456789
    <target>/game.properties -> ..data/game.properties
    <target>/ui -> ..data/ui

An update writes a new timestamped directory, points ``..data_tmp`` at it and
renames that over ``..data``: one ``rename(2)``, so a reader going through the
user-visible symlinks sees either the old payload or the new one.  Then the
user-visible links of paths that went away are removed, and the old directory.
Nothing is written when the payload is unchanged (same paths, same bytes).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DATA_DIR = "..data"
DATA_DIR_TMP = "..data_tmp"
MAX_FILE_NAME_LENGTH = 255
MAX_PATH_LENGTH = 4096


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644
    uid: int = -1          # -1: leave the owner as written (the kubelet's)
    gid: int = -1


class PayloadError(ValueError):
    """A payload path is not acceptable (absolute, '..', too long)."""


def validate_path(target: str) -> None:
    """kube's validatePath, with its messages."""
    if not target:
        raise PayloadError(f'invalid path: must not be empty: "{target}"')
    if target.startswith("/"):
        raise PayloadError(f"invalid path: must be relative path: {target}")
    if len(target) > MAX_PATH_LENGTH:
        raise PayloadError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    items = target.split("/")
    for item in items:
        if item == "..":
            raise PayloadError(f"invalid path: must not contain '..': {target}")
        if len(item) > MAX_FILE_NAME_LENGTH:
            raise PayloadError(
                f"invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise PayloadError(f"invalid path: must not start with '..': {target}")


def _clean(path: str) -> str:
    return os.path.normpath(path)


def _mkdtemp(parent: str, prefix: str) -> str:
    """Go's os.MkdirTemp: the prefix and a random decimal number (kube's ..<time>.<n>)."""
    while True:
        path = os.path.join(parent, prefix + str(random.getrandbits(32)))
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _walk_files(base: str) -> set[str]:
    """Relative paths of every file (not directory) under ``base``."""
    found: set[str] = set()
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            found.add(os.path.relpath(os.path.join(dirpath, f), base))
    return found


class AtomicWriter:
    """Writes payloads into ``target_dir`` with kube's ``..data`` symlink scheme."""

    def __init__(self, target_dir: str) -> None:
        self.target_dir = target_dir

    def current_dir(self) -> str | None:
        """The timestamped directory ``..data`` points at now, or None."""
        try:
            name = os.readlink(os.path.join(self.target_dir, DATA_DIR))
        except (FileNotFoundError, OSError):
            return None
        return os.path.join(self.target_dir, name)

    def write(self, payload: Mapping[str, FileProjection],
              set_perms: Callable[[str], None] | None = None) -> bool:
        """Publish ``payload``; return True if it was written (False: already current).

        ``set_perms(ts_dir)`` runs on the new directory before it is published
        (fsGroup ownership), as kube's setPerms callback.
        """
        cleaned: dict[str, FileProjection] = {}
        for path, proj in payload.items():
            validate_path(path)
            cleaned[_clean(path)] = proj
        os.makedirs(self.target_dir, exist_ok=True)

        old_ts = self.current_dir()
        if old_ts is not None and not os.path.isdir(old_ts):
            old_ts = None
        old_paths = _walk_files(old_ts) if old_ts else set()
        to_remove = old_paths - set(cleaned)
        if old_ts is not None and not to_remove and not self._should_write(cleaned, old_ts):
            # content is current; make sure the user-visible links exist (a crash
            # between publishing and linking would leave them missing)
            self._create_user_visible(cleaned)
            return False

        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        new_ts = _mkdtemp(self.target_dir, stamp)
        try:
            os.chmod(new_ts, 0o755)
            self._write_payload(cleaned, new_ts)
            if set_perms is not None:
                set_perms(new_ts)
            self._create_user_visible(cleaned)
            tmp_link = os.path.join(self.target_dir, DATA_DIR_TMP)
            try:
                os.unlink(tmp_link)
            except FileNotFoundError:
                pass
            os.symlink(os.path.basename(new_ts), tmp_link)
            os.rename(tmp_link, os.path.join(self.target_dir, DATA_DIR))
        except BaseException:
            shutil.rmtree(new_ts, ignore_errors=True)
            raise
        self._remove_user_visible(to_remove, cleaned)
        if old_ts is not None:
            shutil.rmtree(old_ts, ignore_errors=True)
        return True

    @staticmethod
    def _should_write(payload: Mapping[str, FileProjection], old_ts: str) -> bool:
        for path, proj in payload.items():
            try:
                with open(os.path.join(old_ts, path), "rb") as f:
                    if f.read() != proj.data:
                        return True
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return True
        return False

    @staticmethod
    def _write_payload(payload: Mapping[str, FileProjection], ts_dir: str) -> None:
        for path, proj in payload.items():
            full = os.path.join(ts_dir, path)
            os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, proj.mode & 0o7777)
            try:
                os.write(fd, proj.data)
            finally:
                os.close(fd)
            os.chmod(full, proj.mode & 0o7777)          # past the umask
            if proj.uid != -1 or proj.gid != -1:
                os.chown(full, proj.uid, proj.gid)

    def _create_user_visible(self, payload: Mapping[str, FileProjection]) -> None:
        """One symlink per top-level name: ``name -> ..data/name``."""
        for top in {p.split("/", 1)[0] for p in payload}:
            link = os.path.join(self.target_dir, top)
            if not os.path.lexists(link):
                os.symlink(os.path.join(DATA_DIR, top), link)

    def _remove_user_visible(self, removed: set[str], payload: Mapping[str, FileProjection]) -> None:
        keep = {p.split("/", 1)[0] for p in payload}
        for top in {p.split("/", 1)[0] for p in removed} - keep:
            link = os.path.join(self.target_dir, top)
            if os.path.islink(link):
                os.unlink(link)
