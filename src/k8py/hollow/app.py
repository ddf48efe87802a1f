"""``k8py hollow-nodes``: N simulated kubelets in one process (see
:mod:`k8py.hollow.nodes` and :mod:`k8py.hollow.pods`)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..client.app import make_client
from ..client.events import EventRecorder
from .node import KUBELET_VERSION, NodeConfig, parse_labels, parse_taints
from .nodes import NodeSet
from .pods import PodRunner

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=1, help="how many nodes")
    p.add_argument("--name-prefix", default="hollow-node-", help="nodes are named PREFIX0..PREFIX<N-1>")
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="16Gi")
    p.add_argument("--pods", type=int, default=110)
    p.add_argument("--ephemeral-storage", default="100Gi")
    p.add_argument("--pod-run-seconds", type=float, default=5.0,
                   help="how long a Never/OnFailure pod runs before it succeeds")
    p.add_argument("--restart-backoff", type=float, default=10.0,
                   help="first back-off before a failed container restarts (doubling, up to 300 s)")
    p.add_argument("--node-labels", default="", help="k=v,... added to every node")
    p.add_argument("--register-with-taints", default="", help="key=value:Effect,... on every node")
    p.add_argument("--extended-resources", default="", help="name=count,... e.g. nvidia.com/gpu=2")
    p.add_argument("--lease-period", type=float, default=10.0, help="seconds between Lease renewals")
    p.add_argument("--events", default="true", choices=("true", "false"),
                   help="record the kubelet's pod events (Pulled, Created, Started, Killing, BackOff)")
    p.add_argument("--workers", type=int, default=32, help="pods handled at once")


def config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(cpu=args.cpu, memory=args.memory, pods=args.pods,
                      ephemeral_storage=args.ephemeral_storage, labels=parse_labels(args.node_labels),
                      taints=parse_taints(args.register_with_taints),
                      extended=parse_labels(args.extended_resources))


async def main(args: argparse.Namespace) -> int:
    client = make_client(args, f"kubelet/{KUBELET_VERSION} (linux/amd64) k8py-hollow", connections=64)
    nodes = NodeSet(client, args.name_prefix, args.count, config(args), lease_period=args.lease_period)
    recorder = EventRecorder(client, "kubelet") if args.events == "true" else None
    pods = PodRunner(client, nodes, run_seconds=args.pod_run_seconds, restart_backoff=args.restart_backoff,
                     workers=args.workers, recorder=recorder)
    nodes.on_change = pods.node_changed
    try:
        nodes.informer.start()
        await nodes.informer.synced.wait()
        await nodes.register()
        await asyncio.gather(nodes.heartbeat(), pods.run())
    finally:
        await nodes.informer.stop()
        if recorder:
            await recorder.stop()
        await client.close()
    return 0
