"""cgroup reading for the runc runtime and its shim: hierarchies, OOM kills, CPU and memory usage.

Usage:

    stats = read_cgroup_stats("/k8py/pod<uid>/<container id>")
    stats.cpu_usage_nanos, stats.memory_working_set_bytes
    oom_kills("/k8py/pod<uid>/<container id>") > 0   # the container was OOMKilled

Stdlib only, because the shim imports it and should stay small. The paths
follow the kernel's documentation for each version:

- cgroup v2 (unified, Documentation/admin-guide/cgroup-v2.rst): `cpu.stat`
  (`usage_usec`), `memory.current`, `memory.stat` (`inactive_file`),
  `memory.events` (`oom_kill`).
- cgroup v1: `cpuacct/<path>/cpuacct.usage` (nanoseconds),
  `memory/<path>/memory.usage_in_bytes`, `memory.stat` (`total_inactive_file`),
  `memory.oom_control` (`oom_kill`). A hierarchy may carry several
  controllers (`cpu,cpuacct`), so the mount point is looked up by controller.

The working set is usage minus inactive file pages, as cAdvisor (and so the
kubelet's eviction manager and `kubectl top`) computes it.
"""

from __future__ import annotations

import time

CGROUP_MOUNT = "/sys/fs/cgroup"


class CgroupStats:
    """One reading of a cgroup (a plain class: dataclasses would pull `inspect` into the shim)."""

    __slots__ = ("cpu_usage_nanos", "memory_usage_bytes", "memory_working_set_bytes", "timestamp")

    def __init__(self, cpu_usage_nanos: int = 0, memory_usage_bytes: int = 0,
                 memory_working_set_bytes: int = 0, timestamp: float = 0.0) -> None:
        self.cpu_usage_nanos = cpu_usage_nanos
        self.memory_usage_bytes = memory_usage_bytes
        self.memory_working_set_bytes = memory_working_set_bytes
        self.timestamp = timestamp


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup hierarchy mounted under /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            _, point, fstype, opts, *_ = line.split()
            if fstype in ("cgroup", "cgroup2") and (point == CGROUP_MOUNT or point.startswith(CGROUP_MOUNT + "/")):
                out.append((point, fstype, set(opts.split(","))))
    return out


def cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of every cgroup hierarchy mounted under /sys/fs/cgroup."""
    return [(point, fstype) for point, fstype, _ in _mounts()]


def cgroup_v2() -> bool:
    """True when /sys/fs/cgroup itself is the unified (v2) hierarchy."""
    return any(point == CGROUP_MOUNT and fstype == "cgroup2" for point, fstype in cgroup_mounts())


def v1_hierarchy(controller: str) -> str | None:
    """The mount point of the v1 hierarchy that carries `controller` (None when there is none)."""
    for point, fstype, opts in _mounts():
        if fstype == "cgroup" and controller in opts:
            return point
    return None


def _flat_keyed(path: str) -> dict[str, int]:
    """A `key value` per line file (memory.stat, cpu.stat, memory.events); {} when unreadable."""
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out


def _int_file(path: str) -> int:
    try:
        return int((_read(path) or "").strip())
    except ValueError:
        return 0


def oom_kills(cgroup_path: str) -> int:
    """How many processes the OOM killer ended in this cgroup (0 when unknown)."""
    rel = cgroup_path.strip("/")
    if cgroup_v2():
        return _flat_keyed(f"{CGROUP_MOUNT}/{rel}/memory.events").get("oom_kill", 0)
    mem = v1_hierarchy("memory")
    return _flat_keyed(f"{mem}/{rel}/memory.oom_control").get("oom_kill", 0) if mem else 0


def read_cgroup_stats(cgroup_path: str) -> CgroupStats:
    """CPU time and memory of one cgroup (zeros for what cannot be read)."""
    rel = cgroup_path.strip("/")
    now = time.time()
    if cgroup_v2():
        base = f"{CGROUP_MOUNT}/{rel}"
        cpu = _flat_keyed(f"{base}/cpu.stat").get("usage_usec", 0) * 1000
        usage = _int_file(f"{base}/memory.current")
        inactive = _flat_keyed(f"{base}/memory.stat").get("inactive_file", 0)
    else:
        acct, mem = v1_hierarchy("cpuacct"), v1_hierarchy("memory")
        cpu = _int_file(f"{acct}/{rel}/cpuacct.usage") if acct else 0
        usage = _int_file(f"{mem}/{rel}/memory.usage_in_bytes") if mem else 0
        inactive = _flat_keyed(f"{mem}/{rel}/memory.stat").get("total_inactive_file", 0) if mem else 0
    return CgroupStats(cpu_usage_nanos=cpu, memory_usage_bytes=usage,
                       memory_working_set_bytes=max(0, usage - inactive), timestamp=now)
