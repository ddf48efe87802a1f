"""Field sets, as structured-merge-diff (SMD) and ``managedFields`` know them.

A *field set* is a tree of path elements.  k8py keeps it in exactly the
shape Kubernetes serialises it as ``fieldsV1`` (so decoding and encoding are
nearly free): a dict whose keys are serialised path elements --

* ``f:<name>``        a field of a struct or an entry of a map,
* ``k:{"name":"x"}``  an item of an associative list (``listType=map``),
  identified by its key fields (compact JSON, keys sorted),
* ``v:"value"``       an item of a set (``listType=set``),
* ``i:3``             a list index (only in hand-written sets; SMD never
  produces it for apply)

-- and whose values are *nodes*.  A node ``{}`` means the path is a member
(a leaf the manager owns); a node with children owns those children, and
additionally the path itself when it holds the key ``"."``.  A node is never
empty unless it is a member.  The top level dict of a set is a plain content
dict (the root path is never a member).

Operations never mutate their inputs; results may share unchanged subtrees
with them.  Every dict produced here has its keys in SMD's order (``.``
first, then path elements ordered field names < keys < values < indexes),
so encoding a set is just handing the dict out.

This module also turns the duck-typed :mod:`k8py.api.schema` into type
descriptors (:class:`TD`) and implements the schema-aware walks SMD does
over objects: ``ToFieldSet`` (:func:`to_fieldset`), ``Compare``
(:func:`compare`) and ``EnsureNamedFieldsAreMembers``
(:func:`ensure_named`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import orjson

from k8py.api import gofmt

__all__ = [
    "TD",
    "FieldSetError",
    "root_td",
    "to_fieldset",
    "compare",
    "created_set",
    "ensure_named",
    "union",
    "difference",
    "recursive_difference",
    "intersection",
    "is_empty",
    "iter_paths",
    "path_string",
    "make_set",
    "decode_fields",
    "sort_content",
    "item_key",
    "go_json",
    "MISSING",
]


class FieldSetError(ValueError):
    """A malformed ``fieldsV1`` document."""


MISSING: Any = object()

# ---------------------------------------------------------------------------
# JSON as Go's encoding/json (and json-iterator) writes it
# ---------------------------------------------------------------------------

_UNSAFE = re.compile(r'[\x00-\x1f"\\<>&\u2028\u2029]')


def _jstr(s: str) -> str:
    if _UNSAFE.search(s) is None:
        return '"' + s + '"'
    out = json.dumps(s, ensure_ascii=False)
    return (
        out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def go_json(v: Any) -> str:
    """Compact JSON with sorted object keys, HTML-escaped, as Go writes it."""
    if isinstance(v, str):
        return _jstr(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return gofmt.float_str(v, "json")
    if isinstance(v, dict):
        return "{" + ",".join(_jstr(k) + ":" + go_json(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    return _jstr(str(v))


# ---------------------------------------------------------------------------
# Path elements
# ---------------------------------------------------------------------------


def _vkey(v: Any) -> tuple:
    """SMD's total order over values: numbers < strings < bools < lists < maps < null."""
    if v is None:
        return (5,)
    if v is True or v is False:
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_vkey(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _vkey(v[k])) for k in sorted(v)))
    return (1, str(v))


_ORDER_CACHE: dict[str, tuple] = {}


def _pe_order(s: str) -> tuple:
    got = _ORDER_CACHE.get(s)
    if got is not None:
        return got
    t = s[:1]
    if t == "f":
        key: tuple = (0, s[2:])
    elif t == "k":
        obj = orjson.loads(s[2:])
        key = (1, tuple((n, _vkey(obj[n])) for n in sorted(obj)))
    elif t == "v":
        key = (2, _vkey(orjson.loads(s[2:])))
    elif t == "i":
        key = (3, int(s[2:]))
    else:  # "." sorts first
        key = (-1,)
    if len(_ORDER_CACHE) > 100_000:
        _ORDER_CACHE.clear()
    _ORDER_CACHE[s] = key
    return key


def sort_content(d: dict) -> dict:
    """``d`` with keys in SMD order (``.`` first); ``d`` itself when already so."""
    if len(d) < 2:
        return d
    keys = list(d)
    if keys[0][:1] in (".", "f") and keys[-1][:1] == "f":
        skeys = sorted(keys)  # a map level: "." < "f:..." and f: keys share their prefix
    else:
        skeys = sorted(keys, key=_pe_order)
    if skeys == keys:
        return d
    return {k: d[k] for k in skeys}


