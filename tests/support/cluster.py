"""A whole k8py cluster for end-to-end tests: ``k8py server`` (API server,
scheduler, controller-manager) plus ``k8py hollow-nodes`` processes, each
stopped by its own handle."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable

from tests.e2e.conftest import K8PY, Server, stop_process


def wait_for(fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "") -> Any:
    """Polls ``fn`` until it returns something truthy; fails with the last
    value (or exception) seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - kept for the failure message
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or fn}: last {last!r}")
        time.sleep(interval)


class HollowNodes:
    """One ``k8py hollow-nodes`` process."""

    def __init__(self, server: Server, count: int, prefix: str = "hollow-", *extra: str):
        self.server = server
        self.args = [K8PY, "hollow-nodes", "--kubeconfig", server.kubeconfig, "--count", str(count),
                     "--name-prefix", prefix, *extra]
        self.names = [f"{prefix}{i}" for i in range(count)]
        self.log_path = os.path.join(server.data_dir, f"hollow-{prefix.strip('-') or 'nodes'}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: bool = True, timeout: float = 60.0) -> "HollowNodes":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if ready:
            def all_ready() -> bool:
                out = self.server.kubectl("get", "nodes", "-o",
                                          "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
                                          check=False).stdout
                states = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
                return all(states.get(n) == "True" for n in self.names)
            wait_for(all_ready, timeout, what=f"nodes {self.names} Ready")
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


class Cluster(Server):
    """``k8py server`` with its control plane, and hollow nodes added on demand."""

    def __init__(self, *extra_args: str, agent: bool = False):
        # most control-plane tests want hollow nodes only: no real kubelet unless asked
        super().__init__(cmd="server", extra_args=extra_args if agent else ("--disable-agent", *extra_args))
        self.node_sets: list[HollowNodes] = []

    def add_nodes(self, count: int, prefix: str = "hollow-", *extra: str, ready: bool = True) -> HollowNodes:
        h = HollowNodes(self, count, prefix, *extra)
        self.node_sets.append(h)
        return h.start(ready=ready)

    def close(self) -> None:
        for h in self.node_sets:
            h.stop()
        super().close()
