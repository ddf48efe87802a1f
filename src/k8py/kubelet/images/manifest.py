"""Manifest media types and platform choice, shared by the registry client and tarball import."""
from __future__ import annotations

from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
DEFAULT_PLATFORM = ("linux", "amd64")


class ManifestError(Exception):
    """A manifest we cannot use: unknown type, or no entry for our platform."""


def media_type(doc: dict[str, Any], header: str | None = None) -> str:
    """The manifest's media type: its own field, else the Content-Type, else guessed from its shape."""
    mt = doc.get("mediaType") or (header or "").split(";")[0].strip()
    if mt in INDEX_TYPES or mt in MANIFEST_TYPES:
        return mt
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    raise ManifestError(f"unsupported manifest type {mt or '(none)'}")


def choose_platform(index: dict[str, Any], platform: tuple[str, str] = DEFAULT_PLATFORM) -> dict[str, Any]:
    """The descriptor in a manifest list / OCI index for `platform` (os, architecture)."""
    want_os, want_arch = platform
    entries = index.get("manifests") or []
    for d in entries:
        p = d.get("platform") or {}
        if p.get("os") == want_os and p.get("architecture") == want_arch:
            return dict(d)
    if len(entries) == 1 and not entries[0].get("platform"):
        return dict(entries[0])
    seen = sorted({f"{(d.get('platform') or {}).get('os')}/{(d.get('platform') or {}).get('architecture')}" for d in entries})
    raise ManifestError(f"no manifest for {want_os}/{want_arch} (has {', '.join(seen) or 'none'})")
