"""API server figures, on embedded SQLite and on a real etcd, in one run.

    .venv/bin/python bench/apiserver_bench.py [--pods 10000] [--clients 50] [--watchers 100]
    .venv/bin/python bench/apiserver_bench.py --backend sqlite     # one backend only
    .venv/bin/python bench/apiserver_bench.py --backend sqlite --only-creates --load-generator both


For each backend it starts a fresh ``k8py apiserver`` (and, for etcd, a
throwaway etcd on loopback), then measures from a separate load-generator
process on this machine (HTTPS with the admin certificate):

- pod creates/s and latency p50/p99 with C concurrent clients;
- GET latency p50/p99 of single pods;
- time to LIST all pods (plain JSON, as the Python client asks) and as a
  Table (as kubectl get asks);
- watch events/s delivered in all to W watchers while pods are written;
- API server resident memory with all the pods stored;
- and, as the reference, the raw backend's own writes/s (storage_bench).

``--load-generator wrk`` (or ``both``) measures pod creates/s and latency
percentiles with wrk (a C load generator, ``apt-get install wrk``) instead
of (or as well as) the Python one: 50 connections for ``--wrk-seconds``,
each POST a pod with a unique name (bench/wrk_create_pods.lua), against a
fresh server, authenticated with a static bearer token (wrk has no client
certificates).  ``--only-creates`` skips everything but the creates.

Prints one block of figures per backend.  Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.etcd import EtcdProcess  # noqa: E402

K8PY = str(ROOT / ".venv" / "bin" / "k8py")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000 if xs else float("nan")


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": name[-1]}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    def __init__(self, datastore: str):
        self.dir = tempfile.mkdtemp(prefix="k8py-bench-")
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        kc = os.path.join(self.dir, "kubeconfig.yaml")
        self.token = "bench-" + os.urandom(12).hex()
        tokens = os.path.join(self.dir, "tokens.csv")
        Path(tokens).write_text(f'{self.token},bench,1000,"system:masters"\n')
        args = [K8PY, "apiserver", "--data-dir", self.dir, "--https-listen-port", str(self.port),
                "--bind-address", "127.0.0.1", "--write-kubeconfig", kc, "--token-auth-file", tokens]
        if datastore:
            args += ["--datastore-endpoint", datastore]
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not os.path.exists(kc):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("apiserver failed:\n" + Path(self.dir, "log").read_text()[-3000:])
            time.sleep(0.05)
        tls = os.path.join(self.dir, "tls")
        self.ssl = ssl.create_default_context(cafile=os.path.join(tls, "ca.crt"))
        self.ssl.load_cert_chain(os.path.join(tls, "admin.crt"), os.path.join(tls, "admin.key"))
        self.url = f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_wrk(label: str, t: Target, clients: int, seconds: int, threads: int) -> None:
    """Pod creates/s and latency percentiles measured by wrk (after a short warm-up run)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print(f"[{label}] wrk: not installed (apt-get install wrk)")
        return
    script = str(ROOT / "bench" / "wrk_create_pods.lua")

    def run(prefix: str, secs: int) -> dict[str, float]:
        out = subprocess.run([wrk, f"-t{threads}", f"-c{clients}", f"-d{int(secs)}s", "--timeout", "10s", "-s", script,
                              t.url, "--", t.token, prefix], capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("WRK ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}

    run("warm", 1)
    cpu0 = cpu_seconds(t.proc.pid)
    r = run("wrk", seconds)
    cpu = cpu_seconds(t.proc.pid) - cpu0
    print(f"[{label}] pod creates (wrk): {r['creates']:.0f} in {r['seconds']:.2f} s = "
          f"{r['creates'] / r['seconds']:.0f}/s with {clients} connections, {threads} wrk thread(s) "
          f"(p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
          f"max {r['max_ms']:.1f} ms; {r['non201']:.0f} not 201); "
          f"API server CPU {cpu / max(r['creates'], 1) * 1e6:.0f} us/create")


async def run_backend(label: str, t: Target, n: int, clients: int, watchers: int, only_creates: bool = False) -> None:
    conn = aiohttp.TCPConnector(ssl=t.ssl, limit=0)
    async with aiohttp.ClientSession(connector=conn) as s:
        base = t.url + "/api/v1/namespaces/default/pods"
        hdr = {"Content-Type": "application/json"}
        # warm-up: connections, code paths
        for i in range(clients):
            async with s.post(base, data=json.dumps(pod(f"warm-{i}")), headers=hdr) as r:
                assert r.status == 201, await r.text()

        lat: list[float] = []
        per = n // clients

        async def creator(c: int) -> None:
            for i in range(per):
                body = json.dumps(pod(f"p-{c:03d}-{i:05d}"))
                t0 = time.perf_counter()
                async with s.post(base, data=body, headers=hdr) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"create failed: {r.status}")
                lat.append(time.perf_counter() - t0)

        cpu0, own0 = cpu_seconds(t.proc.pid), time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(creator(c) for c in range(clients)))
        dt = time.perf_counter() - t0
        total = per * clients
        cpu, own = cpu_seconds(t.proc.pid) - cpu0, time.process_time() - own0
        print(f"[{label}] pod creates: {total} in {dt:.2f} s = {total / dt:.0f}/s with {clients} clients "
              f"(p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms); CPU per create: API server "
              f"{cpu / total * 1e6:.0f} us, load generator {own / total * 1e6:.0f} us")
        if only_creates:
            return

        await asyncio.sleep(1.0)
        print(f"[{label}] API server RSS with {total + clients} pods stored: {rss_mb(t.proc.pid):.0f} MB "
              f"(after the creates)")
        glat: list[float] = []

        async def getter(c: int) -> None:
            for i in range(min(per, 100)):
                t1 = time.perf_counter()
                async with s.get(f"{base}/p-{c:03d}-{i:05d}") as r:
                    await r.read()
                    assert r.status == 200
                glat.append(time.perf_counter() - t1)

        await asyncio.gather(*(getter(c) for c in range(clients)))
        print(f"[{label}] GET: {len(glat)} gets (p50 {pct(glat, 50):.1f} ms, p99 {pct(glat, 99):.1f} ms)")

        for accept, what in (("application/json", "JSON"),
                             ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "Table")):
            best = float("inf")
            for _ in range(3):
                t1 = time.perf_counter()
                async with s.get(base, headers={"Accept": accept}) as r:
                    data = await r.read()
                best = min(best, time.perf_counter() - t1)
            count = len(json.loads(data).get("items" if what == "JSON" else "rows") or [])
            print(f"[{label}] LIST {count} pods as {what}: {best * 1000:.0f} ms ({len(data) / 1e6:.1f} MB)")

        await asyncio.sleep(1.5)
        print(f"[{label}] API server RSS with {total + clients} pods stored: {rss_mb(t.proc.pid):.0f} MB "
              f"(after the lists)")

        # watch fan-out: W watchers, then a burst of updates
        async with s.get(base + "?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        received = [0] * watchers
        updates = min(2000, total)
        ready = asyncio.Event()
        done = asyncio.Event()

        async def watcher(w: int) -> None:
            async with s.get(f"{base}?watch=1&resourceVersion={rv}&timeoutSeconds=120") as r:
                async for _line in r.content:
                    received[w] += 1
                    if received[w] >= updates:
                        break
            if all(x >= updates for x in received):
                done.set()

        tasks = [asyncio.create_task(watcher(w)) for w in range(watchers)]
        await asyncio.sleep(1.0)
        ready.set()
        patch_hdr = {"Content-Type": "application/merge-patch+json"}
        t1 = time.perf_counter()

        async def updater(c: int) -> None:
            for i in range(updates // clients):
                async with s.patch(f"{base}/p-{c:03d}-{i:05d}", data=b'{"metadata":{"labels":{"w":"1"}}}',
                                   headers=patch_hdr) as r:
                    await r.read()

        await asyncio.gather(*(updater(c) for c in range(clients)))
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
        except asyncio.TimeoutError:
            for tk in tasks:
                tk.cancel()
        dt = time.perf_counter() - t1
        delivered = sum(received)
        print(f"[{label}] watch: {delivered} events delivered to {watchers} watchers in {dt:.2f} s = "
              f"{delivered / dt:.0f} events/s")


def raw_backend(label: str, datastore_url: str, n: int, clients: int) -> None:
    args = [sys.executable, str(ROOT / "bench" / "storage_bench.py"), "-n", str(n), "-c", str(clients)]
    if datastore_url:
        args += ["--etcd", datastore_url, "--no-sqlite"]
    out = subprocess.run(args, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if "writes/s" in line]
    print(f"[{label}] raw backend: " + (lines[-1].strip() if lines else out.stderr.strip()[-300:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--backend", choices=["sqlite", "etcd", "both"], default="both")
    ap.add_argument("--load-generator", choices=["python", "wrk", "both"], default="python",
                    help="who measures pod creates: the Python (aiohttp) client, wrk, or both")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--only-creates", action="store_true", help="measure pod creates only")
    a = ap.parse_args()
    for label in (["sqlite", "etcd"] if a.backend == "both" else [a.backend]):
        etcd = None
        datastore = ""
        if label == "etcd":
            etcd = EtcdProcess()
            etcd.start()
            datastore = "etcd://" + etcd.url.removeprefix("http://")
        try:
            if not a.only_creates:
                raw_backend(label, etcd.url if etcd else "", a.pods, a.clients)
            if a.load_generator in ("python", "both"):
                t = Target(datastore)
                try:
                    asyncio.run(run_backend(label, t, a.pods, a.clients, a.watchers, a.only_creates))
                finally:
                    t.close()
            if a.load_generator in ("wrk", "both"):
                t = Target(datastore)
                try:
                    run_wrk(label, t, a.clients, a.wrk_seconds, a.wrk_threads)
                finally:
                    t.close()
        finally:
            if etcd:
                etcd.close()


if __name__ == "__main__":
    main()
