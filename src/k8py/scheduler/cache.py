"""The scheduler's cache of nodes and the pods on them, built from the
informers, plus *assumed* pods: a pod the scheduler has placed but whose
binding has not come back through the watch yet.  Its resources count at
once, so the next pod sees them without waiting for the bind round-trip;
a failed bind forgets it, and the informer's copy with ``spec.nodeName``
confirms it (as kube's cache.AssumePod/ForgetPod/AddPod)."""

from __future__ import annotations

from typing import Any

from .nodeinfo import NodeInfo, PodInfo

Obj = dict[str, Any]


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_node: dict[str, str] = {}  # uid -> node name, for every pod counted
        self.pod_infos: dict[str, PodInfo] = {}
        self.assumed: set[str] = set()
        self._node_list: list[NodeInfo] | None = None
        self.affinity_nodes: set[str] = set()  # nodes holding pods with pod (anti-)affinity
        self.anti_affinity_nodes: set[str] = set()  # ... with required anti-affinity
        self.namespace_labels: dict[str, dict[str, str]] = {}
        # nodes by what plugins may skip when no node has it
        self.tainted_nodes: set[str] = set()  # NoSchedule / NoExecute taints
        self.prefer_no_schedule_nodes: set[str] = set()
        self.unschedulable_nodes: set[str] = set()

    def _classify(self, ni: NodeInfo) -> None:
        name = ni.name
        hard = soft = False
        if ni.node is not None:
            for t in ni.taints:
                if t.get("effect") == "PreferNoSchedule":
                    soft = True
                else:
                    hard = True
        for flag, group in ((hard, self.tainted_nodes), (soft, self.prefer_no_schedule_nodes),
                            (ni.node is not None and ni.unschedulable, self.unschedulable_nodes)):
            if flag:
                group.add(name)
            else:
                group.discard(name)

    # -- nodes ------------------------------------------------------------

    def node_list(self) -> list[NodeInfo]:
        """Nodes that exist (a pod may arrive before its node), in a stable order."""
        if self._node_list is None:
            self._node_list = [n for _, n in sorted(self.nodes.items()) if n.node is not None]
        return self._node_list

    def add_node(self, node: Obj) -> NodeInfo:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        if ni.node is None:
            self._node_list = None
        ni.set_node(node)
        self._classify(ni)
        return ni

    def remove_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        ni = self.nodes.get(name)
        if ni is None:
            return
        self._node_list = None
        ni.node = None
        self._classify(ni)
        if not ni.pods:  # else its pods stay counted until their deletion arrives
            del self.nodes[name]

    # -- pods ---------------------------------------------------------------

    def _node_for(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        return ni

    def _add(self, p: PodInfo, node_name: str) -> None:
        ni = self._node_for(node_name)
        ni.add_pod(p)
        self.pod_node[p.uid] = node_name
        self.pod_infos[p.uid] = p
        if ni.affinity_pods:
            self.affinity_nodes.add(node_name)
        if ni.anti_affinity_pods:
            self.anti_affinity_nodes.add(node_name)

    def _remove(self, uid: str) -> PodInfo | None:
        node_name = self.pod_node.pop(uid, None)
        p = self.pod_infos.pop(uid, None)
        if node_name is None or p is None:
            return p
        ni = self.nodes.get(node_name)
        if ni is not None:
            ni.remove_pod(p)
            if not ni.affinity_pods:
                self.affinity_nodes.discard(node_name)
            if not ni.anti_affinity_pods:
                self.anti_affinity_nodes.discard(node_name)
            if ni.node is None and not ni.pods:
                del self.nodes[node_name]
        return p

    def assume(self, p: PodInfo, node_name: str) -> None:
        self._add(p, node_name)
        self.assumed.add(p.uid)

    def forget(self, p: PodInfo) -> None:
        if p.uid in self.assumed:
            self.assumed.discard(p.uid)
            self._remove(p.uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def add_pod(self, pod: Obj) -> PodInfo:
        """An assigned pod seen by the informer (confirms an assumed one)."""
        uid = pod["metadata"].get("uid") or ""
        node_name = pod["spec"]["nodeName"]
        p = self.pod_infos.get(uid)
        self.assumed.discard(uid)
        if p is not None and self.pod_node.get(uid) == node_name:
            p.set_pod(pod)
            return p
        if p is not None:
            self._remove(uid)
            p.set_pod(pod)
        else:
            p = PodInfo(pod)
        self._add(p, node_name)
        return p

    def update_pod(self, old: Obj, new: Obj) -> PodInfo:
        uid = new["metadata"].get("uid") or ""
        p = self.pod_infos.get(uid)
        if (p is not None and self.pod_node.get(uid) == new["spec"]["nodeName"]
                and (old["metadata"].get("labels") == new["metadata"].get("labels"))):
            p.set_pod(new)  # requests and ports are immutable: no recount
            return p
        if p is not None:
            self._remove(uid)
        return self.add_pod(new)

    def remove_pod(self, pod: Obj) -> PodInfo | None:
        uid = pod["metadata"].get("uid") or ""
        self.assumed.discard(uid)
        return self._remove(uid)

    def pods(self) -> list[PodInfo]:
        return list(self.pod_infos.values())
