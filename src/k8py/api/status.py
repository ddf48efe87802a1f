"""The ``metav1.Status`` bodies the API library's errors answer with."""

from __future__ import annotations

from typing import Any


def failure_status(message: str, code: int, reason: str = "", details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Failure`` Status; ``reason`` is left out when empty, ``details`` when None."""
    st: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        st["reason"] = reason
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st
