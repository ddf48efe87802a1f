"""`k8py images`: manage the node's image store from the command line.

    k8py images import FILE [--name REF]...      OCI layout or docker-save tarball (plain or gzip)
    k8py images ls [-q | -o json]                IMAGE TAG IMAGE ID SIZE, like `crictl images`
    k8py images rm REF...                        by tag, repo digest, ID or unique ID prefix
    k8py images pull REF [--creds USER:PASS] [--registry-mirror HOST=URL]... [--insecure-registry HOST]...
    k8py images build-busybox OUT [--busybox PATH] [--import [--if-missing]]

Every command takes `--image-root DIR` (default `<data-dir>/images`, the
kubelet's) and `--data-dir DIR` (the server's default). Exit status: 0 done,
1 failed (a message on stderr), 2 bad usage. `build-busybox --import
--if-missing` is what `make run` calls: it does nothing when busybox:latest
and httpd:latest are already in the store.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from .archive import ArchiveError
from .busybox import IMAGES, BusyboxError, build_busybox_archive
from .commands import format_table, import_images, list_images, pull_image, remove_image
from .layers import LayerError
from .manifest import ManifestError
from .reference import InvalidReference
from .registry import RegistryClient, RegistryError, parse_registry_mirrors
from .store import ImageNotFound, ImageStore

_ERRORS = (ArchiveError, LayerError, ManifestError, InvalidReference, RegistryError, ImageNotFound, OSError, ValueError)


def image_root(args: argparse.Namespace) -> str:
    if args.image_root:
        return str(args.image_root)
    if args.data_dir:
        data_dir = str(args.data_dir)
    else:
        from ...cli import default_data_dir
        data_dir = default_data_dir()
    return os.path.join(data_dir, "images")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--image-root", default=None, help="the image store (default <data-dir>/images)")
    common.add_argument("--data-dir", default=None, help="state directory (default /var/lib/k8py as root, "
                                                          "~/.local/share/k8py otherwise)")
    p = argparse.ArgumentParser(prog="k8py images", description="manage the node's OCI images")
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", parents=[common], help="import images from an OCI layout or docker-save tarball")
    imp.add_argument("file")
    imp.add_argument("--name", action="append", default=[], help="also tag every imported image with this (repeatable)")
    ls = sub.add_parser("ls", parents=[common], help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="print image IDs only")
    ls.add_argument("-o", "--output", choices=["table", "json"], default="table")
    rm = sub.add_parser("rm", parents=[common], help="untag images, deleting those left without a tag")
    rm.add_argument("refs", nargs="+", metavar="REF")
    pull = sub.add_parser("pull", parents=[common], help="pull an image from a registry")
    pull.add_argument("ref")
    pull.add_argument("--creds", default=None, help="USER:PASSWORD for the image's registry")
    pull.add_argument("--registry-mirror", action="append", default=[], metavar="HOST=URL",
                      help="try URL first for HOST's images, e.g. docker.io=http://127.0.0.1:5000 (repeatable)")
    pull.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                      help="speak plain HTTP to HOST (repeatable; loopback always is)")
    bb = sub.add_parser("build-busybox", parents=[common], help="build the busybox/httpd OCI archive from busybox-static")
    bb.add_argument("out")
    bb.add_argument("--busybox", default="/usr/bin/busybox")
    bb.add_argument("--import", dest="do_import", action="store_true", help="and import it into the store")
    bb.add_argument("--if-missing", action="store_true",
                    help="with --import: do nothing when busybox:latest and httpd:latest are already stored")
    return p


def _print_images(images: list[Any]) -> None:
    for img in images:
        print(f"imported {img.id} {' '.join(img.repo_tags)}")


async def _run(args: argparse.Namespace) -> int:
    store = ImageStore(image_root(args))
    if args.command == "import":
        _print_images(await import_images(store, args.file, args.name))
    elif args.command == "ls":
        rows = await list_images(store)
        if args.quiet:
            for r in rows:
                print(r["id"])
        elif args.output == "json":
            print(json.dumps({"images": rows}, indent=2))
        else:
            print(format_table(rows))
    elif args.command == "rm":
        status = 0
        for ref in args.refs:
            try:
                for line in await remove_image(store, ref):
                    print(line)
            except ImageNotFound:
                print(f"k8py images rm: no such image: {ref}", file=sys.stderr)
                status = 1
        return status
    elif args.command == "pull":
        creds = None
        if args.creds:
            user, sep, password = args.creds.partition(":")
            if not sep:
                raise ValueError("--creds wants USER:PASSWORD")
            creds = (user, password)
        async with RegistryClient(store, mirrors=parse_registry_mirrors(args.registry_mirror),
                                  insecure=args.insecure_registry) as client:
            img = await pull_image(client, args.ref, creds)
        print(f"pulled {img.id} {' '.join(img.repo_tags)}")
    elif args.command == "build-busybox":
        if args.do_import and args.if_missing and all(store.find(n) is not None for n in IMAGES):
            print("busybox and httpd images already present")
            return 0
        names = await asyncio.to_thread(build_busybox_archive, args.out, args.busybox)
        for n, d in names.items():
            print(f"built {n}@{d}")
        if args.do_import:
            _print_images(await import_images(store, args.out))
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ImageNotFound as e:
        print(f"k8py images {args.command}: no such image: {e}", file=sys.stderr)
    except _ERRORS as e:
        print(f"k8py images {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
    except BusyboxError as e:
        print(f"k8py images {args.command}: {e}", file=sys.stderr)
    return 1
