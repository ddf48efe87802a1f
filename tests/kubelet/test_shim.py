"""The runc runtime's shim, recovery, streamed exec/attach, pod namespaces and stats, against real
runc as root (the busybox-static layer and the `rt` fixture of test_runc.py; everything removed after)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.interface import CREATED, EXITED, RUNNING, PodSandboxConfig
from k8py.kubelet.runtime.runc import RuncRuntime, cgroup_mounts
from tests.kubelet.test_runc import container, layer, rt, run, sandbox, shim_pids  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/busybox"),
                                reason="needs root, runc and busybox-static")


async def read_until(read, want: bytes, timeout: float = 10) -> bytes:
    """Read chunks until `want` is in what was read (or end of stream)."""
    out = b""
    async with asyncio.timeout(timeout):
        while want not in out:
            chunk = await read()
            if not chunk:
                break
            out += chunk
    return out


async def read_all(read, timeout: float = 10) -> bytes:
    out = b""
    async with asyncio.timeout(timeout):
        while chunk := await read():
            out += chunk
    return out


def log_contents(path: str) -> bytes:
    return b"".join(crilog.parse_line(line)[3] + b"\n" for line in Path(path).read_bytes().splitlines())


def test_rotating_log_keeps_max_files(tmp_path: Path):
    path = str(tmp_path / "0.log")
    log = crilog.RotatingLog(path, max_size=1000, max_files=3)
    splitter = crilog.LineSplitter("stdout")
    for i in range(100):
        log.write(splitter.feed(b"line %03d " % i + b"x" * 40 + b"\n"))
    log.close()
    rotated = crilog.rotated_files(path)
    assert len(rotated) == 2 and all(r.startswith(path + ".2") for r in rotated)
    assert all(os.path.getsize(r) < 1000 + 200 for r in rotated)
    assert log_contents(path).splitlines()[-1].startswith(b"line 099")
    # the newest rotated file holds the lines just before the live file's
    last_rotated = int(log_contents(rotated[-1]).splitlines()[-1].split()[1])
    assert int(log_contents(path).splitlines()[0].split()[1]) == last_rotated + 1


def test_kubelet_restart_adopts_running_and_exited_containers(rt: RuncRuntime, layer: str):
    """The first runtime object and its event loop go away (as a killed kubelet's would); the shims and
    containers go on; a new runtime on the same root adopts them with recover()."""
    old = RuncRuntime(root=str(rt.root), cgroup_root=rt.cgroup_root)
    sb = sandbox(labels=(("io.kubernetes.pod.name", "p"),))

    async def first_kubelet():
        sid = await old.run_pod_sandbox(sb)
        ticker = await old.create_container(sid, container(
            layer, "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done", name="ticker"))
        quick = await old.create_container(sid, container(layer, "sh", "-c", "sleep 0.5; echo bye; exit 7",
                                                          name="quick"))
        never = await old.create_container(sid, container(layer, "true", name="never"))
        t0 = time.monotonic()
        await old.start_container(ticker)
        start_latency = time.monotonic() - t0
        await old.start_container(quick)
        return sid, ticker, quick, never, (await old.container_status(ticker)).pid, start_latency
    sid, ticker, quick, never, pid, start_latency = asyncio.run(first_kubelet())
    assert start_latency < 2, start_latency
    log = Path(old._containers[ticker].log_path)
    size = log.stat().st_size
    time.sleep(1.0)  # no kubelet: quick exits, ticker keeps logging
    assert log.stat().st_size > size
    assert os.path.exists(f"/proc/{pid}")

    async def second_kubelet():
        await rt.recover()
        assert [(s, c.labels) for s, c in await rt.list_sandboxes()] == [(sid, sb.labels)]
        assert (await rt.list_sandboxes())[0][1] == sb
        st = await rt.container_status(ticker)
        assert st.state == RUNNING and st.pid == pid and st.started_at > 0
        q = await rt.container_status(quick)
        assert (q.state, q.exit_code, q.reason) == (EXITED, 7, "Error")
        assert b"bye\n" in log_contents(q.log_path)
        assert (await rt.container_status(never)).state == CREATED
        assert {s.id for s in await rt.list_containers(sid)} == {ticker, quick, never}
        # exec and attach work on the adopted container
        r = await rt.exec_sync(ticker, ["echo", "adopted"])
        assert r.stdout == b"adopted\n"
        session = await rt.attach(ticker)
        assert b"tick" in await read_until(session.read_stdout, b"tick")
        waiter = asyncio.create_task(rt.wait_container(ticker))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await rt.stop_container(ticker, timeout=1)  # sh as pid 1 ignores SIGTERM: SIGKILL after 1 s
        st = await asyncio.wait_for(waiter, 5)
        assert (st.state, st.exit_code) == (EXITED, 137)
        assert await asyncio.wait_for(session.wait(), 5) == 137
        await session.close()
        text = log_contents(st.log_path)
        assert b"tick 0\n" in text and text.count(b"tick") > 20
        await rt.remove_pod_sandbox(sid)
        assert shim_pids(str(rt.root)) == []
    run(rt, second_kubelet)


KUBELET = """
import asyncio, sys, time
from k8py.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from k8py.kubelet.runtime.runc import RuncRuntime

async def main():
    rt = RuncRuntime(root=sys.argv[1], cgroup_root=sys.argv[2])
    sid = await rt.run_pod_sandbox(PodSandboxConfig(uid=sys.argv[4], name="p", namespace="d", hostname="h"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", layers=(sys.argv[3],), args=(
        "sh", "-c", "trap 'echo term; exit 9' TERM; while true; do echo tick; sleep 0.05; done")))
    await rt.start_container(cid)
    print(sid, cid, flush=True)
    await asyncio.sleep(100)
