"""Cluster DNS figures (issue 5): queries per second and latency of
``k8py dns`` with many services.

    .venv/bin/python bench/dns_bench.py [--services 1000] [--clients 2] [--window 64] [--duration 10]

1. ``k8py apiserver`` (SQLite) on loopback; S ClusterIP Services created
   through the API (ClusterIPs are allocated by admission).
2. ``k8py dns --listen 127.0.0.1:PORT`` (its upstream a closed loopback
   port: every name asked is a cluster name); wait until the last Service
   resolves.
3. C client processes, each one UDP socket keeping W queries in flight
   (A queries for random services, plus ``--nx`` percent of names that do
   not exist), for D seconds; each answer's latency is recorded.

Prints queries/s, p50/p99 latency, lost queries and the DNS process's CPU
seconds (queries per CPU-second is the figure that does not depend on what
else the machine runs).  Traffic stays on loopback; every process started
is stopped by its own pid.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from k8py.client import kubeconfig  # noqa: E402
from k8py.client.rest import APIError, Client, resource  # noqa: E402
from k8py.dns import wire  # noqa: E402

K8PY = str(ROOT / ".venv" / "bin" / "k8py")
SERVICES = resource("services")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


async def create_services(kc: str, n: int) -> None:
    async with Client(kubeconfig.load(kc, user_agent="dns-bench"), connections=32) as c:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                try:
                    await c.create(SERVICES, {"metadata": {"name": f"svc-{i}", "namespace": "default"},
                                              "spec": {"ports": [{"name": "http", "port": 80}]}})
                except APIError as e:
                    if e.code != 409:
                        raise
        await asyncio.gather(*(one(i) for i in range(n)))


def client(port: int, names: list[bytes], window: int, duration: float, seed: int,
           out: "mp.Queue[tuple[int, int, list[float]]]") -> None:
    """One process: ``window`` queries in flight on one UDP socket."""
    rnd = random.Random(seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", port))
    s.settimeout(0.5)
    sent: dict[int, float] = {}
    lat: list[float] = []
    next_id = 0
    lost = 0
    pre = [wire.make_query(wire.wire_to_name(n), wire.A, 0) for n in names]

    def send() -> None:
        nonlocal next_id
        next_id = (next_id + 1) & 0xFFFF
        while next_id in sent:
            next_id = (next_id + 1) & 0xFFFF
        q = pre[rnd.randrange(len(pre))]
        sent[next_id] = time.perf_counter()
        s.send(next_id.to_bytes(2, "big") + q[2:])

    end = time.perf_counter() + duration
    for _ in range(window):
        send()
    done = 0
    while True:
        try:
            data = s.recv(4096)
        except socket.timeout:
            lost += len(sent)
            sent.clear()
            if time.perf_counter() >= end:
                break
            for _ in range(window):
                send()
            continue
        now = time.perf_counter()
        t = sent.pop(data[0] << 8 | data[1], None)
        if t is not None:
            lat.append(now - t)
            done += 1
        if now < end:
            send()
        elif not sent:
            break
    out.put((done, lost, lat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--nx", type=int, default=0, help="percent of queries for names that do not exist")
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="k8py-dnsbench-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        api_port = free_port()
        kc = os.path.join(d, "kubeconfig.yaml")
        log = open(os.path.join(d, "apiserver.log"), "ab")
        procs.append(subprocess.Popen([K8PY, "apiserver", "--data-dir", d, "--https-listen-port", str(api_port),
                                       "--bind-address", "127.0.0.1", "--write-kubeconfig", kc],
                                      stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 30
        while not os.path.exists(kc):
            if time.monotonic() > deadline:
                raise SystemExit("apiserver did not start")
            time.sleep(0.1)
        t0 = time.monotonic()
        asyncio.run(create_services(kc, args.services))
        print(f"{args.services} services created in {time.monotonic() - t0:.1f} s")

        dns_port = free_port(socket.SOCK_DGRAM)
        dlog = open(os.path.join(d, "dns.log"), "ab")
        dns = subprocess.Popen([K8PY, "dns", "--kubeconfig", kc, "--listen", f"127.0.0.1:{dns_port}",
                                "--upstream", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "--health-port", "0"],
                               stdout=dlog, stderr=subprocess.STDOUT)
        procs.append(dns)
        last = f"svc-{args.services - 1}.default.svc.cluster.local"
        t0 = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while True:
                try:
                    s.sendto(wire.make_query(last, wire.A, 1), ("127.0.0.1", dns_port))
                    if wire.parse(s.recv(4096)).answer:
                        break
                except (socket.timeout, ConnectionRefusedError):
                    pass
                if time.monotonic() - t0 > 60:
                    raise SystemExit("dns did not answer")
                time.sleep(0.05)
        print(f"dns answering all services {time.monotonic() - t0:.2f} s after start")

        names = [wire.name_to_wire(f"svc-{i}.default.svc.cluster.local") for i in range(args.services)]
        if args.nx:
            k = max(1, len(names) * args.nx // (100 - args.nx)) if args.nx < 100 else len(names)
            nx = [wire.name_to_wire(f"nope-{i}.default.svc.cluster.local") for i in range(k)]
            names = nx if args.nx >= 100 else names + nx
        cpu0 = cpu_seconds(dns.pid)
        q: mp.Queue[tuple[int, int, list[float]]] = mp.Queue()
        workers = [mp.Process(target=client, args=(dns_port, names, args.window, args.duration, i, q))
                   for i in range(args.clients)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        results = [q.get() for _ in workers]
        wall = time.perf_counter() - t0
        for w in workers:
            w.join()
        cpu = cpu_seconds(dns.pid) - cpu0
        done = sum(r[0] for r in results)
        lost = sum(r[1] for r in results)
        lat = sorted(x for r in results for x in r[2])
        qps = done / args.duration
        print(f"clients {args.clients} x window {args.window}, {args.duration:.0f} s "
              f"({wall:.1f} s wall), {args.nx}% NXDOMAIN")
        print(f"queries/s: {qps:,.0f}   answered {done:,}, lost {lost}")
        if lat:
            print(f"latency: p50 {lat[len(lat) // 2] * 1e3:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms, "
                  f"max {lat[-1] * 1e3:.1f} ms")
        print(f"dns process CPU: {cpu:.1f} s -> {done / cpu if cpu else 0:,.0f} queries per CPU-second")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
