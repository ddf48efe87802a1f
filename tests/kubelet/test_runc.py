"""The runc runtime against real runc, as root: a busybox-static root filesystem
as the single image layer, one sandbox per test, everything removed after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8py.kubelet.runtime import crilog
from k8py.kubelet.runtime.interface import (EXITED, REASON_OOM_KILLED, RUNNING, ContainerConfig, Mount,
                                            PodSandboxConfig, Resources, SecurityContext)
from k8py.kubelet.runtime.ocispec import capabilities, current_capabilities
from k8py.kubelet.runtime.runc import CGROUP_MOUNT, RuncRuntime, cgroup_mounts

BUSYBOX = "/usr/bin/busybox"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists(BUSYBOX),
                                reason="needs root, runc and busybox-static")


def run(rt: RuncRuntime, main) -> None:
    """Run a test's coroutine, then remove whatever it left, in the same event loop."""
    async def wrapper() -> None:
        try:
            await main()
        finally:
            for sid in list(rt._sandboxes):
                await rt.remove_pod_sandbox(sid)
            for cid in list(rt._containers):
                await rt.remove_container(cid)
    asyncio.run(wrapper())


def make_busybox_layer(path: Path) -> None:
    (path / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, path / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox":
            (path / "bin" / name).symlink_to("busybox")
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (path / d).mkdir()
    (path / "tmp").chmod(0o1777)


@pytest.fixture(scope="module")
def layer() -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="k8py-layer-"))
    make_busybox_layer(d / "layer")
    yield str(d / "layer")
    shutil.rmtree(d)


@pytest.fixture
def rt(layer: str) -> Iterator[RuncRuntime]:
    yield from new_runtime(zygote=False)


@pytest.fixture(params=[False, True], ids=["", "zygote"])
def either_rt(request: pytest.FixtureRequest, layer: str) -> Iterator[RuncRuntime]:
    """A runtime whose shims start as interpreters of their own, or are forked by the zygote."""
    yield from new_runtime(zygote=request.param)


def new_runtime(zygote: bool) -> Iterator[RuncRuntime]:
    root = tempfile.mkdtemp(prefix="k8py-runc-")
    cgroup_root = f"k8py-test-{secrets.token_hex(4)}"
    runtime = RuncRuntime(root=root, cgroup_root=cgroup_root, zygote=zygote)
    yield runtime
    asyncio.run(runtime.close())
    leftovers = list(runtime._containers) + list(runtime._sandboxes)
    runtime.remove_cgroup_root()
    listed = subprocess.run(["runc", "--root", str(runtime.state_dir), "list", "-q"],
                            capture_output=True, text=True).stdout.split()
    shims = shim_pids(root)
    for pid in shims:  # only this test's shims, by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    mounts = [line for line in Path("/proc/self/mounts").read_text().splitlines() if root in line]
    for line in mounts:
        subprocess.run(["umount", line.split()[1]], check=False)
    cgroups = [p for p, _ in cgroup_mounts() if os.path.exists(f"{p}/{cgroup_root}")]
    shutil.rmtree(root)
    assert (leftovers, listed, mounts, cgroups, shims) == ([], [], [], [], []), "left behind"


