"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``).

kube-apiserver's FieldManager.Apply over structured-merge-diff's
``Updater.Apply``, for k8py's dict objects:

1. the request is checked as kube does (``fieldManager`` required, the
   applied ``apiVersion``/``kind`` must be the endpoint's, no
   ``metadata.managedFields``, the configuration must fit the schema);
2. an existing object nobody tracks first gets a ``before-first-apply``
   manager owning everything it holds;
3. the configuration is merged into the live object (associative lists by
   key, sets by value, granular maps by key, atomic values replaced);
4. fields the manager applied last time but no longer does are removed from
   the object unless another manager owns them;
5. fields whose value the apply changes and that other managers own are
   conflicts, unless ``force`` -- then they move to the applier; equal
   values are shared, not conflicts;
6. the applier's entry (operation ``Apply``) records exactly the fields of
   its configuration.

The result is the new object, not yet defaulted or validated; the caller
runs its usual update (or create) path on it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from k8py.api import fieldset as fs
from k8py.api import gofmt
from k8py.api.managedfields import (
    BEFORE_FIRST_APPLY,
    FIELD_MANAGER_MAX_LENGTH,
    Entry,
    Identity,
    decode_managed,
    default_manager,
    encode_managed,
    identity,
    manager_identity_json,
    print_manager,
    record_update,
    release_fields,
    reset_filter,
    strip_meta,
    update_managed_fields,
    ManagedFieldsError,
)
from k8py.api.status import failure_status

__all__ = [
    "ApplyConflict",
    "ApplyError",
    "server_side_apply",
    "update_managed_fields",
    "default_manager",
    "validate_patch_options",
    "merge",
    "remove_items",
    "validate_config",
]

_REASONS = {400: "BadRequest", 409: "Conflict", 422: "Invalid", 500: ""}


class ApplyError(Exception):
    """A failed apply; ``status()`` is the Status kube answers with."""

    def __init__(self, code: int, message: str, reason: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = _REASONS.get(code, "") if reason is None else reason
        self.details = details

    def status(self) -> dict:
        return failure_status(self.message, self.code, self.reason, self.details)


class ApplyConflict(Exception):
    """Fields of the apply that other managers own with different values (HTTP 409)."""

    def __init__(self, conflicts: list[tuple[Identity, tuple[str, ...]]]) -> None:
        # kube orders the message by manager identifier; causes follow the same order here
        ordered = sorted(conflicts, key=lambda c: manager_identity_json(c[0]))
        self._full = [(ident, fs.path_string(path)) for ident, path in ordered]
        self.conflicts: list[tuple[str, str]] = [(ident[0], p) for ident, p in self._full]
        super().__init__(self.message())

    def message(self) -> str:
        full = self._full
        if len(full) == 1:
            ident, path = full[0]
            return f"Apply failed with 1 conflict: conflict with {print_manager(ident)}: {path}"
        groups: dict[Identity, list[str]] = {}
        for ident, path in full:
            groups.setdefault(ident, []).append(path)
        lines: list[str] = []
        for ident in sorted(groups, key=manager_identity_json):
            lines.append(f"conflicts with {print_manager(ident)}:")
            lines.extend(f"- {p}" for p in groups[ident])
        return f"Apply failed with {len(full)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {print_manager(ident)}", "field": path}
                for ident, path in self._full]

    @property
    def code(self) -> int:
        return 409

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message(), "reason": "Conflict", "details": {"causes": self.causes()},
                "code": 409}


# ---------------------------------------------------------------------------
# Request checks
# ---------------------------------------------------------------------------


def _invalid_options(kind: str, errors: list[tuple[str, str, str]]) -> ApplyError:
    """errors.NewInvalid(meta.k8s.io/<kind>, "", errs); errs are (type, field, detail)."""
    msgs = [f"{fld}: {detail}" for _, fld, detail in errors]
    agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    causes = [{"reason": t, "message": detail, "field": fld} for t, fld, detail in errors]
    return ApplyError(422, f'{kind}.meta.k8s.io "" is invalid: {agg}', "Invalid",
                      {"group": "meta.k8s.io", "kind": kind, "causes": causes})


