"""The kubelet's features end to end, with real kubectl against ``k8py server``
as root (runc, CNI, a local registry): static pods and their mirrors,
securityContext, volumes (tmpfs emptyDir, hostPath, hostPath and local
PersistentVolumes, projected), graceful termination with preStop, cgroup
resources and QoS classes, containers sharing localhost, hostPort through
CNI portmap, and the Node object (capacity, conditions, Lease, stats)."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Iterator

import pytest

from tests.e2e.conftest import free_port
from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster, node  # noqa: F401 - fixture
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")


def sh(node: NodeCluster, pod: str, script: str, container: str | None = None,
       check: bool = True) -> subprocess.CompletedProcess[str]:
    args = ["exec", pod] + (["-c", container] if container else []) + ["--", "sh", "-c", script]
    return node.kubectl(*args, check=check)


def gone(node: NodeCluster, *pods: str, ns: str = "default") -> bool:
    p = node.kubectl("get", "pod", *pods, "-n", ns, "-o", "name", "--ignore-not-found", check=False)
    return p.returncode == 0 and not p.stdout.strip()


def delete_and_wait(node: NodeCluster, *pods: str, timeout: float = 40) -> None:
    node.kubectl("delete", "pod", *pods, "--grace-period=1", "--wait=false", "--ignore-not-found")
    wait_for(lambda: gone(node, *pods), timeout, what=f"pods {pods} gone")


# -- 1. static pods ------------------------------------------------------------------------------


@pytest.fixture
def static_node(busybox_registry: Registry) -> Iterator[tuple[NodeCluster, str]]:  # noqa: F811
    """A cluster of its own whose kubelet reads a manifest folder every second (NodeCluster gives it
    its own kubelet port and pod subnet, so it can run beside the shared node)."""
    manifests = tempfile.mkdtemp(prefix="k8py-manifests-")
    c = NodeCluster(busybox_registry.host, kubelet_args=(f"--pod-manifest-path={manifests}",
                                                         "--file-check-frequency=1", "--sync-frequency=2"))
    try:
        c.start()
        yield c, manifests
    finally:
        c.close()
        shutil.rmtree(manifests, ignore_errors=True)


def test_static_pod_and_its_mirror(static_node: tuple[NodeCluster, str]) -> None:
    node, manifests = static_node
    host = tempfile.mkdtemp(prefix="k8py-static-")
    try:
        with open(os.path.join(manifests, "beat.yaml"), "w") as f:
            f.write(f"""
apiVersion: v1
kind: Pod
metadata: {{name: beat, labels: {{app: beat}}}}
spec:
  containers:
  - name: beat
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do date +%s%N > /host/beat.new; mv /host/beat.new /host/beat; sleep 0.2; done"]
    volumeMounts: [{{name: host, mountPath: /host}}]
  volumes: [{{name: host, hostPath: {{path: {host}, type: Directory}}}}]
