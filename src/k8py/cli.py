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
    p.add_argument("-v", "--verbose", action="store_true")


def _config(args: argparse.Namespace):
    from .apiserver.server import Config
    data_dir = args.data_dir or default_data_dir()
    return Config(data_dir=data_dir, port=args.https_listen_port, bind_address=args.bind_address,
                  kubeconfig=args.write_kubeconfig or os.path.join(data_dir, "kubeconfig.yaml"),
                  datastore_endpoint=args.datastore_endpoint, advertise_address=args.advertise_address,
                  compaction_interval=args.compaction_interval)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8py", description="Kubernetes, written in Python")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _apiserver_flags(sub.add_parser("apiserver", help="run the API server alone"))
    _apiserver_flags(sub.add_parser("server", help="run a whole cluster on this machine"))
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cmd == "version":
        from . import __version__
        print(f"k8py {__version__}")
        return 0
    if args.cmd in ("apiserver", "server"):
        from .apiserver.server import run
        cfg = _config(args)
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