def validate_patch_options(field_manager: str | None, force: bool | None, is_apply: bool,
                           options_kind: str = "PatchOptions") -> ApplyError | None:
    """kube's ValidatePatchOptions (and the fieldManager part of Create/UpdateOptions).

    Returns the 422 to answer with, or None.  ``force`` is the parsed query
    parameter (None when absent).  Apply needs a ``fieldManager``; other
    patches may not set ``force``.  For creates and updates pass
    ``is_apply=False, force=None, options_kind="CreateOptions"`` (or
    ``"UpdateOptions"``) to check only the fieldManager's length and characters.
    """
    errs: list[tuple[str, str, str]] = []
    fm = field_manager or ""
    if is_apply:
        if not fm:
            errs.append(("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
    elif force is not None:
        errs.append(("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"))
    if len(fm) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(("FieldValueTooLong", "fieldManager",
                     f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"))
    for i, ch in enumerate(fm):
        if not ch.isprintable():
            errs.append(("FieldValueInvalid", "fieldManager",
                         f'Invalid value: "{fm}": invalid character U+{ord(ch):04X} (at position {i})'))
    return _invalid_options(options_kind, errs) if errs else None


def _parse_gv(api_version: Any) -> tuple[str, str]:
    if not isinstance(api_version, str) or api_version in ("", "/"):
        return "", ""
    n = api_version.count("/")
    if n == 0:
        return "", api_version
    if n == 1:
        g, v = api_version.split("/")
        return g, v
    return "", ""


def _gvk_string(api_version: Any, kind: Any) -> str:
    g, v = _parse_gv(api_version)
    return f"{g}/{v}, Kind={kind if isinstance(kind, str) else ''}"


# ---------------------------------------------------------------------------
# Validation of the applied configuration (SMD's typed conversion)
# ---------------------------------------------------------------------------


def _gotype(v: Any) -> str:
    return gofmt.type_name(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar_error(td: fs.TD, v: Any) -> str | None:
    if v is None:
        return None
    s = td.scalar
    if s == fs.S_NUMERIC:
        if not _is_num(v):
            return f"expected numeric (int or float), got {_gotype(v)}"
    elif s == fs.S_STRING:
        if not isinstance(v, str):
            return f"expected string, got &value.valueUnstructured{{Value:{gofmt.sharp(v, floats='json')}}}"
    elif s == fs.S_BOOL:
        if not isinstance(v, bool):
            return f"expected boolean, got &{{{gofmt.value(v, floats='json')}}}"
    else:
        if isinstance(v, (dict, list)):
            return f"expected any scalar, got &{{{gofmt.value(v, floats='json')}}}"
    return None


def _item_error(td: fs.TD, item: Any) -> str:
    if td.kind == fs.LSET:
        if isinstance(item, dict):
            return "associative list without keys has an element that's a map type"
        if isinstance(item, list):
            return "not supported: associative list with lists as elements"
        return "associative list without keys has an element that's an explicit null"
    if item is None:
        return "associative list with keys may not have a null element"
    if not isinstance(item, dict):
        return "associative list with keys may not have non-map elements"
    keys = "[" + " ".join(gofmt.quote(k) for k in td.keys) + "]"
    return (f"associative list with keys has an element that omits all key fields {keys} "
            f"(and doesn't have default values for any key fields)")


def _validate(v: Any, td: fs.TD, path: str, errs: list[tuple[str, str]]) -> None:
    kind = td.kind
    if kind == fs.SCALAR:
        msg = _scalar_error(td, v)
        if msg:
            errs.append((path, msg))
        return
    if kind == fs.ATOMIC or v is None:
        return
    if kind == fs.DEDUCED:
        if isinstance(v, dict):
            for k, x in v.items():
                _validate(x, fs._DEDUCED, path + "." + k, errs)
        return
    if kind == fs.STRUCT or kind == fs.MAP:
        if not isinstance(v, dict):
            errs.append((path, f"expected map, got &{{{gofmt.value(v, floats='json')}}}"))
            return
        for k, x in v.items():
            ctd, _ = td.child(k)
            if ctd is fs._UNKNOWN:
                errs.append((path + "." + k, "field not declared in schema"))
                return
            _validate(x, ctd, path + "." + k, errs)
        return
    # associative lists
    if not isinstance(v, list):
        errs.append((path, f"expected list, got &{{{gofmt.value(v, floats='json')}}}"))
        return
    seen: set[str] = set()
    item_td = td.item or fs._ATOMIC
    for i, item in enumerate(v):
        pe = fs.item_key(td, item)
        if pe is None:
            errs.append((path, f"element {i}: {_item_error(td, item)}"))
            return
        if pe in seen:
            errs.append((path, f"duplicate entries for key {fs.pe_string(pe)}"))
        seen.add(pe)
        if td.kind == fs.LMAP:
            _validate(item, item_td, path + fs.pe_string(pe), errs)


def validate_config(config: Any, td: fs.TD) -> list[tuple[str, str]]:
    """(path, message) for every way ``config`` does not fit the schema."""
    errs: list[tuple[str, str]] = []
    _validate(config, td, "", errs)
    return errs


# ---------------------------------------------------------------------------
# Merge and removal (SMD's Merge with ruleKeepRHS, and RemoveItems)
# ---------------------------------------------------------------------------


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _copy_rhs(v: Any, td: fs.TD) -> Any:
    """A copy of an applied value, with null map entries dropped (as the typed round trip does)."""
    kind = td.kind
    if isinstance(v, dict) and (kind == fs.STRUCT or kind == fs.MAP or kind == fs.DEDUCED):
        out = {}
        child = td.child
        for k, x in v.items():
            if x is None:
                continue
            out[k] = _copy_rhs(x, child(k)[0])
        return out
    if isinstance(v, list) and kind == fs.LMAP:
        item_td = td.item or fs._ATOMIC
        return [_copy_rhs(x, item_td) for x in v]
    return _copy(v)


def _merge(l: Any, r: Any, td: fs.TD) -> Any:
    if r is fs.MISSING:
        return _copy(l)
    if l is fs.MISSING or l is None:
        return _copy_rhs(r, td)
    kind = td.kind
    if kind == fs.STRUCT or kind == fs.MAP or kind == fs.DEDUCED:
        if isinstance(l, dict) and isinstance(r, dict) and (l or r):
            out: dict = {}
            child = td.child
            for k, lv in l.items():
                rv = r.get(k, fs.MISSING)
                if rv is fs.MISSING:
                    out[k] = _copy(lv)
                    continue
                ctd = child(k)[0]
                if rv is None:
                    # null keeps a non-empty struct/map/list (SMD walks the left side), else clears
                    if (isinstance(lv, dict) and lv and fs.STRUCT <= ctd.kind <= fs.DEDUCED) or \
                            (isinstance(lv, list) and lv and ctd.kind >= fs.LMAP):
                        out[k] = _copy(lv)
                    continue
                v = _merge(lv, rv, ctd)
                if v is not None:
                    out[k] = v
            for k, rv in r.items():
                if k not in l and rv is not None:
                    out[k] = _copy_rhs(rv, child(k)[0])
            return out
        return _copy_rhs(r, td)
    if kind == fs.LMAP or kind == fs.LSET:
        if isinstance(l, list) and isinstance(r, list) and (l or r):
            return _merge_list(l, r, td)
    return _copy_rhs(r, td)


_DUP = object()


def _merge_list(lhs: list, rhs: list, td: fs.TD) -> list:
    """SMD mergingWalker.visitListItems: the order of the result follows it exactly."""
    item_td = td.item or fs._ATOMIC
    r_pes: list[str] = []
    r_obs: dict[str, Any] = {}
    for item in rhs:
        pe = fs.item_key(td, item)
        if pe is None or pe in r_obs:
            continue  # rejected by validation already
        r_obs[pe] = item
        r_pes.append(pe)
    l_pes: list[str] = []
    l_items: list[Any] = []
    l_obs: dict[str, Any] = {}
    for item in lhs:
        pe = fs.item_key(td, item)
        if pe is None:
            continue
        l_obs[pe] = _DUP if pe in l_obs else item
        l_pes.append(pe)
        l_items.append(item)
    shared = [pe for pe in r_pes if pe in l_obs]
    si = 0
    next_shared = shared[0] if shared else None
    if shared:
        si = 1
    merged_rhs: set[str] = set()
    out: list = []

    def item(lc: Any, rc: Any) -> None:
        if lc is _DUP:
            lc = None
        v = _merge(lc, rc, item_td)
        if v is not None:
            out.append(v)

    li = ri = 0
    ln, rn = len(l_pes), len(r_pes)
    while li < ln or ri < rn:
        if li < ln and ri < rn:
            pe = l_pes[li]
            if pe == r_pes[ri]:
                merged_rhs.add(pe)
                item(l_obs[pe], r_obs[pe])
                li += 1
                ri += 1
                if si < len(shared):
                    next_shared = shared[si]
                    si += 1
                else:
                    next_shared = None
                continue
            if pe in r_obs and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < ln:
            pe = l_pes[li]
            if pe not in r_obs:
                item(l_items[li], fs.MISSING)
                li += 1
                continue
            elif pe in merged_rhs:
                li += 1
        if ri < rn:
            pe = r_pes[ri]
            merged_rhs.add(pe)
            item(l_obs.get(pe, fs.MISSING), r_obs[pe])
            ri += 1
            if next_shared is not None and next_shared == pe:
                if si < len(shared):
                    next_shared = shared[si]
                    si += 1
                else:
                    next_shared = None
    return out


def merge(live: Any, config: Any, td: fs.TD) -> Any:
    """The live object with the configuration merged in (a new object; inputs untouched)."""
    return _merge(live if live is not None else fs.MISSING, config, td)


def _remove(v: Any, s: dict, td: fs.TD) -> Any:
    kind = td.kind
    if isinstance(v, dict) and (kind == fs.STRUCT or kind == fs.MAP or kind == fs.DEDUCED):
        if not v:
            return v
        out: dict = {}
        for k, x in v.items():
            node = s.get("f:" + k)
            if node is None:
                out[k] = x
                continue
            if fs._member(node):
                continue
            nx = _remove(x, node, td.child(k)[0])
            if nx is not fs.MISSING:
                out[k] = nx
        return out if out else fs.MISSING
    if isinstance(v, list) and (kind == fs.LMAP or kind == fs.LSET):
        if not v:
            return v
        lout: list = []
        item_td = td.item or fs._ATOMIC
        for it in v:
            pe = fs.item_key(td, it)
            node = s.get(pe) if pe is not None else None
            if node is None:
                lout.append(it)
                continue
            if fs._member(node):
                continue
            ni = _remove(it, node, item_td)
            if ni is not fs.MISSING:
                lout.append(ni)
        return lout if lout else fs.MISSING
    return v


def remove_items(obj: dict, s: dict, td: fs.TD) -> dict:
    """SMD RemoveItems: ``obj`` without the members of ``s`` (whole subtrees); emptied maps/lists go too."""
    if not s:
        return obj
    out = _remove(obj, s, td)
    return out if isinstance(out, dict) else {}


# ---------------------------------------------------------------------------
# Apply
# ---------------------------------------------------------------------------

# Set by the server, whatever the configuration says (kube's strategies and
# BeforeUpdate reset these); uid and resourceVersion stay, as preconditions.
_SERVER_META = ("creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink")


def _without_managed_fields(obj: dict) -> dict:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


def _describe(config: dict, gvk: str) -> str:
    meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    return f"{ns}/{name}; {gvk}"


def _errors_text(errs: list[tuple[str, str]]) -> str:
    def one(p: str, m: str) -> str:
        return f"{p}: {m}" if p else m

    if len(errs) == 1:
        return one(*errs[0])
    return "errors:\n" + "\n".join("  " + one(p, m) for p, m in errs)


def server_side_apply(live: dict | None, applied: dict, manager: str, force: bool, schema: Any, type_name: str | None,
                      api_version: str, now: str, *, kind: str | None = None, subresource: str = "",
                      reset_fields: Iterable[Sequence[str]] | None = None) -> dict:
    """Apply ``applied`` (the request body) as ``manager``; returns the new object.

    ``live`` is the stored object, None when the apply creates it.
    ``api_version`` is the endpoint's group/version and ``kind`` its kind
    (defaults: the live object's kind, else the last segment of
    ``type_name``).  ``now`` is the RFC 3339 time stamp for managedFields.
    Raises :class:`ApplyError` (bad requests) or :class:`ApplyConflict`.
    """
    bad = validate_patch_options(manager, None, True)
    if bad is not None:
        raise bad
    if not isinstance(applied, dict):
        raise ApplyError(400, "error decoding patch: the apply configuration must be an object")
    if kind is None:
        kind = live.get("kind") if isinstance(live, dict) and live.get("kind") else None
        if kind is None and type_name:
            kind = type_name.rsplit(".", 1)[-1]
    a_av, a_kind = applied.get("apiVersion"), applied.get("kind")
    if _parse_gv(a_av) != _parse_gv(api_version) or (kind is not None and a_kind != kind):
        raise ApplyError(400, f"invalid object type: {_gvk_string(a_av, a_kind)}")
    a_meta = applied.get("metadata")
    if isinstance(a_meta, dict) and isinstance(a_meta.get("managedFields"), list):
        raise ApplyError(400, "metadata.managedFields must be nil")

    td = fs.root_td(schema, type_name)
    errs = validate_config(applied, td)
    if errs:
        raise ApplyError(500, f"failed to create typed patch object ({_describe(applied, _gvk_string(a_av, a_kind))}): "
                              f"{_errors_text(errs)}")

    filt = reset_filter(subresource, reset_fields)
    live_meta = live.get("metadata") if isinstance(live, dict) else None
    try:
        managed = decode_managed(live_meta.get("managedFields") if isinstance(live_meta, dict) else None, trusted=True)
    except ManagedFieldsError:
        managed = {}
    base: dict = _without_managed_fields(live) if isinstance(live, dict) else {}

    # skipNonApplied: the first apply to an untracked object hands what it holds to before-first-apply
    if not managed and isinstance(live_meta, dict) and live_meta.get("uid"):
        record_update(managed, None, base, td, identity(BEFORE_FIRST_APPLY, "Update", api_version, subresource),
                      api_version, now, filt)

    me = identity(manager, "Apply", api_version, subresource)
    last = managed.get(me)
    merged = merge(base if live is not None else None, applied, td)
    if not isinstance(merged, dict):
        merged = {}

    mine = fs.to_fieldset(applied, td)
    if filt is not None:
        mine = filt(mine)
    managed[me] = Entry(mine, api_version, True, last.time if last is not None else None)

    # prune what this manager applied last time, no longer applies, and nobody else owns
    if last is not None and last.fields:
        owned: dict = {}
        for ent in managed.values():
            owned = fs.union(owned, ent.fields)
        gone = fs.difference(fs.ensure_named(last.fields, td), fs.ensure_named(owned, td))
        if gone:
            merged = remove_items(merged, gone, td)

    # conflicts, and ownership that moves
    added, modified, removed = fs.compare(base if live is not None else None, merged, td,
                                          filt.skip_root if filt is not None else ())
    if filt is not None:
        added, modified, removed = filt(added), filt(modified), filt(removed)
    changed = fs.union(modified, added)
    conflicts: list[tuple[Identity, tuple[str, ...]]] = []
    for key, ent in managed.items():
        if key == me:
            continue
        clash = fs.intersection(ent.fields, changed) if changed else {}
        if clash:
            conflicts.extend((key, p) for p in fs.iter_paths(clash))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    release_fields(managed, changed, removed, keep=me)

    object_changed = live is None or merged != base
    ent = managed[me]
    stripped = strip_meta(ent.fields)
    if stripped:
        managed[me] = Entry(stripped, api_version, True, now if object_changed else ent.time)
    else:
        del managed[me]

    # server-set metadata keeps the live values
    meta = merged.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        merged["metadata"] = meta
    for k in _SERVER_META:
        if isinstance(live_meta, dict) and k in live_meta:
            meta[k] = _copy(live_meta[k])
        else:
            meta.pop(k, None)
    entries = encode_managed(managed)
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
    return merged
