"""OCI images for the runc runtime: a content store, layer unpacking, a registry client, tarball import.

- `store.ImageStore(root)`: blobs by digest, one overlayfs-ready directory per
  layer diff ID, image records by reference; `get(ref)` gives an `Image` with
  its `config` (entrypoint, cmd, env, working_dir, user) and `layer_dirs`
  (bottom to top; `lowerdir` is the overlayfs mount option).
- `registry.RegistryClient(store, mirrors=, credentials=, insecure=)`:
  `await pull(ref, credentials=None)` over the registry v2 API.
- `archive.import_archive(store, path, names)`: OCI layout and docker-save tarballs.
- `puller.ImageManager(store, mirrors=, insecure=)`: what the kubelet calls:
  `await ensure_image(image, policy, pull_secrets)` (ImagePullError with kube's
  reasons, back-off, coalesced pulls) and `await garbage_collect(in_use)`.
- `busybox.build_busybox_archive(out)`: the busybox/httpd test image, off-line.
- `commands`: one async function per `k8py images` command; `cli`: the command itself.
"""
from __future__ import annotations

from .archive import ArchiveError, import_archive
from .layers import LayerError, unpack_layer
from .manifest import ManifestError
from .reference import InvalidReference, Reference, normalize, parse_reference
from .puller import ImageManager, ImagePullError, default_pull_policy
from .registry import NotFound, RegistryClient, RegistryError, Unauthorized, Unreachable, parse_registry_mirrors
from .store import Image, ImageConfig, ImageNotFound, ImageStore

__all__ = [
    "ArchiveError", "Image", "ImageConfig", "ImageManager", "ImageNotFound", "ImagePullError", "ImageStore",
    "InvalidReference", "LayerError", "ManifestError", "NotFound", "Reference", "RegistryClient", "RegistryError",
    "Unauthorized", "Unreachable", "default_pull_policy", "import_archive", "normalize", "parse_reference",
    "parse_registry_mirrors", "unpack_layer",
]
