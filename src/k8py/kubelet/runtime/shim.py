"""The per-container shim (what containerd-shim is): `python -m k8py.kubelet.runtime.shim <container dir>`.

Usage (the runtime does this in start_container):

    proc = spawn [python, -m, k8py.kubelet.runtime.shim, <dir>] with stdout on a pipe
    line = proc.stdout.readline()   # {"pid": ..., "started_at": ...} or {"error": ...}

The shim forks at once: the parent exits, the child leaves the caller's
session (setsid) and lives on, so a kubelet killed with SIGKILL takes neither
the shim nor the container with it. The child

1. reads `meta.json` (written by runc.py): container id, cgroup, log path,
   tty/stdin/stdin_once, and a `shim` section with runc's path and root and
   the log rotation limits;
2. makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER) and runs
   `runc create` then `runc start`. runc create's child (the container's init)
   is orphaned when runc create exits and is re-parented to the shim, which
   can then wait for it and learn its exit status. This was chosen over
   `runc run` so that no Go process (runc run, ~10 MB) stays resident per
   container; only this shim does. Without a tty the container's stdio are
   pipes the shim holds; with a tty, runc hands the pty master over
   `--console-socket` and the shim holds it;
3. writes `start.json` (pid, started_at, shim_pid), reports the same on its
   stdout and closes it;
4. pumps the container's output into the CRI-format log (crilog.RotatingLog:
   rotated past `log_max_size`, at most `log_max_files` files) and to every
   client of `attach.sock` (frames below), and writes the clients' stdin into
   the container;
5. when the container's init ends: drains its output (at most DRAIN_SECONDS),
   writes `exit.json` (exit_code, finished_at, started_at, oom_killed from the
   cgroup's memory events), sends every attacher an EXIT frame and exits.

A failed runc create/start is reported as {"error": ...} and leaves an
`exit.json` with exit code 128 and reason StartError, as containerd does.

attach.sock frames: 1 byte type, 4 bytes big-endian length, payload.
client -> shim: HELLO (payload b"1" when the client will send stdin), STDIN,
CLOSE_STDIN, RESIZE (two big-endian uint16: width, height).
shim -> client: HELLO (empty: the answer; output from here on is the
client's), STDOUT, STDERR, EXIT (payload: the exit code in decimal).
When the container was made with stdin_once, its stdin is closed once the
first client that said it sends stdin detaches (or sends CLOSE_STDIN).

Only the standard library and crilog/stats (stdlib only) are imported, to
keep the resident size of one shim per container small: measured on CPython
3.11, about 10.8 MB RSS, 6.6 MB PSS and 6.3 MB private per shim (the
interpreter itself is most of it); it adds about 50 ms to a container's start.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

from k8py.kubelet.runtime import crilog, stats

HELLO, STDIN, STDOUT, STDERR, CLOSE_STDIN, RESIZE, EXIT = range(1, 8)
HEADER = struct.Struct(">BI")
PR_SET_CHILD_SUBREAPER = 36
DRAIN_SECONDS = 2.0
CLIENT_BUFFER_LIMIT = 4 * 1024 * 1024  # a client this far behind is dropped, not waited for
START_TIMEOUT = 30.0


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def write_json(path: str, data: dict[str, object]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.wants_stdin = False
        self.greeted = False  # HELLO answered: output goes to it from then on, never before the answer


class Shim:
    def __init__(self, cdir: str) -> None:
        self.dir = cdir
        with open(os.path.join(cdir, "meta.json")) as f:
            meta = json.load(f)
        self.id: str = meta["id"]
        self.cgroup: str = meta["cgroup"]
        cfg = meta["container"]
        self.tty: bool = bool(cfg.get("tty"))
        self.stdin: bool = bool(cfg.get("stdin"))
        self.stdin_once: bool = bool(cfg.get("stdin_once"))
        shim = meta["shim"]
        self.runc: list[str] = [shim["runc"], "--root", shim["runc_root"]]
        self.log = crilog.RotatingLog(meta["log_path"], int(shim.get("log_max_size", crilog.DEFAULT_MAX_SIZE)),
                                      int(shim.get("log_max_files", crilog.DEFAULT_MAX_FILES)))
        self.sel = selectors.DefaultSelector()
        self.outputs: dict[int, tuple[str, crilog.LineSplitter]] = {}  # fd -> stream
        self.stdin_fd = -1         # pipe write end, or the pty master
        self.stdin_buf = bytearray()
        self.master = -1
        self.clients: dict[int, _Client] = {}
        self.stdin_attached_once = False
        self.pid = 0
        self.exit_status: int | None = None
        self.started_at = 0.0

    # -- start ------------------------------------------------------------------

    def start(self) -> dict[str, object]:
        """runc create + runc start; the report for the runtime."""
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        pid_file = os.path.join(self.dir, "pid")
        create = [*self.runc, "create", "--bundle", self.dir, "--pid-file", pid_file]
        if self.tty:
            rc, err = self._create_tty(create)
        else:
            rc, err = self._create_pipes(create)
        if rc != 0:
            raise RuntimeError(f"runc create: exit {rc}: {err}")
        with open(pid_file) as f:
            self.pid = int(f.read())
        self._listen()
        started = subprocess.run([*self.runc, "start", self.id], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=START_TIMEOUT)
        if started.returncode != 0:
            raise RuntimeError(f"runc start: exit {started.returncode}: "
                               f"{started.stderr.decode(errors='replace').strip()}")
        self.started_at = time.time()
        report: dict[str, object] = {"pid": self.pid, "started_at": self.started_at, "shim_pid": os.getpid()}
        write_json(os.path.join(self.dir, "start.json"), report)
        return report

    def _create_pipes(self, create: list[str]) -> tuple[int, str]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if self.stdin:
            in_r, self.stdin_fd = os.pipe()
            os.set_blocking(self.stdin_fd, False)
        else:
            in_r = os.open(os.devnull, os.O_RDONLY)
        proc = subprocess.Popen([*create, self.id], stdin=in_r, stdout=out_w, stderr=err_w)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        try:
            rc = proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            self.outputs[fd] = (stream, crilog.LineSplitter(stream))
            self.sel.register(fd, selectors.EVENT_READ, "output")
        err = ""
        if rc != 0:  # runc's own complaint went where the container's stderr goes: log it and report it
            for fd in (out_r, err_r):
                with _suppress_os():
                    data = os.read(fd, 65536)
                    self._output(fd, data)
                    if fd == err_r:
                        err = data.decode(errors="replace").strip()
        return rc, err

    def _create_tty(self, create: list[str]) -> tuple[int, str]:
        path = os.path.join(self.dir, "console.sock")
        with _suppress_os():
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(0.05)
        proc = subprocess.Popen([*create, "--console-socket", path, self.id], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while self.master < 0 and proc.poll() is None and time.monotonic() < deadline:
                try:
                    conn, _ = listener.accept()
                except (socket.timeout, BlockingIOError):
                    continue
                with conn:
                    conn.settimeout(5)
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
                    if fds:
                        self.master = fds[0]
            try:
                _, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        finally:
            listener.close()
            with _suppress_os():
                os.unlink(path)
        if proc.returncode == 0 and self.master >= 0:
            os.set_blocking(self.master, False)
            self.stdin_fd = self.master
            self.outputs[self.master] = ("stdout", crilog.LineSplitter("stdout"))
            self.sel.register(self.master, selectors.EVENT_READ, "output")
        return proc.returncode, err.decode(errors="replace").strip()

    def _listen(self) -> None:
        path = os.path.join(self.dir, "attach.sock")
        with _suppress_os():
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")

    # -- the loop ----------------------------------------------------------------

    def run(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(wake_r, selectors.EVENT_READ, "signal")
        self._reap()  # it may have ended before the handler was there
        drain_until = 0.0
        while True:
            if self.exit_status is not None:
                if not drain_until:
                    drain_until = time.monotonic() + DRAIN_SECONDS
                if not self.outputs or time.monotonic() >= drain_until:
                    break
            timeout = None if self.exit_status is None else max(0.0, drain_until - time.monotonic())
            for key, events in self.sel.select(timeout):
                what = key.data
                if what == "output":
                    if events & selectors.EVENT_WRITE:
                        self._flush_stdin()
                    if events & selectors.EVENT_READ:
                        self._read_output(key.fd)
                elif what == "signal":
                    with _suppress_os():
                        while os.read(wake_r, 512):
                            pass
                    self._reap()
                elif what == "listen":
                    self._accept()
                elif what == "stdin":
                    self._flush_stdin()
                elif isinstance(what, _Client):
                    if events & selectors.EVENT_READ:
                        self._client_read(what)
                    if events & selectors.EVENT_WRITE and what.sock.fileno() in self.clients:
                        self._client_flush(what)
        self._finish()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.exit_status = exit_code_of(status)

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: the pty's slave side is closed
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            self._output(fd, data)
            return
        stream, splitter = self.outputs.pop(fd)
        self.log.write(splitter.end())
        self.sel.unregister(fd)
        if fd != self.master:
            os.close(fd)

    def _output(self, fd: int, data: bytes) -> None:
        stream, splitter = self.outputs[fd]
        self.log.write(splitter.feed(data))
        self._broadcast(frame(STDOUT if stream == "stdout" else STDERR, data))

    def _broadcast(self, data: bytes) -> None:
        for c in list(self.clients.values()):
            if not c.greeted:
                continue
            c.outbuf += data
            if len(c.outbuf) > CLIENT_BUFFER_LIMIT:
                self._drop(c)
            else:
                self._client_flush(c)

    # -- attach clients ------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        c = _Client(sock)
        self.clients[sock.fileno()] = c
        self.sel.register(sock, selectors.EVENT_READ, c)

    def _client_read(self, c: _Client) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.inbuf += data
        while len(c.inbuf) >= HEADER.size:
            kind, size = HEADER.unpack_from(c.inbuf)
            if len(c.inbuf) < HEADER.size + size:
                break
            payload = bytes(c.inbuf[HEADER.size:HEADER.size + size])
            c.inbuf = c.inbuf[HEADER.size + size:]
            self._client_frame(c, kind, payload)

    def _client_frame(self, c: _Client, kind: int, payload: bytes) -> None:
        if kind == HELLO:  # answered, so that the client knows it gets all output from now on
            c.wants_stdin = payload == b"1"
            c.greeted = True
            c.outbuf += frame(HELLO)
            self._client_flush(c)
        elif kind == STDIN and self.stdin and self.stdin_fd >= 0:
            self.stdin_buf += payload
            self._flush_stdin()
        elif kind == CLOSE_STDIN:
            # an attacher's end of input ends the container's only with stdinOnce (as containerd's
            # CRI attach): other containers keep their stdin for the next attacher
            if self.stdin_once:
                self.stdin_attached_once = True
                self._close_stdin()
        elif kind == RESIZE and self.master >= 0 and len(payload) == 4:
            width, height = struct.unpack(">HH", payload)
            with _suppress_os():
                set_winsize(self.master, width, height)

    def _client_flush(self, c: _Client) -> None:
        try:
            sent = c.sock.send(c.outbuf) if c.outbuf else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(c)
            return
        del c.outbuf[:sent]
        self.sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0), c)

    def _drop(self, c: _Client) -> None:
        if self.clients.pop(c.sock.fileno(), None) is None:
            return
        self.sel.unregister(c.sock)
        c.sock.close()
        if c.wants_stdin and self.stdin_once and not self.stdin_attached_once:
            self.stdin_attached_once = True
            self._close_stdin()

    # -- stdin ---------------------------------------------------------------------

    def _flush_stdin(self) -> None:
        if self.stdin_fd < 0:
            self.stdin_buf.clear()
            return
        try:
            n = os.write(self.stdin_fd, self.stdin_buf) if self.stdin_buf else 0
        except BlockingIOError:
            n = 0
        except OSError:  # the container closed its end
            self.stdin_buf.clear()
            n = 0
        del self.stdin_buf[:n]
        if self.stdin_fd == self.master:  # registered for output already: add or drop writability
            if self.master in self.sel.get_map():
                self.sel.modify(self.master, selectors.EVENT_READ |
                                (selectors.EVENT_WRITE if self.stdin_buf else 0), "output")
            return
        registered = self.stdin_fd in self.sel.get_map()
        if self.stdin_buf and not registered:
            self.sel.register(self.stdin_fd, selectors.EVENT_WRITE, "stdin")
        elif not self.stdin_buf and registered:
            self.sel.unregister(self.stdin_fd)

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0 or not self.stdin:
            return
        if self.stdin_fd == self.master:
            with _suppress_os():
                os.write(self.master, b"\x04")  # a terminal's end of file: ^D
            self.stdin_fd = -1
            return
        self._flush_stdin()
        if self.stdin_fd in self.sel.get_map():
            self.sel.unregister(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = -1

    # -- the end ---------------------------------------------------------------------

    def _finish(self) -> None:
        for fd, (_, splitter) in list(self.outputs.items()):
            self.log.write(splitter.end())
        self.log.close()
        code = self.exit_status if self.exit_status is not None else 255
        write_json(os.path.join(self.dir, "exit.json"), {
            "exit_code": code, "finished_at": time.time(), "started_at": self.started_at, "pid": self.pid,
            "oom_killed": stats.oom_kills(self.cgroup) > 0})
        done = frame(EXIT, str(code).encode())
        deadline = time.monotonic() + 1.0
        for c in list(self.clients.values()):
            c.sock.setblocking(True)
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            with _suppress_os():
                c.sock.sendall((b"" if c.greeted else frame(HELLO)) + bytes(c.outbuf) + done)
            c.sock.close()
        with _suppress_os():
            os.unlink(os.path.join(self.dir, "attach.sock"))


class _suppress_os:
    """contextlib.suppress(OSError) without importing contextlib's extras."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m k8py.kubelet.runtime.shim <container dir>", file=sys.stderr)
        return 2
    cdir = os.path.abspath(argv[1])
    if os.fork():
        os._exit(0)  # the caller waits for this parent only; the shim lives on in the child
    os.setsid()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        shim = Shim(cdir)
        report = shim.start()
    except Exception as e:  # noqa: BLE001 - everything becomes the report
        message = str(e)
        with _suppress_os():
            write_json(os.path.join(cdir, "exit.json"), {
                "exit_code": 128, "finished_at": time.time(), "started_at": 0.0, "pid": 0,
                "oom_killed": False, "reason": "StartError", "message": message})
        os.write(1, (json.dumps({"error": message, "shim_pid": os.getpid()}) + "\n").encode())
        return 1
    try:
        os.write(1, (json.dumps(report) + "\n").encode())
    except OSError:  # the kubelet died while we started: it will find start.json when it comes back
        pass
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    shim.run()
    return 0


