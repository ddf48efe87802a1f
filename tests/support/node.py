"""A single-node cluster with a real kubelet (``k8py server`` as root,
runc and CNI), its images served by a real local registry as a docker.io
mirror, and a teardown that leaves nothing behind: pods are deleted
through the API first, then whatever a crash may have left (sandboxes,
network namespaces, the bridge, cgroups, tmpfs volumes) is removed by id
from the node's own state files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import subprocess
from typing import Any, Iterator

import pytest

from tests.e2e.conftest import free_port
from tests.support.cluster import Cluster, wait_for
from tests.support.registry import Registry


class NodeCluster(Cluster):
    def __init__(self, registry_host: str, *extra: str, kubelet_args: tuple[str, ...] = ()):
        args = [f"--kubelet-arg=--registry-mirror=docker.io=http://{registry_host}",
                f"--kubelet-arg=--insecure-registry={registry_host}",
                "--kubelet-arg=--hostname-override=k8py-node", "--kubelet-arg=--node-ip=127.0.0.1",
                f"--kubelet-arg=--port={free_port()}",
                # a pod subnet of its own, so that two clusters on one machine never share a route
                f"--kube-controller-manager-arg=--cluster-cidr=10.42.{random.randint(1, 254)}.0/24",
                "--kube-controller-manager-arg=--node-cidr-mask-size=24",
                # the tests of Services, DNS and Ingress start their own, on their own tables and ports
                "--disable=proxy", "--disable=dns", "--disable=ingress",
                # one node: no host-gw routes and no masquerade table in the machine's namespace
                "--kubelet-arg=--cluster-cidr=",
                *(f"--kubelet-arg={a}" for a in kubelet_args), *extra]
        super().__init__(*args, agent=True)
        self.node_name = "k8py-node"

    def start(self) -> "NodeCluster":  # type: ignore[override]
        super().start()
        try:
            wait_for(lambda: self.node_ready(), 60, what="node Ready")
        except BaseException:
            self.close()
            raise
        return self

    def node_ready(self) -> bool:
        p = self.kubectl("get", "node", self.node_name, "-o",
                         "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}", check=False)
        return p.stdout.strip() == "True"

    def pod_json(self, name: str, ns: str = "default") -> dict[str, Any]:
        return json.loads(self.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)

    def wait_phase(self, name: str, phase: str = "Running", ns: str = "default", timeout: float = 120) -> dict:
        def check() -> dict | None:
            pod = self.pod_json(name, ns)
            return pod if pod.get("status", {}).get("phase") == phase else None
        return self._wait_pod(check, timeout, name, ns, phase)

    def wait_ready(self, name: str, ns: str = "default", timeout: float = 120) -> dict:
        def check() -> dict | None:
            pod = self.pod_json(name, ns)
            conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or ()}
            return pod if conds.get("Ready") == "True" else None
        return self._wait_pod(check, timeout, name, ns, "Ready")

    def _wait_pod(self, check: Any, timeout: float, name: str, ns: str, what: str) -> dict:
        """wait_for, and on a timeout the pod's status, its events and the node's log say why."""
        try:
            return wait_for(check, timeout, what=f"pod {name} {what}")
        except AssertionError as e:
            status = self.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status}", check=False).stdout
            events = self.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                                  check=False).stdout
            raise AssertionError(f"{e}\nstatus: {status}\nevents:\n{events}") from None

    def apply(self, manifest: str, ns: str = "default") -> None:
        self.kubectl("apply", "-n", ns, "-f", "-", input=manifest)

    @property
    def tag(self) -> str:
        return hashlib.sha256(os.path.abspath(self.data_dir).encode()).hexdigest()[:8]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false",
                         check=False)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not self.kubectl("get", "pods", "-A", "-o", "name", check=False).stdout.strip()
                         or None, 40, what="pods gone")
        self.stop()
        try:
            clean_node(self.data_dir, self.tag)
        finally:
            super().close()


def clean_node(data_dir: str, tag: str) -> None:
    """Remove what a kubelet with this data dir left: containers and sandboxes (via the runtime's own
    records), pod networks (via the CNI cache), tmpfs volumes, the bridge and the cgroup root."""
    from k8py.kubelet.network import PodNetwork, PodNetworkConfig
    from k8py.kubelet.runtime.runc import RuncRuntime

    async def main() -> None:
        rt = RuncRuntime(os.path.join(data_dir, "runtime"), cgroup_root=f"k8py-{tag}")
        with contextlib.suppress(Exception):
            await rt.recover()
            for sid, _ in await rt.list_sandboxes():
                await rt.stop_pod_sandbox(sid)
                await rt.remove_pod_sandbox(sid)
            for st in await rt.list_containers():
                await rt.remove_container(st.id)
        net = PodNetwork(PodNetworkConfig(pod_cidr="10.42.0.0/24", bridge=f"k8py{tag}",
                                          data_dir=os.path.join(data_dir, "cni")))
        for sid in net.sandboxes():
            with contextlib.suppress(Exception):
                await net.teardown(sid)
        with contextlib.suppress(Exception):
            rt.remove_cgroup_root()

    asyncio.run(main())
    pods = os.path.join(data_dir, "kubelet", "pods")
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(pods + "/")]
    for p in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", p], check=False)
    subprocess.run(["ip", "link", "del", f"k8py{tag}"], capture_output=True, check=False)
    _remove_cgroups(f"k8py-{tag}")


def _remove_cgroups(root: str) -> None:
    base = "/sys/fs/cgroup"
    tops = [base] + [os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
    for top in tops:
        path = os.path.join(top, root)
        if not os.path.isdir(path):
            continue
        for dirpath, _, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


@pytest.fixture(scope="session")
def node(busybox_registry: Registry) -> Iterator[NodeCluster]:
    """One single-node cluster with a real kubelet for the test session (modules that restart
    their cluster make their own). Short back-offs keep crash-loop tests quick."""
    c = NodeCluster(busybox_registry.host, kubelet_args=("--crashloop-backoff=2", "--sync-frequency=2",
                                                         "--image-pull-backoff=1")).start()
    try:
        yield c
    finally:
        c.close()
