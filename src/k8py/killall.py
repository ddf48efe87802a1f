"""``k8py killall``: stop this node's pods and remove what the node put on the machine, as
k3s-killall.sh does for k3s.

    k8py killall [--data-dir DIR]

A stopped ``k8py server`` or ``k8py agent`` leaves its pods running (a restart adopts them), and
with them the pod network: the bridge, the proxy's nftables table, host-gw routes and their
masquerade table. This command ends all of that for the node whose state is under DIR, by the
node's own records, never by a process name:

- every container and sandbox in the runtime's state (runc delete), and its cgroups;
- every pod network in the CNI cache (CNI DEL: veth, IP lease, portmap rules; the netns);
- the pod volumes still mounted under DIR/kubelet/pods (tmpfs emptyDirs, secrets);
- the pod bridge, and with it the service CIDR's route;
- the proxy's table (``k8py-proxy``, or ``k8py-proxy-<tag>`` for another data dir);
- for the default data dir only (the machine's node): the host-gw routes (protocol 107) and the
  ``k8py-hostgw`` masquerade table, which are the machine's rather than one data dir's.

Stop the server or agent first: a running kubelet would start the pods again. The cluster's
state (the database, certificates, images) stays; ``rm -rf DIR`` removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys

log = logging.getLogger(__name__)

HOSTGW_TABLE = "k8py-hostgw"  # kubelet/routes.py's MASQ_TABLE (not imported: it pulls the API client in)


async def stop_pods(data_dir: str, cgroup_root: str, bridge: str) -> tuple[int, int]:
    """Remove every sandbox and container in the runtime's records, then every cached pod network;
    returns (sandboxes, networks)."""
    from .kubelet.network import PodNetwork, PodNetworkConfig
    from .kubelet.runtime.runc import RuncRuntime

    rt = RuncRuntime(os.path.join(data_dir, "runtime"), cgroup_root=cgroup_root)
    sandboxes = 0
    if os.path.isdir(rt.root):
        try:
            await rt.recover()
            for sid, _ in await rt.list_sandboxes():
                with contextlib.suppress(Exception):
                    await rt.stop_pod_sandbox(sid)
                await rt.remove_pod_sandbox(sid)
                sandboxes += 1
            for st in await rt.list_containers():
                await rt.remove_container(st.id)
        except Exception as e:  # noqa: BLE001 - the networks, mounts and bridge are still worth removing
            log.warning("runtime state under %s: %s", rt.root, e)
    # (the pod CIDR plays no part in a teardown: the CNI cache holds each pod's own config)
    net = PodNetwork(PodNetworkConfig(pod_cidr="10.42.0.0/24", bridge=bridge,
                                      data_dir=os.path.join(data_dir, "cni")))
    networks = 0
    for sid in net.sandboxes():
        try:
            await net.teardown(sid)
            networks += 1
        except Exception as e:  # noqa: BLE001 - go on with the rest, and say which one stayed
            log.warning("pod network of sandbox %s: %s", sid, e)
    remove_cgroups(cgroup_root)
    return sandboxes, networks


def remove_cgroups(root: str) -> None:
    """rmdir `root` and everything under it, deepest first, in every cgroup hierarchy."""
    from .kubelet.runtime.stats import cgroup_mounts
    for point, _ in cgroup_mounts():
        path = os.path.join(point, root)
        for dirpath, _, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def unmount_under(path: str) -> int:
    """Lazily unmount everything mounted below `path`, deepest first; returns how many."""
    prefix = os.path.abspath(path) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for p in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", p], check=False)
    return len(points)


def _run(*argv: str) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def remove_hostgw() -> int:
    """The host-gw routes (protocol 107) and the masquerade table; returns how many routes."""
    from .kubelet import routes
    n = asyncio.run(routes.remove_all())
    _run("nft", "delete", "table", "ip", HOSTGW_TABLE)
    return n


def killall(data_dir: str) -> list[str]:
    """Everything above, for the node under `data_dir`; returns what was done, a line each."""
    from .supervisor import data_tag, pod_bridge, proxy_table
    data = os.path.abspath(data_dir)
    tag = data_tag(data)
    bridge = pod_bridge(data)
    cgroup_root = f"k8py-{tag}" if tag else "k8py"
    sandboxes, networks = asyncio.run(stop_pods(data, cgroup_root, bridge))
    done = [f"{sandboxes} pod sandboxes stopped and removed, {networks} pod networks deleted"]
    done.append(f"{unmount_under(os.path.join(data, 'kubelet', 'pods'))} pod volume mounts unmounted")
    if _run("ip", "link", "del", bridge):
        done.append(f"bridge {bridge} deleted")
    if _run("nft", "delete", "table", "ip", proxy_table(data)):
        done.append(f"nftables table ip {proxy_table(data)} deleted")
    if not tag:
        done.append(f"{remove_hostgw()} host-gw routes removed; table ip {HOSTGW_TABLE} deleted if it was there")
    return done


def main(argv: list[str]) -> int:
    from .cli import default_data_dir
    p = argparse.ArgumentParser(prog="k8py killall", description="Stop this node's pods and remove what the "
                                "node put on the machine (bridge, nftables table, routes), as k3s-killall.sh does.")
    p.add_argument("--data-dir", default="", help="the node's state (default: the server's and agent's default)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("k8py killall: needs root (the runc runtime, network namespaces, nftables)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for line in killall(args.data_dir or default_data_dir()):
        print(line)
    return 0
