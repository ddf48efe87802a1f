"""``k8py ingress``: the Ingress controller, one per node (as ingress-nginx
runs as a DaemonSet, or k3s's Traefik behind ServiceLB): it listens on the
node's ports 80 and 443 and proxies to pod addresses directly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from ..client.app import make_client
from ..client.rest import Client
from .controller import IngressController
from .proxy import IngressProxy

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http-port", type=int, default=80, help="plain HTTP port (0: do not serve HTTP)")
    p.add_argument("--https-port", type=int, default=443, help="HTTPS port (0: do not serve HTTPS)")
    p.add_argument("--bind-address", default="0.0.0.0", help="address to listen on")
    p.add_argument("--controller-class", default="k8py.io/ingress",
                   help="spec.controller of the IngressClasses served")
    p.add_argument("--ingress-class", default="k8py", help="name of the IngressClass to create")
    p.add_argument("--create-ingress-class", action=argparse.BooleanOptionalAction, default=True,
                   help="create the IngressClass (as the cluster's default class) when it is missing")
    p.add_argument("--publish-address", action="append", default=[],
                   help="address for status.loadBalancer (repeatable or comma-separated; "
                        "default: this node's InternalIP)")
    p.add_argument("--hostname-override", default="", help="this node's name (default: the host name)")
    p.add_argument("--read-timeout", type=float, default=60.0, help="seconds to wait for a backend's answer")


async def main(args: argparse.Namespace) -> int:
    client = make_client(args, "k8py-ingress")
    proxy = IngressProxy(read_timeout=args.read_timeout)
    publish = [a.strip() for v in args.publish_address for a in v.split(",") if a.strip()]
    ctl = IngressController(client, proxy, controller_class=args.controller_class,
                            class_name=args.ingress_class, create_class=args.create_ingress_class,
                            publish=publish, node_name=args.hostname_override.lower())
    run = asyncio.create_task(ctl.run(), name="ingress controller")
    try:
        # listen once the first table is in place: before, every request would get a 404
        synced = asyncio.create_task(ctl.synced.wait())
        await asyncio.wait((run, synced), return_when=asyncio.FIRST_COMPLETED)
        synced.cancel()
        if run.done():
            await run  # raises what stopped it
            return 1
        ports = await proxy.start(args.bind_address, args.http_port or None, args.https_port or None)
        log.info("ingress: serving on %s ports %s", args.bind_address, ", ".join(map(str, ports)))
        await run
    finally:
        run.cancel()
        await asyncio.shield(_close(run, proxy, client))
    return 0


async def _close(run: asyncio.Task[None], proxy: IngressProxy, client: Client) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await run  # the informers stop
    await proxy.close()
    await client.close()