def _parse_pe(s: str) -> tuple[str, Any]:
    t = s[:2]
    if t == "f:":
        return "f", s[2:]
    if t == "k:":
        return "k", orjson.loads(s[2:])
    if t == "v:":
        return "v", orjson.loads(s[2:])
    if t == "i:":
        return "i", int(s[2:])
    raise FieldSetError(f"invalid path element {s!r}")


def _value_string(v: Any) -> str:
    """SMD's value.ToString."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return gofmt.float_str(v, "json")
    if isinstance(v, str):
        return gofmt.quote(v)
    if isinstance(v, list):
        return "[" + ",".join(_value_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_value_string(x)}" for k, x in v.items())
    return str(v)


def pe_string(s: str) -> str:
    """How SMD prints one path element: ``.name``, ``[name="x"]``, ``[="v"]``, ``[3]``."""
    t, v = _parse_pe(s)
    if t == "f":
        return "." + v
    if t == "k":
        return "[" + ",".join(f"{n}={_value_string(v[n])}" for n in sorted(v)) + "]"
    if t == "v":
        return "[=" + _value_string(v) + "]"
    return f"[{v}]"


def path_string(path: tuple[str, ...] | list[str]) -> str:
    """A path as Kubernetes prints it in conflicts: ``.spec.containers[name="x"].image``."""
    return "".join(pe_string(p) for p in path)


# ---------------------------------------------------------------------------
# Set algebra on fieldsV1-shaped dicts
# ---------------------------------------------------------------------------


def _member(node: dict) -> bool:
    return not node or "." in node


def _mk(member: bool, ch: dict) -> dict | None:
    if not ch:
        return {} if member else None
    if member:
        out = {".": {}}
        out.update(ch)
        return out
    return ch


def _children(node: dict) -> dict:
    if "." not in node:
        return node
    return {k: v for k, v in node.items() if k != "."}


def _node_union(a: dict, b: dict) -> dict:
    if a is b:
        return a
    ma, mb = _member(a), _member(b)
    ch = _cunion(a, b)
    out = _mk(ma or mb, ch)
    return out if out is not None else {}


def _cunion(a: dict, b: dict) -> dict:
    """Union of the children of two nodes (``.`` ignored); a content dict."""
    if not b or (len(b) == 1 and "." in b):
        return _children(a)
    if not a or (len(a) == 1 and "." in a):
        return _children(b)
    out: dict = {}
    new = False
    for k, v in a.items():
        if k == ".":
            continue
        w = b.get(k)
        out[k] = v if w is None or w is v else _node_union(v, w)
    for k, w in b.items():
        if k != "." and k not in a:
            out[k] = w
            new = True
    return sort_content(out) if new else out


def _cdiff(a: dict, b: dict) -> dict:
    out: dict = {}
    for k, v in a.items():
        if k == ".":
            continue
        w = b.get(k)
        if w is None:
            out[k] = v
            continue
        if w is v:
            continue
        n = _mk(_member(v) and not _member(w), _cdiff(v, w))
        if n is not None:
            out[k] = n
    return out


def _crdiff(a: dict, b: dict) -> dict:
    out: dict = {}
    for k, v in a.items():
        if k == ".":
            continue
        w = b.get(k)
        if w is None:
            out[k] = v
            continue
        if _member(w):
            continue
        n = _mk(_member(v), _crdiff(v, w))
        if n is not None:
            out[k] = n
    return out


def _cinter(a: dict, b: dict) -> dict:
    out: dict = {}
    small, other = (b, a) if len(b) < len(a) else (a, b)
    for k, v in small.items():  # either order is sorted
        if k == ".":
            continue
        w = other.get(k)
        if w is None:
            continue
        if w is v:
            out[k] = v
            continue
        n = _mk(_member(v) and _member(w), _cinter(v, w))
        if n is not None:
            out[k] = n
    return out


def union(a: dict, b: dict) -> dict:
    """Set union of two (top-level) sets."""
    if not b:
        return a
    if not a:
        return b
    return _cunion(a, b)


def difference(a: dict, b: dict) -> dict:
    """SMD Set.Difference: members of ``b`` leave ``a``; their children stay unless also in ``b``."""
    if not a or not b:
        return a
    return _cdiff(a, b)


def recursive_difference(a: dict, b: dict) -> dict:
    """SMD Set.RecursiveDifference: a member of ``b`` removes the whole subtree from ``a``."""
    if not a or not b:
        return a
    return _crdiff(a, b)


def intersection(a: dict, b: dict) -> dict:
    if not a or not b:
        return {}
    return _cinter(a, b)


def is_empty(s: dict) -> bool:
    return not s


def iter_paths(s: dict, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Member paths in SMD's Iterate order: a level's members first, then its children."""
    for k, v in s.items():
        if k != "." and _member(v):
            yield prefix + (k,)
    for k, v in s.items():
        if k != "." and v and not (len(v) == 1 and "." in v):
            yield from iter_paths(v, prefix + (k,))


