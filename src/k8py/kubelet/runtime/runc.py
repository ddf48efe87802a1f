"""The runc runtime: each container an OCI bundle run by runc under a per-container shim.

Usage:

    rt = RuncRuntime(root="/var/lib/k8py/runtime", cgroup_root="k8py")
    await rt.recover()                         # after a kubelet restart: adopt what runs
    sid = await rt.run_pod_sandbox(PodSandboxConfig(uid=..., name=..., namespace=...))
    cid = await rt.create_container(sid, ContainerConfig(name="c", layers=(...), args=("sh",)))
    await rt.start_container(cid)
    session = await rt.exec(cid, ["sh"], tty=True, stdin=True)    # kubectl exec -it
    session = await rt.attach(cid, stdin=True)                      # kubectl attach -i
    await rt.stop_container(cid, timeout=30); await rt.remove_pod_sandbox(sid)

Layout under `root`:

    runc/                            runc's own state (`runc --root`)
    sandboxes/<id>/sandbox.json      the sandbox's config, log dir, namespace files
    sandboxes/<id>/ipc, uts          the pod's persistent IPC and UTS namespaces (bind mounts)
    containers/<id>/meta.json        sandbox and container config, cgroup, log path, shim settings
    containers/<id>/config.json      the OCI spec (see ocispec.py); the bundle is this dir
    containers/<id>/rootfs           overlayfs: lowerdir = image layers, upper/work beside it
    containers/<id>/start.json       written by the shim once the container runs (pid, started_at)
    containers/<id>/exit.json        written by the shim once it has ended (exit code, OOMKilled)
    containers/<id>/attach.sock      the shim's attach socket while the container runs
    logs/<sandbox id>/<name>/<attempt>.log   when the sandbox names no log directory

How a container runs: `start_container` starts `python -m
k8py.kubelet.runtime.shim <dir>` (shim.py), which leaves the kubelet's session,
runs `runc create` + `runc start` as a child subreaper, owns the container's
stdio, writes the CRI log with rotation and, at the end, exit.json. The
runtime watches each shim through a pidfd (no polling; works for processes
that are not its children) and reads exit.json when the shim is gone. So the
kubelet can die (even SIGKILL) and a new RuncRuntime on the same root adopts
everything with `recover()`: its tables come back from sandbox.json,
meta.json, start.json/exit.json and `runc state`.

Exec and attach: `exec` runs `runc exec` with pipes, or with a tty on a pty
pair of ours (runc refuses --console-socket for an exec it waits for, so it
keeps its own pty and copies; our TIOCSWINSZ reaches it as SIGWINCH); its
exit status is the command's, and close() SIGKILLs the command by the pid
runc wrote. `attach` is a client of the shim's attach.sock (see shim.py):
output from the moment it is answered, stdin and resize, the container's
exit code from wait().

Pod namespaces: `run_pod_sandbox` makes the pod's IPC and UTS namespaces
persistent without a pause process (`unshare --ipc=<file> --uts=<file>
hostname <name>`); every container of the pod joins them by path, and
`remove_pod_sandbox` unmounts them. With host_network the container joins no
network or UTS namespace (the host's), as kube does.

Cgroups: `<cgroup_root>/pod<uid>/<container id>` (or `<cgroup_parent>/<id>`
when the sandbox names a parent, which the kubelet then owns) with the
cgroupfs driver, on cgroup v2 or v1 alike (runc handles both); the pod level
directories under `cgroup_root` are removed with the sandbox. OOMKilled comes
from the cgroup's memory events, which the shim reads before `runc delete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import struct
import sys
import time
import tty as tty_mod
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from k8py.kubelet import execute
from k8py.kubelet.runtime import crilog, shim
from k8py.kubelet.runtime.interface import (CREATED, EXITED, REASON_OOM_KILLED, RUNNING, ContainerConfig,
                                            ContainerStats, ContainerStatus, ExecResult, Mount, NotFoundError,
                                            PodSandboxConfig, Resources, RuntimeFailure, SecurityContext)
from k8py.kubelet.runtime.table import ContainerTable
from k8py.kubelet.runtime.ocispec import runtime_spec
from k8py.kubelet.runtime.stats import CGROUP_MOUNT, cgroup_mounts, cgroup_v2, oom_kills, read_cgroup_stats

__all__ = ["RuncRuntime", "CGROUP_MOUNT", "cgroup_mounts", "cgroup_v2", "oom_kills"]

START_TIMEOUT = 30.0
SHIM_MODULE = "k8py.kubelet.runtime.shim"


# -- configs to and from JSON --------------------------------------------------------

def _pairs(v: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in v or ())


def sandbox_config_from(d: dict[str, Any]) -> PodSandboxConfig:
    d = dict(d)
    d["labels"] = _pairs(d.get("labels"))
    return PodSandboxConfig(**d)


def container_config_from(d: dict[str, Any]) -> ContainerConfig:
    d = dict(d)
    d["layers"] = tuple(d.get("layers", ()))
    d["args"] = tuple(d.get("args", ()))
    d["env"] = _pairs(d.get("env"))
    d["labels"] = _pairs(d.get("labels"))
    d["mounts"] = tuple(Mount(**m) for m in d.get("mounts", ()))
    d["resources"] = Resources(**d.get("resources", {}))
    sec = dict(d.get("security", {}))
    for k in ("supplemental_groups", "add_capabilities", "drop_capabilities"):
        sec[k] = tuple(sec.get(k, ()))
    d["security"] = SecurityContext(**sec)
    return ContainerConfig(**d)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_shim(pid: int, cdir: Path) -> bool:
    """Is `pid` still the shim of `cdir` (and not a reused pid)? A started shim names its dir on
    its command line; one forked by the zygote has it as its working directory."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if SHIM_MODULE.encode() not in argv:
        return False
    if str(cdir).encode() in argv:
        return True
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(cdir)
    except OSError:
        return False


