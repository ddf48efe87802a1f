"""Node-agent figures (issue 4), as root with runc:

    .venv/bin/python bench/kubelet_bench.py [--pods 30]

1. Cold start: a fresh data dir, `k8py server` (API server, scheduler,
   controller-manager, kubelet) until the Node is Ready.
2. The physical floor: a bare `runc run --detach` of the same busybox
   image on an overlayfs root (mount + run), N times.
3. Pod start-up latency, creation to Running as seen through a watch, for
   N pods on the node: one at a time (each created once the previous one
   runs), then N created at once (a burst).  The images are imported
   beforehand (`k8py images import`), pods use imagePullPolicy
   IfNotPresent, so no pull is timed, as in Kubernetes' own start-up SLO.
4. Memory with N pods running: the kubelet's RSS, and the shims' (one per
   container) RSS and PSS.

Nothing is asserted; figures are printed.  Pods are deleted through the
API, and every process, mount and cgroup made here is removed by its own
id at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from k8py.client import kubeconfig  # noqa: E402
from k8py.client.rest import Client, resource  # noqa: E402

K8PY = str(ROOT / ".venv" / "bin" / "k8py")
PODS = resource("pods")
NODES = resource("nodes")
NODE = "bench-node"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(name: str, xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (f"{name:<34} n={len(ms):<3} p50 {pct(ms, 50):7.0f} ms   p90 {pct(ms, 90):7.0f} ms   "
            f"p99 {pct(ms, 99):7.0f} ms   max {max(ms):7.0f} ms")


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


# -- the floor: bare runc ------------------------------------------------------------------------

def runc_floor(layer_dirs: list[str], n: int) -> list[float]:
    from k8py.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
    from k8py.kubelet.runtime.ocispec import runtime_spec
    root = tempfile.mkdtemp(prefix="k8py-bench-runc-")
    state = os.path.join(root, "state")
    cgroup_root = "k8py-bench-floor"
    out = []
    try:
        for i in range(n):
            cid = f"floor-{i}-{secrets.token_hex(4)}"
            b = os.path.join(root, cid)
            for d in ("rootfs", "upper", "work"):
                os.makedirs(os.path.join(b, d))
            sb = PodSandboxConfig(uid=cid, name=cid, namespace="bench")
            cfg = ContainerConfig(name="c", layers=tuple(layer_dirs), args=("sleep", "3600"))
            spec = runtime_spec(sb, cfg, os.path.join(b, "rootfs"), f"/{cgroup_root}/{cid}")
            t0 = time.monotonic()
            lower = ":".join(reversed(layer_dirs))
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={lower},upperdir={b}/upper,workdir={b}/work", f"{b}/rootfs"], check=True)
            Path(b, "config.json").write_text(json.dumps(spec))
            subprocess.run(["runc", "--root", state, "run", "--detach", "--bundle", b, cid], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out.append(time.monotonic() - t0)
            subprocess.run(["runc", "--root", state, "delete", "--force", cid], check=False)
            subprocess.run(["umount", f"{b}/rootfs"], check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for top in [Path("/sys/fs/cgroup")] + [p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()]:
            d = top / cgroup_root
            if d.is_dir():
                for sub in sorted(d.rglob("*"), key=lambda p: -len(str(p))):
                    if sub.is_dir():
                        try:
                            sub.rmdir()
                        except OSError:
                            pass
                try:
                    d.rmdir()
                except OSError:
                    pass
    return out


# -- pods through the API ------------------------------------------------------------------------

def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "kubelet"}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


async def watch_running(client: Client, seen: dict[str, float], rv: str) -> None:
    async for ev in client.watch(PODS, "default", resource_version=rv, labelSelector="bench=kubelet"):
        obj = ev.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        if ev.get("type") in ("ADDED", "MODIFIED") and (obj.get("status") or {}).get("phase") == "Running":
            seen.setdefault(name, time.monotonic())


async def start_pods(client: Client, n: int, burst: bool, prefix: str) -> list[float]:
    lst = await client.list(PODS, "default", limit=1)
    seen: dict[str, float] = {}
    w = asyncio.create_task(watch_running(client, seen, lst["metadata"]["resourceVersion"]))
    created: dict[str, float] = {}
    try:
        names = [f"{prefix}-{i}" for i in range(n)]

        async def one(name: str) -> None:
            created[name] = time.monotonic()
            await client.create(PODS, pod(name), "default")

        if burst:
            await asyncio.gather(*(one(x) for x in names))
            while len(seen) < n:
                await asyncio.sleep(0.01)
        else:
            for name in names:
                await one(name)
                while name not in seen:
                    await asyncio.sleep(0.005)
        return [seen[x] - created[x] for x in names]
    finally:
        w.cancel()


async def delete_pods(client: Client, data: str, keep: int = 0) -> None:
    """Delete the bench's pods and wait until the kubelet has removed their containers too."""
    await client.delete_collection(PODS, "default", labelSelector="bench=kubelet")
    while (await client.list(PODS, "default", labelSelector="bench=kubelet"))["items"]:
        await asyncio.sleep(0.2)
    containers = Path(data, "runtime", "containers")
    while containers.is_dir() and len(list(containers.iterdir())) > keep:
        await asyncio.sleep(0.2)