def has(s: dict, path: tuple[str, ...]) -> bool:
    node: dict | None = None
    cur = s
    for pe in path:
        node = cur.get(pe) if pe != "." else None
        if node is None:
            return False
        cur = node
    return node is not None and _member(node)


def make_set(*paths: tuple[str, ...]) -> dict:
    """A set holding the given member paths (each a tuple of serialised path elements)."""
    out: dict = {}
    for p in paths:
        if not p:
            continue
        node: dict = {}
        for pe in reversed(p[1:]):
            node = {pe: node}
        out = union(out, {p[0]: node}) if len(p) > 1 else union(out, {p[0]: {}})
    return out


# ---------------------------------------------------------------------------
# fieldsV1 decoding (validation + canonicalisation)
# ---------------------------------------------------------------------------

_CANON: dict[str, str | None] = {}


def _canon_key(k: str) -> str | None:
    """Canonical spelling of a serialised path element, None for unknown kinds."""
    got = _CANON.get(k, MISSING)
    if got is not MISSING:
        return got
    if len(k) < 2 or k[1] != ":":
        raise FieldSetError(f"missing colon: {k}")
    t = k[0]
    if t == "f":
        out: str | None = k
    elif t == "k":
        try:
            obj = orjson.loads(k[2:])
        except orjson.JSONDecodeError as e:
            raise FieldSetError(f"invalid key {k!r}: {e}") from None
        if not isinstance(obj, dict):
            raise FieldSetError(f"invalid key {k!r}")
        out = "k:" + go_json(obj)
    elif t == "v":
        try:
            out = "v:" + go_json(orjson.loads(k[2:]))
        except orjson.JSONDecodeError as e:
            raise FieldSetError(f"invalid value {k!r}: {e}") from None
    elif t == "i":
        try:
            out = "i:" + str(int(k[2:]))
        except ValueError:
            raise FieldSetError(f"invalid index {k!r}") from None
    else:
        out = None  # unknown element kinds are dropped, as SMD does
    if len(_CANON) > 100_000:
        _CANON.clear()
    _CANON[k] = out
    return out


def _decode_node(d: Any) -> dict:
    if not isinstance(d, dict):
        raise FieldSetError("expected an object")
    if not d:
        return d
    out: dict = {}
    member = False
    changed = False
    for k, v in d.items():
        if k == ".":
            member = True
            continue
        ck = _canon_key(k)
        if ck is None:
            changed = True
            continue
        nv = _decode_node(v)
        if ck != k or nv is not v:
            changed = True
        if ck in out:
            nv = _node_union(out[ck], nv)
            changed = True
        out[ck] = nv
    if not out:
        return {}  # ".", or only unknown kinds: a member (as SMD reads it)
    if not changed and (not member or next(iter(d)) == "."):
        return sort_content(d)
    res = _mk(member, sort_content(out))
    return res if res is not None else {}