def shim_pids(root: str) -> list[int]:
    """The pids of the shims that run containers under `root`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (d / "cmdline").read_bytes().split(b"\0")
                if b"k8py.kubelet.runtime.shim" in argv and any(a.startswith(root.encode()) for a in argv):
                    out.append(int(d.name))
    return out


def sandbox(**kw) -> PodSandboxConfig:
    return PodSandboxConfig(uid=secrets.token_hex(8), name="p", namespace="default", hostname="pod-host", **kw)


def container(layer: str, *args: str, **kw) -> ContainerConfig:
    return ContainerConfig(name=kw.pop("name", "c"), layers=(layer,), args=args, **kw)


async def run_to_end(rt: RuncRuntime, sid: str, cfg: ContainerConfig, timeout: float = 30):
    cid = await rt.create_container(sid, cfg)
    await rt.start_container(cid)
    status = await asyncio.wait_for(rt.wait_container(cid), timeout)
    lines = [crilog.parse_line(line) for line in Path(rt.log_path(cid)).read_bytes().splitlines()]
    return cid, status, lines


def test_cgroup_hierarchy_reported():
    kinds = {t for _, t in cgroup_mounts()}
    assert kinds & {"cgroup", "cgroup2"}, f"no cgroup mounted under {CGROUP_MOUNT}"


def test_logs_in_cri_format_and_exit_code(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid, st, lines = await run_to_end(rt, sid, container(layer, "sh", "-c", "echo hello; echo err >&2; exit 3"))
        assert st.state == EXITED and st.exit_code == 3 and st.reason == "Error"
        assert st.started_at and st.finished_at >= st.started_at
        assert sorted((s, p, c) for _, s, p, c in lines) == [("stderr", False, b"err"), ("stdout", False, b"hello")]
        ts = lines[0][0]
        assert len(ts) == 30 and ts.endswith("Z") and ts[10] == "T"
        raw = Path(rt.log_path(cid)).read_text()
        assert " stdout F hello\n" in raw
        await rt.remove_pod_sandbox(sid)
        assert not os.path.exists(st.log_path)
    run(rt, main)


def test_stop_with_sigterm_then_sigkill(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        # handles SIGTERM: ends at once
        polite = await rt.create_container(sid, container(
            layer, "sh", "-c", "trap 'echo bye; exit 0' TERM; sleep 100 & wait", name="polite"))
        # pid 1 with no handler ignores SIGTERM: needs the SIGKILL after the timeout
        stubborn = await rt.create_container(sid, container(layer, "sleep", "100", name="stubborn"))
        await rt.start_container(polite)
        await rt.start_container(stubborn)
        assert (await rt.container_status(stubborn)).state == RUNNING
        assert (await rt.container_status(stubborn)).pid > 0
        await asyncio.sleep(0.2)  # let the trap be set
        t0 = time.monotonic()
        await rt.stop_container(polite, timeout=10)
        assert time.monotonic() - t0 < 5
        assert (await rt.container_status(polite)).exit_code == 0
        t0 = time.monotonic()
        await rt.stop_container(stubborn, timeout=1)
        took = time.monotonic() - t0
        assert 1 <= took < 5
        st = await rt.container_status(stubborn)
        assert st.state == EXITED and st.exit_code == 137
        assert len(await rt.list_containers(sid)) == 2
        await rt.stop_pod_sandbox(sid)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_exec_env_cwd_user_hostname_and_network(rt: RuncRuntime, layer: str):
    netns = f"k8py-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    vol = tempfile.mkdtemp(prefix="k8py-vol-")
    os.chmod(vol, 0o777)
    try:
        async def main():
            sid = await rt.run_pod_sandbox(sandbox(netns_path=f"/var/run/netns/{netns}"))
            cfg = container(layer, "sleep", "100", env=(("GREETING", "hi"),), working_dir="/tmp",
                            mounts=(Mount("/data", vol),),
                            security=SecurityContext(run_as_user=1234, run_as_group=2345))
            cid = await rt.create_container(sid, cfg)
            await rt.start_container(cid)
            r = await rt.exec_sync(cid, ["sh", "-c", "echo $GREETING; pwd; id -u; id -g; hostname; echo out >&2; "
                                         "echo x > /data/f; exit 4"])
            assert r.exit_code == 4
            assert r.stdout.decode().split() == ["hi", "/tmp", "1234", "2345", "pod-host"]
            assert r.stderr == b"out\n"
            assert Path(vol, "f").read_text() == "x\n"
            # the pod's network namespace: only lo, as `ip netns add` made it
            r = await rt.exec_sync(cid, ["cat", "/proc/net/dev"])
            assert [ln.split(":")[0].strip() for ln in r.stdout.decode().splitlines()[2:]] == ["lo"]
            r = await rt.exec_sync(cid, ["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
            assert r.stdout.split()[0] != b"1"  # a pid namespace of its own, with sleep as pid 1
            await rt.stop_container(cid, 0)
            await rt.remove_pod_sandbox(sid)
        run(rt, main)
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=True)
        shutil.rmtree(vol)


def test_oom_killed(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cfg = container(layer, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
                        resources=Resources(memory_limit_bytes=32 * 1024 * 1024, cpu_limit_millis=1000,
                                            cpu_request_millis=100))
        _, st, lines = await run_to_end(rt, sid, cfg, timeout=60)
        assert st.reason == REASON_OOM_KILLED and st.exit_code != 0, (st, lines)
        assert b"survived" not in b"".join(c for *_, c in lines)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_readonly_rootfs_and_writable_upper(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        _, st, lines = await run_to_end(rt, sid, container(
            layer, "sh", "-c", "touch /etc/x", name="ro", security=SecurityContext(readonly_rootfs=True)))
        assert st.exit_code != 0
        assert any(b"Read-only file system" in c for *_, c in lines), lines
        _, st, _ = await run_to_end(rt, sid, container(layer, "sh", "-c", "echo y > /etc/x && cat /etc/x"))
        assert st.exit_code == 0
        await rt.remove_pod_sandbox(sid)
    run(rt, main)
    assert not list(Path(rt.root, "containers").iterdir())


def test_start_failure_reports_why(rt: RuncRuntime, layer: str):
    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cid = await rt.create_container(sid, container(layer, "/no/such/program"))
        with pytest.raises(Exception, match="no such file|not found|did not start"):
            await rt.start_container(cid)
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_containers_started_at_once(either_rt: RuncRuntime, layer: str):
    """Six containers start together (a zygote runtime finds no zygote yet: they share the one
    the first request starts, and none is cut off by a second)."""
    rt = either_rt

    async def main():
        sid = await rt.run_pod_sandbox(sandbox())
        cids = [await rt.create_container(sid, container(layer, "sleep", "30", name=f"c{i}")) for i in range(6)]
        await asyncio.gather(*(rt.start_container(cid) for cid in cids))
        assert [(await rt.container_status(cid)).state for cid in cids] == [RUNNING] * 6
        await rt.remove_pod_sandbox(sid)
    run(rt, main)


def test_capabilities():
    assert "CAP_NET_ADMIN" not in capabilities((), (), False)
    assert "CAP_NET_ADMIN" in capabilities(("NET_ADMIN",), (), False)
    assert "CAP_CHOWN" not in capabilities((), ("chown",), False)
    assert capabilities(("NET_BIND_SERVICE",), ("ALL",), False) == ["CAP_NET_BIND_SERVICE"]
    assert capabilities((), ("ALL",), True) == current_capabilities()  # all this process holds


def test_cgroup_limits_applied(rt: RuncRuntime, layer: str):
    async def main():
        sb = sandbox()
        sid = await rt.run_pod_sandbox(sb)
        cid = await rt.create_container(sid, container(layer, "sleep", "100", resources=Resources(
            cpu_request_millis=250, cpu_limit_millis=500, memory_limit_bytes=64 * 1024 * 1024)))
        await rt.start_container(cid)
        rel = f"{rt.cgroup_root}/pod{sb.uid}/{cid}"
        if os.path.exists(f"{CGROUP_MOUNT}/{rel}/memory.max"):  # cgroup v2
            assert Path(f"{CGROUP_MOUNT}/{rel}/memory.max").read_text().strip() == str(64 << 20)
            assert Path(f"{CGROUP_MOUNT}/{rel}/cpu.max").read_text().split() == ["50000", "100000"]
        else:
            assert Path(f"{CGROUP_MOUNT}/memory/{rel}/memory.limit_in_bytes").read_text().strip() == str(64 << 20)
            assert Path(f"{CGROUP_MOUNT}/cpu/{rel}/cpu.cfs_quota_us").read_text().strip() == "50000"
            assert Path(f"{CGROUP_MOUNT}/cpu/{rel}/cpu.shares").read_text().strip() == "256"
        pid = (await rt.container_status(cid)).pid
        assert rel in Path(f"/proc/{pid}/cgroup").read_text()
        await rt.stop_container(cid, 0)
    run(rt, main)


def test_cri_log_lines_split_long_and_partial():
    import io

    async def main():
        reader = asyncio.StreamReader()
        reader.feed_data(b"a\n" + b"x" * (crilog.MAX_LINE + 5) + b"\nend")
        reader.feed_eof()
        out = io.BytesIO()
        await crilog.pump(reader, "stdout", out)
        return [crilog.parse_line(line)[1:] for line in out.getvalue().splitlines()]
    assert asyncio.run(main()) == [("stdout", False, b"a"), ("stdout", True, b"x" * crilog.MAX_LINE),
                                   ("stdout", False, b"xxxxx"), ("stdout", False, b"end")]