async def node_ready(client: Client) -> bool:
    try:
        node = await client.get(NODES, NODE)
    except Exception:  # noqa: BLE001
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--profile", default="", help="py-spy the kubelet during the burst (speedscope file)")
    ap.add_argument("--keep-log", default="", help="copy the server's log (all components) here")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("runc"):
        print("needs root and runc", file=sys.stderr)
        return 2
    data = tempfile.mkdtemp(prefix="k8py-bench-kubelet-")
    archive = os.path.join(data, "busybox.tar")
    subprocess.run([K8PY, "images", "build-busybox", archive], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([K8PY, "images", "import", archive, "--data-dir", data], check=True, stdout=subprocess.DEVNULL)
    from k8py.kubelet.images.store import ImageStore
    layers = ImageStore(os.path.join(data, "images")).get("busybox").layer_dirs

    floor = runc_floor(list(layers), args.pods)

    port = 16443
    kc = os.path.join(data, "kubeconfig.yaml")
    log = open(os.path.join(data, "server.log"), "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen([K8PY, "server", "--data-dir", data, "--https-listen-port", str(port),
                             "--bind-address", "127.0.0.1", "--write-kubeconfig", kc,
                             f"--kubelet-arg=--hostname-override={NODE}", "--kubelet-arg=--node-ip=127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    from tests.support.node import clean_node
    import hashlib
    tag = hashlib.sha256(os.path.abspath(data).encode()).hexdigest()[:8]
    try:
        while not os.path.exists(kc):
            time.sleep(0.01)

        async def run() -> None:
            client = Client(kubeconfig.load(kc))
            try:
                while not await node_ready(client):
                    await asyncio.sleep(0.02)
                ready = time.monotonic() - t0
                print(f"k8py server cold start to node Ready: {ready:.2f} s")
                print(summary("bare runc run (floor)", floor))
                w = pod("warm")
                w["metadata"]["labels"] = {}
                await client.create(PODS, w, "default")  # the first pod makes the bridge
                while (await client.get(PODS, "warm", "default")).get("status", {}).get("phase") != "Running":
                    await asyncio.sleep(0.05)
                seq = await start_pods(client, args.pods, False, "seq")
                print(summary("pod start-up, one at a time", seq))
                await delete_pods(client, data, keep=1)
                spy = None
                if args.profile:
                    kpid = next(p for p in children(proc.pid) if b"kubelet" in cmdline(p))
                    spy = subprocess.Popen([str(ROOT / ".venv" / "bin" / "py-spy"), "record", "-p", str(kpid),
                                            "-o", args.profile, "-f", "speedscope", "--subprocesses"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    await asyncio.sleep(1)
                burst = await start_pods(client, args.pods, True, "burst")
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                print(summary(f"pod start-up, {args.pods} at once", burst))
                await asyncio.sleep(2)
                kubelet = next(p for p in children(proc.pid) if b"kubelet" in cmdline(p))
                shims = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                         and b"k8py.kubelet.runtime.shim" in cmdline(int(p.name))
                         and data.encode() in b" ".join(cmdline(int(p.name)))]
                print(f"kubelet with {args.pods + 1} pods: RSS {rss_mb(kubelet):.1f} MB, PSS {pss_mb(kubelet):.1f} MB")
                if shims:
                    print(f"shims: {len(shims)}, RSS {sum(map(rss_mb, shims)) / len(shims):.1f} MB each, "
                          f"PSS {sum(map(pss_mb, shims)) / len(shims):.1f} MB each")
                await delete_pods(client, data, keep=1)
                await client.delete(PODS, "warm", "default")
                await delete_pods(client, data)
            finally:
                await client.close()

        asyncio.run(run())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if args.keep_log:
            shutil.copy(os.path.join(data, "server.log"), args.keep_log)
        clean_node(data, tag)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