""")
        name = f"beat-{node.node_name}"

        def running_mirror() -> dict | None:
            p = node.kubectl("get", "pod", name, "-o", "json", check=False)
            if p.returncode != 0:
                return None
            pod = json.loads(p.stdout)
            st = pod.get("status") or {}
            ok = st.get("phase") == "Running" and st.get("podIP") and (st.get("containerStatuses") or [{}])[0] \
                .get("state", {}).get("running")
            return pod if ok and not pod["metadata"].get("deletionTimestamp") else None

        mirror = wait_for(running_mirror, 60, what="the mirror pod Running")
        ann = mirror["metadata"]["annotations"]
        assert ann["kubernetes.io/config.mirror"] == ann["kubernetes.io/config.hash"]
        assert ann["kubernetes.io/config.source"] == "file"
        assert mirror["spec"]["nodeName"] == node.node_name
        owner = mirror["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "Node" and owner["name"] == node.node_name
        cidr = node.kubectl("get", "node", node.node_name, "-o", "jsonpath={.spec.podCIDR}").stdout
        assert ipaddress.ip_address(mirror["status"]["podIP"]) in ipaddress.ip_network(cidr)
        cs = mirror["status"]["containerStatuses"][0]
        cid, uid = cs["containerID"], mirror["metadata"]["uid"]
        assert cs["restartCount"] == 0
        wait_for(lambda: os.path.exists(os.path.join(host, "beat")), 10, what="the static pod's heartbeat")
        # kubectl logs and exec reach the static pod through its mirror
        assert node.kubectl("exec", name, "--", "cat", "/host/beat").stdout.strip()

        # deleting the mirror (gracefully, as kubectl does) brings it back; the container does not restart
        node.kubectl("delete", "pod", name, "--wait=false")
        again = wait_for(lambda: (m := running_mirror()) and m["metadata"]["uid"] != uid and m, 15,
                         what="a new mirror pod (well before the 30 s grace period)")
        cs = again["status"]["containerStatuses"][0]
        assert cs["containerID"] == cid and cs["restartCount"] == 0

        # removing the manifest stops the pod and the mirror goes away
        os.unlink(os.path.join(manifests, "beat.yaml"))
        wait_for(lambda: gone(node, name), 30, what="the mirror pod gone")

        def stopped() -> bool:
            with open(os.path.join(host, "beat")) as f:
                a = f.read()
            time.sleep(1)
            with open(os.path.join(host, "beat")) as f:
                return a == f.read()
        wait_for(stopped, 20, what="the static pod's container stopped")
    finally:
        for f in os.listdir(manifests):
            os.unlink(os.path.join(manifests, f))
        shutil.rmtree(host, ignore_errors=True)


# -- 2. securityContext ------------------------------------------------------------------------------


def test_security_context(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: secctx}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: plain, image: busybox, command: [sleep, "3600"]}
  - name: user
    image: busybox
    command: [sleep, "3600"]
    securityContext: {runAsUser: 1000, runAsGroup: 3000}
  - name: ro
    image: busybox
    command: [sleep, "3600"]
    securityContext: {readOnlyRootFilesystem: true}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  - name: netadmin
    image: busybox
    command: [sleep, "3600"]
    securityContext: {capabilities: {add: [NET_ADMIN]}}
  - name: nochown
    image: busybox
    command: [sleep, "3600"]
    securityContext: {capabilities: {drop: [CHOWN]}}
  - name: priv
    image: busybox
    command: [sleep, "3600"]
    securityContext: {privileged: true}
  volumes: [{name: scratch, emptyDir: {}}]
""")
    try:
        node.wait_ready("secctx")
        assert sh(node, "secctx", "id -u; id -g", "user").stdout.split() == ["1000", "3000"]
        assert sh(node, "secctx", "id -u; id -g", "plain").stdout.split() == ["0", "0"]
        # read-only root: writes fail, a volume stays writable
        assert sh(node, "secctx", "touch /rootfile", "ro", check=False).returncode != 0
        assert sh(node, "secctx", "touch /tmp/x", "ro", check=False).returncode != 0
        sh(node, "secctx", "touch /scratch/ok", "ro")
        sh(node, "secctx", "touch /rootfile", "plain")
        # NET_ADMIN added: the pod's loopback MTU can be changed (the pod's own network namespace)
        assert sh(node, "secctx", "ip link set lo mtu 1400", "plain", check=False).returncode != 0
        sh(node, "secctx", "ip link set lo mtu 1400", "netadmin")
        assert "mtu 1400" in sh(node, "secctx", "ip link show lo", "plain").stdout
        # CHOWN dropped: chown fails there, works by default
        sh(node, "secctx", "touch /tmp/f && chown 1:1 /tmp/f", "plain")
        assert sh(node, "secctx", "touch /tmp/f && chown 1:1 /tmp/f", "nochown", check=False).returncode != 0
        caps = sh(node, "secctx", "grep CapEff /proc/self/status", "nochown").stdout.split()[1]
        assert not int(caps, 16) & 1  # CAP_CHOWN is bit 0
        # privileged: the host's devices and a writable /proc/sys (the pod's own net namespace's files)
        priv_devs = sh(node, "secctx", "ls /dev | wc -l", "priv").stdout.strip()
        plain_devs = sh(node, "secctx", "ls /dev | wc -l", "plain").stdout.strip()
        assert int(priv_devs) > int(plain_devs) + 10, (priv_devs, plain_devs)
        write = "v=$(cat /proc/sys/net/ipv4/ip_forward); echo $v > /proc/sys/net/ipv4/ip_forward"
        sh(node, "secctx", write, "priv")
        assert sh(node, "secctx", write, "plain", check=False).returncode != 0
    finally:
        delete_and_wait(node, "secctx")


# -- 3. volumes ----------------------------------------------------------------------------------------