def zygote(sock_path: str) -> int:
    """A fork server for shims: `python -m k8py.kubelet.runtime.shim --zygote <socket>`.

    Starting a shim as a new interpreter costs 50-100 ms of CPU (interpreter start and imports)
    per container; a zygote pays that once and forks a ready shim per request (a line of JSON
    `{"dir": "<container dir>"}`), whose report line comes back on the same connection. A
    forked shim runs main() as a started one does (fork again, setsid), so it outlives both the
    zygote and the kubelet; its working directory is its container dir, which is how the
    runtime recognises it later (its command line is the zygote's). The zygote itself dies with
    the process that started it (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getppid()
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        return 0
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked children are reaped by the kernel
    with _suppress_os():
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    os.chmod(sock_path, 0o600)
    srv.listen(64)
    os.write(1, b"ready\n")
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:
            continue
        try:
            conn.settimeout(5)
            req = b""
            while not req.endswith(b"\n") and len(req) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
            cdir = os.path.abspath(json.loads(req)["dir"])
        except (OSError, ValueError, KeyError, TypeError):
            conn.close()
            continue
        if os.fork() == 0:
            code = 1
            try:
                srv.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.chdir(cdir)
                log = os.open(os.path.join(cdir, "shim.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(conn.fileno(), 1)
                os.dup2(log, 2)
                for fd in (null, log):
                    os.close(fd)
                conn.close()
                code = main(["shim", cdir])
            finally:
                os._exit(code)
        conn.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        sys.exit(zygote(sys.argv[2]))
    sys.exit(main(sys.argv))
