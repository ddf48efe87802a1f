"""The kubelet's image manager: pull policy, imagePullSecrets, back-off, coalesced pulls, image GC.

    mgr = ImageManager(store, mirrors=parse_registry_mirrors(["docker.io=http://127.0.0.1:5000"]),
                       insecure=["registry.lan:5000"])
    policy = container.get("imagePullPolicy") or default_pull_policy(container["image"])
    try:
        image = await mgr.ensure_image(container["image"], policy, pull_secrets=secrets,
                                       backoff_key=f"{pod_uid}_{container['image']}", on_event=record)
    except ImagePullError as e:
        waiting(reason=e.reason, message=e.message)   # ErrImagePull, ImagePullBackOff, ...
    await mgr.garbage_collect(in_use={c.image_id for c in running})   # every few minutes
    await mgr.close()

This is kube's `pkg/kubelet/images` in small:

- **Policy** (`EnsureImageExists`): `Never` uses the stored image or fails with
  ErrImageNeverPull; `IfNotPresent` pulls only when absent; `Always` pulls every
  time (a pull of an image whose layers are stored only fetches its manifest).
  Unlike kube, an `Always` pull that reaches no registry at all (off-line) uses
  the stored image, with a Warning event, so imported images run without a
  network (`offline_fallback=False` restores kube's failure); for 30 s after
  that the registry is not asked again for stored images, so pods start fast.
  `default_pull_policy` is the API's defaulting: Always for `:latest` or no tag,
  else IfNotPresent.
- **Credentials** (`credentialprovider.DockerKeyring`): the Secrets of type
  kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg become a keyring
  whose keys are registry URLs (scheme dropped, `/v1/` and `/v2/` paths mean the
  host, `*` globs per host label, a path must prefix the image's); the most
  specific keys come first, `index.docker.io` answers for Docker Hub images, and
  each matching credential is tried in turn, as kube's puller does. Without a
  match the client's node-wide credentials (or none) are used.
- **Back-off** (`flowcontrol.Backoff`): a failed pull starts a back-off for its
  key (kube uses `<podUID>_<image>`; the default key is the image) of 10 s,
  doubling to 5 min; while it lasts `ensure_image` fails at once with
  ImagePullBackOff without touching the registry. An entry idle for twice the
  maximum is forgotten; a successful pull resets it.
- **Coalescing**: concurrent pulls of one reference with the same credentials
  share one registry pull; `max_parallel_pulls` bounds distinct pulls (kube's
  `serializeImagePulls` is `max_parallel_pulls=1`).
- **Image GC** (`realImageGCManager`): each image is recorded when first seen and
  whenever it is in use; when the filesystem holding the store is at or above
  `high_percent` used, unused images older than `min_age` go, least recently
  used first, until usage is back to `low_percent`. GC excludes pulls while it
  removes (the store's own GC must not see a pull's half-written blobs).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import json
import logging
import os
import time
from dataclasses import dataclass, field
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from .layers import LayerError
from .manifest import ManifestError
from .reference import InvalidReference, parse_reference
from .registry import Credentials, NotFound, RegistryClient, RegistryError, Unauthorized, Unreachable
from .store import Image, ImageNotFound, ImageStore

log = logging.getLogger(__name__)

# kube's reasons (pkg/kubelet/images/types.go) and event reasons (pkg/kubelet/events)
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"
EVENT_PULLING, EVENT_PULLED, EVENT_FAILED, EVENT_BACKOFF = "Pulling", "Pulled", "Failed", "BackOff"
EVENT_INSPECT_FAILED = "InspectFailed"
PULL_ALWAYS, PULL_IF_NOT_PRESENT, PULL_NEVER = "Always", "IfNotPresent", "Never"
DEFAULT_DOCKER_KEY = "index.docker.io"
STORE_GC_MIN_AGE = 600.0  # unreferenced blobs this young may belong to an import by `k8py images import`
UNREACHABLE_HOLD = 30.0  # seconds an unreachable registry is not asked again for images already stored

EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


class ImagePullError(Exception):
    """Why a container cannot have its image: `reason` is the container's waiting reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def default_pull_policy(image: str) -> str:
    """The API's default imagePullPolicy: Always for `:latest` or no tag (without a digest), else IfNotPresent."""
    try:
        ref = parse_reference(image)
    except InvalidReference:
        return PULL_IF_NOT_PRESENT
    return PULL_ALWAYS if ref.digest is None and ref.tag == "latest" else PULL_IF_NOT_PRESENT


