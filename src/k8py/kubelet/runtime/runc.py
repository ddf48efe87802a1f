"""The runc runtime: each container an OCI bundle run by `runc run`.

Layout under `root` (default /var/lib/k8py/runtime):

    runc/                          runc's own state (`runc --root`)
    containers/<id>/meta.json      the sandbox and container config (for adoption later)
    containers/<id>/config.json    the OCI spec (see ocispec.py); the bundle is this dir
    containers/<id>/rootfs         overlayfs: lowerdir = image layers, upper/work beside it
    containers/<id>/upper, work
    logs/<sandbox id>/<name>/<attempt>.log   when the sandbox names no log directory

How a container runs: `start_container` spawns `runc run --keep` with its
stdout and stderr on pipes, in its own session, and a supervisor task pumps
both into the CRI-format log (crilog.py) and waits for runc, whose exit
status is the container's (128+signal when killed). `--keep` leaves the
stopped container and its cgroup in place so that the OOM killer's count can
be read (`memory.events` on cgroup v2, `memory.oom_control` on v1) before
`remove_container` runs `runc delete`. `runc run` was chosen over
`runc create` + `runc start` because runc's detached mode hands the container
to whichever process reaps orphans, and getting its exit status back would
need the kubelet to become a child subreaper.

What this does not survive: the supervisor lives in the kubelet's process. If
the kubelet dies, runc run (its own session, so not signalled with it) and
the container keep running, but once the pipes' reader is gone the container
gets EPIPE/SIGPIPE on its next write and the exit status is lost. Adopting
containers after a kubelet restart needs a small per-container shim process
(what containerd-shim is): it would own the pipes, write the log and an exit
file (`containers/<id>/exit.json`), and the restarted kubelet would rebuild
its table from meta.json, `runc state` and those exit files.

Cgroups: `<cgroup_root>/pod<uid>/<container id>` with the cgroupfs driver, on
cgroup v2 or v1 alike (runc handles both); the pod level directories are
removed with the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.interface import (CREATED, EXITED, REASON_OOM_KILLED, RUNNING, ContainerConfig,
                                            ContainerStatus, ExecResult, NotFoundError, PodSandboxConfig,
                                            RuntimeFailure)
from k8py.kubelet.runtime.ocispec import runtime_spec

CGROUP_MOUNT = "/sys/fs/cgroup"
START_TIMEOUT = 30.0


def cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of every cgroup hierarchy mounted under /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            _, point, fstype, *_ = line.split()
            if fstype in ("cgroup", "cgroup2") and (point == CGROUP_MOUNT or point.startswith(CGROUP_MOUNT + "/")):
                out.append((point, fstype))
    return out


def cgroup_v2() -> bool:
    """True when /sys/fs/cgroup itself is the unified (v2) hierarchy."""
    return any(point == CGROUP_MOUNT and fstype == "cgroup2" for point, fstype in cgroup_mounts())


def oom_kills(cgroup_path: str) -> int:
    """How many processes the OOM killer ended in this cgroup (0 when unknown)."""
    rel = cgroup_path.lstrip("/")
    for path in (f"{CGROUP_MOUNT}/{rel}/memory.events", f"{CGROUP_MOUNT}/memory/{rel}/memory.oom_control"):
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return 0


@dataclass
class _Sandbox:
    id: str
    config: PodSandboxConfig
    log_dir: str
    owns_log_dir: bool
    containers: list[str] = field(default_factory=list)


@dataclass
class _Container:
    id: str
    sandbox: _Sandbox
    config: ContainerConfig
    dir: Path
    cgroup: str
    log_path: str
    status: ContainerStatus
    proc: asyncio.subprocess.Process | None = None
    supervisor: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    mounted: bool = False
    spawned_at: float = 0.0


class RuncRuntime:
    """RuntimeService on runc; see the module docstring."""

    def __init__(self, root: str = "/var/lib/k8py/runtime", cgroup_root: str = "k8py", runc: str = "runc") -> None:
        self.root = Path(root)
        self.state_dir = self.root / "runc"
        self.cgroup_root = cgroup_root.strip("/")
        self.runc = runc
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}

    # -- helpers --------------------------------------------------------------

    async def _exec(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        rc = proc.returncode if proc.returncode is not None else -1
        if check and rc != 0:
            raise RuntimeFailure(f"{' '.join(args[:4])}...: exit {rc}: {err.decode(errors='replace').strip()}")
        return rc, out, err

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        return await self._exec(self.runc, "--root", str(self.state_dir), *args, check=check)

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found") from None

    def _container(self, container_id: str) -> _Container:
        try:
            return self._containers[container_id]
        except KeyError:
            raise NotFoundError(f"container {container_id} not found") from None

    # -- sandboxes ------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = secrets.token_hex(12)
        owns = not config.log_directory
        log_dir = config.log_directory or str(self.root / "logs" / sid)
        await asyncio.to_thread(os.makedirs, log_dir, exist_ok=True)
        self._sandboxes[sid] = _Sandbox(sid, config, log_dir, owns)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        await asyncio.gather(*(self.stop_container(cid, 0) for cid in list(sb.containers)))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid in list(sb.containers):
            await self.remove_container(cid)
        pod_cgroup = f"{self.cgroup_root}/pod{sb.config.uid}"
        for point, _ in cgroup_mounts():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(f"{point}/{pod_cgroup}")
        if sb.owns_log_dir:
            await asyncio.to_thread(shutil.rmtree, sb.log_dir, True)
        del self._sandboxes[sandbox_id]

    def remove_cgroup_root(self) -> None:
        """rmdir the runtime's top cgroup in every hierarchy (when nothing is left in it)."""
        for point, _ in cgroup_mounts():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(f"{point}/{self.cgroup_root}")

    # -- containers -----------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sb = self._sandbox(sandbox_id)
        if not config.layers:
            raise RuntimeFailure(f"container {config.name}: no image layers")
        cid = secrets.token_hex(12)
        cdir = self.root / "containers" / cid
        rootfs = cdir / "rootfs"
        for d in (rootfs, cdir / "upper", cdir / "work"):
            await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        log_path = os.path.join(sb.log_dir, config.log_path or f"{config.name}/{config.attempt}.log")
        cgroup = f"/{self.cgroup_root}/pod{sb.config.uid}/{cid}"
        status = ContainerStatus(id=cid, name=config.name, sandbox_id=sandbox_id, state=CREATED,
                                 created_at=time.time(), log_path=log_path, attempt=config.attempt)
        c = _Container(cid, sb, config, cdir, cgroup, log_path, status)
        self._containers[cid] = c
        sb.containers.append(cid)
        try:
            # overlayfs lists the topmost layer first
            lower = ":".join(reversed(config.layers))
            await self._exec("mount", "-t", "overlay", "overlay", "-o",
                             f"lowerdir={lower},upperdir={cdir / 'upper'},workdir={cdir / 'work'}", str(rootfs))
            c.mounted = True
            spec = runtime_spec(sb.config, config, str(rootfs), cgroup)
            await asyncio.to_thread(self._write_bundle, c, spec)
        except BaseException:
            await self.remove_container(cid)
            raise
        return cid

    def _write_bundle(self, c: _Container, spec: dict[str, object]) -> None:
        (c.dir / "config.json").write_text(json.dumps(spec, indent=1))
        meta = {"id": c.id, "sandbox_id": c.sandbox.id, "sandbox": asdict(c.sandbox.config),
                "container": asdict(c.config), "cgroup": c.cgroup, "log_path": c.log_path}
        (c.dir / "meta.json").write_text(json.dumps(meta, indent=1))
        os.makedirs(os.path.dirname(c.log_path), exist_ok=True)
        # rootfs mount points runc needs for the sandbox's binds
        for dest in ("etc/resolv.conf", "etc/hosts"):
            p = c.dir / "rootfs" / dest
            if not p.exists() and not p.is_symlink() and not c.config.security.readonly_rootfs:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.status.state != CREATED:
            raise RuntimeFailure(f"container {container_id} is {c.status.state}, not created")
        pid_file = c.dir / "pid"
        log: BinaryIO = await asyncio.to_thread(open, c.log_path, "ab")
        c.spawned_at = time.time()
        try:
            c.proc = await asyncio.create_subprocess_exec(
                self.runc, "--root", str(self.state_dir), "run", "--keep", "--bundle", str(c.dir),
                "--pid-file", str(pid_file), c.id,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except BaseException:
            log.close()
            raise
        c.supervisor = asyncio.create_task(self._supervise(c, c.proc, log), name=f"runc-{c.id}")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text())
                if not c.exited.is_set():  # else it ran and ended already: the supervisor said so
                    c.status = replace(c.status, state=RUNNING, pid=pid, started_at=c.spawned_at)
                return
            if c.exited.is_set():
                break
            if time.monotonic() > deadline:
                await self._kill(c, "KILL")
                await c.exited.wait()
                break
            await asyncio.sleep(0.005)
        raise RuntimeFailure(f"container {c.id} ({c.config.name}) did not start: {self._log_tail(c)}")

    def _log_tail(self, c: _Container) -> str:
        with contextlib.suppress(OSError):
            lines = Path(c.log_path).read_bytes().splitlines()[-3:]
            return " | ".join(crilog.parse_line(line)[3].decode(errors="replace") for line in lines)
        return ""

    async def _supervise(self, c: _Container, proc: asyncio.subprocess.Process, log: BinaryIO) -> None:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(crilog.pump(proc.stdout, "stdout", log),
                                 crilog.pump(proc.stderr, "stderr", log), proc.wait())
        finally:
            log.close()
            code = proc.returncode if proc.returncode is not None else -1
            if code < 0:  # runc itself was signalled
                code = 128 - code
            oom = oom_kills(c.cgroup) > 0
            reason = REASON_OOM_KILLED if oom else ("Completed" if code == 0 else "Error")
            started = c.status.started_at or c.spawned_at
            c.status = replace(c.status, state=EXITED, exit_code=code, finished_at=time.time(),
                               started_at=started, reason=reason, pid=0)
            c.exited.set()

    async def _kill(self, c: _Container, sig: str) -> None:
        await self._runc("kill", c.id, sig, check=False)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.status.state == CREATED:
            return
        if c.exited.is_set():
            return
        if timeout > 0:
            await self._kill(c, "TERM")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(c.exited.wait(), timeout)
        while not c.exited.is_set():
            await self._kill(c, "KILL")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(c.exited.wait(), 2)

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.proc is not None and not c.exited.is_set():
            await self.stop_container(container_id, 0)
        if c.supervisor is not None:
            with contextlib.suppress(Exception):
                await c.supervisor
        await self._runc("delete", "--force", c.id, check=False)
        if c.mounted:
            await self._exec("umount", str(c.dir / "rootfs"))
            c.mounted = False
        await asyncio.to_thread(shutil.rmtree, c.dir, True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.log_path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(c.log_path))
        del self._containers[container_id]
        with contextlib.suppress(ValueError):
            c.sandbox.containers.remove(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status for c in self._containers.values() if sandbox_id in (None, c.sandbox.id)]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        c = self._container(container_id)
        if c.status.state == CREATED:
            raise RuntimeFailure(f"container {container_id} was not started")
        await c.exited.wait()
        return c.status

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        """`runc exec` with the container's user, env and cwd. On timeout runc exec's process group
        is killed; a process inside that ignores it is left to the container's own end."""
        c = self._container(container_id)
        if c.status.state != RUNNING:
            raise RuntimeFailure(f"container {container_id} is not running")
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.state_dir), "exec", c.id, *cmd,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise RuntimeFailure(f"exec in {container_id} timed out after {timeout}s") from None
        return ExecResult(out, err, proc.returncode if proc.returncode is not None else -1)

    def log_path(self, container_id: str) -> str:
        return self._container(container_id).log_path