def decode_fields(d: Any) -> dict:
    """Validate and canonicalise a ``fieldsV1`` document into a set (no copy when canonical)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise FieldSetError("fieldsV1 must be an object")
    out = _decode_node(d)
    if "." in out:  # the root is never a member
        out = _children(out)
    return out


# ---------------------------------------------------------------------------
# Type descriptors
# ---------------------------------------------------------------------------

# Leaves (< STRUCT), map-like (STRUCT..DEDUCED), associative lists (LMAP, LSET).
SCALAR, ATOMIC, STRUCT, MAP, DEDUCED, LMAP, LSET = range(7)

# Scalar flavours, for validation of applied configurations.
S_STRING, S_NUMERIC, S_BOOL, S_UNTYPED = "string", "numeric", "boolean", "untyped"
_SCALAR_KIND = {
    "string": S_STRING,
    "date-time": S_STRING,
    "integer": S_NUMERIC,
    "number": S_NUMERIC,
    "boolean": S_BOOL,
    "int-or-string": S_UNTYPED,
    "quantity": S_UNTYPED,
}

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Struct fields that exist in the Go zero value of built-in types (non-pointer
# structs, and slices without omitempty).  An object SMD compares against is
# a typed Go object, so these are present (as {} / null) even when "absent";
# that decides whether Added records the node itself (the ``.: {}`` marker).
_ZERO_PRESENT_STRUCTS = frozenset({
    "metadata", "spec", "status", "template", "jobTemplate", "strategy", "updateStrategy",
    "resources", "loadBalancer", "daemonEndpoints", "kubeletEndpoint", "nodeInfo",
    "scaleTargetRef", "roleRef",
})
_ZERO_PRESENT_LISTS = frozenset({"containers"})

# Defaults of associative-list key fields (from the OpenAPI v3 schema Kubernetes
# builds its type converter from; k8py's schema carries no defaults).
_KEY_DEFAULTS = {"protocol": "TCP"}


class TD:
    """Type descriptor of a position in an object (an SMD atom, simplified)."""

    __slots__ = ("kind", "name", "keys", "item", "scalar", "builtin", "_fields", "_schema", "known", "fk", "_zero", "kp")

    def __init__(self, kind: int, name: str = "", keys: tuple[str, ...] = (), item: "TD | None" = None,
                 scalar: str = S_UNTYPED, schema: Any = None, known: bool = False) -> None:
        self.kind = kind
        self.name = name
        self.keys = keys
        self.item = item
        self.scalar = scalar
        self.builtin = name.startswith("io.k8s.")
        self._fields: dict[str, tuple[TD, bool]] = {}
        # name -> ("f:<name>", descriptor, is-named); filled by field_entry()
        self.fk: dict[str, tuple[str, TD, bool]] = {}
        self._zero: dict[str, Any] | None = None
        self.kp: tuple[tuple[str, str, Any], ...] | None = None  # key fields, see item_key()
        self._schema = schema
        self.known = known  # struct: the schema knows this type (unknown fields are errors)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"TD({self.kind}, {self.name!r}, keys={self.keys})"

    def field_entry(self, name: str) -> tuple[str, "TD", bool]:
        """("f:<name>", descriptor, is-named) of a map entry / struct field (cached)."""
        got = self.fk.get(name)
        if got is None:
            ctd, named = self.child(name)
            got = ("f:" + name, ctd, named)
            if len(self.fk) < 4096:  # map keys (labels...) are unbounded; struct fields are not
                self.fk[name] = got
        return got

    def zero(self) -> dict[str, Any]:
        """Fields present in Go's zero value of this built-in struct, with that zero value."""
        z = self._zero
        if z is None:
            z = {}
            if self.kind == STRUCT and self.builtin:
                for name in _ZERO_PRESENT_STRUCTS | _ZERO_PRESENT_LISTS:
                    v = _zero_child(self, name, self.child(name)[0])
                    if v is not MISSING:
                        z[name] = v
            self._zero = z
        return z

    def child(self, name: str) -> tuple["TD", bool]:
        """(descriptor, is-a-named-field) of a map entry / struct field."""
        k = self.kind
        if k == STRUCT:
            got = self._fields.get(name)
            if got is None:
                got = _struct_field(self, name)
                self._fields[name] = got
            return got
        if k == MAP:
            return self.item, False  # type: ignore[return-value]
        if self.name == "<root>":  # an untyped object still has typed ObjectMeta
            if name == "metadata":
                return _struct(self._schema, OBJECT_META), True
            if name in ("apiVersion", "kind"):
                return _SCALAR_TDS[S_STRING], True
        return _DEDUCED, False


_SCALAR_TDS = {s: TD(SCALAR, scalar=s) for s in (S_STRING, S_NUMERIC, S_BOOL, S_UNTYPED)}
_ATOMIC = TD(ATOMIC)
_DEDUCED = TD(DEDUCED)
_LSET = TD(LSET, item=_SCALAR_TDS[S_UNTYPED])
_UNKNOWN = TD(DEDUCED, name="<unknown>")  # a field the schema does not declare

