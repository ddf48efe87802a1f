"""The field record of the fake schemas in the API tests (the duck-typed ``FieldInfo`` of ``k8py.api.schema``).

tests/api is not a package: pytest puts this folder on ``sys.path``, so test
modules import it as ``fakeschema``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FI:
    name: str
    type: str
    ref: str | None = None
    items_type: str | None = None
    patch_strategy: str = ""
    patch_merge_key: str = ""
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    map_type: str = ""
    required: bool = False
