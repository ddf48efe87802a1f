"""PodNetwork: a pod's network namespace, wired by the real CNI plugins.

`setup` makes the namespace `k8py-<sandbox id>` under /run/netns, brings its
loopback up (the `loopback` plugin, as its own attachment on `lo`, as
containerd does) and attaches `eth0` through the conflist

    bridge (isGateway, ipMasq false, hairpin) + host-local IPAM on podCIDR
    → portmap (hostPort, from the portMappings capability)

then returns the namespace path and the pod IP. The bridge is the node's
pod bridge (`k8py0` by default) and holds the subnet's first address as
the pods' gateway. ipMasq is off and pods get no default route unless
configured (`routes`): pod traffic stays on the node (see the network rules
in ARCHITECTURE.md); the kubelet adds the service CIDR there.

What ADD returned and the config it was given are cached in
`<data_dir>/results/<sandbox id>.json`, so `teardown` runs DEL with the same
config (port mappings included) and the ADD result as prevResult, as libcni
does. `teardown` is idempotent: a sandbox with no cache and no namespace is
already gone. host-local keeps its leases under `<data_dir>/ipam`.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any

from k8py.kubelet.network import netns
from k8py.kubelet.network.cni import (
    DEFAULT_CNI_PATH,
    SPEC_VERSION,
    CNIRunner,
    Result,
    RuntimeArgs,
)

DEFAULT_BRIDGE = "k8py0"
DEFAULT_DATA_DIR = "/var/lib/k8py/cni"
NETWORK_NAME = "k8py"
POD_IFNAME = "eth0"
NETNS_PREFIX = "k8py-"


@dataclass(frozen=True)
class PortMapping:
    """A container's hostPort, in portmap's runtimeConfig shape."""

    host_port: int
    container_port: int
    protocol: str = "tcp"  # tcp, udp or sctp
    host_ip: str = ""

    def to_cni(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.lower(),
        }
        if self.host_ip:
            m["hostIP"] = self.host_ip
        return m


@dataclass(frozen=True)
class PodNetworkConfig:
    pod_cidr: str  # the Node's spec.podCIDR
    bridge: str = DEFAULT_BRIDGE
    data_dir: str = DEFAULT_DATA_DIR
    routes: tuple[str, ...] = ()  # extra destinations routed via the bridge
    mtu: int = 1500
    hairpin: bool = True
    portmap: bool = True
    cni_path: tuple[str, ...] = DEFAULT_CNI_PATH
    network_name: str = NETWORK_NAME

    def conflist(self) -> dict[str, Any]:
        ipam: dict[str, Any] = {
            "type": "host-local",
            "ranges": [[{"subnet": self.pod_cidr}]],
            "dataDir": os.path.join(self.data_dir, "ipam"),
        }
        if self.routes:
            ipam["routes"] = [{"dst": r} for r in self.routes]
        plugins: list[dict[str, Any]] = [
            {
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": self.hairpin,
                "mtu": self.mtu,
                "ipam": ipam,
            }
        ]
        if self.portmap:
            plugins.append(
                {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
            )
        return {"cniVersion": SPEC_VERSION, "name": self.network_name, "plugins": plugins}


LOOPBACK_CONFLIST: dict[str, Any] = {
    "cniVersion": SPEC_VERSION,
    "name": "cni-loopback",
    "plugins": [{"type": "loopback"}],
}


@dataclass(frozen=True)
class PodNetworkStatus:
    sandbox_id: str
    netns_path: str
    pod_ip: str
    pod_ips: tuple[str, ...] = ()
    result: Result | None = field(default=None, compare=False)


class PodNetwork:
    """Sets up and tears down pods' networks on one node."""

    def __init__(self, config: PodNetworkConfig) -> None:
        self.config = config
        self.cni = CNIRunner(config.conflist(), config.cni_path)
        self.loopback = CNIRunner(LOOPBACK_CONFLIST, config.cni_path)
        self._first_add = asyncio.Lock()  # the bridge plugin races creating the bridge
        self._bridge_made = False

    @staticmethod
    def netns_name(sandbox_id: str) -> str:
        return NETNS_PREFIX + sandbox_id

    def _cache_path(self, sandbox_id: str) -> str:
        return os.path.join(self.config.data_dir, "results", sandbox_id + ".json")

    async def setup(
        self,
        sandbox_id: str,
        namespace: str,
        name: str,
        port_mappings: list[PortMapping] | tuple[PortMapping, ...] = (),
        pod_uid: str = "",
    ) -> PodNetworkStatus:
        """Make the sandbox's namespace and attach it; returns its path and
        IP. On failure everything done so far is undone and the error
        (a `CNIError` with the plugin's message, or `NetnsError`) raised."""
        ns_name = self.netns_name(sandbox_id)
        path = await netns.create_netns(ns_name)
        cni_args = (
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", namespace),
            ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", sandbox_id),
        ) + ((("K8S_POD_UID", pod_uid),) if pod_uid else ())
        caps: dict[str, Any] = {}
        if port_mappings:
            caps["portMappings"] = [p.to_cni() for p in port_mappings]
        rt = RuntimeArgs(sandbox_id, path, POD_IFNAME, cni_args, caps)
        lo = RuntimeArgs(sandbox_id, path, "lo", cni_args)
        cache = {
            "containerId": sandbox_id,
            "netns": path,
            "ifName": POD_IFNAME,
            "config": self.cni.conflist,
            "cniArgs": [list(a) for a in cni_args],
            "capabilityArgs": caps,
            "result": None,
        }
        self._write_cache(sandbox_id, cache)  # written first: a crash mid-ADD is still cleaned up
        try:
            await self.loopback.add(lo)
            if self._bridge_made:
                result = await self.cni.add(rt)
            else:
                async with self._first_add:
                    result = await self.cni.add(rt)
                    self._bridge_made = True
        except BaseException:
            try:
                await self.teardown(sandbox_id)
            except Exception:
                pass
            raise
        cache["result"] = result.raw
        self._write_cache(sandbox_id, cache)
        ips = tuple(ip.ip for ip in result.sandbox_ips())
        if not ips:
            await self.teardown(sandbox_id)
            raise RuntimeError(f"CNI ADD for {sandbox_id} gave the pod no IP")
        return PodNetworkStatus(sandbox_id, path, ips[0], ips, result)

    async def teardown(self, sandbox_id: str) -> None:
        """DEL the attachment (portmap's rules, the veth, the IP lease) and
        remove the namespace. Idempotent. If a plugin's DEL fails, the
        cache stays so a later teardown retries, and the error is raised."""
        ns_name = self.netns_name(sandbox_id)
        cache = self._read_cache(sandbox_id)
        path = netns.netns_path(ns_name)
        if cache is not None:
            runner = CNIRunner(cache["config"], self.config.cni_path)
            rt = RuntimeArgs(
                sandbox_id,
                path if os.path.exists(path) else "",
                cache.get("ifName", POD_IFNAME),
                tuple(tuple(a) for a in cache.get("cniArgs", ())),  # type: ignore[misc]
                cache.get("capabilityArgs") or {},
            )
            await runner.delete(rt, cache.get("result"))
        elif not os.path.exists(path):
            return
        else:
            # a namespace without a cache: DEL with today's config anyway, so
            # a lease and a veth made by an interrupted ADD are released
            await self.cni.delete(RuntimeArgs(sandbox_id, path, POD_IFNAME), None)
        await netns.delete_netns(ns_name)
        try:
            os.unlink(self._cache_path(sandbox_id))
        except FileNotFoundError:
            pass

    async def check(self, sandbox_id: str) -> None:
        """CNI CHECK of the sandbox's attachment (raises `CNIError`).

        portmap is left out: its CHECK in containernetworking-plugins 1.1.1
        also looks for the IPv6 DNAT chain, which a v4-only pod never has,
        and so always fails when there are port mappings."""
        cache = self._read_cache(sandbox_id)
        if cache is None or cache.get("result") is None:
            raise LookupError(f"no network set up for sandbox {sandbox_id}")
        runner = CNIRunner(cache["config"], self.config.cni_path)
        rt = RuntimeArgs(
            sandbox_id,
            cache["netns"],
            cache.get("ifName", POD_IFNAME),
            tuple(tuple(a) for a in cache.get("cniArgs", ())),  # type: ignore[misc]
            cache.get("capabilityArgs") or {},
        )
        await runner.check(rt, cache["result"], skip=frozenset({"portmap"}))

    def status(self, sandbox_id: str) -> PodNetworkStatus | None:
        """What setup returned, read back from the cache (for a restarted
        kubelet adopting its pods); None when not set up."""
        cache = self._read_cache(sandbox_id)
        if cache is None or cache.get("result") is None:
            return None
        result = Result.parse(cache["result"])
        ips = tuple(ip.ip for ip in result.sandbox_ips())
        return PodNetworkStatus(sandbox_id, cache["netns"], ips[0] if ips else "", ips, result)

    def sandboxes(self) -> list[str]:
        """The sandbox ids with cached networks."""
        d = os.path.join(self.config.data_dir, "results")
        try:
            return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json"))
        except FileNotFoundError:
            return []

    def _write_cache(self, sandbox_id: str, data: dict[str, Any]) -> None:
        path = self._cache_path(sandbox_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    def _read_cache(self, sandbox_id: str) -> dict[str, Any] | None:
        try:
            with open(self._cache_path(sandbox_id)) as f:
                data: dict[str, Any] = json.load(f)
                return data
        except FileNotFoundError:
            return None
