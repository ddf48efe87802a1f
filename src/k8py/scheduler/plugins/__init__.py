"""One module per scheduler plugin; each registers itself with
:func:`k8py.scheduler.framework.register`."""
