"""Container runtimes behind one CRI-shaped interface (see interface.py).

`runc.RuncRuntime` runs each container with runc on an overlayfs root inside a
pod's network namespace; a `process` runtime for machines without root comes
later.
"""
