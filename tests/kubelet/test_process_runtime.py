"""The process runtime: containers as host processes, run as root and as `nobody`.

A busybox-static layer (busybox plus a symlink per applet) serves as the image;
each test makes its own runtime root and removes it, and checks that no
container, record or process group is left behind."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.interface import (EXITED, RUNNING, ContainerConfig, Mount, PodSandboxConfig,
                                            RuntimeFailure)
from k8py.kubelet.runtime.process import ExecTimeout, _group_members, ProcessRuntime, mount_env_name, union_lookup

BUSYBOX = "/usr/bin/busybox"
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static")


def make_busybox_layer(path: Path) -> None:
    (path / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, path / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox":
            (path / "bin" / name).symlink_to("/bin/busybox")
    (path / "etc").mkdir()


@pytest.fixture(scope="module")
def layer() -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="k8py-layer-"))
    make_busybox_layer(d / "layer")
    yield str(d / "layer")
    shutil.rmtree(d)


@pytest.fixture
def rt() -> Iterator[ProcessRuntime]:
    root = tempfile.mkdtemp(prefix="k8py-proc-")
    runtime = ProcessRuntime(root)
    yield runtime
    leftovers = list(runtime._containers) + list(runtime._sandboxes)
    left_files = [str(p) for p in Path(root).rglob("*") if p.is_file()]
    shutil.rmtree(root)
    assert (leftovers, left_files) == ([], []), "left behind"


def run(rt: ProcessRuntime, main) -> None:
    async def wrapper() -> None:
        try:
            await main()
        finally:
            for sid in list(rt._sandboxes):
                await rt.remove_pod_sandbox(sid)
    asyncio.run(wrapper())


def sandbox(**kw) -> PodSandboxConfig:
    return PodSandboxConfig(uid=os.urandom(4).hex(), name="p", namespace="default", hostname="pod-host", **kw)


def container(layer: str, *args: str, **kw) -> ContainerConfig:
    return ContainerConfig(name=kw.pop("name", "c"), layers=(layer,), args=args, **kw)


def log_lines(path: str) -> list[tuple[str, bool, bytes]]:
    return [crilog.parse_line(line)[1:] for line in Path(path).read_bytes().splitlines()]


def group_alive(pgid: int, settle: float = 1.0) -> bool:
    """Whether a live (not zombie) process is in the group; a just-killed one gets `settle` s to go."""
    deadline = time.monotonic() + settle
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)
    return False


def test_warns_that_there_is_no_isolation(caplog):
    root = tempfile.mkdtemp(prefix="k8py-proc-")
    try:
        with caplog.at_level(logging.WARNING, logger="k8py.kubelet.runtime.process"):
            ProcessRuntime(root)
        assert any("NO isolation" in r.getMessage() for r in caplog.records)
    finally:
        shutil.rmtree(root)


def test_union_lookup_whiteouts_opaque_and_symlinks(tmp_path: Path):
    low, mid, top = tmp_path / "low", tmp_path / "mid", tmp_path / "top"
    for d in (low / "bin", low / "data", mid / "bin", mid / "data", top / "bin", top / "lib"):
        d.mkdir(parents=True)
    (low / "bin" / "prog").write_text("low")
    (low / "bin" / "gone").write_text("x")
    (low / "bin" / "gone2").write_text("x")
    (low / "data" / "old").write_text("x")
    (mid / "bin" / ".wh.gone").touch()             # OCI form (an unprivileged unpack)
    (mid / "data" / ".wh..wh..opq").touch()        # opaque: low's data/ is hidden
    (mid / "data" / "new").write_text("x")
    (top / "bin" / "link").symlink_to("../lib/real")   # relative, into another directory
    (top / "bin" / "abs").symlink_to("/bin/prog")       # absolute: from the image's root
    (top / "lib" / "real").write_text("r")
    (top / "lib" / "loop").symlink_to("loop")
    layers = (str(low), str(mid), str(top))
    assert union_lookup(layers, "/bin/prog") == str(low / "bin" / "prog")
    assert union_lookup(layers, "/bin/gone") is None
    assert union_lookup(layers, "/bin/gone2") == str(low / "bin" / "gone2")
    assert union_lookup(layers, "/data/old") is None
    assert union_lookup(layers, "/data/new") == str(mid / "data" / "new")
    assert union_lookup(layers, "/bin/link") == str(top / "lib" / "real")
    assert union_lookup(layers, "/bin/abs") == str(low / "bin" / "prog")
    assert union_lookup(layers, "/lib/loop") is None
    assert union_lookup(layers, "/bin/prog/x") is None
    assert union_lookup(layers, "/../../bin/prog") == str(low / "bin" / "prog")
    if os.geteuid() == 0:  # the overlayfs form a root unpack makes
        os.mknod(top / "bin" / "gone2", 0o020000, os.makedev(0, 0))
        assert union_lookup(layers, "/bin/gone2") is None
    assert mount_env_name("/usr/share/html") == "K8PY_MOUNT_USR_SHARE_HTML"
    assert mount_env_name("/data-1/") == "K8PY_MOUNT_DATA_1"


def test_logs_exit_codes_and_image_program(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        # "sh" is found as the image's /bin/sh -> /bin/busybox, run with argv[0] "sh"
        cid = await rt.create_container(sid, container(layer, "sh", "-c", "echo hello; echo err >&2; exit 3"))
        await rt.start_container(cid)
        st = await asyncio.wait_for(rt.wait_container(cid), 10)
        assert st.state == EXITED and st.exit_code == 3 and st.reason == "Error"
        assert st.started_at and st.finished_at >= st.started_at and st.log_path == rt.log_path(cid)
        assert sorted(log_lines(st.log_path)) == [("stderr", False, b"err"), ("stdout", False, b"hello")]
        # a program only the host has
        cid = await rt.create_container(sid, container(layer, "true", name="host"))
        cfg = container(layer, os.path.realpath(shutil.which("env") or "/usr/bin/env"), name="hostabs")
        cid2 = await rt.create_container(sid, cfg)
        for c in (cid, cid2):
            await rt.start_container(c)
            st = await asyncio.wait_for(rt.wait_container(c), 10)
            assert (st.exit_code, st.reason) == (0, "Completed")
        bad = await rt.create_container(sid, container(layer, "/no/such/program", name="bad"))
        with pytest.raises(RuntimeFailure, match="no such file"):
            await rt.start_container(bad)
        assert len(await rt.list_containers(sid)) == 4
        await rt.remove_pod_sandbox(sid)
        assert not os.path.exists(st.log_path)
    run(rt, main)


def test_stop_sigterm_then_sigkill_to_the_group(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        polite = await rt.create_container(sid, container(
            layer, "sh", "-c", "trap 'echo bye; exit 0' TERM; sleep 100 & wait", name="polite"))
        # ignores SIGTERM (and so do its children): needs the SIGKILL
        stubborn = await rt.create_container(sid, container(
            layer, "sh", "-c", "trap '' TERM; sleep 100 & while true; do sleep 0.05; done", name="stubborn"))
        await rt.start_container(polite)
        await rt.start_container(stubborn)
        st = await rt.container_status(stubborn)
        assert st.state == RUNNING and st.pid > 0
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        await rt.stop_container(polite, timeout=10)
        assert time.monotonic() - t0 < 3
        st = await rt.container_status(polite)
        assert (st.exit_code, st.reason) == (0, "Completed")
        assert ("stdout", False, b"bye") in log_lines(st.log_path)
        pid = (await rt.container_status(stubborn)).pid
        t0 = time.monotonic()
        await rt.stop_container(stubborn, timeout=0.5)
        assert 0.5 <= time.monotonic() - t0 < 3
        st = await rt.container_status(stubborn)
        assert st.state == EXITED and st.exit_code == 137 and st.reason == "Error"
        assert not group_alive(pid)  # the background sleep went with it
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_main_process_exit_ends_its_group(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "sh", "-c", "sleep 100 & echo started"))
        await rt.start_container(cid)
        pid = (await rt.container_status(cid)).pid
        st = await asyncio.wait_for(rt.wait_container(cid), 5)
        assert st.exit_code == 0 and not group_alive(pid)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_env_cwd_mounts_and_exec_sync(rt: ProcessRuntime, layer: str):
    vol = tempfile.mkdtemp(prefix="k8py-vol-")
    os.makedirs(f"{vol}/sub")
    resolv = tempfile.NamedTemporaryFile(prefix="k8py-resolv-", delete=False)
    try:
        async def main():
            sid = await rt.run_pod_sandbox(sandbox(resolv_conf=resolv.name))
            cfg = container(layer, "sleep", "100", env=(("GREETING", "hi"),),
                            mounts=(Mount("/data", vol), Mount("/cache/x", "/nonexistent")))
            cid = await rt.create_container(sid, cfg)
            await rt.start_container(cid)
            r = await rt.exec_sync(cid, ["sh", "-c", "echo $GREETING $HOSTNAME; pwd; echo $K8PY_MOUNT_DATA; "
                                         "echo $K8PY_MOUNT_CACHE_X $K8PY_MOUNT_ETC_RESOLV_CONF; "
                                         "echo out >&2; echo x > f; exit 4"])
            assert r.exit_code == 4 and r.stderr == b"out\n"
            lines = r.stdout.decode().splitlines()
            scratch = str(rt.root / "containers" / cid / "scratch")
            assert lines == ["hi pod-host", scratch, vol, f"/nonexistent {resolv.name}"]
            assert Path(scratch, "f").read_text() == "x\n"
            # a background child holding the pipes does not hold exec_sync up
            t0 = time.monotonic()
            r = await rt.exec_sync(cid, ["sh", "-c", "sleep 100 & echo bg"], timeout=5)
            assert (r.stdout, r.exit_code) == (b"bg\n", 0) and time.monotonic() - t0 < 3
            # a working dir inside a volume runs in the volume's host directory
            cid2 = await rt.create_container(sid, container(layer, "sh", "-c", "pwd", name="w",
                                                            working_dir="/data/sub", mounts=(Mount("/data", vol),)))
            await rt.start_container(cid2)
            await rt.wait_container(cid2)
            assert log_lines(rt.log_path(cid2)) == [("stdout", False, f"{vol}/sub".encode())]
            with pytest.raises(ExecTimeout) as e:
                await rt.exec_sync(cid, ["sleep", "10"], timeout=0.3)
            assert isinstance(e.value, TimeoutError) and isinstance(e.value, RuntimeFailure)
            await rt.stop_container(cid, 0)
            with pytest.raises(RuntimeFailure, match="not running"):
                await rt.exec_sync(cid, ["true"])
            await rt.remove_pod_sandbox(sid)
        run(rt, main)
    finally:
        shutil.rmtree(vol)
        os.unlink(resolv.name)


async def read_all(read) -> bytes:
    out = b""
    while chunk := await asyncio.wait_for(read(), 10):
        out += chunk
    return out


def test_streamed_exec_pipes_and_tty(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "sleep", "100"))
        await rt.start_container(cid)
        s = await rt.exec(cid, ["sh", "-c", "cat; echo e >&2; exit 2"], stdin=True)
        assert not s.tty
        await s.write_stdin(b"ping\n")
        await s.close_stdin()
        out, err = await asyncio.gather(read_all(s.read_stdout), read_all(s.read_stderr))
        assert (out, err, await s.wait()) == (b"ping\n", b"e\n", 2)
        await s.close()
        t = await rt.exec(cid, ["sh"], tty=True, stdin=True)
        assert t.tty and await t.read_stderr() == b""
        await t.resize(100, 33)
        await t.write_stdin(b"stty size; tty >/dev/null && echo is-a-tty; exit 5\n")
        out = await read_all(t.read_stdout)
        assert b"33 100" in out and b"is-a-tty" in out, out
        assert await asyncio.wait_for(t.wait(), 5) == 5
        await t.close()
        # close() ends a running exec
        k = await rt.exec(cid, ["sleep", "100"])
        await k.close()
        assert await k.wait() == 137
        await rt.stop_container(cid, 0)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_attach_stdin_and_output(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(
            layer, "sh", "-c", "while read l; do echo got $l; echo warn >&2; done; echo eof; exit 7", stdin=True))
        plain = await rt.create_container(sid, container(layer, "sleep", "100", name="plain"))
        await rt.start_container(cid)
        await rt.start_container(plain)
        with pytest.raises(RuntimeFailure, match="no stdin"):
            await rt.attach(plain, stdin=True)
        a = await rt.attach(cid, stdin=True)
        await a.write_stdin(b"one\n")
        assert await asyncio.wait_for(a.read_stdout(), 5) == b"got one\n"
        assert await asyncio.wait_for(a.read_stderr(), 5) == b"warn\n"
        await a.close()   # detach: the container keeps running with stdin open
        await asyncio.sleep(0.1)
        assert (await rt.container_status(cid)).state == RUNNING
        b = await rt.attach(cid, stdin=True)
        await b.write_stdin(b"two\n")
        assert await asyncio.wait_for(b.read_stdout(), 5) == b"got two\n"
        await asyncio.sleep(0.1)
        await rt.stop_container(cid, 1)
        assert await asyncio.wait_for(b.wait(), 5) == 143
        rest = await read_all(b.read_stdout)
        assert rest == b"", rest
        stdout = [c for s, _, c in log_lines(rt.log_path(cid)) if s == "stdout"]
        assert stdout == [b"got one", b"got two"]
        # stdinOnce: the first detach closes the container's stdin, and it reads end of file
        once = await rt.create_container(sid, container(
            layer, "sh", "-c", "read l; echo got $l; read l || echo eof; exit 7", stdin=True, stdin_once=True,
            name="once"))
        await rt.start_container(once)
        o = await rt.attach(once, stdin=True)
        await o.write_stdin(b"x\n")
        await o.close()
        st = await asyncio.wait_for(rt.wait_container(once), 5)
        assert st.exit_code == 7
        assert [c for _, _, c in log_lines(st.log_path)] == [b"got x", b"eof"]
        await rt.stop_container(plain, 0)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_tty_container_and_stats(rt: ProcessRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(
            layer, "sh", "-c", "tty >/dev/null && echo tty; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; "
            "sleep 100", tty=True))
        await rt.start_container(cid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = await rt.container_stats(cid)
            if stats.cpu_usage_nanos > 0 and any(c == b"tty" for *_, c in log_lines(rt.log_path(cid))):
                break
            await asyncio.sleep(0.1)
        assert stats.cpu_usage_nanos > 0 and stats.memory_usage_bytes > 100_000 and stats.timestamp
        assert ("stdout", False, b"tty") in [(s, p, c.rstrip(b"\r")) for s, p, c in log_lines(rt.log_path(cid))]
        await rt.stop_container(cid, 0)
        assert (await rt.container_stats(cid)).memory_usage_bytes == 0
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


KUBELET_THAT_DIES = """
import asyncio, os, sys
from k8py.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from k8py.kubelet.runtime.process import ProcessRuntime
async def main():
    rt = ProcessRuntime(sys.argv[1])
    sid = await rt.run_pod_sandbox(PodSandboxConfig(uid="u", name="p", namespace="n"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", layers=(sys.argv[2],),
                                    args=("sh", "-c", "sleep 100 & sleep 100")))
    await rt.start_container(cid)
    print((await rt.container_status(cid)).pid, flush=True)
    await asyncio.sleep(100)
