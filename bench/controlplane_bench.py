"""Control-plane figures (issue 3): 1,000 hollow nodes and the whole control
plane on this machine.

    .venv/bin/python bench/controlplane_bench.py [--nodes 1000] [--pods 10000] [--replicas 1000]

1. ``k8py server --disable-scheduler`` and one ``k8py hollow-nodes`` process
   with N nodes; wait until all are Ready.
2. Scheduling throughput: create P pods (no node) through the API, then
   start ``k8py scheduler`` and watch the pods get bound; prints pods bound
   per second over the binding window (first bind to last) and from the
   scheduler's start, plus time until all are Running (hollow kubelets).
3. A Deployment of R replicas: time from create to R pods Running and to
   ``availableReplicas == R``.
4. Resident memory of the API server, controller-manager, scheduler and
   hollow-nodes processes with all those pods present.

Nothing is asserted; figures are printed.  Every process started is stopped
by its own pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from k8py.client import kubeconfig  # noqa: E402
from k8py.client.rest import APIError, Client, resource  # noqa: E402

K8PY = str(ROOT / ".venv" / "bin" / "k8py")
PODS = resource("pods")
NODES = resource("nodes")
DEPLOYMENTS = resource("deployments.apps")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def cpu_line(procs: dict[str, int], before: dict[str, float], n: int) -> str:
    return ", ".join(f"{k} {(cpu_s(p) - before.get(k, 0.0)) * 1e6 / n:.0f} µs"
                     for k, p in procs.items())


def children(pid: int) -> dict[str, int]:
    """The server's child components by name."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for k in kids:
            cmd = Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")
            for name in (b"controller-manager", b"scheduler"):
                if name in cmd:
                    out[name.decode()] = int(k)
    return out


def pod(i: int) -> dict:
    return {"metadata": {"name": f"sched-{i}", "labels": {"app": "sched-bench"}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "terminationGracePeriodSeconds": 0}}


async def create_all(c: Client, ns: str, n: int, clients: int = 50) -> float:
    t0 = time.monotonic()
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            while True:
                try:
                    await c.create(PODS, pod(i), ns)
                    break
                except APIError as e:
                    if e.code == 409:
                        break
                    await asyncio.sleep(0.05)
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.monotonic() - t0


async def watch_pods(c: Client, ns: str, selector: str, want: int, rv: str,
                     bound: dict[str, float], running: dict[str, float], deadline: float) -> None:
    while len(running) < want and time.monotonic() < deadline:
        try:
            async for ev in c.watch(PODS, ns, resource_version=rv, labelSelector=selector, timeout_seconds=60):
                o = ev["object"]
                if ev["type"] == "BOOKMARK":
                    rv = o["metadata"]["resourceVersion"]
                    continue
                if ev["type"] not in ("ADDED", "MODIFIED"):
                    continue
                rv = o["metadata"]["resourceVersion"]
                name = o["metadata"]["name"]
                now = time.monotonic()
                if o["spec"].get("nodeName") and name not in bound:
                    bound[name] = now
                if (o.get("status") or {}).get("phase") == "Running" and name not in running:
                    running[name] = now
                if len(running) >= want or now > deadline:
                    return
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.2)