_TD_CACHE: dict[int, tuple[Any, dict[str, TD]]] = {}


def _struct(schema: Any, name: str) -> TD:
    ent = _TD_CACHE.get(id(schema))
    if ent is None or ent[0] is not schema:
        ent = (schema, {})
        _TD_CACHE[id(schema)] = ent
    cache = ent[1]
    td = cache.get(name)
    if td is None:
        is_atomic = getattr(schema, "is_atomic", None)
        if is_atomic is not None and is_atomic(name):
            td = _ATOMIC
        else:
            has = getattr(schema, "has", None)
            known = bool(has(name)) if has is not None else False
            preserves = getattr(schema, "preserves_unknown_fields", None)
            if known and preserves is not None and preserves(name):
                known = False  # x-kubernetes-preserve-unknown-fields: unknown fields are deduced
            td = TD(STRUCT, name=name, schema=schema, known=known)
        cache[name] = td
    return td


def _value_td(schema: Any, ref: str | None, items_type: str | None) -> TD:
    if ref:
        return _struct(schema, ref)
    if items_type in _SCALAR_KIND:
        return _SCALAR_TDS[_SCALAR_KIND[items_type]]
    return _ATOMIC


def _field_td(schema: Any, fi: Any) -> TD:
    typ = fi.type
    if typ in _SCALAR_KIND:
        return _SCALAR_TDS[_SCALAR_KIND[typ]]
    if typ == "object":
        if not fi.ref or getattr(fi, "map_type", "") == "atomic":
            return _ATOMIC
        return _struct(schema, fi.ref)
    if typ == "array":
        lt = getattr(fi, "list_type", "") or ""
        keys: tuple[str, ...] = tuple(getattr(fi, "list_map_keys", ()) or ())
        if not lt:
            ps = getattr(fi, "patch_strategy", "") or ""
            if "merge" in ps.split(","):
                mk = getattr(fi, "patch_merge_key", "") or ""
                if mk:
                    lt, keys = "map", (mk,)
                else:
                    lt = "set"
            else:
                lt = "atomic"
        if lt == "map":
            if not keys:
                mk = getattr(fi, "patch_merge_key", "") or ""
                keys = (mk,) if mk else ()
            item = _value_td(schema, fi.ref, fi.items_type)
            if not keys:
                return TD(LSET, item=item)
            return TD(LMAP, keys=keys, item=item)
        if lt == "set":
            return _LSET
        return _ATOMIC
    if typ == "map":
        if getattr(fi, "map_type", "") == "atomic":
            return _ATOMIC
        return TD(MAP, item=_value_td(schema, fi.ref, fi.items_type))
    return _ATOMIC  # "any"


def _struct_field(td: TD, name: str) -> tuple[TD, bool]:
    schema = td._schema
    fi = schema.field(td.name, name) if schema is not None else None
    if fi is None:
        if name in ("apiVersion", "kind"):
            return _SCALAR_TDS[S_STRING], True
        if name == "metadata":
            return _struct(schema, OBJECT_META), True
        return (_UNKNOWN if td.known else _DEDUCED), False
    return _field_td(schema, fi), True


_ROOTS: dict[int, tuple[Any, TD]] = {}


def root_td(schema: Any, type_name: str | None) -> TD:
    """The descriptor of a whole object of ``type_name`` (deduced when unknown)."""
    if schema is None:
        return _DEDUCED
    has = getattr(schema, "has", None)
    if type_name and (has is None or has(type_name)):
        return _struct(schema, type_name)
    got = _ROOTS.get(id(schema))
    if got is None or got[0] is not schema:
        got = (schema, TD(DEDUCED, name="<root>", schema=schema))
        _ROOTS[id(schema)] = got
    return got[1]


# ---------------------------------------------------------------------------
# Associative list items
# ---------------------------------------------------------------------------


_JCACHE: dict[str, str] = {}


def _jval(v: Any) -> str:
    """go_json of a key value, with strings cached (key values repeat a lot)."""
    t = type(v)
    if t is str:
        got = _JCACHE.get(v)
        if got is None:
            got = _jstr(v)
            if len(_JCACHE) > 50_000:
                _JCACHE.clear()
            _JCACHE[v] = got
        return got
    if t is int:
        return str(v)
    return go_json(v)


