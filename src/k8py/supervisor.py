"""``k8py server``: the API server in this process, and the other
control-plane components as child processes (each could as well run on
another machine: they talk to the API server only, through the admin
kubeconfig).  A child that exits is restarted after a pause; children get
SIGTERM when the server stops, and die with it if it is killed."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
from dataclasses import dataclass, field

from .apiserver.server import APIServer, Config

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0

    async def keep_running(self, stopping: asyncio.Event) -> None:
        delay = 1.0
        while not stopping.is_set():
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, preexec_fn=_die_with_parent)
            log.info("started %s (pid %d)", self.name, self.proc.pid)
            rc = await self.proc.wait()
            if stopping.is_set():
                return
            self.restarts += 1
            log.warning("%s exited with %s; restarting in %.0f s", self.name, rc, delay)
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    async def stop(self, grace: float = 10.0) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), grace)
        except asyncio.TimeoutError:
            p.kill()
            await p.wait()


@dataclass
class ServerOptions:
    disable_scheduler: bool = False
    disable_controller_manager: bool = False
    scheduler_args: list[str] = field(default_factory=list)
    controller_manager_args: list[str] = field(default_factory=list)
    disable_agent: bool = False
    kubelet_args: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)       # of "proxy", "dns", "ingress" (k3s's --disable)
    proxy_args: list[str] = field(default_factory=list)
    dns_args: list[str] = field(default_factory=list)
    ingress_args: list[str] = field(default_factory=list)
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: str = "10.43.0.10"


def _flag(args: list[str], name: str) -> str | None:
    """The value of --name=VALUE or --name VALUE in a flag list (the last one wins)."""
    out = None
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            out = a.split("=", 1)[1]
        elif a == name and i + 1 < len(args):
            out = args[i + 1]
    return out


@dataclass
class NodePlan:
    """What the server's own node runs, derived once so that kubelet, proxy, DNS and ingress agree."""
    name: str
    ip: str
    bridge: str
    tag: str


def node_plan(cfg: Config, opts: ServerOptions) -> NodePlan:
    import socket

    from .kubelet.node import detect_node_ip
    name = (_flag(opts.kubelet_args, "--hostname-override") or socket.gethostname()).lower()
    ip = _flag(opts.kubelet_args, "--node-ip") or (
        cfg.advertise_address if cfg.advertise_address not in ("127.0.0.1", "::1", "0.0.0.0", "") else
        detect_node_ip())
    return NodePlan(name, ip, pod_bridge(cfg.data_dir), data_tag(cfg.data_dir))


def node_children(cfg: Config, opts: ServerOptions) -> list[Child]:
    """The server's own node: kubelet, and unless disabled the proxy, the cluster DNS and the ingress
    controller, as k3s runs its agent, kube-proxy, CoreDNS and Traefik. DNS is a host process on the
    node's address behind the kube-dns Service (10.43.0.10); it needs an address pods can reach, so a
    loopback node address leaves it out."""
    import os
    plan = node_plan(cfg, opts)
    dns = "dns" not in opts.disable and not plan.ip.startswith("127.")
    kubelet_extra = list(opts.kubelet_args)
    if dns and _flag(kubelet_extra, "--cluster-dns") is None:
        kubelet_extra.append(f"--cluster-dns={opts.cluster_dns}")
    root = os.geteuid() == 0
    if root and _flag(kubelet_extra, "--cluster-cidr") is None:  # host-gw routes to the nodes that join
        kubelet_extra.append(f"--cluster-cidr={opts.cluster_cidr}")
    if _flag(kubelet_extra, "--node-ip") is None:
        kubelet_extra.append(f"--node-ip={plan.ip}")
    out = [Child("kubelet", _k8py(*kubelet_argv(cfg.data_dir, cfg.kubeconfig, kubelet_extra)))]
    if "proxy" not in opts.disable and not root:
        log.warning("service proxy not started: nftables needs root (Services' virtual IPs will not answer)")
    elif "proxy" not in opts.disable:
        out.append(Child("proxy", _k8py(
            "proxy", "--kubeconfig", cfg.kubeconfig, "--hostname-override", plan.name, "--bridge", plan.bridge,
            "--nft-table", proxy_table(cfg.data_dir), "--cluster-cidr", opts.cluster_cidr, "--service-cidr", opts.service_cidr,
            *opts.proxy_args)))
    if dns:
        out.append(Child("dns", _k8py(
            "dns", "--kubeconfig", cfg.kubeconfig, "--listen", f"{plan.ip}:53", "--create-service",
            "--service-ip", opts.cluster_dns, "--advertise-address", plan.ip, "--health-port", "0",
            *opts.dns_args)))
    elif "dns" not in opts.disable:
        log.warning("cluster DNS not started: the node address %s is loopback, which pods cannot reach", plan.ip)
    if "ingress" not in opts.disable:
        ports = [] if root else ["--http-port", "8080", "--https-port", "8443"]  # no low ports without root
        out.append(Child("ingress", _k8py(
            "ingress", "--kubeconfig", cfg.kubeconfig, "--hostname-override", plan.name, *ports,
            *opts.ingress_args)))
    return out


def data_tag(data_dir: str) -> str:
    """"" for the default data dir, else a short hash of it: a node whose state is elsewhere (tests,
    several agents on one machine) gets its own pod log dir, cgroup root, bridge and nft table."""
    import hashlib
    import os
    data = os.path.abspath(data_dir)
    return "" if data == "/var/lib/k8py" else hashlib.sha256(data.encode()).hexdigest()[:8]


def pod_bridge(data_dir: str) -> str:
    tag = data_tag(data_dir)
    return f"k8py{tag}" if tag else "k8py0"


def proxy_table(data_dir: str) -> str:
    """The nftables table of the node's proxy."""
    tag = data_tag(data_dir)
    return f"k8py-proxy-{tag}" if tag else "k8py-proxy"


def kubelet_argv(data_dir: str, kubeconfig: str, extra: list[str]) -> list[str]:
    """The kubelet's flags for a node whose state is under `data_dir` (k8py server's own node, or
    k8py agent's)."""
    import os
    data = os.path.abspath(data_dir)
    args = ["kubelet", "--kubeconfig", kubeconfig, "--root-dir", os.path.join(data, "kubelet"),
            "--data-dir", data]
    tag = data_tag(data)
    if tag:
        args += ["--pod-log-dir", os.path.join(data, "log", "pods"), "--cgroup-root", f"k8py-{tag}",
                 "--cni-bridge", pod_bridge(data)]
    return args + list(extra)


def _k8py(*args: str) -> list[str]:
    return [sys.executable, "-m", "k8py.cli", *args]


async def run(cfg: Config, opts: ServerOptions) -> None:
    srv = APIServer(cfg)
    await srv.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    children = []
    if not opts.disable_controller_manager:
        children.append(Child("controller-manager", _k8py(
            "controller-manager", "--kubeconfig", cfg.kubeconfig, *opts.controller_manager_args)))
    if not opts.disable_scheduler:
        children.append(Child("scheduler", _k8py(
            "scheduler", "--kubeconfig", cfg.kubeconfig, *opts.scheduler_args)))
    if not opts.disable_agent:
        children += node_children(cfg, opts)
    tasks = [asyncio.create_task(c.keep_running(stopping)) for c in children]
    await stopping.wait()
    await asyncio.gather(*(c.stop() for c in children))
    await asyncio.gather(*tasks, return_exceptions=True)
    await srv.stop()
