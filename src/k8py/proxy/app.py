"""``k8py proxy``: the service proxy on every node (kube-proxy, nftables mode).

Informers on Services, EndpointSlices and Nodes feed :class:`Proxier`; every
change requests a sync, and the sync loop coalesces bursts (at most two
back-to-back syncs, then one per ``--min-sync-period``, as kube-proxy's
BoundedFrequencyRunner).  The node's InternalIP addresses (from its Node)
are the NodePort addresses unless ``--nodeport-addresses`` says otherwise.
The built-in ServiceLB (servicelb.py) runs here too, under a Lease.

A clean stop (SIGTERM/SIGINT) removes the service-CIDR route but leaves the
table, so Services keep working while the proxy restarts (kube-proxy does
the same); ``--cleanup`` deletes the table and the route and exits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket

from ..client.app import make_client
from ..client.informer import InformerFactory
from ..client.leaderelection import LeaderElector
from .proxier import Proxier, RulesConfig, delete_table, load_br_netfilter, run_cmd
from .servicelb import ServiceLB

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hostname-override", default="", help="this node's name (default: the host name)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="the pod network: traffic to a Service from outside it is masqueraded")
    p.add_argument("--service-cidr", default="10.43.0.0/16",
                   help="routed to --bridge; unallocated addresses in it are dropped")
    p.add_argument("--bridge", default="k8py0", help="the node's pod bridge (the service CIDR is routed there)")
    p.add_argument("--nft-table", default="k8py-proxy", help="the nftables table (family ip) this proxy owns")
    p.add_argument("--min-sync-period", type=float, default=1.0,
                   help="seconds between syncs after a burst of two (0: sync on every change)")
    p.add_argument("--sync-period", type=float, default=30.0, help="seconds between unconditional resyncs")
    p.add_argument("--nodeport-addresses", default="",
                   help="comma-separated CIDRs: NodePorts on the local addresses inside them; 0.0.0.0/0 for all "
                        "(default: the node's InternalIPs; loopback addresses never serve NodePorts)")
    p.add_argument("--masquerade-all", action="store_true", help="masquerade all traffic to ClusterIPs")
    p.add_argument("--disable-servicelb", action="store_true", help="do not run the built-in ServiceLB")
    p.add_argument("--cleanup", action="store_true", help="delete the table and the route, then exit")


async def cleanup(table: str, service_cidr: str, bridge: str) -> None:
    existed = await delete_table(table)
    await run_cmd("ip", "route", "del", service_cidr, "dev", bridge)
    log.info("cleanup: table %s %s, route %s dev %s removed", table, "deleted" if existed else "absent",
             service_cidr, bridge)


def node_internal_ips(node: dict | None) -> list[str]:
    if node is None:
        return []
    return [a["address"] for a in (node.get("status") or {}).get("addresses") or ()
            if a.get("type") == "InternalIP" and a.get("address")]


async def main(args: argparse.Namespace) -> int:
    if args.cleanup:
        await cleanup(args.nft_table, args.service_cidr, args.bridge)
        return 0
    hostname = (args.hostname_override or socket.gethostname()).lower()
    cidrs = [c.strip() for c in args.nodeport_addresses.split(",") if c.strip()]
    match_all = any(c in ("0.0.0.0/0",) for c in cidrs)
    cfg = RulesConfig(table=args.nft_table, hostname=hostname, cluster_cidr=args.cluster_cidr,
                      service_cidr=args.service_cidr, masquerade_all=args.masquerade_all,
                      nodeport_match_all=match_all)
    await load_br_netfilter()
    client = make_client(args, "k8py-proxy")
    factory = InformerFactory(client)
    services = factory.informer("services")
    slices = factory.informer("endpointslices.discovery.k8s.io")
    nodes = factory.informer("nodes")
    proxier = Proxier(cfg, services.store, slices.store, min_sync_period=args.min_sync_period,
                      sync_period=args.sync_period, nodeport_cidrs=[] if match_all else cidrs,
                      service_route=(args.service_cidr, args.bridge) if args.bridge else None)

    def changed(*_: object) -> None:
        proxier.request_sync()

    def node_changed(*objs: dict) -> None:
        node = objs[-1]
        if node["metadata"]["name"] == hostname:
            proxier.set_node_ips(node_internal_ips(nodes.store.get_by(None, hostname)))

    for inf in (services, slices):
        inf.add_handler(changed, changed, changed)
    nodes.add_handler(node_changed, node_changed, node_changed)
    tasks: list[asyncio.Task] = []
    try:
        factory.start()
        await factory.wait_for_sync()
        proxier.set_node_ips(node_internal_ips(nodes.store.get_by(None, hostname)))
        proxier.request_sync()
        tasks.append(asyncio.create_task(proxier.run(), name="proxy sync"))
        if not args.disable_servicelb:
            lb = ServiceLB(client, services, nodes)
            elector = LeaderElector(client, "k8py-servicelb", identity=f"{hostname}_{args.nft_table}")

            async def campaign() -> None:  # a lost Lease means: stand as a candidate again
                while True:
                    await elector.run(lb.run)
                    await asyncio.sleep(elector.retry_period)
            tasks.append(asyncio.create_task(campaign(), name="servicelb"))
        log.info("proxy for node %s: table ip %s, min sync period %.2fs", hostname, cfg.table, args.min_sync_period)
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await proxier.remove_route()
        await factory.stop()
        await client.close()
    return 0
