"""The kubelet's resource usage numbers: /stats/summary (kube's statsapi
Summary) for the node and every running container, sampled every
``period`` seconds as cAdvisor's housekeeping does, with CPU rates
(usageNanoCores) from the difference between two samples.  Metrics
servers and autoscalers read this."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..client.timeutil import now_rfc3339
from .node import _meminfo

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_TICKS = os.sysconf("SC_CLK_TCK")


def _node_cpu_nanos() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    busy = sum(int(x) for i, x in enumerate(parts[:8]) if i not in (3, 4))  # all but idle and iowait
    return busy * 1_000_000_000 // _TICKS


class StatsProvider:
    def __init__(self, kl: "Kubelet", period: float = 10.0) -> None:
        self.kl = kl
        self.period = period
        self.boot = now_rfc3339()
        self._prev: dict[str, tuple[float, int]] = {}   # key -> (time, cpu nanos)
        self._node: Obj = {}
        self._pods: list[Obj] = []

    def _rate(self, key: str, now: float, nanos: int) -> int:
        prev = self._prev.get(key)
        self._prev[key] = (now, nanos)
        if prev is None or now <= prev[0]:
            return 0
        return max(0, int((nanos - prev[1]) / (now - prev[0])))

    async def run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as e:  # noqa: BLE001
                log.debug("stats sample failed: %s", e)
            await asyncio.sleep(self.period)

    async def sample(self) -> None:
        now = time.time()
        ts = now_rfc3339()
        cpu = _node_cpu_nanos()
        mem = _meminfo()
        st = os.statvfs(self.kl.cfg.root_dir)
        used = mem["MemTotal"] - mem.get("MemAvailable", mem["MemFree"])
        self._node = {
            "nodeName": self.kl.node_name, "startTime": self.boot,
            "cpu": {"time": ts, "usageNanoCores": self._rate("node", now, cpu), "usageCoreNanoSeconds": cpu},
            "memory": {"time": ts, "availableBytes": mem.get("MemAvailable", mem["MemFree"]),
                       "usageBytes": used, "workingSetBytes": used, "rssBytes": used - mem.get("Cached", 0),
                       "pageFaults": 0, "majorPageFaults": 0},
            "fs": {"time": ts, "availableBytes": st.f_bavail * st.f_frsize, "capacityBytes": st.f_blocks * st.f_frsize,
                   "usedBytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
                   "inodesFree": st.f_ffree, "inodes": st.f_files, "inodesUsed": st.f_files - st.f_ffree},
        }
        pods = []
        seen = set()
        for w in list(self.kl.workers.values()):
            if w.sandbox_id is None:
                continue
            containers = []
            pod_cpu = pod_rate = pod_mem = pod_ws = 0
            for runs in w.last_instances.values():
                cur = runs[-1] if runs else None
                if cur is None or cur.state != "running":
                    continue
                try:
                    s = await self.kl.runtime.container_stats(cur.id)
                except Exception:  # noqa: BLE001 - exited meanwhile
                    continue
                seen.add(cur.id)
                rate = self._rate(cur.id, now, s.cpu_usage_nanos)
                pod_cpu += s.cpu_usage_nanos
                pod_rate += rate
                pod_mem += s.memory_usage_bytes
                pod_ws += s.memory_working_set_bytes
                containers.append({
                    "name": cur.name, "startTime": _rfc(cur.started_at),
                    "cpu": {"time": ts, "usageNanoCores": rate, "usageCoreNanoSeconds": s.cpu_usage_nanos},
                    "memory": {"time": ts, "usageBytes": s.memory_usage_bytes,
                               "workingSetBytes": s.memory_working_set_bytes, "rssBytes": s.memory_working_set_bytes},
                })
            pods.append({"podRef": {"name": w.name, "namespace": w.namespace, "uid": w.uid},
                         "startTime": w.start_time, "containers": containers,
                         "cpu": {"time": ts, "usageNanoCores": pod_rate, "usageCoreNanoSeconds": pod_cpu},
                         "memory": {"time": ts, "usageBytes": pod_mem, "workingSetBytes": pod_ws}})
        for key in [k for k in self._prev if k != "node" and k not in seen]:
            del self._prev[key]
        self._pods = pods

    def summary(self) -> Obj:
        return {"node": self._node or {"nodeName": self.kl.node_name, "startTime": self.boot}, "pods": self._pods}


def _rfc(t: float) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(t or time.time(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