def wait_bound(node: NodeCluster, pvc: str, pv: str, timeout: float = 30) -> None:
    """The controller-manager's persistentvolume-binder binds the pre-bound pair: the PV's claimRef gets the
    claim's uid and both are Bound."""
    def bound() -> bool:
        claim = json.loads(node.kubectl("get", "pvc", pvc, "-o", "json").stdout)
        vol = json.loads(node.kubectl("get", "pv", pv, "-o", "json").stdout)
        return ((claim.get("status") or {}).get("phase") == "Bound" and vol["status"].get("phase") == "Bound"
                and vol["spec"]["claimRef"].get("uid") == claim["metadata"]["uid"])
    wait_for(bound, timeout, what=f"{pvc} bound to {pv}")


def test_volumes(node: NodeCluster) -> None:
    base = tempfile.mkdtemp(prefix="k8py-vol-")
    hp, pv_hp, pv_local = (os.path.join(base, d) for d in ("made", "pv-hostpath", "pv-local"))
    os.makedirs(pv_hp)
    os.makedirs(pv_local)
    with open(os.path.join(pv_hp, "from-host"), "w") as f:
        f.write("hostpath pv")
    with open(os.path.join(pv_local, "from-host"), "w") as f:
        f.write("local pv")
    objs = f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-hostpath}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: {pv_hp}}}
  claimRef: {{namespace: default, name: claim-hostpath}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-local}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  local: {{path: {pv_local}}}
  claimRef: {{namespace: default, name: claim-local}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{node.node_name}]}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: claim-hostpath}}
spec: {{accessModes: [ReadWriteOnce], volumeName: pv-hostpath, storageClassName: "",
        resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: claim-local}}
spec: {{accessModes: [ReadWriteOnce], volumeName: pv-local, storageClassName: "",
        resources: {{requests: {{storage: 1Gi}}}}}}
"""
    node.kubectl("create", "configmap", "proj-cm", "--from-literal=color=blue")
    node.kubectl("create", "secret", "generic", "proj-sec", "--from-literal=token=t0k3n")
    try:
        node.apply(objs)
        wait_bound(node, "claim-hostpath", "pv-hostpath")
        wait_bound(node, "claim-local", "pv-local")
        node.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: vols, labels: {{app: vols}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    resources: {{limits: {{memory: 64Mi}}}}
    volumeMounts:
    - {{name: mem, mountPath: /data}}
    - {{name: hp, mountPath: /hp}}
    - {{name: pvhp, mountPath: /pvhp}}
    - {{name: pvlocal, mountPath: /pvlocal}}
    - {{name: proj, mountPath: /proj}}
  volumes:
  - {{name: mem, emptyDir: {{medium: Memory}}}}
  - {{name: hp, hostPath: {{path: {hp}, type: DirectoryOrCreate}}}}
  - {{name: pvhp, persistentVolumeClaim: {{claimName: claim-hostpath}}}}
  - {{name: pvlocal, persistentVolumeClaim: {{claimName: claim-local}}}}
  - name: proj
    projected:
      sources:
      - configMap: {{name: proj-cm}}
      - secret: {{name: proj-sec, items: [{{key: token, path: sec/token}}]}}
      - downwardAPI:
          items:
          - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
          - {{path: mem, resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1Mi}}}}
""")
        node.wait_ready("vols")
        mounts = sh(node, "vols", "grep ' /data ' /proc/mounts").stdout
        assert mounts.split()[2] == "tmpfs", mounts
        assert os.path.isdir(hp)  # DirectoryOrCreate made it
        sh(node, "vols", "echo in > /hp/from-pod; echo a > /pvhp/from-pod; echo b > /pvlocal/from-pod")
        assert open(os.path.join(hp, "from-pod")).read() == "in\n"
        assert open(os.path.join(pv_hp, "from-pod")).read() == "a\n"
        assert open(os.path.join(pv_local, "from-pod")).read() == "b\n"
        assert sh(node, "vols", "cat /pvhp/from-host /pvlocal/from-host").stdout == "hostpath pvlocal pv"
        assert sh(node, "vols", "cat /proj/color").stdout == "blue"
        assert sh(node, "vols", "cat /proj/sec/token").stdout == "t0k3n"
        assert 'app="vols"' in sh(node, "vols", "cat /proj/labels").stdout
        assert sh(node, "vols", "cat /proj/mem").stdout == "64"
    finally:
        delete_and_wait(node, "vols")
        node.kubectl("delete", "pvc", "claim-hostpath", "claim-local", "--ignore-not-found", "--wait=false")
        node.kubectl("delete", "pv", "pv-hostpath", "pv-local", "--ignore-not-found", "--wait=false")
        node.kubectl("delete", "configmap", "proj-cm", "--ignore-not-found")
        node.kubectl("delete", "secret", "proj-sec", "--ignore-not-found")
        shutil.rmtree(base, ignore_errors=True)


