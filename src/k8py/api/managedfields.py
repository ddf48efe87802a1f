"""``metadata.managedFields``: who owns which fields of an object.

This is kube-apiserver's field manager (k8s.io/apimachinery
``pkg/util/managedfields``) for k8py's dict objects:

* decoding / encoding the ``managedFields`` entries (manager identity, sort
  order, ``fieldsV1`` via :mod:`k8py.api.fieldset`);
* :func:`update_managed_fields` -- what every create / update / non-apply
  patch does: the fields the request changed move to its manager (operation
  ``Update``), other managers lose them;
* :func:`default_manager` -- the manager name when the request has no
  ``fieldManager``;
* the pieces :mod:`k8py.api.apply` builds server-side apply from.

The chain of kube's managers is reproduced in order: ``decodeLiveOrNew``
(managedFields sent in the request replace the live ones, ``[]`` resets
them), ``skipNonApplied`` (an existing object without managedFields stays
untracked until someone applies), ``capManagers`` (at most 10 Update
entries, older ones merged into ``ancient-changes``),
``managedFieldsUpdater`` (time stamps; an entry's time moves only when the
manager changed something) and ``stripMeta`` (apiVersion, kind, and
server-set metadata are never owned).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from k8py.api import fieldset as fs
from k8py.api import gofmt

__all__ = [
    "Entry",
    "Managed",
    "ManagedFieldsError",
    "decode_managed",
    "encode_managed",
    "update_managed_fields",
    "default_manager",
    "manager_identity_json",
    "print_manager",
    "reset_filter",
    "record_update",
    "release_fields",
    "strip_meta",
    "FIELD_MANAGER_MAX_LENGTH",
]

FIELD_MANAGER_MAX_LENGTH = 128
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"

# (manager, operation, apiVersion -- "" for Apply --, subresource)
Identity = tuple[str, str, str, str]


class ManagedFieldsError(ValueError):
    """managedFields that cannot be decoded."""


class Entry:
    """One manager's fields: kube's VersionedSet plus its time stamp."""

    __slots__ = ("fields", "api_version", "applied", "time")

    def __init__(self, fields: dict, api_version: str, applied: bool, time: str | None) -> None:
        self.fields = fields
        self.api_version = api_version
        self.applied = applied
        self.time = time

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Entry({self.fields!r}, {self.api_version!r}, applied={self.applied}, time={self.time!r})"


Managed = dict  # dict[Identity, Entry]

# ---------------------------------------------------------------------------
# Manager identity
# ---------------------------------------------------------------------------


def identity(manager: str, operation: str, api_version: str, subresource: str = "") -> Identity:
    return (manager, operation, "" if operation == "Apply" else api_version, subresource)


def manager_identity_json(ident: Identity) -> str:
    """kube's BuildManagerIdentifier: the entry minus fields/time (and apiVersion for Apply)."""
    parts = []
    if ident[0]:
        parts.append('"manager":' + fs.go_json(ident[0]))
    if ident[1]:
        parts.append('"operation":' + fs.go_json(ident[1]))
    if ident[2]:
        parts.append('"apiVersion":' + fs.go_json(ident[2]))
    if ident[3]:
        parts.append('"subresource":' + fs.go_json(ident[3]))
    return "{" + ",".join(parts) + "}"


def print_manager(ident: Identity) -> str:
    """How conflicts name a manager: ``"kubectl-edit" using apps/v1``, ``"x" with subresource "status"``."""
    out = gofmt.quote(ident[0])
    if ident[3]:
        out += f" with subresource {gofmt.quote(ident[3])}"
    if ident[1] == "Update":
        out += f" using {ident[2]}"
    return out


# ---------------------------------------------------------------------------
# Decoding / encoding
# ---------------------------------------------------------------------------


def _is_zero_entry(e: Any) -> bool:
    return isinstance(e, dict) and all(v is None or v == "" for v in e.values())