def item_key(td: TD, item: Any) -> str | None:
    """The path element of an item of an associative list, None when it has none."""
    if td.kind == LSET:
        if isinstance(item, (dict, list)) or item is None:
            return None
        return "v:" + _jval(item)
    if type(item) is not dict:
        return None
    kp = td.kp
    if kp is None:
        # (name, '"name":', default) of the key fields, sorted by name as SMD sorts keys
        builtin = td.item is not None and td.item.builtin
        kp = td.kp = tuple((k, _jstr(k) + ":", _KEY_DEFAULTS.get(k, MISSING) if builtin else MISSING)
                           for k in sorted(td.keys))
    if len(kp) == 1:
        name, prefix, default = kp[0]
        v = item.get(name, MISSING)
        if v is MISSING:
            if default is MISSING:
                return None
            v = default
        return "k:{" + prefix + _jval(v) + "}"
    parts: list[str] = []
    for name, prefix, default in kp:
        v = item.get(name, MISSING)
        if v is MISSING:
            if default is MISSING:
                continue
            v = default
        parts.append(prefix + _jval(v))
    if not parts:
        return None
    return "k:{" + ",".join(parts) + "}"


# ---------------------------------------------------------------------------
# ToFieldSet
# ---------------------------------------------------------------------------


def _with_member(ch: dict) -> dict:
    if not ch:
        return {}
    out = {".": {}}
    out.update(ch)
    return out


def _fs_node(val: Any, td: TD, named: bool) -> dict | None:
    kind = td.kind
    if val is None or kind < STRUCT:
        return {}
    tv = type(val)
    if tv is dict:
        if kind <= DEDUCED:
            if not val:
                return {}
            ch = _fs_map(val, td)
            if not named:
                return _with_member(ch)
            return ch or None
        return None if named else {}
    if tv is list:
        if kind >= LMAP:
            ch = _fs_list(val, td)
            if not named:
                return _with_member(ch)
            return ch or None
        if kind == DEDUCED:
            return {}
        return None if named else {}
    # a scalar
    if kind == DEDUCED:
        return {}
    return None if named else {}


def _fs_map(val: dict, td: TD) -> dict:
    out: dict = {}
    fk = td.fk
    for k in sorted(val):
        e = fk.get(k) or td.field_entry(k)
        x = val[k]
        ctd = e[1]
        if x is None or ctd.kind < STRUCT:
            out[e[0]] = {}
            continue
        node = _fs_node(x, ctd, e[2])
        if node is not None:
            out[e[0]] = node
    return out


def _fs_list(val: list, td: TD) -> dict:
    out: dict = {}
    dups: set[str] = set()
    item_td = td.item or _ATOMIC
    leafy = td.kind == LSET or item_td.kind < STRUCT
    for item in val:
        pe = item_key(td, item)
        if pe is None:
            continue
        if pe in out:
            dups.add(pe)
            continue
        if leafy or type(item) is not dict or not item:
            out[pe] = {}
        else:
            out[pe] = _with_member(_fs_map(item, item_td))
    for pe in dups:
        out[pe] = {}
    return sort_content(out) if len(out) > 1 else out


def to_fieldset(obj: Any, td: TD) -> dict:
    """SMD ``ToFieldSet``: the fields an object (or applied configuration) sets."""
    if isinstance(obj, dict) and STRUCT <= td.kind <= DEDUCED:
        return _fs_map(obj, td)
    if isinstance(obj, list) and td.kind >= LMAP:
        return _fs_list(obj, td)
    return {}


# ---------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------


