"""The CRI-shaped runtime interface that the kubelet calls.

Shaped like Kubernetes' CRI RuntimeService, cut down to what k8py's kubelet
uses: a pod sandbox (the pod's shared context: network namespace, cgroup
parent, hostname, resolv.conf/hosts) holds containers; each container is
created from a `ContainerConfig`, started, stopped (SIGTERM, then SIGKILL when
the timeout passes) and removed; `container_status` reports Kubernetes'
container states. Every method is a coroutine: implementations do their
blocking work in asyncio subprocesses or threads.

Image handling is not part of this interface: the caller resolves an image to
its ordered layer directories (`ContainerConfig.layers`, bottom layer first)
and the runtime stacks them with overlayfs. Networking is not either: the
caller makes the pod's network namespace (CNI) and passes its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# container states, as in the CRI's ContainerState
CREATED = "created"
RUNNING = "running"
EXITED = "exited"
UNKNOWN = "unknown"

# the reason given to a container that the kernel's OOM killer ended
REASON_OOM_KILLED = "OOMKilled"


class RuntimeFailure(Exception):
    """A runtime operation failed (the message says which and why)."""


class NotFoundError(RuntimeFailure):
    """No sandbox or container with that id."""


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host path into the container (volumes, hostPath...)."""

    container_path: str
    host_path: str
    readonly: bool = False


@dataclass(frozen=True)
class Resources:
    """cgroup settings, in Kubernetes' units (None: no request / no limit)."""

    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class SecurityContext:
    run_as_user: int = 0
    run_as_group: int = 0
    supplemental_groups: tuple[int, ...] = ()
    readonly_rootfs: bool = False
    privileged: bool = False
    add_capabilities: tuple[str, ...] = ()   # names with or without CAP_, any case ("NET_ADMIN", "ALL")
    drop_capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodSandboxConfig:
    uid: str                      # the pod's uid: names its cgroup (pod<uid>)
    name: str
    namespace: str
    hostname: str = ""
    netns_path: str | None = None  # join this network namespace; None: a new empty one per container
    resolv_conf: str | None = None  # host file bind-mounted read-only on /etc/resolv.conf
    hosts_file: str | None = None   # host file bind-mounted read-only on /etc/hosts
    log_directory: str = ""         # where container logs go (e.g. /var/log/pods/<ns>_<name>_<uid>)
    labels: tuple[tuple[str, str], ...] = ()  # kept with the sandbox (kubelet's pod name/namespace/uid)
    host_network: bool = False      # share the host's network namespace (and its UTS)
    cgroup_parent: str = ""         # the pod's cgroup (e.g. "k8py/burstable/pod<uid>"); default <root>/pod<uid>


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    layers: tuple[str, ...]          # image layer directories, bottom (base) layer first
    args: tuple[str, ...]            # the full argv (entrypoint + cmd, already resolved)
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = "/"
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)
    log_path: str = ""               # relative to the sandbox's log_directory; default "<name>/0.log"
    attempt: int = 0                 # restart count, as the CRI's metadata.attempt
    stdin: bool = False              # keep a stdin open for `kubectl attach -i`
    stdin_once: bool = False         # close stdin after the first attach detaches
    tty: bool = False                # the container's stdio is a terminal
    labels: tuple[tuple[str, str], ...] = ()  # kept with the container (kubelet's container name, hash)


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    name: str
    sandbox_id: str
    state: str                       # CREATED, RUNNING, EXITED or UNKNOWN
    pid: int = 0
    exit_code: int = 0
    created_at: float = 0.0          # unix seconds
    started_at: float = 0.0
    finished_at: float = 0.0
    reason: str = ""                 # "OOMKilled", "Completed", "Error" once exited
    message: str = ""
    log_path: str = ""               # absolute path of the CRI-format log file
    attempt: int = 0


@dataclass(frozen=True)
class ContainerStats:
    cpu_usage_nanos: int = 0          # cumulative CPU time
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0  # usage minus inactive file pages, as cAdvisor reports it
    timestamp: float = 0.0


class StreamSession(Protocol):
    """The container side of `kubectl exec` or `kubectl attach`."""

    tty: bool

    async def read_stdout(self) -> bytes:
        """The next chunk of output (with a tty: all output); b"" at end of stream."""

    async def read_stderr(self) -> bytes:
        """The next chunk of stderr; b"" at end of stream (at once with a tty)."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (no-op without a tty)."""

    async def wait(self) -> int:
        """The exit code of the exec'd process; for attach, the container's once it exits."""

    async def close(self) -> None:
        """Detach (attach) or end the process (exec); idempotent."""


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


class RuntimeService(Protocol):
    """What the kubelet needs from a container runtime."""

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        """Make the pod's sandbox; return its id."""

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox (SIGKILL); idempotent."""

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and its containers; idempotent."""

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """Prepare a container (root filesystem, bundle); return its id."""

    async def start_container(self, container_id: str) -> None:
        """Start a created container; return once its process runs."""

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; return once it has exited."""

    async def remove_container(self, container_id: str) -> None:
        """Remove a container (stopping it first if it still runs)."""

    async def container_status(self, container_id: str) -> ContainerStatus:
        """The container's state; raises NotFoundError for an unknown id."""

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        """All containers, or those of one sandbox."""

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        """Run `cmd` in the running container; collect its output and exit code."""

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Return the status once the container has exited."""

    def log_path(self, container_id: str) -> str:
        """Absolute path of the container's CRI-format log file."""

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool = False,
                   stdin: bool = False, size: tuple[int, int] | None = None) -> StreamSession:
        """Start `cmd` in the running container with streamed stdio (kubectl exec); with a
        tty, `size` (width, height) is the terminal's size from the first instruction on."""

    async def attach(self, container_id: str, *, stdin: bool = False) -> StreamSession:
        """Attach to the running container's own stdio (kubectl attach)."""

    async def container_stats(self, container_id: str) -> ContainerStats:
        """CPU and memory usage from the container's cgroup."""

    async def list_sandboxes(self) -> list[tuple[str, PodSandboxConfig]]:
        """Every sandbox the runtime knows: (id, config)."""

    async def recover(self) -> None:
        """Adopt the sandboxes and containers a previous kubelet left running (after a restart)."""
