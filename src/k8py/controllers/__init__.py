"""The controllers of ``k8py controller-manager``, one module each.

A controller module registers its class with ``@register("name")`` (the
name kube-controller-manager's ``--controllers`` flag uses, e.g.
``deployment``, ``garbage-collector``).  A controller class takes a
:class:`~k8py.controllers.context.ControllerContext`, registers its informer
handlers in ``__init__`` and reconciles in ``async def run()``."""

from __future__ import annotations

import importlib
import logging
import pkgutil

from .context import CONTROLLERS, register

_NOT_CONTROLLERS = {"context", "manager"}


def discover() -> dict[str, type]:
    """Imports every controller module of this package; returns the registry."""
    for m in pkgutil.iter_modules(__path__):
        if m.name not in _NOT_CONTROLLERS and not m.name.startswith("_"):
            try:
                importlib.import_module(f"{__name__}.{m.name}")
            except Exception:  # noqa: BLE001 - one broken module must not stop the rest
                logging.getLogger(__name__).exception("controller module %s failed to load", m.name)
    return CONTROLLERS


__all__ = ["CONTROLLERS", "discover", "register"]