def decode_managed(entries: Any, trusted: bool = False) -> Managed:
    """Entries -> {identity: Entry}; raises ManagedFieldsError like DecodeManagedFields.

    ``trusted`` skips canonicalising fieldsV1 (for what k8py stored itself).
    """
    managed: Managed = {}
    if entries is None:
        return managed
    if not isinstance(entries, list):
        raise ManagedFieldsError("managedFields must be a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ManagedFieldsError(f"managed fields entry {i} is not an object")
        op = e.get("operation")
        if op not in ("Apply", "Update"):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        av = e.get("apiVersion")
        if not av or not isinstance(av, str):
            raise ManagedFieldsError("apiVersion must not be empty")
        ft = e.get("fieldsType")
        if not ft:
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {i}")
        if ft != "FieldsV1":
            raise ManagedFieldsError(f"invalid fieldsType {ft!r} in managed fields entry {i}")
        raw = e.get("fieldsV1")
        if trusted and isinstance(raw, dict):
            fields = raw
        else:
            try:
                fields = fs.decode_fields(raw)
            except fs.FieldSetError as err:
                raise ManagedFieldsError(f"error decoding set: {err}") from None
        mgr = e.get("manager") or ""
        sub = e.get("subresource") or ""
        t = e.get("time")
        managed[identity(str(mgr), op, av, str(sub))] = Entry(fields, av, op == "Apply", t if t else None)
    return managed


_TIME_CACHE: dict[str, int] = {}


def _seconds(t: str | None) -> int:
    if not t:
        return 0
    got = _TIME_CACHE.get(t)
    if got is None:
        try:
            got = int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp())
        except (ValueError, TypeError, AttributeError):
            got = 0
        if len(_TIME_CACHE) > 10_000:
            _TIME_CACHE.clear()
        _TIME_CACHE[t] = got
    return got


def encode_managed(managed: Managed) -> list[dict]:
    """{identity: Entry} -> managedFields entries, in kube's order."""
    out: list[tuple[tuple, dict]] = []
    for ident, ent in managed.items():
        e: dict[str, Any] = {}
        if ident[0]:
            e["manager"] = ident[0]
        op = "Apply" if ent.applied else ident[1]
        e["operation"] = op
        e["apiVersion"] = ent.api_version
        if ent.time:
            e["time"] = ent.time
        e["fieldsType"] = "FieldsV1"
        e["fieldsV1"] = ent.fields
        if ident[3]:
            e["subresource"] = ident[3]
        out.append(((op, _seconds(ent.time), ident[0], ent.api_version, ident[3]), e))
    if len(out) > 1:
        out.sort(key=lambda x: x[0])
    return [e for _, e in out]


# ---------------------------------------------------------------------------
# Filters: fields a request may not own (kube's "reset fields")
# ---------------------------------------------------------------------------

class Filter:
    """Which fields a request may own (kube's strategy "reset fields" as an SMD filter).

    ``skip_root`` names top-level fields the filter drops entirely, so
    comparisons need not walk them.
    """

    __slots__ = ("exclude", "include", "skip_root")

    def __init__(self, exclude: dict | None = None, include: dict | None = None) -> None:
        self.exclude = exclude
        self.include = include
        self.skip_root = frozenset(k[2:] for k, v in (exclude or {}).items() if fs._member(v))

    def __call__(self, s: dict) -> dict:
        if not s:
            return s
        if self.exclude is not None:
            s = fs.recursive_difference(s, self.exclude)
        if self.include is not None:
            s = _include(s, self.include)
        return s


_STATUS = fs.make_set(("f:status",))
_SPEC = fs.make_set(("f:spec",))
_MAIN = Filter(exclude=_STATUS)
_STATUS_SUB = Filter(exclude=_SPEC)
_SCALE_SUB = Filter(include={"f:spec": {"f:replicas": {}}})


def _include(s: dict, pattern: dict) -> dict:
    """SMD FilterIncludeMatches with a prefix pattern ({pe: sub-pattern}, {} = everything below)."""
    out: dict = {}
    for k, v in s.items():
        if k == ".":
            continue
        p = pattern.get(k)
        if p is None:
            continue
        if not p:
            out[k] = v
            continue
        inner = _include(v, p)
        if inner:
            n = fs._mk(fs._member(v), inner)
            if n is not None:
                out[k] = n
        elif fs._member(v):
            out[k] = {}
    return out


