"""The pod worker's container decisions against a runtime of plain records:
a container that was created but did not start is replaced (kubelet's
ShouldContainerBeRestarted: whatever the restart policy), with back-off."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from types import SimpleNamespace

import pytest

from k8py.kubelet.kubelet import KubeletConfig
from k8py.kubelet.podworker import PodWorker
from k8py.kubelet.runtime.interface import CREATED, RUNNING, ContainerConfig, ContainerStatus, RuntimeFailure


class FlakyRuntime:
    """Records containers; the first `failures` starts fail as a lost shim report does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.containers: dict[str, ContainerStatus] = {}
        self.ids = itertools.count()

    async def list_containers(self, sandbox_id: str) -> list[ContainerStatus]:
        return list(self.containers.values())

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        cid = f"c{next(self.ids)}"
        self.containers[cid] = ContainerStatus(id=cid, name=config.name, sandbox_id=sandbox_id, state=CREATED,
                                               attempt=config.attempt)
        return cid

    async def start_container(self, cid: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeFailure(f"container {cid} did not start: the shim ended without a report")
        self.containers[cid] = replace(self.containers[cid], state=RUNNING, pid=1)

    async def container_status(self, cid: str) -> ContainerStatus:
        return self.containers[cid]

    async def remove_container(self, cid: str) -> None:
        self.containers.pop(cid, None)


def worker(runtime: FlakyRuntime, policy: str) -> PodWorker:
    image = SimpleNamespace(repo_tags=["busybox:latest"], repo_digests=[], id="sha256:x", layer_dirs=["/l"],
                            config=SimpleNamespace(entrypoint=[], cmd=["sh"], env=[], working_dir="/", user=""))

    async def ensure_image(w: PodWorker, c: dict) -> SimpleNamespace:
        return image

    async def container_env(w: PodWorker, c: dict) -> list:
        return []

    kl = SimpleNamespace(runtime=runtime, cfg=KubeletConfig(node_name="n", node_ip="127.0.0.1", crashloop_backoff=0.2),
                         ensure_image=ensure_image, container_env=container_env,
                         volumes=SimpleNamespace(mounts_for=lambda *a: []),
                         probes=SimpleNamespace(result=lambda *a: None, update_container=lambda *a: None),
                         event_target=lambda w: None)
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
           "spec": {"restartPolicy": policy, "containers": [{"name": "main", "image": "busybox"}]}}
    w = PodWorker(kl, pod)  # type: ignore[arg-type]
    w.sandbox_id = "s1"
    w.watch = lambda cid, name: None  # type: ignore[method-assign]
    return w


@pytest.mark.parametrize("policy", ["Always", "Never"])
def test_a_container_that_did_not_start_is_replaced_with_back_off(policy: str) -> None:
    async def main() -> None:
        rt = FlakyRuntime(failures=2)
        w = worker(rt, policy)
        again = await w.sync_containers()            # created, start fails: RunContainerError
        assert w.waiting["main"][0] == "RunContainerError" and again is not None
        assert [s.state for s in rt.containers.values()] == [CREATED]
        await w.sync_containers()                    # replaced at once (first back-off step), fails again
        assert [(s.attempt, s.state) for s in rt.containers.values()] == [(0, CREATED), (1, CREATED)]
        wait = await w.sync_containers()             # now within the back-off: nothing new
        assert w.waiting["main"][0] == "CrashLoopBackOff" and 0 < wait <= 0.4
        assert len(rt.containers) == 2
        await asyncio.sleep(wait)
        await w.sync_containers()                    # the third start works; the oldest is pruned
        assert [(s.attempt, s.state) for s in rt.containers.values()] == [(1, CREATED), (2, RUNNING)]
        assert "main" not in w.waiting
    asyncio.run(main())
