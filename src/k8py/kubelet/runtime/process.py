"""The `process` runtime: containers as plain host processes, for machines without root.

    rt = ProcessRuntime("/tmp/k8py-runtime")      # logs a warning: there is no isolation
    await rt.recover()                            # clean up what a dead kubelet left
    sid = await rt.run_pod_sandbox(PodSandboxConfig(uid=..., name=..., namespace=...))
    cid = await rt.create_container(sid, ContainerConfig(name="c", layers=(layer_dir,), args=("sh", "-c", "...")))
    await rt.start_container(cid)

There is NO isolation: no namespaces, no cgroups, no root filesystem of the
image. What each part of a container becomes instead:

- **Program.** argv[0] is looked up in the image first, as the union of its
  layer directories (top layer first, OCI whiteouts and opaque markers
  honoured, symlinks followed inside the union: busybox's applets are links to
  /bin/busybox), by $PATH of the container's env when it has no slash; then
  on the host ($PATH, or the absolute path). The file found is executed with
  the container's own argv[0], so a multi-call binary picks the right applet.
  Everything the program itself opens or runs is the host's.
- **Working directory.** The host path of a volume when working_dir lies in
  one; else working_dir itself when it exists on the host and is not "/";
  else the container's own scratch directory (`<root>/containers/<id>/scratch`).
- **Volumes.** ContainerConfig.mounts cannot be bind-mounted: each is exported
  as `K8PY_MOUNT_<PATH>=<host path>`, where PATH is the container path with
  every character outside [A-Za-z0-9] made `_` and upper-cased
  (/usr/share/html -> K8PY_MOUNT_USR_SHARE_HTML). The sandbox's resolv.conf
  and hosts files likewise (K8PY_MOUNT_ETC_RESOLV_CONF, K8PY_MOUNT_ETC_HOSTS).
- **Environment.** Exactly ContainerConfig.env, plus HOSTNAME (the sandbox's
  hostname, as containerd adds it) and a default PATH when env has none.
- **Network.** The host's: a sandbox is only a record, and the kubelet reports
  the host IP as the pod IP. Two pods that listen on one port collide.
- **User.** When the runtime runs as root, run_as_user/run_as_group/
  supplemental_groups are applied (setgid/setuid); otherwise processes run
  as the kubelet's user. Resources and capabilities are ignored.
- **Processes.** Each container is a new session and process group; its
  stdout and stderr (or its terminal, with tty) are pumped into the CRI log
  (crilog.py). Stop is SIGTERM to the group, then SIGKILL after the timeout.
  When the main process ends, what is left of its group is SIGKILLed, as the
  end of a pid namespace would. Exit code 128+n after signal n; reason
  Completed (0) or Error.
- **Stats.** CPU and memory of the group's processes from /proc/<pid>/stat
  and statm.

**Kubelet restarts.** Containers do not survive the kubelet: each main process
gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the thread that started it
(the kubelet's event-loop thread), and its logs could not be pumped anyway.
`recover()` therefore adopts nothing: it SIGKILLs whatever is left of the
recorded process groups (checking the leader's start time, so a reused pid is
never signalled), deletes the stale container and sandbox records and their
scratch directories, and the kubelet recreates its pods from the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import pty
import re
import secrets
import shutil
import signal
import stat
import termios
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.shim import set_winsize as _set_winsize
from k8py.kubelet.runtime.interface import (CREATED, EXITED, RUNNING, ContainerConfig, ContainerStats,
                                            ContainerStatus, ExecResult, Mount, NotFoundError, PodSandboxConfig,
                                            RuntimeFailure)
from k8py.kubelet.runtime.table import ContainerTable

log = logging.getLogger("k8py.kubelet.runtime.process")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
MAX_SYMLINKS = 40
PR_SET_PDEATHSIG = 1
# how long the pumps may go on after the group was killed (a process that left the group
# with setsid can keep the pipe open; it is not waited for)
DRAIN_TIMEOUT = 2.0

_libc = ctypes.CDLL(None, use_errno=True)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ExecTimeout(RuntimeFailure, TimeoutError):
    """exec_sync's command ran past its timeout (a TimeoutError, so probes count it as a failure)."""


