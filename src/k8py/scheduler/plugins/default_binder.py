"""DefaultBinder: binds through the pods/binding subresource."""

from __future__ import annotations

from ...client.rest import APIError, resource
from ..framework import CycleState, Plugin, Status, error, register
from ..nodeinfo import PodInfo

NAME = "DefaultBinder"
PODS = resource("pods")


@register
class DefaultBinder(Plugin):
    name = NAME

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        client = self.handle.client
        assert client is not None
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        try:
            await client.post_subresource(PODS, pod.name, pod.namespace, "binding", body)
        except (APIError, OSError) as e:
            return error(str(e))
        return None
