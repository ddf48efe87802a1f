"""A registry v2 client that pulls images into an `ImageStore`.

`RegistryClient.pull(ref)` resolves the reference (manifest list / OCI index →
the linux/amd64 manifest), fetches the config, then downloads only the layers
whose diff ID the store lacks, checking every blob's digest, and unpacks them
(`asyncio.to_thread`). Authentication follows the registry's answer to each
request: 401 with `WWW-Authenticate: Bearer realm=..,service=..,scope=..` fetches
a token from the realm (anonymously, or with basic credentials when we have
some), `Basic` sends the credentials. Credentials are keyed by registry host
("docker.io", "127.0.0.1:5000"), and a pull may bring its own (imagePullSecrets).

Mirrors map a registry host to base URLs tried first, in order, e.g.
`{"docker.io": ["http://127.0.0.1:5000"]}`; the registry itself is the last
resort. The kubelet's flags `--registry-mirror docker.io=http://127.0.0.1:5000`
(repeatable) and `--insecure-registry HOST` (repeatable) become `mirrors`
through `parse_registry_mirrors` and `insecure` as they are. Loopback hosts and hosts listed as insecure are spoken to over HTTP.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
from typing import Any, Iterable, Mapping

import aiohttp

from .layers import LayerError
from .manifest import ACCEPT, DEFAULT_PLATFORM, INDEX_TYPES, ManifestError, choose_platform, media_type
from .reference import Reference, parse_reference
from .store import Image, ImageStore

Credentials = tuple[str, str]
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class RegistryError(Exception):
    """A pull that failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unauthorized(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class Unreachable(RegistryError):
    """No endpoint answered (connection refused, no route, DNS failure, timeout): the machine may be off-line."""


def parse_www_authenticate(value: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y"` → ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = value.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _AUTH_PARAM.finditer(rest)}
    return scheme.lower(), params


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


def _is_loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return h in ("localhost", "[::1]", "::1") or h.startswith("127.")


def parse_registry_mirrors(values: Iterable[str]) -> dict[str, list[str]]:
    """The kubelet's repeatable `--registry-mirror HOST=URL` flags as a `mirrors` mapping.

    `docker.io=http://127.0.0.1:5000` sends docker.io's images to that URL first;
    several flags for one host are tried in the order given; the URL's scheme may
    be left out (`HOST=127.0.0.1:5000`: HTTP for loopback and `--insecure-registry`
    hosts, HTTPS otherwise). Raises ValueError on a malformed flag."""
    mirrors: dict[str, list[str]] = {}
    for v in values:
        host, sep, url = v.partition("=")
        host, url = host.strip(), url.strip()
        if not sep or not host or not url or "/" in host:
            raise ValueError(f"invalid registry mirror {v!r}: want HOST=URL, e.g. docker.io=http://127.0.0.1:5000")
        if host == "index.docker.io":
            host = "docker.io"
        mirrors.setdefault(host, []).append(url.rstrip("/"))
    return mirrors


class RegistryClient:
    def __init__(
        self,
        store: ImageStore,
        mirrors: Mapping[str, str | Iterable[str]] | None = None,
        credentials: Mapping[str, Credentials] | None = None,
        insecure: Iterable[str] = (),
        platform: tuple[str, str] = DEFAULT_PLATFORM,
        timeout: float = 600.0,
    ):
        self.store = store
        self.mirrors = {h: [m] if isinstance(m, str) else list(m) for h, m in (mirrors or {}).items()}
        self.credentials = dict(credentials or {})
        self.insecure = set(insecure)
        self.platform = platform
        # a registry that stops sending fails the pull within a minute (then back-off and retry),
        # rather than holding the pod in ContainerCreating until the total runs out
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=30, sock_read=60)
        self._session: aiohttp.ClientSession | None = None
        # (base url, repository, credentials) -> Authorization: a token got with one pull
        # secret's password must never serve a pull that brings other (or no) credentials
        self._auth: dict[tuple[str, str, Credentials | None], str] = {}
        self._layer_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> "RegistryClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def endpoints(self, ref: Reference) -> list[str]:
        """Base URLs to try for `ref`'s registry: its mirrors, then the registry itself."""
        host = ref.api_host
        scheme = "http" if host in self.insecure or ref.domain in self.insecure or _is_loopback(host) else "https"
        return [self._base_url(m) for m in self.mirrors.get(ref.domain, [])] + [f"{scheme}://{host}"]

    def _base_url(self, mirror: str) -> str:
        """A mirror as given, or `host:port` with the scheme the registry rules give it."""
        mirror = mirror.rstrip("/")
        if "://" in mirror:
            return mirror
        return ("http://" if mirror in self.insecure or _is_loopback(mirror) else "https://") + mirror

    # -- HTTP with authentication ------------------------------------------------------------
    async def _get(self, base: str, repo: str, path: str, creds: Credentials | None, accept: str | None = None) -> aiohttp.ClientResponse:
        url = f"{base}/v2/{repo}/{path}"
        for attempt in range(2):
            headers = {"Accept": accept} if accept else {}
            auth = self._auth.get((base, repo, creds))
            if auth:
                headers["Authorization"] = auth
            resp = await self._http().get(url, headers=headers)
            if resp.status != 401 or attempt == 1:
                break
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            self._auth[(base, repo, creds)] = await self._authorize(challenge, repo, creds, url)
        if resp.status == 401:
            resp.release()
            raise Unauthorized(f"{url}: unauthorized", 401)
        if resp.status == 404:
            resp.release()
            raise NotFound(f"{url}: not found", 404)
        if resp.status >= 400:
            body = (await resp.text())[:300]
            raise RegistryError(f"{url}: HTTP {resp.status} {body}", resp.status)
        return resp

    async def _authorize(self, challenge: str, repo: str, creds: Credentials | None, url: str) -> str:
        scheme, params = parse_www_authenticate(challenge)
        if scheme == "basic":
            if creds is None:
                raise Unauthorized(f"{url}: the registry wants a password and none was given", 401)
            return basic_header(creds)
        if scheme != "bearer" or "realm" not in params:
            raise Unauthorized(f"{url}: unsupported authentication {challenge!r}", 401)
        query = {"scope": params.get("scope") or f"repository:{repo}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": basic_header(creds)} if creds else {}
        async with self._http().get(params["realm"], params=query, headers=headers) as resp:
            if resp.status >= 400:
                raise Unauthorized(f"token request to {params['realm']} failed: HTTP {resp.status}", resp.status)
            body = await resp.json(content_type=None)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise Unauthorized(f"token request to {params['realm']} gave no token", 401)
        return f"Bearer {token}"

    # -- pulling -----------------------------------------------------------------------------
    async def _manifest(self, base: str, ref: Reference, obj: str, creds: Credentials | None) -> tuple[dict[str, Any], str, str, bytes]:
        async with await self._get(base, ref.path, f"manifests/{obj}", creds, ACCEPT) as resp:
            data = await resp.read()
            header = resp.headers.get("Content-Type")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if obj.startswith("sha256:") and digest != obj:
            raise RegistryError(f"manifest digest mismatch: asked {obj}, got {digest}")
        doc = json.loads(data)
        return doc, media_type(doc, header), digest, data

    async def resolve(self, ref: Reference, creds: Credentials | None) -> tuple[str, dict[str, Any], str, bytes]:
        """(base URL that answered, the platform's image manifest, its digest, its bytes)."""
        errors: list[str] = []
        unreachable: list[bool] = []
        for base in self.endpoints(ref):
            try:
                doc, mt, digest, data = await self._manifest(base, ref, ref.object, creds)
                if mt in INDEX_TYPES:
                    desc = choose_platform(doc, self.platform)
                    doc, mt, digest, data = await self._manifest(base, ref, desc["digest"], creds)
                    if mt in INDEX_TYPES:
                        raise ManifestError("an index inside an index")
                return base, doc, digest, data
            except Unauthorized:
                raise
            except (RegistryError, aiohttp.ClientError, asyncio.TimeoutError) as e:
                errors.append(f"{base}: {e or type(e).__name__}")
                unreachable.append(isinstance(e, (aiohttp.ClientConnectionError, asyncio.TimeoutError)))
        kind: type[RegistryError] = RegistryError
        if all("not found" in e for e in errors):
            kind = NotFound
        elif all(unreachable):
            kind = Unreachable
        raise kind(f"cannot pull {ref}: " + "; ".join(errors))

    async def _download(self, base: str, ref: Reference, digest: str, creds: Credentials | None) -> str:
        """Fetch a blob into a temporary file of the store, checking its digest; return the path."""
        tmp = self.store.temp_path()
        h = hashlib.sha256()
        try:
            async with await self._get(base, ref.path, f"blobs/{digest}", creds) as resp:
                with open(tmp, "wb") as f:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
            if "sha256:" + h.hexdigest() != digest:
                raise LayerError(f"blob digest mismatch: expected {digest}, got sha256:{h.hexdigest()}")
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    async def _layer(self, base: str, ref: Reference, desc: dict[str, Any], diff_id: str, creds: Credentials | None) -> None:
        lock = self._layer_locks.setdefault(diff_id, asyncio.Lock())
        async with lock:
            if self.store.has_layer(diff_id):
                return
            tmp = await self._download(base, ref, desc["digest"], creds)
            await asyncio.to_thread(self.store.add_layer, tmp, diff_id)

    async def pull(self, reference: str, credentials: Credentials | None = None) -> Image:
        """Pull `reference` into the store (skipping layers it has) and return the image."""
        ref = parse_reference(reference)
        creds = credentials or self.credentials.get(ref.domain)
        base, manifest, manifest_digest, manifest_bytes = await self.resolve(ref, creds)
        config_digest = manifest["config"]["digest"]
        if not self.store.has_blob(config_digest):
            tmp = await self._download(base, ref, config_digest, creds)
            await asyncio.to_thread(self.store.commit_blob, tmp, config_digest)
        config = json.loads(await asyncio.to_thread(self.store.read_blob, config_digest))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = manifest.get("layers") or []
        if len(diff_ids) != len(layers):
            raise ManifestError(f"{ref}: {len(layers)} layers but {len(diff_ids)} diff IDs")
        await asyncio.gather(*(self._layer(base, ref, d, i, creds) for d, i in zip(layers, diff_ids)))
        if not self.store.has_blob(manifest_digest):
            await asyncio.to_thread(self.store.put_blob, manifest_digest, manifest_bytes)
        return await asyncio.to_thread(self.store.put_image, [str(ref)], config_digest, manifest_digest)
