"""``k8py kubelet``: the node agent (see :mod:`k8py.kubelet.kubelet`).

Run by ``k8py server`` for a single-node cluster, or alone with a
kubeconfig to join a cluster whose control plane is elsewhere."""

from __future__ import annotations

import argparse
import logging
import os
import socket

from ..api.quantity import parse as parse_quantity
from ..client.app import make_client
from .shapes import KUBELET_VERSION, parse_labels
from .kubelet import Kubelet, KubeletConfig
from .node import detect_node_ip

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hostname-override", default="", help="the node's name (default: the host name)")
    p.add_argument("--node-ip", default="", help="the node's InternalIP (default: the host's primary address)")
    p.add_argument("--root-dir", default="/var/lib/k8py/kubelet")
    p.add_argument("--data-dir", default="",
                   help="parent of the runtime, image and CNI state (default: the parent of --root-dir)")
    p.add_argument("--pod-log-dir", default="/var/log/pods")
    p.add_argument("--container-runtime", default="auto", choices=("auto", "runc", "process"),
                   help="runc (needs root) or process (plain host processes, no isolation); auto picks runc "
                        "when root and runc are present")
    p.add_argument("--cgroup-root", default="k8py")
    p.add_argument("--port", type=int, default=10250)
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--pod-manifest-path", default="", help="folder of static pod manifests")
    p.add_argument("--file-check-frequency", type=float, default=20.0)
    p.add_argument("--sync-frequency", type=float, default=10.0)
    p.add_argument("--cni-bin-dir", default="/usr/lib/cni:/opt/cni/bin")
    p.add_argument("--cni-bridge", default="k8py0")
    p.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs for ClusterFirst pods")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--service-cidr", default="10.43.0.0/16",
                   help="routed through the pod bridge, so that service traffic stays on the node")
    p.add_argument("--cluster-cidr", default="",
                   help="the cluster's pod CIDR: routed through the bridge inside pods, and every other "
                        "node's podCIDR in it routed to that node (host-gw, routes.py); default: neither")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-labels", default="")
    p.add_argument("--register-with-taints", default="")
    p.add_argument("--registry-mirror", action="append", default=[],
                   help="HOST=URL (repeatable): pull HOST's images from URL first, e.g. "
                        "docker.io=http://127.0.0.1:5000")
    p.add_argument("--insecure-registry", action="append", default=[], help="HOST[:PORT] reached over plain HTTP")
    p.add_argument("--crashloop-backoff", type=float, default=10.0, help="first restart back-off (doubling)")
    p.add_argument("--crashloop-backoff-max", type=float, default=300.0)
    p.add_argument("--image-pull-backoff", type=float, default=10.0)
    p.add_argument("--image-pull-backoff-max", type=float, default=300.0)
    p.add_argument("--container-log-max-size", default="10Mi", help="rotate a container's log at this size")
    p.add_argument("--container-log-max-files", type=int, default=5)
    p.add_argument("--node-status-update-frequency", type=float, default=10.0)
    p.add_argument("--image-gc-high-threshold", type=int, default=85)
    p.add_argument("--image-gc-low-threshold", type=int, default=80)


def config(args: argparse.Namespace) -> KubeletConfig:
    root = os.path.abspath(args.root_dir)
    data = os.path.abspath(args.data_dir) if args.data_dir else os.path.dirname(root)
    mirrors: dict[str, list[str]] = {}
    for m in args.registry_mirror:
        host, sep, url = m.partition("=")
        if not sep or not url:
            raise SystemExit(f"--registry-mirror {m!r}: want HOST=URL")
        mirrors.setdefault(host, []).append(url)
    return KubeletConfig(
        node_name=(args.hostname_override or socket.gethostname()).lower(),
        node_ip=args.node_ip or detect_node_ip(), root_dir=root, log_dir=args.pod_log_dir,
        runtime=args.container_runtime, runtime_root=os.path.join(data, "runtime"),
        image_root=os.path.join(data, "images"), cni_data_dir=os.path.join(data, "cni"),
        cni_bin_dirs=tuple(d for d in args.cni_bin_dir.split(":") if d), bridge=args.cni_bridge,
        cgroup_root=args.cgroup_root, port=args.port, address=args.address,
        static_pod_path=args.pod_manifest_path, file_check_frequency=args.file_check_frequency,
        sync_frequency=args.sync_frequency, crashloop_backoff=args.crashloop_backoff,
        crashloop_backoff_max=args.crashloop_backoff_max, image_pull_backoff=args.image_pull_backoff,
        image_pull_backoff_max=args.image_pull_backoff_max,
        container_log_max_size=parse_quantity(args.container_log_max_size).value(),
        container_log_max_files=args.container_log_max_files,
        cluster_dns=tuple(x for x in args.cluster_dns.split(",") if x), cluster_domain=args.cluster_domain,
        service_cidr=args.service_cidr, cluster_cidr=args.cluster_cidr, max_pods=args.max_pods,
        node_labels=parse_labels(args.node_labels),
        register_with_taints=args.register_with_taints, registry_mirrors=mirrors,
        insecure_registries=tuple(args.insecure_registry), status_update_period=args.node_status_update_frequency,
        image_gc_high=args.image_gc_high_threshold, image_gc_low=args.image_gc_low_threshold)


async def main(args: argparse.Namespace) -> int:
    cfg = config(args)
    client = make_client(args, f"kubelet/{KUBELET_VERSION} (linux/amd64) k8py", connections=32)
    kubelet = Kubelet(client, cfg)
    try:
        await kubelet.run()
    finally:
        await client.close()
    return 0
