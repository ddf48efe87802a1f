"""``k8py controller-manager``: every controller in one process, sharing
one set of informers, active only while it holds the
``kube-system/kube-controller-manager`` Lease."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..client.app import make_client
from ..client.informer import InformerFactory
from ..client.leaderelection import LeaderElector
from . import discover
from .context import ControllerContext, Options

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--controllers", default="*",
                   help="comma-separated controllers to run; '*' is all, '-name' disables one")
    p.add_argument("--leader-elect", default="true", choices=("true", "false"))
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0)
    p.add_argument("--node-monitor-period", type=float, default=5.0)
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--allocate-node-cidrs", default="true", choices=("true", "false"))
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500)
    # k8py's own (kube fixes these periods in code; tests shorten them)
    p.add_argument("--pod-gc-check-period", type=float, default=20.0, help=argparse.SUPPRESS)
    p.add_argument("--pod-gc-quarantine-time", type=float, default=40.0, help=argparse.SUPPRESS)


def enabled(spec: str) -> list[str]:
    known = discover()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    out = sorted(known) if "*" in names else []
    for n in names:
        if n.startswith("-"):
            if n[1:] in out:
                out.remove(n[1:])
        elif n != "*" and n not in out:
            if n not in known:
                raise SystemExit(f"unknown controller {n!r}; known: {', '.join(sorted(known))}")
            out.append(n)
    return out


def build(ctx: ControllerContext, names: list[str]) -> list:
    known = discover()
    return [known[n](ctx) for n in names]


async def _keep_running(controller) -> None:
    """One controller's crash must not stop the others: log it and start it
    again after a pause, as kube's controller-manager keeps its loops alive."""
    delay = 1.0
    while True:
        try:
            await controller.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged, then retried
            log.exception("controller %s crashed; restarting in %.0f s",
                          getattr(controller, "name", type(controller).__name__), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


async def main(args: argparse.Namespace) -> int:
    client = make_client(args, "kube-controller-manager/v1.32.0 (k8py)")
    opts = Options(node_monitor_grace_period=args.node_monitor_grace_period,
                   node_monitor_period=args.node_monitor_period,
                   cluster_cidr=args.cluster_cidr, node_cidr_mask_size=args.node_cidr_mask_size,
                   allocate_node_cidrs=args.allocate_node_cidrs == "true",
                   terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
                   pod_gc_check_period=args.pod_gc_check_period,
                   pod_gc_quarantine=args.pod_gc_quarantine_time)

    async def lead() -> None:
        informers = InformerFactory(client)
        ctx = ControllerContext(client, informers, opts)
        controllers = build(ctx, enabled(args.controllers))
        informers.start()
        await informers.wait_for_sync()
        log.info("caches synced; running %d controllers", len(controllers))
        try:
            await asyncio.gather(*(_keep_running(c) for c in controllers))
        finally:
            await informers.stop()

    try:
        if args.leader_elect == "true":
            elector = LeaderElector(client, "kube-controller-manager",
                                    lease_duration=args.leader_elect_lease_duration,
                                    renew_deadline=args.leader_elect_renew_deadline,
                                    retry_period=args.leader_elect_retry_period)
            await elector.run(lead)
            return 1  # leadership lost: exit so a supervisor restarts us, as kube does
        await lead()
        return 0
    finally:
        await client.close()