def reset_filter(subresource: str = "", reset_fields: Iterable[Sequence[str]] | None = None) -> Filter | None:
    """The filter kube's strategy reset fields amount to.

    ``reset_fields`` (paths of field names) overrides the defaults: the main
    resource cannot own ``status``; ``/status`` cannot own ``spec``;
    ``/scale`` owns only ``spec.replicas`` (as kube's scale handler maps it).
    Pass ``reset_fields=()`` for kinds whose status is written through the
    main resource (custom resources without a status subresource).
    """
    if reset_fields is not None:
        paths = [tuple("f:" + p for p in path) for path in reset_fields if path]
        if not paths:
            return None
        return Filter(exclude=fs.make_set(*paths))
    if subresource == "":
        return _MAIN
    if subresource == "status":
        return _STATUS_SUB
    if subresource == "scale":
        return _SCALE_SUB
    return None


# stripMeta: never owned by anyone (members only, as SMD's Set.Difference)
_STRIP_ROOT = ("f:apiVersion", "f:kind")
_STRIP_META = frozenset({"f:name", "f:namespace", "f:creationTimestamp", "f:selfLink", "f:uid", "f:clusterName",
                         "f:generation", "f:managedFields", "f:resourceVersion"})


def _unmember(node: dict) -> dict | None:
    """A node without its own membership (None when nothing remains)."""
    if not node or (len(node) == 1 and "." in node):
        return None
    return fs._children(node)


def strip_meta(s: dict) -> dict:
    if "f:apiVersion" not in s and "f:kind" not in s and "f:metadata" not in s:
        return s
    out: dict = {}
    for k, v in s.items():
        if k in _STRIP_ROOT:
            v = _unmember(v)
        elif k == "f:metadata":
            md: dict = {}
            for mk, mv in v.items():
                if mk == ".":
                    continue
                if mk in _STRIP_META:
                    mv = _unmember(mv)
                    if mv is None:
                        continue
                md[mk] = mv
            v = md or None
        if v is not None:
            out[k] = v
    return out


# ---------------------------------------------------------------------------
# The Update operation
# ---------------------------------------------------------------------------


def release_fields(managed: Managed, changed: dict, removed: dict, keep: Identity | None = None) -> None:
    """Take ``changed`` and ``removed`` out of every manager's set but ``keep``'s, in place; drop emptied entries."""
    for key in list(managed):
        if key == keep:
            continue
        ent = managed[key]
        s = ent.fields
        if changed:
            s = fs.difference(s, changed)
        if removed:
            s = fs.difference(s, removed)
        if s is not ent.fields:
            if s:
                managed[key] = Entry(s, ent.api_version, ent.applied, ent.time)
            else:
                del managed[key]


def record_update(managed: Managed, old: dict | None, new: dict, td: fs.TD, ident: Identity,
                  api_version: str, now: str, filt: Filter | None) -> None:
    """SMD Updater.Update through kube's managedFieldsUpdater and stripMeta, in place."""
    added, modified, removed = fs.compare(old, new, td, filt.skip_root if filt is not None else ())
    if filt is not None:
        added, modified, removed = filt(added), filt(modified), filt(removed)
    changed = fs.union(modified, added)
    if managed and (changed or removed):
        release_fields(managed, changed, removed)
    mine = strip_meta(changed)
    if not mine:
        return
    prev = managed.get(ident)
    if prev is not None:
        mine = fs.union(mine, prev.fields)
    managed[ident] = Entry(mine, api_version, False, now)


def cap_managers(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> None:
    """kube's capManagersManager: fold the oldest Update entries into ``ancient-changes``."""
    updaters = [k for k, e in managed.items() if not e.applied]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda k: (_seconds(managed[k].time), manager_identity_json(k)))
    first_by_version: dict[str, Identity] = {}
    length = len(updaters)
    for key in updaters:
        if length <= limit:
            break
        ent = managed[key]
        version = ent.api_version
        bucket = identity(ANCIENT_CHANGES, "Update", version, "")
        first = first_by_version.get(version)
        if first is None:
            first_by_version[version] = key
            continue
        if bucket not in managed:
            managed[bucket] = managed.pop(first)
        b = managed[bucket]
        managed[bucket] = Entry(fs.union(ent.fields, b.fields), version, ent.applied, ent.time)
        if key != bucket:
            del managed[key]
        length -= 1