# -- credentials from imagePullSecrets ---------------------------------------------------------

def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def _secret_config(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The `auths` of one Secret (dockerconfigjson or the older dockercfg), {} when it holds none."""
    data = dict(secret.get("data") or {})
    string_data = dict(secret.get("stringData") or {})

    def value(key: str) -> str | None:
        if key in string_data:
            return str(string_data[key])
        if key in data:
            return _b64(str(data[key])).decode("utf-8", "replace")
        return None

    kind = secret.get("type") or ""
    raw = value(".dockerconfigjson")
    if raw is not None and kind in ("kubernetes.io/dockerconfigjson", ""):
        try:
            return dict(json.loads(raw).get("auths") or {})
        except (ValueError, AttributeError):
            return {}
    raw = value(".dockercfg")
    if raw is not None and kind in ("kubernetes.io/dockercfg", ""):
        try:
            return dict(json.loads(raw))
        except (ValueError, TypeError):
            return {}
    return {}


def _entry_credentials(entry: Mapping[str, Any]) -> Credentials | None:
    """username/password, or the `auth` field ("user:password" in base64) which wins, as in kube."""
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        u, sep, p = _b64(str(entry["auth"])).decode("utf-8", "replace").partition(":")
        if sep:
            user, password = u, p
    return (user, password) if user or password else None


def _key(location: str) -> str:
    """A keyring key: the URL without scheme, `/v1/` or `/v2/` paths reduced to the host."""
    value = location if location.startswith(("http://", "https://")) else "https://" + location
    parts = urlsplit(value)
    path = parts.path
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]
    return parts.netloc + path if path and path != "/" else parts.netloc


def _host_port(netloc: str) -> tuple[str, str]:
    host, sep, port = netloc.rpartition(":")
    if sep and port.isdigit():
        return host, port
    return netloc, ""


def urls_match(glob: str, target: str) -> bool:
    """kube's URLsMatchStr: host labels glob-match one to one, ports equal, the glob's path prefixes the target's."""
    g, t = urlsplit("https://" + glob), urlsplit("https://" + target)
    (gh, gp), (th, tp) = _host_port(g.netloc), _host_port(t.netloc)
    if gp != tp:
        return False
    gparts, tparts = gh.split("."), th.split(".")
    if len(gparts) != len(tparts) or not t.path.startswith(g.path):
        return False
    return all(fnmatch.fnmatchcase(tpart, gpart) for gpart, tpart in zip(gparts, tparts))


def _default_registry_match(image: str) -> bool:
    first, sep, _ = image.partition("/")
    if not first:
        return False
    if not sep or first in ("docker.io", "index.docker.io"):
        return True
    return not any(c in first for c in ".:")


class Keyring:
    """Credentials from pull secrets, looked up per image repository as kube's BasicDockerKeyring does."""

    def __init__(self, secrets: Iterable[Mapping[str, Any]] = ()):
        self.creds: dict[str, list[Credentials]] = {}
        for secret in secrets:
            for location, entry in _secret_config(secret).items():
                if not isinstance(entry, Mapping):
                    continue
                c = _entry_credentials(entry)
                if c is None:
                    continue
                k = _key(location)
                if c not in self.creds.setdefault(k, []):
                    self.creds[k].append(c)
        self.index = sorted(self.creds, reverse=True)  # more specific paths first

    def lookup(self, repository: str) -> list[Credentials]:
        """Credentials for `repository` ("docker.io/library/busybox", "127.0.0.1:5000/app"), best first."""
        found: list[Credentials] = []
        for k in self.index:
            if urls_match(k, repository):
                found += [c for c in self.creds[k] if c not in found]
        if not found and _default_registry_match(repository):
            found = list(self.creds.get(DEFAULT_DOCKER_KEY, []))
        return found


# -- back-off ---------------------------------------------------------------------------------

@dataclass
class _BackoffEntry:
    delay: float
    last_update: float


class Backoff:
    """client-go's flowcontrol.Backoff: per-key delays doubling from `initial` to `maximum`."""

    def __init__(self, initial: float = 10.0, maximum: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.initial, self.maximum, self.clock = initial, maximum, clock
        self.entries: dict[str, _BackoffEntry] = {}

    def _expired(self, e: _BackoffEntry, now: float) -> bool:
        return now - e.last_update > 2 * self.maximum

    def next(self, key: str) -> float:
        """Record a failure for `key`; return the delay now in force."""
        now = self.clock()
        e = self.entries.get(key)
        if e is None or self._expired(e, now):
            e = self.entries[key] = _BackoffEntry(self.initial, now)
        else:
            e.delay, e.last_update = min(e.delay * 2, self.maximum), now
        return e.delay

    def in_backoff(self, key: str) -> bool:
        """Whether the delay set by the last failure has not yet passed."""
        e = self.entries.get(key)
        now = self.clock()
        if e is None or self._expired(e, now):
            return False
        return now - e.last_update < e.delay

    def reset(self, key: str) -> None:
        self.entries.pop(key, None)

    def gc(self) -> None:
        now = self.clock()
        for k in [k for k, e in self.entries.items() if self._expired(e, now)]:
            del self.entries[k]


# -- GC bookkeeping ---------------------------------------------------------------------------

@dataclass
class ImageRecord:
    first_detected: float
    last_used: float = 0.0  # 0: never seen in use
    size: int = 0


@dataclass
class GCResult:
    """What `garbage_collect` did: bytes it had to free (0: below the high threshold) and freed."""

    usage_percent: int
    bytes_to_free: int = 0
    bytes_freed: int = 0
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bytes_freed >= self.bytes_to_free

    @property
    def message(self) -> str:
        if self.ok:
            return f"freed {self.bytes_freed} bytes ({len(self.removed)} images)"
        return (f"Failed to garbage collect required amount of images. Attempted to free {self.bytes_to_free} bytes, "
                f"but only found {self.bytes_freed} bytes eligible to free.")


def statvfs_usage(path: str) -> tuple[int, int]:
    """(capacity, available) bytes of the filesystem holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


class _SharedExclusive:
    """Many pulls at once, or one GC: an asyncio readers-writer lock (writers preferred)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


# -- the manager ------------------------------------------------------------------------------

class ImageManager:
    def __init__(
        self,
        store: ImageStore,
        client: RegistryClient | None = None,
        *,
        mirrors: Mapping[str, str | Iterable[str]] | None = None,
        insecure: Iterable[str] = (),
        credentials: Mapping[str, Credentials] | None = None,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        max_parallel_pulls: int | None = None,
        offline_fallback: bool = True,
        disk_usage: Callable[[], tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`client` defaults to a RegistryClient over `store` with `mirrors`, `insecure` and the
        node-wide `credentials` (registry host -> (user, password)). `disk_usage` returns
        (capacity, available) bytes of the image filesystem (default: statvfs of the store).
        `offline_fallback`: when a pull finds no registry reachable and the image is stored,
        use it (kube would fail; here `make run`'s imported busybox/httpd must run off-line)."""
        self.store = store
        self.offline_fallback = offline_fallback
        self.client = client or RegistryClient(store, mirrors=mirrors, credentials=credentials, insecure=insecure)
        self._own_client = client is None
        self.clock = clock
        self.backoff = Backoff(backoff_base, backoff_max, clock)
        self.disk_usage = disk_usage or (lambda: statvfs_usage(store.root))
        self.records: dict[str, ImageRecord] = {}
        self._pulls: dict[tuple[str, tuple[Credentials, ...]], asyncio.Task[Image]] = {}
        self._last_errors: dict[str, str] = {}
        self._unreachable: dict[str, float] = {}  # registry host -> until when stored images are used unasked
        self._slots = asyncio.Semaphore(max_parallel_pulls) if max_parallel_pulls else None
        self._rw = _SharedExclusive()
        self.pull_count = 0  # registry pulls started (coalesced waiters do not count)

    async def close(self) -> None:
        for t in list(self._pulls.values()):
            t.cancel()
        if self._own_client:
            await self.client.close()

    # -- EnsureImageExists ------------------------------------------------------------------
    async def ensure_image(
        self,
        image: str,
        policy: str | None = None,
        pull_secrets: Iterable[Mapping[str, Any]] = (),
        *,
        backoff_key: str | None = None,
        on_event: EventSink | None = None,
    ) -> Image:
        """The stored image for `image`, pulled first if `policy` says so; raises ImagePullError."""
        emit = on_event or (lambda _t, _r, _m: None)
        try:
            ref = parse_reference(image)
        except InvalidReference:
            msg = f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format'
            emit("Warning", EVENT_INSPECT_FAILED, msg)
            raise ImagePullError(INVALID_IMAGE_NAME, msg) from None
        policy = policy or default_pull_policy(image)
        if policy not in (PULL_ALWAYS, PULL_IF_NOT_PRESENT, PULL_NEVER):
            raise ImagePullError(ERR_IMAGE_PULL, f"unknown imagePullPolicy {policy!r}")
        present = await asyncio.to_thread(self.store.find, str(ref))
        if policy == PULL_NEVER or (policy == PULL_IF_NOT_PRESENT and present is not None):
            if present is not None:
                emit("Normal", EVENT_PULLED, f'Container image "{image}" already present on machine')
                self._touch(present)
                return present
            msg = f'Container image "{image}" is not present with pull policy of Never'
            emit("Warning", ERR_IMAGE_NEVER_PULL, msg)
            raise ImagePullError(ERR_IMAGE_NEVER_PULL, msg)
        if present is not None and self.offline_fallback and self._unreachable.get(ref.domain, 0.0) > self.clock():
            emit("Normal", EVENT_PULLED, f'Container image "{image}" already present on machine '
                 f"(registry {ref.domain} unreachable)")
            self._touch(present)
            return present
        key = backoff_key or str(ref)
        if self.backoff.in_backoff(key):
            last = self._last_errors.get(key)
            msg = f'Back-off pulling image "{image}"' + (f": {ERR_IMAGE_PULL}: {last}" if last else "")
            emit("Normal", EVENT_BACKOFF, f'Back-off pulling image "{image}"')
            raise ImagePullError(IMAGE_PULL_BACKOFF, msg)
        emit("Normal", EVENT_PULLING, f'Pulling image "{image}"')
        started = self.clock()
        try:
            pulled = await self._coalesced_pull(str(ref), Keyring(pull_secrets).lookup(ref.name))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # every failure of a pull is the container's ErrImagePull
            msg = self._pull_message(str(ref), e)
            if isinstance(e, Unreachable) and present is not None and self.offline_fallback:
                # Off-line with the image at hand (imported, or pulled before): run it rather than
                # fail a `:latest` image's Always policy for want of a network.
                log.warning("pull of %s failed, using the stored image %s: %s", ref, present.id, msg)
                self._unreachable[ref.domain] = self.clock() + UNREACHABLE_HOLD
                emit("Warning", EVENT_FAILED, f'Failed to pull image "{image}": {msg}; '
                     f"using the image present on the machine")
                self._touch(present)
                return present
            self.backoff.next(key)
            self._last_errors[key] = msg
            emit("Warning", EVENT_FAILED, f'Failed to pull image "{image}": {msg}')
            raise ImagePullError(ERR_IMAGE_PULL, msg) from e
        self.backoff.reset(key)
        self._last_errors.pop(key, None)
        elapsed = self.clock() - started
        emit("Normal", EVENT_PULLED, f'Successfully pulled image "{image}" in {elapsed:.3f}s. Image size: {pulled.size} bytes.')
        self._touch(pulled)
        return pulled

    @staticmethod
    def _pull_message(ref: str, e: BaseException) -> str:
        """containerd's wording, which is what kube shows for ErrImagePull."""
        if isinstance(e, Unreachable):
            return f'image pull failed for {ref} because the registry is unavailable: {e}'
        if isinstance(e, Unauthorized):
            detail = (f'failed to resolve reference "{ref}": pull access denied, repository does not exist '
                      f"or may require authorization: {e}")
        elif isinstance(e, NotFound):
            detail = f'failed to resolve reference "{ref}": {ref}: not found'
        elif isinstance(e, (RegistryError, ManifestError)):
            detail = f'failed to resolve reference "{ref}": {e}'
        elif isinstance(e, LayerError):
            detail = f"failed to extract layer: {e}"
        else:
            detail = f"{type(e).__name__}: {e}" if not str(e) else str(e)
        return f'failed to pull and unpack image "{ref}": {detail}'

    async def _coalesced_pull(self, ref: str, candidates: list[Credentials]) -> Image:
        k = (ref, tuple(candidates))
        task = self._pulls.get(k)
        if task is None:
            task = asyncio.ensure_future(self._pull(ref, candidates))
            self._pulls[k] = task
            def done(t: asyncio.Task[Image]) -> None:
                if self._pulls.get(k) is t:
                    del self._pulls[k]
                if not t.cancelled():
                    t.exception()  # retrieved: every waiter may have been cancelled
            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _pull(self, ref: str, candidates: list[Credentials]) -> Image:
        self.pull_count += 1
        async with self._rw.shared():
            if self._slots is not None:
                async with self._slots:
                    return await self._try_credentials(ref, candidates)
            return await self._try_credentials(ref, candidates)

    async def _try_credentials(self, ref: str, candidates: list[Credentials]) -> Image:
        """Each matching credential in turn (kube's puller); none matching: the client's own or anonymous."""
        if not candidates:
            return await self.client.pull(ref)
        error: Exception | None = None
        for creds in candidates:
            try:
                return await self.client.pull(ref, creds)
            except Unauthorized as e:
                error = e
        assert error is not None
        raise error

    # -- image GC ---------------------------------------------------------------------------
    def _touch(self, image: Image) -> None:
        now = self.clock()
        r = self.records.setdefault(image.id, ImageRecord(first_detected=now, size=image.size))
        r.last_used = now

    def _detect(self, images: list[Image], in_use: set[str], now: float) -> None:
        """kube's detectImages: new images are first detected now; images in use were used now."""
        seen = set()
        for img in images:
            seen.add(img.id)
            r = self.records.get(img.id)
            if r is None:
                r = self.records[img.id] = ImageRecord(first_detected=now)
            r.size = img.size
            if img.id in in_use:
                r.last_used = now
        for gone in set(self.records) - seen:
            del self.records[gone]

    @staticmethod
    def _image_ids(images: list[Image], refs: set[str]) -> set[str]:
        """Image IDs for what containers report: an ID, a repo digest (`name@sha256:..`) or a tag."""
        ids: set[str] = set()
        for r in refs:
            for img in images:
                if r == img.id or r in img.repo_digests or r in img.repo_tags:
                    ids.add(img.id)
                    break
            else:
                try:
                    norm = str(parse_reference(r))
                except InvalidReference:
                    continue
                ids.update(img.id for img in images if norm in img.repo_tags or norm in img.repo_digests)
        return ids

    def usage_percent(self) -> int:
        capacity, available = self.disk_usage()
        return 100 - int(available * 100 / capacity) if capacity > 0 else 0

    async def garbage_collect(
        self, in_use: set[str], high_percent: int = 85, low_percent: int = 80, min_age: float = 120.0,
    ) -> GCResult:
        """Free unused images when the image filesystem is `high_percent` full, down to `low_percent`.

        `in_use` names the images of containers that exist (running or not): image IDs
        ("sha256:..."), repo digests (what a container status's imageID holds) or tags."""
        images = await asyncio.to_thread(self.store.list)
        in_use = self._image_ids(images, in_use)
        now = self.clock()
        self._detect(images, in_use, now)
        self.backoff.gc()
        capacity, available = self.disk_usage()
        if capacity <= 0:
            return GCResult(0)
        usage = 100 - int(available * 100 / capacity)
        result = GCResult(usage)
        if usage < high_percent:
            return result
        result.bytes_to_free = capacity * (100 - low_percent) // 100 - available
        if result.bytes_to_free <= 0:
            return result
        async with self._rw.exclusive():
            candidates = [(self.records[i.id], i) for i in images if i.id not in in_use and i.id in self.records]
            candidates.sort(key=lambda ri: (ri[0].last_used, ri[0].first_detected))
            for record, img in candidates:
                if record.last_used == now or now - record.first_detected < min_age:
                    continue
                try:
                    await asyncio.to_thread(self.store.remove, img.id, STORE_GC_MIN_AGE)
                except ImageNotFound:
                    continue
                log.info("image GC: removed %s %s (%d bytes, usage %d%%)", img.id, img.repo_tags, img.size, usage)
                self.records.pop(img.id, None)
                result.removed.append(img.id)
                result.bytes_freed += img.size
                if result.bytes_freed >= result.bytes_to_free:
                    break
        if not result.ok:
            log.warning("image GC: %s", result.message)
        return result


__all__ = [
    "Backoff", "ERR_IMAGE_NEVER_PULL", "ERR_IMAGE_PULL", "GCResult", "IMAGE_PULL_BACKOFF", "INVALID_IMAGE_NAME",
    "ImageManager", "ImagePullError", "ImageRecord", "Keyring", "PULL_ALWAYS", "PULL_IF_NOT_PRESENT", "PULL_NEVER",
    "default_pull_policy", "statvfs_usage", "urls_match",
]
