"""``k8py scheduler``: informers start at once (so a standby has warm
caches), and the scheduling loop runs only while this process holds the
``kube-system/kube-scheduler`` Lease, as kube-scheduler does."""

from __future__ import annotations

import argparse

import logging

from ..client.app import make_client
from ..client.informer import InformerFactory
from ..client.leaderelection import LeaderElector
from .scheduler import Scheduler

log = logging.getLogger(__name__)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--leader-elect", default="true", choices=("true", "false"))
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--leader-elect-resource-name", default="kube-scheduler")
    p.add_argument("--leader-elect-resource-namespace", default="kube-system")
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="the schedulerName this scheduler serves (its profile's name)")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                   help="0: kube's adaptive rule (50%% - nodes/125, at least 5%%)")
    p.add_argument("--pod-initial-backoff-seconds", type=float, default=1.0)
    p.add_argument("--pod-max-backoff-seconds", type=float, default=10.0)
    p.add_argument("--event-qps", type=float, default=50.0,
                   help="Scheduled/FailedScheduling events written per second at most (the rest are dropped)")
    p.add_argument("--event-burst", type=int, default=100)
    p.add_argument("--parallel-binds", type=int, default=64, help="binding requests in flight")


async def main(args: argparse.Namespace) -> int:
    client = make_client(args, "kube-scheduler/v1.32.0 (k8py)", connections=max(args.parallel_binds, 16) + 8)
    informers = InformerFactory(client)
    sched = Scheduler(client, informers, names=(args.scheduler_name,),
                      percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
                      parallel_binds=args.parallel_binds, initial_backoff=args.pod_initial_backoff_seconds,
                      max_backoff=args.pod_max_backoff_seconds, event_qps=args.event_qps,
                      event_burst=args.event_burst)
    informers.start()
    try:
        await informers.wait_for_sync()
        log.info("caches synced: %d nodes, %d pending pods", len(sched.cache.node_list()), len(sched.queue))
        if args.leader_elect == "true":
            elector = LeaderElector(client, args.leader_elect_resource_name,
                                    args.leader_elect_resource_namespace,
                                    lease_duration=args.leader_elect_lease_duration,
                                    renew_deadline=args.leader_elect_renew_deadline,
                                    retry_period=args.leader_elect_retry_period)
            await elector.run(sched.run)
            return 1  # leadership lost: exit and let the supervisor restart us, as kube does
        await sched.run()
        return 0
    finally:
        await informers.stop()
        await client.close()