def _eq(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a != b:
        return False
    # Python equates True with 1; SMD does not.
    if (a is True or a is False) != (b is True or b is False):
        return False
    return True


def _all_added(v: Any, td: TD) -> dict:
    """The Added node of a value absent on the left: every path, each a member."""
    kind = td.kind
    if kind < STRUCT or v is None:
        return {}
    tv = type(v)
    if tv is dict:
        if not v or kind > DEDUCED:
            return {}
        out: dict = {".": {}}
        fk = td.fk
        for k in sorted(v):
            e = fk.get(k) or td.field_entry(k)
            x = v[k]
            ctd = e[1]
            if x is None or ctd.kind < STRUCT or not x or (type(x) is not dict and type(x) is not list):
                out[e[0]] = {}
            else:
                out[e[0]] = _all_added(x, ctd)
        return out
    if tv is list:
        if not v or kind < LMAP:
            return {}
        items: dict = {}
        dups: set[str] | None = None
        item_td = td.item or _ATOMIC
        leafy = kind == LSET or item_td.kind < STRUCT
        for item in v:
            pe = item_key(td, item)
            if pe is None:
                continue
            if pe in items:
                if dups is None:
                    dups = set()
                dups.add(pe)
                continue
            items[pe] = {} if leafy else _all_added(item, item_td)
        if dups:
            for pe in dups:
                items[pe] = {}
        out = {".": {}}
        out.update(sort_content(items) if len(items) > 1 else items)
        return out
    return {}


def _zero_child(parent: TD, name: str, ctd: TD) -> Any:
    """What a field absent from a built-in object is in Go's zero value (MISSING if absent)."""
    if not parent.builtin:
        return MISSING
    if name in _ZERO_PRESENT_STRUCTS and ctd.kind == STRUCT:
        return {}
    if name in _ZERO_PRESENT_LISTS and ctd.kind == LMAP:
        return None
    return MISSING


class _Cmp:
    __slots__ = ("a", "m", "r")

    def __init__(self) -> None:
        self.a: dict = {}
        self.m: dict = {}
        self.r: dict = {}


def _cmp_into(key: str, l: Any, r: Any, td: TD, out: _Cmp) -> None:
    """Compare the values at one position (either may be MISSING), recording under ``key``."""
    kind = td.kind
    if STRUCT <= kind <= DEDUCED:
        ld = l if isinstance(l, dict) else None
        rd = r if isinstance(r, dict) else None
        if ld or rd:
            sub = _Cmp()
            _cmp_map(ld or {}, rd or {}, td, sub, ld is not None, rd is not None)
            _record(key, l is MISSING, r is MISSING, sub, out)
            return
    elif kind >= LMAP:
        ll = l if isinstance(l, list) else None
        rl = r if isinstance(r, list) else None
        if ll or rl:
            sub = _Cmp()
            _cmp_list(ll or [], rl or [], td, sub)
            _record(key, l is MISSING, r is MISSING, sub, out)
            return
    # a leaf: scalar, atomic, or empty/null on both sides
    if l is MISSING:
        out.a[key] = {}
    elif r is MISSING:
        out.r[key] = {}
    elif not _eq(l, r):
        out.m[key] = {}


def _record(key: str, l_missing: bool, r_missing: bool, sub: _Cmp, out: _Cmp) -> None:
    n = _mk(l_missing, sub.a)
    if n is not None:
        out.a[key] = n
    if sub.m:
        out.m[key] = sub.m
    n = _mk(r_missing, sub.r)
    if n is not None:
        out.r[key] = n


def _cmp_map(l: dict, r: dict, td: TD, out: _Cmp, l_present: bool = True, r_present: bool = True) -> None:
    if l is r:
        return
    fk = td.fk
    zero_ok = td.kind == STRUCT and td.builtin
    if not l:
        # everything on the right is new (the create case): no per-key comparisons
        zp = td.zero() if (zero_ok and l_present) else None
        oa = out.a
        for k in sorted(r):
            e = fk.get(k) or td.field_entry(k)
            rv = r[k]
            if zp:
                zv = zp.get(k, MISSING)
                if zv is not MISSING:
                    if not _eq(zv, rv):
                        _cmp_into(e[0], zv, rv, e[1], out)
                    continue
            ctd = e[1]
            if rv is None or ctd.kind < STRUCT or not rv or (type(rv) is not dict and type(rv) is not list):
                oa[e[0]] = {}
            else:
                oa[e[0]] = _all_added(rv, ctd)
        return
    if not r:
        keys: list[str] = sorted(l)
    else:
        keys = sorted(l.keys() | r.keys())
    zp = td.zero() if zero_ok else None
    for k in keys:
        lv = l.get(k, MISSING)
        rv = r.get(k, MISSING)
        if lv is rv:
            continue
        e = fk.get(k) or td.field_entry(k)
        ctd = e[1]
        if lv is MISSING:
            if zp and l_present:
                lv = zp.get(k, MISSING)
            if lv is MISSING:
                out.a[e[0]] = _all_added(rv, ctd)
                continue
        elif rv is MISSING:
            if zp and r_present:
                rv = zp.get(k, MISSING)
            if rv is MISSING:
                out.r[e[0]] = _all_added(lv, ctd)
                continue
        if _eq(lv, rv):
            continue
        _cmp_into(e[0], lv, rv, ctd, out)


def _index(lst: list, td: TD) -> tuple[list[str], dict[str, list]]:
    order: list[str] = []
    vals: dict[str, list] = {}
    for item in lst:
        pe = item_key(td, item)
        if pe is None:
            continue
        got = vals.get(pe)
        if got is None:
            vals[pe] = [item]
            order.append(pe)
        else:
            got.append(item)
    return order, vals


def _cmp_list(l: list, r: list, td: TD, out: _Cmp) -> None:
    lorder, lvals = _index(l, td)
    rorder, rvals = _index(r, td)
    item_td = td.item or _ATOMIC
    for pe in rorder:
        if pe not in lvals:
            lorder.append(pe)
    for pe in lorder:
        ll = lvals.get(pe, ())
        rl = rvals.get(pe, ())
        if len(ll) <= 1 and len(rl) <= 1:
            lv = ll[0] if ll else MISSING
            rv = rl[0] if rl else MISSING
            if lv is MISSING:
                out.a[pe] = _all_added(rv, item_td)
            elif rv is MISSING:
                out.r[pe] = _all_added(lv, item_td)
            elif not _eq(lv, rv):
                _cmp_into(pe, lv, rv, item_td, out)
        elif len(ll) >= 2 and len(rl) >= 2:
            if len(ll) != len(rl) or any(not _eq(x, y) for x, y in zip(ll, rl)):
                out.m[pe] = {}
        elif len(ll) >= 2:
            # several items with this key on the left, at most one on the right
            if rl:
                out.a[pe] = _all_added(rl[0], item_td)
            out.r[pe] = {}
        else:
            # several items with this key on the right, at most one on the left
            if ll:
                out.r[pe] = _all_added(ll[0], item_td)
            out.a[pe] = {}
    if out.a:
        out.a = sort_content(out.a)
    if out.m:
        out.m = sort_content(out.m)
    if out.r:
        out.r = sort_content(out.r)


_NO_META = ("managedFields",)


def _trim(obj: dict, skip: Any) -> dict:
    """``obj`` without the top-level ``skip`` fields and without metadata.managedFields (shallow)."""
    if skip and any(k in obj for k in skip):
        obj = {k: v for k, v in obj.items() if k not in skip}
    meta = obj.get("metadata")
    if type(meta) is dict and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


def compare(lhs: Any, rhs: Any, td: TD, skip: Any = ()) -> tuple[dict, dict, dict]:
    """SMD ``Compare`` of two whole objects: (added, modified, removed) sets.

    ``lhs`` None means "the zero object of the type" (what a create compares
    against).  Top-level fields in ``skip`` and ``metadata.managedFields``
    are left out.
    """
    out = _Cmp()
    if lhs is None:
        lhs = {}
    if not isinstance(lhs, dict) or not isinstance(rhs, dict):
        return {}, {}, {}
    lhs = _trim(lhs, skip)
    rhs = _trim(rhs, skip)
    _cmp_map(lhs, rhs, td, out)
    return out.a, out.m, out.r


def created_set(obj: dict, td: TD) -> dict:
    """Added fields of ``obj`` against the type's zero object (a create's field set)."""
    return compare(None, obj, td)[0]


# ---------------------------------------------------------------------------
# EnsureNamedFieldsAreMembers
# ---------------------------------------------------------------------------


def _child_td_for_pe(td: TD, pe: str) -> tuple[TD, bool]:
    t = pe[:1]
    if t == "f":
        if STRUCT <= td.kind <= DEDUCED:
            return td.child(pe[2:])
        return _DEDUCED, False
    if t == "k" and td.kind == LMAP:
        return td.item or _ATOMIC, False
    return _ATOMIC, False


def ensure_named(s: dict, td: TD) -> dict:
    """SMD ``EnsureNamedFieldsAreMembers``: struct fields with children become members too."""
    out: dict = {}
    for k, v in s.items():
        if k == ".":
            continue
        if not v or (len(v) == 1 and "." in v):
            out[k] = v
            continue
        ctd, named = _child_td_for_pe(td, k)
        n = _mk("." in v or named, ensure_named(v, ctd))
        if n is not None:
            out[k] = n
    return out
