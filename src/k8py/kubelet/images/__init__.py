"""OCI images for the runc runtime: a content store, layer unpacking, a registry client, tarball import.

- `store.ImageStore(root)`: blobs by digest, one overlayfs-ready directory per
  layer diff ID, image records by reference; `get(ref)` gives an `Image` with
  its `config` (entrypoint, cmd, env, working_dir, user) and `layer_dirs`
  (bottom to top; `lowerdir` is the overlayfs mount option).
- `registry.RegistryClient(store, mirrors=, credentials=, insecure=)`:
  `await pull(ref, credentials=None)` over the registry v2 API.
- `archive.import_archive(store, path, names)`: OCI layout and docker-save tarballs.
- `commands`: one async function per `k8py images` command.
"""
from __future__ import annotations

from .archive import ArchiveError, import_archive
from .layers import LayerError, unpack_layer
from .manifest import ManifestError
from .reference import InvalidReference, Reference, normalize, parse_reference
from .registry import NotFound, RegistryClient, RegistryError, Unauthorized
from .store import Image, ImageConfig, ImageNotFound, ImageStore

__all__ = [
    "ArchiveError", "Image", "ImageConfig", "ImageNotFound", "ImageStore", "InvalidReference", "LayerError",
    "ManifestError", "NotFound", "Reference", "RegistryClient", "RegistryError", "Unauthorized",
    "import_archive", "normalize", "parse_reference", "unpack_layer",
]