def _zygote_request(sock_path: str, cdir: Path, timeout: float) -> bytes:
    """Ask the shim zygote for a shim of `cdir`; its report line (raises OSError when the zygote is not there)."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(json.dumps({"dir": str(cdir)}).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            line += chunk
    return line


def _spawn_shim(argv: list[str], log_path: Path, timeout: float) -> bytes:
    """Start a shim (in a worker thread: subprocess forks with vfork there, see execute.py) and
    return the report line it prints once the container runs or failed to start."""
    import select
    import subprocess
    with open(log_path, "ab") as shim_log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=shim_log,
                                start_new_session=True)
    assert proc.stdout is not None
    line = b""
    try:
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    finally:
        proc.stdout.close()
        proc.wait()  # the shim's first process; the shim itself lives on in its child
    return line


@dataclass
class _Sandbox:
    id: str
    config: PodSandboxConfig
    log_dir: str
    owns_log_dir: bool
    dir: Path
    ipc_path: str | None = None
    uts_path: str | None = None
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
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None
    shim_pid: int = 0
    mounted: bool = False


class RuncRuntime(ContainerTable):
    """RuntimeService on runc; see the module docstring."""

    def __init__(self, root: str = "/var/lib/k8py/runtime", cgroup_root: str = "k8py", runc: str = "runc",
                 log_max_size: int = crilog.DEFAULT_MAX_SIZE, log_max_files: int = crilog.DEFAULT_MAX_FILES,
                 python: str = sys.executable, zygote: bool = False) -> None:
        self.root = Path(root)
        self.state_dir = self.root / "runc"
        self.cgroup_root = cgroup_root.strip("/")
        self.runc = shutil.which(runc) or runc
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.python = python
        self.zygote = zygote
        self._zygote: Any = None
        self._zygote_sock = self.root / "shim-zygote.sock"
        self._zygote_starts = 0  # how many zygotes this runtime started (see _start_shim)
        super().__init__()

    # -- helpers --------------------------------------------------------------

    async def _exec(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        rc, out, err = await execute.run(args)
        if check and rc != 0:
            raise RuntimeFailure(f"{' '.join(args[:4])}...: exit {rc}: {err.decode(errors='replace').strip()}")
        return rc, out, err

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        return await self._exec(self.runc, "--root", str(self.state_dir), *args, check=check)

    # -- sandboxes ------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = secrets.token_hex(12)
        owns = not config.log_directory
        log_dir = config.log_directory or str(self.root / "logs" / sid)
        sdir = self.root / "sandboxes" / sid
        await asyncio.to_thread(os.makedirs, log_dir, exist_ok=True)
        await asyncio.to_thread(os.makedirs, sdir, exist_ok=True)
        sb = _Sandbox(sid, config, log_dir, owns, sdir, ipc_path=str(sdir / "ipc"),
                      uts_path=None if config.host_network else str(sdir / "uts"))
        self._sandboxes[sid] = sb
        try:
            await self._make_namespaces(sb)
            meta = {"id": sid, "config": asdict(config), "log_dir": log_dir, "owns_log_dir": owns,
                    "ipc_path": sb.ipc_path, "uts_path": sb.uts_path, "created_at": time.time()}
            await asyncio.to_thread(shim.write_json, str(sdir / "sandbox.json"), meta)
        except BaseException:
            await self.remove_pod_sandbox(sid)
            raise
        return sid

    async def _make_namespaces(self, sb: _Sandbox) -> None:
        """The pod's IPC (and UTS, with its hostname) namespaces, kept by bind mounts on files."""
        args = ["unshare"]
        for kind, path in (("ipc", sb.ipc_path), ("uts", sb.uts_path)):
            if path:
                Path(path).touch()
                args.append(f"--{kind}={path}")
        if sb.uts_path is None:
            args.append("true")
        else:  # the hostname, set inside the new UTS namespace (no `hostname` program needed)
            args += ["sh", "-c", 'printf %s "$1" > /proc/sys/kernel/hostname', "sh",
                     sb.config.hostname or sb.config.name]
        await self._exec(*args)

    async def _remove_namespaces(self, sb: _Sandbox) -> None:
        for path in (sb.ipc_path, sb.uts_path):
            if path and os.path.ismount(path):
                await self._exec("umount", path, check=False)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid in list(sb.containers):
            await self.remove_container(cid)
        await self._remove_namespaces(sb)
        if not sb.config.cgroup_parent:
            pod_cgroup = f"{self.cgroup_root}/pod{sb.config.uid}"
            for point, _ in cgroup_mounts():
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(f"{point}/{pod_cgroup}")
        if sb.owns_log_dir:
            await asyncio.to_thread(shutil.rmtree, sb.log_dir, True)
        await asyncio.to_thread(shutil.rmtree, sb.dir, True)
        del self._sandboxes[sandbox_id]

    def remove_cgroup_root(self) -> None:
        """rmdir the runtime's top cgroup in every hierarchy (when nothing is left in it)."""
        for point, _ in cgroup_mounts():
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(f"{point}/{self.cgroup_root}")

    # -- containers -----------------------------------------------------------

    def _cgroup_of(self, sb: _Sandbox, cid: str) -> str:
        parent = sb.config.cgroup_parent.strip("/") or f"{self.cgroup_root}/pod{sb.config.uid}"
        return f"/{parent}/{cid}"

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
        status = ContainerStatus(id=cid, name=config.name, sandbox_id=sandbox_id, state=CREATED,
                                 created_at=time.time(), log_path=log_path, attempt=config.attempt)
        c = _Container(cid, sb, config, cdir, self._cgroup_of(sb, cid), log_path, status)
        self._containers[cid] = c
        sb.containers.append(cid)
        try:
            # overlayfs lists the topmost layer first
            lower = ":".join(reversed(config.layers))
            await self._exec("mount", "-t", "overlay", "overlay", "-o",
                             f"lowerdir={lower},upperdir={cdir / 'upper'},workdir={cdir / 'work'}", str(rootfs))
            c.mounted = True
            spec = runtime_spec(sb.config, config, str(rootfs), c.cgroup, ipc_path=sb.ipc_path,
                                uts_path=sb.uts_path)
            await asyncio.to_thread(self._write_bundle, c, spec)
        except BaseException:
            await self.remove_container(cid)
            raise
        return cid

    def _write_bundle(self, c: _Container, spec: dict[str, object]) -> None:
        (c.dir / "config.json").write_text(json.dumps(spec, indent=1))
        meta = {"id": c.id, "sandbox_id": c.sandbox.id, "sandbox": asdict(c.sandbox.config),
                "container": asdict(c.config), "cgroup": c.cgroup, "log_path": c.log_path,
                "created_at": c.status.created_at,
                "shim": {"runc": self.runc, "runc_root": str(self.state_dir),
                         "log_max_size": self.log_max_size, "log_max_files": self.log_max_files}}
        shim.write_json(str(c.dir / "meta.json"), meta)
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
        line = await self._start_shim(c)
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            report = json.loads(line or b"{}")
        if "pid" in report:
            c.shim_pid = int(report["shim_pid"])
            c.status = replace(c.status, state=RUNNING, pid=int(report["pid"]),
                               started_at=float(report["started_at"]))
            c.watcher = asyncio.create_task(self._watch(c), name=f"shim-{c.id}")
            return
        if "shim_pid" in report:  # it is on its way out; let it go before anyone looks
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_shim_gone(int(report["shim_pid"]), c.dir), 5)
        self._apply_exit(c)
        try:
            why = report.get("error") or (c.dir / "shim.log").read_text(errors="replace").strip()[-500:]
        except OSError:
            why = "the shim ended without a report"
        raise RuntimeFailure(f"container {c.id} ({c.config.name}) did not start: {why} {self._log_tail(c)}")

    async def _start_shim(self, c: _Container) -> bytes:
        loop = asyncio.get_running_loop()
        if self.zygote:
            for _ in range(2):
                seen = self._zygote_starts
                try:
                    return await loop.run_in_executor(execute._pool, _zygote_request, str(self._zygote_sock),
                                                      c.dir, START_TIMEOUT + 5)
                except OSError:
                    # several containers starting at once all find the zygote missing: only the
                    # first replaces it, the others use that one (a second replacement would kill
                    # the first's zygote in the middle of a request)
                    if self._zygote_starts == seen and not self._start_zygote():
                        break
        return await loop.run_in_executor(execute._pool, _spawn_shim, [self.python, "-m", SHIM_MODULE, str(c.dir)],
                                          c.dir / "shim.log", START_TIMEOUT + 5)

    def _start_zygote(self) -> bool:
        """(Re)start the shim zygote, from this thread so that it dies with this process."""
        import subprocess
        self.root.mkdir(parents=True, exist_ok=True)
        if self._zygote is not None and self._zygote.poll() is None:
            self._zygote.kill()
            self._zygote.wait()
        try:
            self._zygote = subprocess.Popen([self.python, "-m", SHIM_MODULE, "--zygote", str(self._zygote_sock)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            assert self._zygote.stdout is not None
            ok = self._zygote.stdout.readline() == b"ready\n"
            self._zygote.stdout.close()
            self._zygote_starts += 1
            return ok
        except OSError:
            return False

    async def close(self) -> None:
        """Stop the shim zygote (the shims and containers it made run on)."""
        if self._zygote is not None and self._zygote.poll() is None:
            self._zygote.terminate()
            await asyncio.to_thread(self._zygote.wait)
        self._zygote = None

    def _log_tail(self, c: _Container) -> str:
        with contextlib.suppress(OSError, ValueError):
            lines = Path(c.log_path).read_bytes().splitlines()[-3:]
            return " | ".join(crilog.parse_line(line)[3].decode(errors="replace") for line in lines)
        return ""

    def _apply_exit(self, c: _Container) -> bool:
        """Take exit.json into the status; False when there is none yet."""
        data = _read_json(c.dir / "exit.json")
        if data is None:
            return False
        code = int(data.get("exit_code", 255))
        reason = data.get("reason") or (REASON_OOM_KILLED if data.get("oom_killed")
                                        else "Completed" if code == 0 else "Error")
        c.status = replace(c.status, state=EXITED, exit_code=code, pid=0, reason=reason,
                           message=data.get("message", ""), finished_at=float(data.get("finished_at", 0)),
                           started_at=c.status.started_at or float(data.get("started_at", 0)))
        c.exited.set()
        return True

    async def _watch(self, c: _Container) -> None:
        """Wait for the shim to end (its pidfd becomes readable), then read exit.json."""
        await _shim_gone(c.shim_pid, c.dir)
        # the shim is gone: normally it left exit.json; if it was killed, watch runc instead
        while not self._apply_exit(c):
            rc, out, _ = await self._runc("state", c.id, check=False)
            state = _state_of(out) if rc == 0 else "gone"
            if state not in ("running", "created", "paused"):
                if not self._apply_exit(c):
                    c.status = replace(c.status, state=EXITED, exit_code=255, pid=0, reason="Error",
                                       message="the container's shim ended without its exit status",
                                       finished_at=time.time())
                    c.exited.set()
                return
            await asyncio.sleep(1.0)

    async def _kill(self, c: _Container, sig: str) -> None:
        await self._runc("kill", c.id, sig, check=False)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.status.state == CREATED or c.exited.is_set():
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
        if c.status.state == RUNNING and not c.exited.is_set():
            await self.stop_container(container_id, 0)
        if c.watcher is not None:
            c.watcher.cancel()
            with contextlib.suppress(BaseException):
                await c.watcher
        await self._runc("delete", "--force", c.id, check=False)
        if c.mounted:
            await self._exec("umount", str(c.dir / "rootfs"))
            c.mounted = False
        await asyncio.to_thread(shutil.rmtree, c.dir, True)
        for path in [c.log_path, *crilog.rotated_files(c.log_path)]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(c.log_path))
        del self._containers[container_id]
        with contextlib.suppress(ValueError):
            c.sandbox.containers.remove(container_id)

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._container(container_id)
        s = await asyncio.to_thread(read_cgroup_stats, c.cgroup)
        return ContainerStats(cpu_usage_nanos=s.cpu_usage_nanos, memory_usage_bytes=s.memory_usage_bytes,
                              memory_working_set_bytes=s.memory_working_set_bytes, timestamp=s.timestamp)

    # -- exec and attach --------------------------------------------------------------

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        """`runc exec` with the container's user, env and cwd. On timeout runc exec's process group
        is killed; a process inside that ignores it is left to the container's own end."""
        c = self._running(container_id)
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

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool = False,
                   stdin: bool = False, size: tuple[int, int] | None = None) -> ExecSession:
        """`runc exec` with streamed stdio: pipes, or with a tty a pty pair of ours (see below)."""
        c = self._running(container_id)
        token = secrets.token_hex(6)
        pid_file = c.dir / f"exec-{token}.pid"
        args = [self.runc, "--root", str(self.state_dir), "exec", "--pid-file", str(pid_file)]
        if not tty:
            proc = await asyncio.create_subprocess_exec(
                *args, c.id, *cmd, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
            return ExecSession(proc, pid_file, -1)
        # runc refuses --console-socket unless it detaches (and a detached exec's exit status would
        # go to whichever process reaps orphans), so runc exec keeps its own pty and copies between
        # it and its stdio. Its stdio is a pty of ours, whose controlling process it is: our resize
        # (TIOCSWINSZ on our master) sends it SIGWINCH and it resizes the container's terminal.
        master, slave = os.openpty()
        tty_mod.setraw(slave)  # runc makes it raw too, but only once it runs: nothing cooked before
        if size is not None:  # runc copies its stdin's size to the container's terminal as it starts
            shim.set_winsize(master, *size)
        try:
            # util-linux's setsid --ctty (not a preexec_fn: those are unsafe in a threaded process);
            # our child is no process group leader, so setsid execs runc without forking
            proc = await asyncio.create_subprocess_exec(
                "setsid", "--ctty", *args, "--tty", c.id, *cmd, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return ExecSession(proc, pid_file, master)

    async def attach(self, container_id: str, *, stdin: bool = False) -> AttachSession:
        """Connect to the shim's attach.sock: the container's output from now on, stdin when the
        container was made with stdin, resize when with a tty."""
        c = self._running(container_id)
        try:
            reader, writer = await asyncio.open_unix_connection(str(c.dir / "attach.sock"))
        except OSError as e:
            raise RuntimeFailure(f"attach to {container_id}: {e}") from None
        stdin = stdin and c.config.stdin
        try:
            writer.write(shim.frame(shim.HELLO, b"1" if stdin else b"0"))
            await writer.drain()
            kind, _ = shim.HEADER.unpack(await asyncio.wait_for(reader.readexactly(shim.HEADER.size), 10))
            if kind != shim.HELLO:
                raise RuntimeFailure(f"attach to {container_id}: unexpected frame {kind}")
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
            writer.close()
            raise RuntimeFailure(f"attach to {container_id}: the shim did not answer ({e!r})") from None
        return AttachSession(self, c, reader, writer, stdin=stdin)

    # -- recovery ----------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild the tables from disk after a restart; containers keep running, untouched."""
        for path in sorted((self.root / "sandboxes").glob("*/sandbox.json")):
            data = _read_json(path)
            if data is None or data["id"] in self._sandboxes:
                continue
            self._sandboxes[data["id"]] = _Sandbox(
                data["id"], sandbox_config_from(data["config"]), data["log_dir"], bool(data["owns_log_dir"]),
                path.parent, ipc_path=data.get("ipc_path"), uts_path=data.get("uts_path"))
        metas = []
        for path in (self.root / "containers").glob("*/meta.json"):
            data = _read_json(path)
            if data is not None and data["id"] not in self._containers:
                metas.append((float(data.get("created_at", 0)), path.parent, data))
        for _, cdir, data in sorted(metas, key=lambda m: m[0]):
            await self._adopt(cdir, data)

    async def _adopt(self, cdir: Path, data: dict[str, Any]) -> None:
        sid = data["sandbox_id"]
        sb = self._sandboxes.get(sid)
        if sb is None:  # its sandbox.json is gone: keep the container under a sandbox rebuilt from meta
            sconf = sandbox_config_from(data["sandbox"])
            sb = self._sandboxes[sid] = _Sandbox(sid, sconf, os.path.dirname(os.path.dirname(data["log_path"])),
                                                 False, self.root / "sandboxes" / sid)
        config = container_config_from(data["container"])
        status = ContainerStatus(id=data["id"], name=config.name, sandbox_id=sid, state=CREATED,
                                 created_at=float(data.get("created_at", 0)), log_path=data["log_path"],
                                 attempt=config.attempt)
        c = _Container(data["id"], sb, config, cdir, data["cgroup"], data["log_path"], status,
                       mounted=os.path.ismount(cdir / "rootfs"))
        self._containers[c.id] = c
        sb.containers.append(c.id)
        started = _read_json(cdir / "start.json")
        if started is not None:
            c.status = replace(c.status, started_at=float(started["started_at"]))
        if self._apply_exit(c):
            return
        if started is None:
            return  # made, never started
        c.shim_pid = int(started["shim_pid"])
        c.status = replace(c.status, state=RUNNING, pid=int(started["pid"]))
        c.watcher = asyncio.create_task(self._watch(c), name=f"shim-{c.id}")


async def _shim_gone(pid: int, cdir: Path) -> None:
    """Return once the shim `pid` of `cdir` has ended: a pidfd (which works for processes that are
    not our children) becomes readable then; no polling."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if not _is_shim(pid, cdir):
            return
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        loop.add_reader(pidfd, lambda: gone.done() or gone.set_result(None))
        try:
            await gone
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def _state_of(out: bytes) -> str:
    with contextlib.suppress(ValueError):
        return str(json.loads(out).get("status", ""))
    return ""


def _exit_code(rc: int | None) -> int:
    if rc is None:
        return -1
    return 128 - rc if rc < 0 else rc


class ExecSession:
    """A `runc exec` with streamed stdio (the runtime's StreamSession for kubectl exec)."""

    def __init__(self, proc: asyncio.subprocess.Process, pid_file: Path, master: int) -> None:
        self.proc = proc
        self.pid_file = pid_file
        self.master = master
        self.tty = master >= 0
        self._closed = False

    async def _master_io(self, write: bytes | None = None) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            if self.master < 0:
                return b""
            try:
                if write is None:
                    return os.read(self.master, 65536)
                n = os.write(self.master, write)
                write = write[n:]
                if not write:
                    return b""
            except BlockingIOError:
                pass
            except OSError:  # EIO: the process (the slave's last holder) has ended
                return b""
            ready = loop.create_future()
            add, remove = (loop.add_reader, loop.remove_reader) if write is None else \
                (loop.add_writer, loop.remove_writer)
            add(self.master, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                remove(self.master)

    async def read_stdout(self) -> bytes:
        if self.tty:
            return await self._master_io()
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(65536)

    async def read_stderr(self) -> bytes:
        if self.tty:
            return b""
        assert self.proc.stderr is not None
        return await self.proc.stderr.read(65536)

    async def write_stdin(self, data: bytes) -> None:
        if self.tty:
            await self._master_io(data)
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.tty:
            await self._master_io(b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        if self.master >= 0:
            with contextlib.suppress(OSError):
                shim.set_winsize(self.master, width, height)

    async def wait(self) -> int:
        rc = _exit_code(await self.proc.wait())
        self._cleanup()
        return rc

    def _cleanup(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.returncode is None:
            # runc exec forwards signals, but SIGKILL cannot be forwarded: kill the process itself
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(self.pid_file.read_text()), signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        self._cleanup()


class AttachSession:
    """A client of the container's shim (kubectl attach); see shim.py for the frames."""

    def __init__(self, rt: RuncRuntime, c: _Container, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, stdin: bool) -> None:
        self.rt = rt
        self.container_id = c.id
        self.tty = c.config.tty
        self.stdin = stdin
        self.reader = reader
        self.writer = writer
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._err: asyncio.Queue[bytes] = asyncio.Queue()
        self._exit: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._demux(), name=f"attach-{c.id}")

    async def _demux(self) -> None:
        code: int | None = None
        try:
            while True:
                head = await self.reader.readexactly(shim.HEADER.size)
                kind, size = shim.HEADER.unpack(head)
                payload = await self.reader.readexactly(size)
                if kind == shim.STDOUT:
                    self._out.put_nowait(payload)
                elif kind == shim.STDERR:
                    self._err.put_nowait(payload)
                elif kind == shim.EXIT:
                    code = int(payload)
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._out.put_nowait(b"")
            self._err.put_nowait(b"")
            if not self._exit.done():
                self._exit.set_result(code)

    async def read_stdout(self) -> bytes:
        data = await self._out.get()
        if not data:
            self._out.put_nowait(b"")  # stays at end of stream
        return data

    async def read_stderr(self) -> bytes:
        if self.tty:
            return b""
        data = await self._err.get()
        if not data:
            self._err.put_nowait(b"")
        return data

    async def _send(self, kind: int, payload: bytes = b"") -> None:
        if self.writer.is_closing():
            return
        self.writer.write(shim.frame(kind, payload))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin:
            await self._send(shim.STDIN, data)

    async def close_stdin(self) -> None:
        if self.stdin:
            await self._send(shim.CLOSE_STDIN)

    async def resize(self, width: int, height: int) -> None:
        if self.tty:
            await self._send(shim.RESIZE, struct.pack(">HH", width, height))

    async def wait(self) -> int:
        code = await asyncio.shield(self._exit)
        if code is None:  # detached, or the shim went away before telling: ask the runtime
            return (await self.rt.wait_container(self.container_id)).exit_code
        # the shim says so just before it ends: let the runtime's status catch up, so that a caller
        # that asks for the status next sees it exited
        with contextlib.suppress(asyncio.TimeoutError, RuntimeFailure):
            await asyncio.wait_for(self.rt.wait_container(self.container_id), 5)
        return code

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
