"""The serviceaccount controller, as kube's: every active namespace has a
``default`` ServiceAccount, created when the namespace appears and again if
it is deleted.  A namespace that is terminating is left alone."""

from __future__ import annotations

import logging
from typing import Any, Hashable

from ..client.controller import Controller
from ..client.rest import APIError, is_already_exists, resource
from .context import ControllerContext, register
from .controller_utils import namespace_terminating

log = logging.getLogger(__name__)

NAMESPACES = resource("namespaces")
SERVICEACCOUNTS = resource("serviceaccounts")
ENSURE = ("default",)


@register("serviceaccount")
class ServiceAccountController(Controller):
    name = "serviceaccount"
    workers = 1  # kube's --concurrent-serviceaccount-syncs

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.workers = ctx.options.workers.get(self.name, self.workers)
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.accounts = ctx.informers.informer(SERVICEACCOUNTS)
        self.namespaces.add_handler(self._on_namespace, lambda old, new: self._on_namespace(new))
        self.accounts.add_handler(on_delete=self._on_account_deleted)

    def _on_namespace(self, ns: dict[str, Any]) -> None:
        self.enqueue(ns["metadata"]["name"])

    def _on_account_deleted(self, sa: dict[str, Any]) -> None:
        md = sa["metadata"]
        if md.get("name") in ENSURE:
            self.enqueue(md.get("namespace"))

    async def sync(self, key: Hashable) -> None:
        name = str(key)
        ns = self.namespaces.store.get(name)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active" \
                or ns["metadata"].get("deletionTimestamp"):
            return
        failures = []
        for sa in ENSURE:
            if self.accounts.store.get_by(name, sa) is not None:
                continue
            try:
                await self.client.create(SERVICEACCOUNTS, {"metadata": {"name": sa, "namespace": name}}, name)
                log.info("serviceaccount: created %s/%s", name, sa)
            except APIError as e:
                if not is_already_exists(e) and not namespace_terminating(e):
                    failures.append(e)
        if failures:
            raise failures[0]
