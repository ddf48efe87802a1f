"""The OCI runtime spec (a bundle's config.json) for one container.

Close to what containerd's CRI plugin generates: new pid and mount
namespaces; the pod's ipc, uts and network namespaces joined by path (none
for network and uts with host_network); a terminal for tty containers; /proc, /dev,
/dev/pts, /dev/shm, /dev/mqueue and a read-only /sys; resolv.conf and hosts
bound from the sandbox; containerd's default capability set with the pod's
add/drop; masked and read-only kernel paths unless privileged; cgroup limits
from the container's resources.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from k8py.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig, Resources

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# every capability up to CAP_CHECKPOINT_RESTORE (40), for privileged containers and "ALL"
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

CPU_PERIOD = 100_000  # microseconds, as the kubelet uses


def capability_name(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def current_capabilities() -> list[str]:
    """The capabilities this process holds (containerd's WithAllCurrentCapabilities): what "all" can
    mean, since runc cannot grant a capability outside its own bounding set (a runtime inside a
    restricted sandbox would fail every privileged container with "unable to apply caps")."""
    try:
        with open("/proc/self/status") as f:
            eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPABILITIES)
    return [c for i, c in enumerate(ALL_CAPABILITIES) if eff >> i & 1]


def capabilities(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool) -> list[str]:
    """The effective capability list: the default set, plus `add`, minus `drop` ("ALL" allowed)."""
    if privileged:
        return current_capabilities()
    adds = {capability_name(c) for c in add}
    drops = {capability_name(c) for c in drop}
    caps = current_capabilities() if "CAP_ALL" in adds else list(DEFAULT_CAPABILITIES)
    caps += [c for c in sorted(adds) if c != "CAP_ALL" and c not in caps]
    if "CAP_ALL" in drops:
        return [c for c in caps if c in adds and c != "CAP_ALL"]
    return [c for c in caps if c not in drops]


def cpu_shares(millis: int | None) -> int:
    """The kubelet's MilliCPUToShares: 1024 per cpu, at least 2."""
    return 2 if not millis else max(2, millis * 1024 // 1000)


def linux_resources(res: Resources, privileged: bool) -> dict[str, Any]:
    cpu: dict[str, Any] = {"shares": cpu_shares(res.cpu_request_millis or res.cpu_limit_millis)}
    if res.cpu_limit_millis:
        cpu["quota"] = max(1000, res.cpu_limit_millis * CPU_PERIOD // 1000)
        cpu["period"] = CPU_PERIOD
    out: dict[str, Any] = {"cpu": cpu,
                           "devices": [{"allow": privileged, "access": "rwm"}]}
    if res.memory_limit_bytes:
        # swap equal to the limit: no swap on top of it (memory+swap in cgroup v1 terms)
        out["memory"] = {"limit": res.memory_limit_bytes, "swap": res.memory_limit_bytes}
    return out


def mounts(sandbox: PodSandboxConfig, config: ContainerConfig) -> list[dict[str, Any]]:
    privileged = config.security.privileged
    out: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        # the container's own cgroups (runc binds each v1 hierarchy's container dir, or mounts cgroup2),
        # as containerd does: programs read their limits under /sys/fs/cgroup
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]},
    ]
    for dest, src in (("/etc/resolv.conf", sandbox.resolv_conf), ("/etc/hosts", sandbox.hosts_file)):
        if src:
            out.append({"destination": dest, "type": "bind", "source": src,
                        "options": ["rbind", "rprivate", "ro"]})
    for m in config.mounts:
        out.append({"destination": m.container_path, "type": "bind", "source": m.host_path,
                    "options": ["rbind", "rprivate", "ro" if m.readonly else "rw"]})
    return out


_SKIP_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every block and character device of the host, for a privileged container (containerd's
    WithHostDevices: the same skipped folders, /dev/console left to the terminal)."""
    out: list[dict[str, Any]] = []

    def walk(d: str) -> None:
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name not in _SKIP_DEV_DIRS:
                        walk(e.path)
                    continue
                if e.path == "/dev/console":
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = "b" if stat.S_ISBLK(st.st_mode) else "c" if stat.S_ISCHR(st.st_mode) else ""
            if kind:
                out.append({"path": e.path.replace(root, "/dev", 1), "type": kind,
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})

    walk(root)
    return out


def namespaces(sandbox: PodSandboxConfig, ipc_path: str | None, uts_path: str | None) -> list[dict[str, str]]:
    """pid and mount of the container's own; ipc and uts the pod's when given by path (as kube's
    pause container holds them); network the pod's netns, or none at all with host_network (the
    host's network and, as kube does, its UTS namespace too)."""
    out: list[dict[str, str]] = [{"type": "pid"}, {"type": "mount"}]
    out.append({"type": "ipc", "path": ipc_path} if ipc_path else {"type": "ipc"})
    if not sandbox.host_network:
        out.append({"type": "uts", "path": uts_path} if uts_path else {"type": "uts"})
        out.append({"type": "network", "path": sandbox.netns_path} if sandbox.netns_path
                   else {"type": "network"})
    return out


def runtime_spec(sandbox: PodSandboxConfig, config: ContainerConfig, rootfs: str,
                 cgroups_path: str, *, ipc_path: str | None = None,
                 uts_path: str | None = None) -> dict[str, Any]:
    """The config.json of the container's bundle.

    `ipc_path`/`uts_path` are the pod's persistent namespaces (bind-mounted
    files); joined by path, the hostname is the one set when they were made,
    so the spec names none.
    """
    sec = config.security
    caps = capabilities(sec.add_capabilities, sec.drop_capabilities, sec.privileged)
    ns = namespaces(sandbox, ipc_path, uts_path)
    env = dict(config.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if sandbox.hostname and not sandbox.host_network:
        env.setdefault("HOSTNAME", sandbox.hostname)
    linux: dict[str, Any] = {
        "namespaces": ns,
        "cgroupsPath": cgroups_path,
        "resources": linux_resources(config.resources, sec.privileged),
    }
    if not sec.privileged:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
    else:
        linux["devices"] = host_devices()
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": config.tty,
            "user": {"uid": sec.run_as_user, "gid": sec.run_as_group,
                     "additionalGids": list(sec.supplemental_groups)},
            "args": list(config.args),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": config.working_dir or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": sec.readonly_rootfs},
        "mounts": mounts(sandbox, config),
        "linux": linux,
    }
    if not sandbox.host_network and not uts_path:
        spec["hostname"] = sandbox.hostname or sandbox.name
    if config.tty:
        env.setdefault("TERM", "xterm")
        spec["process"]["env"] = [f"{k}={v}" for k, v in env.items()]
    return spec
