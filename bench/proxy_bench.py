"""Service proxy figures (issue 5), as root with runc and nft:

    .venv/bin/python bench/proxy_bench.py [--changes 50] [--min-sync-period 1]

A single-node cluster (tests/support/node.py: `k8py server` with a real
kubelet, images from a local registry) and `k8py proxy` with a table of its
own, started here.

1. Programming latency: a selector-less Service whose EndpointSlice this
   script rewrites N times (a new endpoint address each time, at random
   gaps of 0.2-1.2 s); the time from the write's answer to the address
   appearing in `nft list table` (polled every 5 ms), p50/p99.
2. Requests/s through a ClusterIP against the same pod's IP, from the host
   with wrk (one httpd pod; same run, same connection count), and the ratio.

Nothing is asserted; figures are printed.  The Service, pod, table and route
are removed at the end (the proxy's --cleanup), the cluster by its own close().
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.cluster import wait_for  # noqa: E402
from tests.support.images import BUSYBOX  # noqa: E402
from tests.support.node import NodeCluster  # noqa: E402
from tests.support.registry import Registry  # noqa: E402

K8PY = str(ROOT / ".venv" / "bin" / "k8py")


def nft_table(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout


def wrk(url: str, seconds: int, conns: int) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", url], capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--min-sync-period", default="1")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    from k8py.kubelet.images.busybox import build_busybox_archive
    tmp = tempfile.mkdtemp(prefix="k8py-proxy-bench-")
    archive = os.path.join(tmp, "busybox-oci.tar")
    build_busybox_archive(archive, BUSYBOX)
    with Registry() as reg:
        reg.push_archive(archive, "library/busybox:latest")
        reg.push_archive(archive, "library/httpd:latest")
        node = NodeCluster(reg.host).start()
        proxy = None
        try:
            pod_cidr = json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)["spec"]["podCIDR"]
            table = f"k8pyb{node.tag}"
            pargs = ["--kubeconfig", node.kubeconfig, "--hostname-override", node.node_name, "--nft-table", table,
                     "--bridge", f"k8py{node.tag}", "--cluster-cidr", pod_cidr,
                     "--min-sync-period", args.min_sync_period]
            log = open(os.path.join(node.data_dir, "proxy.log"), "ab")
            proxy = subprocess.Popen([K8PY, "proxy", *pargs], stdout=log, stderr=subprocess.STDOUT)
            wait_for(lambda: "chain services" in nft_table(table), 30, what="proxy table")

            # 1. programming latency
            node.apply("""
apiVersion: v1
kind: Service
metadata: {name: bench}
spec: {ports: [{name: http, port: 80}]}
""")
            lat = []
            for i in range(args.changes):
                ip = f"10.99.{i // 250}.{i % 250 + 1}"
                node.apply(f"""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: bench-1, labels: {{kubernetes.io/service-name: bench}}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints: [{{addresses: ["{ip}"], conditions: {{ready: true}}}}]
""")
                t0 = time.monotonic()
                needle = f"dnat to {ip}:8080"
                while needle not in nft_table(table):
                    if time.monotonic() - t0 > 10:
                        break
                    time.sleep(0.005)
                lat.append(time.monotonic() - t0)
                time.sleep(random.uniform(0.2, 1.2))
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            print(f"programming latency over {len(lat)} endpoint changes (--min-sync-period {args.min_sync_period}; "
                  f"includes kubectl apply's return and nft list polling): p50 {statistics.median(lat) * 1e3:.0f} ms, "
                  f"p99 {p99 * 1e3:.0f} ms, max {lat[-1] * 1e3:.0f} ms")

            # 2. ClusterIP vs pod IP
            node.kubectl("run", "web", "--image=httpd", "--port=80", "--labels=app=benchweb")
            pod = node.wait_ready("web", timeout=60)
            pod_ip = pod["status"]["podIP"]
            node.kubectl("expose", "pod", "web", "--name=benchweb", "--port=80")
            cip = json.loads(node.kubectl("get", "svc", "benchweb", "-o", "json").stdout)["spec"]["clusterIP"]
            wait_for(lambda: f"{cip} . tcp . 80" in nft_table(table), 20, what="ClusterIP rule")
            wrk(f"http://{pod_ip}/", 1, args.connections)  # warm-up
            direct = wrk(f"http://{pod_ip}/", args.seconds, args.connections)
            via = wrk(f"http://{cip}/", args.seconds, args.connections)
            direct2 = wrk(f"http://{pod_ip}/", args.seconds, args.connections)
            ref = (direct + direct2) / 2
            print(f"requests/s from the host with wrk -c{args.connections}: pod IP {direct:.0f} / {direct2:.0f}, "
                  f"ClusterIP {via:.0f}, ratio {via / ref:.2f}")
            node.kubectl("delete", "svc", "bench", "benchweb", "--wait=false")
            node.kubectl("delete", "pod", "web", "--grace-period=1", "--wait=false")
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(10)
                subprocess.run([K8PY, "proxy", "--cleanup", *pargs], capture_output=True)
            node.close()
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
