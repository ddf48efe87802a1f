"""One async function per `k8py images` command, for the CLI and the kubelet to call.

    await import_images(store, "busybox.tar", names=["busybox"])   # images import FILE
    await list_images(store)                                       # images ls -> rows
    await remove_image(store, "busybox")                           # images rm REF
    await pull_image(client, "docker.io/library/busybox:1.36")     # images pull REF
"""
from __future__ import annotations

import asyncio
from typing import Any

from .archive import import_archive
from .registry import Credentials, RegistryClient
from .store import Image, ImageStore


async def import_images(store: ImageStore, path: str, names: list[str] | None = None) -> list[Image]:
    return await asyncio.to_thread(import_archive, store, path, names)


async def list_images(store: ImageStore) -> list[dict[str, Any]]:
    """One row per image: id, tags, digests, size in bytes."""
    images = await asyncio.to_thread(store.list)
    return [
        {"id": i.id, "repoTags": i.repo_tags, "repoDigests": i.repo_digests, "size": i.size}
        for i in images
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """`images ls` as text: IMAGE TAG IMAGE-ID SIZE, like `crictl images`."""
    lines = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for r in rows:
        for ref in r["repoTags"] or ["<none>:<none>"]:
            name, _, tag = ref.rpartition(":")
            lines.append((name, tag, r["id"][7:20], f"{r['size'] / 1e6:.1f}MB"))
    widths = [max(len(l[i]) for l in lines) for i in range(4)]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip() for l in lines)


async def remove_image(store: ImageStore, ref: str) -> list[str]:
    return await asyncio.to_thread(store.remove, ref)


async def pull_image(client: RegistryClient, ref: str, credentials: Credentials | None = None) -> Image:
    return await client.pull(ref, credentials)
