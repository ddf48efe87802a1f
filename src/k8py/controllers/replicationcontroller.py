"""The ReplicationController controller: the ReplicaSet controller's logic
(``replicaset.ReplicaSetLikeController``) over core/v1
ReplicationControllers, whose selector is a plain label map — as kube runs
its ReplicaSet controller on converted ReplicationControllers."""

from __future__ import annotations

from ..api.labels import Selector, selector_from_set
from .context import register
from .controller_utils import Obj
from .replicaset import ReplicaSetLikeController


@register("replicationcontroller")
class ReplicationControllerController(ReplicaSetLikeController):
    name = "replicationcontroller"
    component = "replication-controller"
    resource_spec = "replicationcontrollers"
    kind = "ReplicationController"
    api_version = "v1"

    def selector_of(self, rs: Obj) -> Selector:
        return selector_from_set((rs.get("spec") or {}).get("selector"))
