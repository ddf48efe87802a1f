"""The bookkeeping every runtime shares: its sandboxes and containers by id,
and the RuntimeService methods that only read that table.

A runtime's container records need ``status`` (a ContainerStatus),
``sandbox.id``, ``exited`` (an asyncio.Event) and ``log_path``."""

from __future__ import annotations

import asyncio
from typing import Any

from k8py.kubelet.runtime.interface import CREATED, RUNNING, ContainerStatus, NotFoundError, RuntimeFailure


class ContainerTable:
    def __init__(self) -> None:
        self._sandboxes: dict[str, Any] = {}
        self._containers: dict[str, Any] = {}

    def _sandbox(self, sandbox_id: str) -> Any:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise NotFoundError(f"pod sandbox {sandbox_id} not found") from None

    def _container(self, container_id: str) -> Any:
        try:
            return self._containers[container_id]
        except KeyError:
            raise NotFoundError(f"container {container_id} not found") from None

    def _running(self, container_id: str) -> Any:
        c = self._container(container_id)
        if c.status.state != RUNNING:
            raise RuntimeFailure(f"container {container_id} is not running")
        return c

    async def stop_container(self, container_id: str, timeout: float) -> None:
        raise NotImplementedError

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox at once (SIGKILL); idempotent."""
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return
        await asyncio.gather(*(self.stop_container(cid, 0) for cid in list(sb.containers)))

    async def list_sandboxes(self) -> list[tuple[str, Any]]:
        return [(sid, sb.config) for sid, sb in self._sandboxes.items()]

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status for c in self._containers.values() if sandbox_id in (None, c.sandbox.id)]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        c = self._container(container_id)
        if c.status.state == CREATED:
            raise RuntimeFailure(f"container {container_id} was not started")
        await c.exited.wait()
        return c.status

    def log_path(self, container_id: str) -> str:
        return self._container(container_id).log_path
