"""Raw storage write throughput: N creates from C concurrent coroutines.

    .venv/bin/python bench/storage_bench.py                  # sqlite only
    .venv/bin/python bench/storage_bench.py --start-etcd     # + a throwaway local etcd
    .venv/bin/python bench/storage_bench.py --etcd http://127.0.0.1:2379

Each writer loops ``create(key, value)``; a write counts once it is
acknowledged (durable). Prints writes/s and per-write latency percentiles.
The SQLite file lives in a temporary directory (``--dir`` to choose the disk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from k8py.storage.etcd import EtcdStore  # noqa: E402
from k8py.storage.sqlite import SQLiteStore  # noqa: E402


async def bench(store: Any, n: int, concurrency: int, size: int, label: str) -> float:
    await store.start()
    value = os.urandom(size // 2).hex().encode()[:size]
    run = f"/bench/{time.time_ns()}"
    lat: list[float] = []
    per = n // concurrency

    async def writer(w: int) -> None:
        for i in range(per):
            t = time.perf_counter()
            await store.create(f"{run}/w{w:03d}/{i:06d}", value)
            lat.append(time.perf_counter() - t)

    await asyncio.gather(*(writer(w) for w in range(concurrency)))  # warm-up round, not measured
    lat.clear()
    run = f"/bench/{time.time_ns()}"
    t0 = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(concurrency)))
    dt = time.perf_counter() - t0
    await store.close()
    lat.sort()
    total = per * concurrency
    rate = total / dt
    pct = {p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000 for p in (50, 99)}
    print(
        f"{label:7s} {total} writes x {size} B, {concurrency} writers: {dt:6.2f} s = {rate:8.0f} writes/s"
        f"  (latency p50 {pct[50]:.1f} ms, p99 {pct[99]:.1f} ms)"
    )
    return rate


def start_etcd(tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    client, peer = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    proc = subprocess.Popen(
        [shutil.which("etcd") or "/usr/bin/etcd", "--data-dir", os.path.join(tmp, "etcd"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"default={peer}", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            with urllib.request.urlopen(client + "/health", timeout=1) as r:
                if b'"true"' in r.read():
                    return proc, client
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("etcd did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20000, help="writes per measured round")
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("--size", type=int, default=1024, help="value size in bytes")
    ap.add_argument("--dir", default=None, help="directory for the SQLite file")
    ap.add_argument("--etcd", default=None, help="also bench this etcd endpoint")
    ap.add_argument("--start-etcd", action="store_true", help="also bench a throwaway local etcd")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="k8py-bench-", dir=args.dir)
    proc = None
    try:
        if not args.no_sqlite:
            store = SQLiteStore(os.path.join(tmp, "state.db"))
            asyncio.run(bench(store, args.n, args.concurrency, args.size, "sqlite"))
        url = args.etcd
        if args.start_etcd and not url:
            proc, url = start_etcd(tmp)
        if url:
            asyncio.run(bench(EtcdStore(url), args.n, args.concurrency, args.size, "etcd"))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