def mount_env_name(container_path: str) -> str:
    """K8PY_MOUNT_<PATH>: the env var that tells a process where a volume is on the host."""
    return "K8PY_MOUNT_" + re.sub(r"[^A-Za-z0-9]", "_", container_path.strip("/")).upper()


# -- the image as a union of layer directories ---------------------------------------------------

def _whited_out(layer: str, rel_parent: str, name: str) -> bool:
    """True when `layer` hides `name` in rel_parent of the layers below it.

    Both forms count: overlayfs' 0/0 character device (what a root unpack makes) and the
    OCI `.wh.<name>` file (what an unprivileged unpack keeps)."""
    if os.path.lexists(os.path.join(layer, rel_parent, WHITEOUT_PREFIX + name)):
        return True
    with contextlib.suppress(OSError):
        st = os.lstat(os.path.join(layer, rel_parent, name))
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    return False


def _opaque(layer: str, rel_dir: str) -> bool:
    d = os.path.join(layer, rel_dir)
    if os.path.lexists(os.path.join(d, OPAQUE_WHITEOUT)):
        return True
    with contextlib.suppress(OSError):
        return os.getxattr(d, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    return False


def union_lookup(layers: tuple[str, ...] | list[str], path: str) -> str | None:
    """The host path of `path` (absolute, in the image) in the union of `layers` (bottom first).

    Symlinks are followed inside the union (an absolute target starts again at the image's root),
    as the kernel would inside the container. None when the path does not exist in the image."""
    top_first = list(reversed(layers))
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []          # resolved components so far (relative to the image root)
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        rel_parent = "/".join(done)
        found: str | None = None
        for layer in top_first:
            candidate = os.path.join(layer, rel_parent, name)
            if _whited_out(layer, rel_parent, name):
                break
            if os.path.lexists(candidate):
                found = candidate
                break
            if _opaque(layer, rel_parent):
                break
        if found is None:
            return None
        if os.path.islink(found):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            target = os.readlink(found)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if parts and not os.path.isdir(found):
            return None
        done.append(name)
        if not parts:
            return found
    # the root itself: the top layer's directory
    return top_first[0] if top_first else None


def _is_exec(path: str | None) -> bool:
    return path is not None and os.path.isfile(path) and os.access(path, os.X_OK)


def resolve_program(layers: tuple[str, ...], argv0: str, env: dict[str, str], cwd_in_image: str = "/") -> str:
    """The host file to execute for argv0: in the image first, then on the host."""
    if "/" in argv0:
        in_image = argv0 if argv0.startswith("/") else os.path.join(cwd_in_image, argv0)
        hit = union_lookup(layers, in_image) if layers else None
        if _is_exec(hit):
            assert hit is not None
            return hit
        if argv0.startswith("/") and _is_exec(argv0):
            return argv0
        raise RuntimeFailure(f"exec: {argv0!r}: no such file (neither in the image nor on the host)")
    search = env.get("PATH", DEFAULT_PATH).split(":")
    for d in search:
        if d.startswith("/") and layers:
            hit = union_lookup(layers, os.path.join(d, argv0))
            if _is_exec(hit):
                assert hit is not None
                return hit
    host = shutil.which(argv0, path=os.environ.get("PATH", DEFAULT_PATH))
    if host:
        return host
    raise RuntimeFailure(f"exec: {argv0!r}: executable file not found in $PATH (image or host)")


# -- /proc ----------------------------------------------------------------------------------------

def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command (index 0 = state, field 3 of the man page)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    f = _proc_stat(pid)
    return int(f[19]) if f else None  # starttime (field 22)


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _proc_stat(int(entry))
            if f and int(f[2]) == pgid and f[0] != "Z":  # pgrp (field 5)
                out.append(int(entry))
    return out


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- records --------------------------------------------------------------------------------------

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
    log_path: str
    status: ContainerStatus
    proc: asyncio.subprocess.Process | None = None
    proc_exited: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: asyncio.Task[None] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    stdin_w: int | None = None          # the write end of the container's stdin (pipe or pty master)
    pty_master: int | None = None
    # attach subscribers per stream ("stdout", "stderr"); each gets every chunk, b"" at the end
    subscribers: dict[str, list[asyncio.Queue[bytes]]] = field(
        default_factory=lambda: {"stdout": [], "stderr": []})
    stdin_attached: bool = False


# -- streams --------------------------------------------------------------------------------------

class _FdReader:
    """Reads a non-blocking fd (a pty master) from the event loop; EIO (the slave side is gone)
    and EOF both end the stream."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.done = False
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._ready)

    def _ready(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stop()
        else:
            self.queue.put_nowait(data)

    def stop(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)
            self.queue.put_nowait(b"")

    async def read(self) -> bytes:
        if self.done and self.queue.empty():
            return b""
        return await self.queue.get()


async def _write_fd(fd: int, data: bytes) -> None:
    """Write all of data to a (possibly non-blocking) fd without blocking the loop."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            await asyncio.sleep(0.005)


class _ExecSession:
    """kubectl exec: a new process in the container's cwd and env, on pipes or a pty."""

    def __init__(self, proc: asyncio.subprocess.Process, exited: asyncio.Event, tty: bool,
                 master: int | None) -> None:
        self.proc = proc
        self.exited = exited
        self.tty = tty
        self.master = master
        self._tty_reader = _FdReader(master) if master is not None else None
        self._closed = False

    async def read_stdout(self) -> bytes:
        if self._tty_reader is not None:
            return await self._tty_reader.read()
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(65536)

    async def read_stderr(self) -> bytes:
        if self.tty or self.proc.stderr is None:
            return b""
        return await self.proc.stderr.read(65536)

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            await _write_fd(self.master, data)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            # a terminal has no half-close: ^D asks the line discipline for end of file
            with contextlib.suppress(OSError):
                await _write_fd(self.master, b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                _set_winsize(self.master, width, height)

    async def wait(self) -> int:
        """The exit code once the process itself has ended (output may still be buffered)."""
        await self.exited.wait()
        rc = self.proc.returncode if self.proc.returncode is not None else -1
        return 128 - rc if rc < 0 else rc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.exited.is_set():
            _kill_group(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.exited.wait(), 5)
        if self._tty_reader is not None:
            self._tty_reader.stop()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None


class _AttachSession:
    """kubectl attach: the container's own output (from now on) and, when it has one, its stdin."""

    def __init__(self, c: _Container, stdin: bool) -> None:
        self.c = c
        self.tty = c.config.tty
        self.stdin = stdin
        self.queues = {s: asyncio.Queue[bytes]() for s in ("stdout", "stderr")}
        for s, q in self.queues.items():
            if c.exited.is_set():
                q.put_nowait(b"")
            else:
                c.subscribers[s].append(q)
        self._closed = False

    async def _read(self, stream: str) -> bytes:
        if self._closed:
            return b""
        return await self.queues[stream].get()

    async def read_stdout(self) -> bytes:
        return await self._read("stdout")

    async def read_stderr(self) -> bytes:
        if self.tty:
            return b""
        return await self._read("stderr")

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin and self.c.stdin_w is not None:
            with contextlib.suppress(OSError):
                await _write_fd(self.c.stdin_w, data)

    async def close_stdin(self) -> None:
        """Only stdinOnce closes the container's stdin; otherwise the next attach may use it."""
        if self.stdin and self.c.config.stdin_once:
            _close_stdin(self.c)

    async def resize(self, width: int, height: int) -> None:
        if self.c.pty_master is not None:
            with contextlib.suppress(OSError):
                _set_winsize(self.c.pty_master, width, height)

    async def wait(self) -> int:
        await self.c.exited.wait()
        return self.c.status.exit_code

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s, q in self.queues.items():
            with contextlib.suppress(ValueError):
                self.c.subscribers[s].remove(q)
            q.put_nowait(b"")
        if self.stdin:
            self.c.stdin_attached = False
            await self.close_stdin()


def _close_stdin(c: _Container) -> None:
    if c.stdin_w is not None and c.stdin_w != c.pty_master:
        with contextlib.suppress(OSError):
            os.close(c.stdin_w)
        c.stdin_w = None


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's own protocol, plus an event set when the process itself exits: Process.wait()
    also waits for the pipes to close, and a background child can hold them open for ever."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2 ** 16, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


def _argv0_link(root: str, program: str, argv0: str) -> str:
    """A path whose basename is the container's argv[0] and that leads to `program`.

    A multi-call binary (busybox) picks its applet from argv[0]'s basename. Passing
    `executable=` does not keep argv[0] under every event loop (uvloop replaces it
    with the executable), so the program is run through a symlink named after argv[0]."""
    name = os.path.basename(argv0) or "prog"
    if os.path.basename(program) == name:
        return program
    d = os.path.join(root, "argv0", hashlib.sha256(program.encode()).hexdigest()[:16])
    link = os.path.join(d, name)
    if os.path.realpath(link) != os.path.realpath(program):
        os.makedirs(d, exist_ok=True)
        tmp = f"{link}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(program, tmp)
        os.replace(tmp, link)
    return link


async def _spawn(*args: str, **kwargs: Any) -> tuple[asyncio.subprocess.Process, asyncio.Event]:
    """asyncio.create_subprocess_exec, with the event that says the process has exited."""
    loop = asyncio.get_running_loop()
    protocol = _Protocol(loop)
    transport, _ = await loop.subprocess_exec(lambda: protocol, *args, **kwargs)
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.exited


def _child_setup(uid: int | None, gid: int | None, groups: tuple[int, ...], ctty: bool,
                 parent: int) -> Callable[[], None]:
    """What the forked child does before exec (after setsid): take the terminal, drop to the
    container's user, and ask to die with the kubelet (set last: a uid change clears it)."""
    def setup() -> None:
        if ctty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if gid is not None:
            os.setgroups(list(groups))
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the kubelet died before prctl
            os._exit(137)
    return setup


# -- the runtime ---------------------------------------------------------------------------------

class ProcessRuntime(ContainerTable):
    """RuntimeService with host processes; see the module docstring (no isolation at all)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        super().__init__()
        self._is_root = os.geteuid() == 0
        log.warning("process runtime: containers run as plain host processes with NO isolation "
                    "(no namespaces, no cgroups, no image root filesystem; host network; volumes as "
                    "K8PY_MOUNT_* env vars; resource limits are not enforced)")

    # -- helpers -------------------------------------------------------------------------------

    def _env(self, c: _Container) -> dict[str, str]:
        env = dict(c.config.env)
        env.setdefault("PATH", DEFAULT_PATH)
        if c.sandbox.config.hostname:
            env.setdefault("HOSTNAME", c.sandbox.config.hostname)
        sb = c.sandbox.config
        mounts = list(c.config.mounts)
        if sb.resolv_conf:
            mounts.append(Mount("/etc/resolv.conf", sb.resolv_conf, True))
        if sb.hosts_file:
            mounts.append(Mount("/etc/hosts", sb.hosts_file, True))
        for m in mounts:
            env[mount_env_name(m.container_path)] = m.host_path
        return env

    def _cwd(self, c: _Container) -> str:
        wd = os.path.normpath(c.config.working_dir or "/")
        # the deepest volume that holds the working directory
        for m in sorted(c.config.mounts, key=lambda m: len(m.container_path), reverse=True):
            mp = os.path.normpath(m.container_path)
            if wd == mp or wd.startswith(mp.rstrip("/") + "/"):
                host = os.path.join(m.host_path, os.path.relpath(wd, mp))
                if os.path.isdir(host):
                    return os.path.normpath(host)
        if wd != "/" and os.path.isdir(wd):
            return wd
        return str(c.dir / "scratch")

    def _creds(self, c: _Container) -> tuple[int | None, int | None, tuple[int, ...]]:
        sec = c.config.security
        if not self._is_root or (sec.run_as_user == 0 and sec.run_as_group == 0):
            return None, None, ()
        return sec.run_as_user, sec.run_as_group, tuple(sec.supplemental_groups)

    def _save(self, c: _Container) -> None:
        meta = {"id": c.id, "sandbox_id": c.sandbox.id, "container": asdict(c.config),
                "log_path": c.log_path, "pid": c.status.pid,
                "start_time": _start_time(c.status.pid) if c.status.pid else None}
        tmp = c.dir / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, c.dir / "meta.json")

    # -- sandboxes -----------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = secrets.token_hex(12)
        owns = not config.log_directory
        log_dir = config.log_directory or str(self.root / "logs" / sid)
        sb = _Sandbox(sid, config, log_dir, owns)

        def make() -> None:
            os.makedirs(log_dir, exist_ok=True)
            d = self.root / "sandboxes"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{sid}.json").write_text(json.dumps({"id": sid, "config": asdict(config),
                                                       "log_dir": log_dir, "owns_log_dir": owns}))
        await asyncio.to_thread(make)
        self._sandboxes[sid] = sb
        return sid

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid in list(sb.containers):
            await self.remove_container(cid)
        if sb.owns_log_dir:
            await asyncio.to_thread(shutil.rmtree, sb.log_dir, True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / "sandboxes" / f"{sandbox_id}.json")
        del self._sandboxes[sandbox_id]

    # -- containers ----------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        sb = self._sandbox(sandbox_id)
        if not config.args:
            raise RuntimeFailure(f"container {config.name}: no command")
        cid = secrets.token_hex(12)
        cdir = self.root / "containers" / cid
        log_path = os.path.join(sb.log_dir, config.log_path or f"{config.name}/{config.attempt}.log")
        status = ContainerStatus(id=cid, name=config.name, sandbox_id=sandbox_id, state=CREATED,
                                 created_at=time.time(), log_path=log_path, attempt=config.attempt)
        c = _Container(cid, sb, config, cdir, log_path, status)
        uid, gid, _ = self._creds(c)

        def make() -> None:
            (cdir / "scratch").mkdir(parents=True, exist_ok=True)
            if uid is not None:
                os.chown(cdir / "scratch", uid, gid if gid is not None else -1)
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            self._save(c)
        self._containers[cid] = c
        sb.containers.append(cid)
        try:
            await asyncio.to_thread(make)
        except BaseException:
            await self.remove_container(cid)
            raise
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.status.state != CREATED:
            raise RuntimeFailure(f"container {container_id} is {c.status.state}, not created")
        env = self._env(c)
        cwd = self._cwd(c)
        program = resolve_program(c.config.layers, c.config.args[0], env, c.config.working_dir or "/")
        uid, gid, groups = self._creds(c)
        logf: BinaryIO = await asyncio.to_thread(open, c.log_path, "ab")
        stdin_r: int | None = None
        slave: int | None = None
        try:
            if c.config.tty:
                master, slave = pty.openpty()
                c.pty_master = master
                c.stdin_w = master if c.config.stdin else None
                stdio: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
            else:
                if c.config.stdin:
                    stdin_r, c.stdin_w = os.pipe()
                    os.set_blocking(c.stdin_w, False)
                stdio = {"stdin": stdin_r if stdin_r is not None else asyncio.subprocess.DEVNULL,
                         "stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE}
            c.proc, c.proc_exited = await _spawn(
                _argv0_link(str(c.dir), program, c.config.args[0]), *c.config.args[1:], cwd=cwd, env=env, start_new_session=True,
                preexec_fn=_child_setup(uid, gid, groups, c.config.tty, os.getpid()), **stdio)
        except BaseException as e:
            logf.close()
            for fd in (c.pty_master, c.stdin_w):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            c.pty_master = c.stdin_w = None
            if isinstance(e, OSError):
                raise RuntimeFailure(f"container {c.id} ({c.config.name}) did not start: {e}") from e
            raise
        finally:
            for fd in (stdin_r, slave):
                if fd is not None:
                    os.close(fd)
        c.status = replace(c.status, state=RUNNING, pid=c.proc.pid, started_at=time.time())
        await asyncio.to_thread(self._save, c)
        c.supervisor = asyncio.create_task(self._supervise(c, c.proc, logf), name=f"process-{c.id}")

    async def _fan_out(self, c: _Container, read: Callable[[], Any], stream: str, logf: BinaryIO) -> None:
        """Copy one output stream into the CRI log and to every attached session."""
        to_log = asyncio.StreamReader()
        pump = asyncio.create_task(crilog.pump(to_log, stream, logf))
        try:
            while True:
                chunk = await read()
                if not chunk:
                    break
                to_log.feed_data(chunk)
                for q in c.subscribers[stream]:
                    q.put_nowait(chunk)
        finally:
            to_log.feed_eof()
            await pump

    async def _supervise(self, c: _Container, proc: asyncio.subprocess.Process, logf: BinaryIO) -> None:
        tty_reader: _FdReader | None = None
        try:
            if c.pty_master is not None:
                tty_reader = _FdReader(c.pty_master)
                pumps = [self._fan_out(c, tty_reader.read, "stdout", logf)]
            else:
                assert proc.stdout is not None and proc.stderr is not None
                out, err = proc.stdout, proc.stderr
                pumps = [self._fan_out(c, lambda: out.read(65536), "stdout", logf),
                         self._fan_out(c, lambda: err.read(65536), "stderr", logf)]
            pump_task = asyncio.gather(*pumps)
            await c.proc_exited.wait()
            # the main process is gone: so is the rest of its group (a pid namespace's end)
            _kill_group(proc.pid, signal.SIGKILL)
            try:
                await asyncio.wait_for(asyncio.shield(pump_task), DRAIN_TIMEOUT)
            except asyncio.TimeoutError:
                if tty_reader is not None:
                    tty_reader.stop()
                pump_task.cancel()
                with contextlib.suppress(BaseException):
                    await pump_task
            await proc.wait()
        finally:
            logf.close()
            if tty_reader is not None:
                tty_reader.stop()
            _close_stdin(c)
            if c.pty_master is not None:
                with contextlib.suppress(OSError):
                    os.close(c.pty_master)
                c.pty_master = None
                c.stdin_w = None
            code = proc.returncode if proc.returncode is not None else -1
            if code < 0:
                code = 128 - code
            c.status = replace(c.status, state=EXITED, exit_code=code, finished_at=time.time(),
                               reason="Completed" if code == 0 else "Error", pid=0)
            for qs in c.subscribers.values():
                for q in qs:
                    q.put_nowait(b"")
                qs.clear()
            c.exited.set()

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.status.state == CREATED or c.proc is None or c.exited.is_set():
            return
        if timeout > 0:
            _kill_group(c.proc.pid, signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(c.exited.wait(), timeout)
        while not c.exited.is_set():
            _kill_group(c.proc.pid, signal.SIGKILL)
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
        await asyncio.to_thread(shutil.rmtree, c.dir, True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.log_path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(c.log_path))
        self._containers.pop(container_id, None)
        with contextlib.suppress(ValueError):
            c.sandbox.containers.remove(container_id)

    # -- exec and attach -----------------------------------------------------------------------

    async def _spawn_in(self, c: _Container, cmd: list[str],
                        **stdio: Any) -> tuple[asyncio.subprocess.Process, asyncio.Event]:
        if not cmd:
            raise RuntimeFailure("exec: no command")
        env = self._env(c)
        program = resolve_program(c.config.layers, cmd[0], env, c.config.working_dir or "/")
        uid, gid, groups = self._creds(c)
        setup = _child_setup(uid, gid, groups, stdio.pop("ctty", False), os.getpid())
        try:
            return await _spawn(_argv0_link(str(c.dir), program, cmd[0]), *cmd[1:], cwd=self._cwd(c), env=env, start_new_session=True,
                                preexec_fn=setup, **stdio)
        except OSError as e:
            raise RuntimeFailure(f"exec {cmd[0]!r} in {c.id}: {e}") from e

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float | None = None) -> ExecResult:
        """Run cmd with the container's program lookup, env and cwd; on timeout its whole
        process group is killed and ExecTimeout raised."""
        c = self._running(container_id)
        proc, exited = await self._spawn_in(c, cmd, stdin=asyncio.subprocess.DEVNULL,
                                            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        output = asyncio.ensure_future(proc.communicate())
        try:
            await asyncio.wait_for(exited.wait(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await output
            raise ExecTimeout(f"exec in {container_id} timed out after {timeout}s") from None
        _kill_group(proc.pid, signal.SIGKILL)  # what it left in the background, holding the pipes
        try:
            out, err = await asyncio.wait_for(output, DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            out, err = b"", b""
        rc = proc.returncode if proc.returncode is not None else -1
        return ExecResult(out, err, 128 - rc if rc < 0 else rc)

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool = False,
                   stdin: bool = False, size: tuple[int, int] | None = None) -> _ExecSession:
        c = self._running(container_id)
        if tty:
            master, slave = pty.openpty()
            if size is not None:
                _set_winsize(master, *size)
            try:
                proc, exited = await self._spawn_in(c, cmd, stdin=slave, stdout=slave, stderr=slave, ctty=True)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            return _ExecSession(proc, exited, True, master)
        stdin_mode = asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL
        proc, exited = await self._spawn_in(c, cmd, stdin=stdin_mode, stdout=asyncio.subprocess.PIPE,
                                            stderr=asyncio.subprocess.PIPE)
        return _ExecSession(proc, exited, False, None)

    async def attach(self, container_id: str, *, stdin: bool = False) -> _AttachSession:
        c = self._running(container_id)
        if stdin and (not c.config.stdin or c.stdin_w is None):
            raise RuntimeFailure(f"container {c.config.name} has no stdin to attach to "
                                 f"(stdin is not set, or stdinOnce closed it)")
        if stdin:
            c.stdin_attached = True
        return _AttachSession(c, stdin)

    # -- stats ---------------------------------------------------------------------------------

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._container(container_id)
        if c.status.state != RUNNING or not c.status.pid:
            return ContainerStats(timestamp=time.time())

        def read() -> ContainerStats:
            ticks = 0
            rss = 0
            for pid in _group_members(c.status.pid):
                f = _proc_stat(pid)
                if not f:
                    continue
                ticks += sum(int(x) for x in f[11:15])  # utime stime cutime cstime (fields 14-17)
                with contextlib.suppress(OSError, ValueError, IndexError):
                    rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
            return ContainerStats(cpu_usage_nanos=ticks * 1_000_000_000 // _CLK_TCK, memory_usage_bytes=rss,
                                  memory_working_set_bytes=rss, timestamp=time.time())
        return await asyncio.to_thread(read)

    # -- restarts ------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Clean up after a dead kubelet: kill leftover process groups, delete stale records.

        Nothing is adopted (see the module docstring): the main processes died with the kubelet,
        and their logs had no reader; the kubelet starts the pods again."""
        await asyncio.to_thread(self._recover)

    def _recover(self) -> None:
        cdir = self.root / "containers"
        for d in list(cdir.iterdir()) if cdir.is_dir() else []:
            if d.name in self._containers:
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                meta = json.loads((d / "meta.json").read_text())
                pid, started = int(meta.get("pid") or 0), meta.get("start_time")
                if pid > 0:
                    now = _start_time(pid)
                    # a live leader must be ours (same start time); a dead one leaves its group's pgid
                    # unusable for new processes, so members still in that group are ours too
                    if now is None or now == started:
                        _kill_group(pid, signal.SIGKILL)
                lp = meta.get("log_path")
                sb = meta.get("sandbox_id")
                if lp and sb and (self.root / "logs" / sb) in Path(lp).parents:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(lp)
            log.info("process runtime: removed stale container %s left by a previous kubelet", d.name)
            shutil.rmtree(d, ignore_errors=True)
        sdir = self.root / "sandboxes"
        for f in list(sdir.glob("*.json")) if sdir.is_dir() else []:
            if f.stem in self._sandboxes:
                continue
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(f.read_text())
                if meta.get("owns_log_dir"):
                    shutil.rmtree(meta["log_dir"], ignore_errors=True)
            f.unlink(missing_ok=True)
