"""The root-ca-cert-publisher, as kube's: a ``kube-root-ca.crt`` ConfigMap
in every namespace whose ``ca.crt`` is the cluster CA (the one this
process's kubeconfig trusts), re-created when deleted and put back when
edited."""

from __future__ import annotations

import copy
import logging
from typing import Any, Hashable

from ..client.controller import Controller
from ..client.rest import APIError, resource
from .context import ControllerContext, register
from .serviceaccount import namespace_terminating

log = logging.getLogger(__name__)

NAMESPACES = resource("namespaces")
CONFIGMAPS = resource("configmaps")
NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


@register("root-ca-cert-publisher")
class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"
    workers = 1

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.workers = ctx.options.workers.get(self.name, self.workers)
        self.root_ca = (ctx.client.cfg.ca_data or b"").decode()
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.configmaps = ctx.informers.informer(CONFIGMAPS)
        self.namespaces.add_handler(self._on_namespace, self._on_namespace_update)
        self.configmaps.add_handler(on_update=lambda old, new: self._on_configmap(new),
                                    on_delete=self._on_configmap)

    def _on_namespace(self, ns: dict[str, Any]) -> None:
        self.enqueue(ns["metadata"]["name"])

    def _on_namespace_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (new.get("status") or {}).get("phase") == "Active":
            self.enqueue(new["metadata"]["name"])

    def _on_configmap(self, cm: dict[str, Any]) -> None:
        md = cm["metadata"]
        if md.get("name") == NAME:
            self.enqueue(md.get("namespace"))

    async def sync(self, key: Hashable) -> None:
        ns = str(key)
        if not self.root_ca:
            return  # a kubeconfig without a CA: nothing to publish
        nso = self.namespaces.store.get(ns)
        if nso is None or nso["metadata"].get("deletionTimestamp"):
            return
        data = {"ca.crt": self.root_ca}
        cm = self.configmaps.store.get_by(ns, NAME)
        if cm is None:
            try:
                await self.client.create(CONFIGMAPS, {
                    "metadata": {"name": NAME, "namespace": ns,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data}, ns)
            except APIError as e:
                # not retried if the namespace is gone or terminating; already there is fine too
                if e.code not in (404, 409) and not namespace_terminating(e):
                    raise
            return
        if cm.get("data") == data and (cm["metadata"].get("annotations") or {}).get(DESCRIPTION_ANNOTATION):
            return
        cm = copy.deepcopy(cm)
        cm["data"] = data
        cm["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        await self.client.update(CONFIGMAPS, cm)