asyncio.run(main())
"""


def test_containers_die_with_the_kubelet_and_recover_cleans_up(layer: str):
    root = tempfile.mkdtemp(prefix="k8py-proc-")
    kubelet = subprocess.Popen([sys.executable, "-c", KUBELET_THAT_DIES, root, layer], stdout=subprocess.PIPE)
    pgid = 0
    try:
        assert kubelet.stdout is not None
        pgid = int(kubelet.stdout.readline())
        assert group_alive(pgid, 0)
        kubelet.kill()
        kubelet.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pgid}/stat") \
                and Path(f"/proc/{pgid}/stat").read_text().split(") ")[1][0] != "Z":
            time.sleep(0.02)
        assert group_alive(pgid, 0), "the background sleep outlives the main process (only it has PDEATHSIG)"
        rt = ProcessRuntime(root)
        asyncio.run(rt.recover())
        assert not group_alive(pgid)
        assert asyncio.run(rt.list_sandboxes()) == []
        assert [p for p in Path(root).rglob("*") if p.is_file()] == []
    finally:
        if kubelet.poll() is None:
            kubelet.kill()
            kubelet.wait()
        if pgid and group_alive(pgid):
            os.killpg(pgid, 9)
        shutil.rmtree(root)


AS_NOBODY = """
import asyncio, os, sys, tarfile
from k8py.kubelet.images.layers import unpack_layer
from k8py.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from k8py.kubelet.runtime.process import ProcessRuntime
assert os.geteuid() != 0
root = sys.argv[1]
unpack_layer(f"{root}/layer.tar", f"{root}/layer")
assert os.path.exists(f"{root}/layer/bin/.wh.ls") and not os.path.exists(f"{root}/layer/dev/null")
async def main():
    rt = ProcessRuntime(f"{root}/rt")
    await rt.recover()
    sid = await rt.run_pod_sandbox(PodSandboxConfig(uid="u", name="p", namespace="n"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", layers=(f"{root}/layer",),
                                    args=("sh", "-c", "echo $(id -u); sleep 100")))
    await rt.start_container(cid)
    r = await rt.exec_sync(cid, ["sh", "-c", "echo exec; exit 3"])
    assert (r.stdout, r.exit_code) == (b"exec\\n", 3), r
    stats = await rt.container_stats(cid)
    assert stats.memory_usage_bytes > 0
    await rt.stop_container(cid, 1)
    st = await rt.container_status(cid)
    print(st.exit_code, st.reason, open(st.log_path).read().split()[-1], flush=True)
    await rt.remove_pod_sandbox(sid)
    print(sorted(os.listdir(f"{root}/rt/containers")), flush=True)