async def wait_nodes_ready(c: Client, n: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        lst = await c.list(NODES)
        ready = sum(1 for nd in lst["items"] for cond in nd.get("status", {}).get("conditions", [])
                    if cond["type"] == "Ready" and cond["status"] == "True")
        if ready >= n:
            return time.monotonic() - t0
        await asyncio.sleep(1)
    raise SystemExit(f"only some of {n} nodes became Ready in {timeout:.0f} s")


async def bench(args: argparse.Namespace, kubeconfig_path: str, server_pid: int, procs: dict[str, int],
                start_scheduler) -> None:
    c = Client(kubeconfig.load(kubeconfig_path), connections=100)
    t = await wait_nodes_ready(c, args.nodes, 600)
    print(f"{args.nodes} hollow nodes Ready in {t:.1f} s")
    await c.create(resource("namespaces"), {"metadata": {"name": "sched"}})
    created = await create_all(c, "sched", args.pods)
    print(f"created {args.pods} pods in {created:.1f} s ({args.pods / created:.0f}/s) with no scheduler running")
    rv = (await c.list(PODS, "sched", limit=1))["metadata"]["resourceVersion"]
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    cpu0 = {k: cpu_s(p) for k, p in procs.items()}
    t_start = time.monotonic()
    procs["scheduler"] = start_scheduler()
    await watch_pods(c, "sched", "app=sched-bench", args.pods, rv, bound, running, t_start + 900)
    if bound:
        first, last = min(bound.values()), max(bound.values())
        print(f"scheduling: {len(bound)} pods bound; {len(bound) / max(last - first, 1e-9):.0f} pods/s over the "
              f"binding window ({last - first:.1f} s), {len(bound) / (last - t_start):.0f} pods/s from scheduler "
              f"start (incl. its {first - t_start:.1f} s start-up)")
    if running:
        print(f"all {len(running)} pods Running {max(running.values()) - t_start:.1f} s after scheduler start")
    print(f"CPU per pod while scheduling and starting {args.pods} pods: " + cpu_line(procs, cpu0, args.pods))
    print(f"RSS with {args.pods} pods: " + ", ".join(f"{k} {rss_mb(p):.0f} MB" for k, p in procs.items()))

    # a Deployment of R replicas, from create to all Running / available
    await c.create(resource("namespaces"), {"metadata": {"name": "deploy"}})
    rv = (await c.list(PODS, "deploy", limit=1))["metadata"]["resourceVersion"]
    bound.clear(); running.clear()
    dep = {"metadata": {"name": "big"}, "spec": {
        "replicas": args.replicas, "selector": {"matchLabels": {"app": "big"}},
        "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
    cpu0 = {k: cpu_s(p) for k, p in procs.items()}
    t0 = time.monotonic()
    await c.create(DEPLOYMENTS, dep, "deploy")
    await watch_pods(c, "deploy", "app=big", args.replicas, rv, bound, running, t0 + 600)
    t_running = (max(running.values()) - t0) if len(running) >= args.replicas else float("nan")
    while time.monotonic() - t0 < 600:
        d = await c.get(DEPLOYMENTS, "big", "deploy")
        if (d.get("status") or {}).get("availableReplicas") == args.replicas:
            break
        await asyncio.sleep(0.2)
    t_avail = time.monotonic() - t0
    print(f"deployment of {args.replicas}: all pods Running in {t_running:.1f} s, "
          f"availableReplicas={args.replicas} in {t_avail:.1f} s")
    print(f"CPU per pod of the deployment: " + cpu_line(procs, cpu0, args.replicas))
    print(f"RSS with {args.pods + args.replicas} pods: " + ", ".join(f"{k} {rss_mb(p):.0f} MB" for k, p in procs.items()))
    await c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--port", type=int, default=16444)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="k8py-cpbench-")
    kc = os.path.join(data, "kubeconfig.yaml")
    logs = open(os.path.join(data, "log"), "ab")
    started: list[subprocess.Popen[bytes]] = []

    def spawn(*argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([K8PY, *argv], stdout=logs, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started.append(p)
        return p

    try:
        server = spawn("server", "--data-dir", data, "--https-listen-port", str(args.port),
                       "--bind-address", "127.0.0.1", "--disable-scheduler",
                       # 1,000 nodes need 1,000 podCIDRs: /26s of the /16 cluster CIDR
                       "--kube-controller-manager-arg=--node-cidr-mask-size=26")
        while not os.path.exists(kc):
            if server.poll() is not None:
                raise SystemExit("server did not start; see " + data)
            time.sleep(0.1)
        hollow = spawn("hollow-nodes", "--kubeconfig", kc, "--count", str(args.nodes),
                       "--pod-run-seconds", "100000")
        time.sleep(1)
        procs = {"apiserver": server.pid, "hollow-nodes": hollow.pid, **children(server.pid)}
        asyncio.run(bench(args, kc, server.pid, procs,
                          lambda: spawn("scheduler", "--kubeconfig", kc).pid))
    finally:
        for p in reversed(started):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
