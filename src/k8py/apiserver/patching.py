"""PATCH: JSON patch, merge patch, strategic merge patch and server-side
apply, applied to the live object inside a GuaranteedUpdate loop."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..api import apply as ssa
from ..api import patch as patchlib
from ..api import schema as schemalib
from . import errors
from .rest import WriteOptions, now_rfc3339

if TYPE_CHECKING:
    from .handlers import ResourceHandlers, Target


def api_error(e: Exception) -> errors.APIError:
    """A patch or apply library error as the API error it answers with."""
    st = e.status()  # type: ignore[attr-defined]
    st.setdefault("code", getattr(e, "code", 500))
    return errors.from_status(st)


async def patch(h: "ResourceHandlers", request: web.Request, t: "Target") -> tuple[dict[str, Any], int, WriteOptions]:
    r = t.r
    opts = h.write_options(request)
    raw = await request.read()
    if len(raw) > 3 * 1024 * 1024:
        raise errors.too_large()
    try:
        kind, p = patchlib.parse_patch_body(request.headers.get("Content-Type", ""), raw)
    except patchlib.PatchError as e:
        raise api_error(e) from None
    bad = ssa.validate_patch_options(opts.field_manager or None,
                                     opts.force if "force" in request.query else None, kind == "apply")
    if bad is not None:
        raise api_error(bad)
    sch = schemalib.load()
    type_name = sch.type_for_kind(r.group, r.version, r.kind) or ""
    sub = "status" if t.sub == "status" else ""
    if kind == "apply":
        if not isinstance(p, dict):
            raise errors.bad_request("the apply configuration must be an object")
        h.check_object(r, copy.deepcopy(p), t.ns)
        if request.query.get("fieldValidation") == "Strict":
            h.check_fields(request, r, p, opts)
        try:
            return await _apply(h, t, p, opts, sch, type_name, sub)
        except (ssa.ApplyConflict, ssa.ApplyError) as e:
            raise api_error(e) from None

    def mutate(old: dict[str, Any]) -> dict[str, Any]:
        try:
            if kind == "json":
                new = patchlib.json_patch(old, p)
            elif kind == "merge":
                new = patchlib.merge_patch(old, p)
            else:
                new = patchlib.strategic_merge_patch(old, p, sch, type_name)
        except patchlib.PatchError as e:
            raise api_error(e) from None
        if not isinstance(new, dict):
            raise api_error(patchlib.patch_decode_error(new, "not an object"))
        new = h.check_object(r, new, t.ns)
        h.check_fields(request, r, new, opts)
        return new

    out = await h.ostore.guaranteed_update(r, t.ns, t.name, mutate, opts, sub)
    return out, 200, opts


async def _apply(h: "ResourceHandlers", t: "Target", applied: dict[str, Any], opts: WriteOptions, sch: Any,
                 type_name: str, sub: str) -> tuple[dict[str, Any], int, WriteOptions]:
    r = t.r
    now = now_rfc3339()
    try:
        await h.ostore.get_kv(r, t.ns, t.name)
        exists = True
    except errors.APIError as e:
        if e.code != 404:
            raise
        exists = False
    if not exists:
        if sub:
            raise errors.not_found(r.plural, r.group, t.name)
        obj = ssa.server_side_apply(None, applied, opts.field_manager, opts.force, sch, type_name,
                                    r.api_version, now)
        obj = h.check_object(r, obj, t.ns)
        md = obj.setdefault("metadata", {})
        md["name"] = t.name
        managed = md.get("managedFields")

        def keep(o: dict[str, Any]) -> None:
            if managed is not None:
                o["metadata"]["managedFields"] = managed

        try:
            out = await h.ostore.create(r, t.ns, obj, opts, managed=keep)
            return out, 201, opts
        except errors.APIError as e:
            if e.code != 409 or e.reason != "AlreadyExists":
                raise
    holder: dict[str, Any] = {}

    def mutate(old: dict[str, Any]) -> dict[str, Any]:
        new = ssa.server_side_apply(old, applied, opts.field_manager, opts.force, sch, type_name,
                                    r.api_version, now)
        new.setdefault("metadata", {})["resourceVersion"] = old["metadata"].get("resourceVersion")
        holder["managed"] = new["metadata"].get("managedFields")
        return h.check_object(r, new, t.ns)

    def keep(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if holder.get("managed") is not None:
            new["metadata"]["managedFields"] = holder["managed"]

    out = await h.ostore.guaranteed_update(r, t.ns, t.name, mutate, opts, sub, managed=keep)
    return out, 200, opts