asyncio.run(main())
"""


def test_kubelet_killed_with_sigkill(rt: RuncRuntime, layer: str):
    """A real kubelet process dies by SIGKILL; its container and shim live on and are adopted."""
    kubelet = subprocess.Popen([sys.executable, "-c", KUBELET, str(rt.root), rt.cgroup_root, layer,
                                secrets.token_hex(4)], stdout=subprocess.PIPE)
    try:
        assert kubelet.stdout is not None
        sid, cid = kubelet.stdout.readline().decode().split()
    finally:
        kubelet.kill()
        kubelet.wait()
    log = next(Path(rt.root, "logs", sid).glob("c/*.log"))
    size = log.stat().st_size
    time.sleep(0.3)
    assert log.stat().st_size > size  # still running and logged, with no kubelet

    async def main():
        await rt.recover()
        st = await rt.container_status(cid)
        assert st.state == RUNNING and os.path.exists(f"/proc/{st.pid}")
        await rt.stop_container(cid, timeout=10)  # the trap answers SIGTERM
        st = await rt.container_status(cid)
        assert (st.state, st.exit_code) == (EXITED, 9)
        assert log_contents(str(log)).endswith(b"term\n")
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_log_rotation_at_a_small_size(rt: RuncRuntime, layer: str):
    rt.log_max_size, rt.log_max_files = 4096, 3

    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(
            layer, "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done; echo done"))
        await rt.start_container(cid)
        st = await asyncio.wait_for(rt.wait_container(cid), 20)
        assert st.exit_code == 0
        rotated = crilog.rotated_files(st.log_path)
        assert len(rotated) == 2, rotated
        assert all(os.path.getsize(p) < 4096 + 200 for p in [*rotated, st.log_path])
        assert log_contents(st.log_path).endswith(b"done\n")
        await rt.remove_pod_sandbox(sid)
        assert not any(os.path.exists(p) for p in rotated)
    run(rt, main)


def test_exec_streams_with_and_without_tty(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "sleep", "100"))
        await rt.start_container(cid)
        # without a tty: separate stdout and stderr, stdin, the exit code
        s = await rt.exec(cid, ["sh", "-c", "cat; echo err >&2; exit 5"], stdin=True)
        assert not s.tty
        await s.write_stdin(b"hello\n")
        await s.close_stdin()
        out, err = await asyncio.gather(read_all(s.read_stdout), read_all(s.read_stderr))
        assert (out, err, await s.wait()) == (b"hello\n", b"err\n", 5)
        await s.close()
        # with a tty: one stream, resize seen by stty
        # (runc exec passes a resize on when its SIGWINCH arrives: a moment later, so the shell waits)
        s = await rt.exec(cid, ["sh", "-c", 'read x; until s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ]; '
                                'do sleep 0.02; done; echo $s; echo got $x; exit 3'], tty=True, stdin=True)
        assert s.tty and await s.read_stderr() == b""
        await s.resize(100, 40)
        await s.write_stdin(b"abc\n")
        out = await read_all(s.read_stdout)
        assert b"40 100" in out and b"got abc" in out, out
        assert await s.wait() == 3
        await s.close()
        # close() ends a process that would run on
        s = await rt.exec(cid, ["sleep", "100"])
        for _ in range(100):
            with contextlib.suppress(OSError, ValueError):
                pid = int(s.pid_file.read_text())
                break
            await asyncio.sleep(0.02)
        t0 = time.monotonic()
        await s.close()
        assert time.monotonic() - t0 < 3 and not os.path.exists(f"/proc/{pid}")
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_attach_with_stdin_once_and_two_attachers(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "cat", stdin=True, stdin_once=True))
        await rt.start_container(cid)
        first = await rt.attach(cid, stdin=True)
        watcher = await rt.attach(cid)
        assert not first.tty
        await first.write_stdin(b"hello\n")
        assert await read_until(first.read_stdout, b"hello\n") == b"hello\n"
        assert await read_until(watcher.read_stdout, b"hello\n") == b"hello\n"
        # the first attacher with stdin detaches: stdin_once closes cat's stdin, cat ends
        await first.close()
        assert await asyncio.wait_for(watcher.wait(), 10) == 0
        await watcher.close()
        st = await rt.container_status(cid)
        assert (st.state, st.exit_code, st.reason) == (EXITED, 0, "Completed")
        assert log_contents(st.log_path) == b"hello\n"
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_attach_answer_comes_before_any_output(rt: RuncRuntime, layer: str):
    """A client that connects to a chatty container and says HELLO late gets HELLO first (output
    is the client's only from the answer on), and one still silent when the container ends
    gets HELLO, then EXIT."""
    from k8py.kubelet.runtime import shim

    async def first_frame(path: str, hello_after: float) -> list[int]:
        reader, writer = await asyncio.open_unix_connection(path)
        await asyncio.sleep(hello_after)
        writer.write(shim.frame(shim.HELLO, b"0"))
        await writer.drain()
        kinds = []
        for _ in range(2):
            kind, size = shim.HEADER.unpack(await asyncio.wait_for(reader.readexactly(shim.HEADER.size), 10))
            await reader.readexactly(size)
            kinds.append(kind)
        writer.close()
        return kinds

    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(
            layer, "sh", "-c", "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done"))
        await rt.start_container(cid)
        sock = str(rt._containers[cid].dir / "attach.sock")
        assert await first_frame(sock, 0.3) == [shim.HELLO, shim.STDOUT]
        reader, writer = await asyncio.open_unix_connection(sock)  # connected, silent until the end
        await asyncio.wait_for(rt.wait_container(cid), 10)
        kinds = []
        while len(kinds) < 2:
            kind, size = shim.HEADER.unpack(await asyncio.wait_for(reader.readexactly(shim.HEADER.size), 10))
            await reader.readexactly(size)
            kinds.append(kind)
        assert kinds == [shim.HELLO, shim.EXIT]
        writer.close()
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_attach_with_tty(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(
            layer, "sh", "-c", "read x; stty size; echo got $x; read y; exit 4", stdin=True, tty=True))
        await rt.start_container(cid)
        s = await rt.attach(cid, stdin=True)
        assert s.tty and await s.read_stderr() == b""
        await s.resize(120, 50)
        await s.write_stdin(b"yo\n")
        out = await read_until(s.read_stdout, b"got yo")
        assert b"50 120" in out and b"got yo" in out, out
        await s.write_stdin(b"\x04")  # ^D typed at the terminal: read y sees end of file
        assert await asyncio.wait_for(s.wait(), 10) == 4
        await s.close()
        assert b"got yo" in log_contents(rt.log_path(cid))
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_pod_shares_ipc_and_hostname(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        other = await rt.run_pod_sandbox(sandbox())
        a, b, c = [await rt.create_container(s, container(layer, "sleep", "100", name=n))
                   for s, n in ((sid, "a"), (sid, "b"), (other, "c"))]
        for cid in (a, b, c):
            await rt.start_container(cid)
        # a POSIX message queue made in one container is seen by the other of its pod only
        assert (await rt.exec_sync(a, ["touch", "/dev/mqueue/k8pyq"])).exit_code == 0
        assert (await rt.exec_sync(b, ["ls", "/dev/mqueue"])).stdout.split() == [b"k8pyq"]
        assert (await rt.exec_sync(c, ["ls", "/dev/mqueue"])).stdout.split() == []
        # System V: ipcmk in the pod's IPC namespace, seen from its containers
        ipc = rt._sandboxes[sid].ipc_path
        subprocess.run(["nsenter", f"--ipc={ipc}", "ipcmk", "-M", "4096"], check=True, capture_output=True)
        for cid, n in ((a, 1), (b, 1), (c, 0)):
            shm = (await rt.exec_sync(cid, ["cat", "/proc/sysvipc/shm"])).stdout.splitlines()
            assert len(shm) == 1 + n, (cid, shm)
        for cid in (a, b):
            assert (await rt.exec_sync(cid, ["hostname"])).stdout == b"pod-host\n"
        # the PID namespace stays each container's own
        assert (await rt.exec_sync(a, ["cat", "/proc/1/cmdline"])).stdout.startswith(b"sleep")
        await rt.remove_pod_sandbox(sid)
        await rt.remove_pod_sandbox(other)
        assert not list(Path(rt.root, "sandboxes").iterdir())
    run(rt, main)


def test_host_network_and_cgroup_parent(rt: RuncRuntime, layer: str):
    parent = f"{rt.cgroup_root}/burstable"
    sb = sandbox(host_network=True, cgroup_parent=f"{parent}/podx{secrets.token_hex(4)}")
    try:
        async def main():
            sid = await rt.run_pod_sandbox(sb)
            cid = await rt.create_container(sid, container(layer, "sleep", "100"))
            await rt.start_container(cid)
            assert (await rt.exec_sync(cid, ["hostname"])).stdout.decode().strip() == socket.gethostname()
            links = (await rt.exec_sync(cid, ["cat", "/proc/net/dev"])).stdout
            assert b"lo:" in links
            host_links = {ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]}
            assert {ln.split(b":")[0].strip().decode() for ln in links.splitlines()[2:]} == host_links
            pid = (await rt.container_status(cid)).pid
            assert f"{sb.cgroup_parent}/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
            await rt.remove_pod_sandbox(sid)
        run(rt, main)
    finally:  # the kubelet owns a cgroup_parent: the test removes it, deepest first
        for point, _ in cgroup_mounts():
            for d in (sb.cgroup_parent, parent):
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(f"{point}/{d}")


def test_container_stats_and_shim_size(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "sh", "-c", "while :; do :; done"))
        await rt.start_container(cid)
        await asyncio.sleep(0.6)
        st = await rt.container_stats(cid)
        assert st.cpu_usage_nanos > 200_000_000, st
        assert 0 < st.memory_working_set_bytes <= st.memory_usage_bytes
        assert abs(st.timestamp - time.time()) < 5
        # one shim per container, small
        (shim_pid,) = shim_pids(str(rt.root))
        rss_kb = int(next(line.split()[1] for line in Path(f"/proc/{shim_pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS:")))
        print(f"shim RSS {rss_kb} kB")
        assert rss_kb < 32 * 1024
        await rt.stop_container(cid, 0)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_start_failure_leaves_start_error(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "/no/such/program"))
        with pytest.raises(Exception, match="no such file|not found"):
            await rt.start_container(cid)
        st = await rt.container_status(cid)
        assert (st.state, st.exit_code, st.reason) == (EXITED, 128, "StartError")
        assert shim_pids(str(rt.root)) == []
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_sandbox_config_round_trips(rt: RuncRuntime):
    cfg = PodSandboxConfig(uid="u1", name="n", namespace="ns", labels=(("a", "b"),), host_network=True)

    async def main():
        sid = await rt.run_pod_sandbox(cfg)
        fresh = RuncRuntime(root=str(rt.root), cgroup_root=rt.cgroup_root)
        await fresh.recover()
        assert await fresh.list_sandboxes() == [(sid, cfg)]
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_cgroup_v2_files_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """cgroup v2's file names (this machine is v1): cpu.stat usage_usec, memory.current, memory.stat
    inactive_file, memory.events oom_kill."""
    from k8py.kubelet.runtime import stats
    d = tmp_path / "k8py" / "podu" / "cid"
    d.mkdir(parents=True)
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (d / "memory.current").write_text("4096000\n")
    (d / "memory.stat").write_text("anon 100\nfile 2000000\ninactive_file 1000000\nactive_file 5\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    monkeypatch.setattr(stats, "CGROUP_MOUNT", str(tmp_path))
    monkeypatch.setattr(stats, "cgroup_v2", lambda: True)
    s = stats.read_cgroup_stats("/k8py/podu/cid")
    assert (s.cpu_usage_nanos, s.memory_usage_bytes, s.memory_working_set_bytes) == (1_500_000, 4096000, 3096000)
    assert stats.oom_kills("/k8py/podu/cid") == 1
    assert stats.oom_kills("/k8py/podu/other") == 0


def test_zygote_forked_shims_outlive_it_and_are_adopted(rt: RuncRuntime, layer: str):
    """Shims forked by the zygote (as the kubelet runs them) keep their containers when the zygote
    and the runtime object are gone, and a new runtime recognises them by their working directory."""
    first = RuncRuntime(root=str(rt.root), cgroup_root=rt.cgroup_root, zygote=True)

    async def start():
        sid = await first.run_pod_sandbox(sandbox())
        cid = await first.create_container(sid, container(layer, "sh", "-c", "echo up; sleep 30", name="z"))
        await first.start_container(cid)
        st = await first.container_status(cid)
        assert first._zygote is not None and first._zygote.poll() is None
        await first.close()  # the zygote goes; the shim stays
        return sid, cid, st.pid
    sid, cid, pid = asyncio.run(start())
    assert os.path.exists(f"/proc/{pid}")

    async def adopt():
        await rt.recover()
        st = await rt.container_status(cid)
        assert st.state == RUNNING and st.pid == pid
        assert b"up" in log_contents(rt.log_path(cid))
        await rt.stop_container(cid, 1)
        assert (await rt.container_status(cid)).state == EXITED
    run(rt, adopt)