asyncio.run(main())
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root (to become nobody)")
def test_works_as_nobody():
    """Unpack a layer (with a whiteout and a device node) and run a container as uid 65534."""
    root = tempfile.mkdtemp(prefix="k8py-nobody-")
    try:
        os.chown(root, 65534, 65534)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(BUSYBOX, "bin/busybox")
            for name in ("sh", "id", "sleep", "echo"):
                ti = tarfile.TarInfo(f"bin/{name}")
                ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(ti)
            ti = tarfile.TarInfo("bin/.wh.ls")
            tar.addfile(ti, io.BytesIO(b""))
            ti = tarfile.TarInfo("dev/null")
            ti.type, ti.devmajor, ti.devminor, ti.uid = tarfile.CHRTYPE, 1, 3, 0
            tar.addfile(ti)
            ti = tarfile.TarInfo("etc")
            ti.type, ti.mode, ti.uid = tarfile.DIRTYPE, 0o555, 0
            tar.addfile(ti)
        Path(root, "layer.tar").write_bytes(buf.getvalue())
        os.chown(f"{root}/layer.tar", 65534, 65534)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", AS_NOBODY, root],
                           capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": os.environ["PATH"]})
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["143 Error 65534", "[]"], (r.stdout, r.stderr)
        assert "NO isolation" in r.stderr
    finally:
        shutil.rmtree(root)
