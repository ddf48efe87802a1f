"""A single-node cluster with a real kubelet (``k8py server`` as root,
runc and CNI), its images served by a real local registry as a docker.io
mirror, and a teardown that leaves nothing behind: pods are deleted
through the API first, then whatever a crash may have left (sandboxes,
network namespaces, the bridge, cgroups, tmpfs volumes) is removed by id
from the node's own state files."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any, Iterator

import pytest

from k8py.killall import killall
from k8py.supervisor import data_tag
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
        return data_tag(self.data_dir)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false",
                         check=False)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not self.kubectl("get", "pods", "-A", "-o", "name", check=False).stdout.strip()
                         or None, 40, what="pods gone")
        self.stop()
        try:
            killall(self.data_dir)
        finally:
            super().close()


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