# -- 4. graceful termination ----------------------------------------------------------------------------


def test_graceful_termination_prestop_and_sigkill(node: NodeCluster) -> None:
    host = tempfile.mkdtemp(prefix="k8py-term-")
    try:
        node.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: polite}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "trap 'echo TERM >> /host/log; exit 0' TERM; while true; do sleep 0.2; done"]
    lifecycle:
      preStop: {{exec: {{command: [sh, -c, "echo preStop >> /host/log"]}}}}
    volumeMounts: [{{name: host, mountPath: /host}}]
  volumes: [{{name: host, hostPath: {{path: {host}}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "trap '' TERM; while true; do sleep 0.2; done"]
""")
        node.wait_ready("polite")
        node.wait_ready("stubborn")
        t0 = time.monotonic()
        node.kubectl("delete", "pod", "polite", "stubborn", "--wait=false")
        out = node.kubectl("get", "pod", "polite", "stubborn", check=False).stdout
        assert "Terminating" in out, out
        wait_for(lambda: gone(node, "polite"), 20, interval=0.1, what="polite gone")
        polite = time.monotonic() - t0
        wait_for(lambda: gone(node, "stubborn"), 20, interval=0.1, what="stubborn gone")
        stubborn = time.monotonic() - t0
        with open(os.path.join(host, "log")) as f:
            assert f.read().split() == ["preStop", "TERM"]
        assert polite < 8, polite            # it left at SIGTERM, well within its 20 s
        assert 2.5 < stubborn < 9, stubborn  # killed once its 3 s ran out
    finally:
        node.kubectl("delete", "pod", "polite", "stubborn", "--grace-period=0", "--force", "--ignore-not-found",
                     check=False)
        shutil.rmtree(host, ignore_errors=True)


# -- 5. resources ----------------------------------------------------------------------------------------


def test_resources_cgroups_and_qos(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [sleep, "3600"],
     resources: {limits: {cpu: 250m, memory: 64Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: burstable}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [sleep, "3600"],
     resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 500m, memory: 128Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: besteffort}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [sleep, "3600"]}
""")
    want = {"guaranteed": ("Guaranteed", "25000", "256", str(64 << 20)),
            "burstable": ("Burstable", "50000", "102", str(128 << 20)),
            "besteffort": ("BestEffort", "-1", "2", None)}
    try:
        for name, (qos, quota, shares, mem) in want.items():
            pod = node.wait_ready(name)
            assert pod["status"]["qosClass"] == qos
            cg = sh(node, name, "cat /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                                "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes")
            period, q, s, m = cg.stdout.split()
            assert (period, q, s) == ("100000", quota, shares), (name, cg.stdout)
            if mem is None:
                assert int(m) > 1 << 40, m  # unlimited
            else:
                assert m == mem, (name, m)
    finally:
        delete_and_wait(node, *want)


# -- 6. containers sharing the pod's network ---------------------------------------------------------------


def test_containers_share_localhost_and_pod_ip(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: web, image: busybox,
     command: [sh, -c, "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]}
  - {name: client, image: busybox, command: [sleep, "3600"]}
""")
    try:
        pod = node.wait_ready("duo")
        ip = pod["status"]["podIP"]
        page = wait_for(lambda: sh(node, "duo", "wget -qO- http://127.0.0.1:8080/", "client", check=False).stdout,
                        10, what="the page over localhost")
        assert page == "from-web\n"
        for c in ("web", "client"):
            assert f"inet {ip}/" in sh(node, "duo", "ip -4 addr show eth0", c).stdout
    finally:
        delete_and_wait(node, "duo")


# -- 7. hostPort through CNI portmap -----------------------------------------------------------------------


def nat_chains() -> set[str]:
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("-N ")}


def remove_nat_chains(chains: set[str]) -> None:
    """Deletes these nat chains (and every rule that jumps to them) by name."""
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = shlex.split(line)
        if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in chains \
                and parts[1] not in chains:
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *parts[1:]], capture_output=True, check=False)
    for chain in chains:
        subprocess.run(["iptables", "-w", "-t", "nat", "-F", chain], capture_output=True, check=False)
    for chain in chains:
        subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True, check=False)


def nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.startswith("table ")}


def remove_empty_tables(tables: set[str]) -> None:
    """Deletes these nftables tables (e.g. "table ip nat") when no rule is left in them: portmap's
    iptables calls (and listing with iptables-nft) make the nat tables with their base chains."""
    for t in tables:
        family, name = t.split()[1:3]
        listed = subprocess.run(["nft", "list", "table", family, name], capture_output=True, text=True).stdout
        rules = [line for line in listed.splitlines()
                 if line.strip() and not line.strip().startswith(("table ", "chain ", "type ", "}"))]
        if not rules:
            subprocess.run(["nft", "delete", "table", family, name], capture_output=True, check=False)


def test_host_port_through_portmap(node: NodeCluster) -> None:
    tables_before = nft_tables()
    before = nat_chains()
    port = free_port()
    node.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: hostport}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: httpd
    ports: [{{containerPort: 80, hostPort: {port}}}]
""")
    try:
        pod = node.wait_ready("hostport")
        host_ip = pod["status"]["hostIP"]
        page = wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read(), 15,
                        what="the page through 127.0.0.1:hostPort")
        assert b"It works!" in page
        if host_ip != "127.0.0.1":
            assert b"It works!" in urllib.request.urlopen(f"http://{host_ip}:{port}/", timeout=2).read()
        assert any(c.startswith("CNI-DN-") for c in nat_chains())
    finally:
        delete_and_wait(node, "hostport")
        # portmap's per-pod chain went with the pod; its top-level chains stay: remove those this test made
        left = {c for c in nat_chains() - before if c.startswith("CNI-")}
        remove_nat_chains(left)
        chains_left = {c for c in nat_chains() - before if c.startswith("CNI-")}
        remove_empty_tables(nft_tables() - tables_before)
    assert not chains_left
    assert not nft_tables() - tables_before


# -- 8. the Node object --------------------------------------------------------------------------------------


def test_node_object_lease_and_stats(node: NodeCluster) -> None:
    n = json.loads(node.kubectl("get", "node", node.node_name, "-o", "json").stdout)
    cap, alloc = n["status"]["capacity"], n["status"]["allocatable"]
    assert cap["cpu"] == str(len(os.sched_getaffinity(0)))
    with open("/proc/meminfo") as f:
        total_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    assert cap["memory"] == f"{total_kib}Ki"
    assert cap["pods"] == "110" and cap["ephemeral-storage"].endswith("Ki")
    assert int(alloc["memory"].removesuffix("Ki")) < total_kib
    conds = {c["type"]: c for c in n["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conds[t]["status"] == "False", conds[t]
    info = n["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("runc://"), info
    assert info["operatingSystem"] == "linux" and info["kubeletVersion"].startswith("v1.")
    cidr = ipaddress.ip_network(n["spec"]["podCIDR"])
    assert cidr.prefixlen == 24 and n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in n["status"]["addresses"]
    assert n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0

    def renew() -> str:
        return node.kubectl("get", "lease", node.node_name, "-n", "kube-node-lease", "-o",
                            "jsonpath={.spec.renewTime}").stdout
    first = renew()
    assert first
    wait_for(lambda: renew() != first, 13, interval=0.5, what="the Lease renewed")

    node.kubectl("run", "statspod", "--image=busybox", "--overrides",
                 json.dumps({"spec": {"terminationGracePeriodSeconds": 1}}), "--", "sleep", "3600")
    try:
        assert ipaddress.ip_address(node.wait_ready("statspod")["status"]["podIP"]) in cidr

        def summary() -> dict | None:
            raw = node.kubectl("get", "--raw", f"/api/v1/nodes/{node.node_name}/proxy/stats/summary").stdout
            s = json.loads(raw)
            pods = [p for p in s.get("pods") or () if p["podRef"]["name"] == "statspod"]
            if pods and (pods[0].get("memory") or {}).get("workingSetBytes") is not None \
                    and (pods[0].get("cpu") or {}).get("usageCoreNanoSeconds") is not None:
                return s
            return None
        s = wait_for(summary, 30, interval=1, what="statspod in /stats/summary")
        assert s["node"]["nodeName"] == node.node_name
        assert s["node"]["memory"]["workingSetBytes"] > 0 and s["node"]["cpu"]["usageCoreNanoSeconds"] > 0
        pod = next(p for p in s["pods"] if p["podRef"]["name"] == "statspod")
        assert pod["podRef"]["namespace"] == "default" and pod["containers"][0]["name"] == "statspod"
    finally:
        delete_and_wait(node, "statspod")