def _meta(obj: Any) -> dict | None:
    if isinstance(obj, dict):
        m = obj.get("metadata")
        if isinstance(m, dict):
            return m
    return None


def _decode_or_empty(entries: Any, trusted: bool) -> Managed:
    try:
        return decode_managed(entries, trusted=trusted)
    except ManagedFieldsError:
        return {}


def update_managed_fields(old: dict | None, new: dict, manager: str, operation: str, api_version: str,
                          now: str, schema: Any, type_name: str | None, subresource: str = "", *,
                          reset_fields: Iterable[Sequence[str]] | None = None) -> None:
    """Record in ``new["metadata"]["managedFields"]`` what this create/update/patch changed.

    ``old`` is the stored object (None for a create), ``new`` the object about
    to be stored, after the request's decoding and defaulting and before the
    strategy resets fields.  The fields that differ move to ``manager``
    (operation ``Update``, ``subresource`` when written through one) and
    leave every other manager; emptied entries disappear.  ``operation`` is
    accepted for symmetry; everything but apply records ``Update``.
    """
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        new["metadata"] = meta
    requested = meta.pop("managedFields", fs.MISSING)
    old_meta = _meta(old)
    old_entries = old_meta.get("managedFields") if old_meta is not None else None

    # decodeLiveOrNew
    managed: Managed | None = None
    if subresource:
        managed = _decode_or_empty(old_entries, True)
    elif isinstance(requested, list) and (not requested or (len(requested) == 1 and _is_zero_entry(requested[0]))):
        managed = {}
    else:
        if requested is not fs.MISSING and requested is not None:
            if requested is old_entries or requested == old_entries:  # echoed back unchanged
                managed = _decode_or_empty(old_entries, True)
            else:
                managed = _decode_or_empty(requested, False) or None
        if managed is None:
            managed = _decode_or_empty(old_entries, True)

    # skipNonApplied: an existing object nobody tracks stays untracked
    if not managed and old_meta is not None and old_meta.get("uid"):
        return

    td = fs.root_td(schema, type_name)
    ident = identity(manager or "unknown", "Update", api_version, subresource)
    record_update(managed, old, new, td, ident, api_version, now, reset_filter(subresource, reset_fields))
    cap_managers(managed)
    entries = encode_managed(managed)
    if entries:
        meta["managedFields"] = entries


_DEFAULT_MANAGERS: dict[str, str] = {}


def default_manager(user_agent: str, operation: str = "") -> str:
    """kube's managerOrUserAgent without a fieldManager: the User-Agent up to its first "/".

    Non-printable characters are dropped and the result is cut at 128 bytes;
    an empty result becomes ``unknown`` (as kube's buildManagerInfo does).
    ``kubectl/v1.30.0 (linux/amd64) kubernetes/abc`` -> ``kubectl``;
    ``kubectl-client-side-apply/v1.30.0 ...`` -> ``kubectl-client-side-apply``;
    ``OpenAPI-Generator/29.0.0/python`` -> ``OpenAPI-Generator``.
    """
    got = _DEFAULT_MANAGERS.get(user_agent)
    if got is None:  # clients send the same few User-Agents over and over
        if len(_DEFAULT_MANAGERS) > 1000:
            _DEFAULT_MANAGERS.clear()
        got = _DEFAULT_MANAGERS[user_agent] = _manager_from_user_agent(user_agent)
    return got


def _manager_from_user_agent(user_agent: str) -> str:
    prefix = (user_agent or "").split("/", 1)[0]
    out: list[str] = []
    size = 0
    for ch in prefix:
        if not ch.isprintable():
            continue
        n = len(ch.encode("utf-8"))
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out) or "unknown"
