"""The ``k8py`` command.

``k8py server`` runs a whole single-node cluster; ``k8py apiserver`` runs the
API server alone.  Later components add their own subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys


def default_data_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/k8py"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "k8py")


def _apiserver_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="state directory (default /var/lib/k8py as root, "
                                                    "~/.local/share/k8py otherwise)")
    p.add_argument("--https-listen-port", type=int, default=6443)
    p.add_argument("--bind-address", default="0.0.0.0")
    p.add_argument("--advertise-address", default="127.0.0.1")
    p.add_argument("--write-kubeconfig", default=None,
                   help="write the admin kubeconfig here once the server answers "
                        "(default <data-dir>/kubeconfig.yaml)")
    p.add_argument("--datastore-endpoint", default="",
                   help="etcd://HOST:PORT[,HOST:PORT] for a real etcd; default embedded SQLite")
    p.add_argument("--compaction-interval", type=float, default=300.0,
                   help="seconds between storage compactions (each keeps one interval of history)")
    p.add_argument("--token-auth-file", default="",
                   help='static bearer tokens, as kube-apiserver\'s: CSV lines token,user,uid,"group1,group2"')
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300,
                   help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod")
    p.add_argument("-v", "--verbose", action="store_true")


def _config(args: argparse.Namespace):
    from .apiserver.server import Config
    data_dir = args.data_dir or default_data_dir()
    return Config(data_dir=data_dir, port=args.https_listen_port, bind_address=args.bind_address,
                  kubeconfig=args.write_kubeconfig or os.path.join(data_dir, "kubeconfig.yaml"),
                  datastore_endpoint=args.datastore_endpoint, advertise_address=args.advertise_address,
                  compaction_interval=args.compaction_interval, token_auth_file=args.token_auth_file,
                  default_not_ready_toleration_seconds=args.default_not_ready_toleration_seconds,
                  default_unreachable_toleration_seconds=args.default_unreachable_toleration_seconds)


def _limit_malloc_arenas() -> None:
    """glibc gives each thread its own malloc arena, and raises its mmap
    threshold after big frees; a server then holds far more memory than it
    uses. Two arenas are plenty for one event loop and its helper threads."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        # a fixed mmap threshold: big buffers (list responses) go back to the
        # system when freed, instead of raising the threshold and staying
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


# Components that talk to the API server: each module has add_flags(parser)
# and ``async def main(args)``; run through k8py.client.app.run.
COMPONENTS = {
    "scheduler": ("k8py.scheduler.app", "run the scheduler"),
    "controller-manager": ("k8py.controllers.manager", "run the controller-manager"),
    "hollow-nodes": ("k8py.hollow.app", "run simulated nodes (hollow kubelets)"),
    "kubelet": ("k8py.kubelet.app", "run the node agent (pods as real containers)"),
    "proxy": ("k8py.proxy.app", "run the service proxy (nftables)"),
    "ingress": ("k8py.ingress.app", "run the ingress controller"),
    "dns": ("k8py.dns.app", "run the cluster DNS server"),
}


def _run_component(name: str, argv: list[str]) -> int:
    import importlib

    from .client import app
    mod = importlib.import_module(COMPONENTS[name][0])
    p = argparse.ArgumentParser(prog=f"k8py {name}", description=COMPONENTS[name][1])
    app.add_client_flags(p)
    mod.add_flags(p)
    return app.run(mod.main, p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMPONENTS:
        return _run_component(argv[0], argv[1:])
    if argv and argv[0] == "agent":
        from .agent import main as agent_main
        return agent_main(argv[1:])
    if argv and argv[0] == "images":
        from .kubelet.images.cli import main as images_main
        return images_main(argv[1:])
    if argv and argv[0] == "killall":
        from .killall import main as killall_main
        return killall_main(argv[1:])
    parser = argparse.ArgumentParser(prog="k8py", description="Kubernetes, written in Python")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, (_, help_) in COMPONENTS.items():
        sub.add_parser(name, help=help_, add_help=False)
    _apiserver_flags(sub.add_parser("apiserver", help="run the API server alone"))
    server = sub.add_parser("server", help="run a whole cluster on this machine")
    _apiserver_flags(server)
    server.add_argument("--disable-scheduler", action="store_true")
    server.add_argument("--disable-controller-manager", action="store_true")
    server.add_argument("--kube-scheduler-arg", action="append", default=[],
                        help="extra flag for the scheduler (repeatable), e.g. --kube-scheduler-arg=-v")
    server.add_argument("--kube-controller-manager-arg", action="append", default=[],
                        help="extra flag for the controller-manager (repeatable)")
    server.add_argument("--disable-agent", action="store_true",
                        help="run the control plane only, no kubelet on this machine")
    server.add_argument("--kubelet-arg", action="append", default=[],
                        help="extra flag for the kubelet (repeatable), e.g. --kubelet-arg=--max-pods=50")
    server.add_argument("--disable", action="append", default=[], choices=("proxy", "dns", "ingress"),
                        help="do not run this node component (repeatable)")
    server.add_argument("--kube-proxy-arg", action="append", default=[], help="extra flag for k8py proxy")
    server.add_argument("--dns-arg", action="append", default=[], help="extra flag for k8py dns")
    server.add_argument("--ingress-arg", action="append", default=[], help="extra flag for k8py ingress")
    sub.add_parser("agent", help="join this machine to a cluster as a node (--server URL --token TOKEN)",
                   add_help=False)
    sub.add_parser("images", help="manage the node's images (import, ls, rm, pull, build-busybox)", add_help=False)
    sub.add_parser("killall", help="stop this node's pods and remove its bridge, tables and routes "
                                   "(after the server or agent stopped)", add_help=False)
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cmd == "version":
        from . import __version__
        print(f"k8py {__version__}")
        return 0
    if args.cmd in ("apiserver", "server"):
        from .apiserver.server import run as run_apiserver
        cfg = _config(args)
        if args.cmd == "server":
            from . import supervisor
            opts = supervisor.ServerOptions(
                disable_scheduler=args.disable_scheduler,
                disable_controller_manager=args.disable_controller_manager,
                scheduler_args=args.kube_scheduler_arg,
                controller_manager_args=args.kube_controller_manager_arg,
                disable_agent=args.disable_agent, kubelet_args=args.kubelet_arg, disable=args.disable,
                proxy_args=args.kube_proxy_arg, dns_args=args.dns_arg, ingress_args=args.ingress_arg)

            async def run(cfg):  # type: ignore[no-redef]
                await supervisor.run(cfg, opts)
        else:
            run = run_apiserver
        print(f"k8py {args.cmd}: data dir {cfg.data_dir}, kubeconfig {cfg.kubeconfig}", file=sys.stderr)
        _limit_malloc_arenas()
        # The storage writer thread gives up the GIL inside every SQLite call;
        # with the default 5 ms switch interval each call can then wait that
        # long for the busy event loop. A short interval keeps commits flowing.
        sys.setswitchinterval(0.0005)
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            asyncio.run(run(cfg))
        else:
            uvloop.run(run(cfg))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
