"""The controllers of ``k8py controller-manager``, one module each.

``CONTROLLERS`` maps a controller's name (as kube-controller-manager's
``--controllers`` flag names it) to ``module:Class``.  A controller class
takes a :class:`~k8py.controllers.context.ControllerContext`, registers its
informer handlers in ``__init__`` and reconciles in ``async def run()``."""

CONTROLLERS: dict[str, str] = {
}
