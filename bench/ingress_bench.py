"""Ingress figures: requests/s through ``k8py ingress``'s proxy against the
same backend reached directly, in one run.

    .venv/bin/python bench/ingress_bench.py [--seconds 5] [--connections 32] [--rounds 3]
    .venv/bin/python bench/ingress_bench.py --backend busybox     # one backend only

Backends (each its own process on loopback, as a pod is):

- ``busybox``: busybox's httpd serving a static page, the server of the
  test cluster's httpd image (a process per connection, no keep-alive);
- ``aiohttp``: a small aiohttp application (keep-alive, a Python app).

The proxy runs in a process of its own (``IngressProxy`` on uvloop, a
table with one host rule, the same code path as ``k8py ingress``).  The
load generator is wrk (``/usr/bin/wrk``), keep-alive connections, a Host
header; direct and proxied runs alternate ``--rounds`` times and the
median of each is reported, with their ratio (the issue's target: the
proxy at >= 0.5 of direct).  Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PAGE = b"<html><body><h1>It works!</h1></body></html>\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- child processes ----------------------------------------------------------

def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def page(_req: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")
    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    try:  # on uvloop, as the proxy: the comparison is of the two programs, not of two loops
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_proxy(port: int, backend: str) -> None:
    from k8py.ingress.proxy import IngressProxy
    from k8py.ingress.rules import Backend, HostRules, PathRule, RoutingTable

    host, _, bport = backend.rpartition(":")
    b = Backend("bench/web:80", [(host, int(bport))])
    rules = HostRules([PathRule("", False, b)])
    table = RoutingTable(exact={"bench.local": rules})

    async def main() -> None:
        proxy = IngressProxy(table)
        await proxy.start("127.0.0.1", port, None)
        await asyncio.Event().wait()
    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# -- measuring ------------------------------------------------------------------

def wrk(port: int, seconds: float, connections: int) -> float:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H", "Host: bench.local",
                          f"http://127.0.0.1:{port}/index.html"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print("   wrk:", errors.group(0), file=sys.stderr)
    assert m, out
    return float(m.group(1))


def start_backend(kind: str, port: int, docroot: str) -> subprocess.Popen[bytes]:
    if kind == "busybox":
        busybox = shutil.which("busybox")
        if not busybox:
            raise RuntimeError("busybox not found")
        return subprocess.Popen([busybox, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", docroot])
    return subprocess.Popen([sys.executable, __file__, "--serve-aiohttp", str(port)])


def measure(kind: str, args: argparse.Namespace) -> None:
    docroot = tempfile.mkdtemp(prefix="k8py-ingress-bench-")
    with open(os.path.join(docroot, "index.html"), "wb") as f:
        f.write(PAGE)
    bport, pport = free_port(), free_port()
    procs = [start_backend(kind, bport, docroot),
             subprocess.Popen([sys.executable, __file__, "--serve-proxy", str(pport), f"127.0.0.1:{bport}"])]
    try:
        wait_port(bport)
        wait_port(pport)
        wrk(bport, 1, args.connections)  # warm up
        wrk(pport, 1, args.connections)
        direct, proxied = [], []
        for _ in range(args.rounds):
            direct.append(wrk(bport, args.seconds, args.connections))
            proxied.append(wrk(pport, args.seconds, args.connections))
        d, p = statistics.median(direct), statistics.median(proxied)
        print(f"{kind:8s} direct  {d:9.0f} req/s   (runs: {', '.join(f'{x:.0f}' for x in direct)})")
        print(f"{kind:8s} ingress {p:9.0f} req/s   (runs: {', '.join(f'{x:.0f}' for x in proxied)})")
        print(f"{kind:8s} ratio   {p / d:9.2f}   (target >= 0.5)")
    finally:
        for pr in procs:
            pr.terminate()
            pr.wait()
        shutil.rmtree(docroot, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("busybox", "aiohttp", "both"), default="both")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve-aiohttp", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-proxy", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_aiohttp:
        return serve_aiohttp(args.serve_aiohttp)
    if args.serve_proxy:
        return serve_proxy(int(args.serve_proxy[0]), args.serve_proxy[1])
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    print(f"wrk -t1 -c{args.connections}, {args.seconds:g} s per run, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs")
    for kind in (("busybox", "aiohttp") if args.backend == "both" else (args.backend,)):
        measure(kind, args)


if __name__ == "__main__":
    main()
