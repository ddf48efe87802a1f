"""Server-side table output (``meta.k8s.io/v1`` Table), as ``kubectl get`` receives it.

kubectl asks for tables with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,
application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json`` on get, list
and watch.  kube-apiserver then converts the object (or list) with the kind's
printer from ``pkg/printers/internalversion`` — always "wide", so priority-1
columns are filled too; kubectl hides them unless ``-o wide`` — and fills each
row's ``object`` according to the ``includeObject`` query parameter:

* ``Metadata`` (the default, also for an empty value): a PartialObjectMetadata
  (``{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": ...}``
  with the object's full metadata); kubectl uses it for ``-A``, ``-L``,
  ``--show-labels``;
* ``Object``: the whole object in the version of the request (kubectl asks
  for it with ``--sort-by``);
* ``None``: ``null``.

Kinds without a printer (Role, ClusterRole, LimitRange, ...) get kube's default
table: ``Name`` and ``Created At`` (a ``date`` column with the RFC 3339 time).

The per-kind columns and printers live in ``tables_core.py`` (core/v1 and
events) and ``tables_groups.py`` (every other group).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from k8py.api.tables_core import PRINTERS as _CORE_PRINTERS
from k8py.api.tables_core import pod_row_conditions
from k8py.api.tables_groups import PRINTERS as _GROUP_PRINTERS
from k8py.api.tables_util import EMPTY, col, parse_time

__all__ = [
    "TableOptionsError", "column_definitions", "row_cells", "row_conditions", "table", "validate_include_object",
    "INCLUDE_OBJECT_VALUES",
]

Printer = Callable[[dict[str, Any], float], list[Any]]

DEFAULT_COLUMNS = [col("Name", "string", "name", fmt="name"), col("Created At", "date", "created")]


def _created_at(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata") or EMPTY
    created = meta.get("creationTimestamp")
    if isinstance(created, str) and len(created) == 20 and created.endswith("Z"):
        stamp = created
    else:
        t = parse_time(created) if isinstance(created, str) and created else float("-inf")
        if t == float("-inf"):
            stamp = "0001-01-01T00:00:00Z"
        else:
            stamp = datetime.fromtimestamp(int(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [meta.get("name", ""), stamp]


_PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {**_CORE_PRINTERS, **_GROUP_PRINTERS}
_DEFAULT = (DEFAULT_COLUMNS, _created_at)


def _entry(resource: Any) -> tuple[list[dict[str, Any]], Printer]:
    return _PRINTERS.get((resource.group, resource.kind), _DEFAULT)


def has_printer(resource: Any) -> bool:
    """True when kube has a dedicated printer for the kind (False: the Name/Created At default)."""
    return (resource.group, resource.kind) in _PRINTERS


def column_definitions(resource: Any) -> list[dict[str, Any]]:
    """The metav1.TableColumnDefinition dicts of the kind, wide-only ones (priority 1) included.

    The dicts are shared: do not mutate them.
    """
    return list(_entry(resource)[0])


def row_cells(resource: Any, obj: dict[str, Any], now: float) -> list[Any]:
    """The cells of one row, in column order, as kube fills them (strings, ints and bools)."""
    return _entry(resource)[1](obj, now)


def row_conditions(resource: Any, obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The row's ``conditions`` (only pods have them: Completed for Succeeded/Failed pods)."""
    if resource.group == "" and resource.kind == "Pod":
        return pod_row_conditions(obj)
    return None


# --------------------------------------------------------------------------- includeObject

INCLUDE_OBJECT_VALUES = ("", "Metadata", "None", "Object")


class TableOptionsError(ValueError):
    """An invalid TableOptions query parameter: answer 400 BadRequest with ``str(err)`` as message."""

    code = 400
    reason = "BadRequest"


def validate_include_object(value: str | None) -> str:
    """Normalize ``includeObject``; raise TableOptionsError with kube's message if it is invalid."""
    if value is None:
        return ""
    if value not in INCLUDE_OBJECT_VALUES:
        raise TableOptionsError(
            f'Unable to convert to Table as requested: includeObject: Invalid value: "{value}": '
            "must be 'Metadata', 'Object', 'None', or empty")
    return value


def _row_object(resource: Any, obj: dict[str, Any], include_object: str, meta_api_version: str) -> Any:
    if include_object == "Object":
        if "kind" in obj and "apiVersion" in obj:
            return obj
        return {"kind": resource.kind, "apiVersion": resource.api_version, **obj}
    if include_object == "None":
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": meta_api_version, "metadata": obj.get("metadata") or {}}


def table(resource: Any, objs: list[dict[str, Any]], now: float, include_object: str | None = "Metadata",
          list_meta: dict[str, Any] | None = None, *, no_headers: bool = False,
          table_version: str = "v1") -> dict[str, Any]:
    """A meta.k8s.io Table of ``objs`` (one object for a GET, the items for a LIST, one per watch event).

    ``include_object`` is the request's ``includeObject`` (None/"" mean Metadata); ``list_meta`` the
    table's metadata (resourceVersion/continue/remainingItemCount of the list, or the object's
    resourceVersion for a GET); ``no_headers`` leaves ``columnDefinitions`` null (kube does so for
    every watch event after the first); ``table_version`` is the negotiated Table version
    (``v1`` or ``v1beta1``; it also sets the PartialObjectMetadata apiVersion).
    """
    include = validate_include_object(include_object) or "Metadata"
    columns, printer = _entry(resource)
    meta_api_version = f"meta.k8s.io/{table_version}"
    is_pod = resource.group == "" and resource.kind == "Pod"
    rows: list[dict[str, Any]] = []
    append = rows.append
    for obj in objs:
        row: dict[str, Any] = {"cells": printer(obj, now)}
        if is_pod:
            conditions = pod_row_conditions(obj)
            if conditions is not None:
                row["conditions"] = conditions
        row["object"] = _row_object(resource, obj, include, meta_api_version)
        append(row)
    if not rows and (resource.group, resource.kind) not in _PRINTERS:
        rows_out: list[dict[str, Any]] | None = None  # the default convertor leaves an empty list's rows nil
    else:
        rows_out = rows
    return {
        "kind": "Table",
        "apiVersion": meta_api_version,
        "metadata": dict(list_meta) if list_meta else {},
        "columnDefinitions": None if no_headers else list(columns),
        "rows": rows_out,
    }
