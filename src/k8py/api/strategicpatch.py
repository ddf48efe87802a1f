"""Strategic merge patch, applied as kube-apiserver applies it.

This follows ``k8s.io/apimachinery/pkg/util/strategicpatch`` in its
server-side mode (``StrategicMergeMapPatch``: parallel lists merged, unmatched
nulls ignored):

* maps merge recursively; a ``null`` value deletes the key;
* lists whose field has ``patchStrategy: merge`` merge -- lists of objects by
  ``patchMergeKey`` (matching items merge, new items are added), lists of
  primitives as a union; every other list is replaced whole;
* directives: ``$patch: replace|delete`` in a map, ``{"$patch": "replace"}``
  and ``{"<key>": ..., "$patch": "delete"}`` elements in merging lists,
  ``$retainKeys``, ``$setElementOrder/<field>`` and
  ``$deleteFromPrimitiveList/<field>``;
* the order of merged lists follows ``$setElementOrder``, then the patch, then
  the live list, exactly as apimachinery orders them.

Patch metadata comes from a schema object offering ``field(type_name, name)``
returning a FieldInfo-like object (``type``, ``ref``, ``items_type``,
``patch_strategy``, ``patch_merge_key``) or None.  Where the schema knows
nothing (unknown fields, values of maps, ``any``), maps merge and lists are
replaced, as for unstructured content.

Values taken from the patch are copied and stripped of ``null`` members and of
directive keys (what decoding into the Go type does in Kubernetes), so results
never alias the patch and never store directives.  Neither input is mutated;
untouched subtrees of the original are shared with the result.
"""

from __future__ import annotations

from typing import Any, Protocol

from k8py.api import gofmt
from k8py.api.patch import PatchError, go_fmt_s, go_type, json_kind

__all__ = ["apply_strategic_merge_patch"]

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_SEO = "$setElementOrder"
_DFPL = "$deleteFromPrimitiveList"

_DROP = object()  # a value removeDirectives discards
_UNSET = object()


class SchemaLike(Protocol):
    def field(self, type_name: str, field: str) -> Any: ...


# Context of a value: None (nothing known), a definition name (an object of
# that type), or ("map", ctx) for a map whose values have context ctx.
_Ctx = Any


# --------------------------------------------------------------------------
# errors, with the codes interpretStrategicMergePatchError gives them

def _bad_request(msg: str) -> PatchError:
    return PatchError(400, msg)


def _invalid(msg: str) -> PatchError:
    return PatchError.generic(422, msg)


def _internal(msg: str) -> PatchError:
    # Errors kube does not classify become a 500 with no reason.
    return PatchError(500, msg, reason="")


def _err_bad_arg_type(expected: Any, actual: Any) -> PatchError:
    return _internal(f"expected a {go_type(expected)}, but received a {go_type(actual)}")


def _err_no_merge_key(m: Any, key: str) -> PatchError:
    return _internal(f"map: {gofmt.value(m)} does not contain declared merge key: {key}")


def _err_bad_patch_type(t: Any, m: Any) -> PatchError:
    return _internal(f"unknown patch type: {go_fmt_s(t)} in map: {gofmt.value(m)}")


ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"


# --------------------------------------------------------------------------
# small helpers

def _eq(a: Any, b: Any) -> bool:
    """Go ``==`` on two interface{} values holding decoded JSON scalars."""
    return type(a) is type(b) and a == b


def _hk(v: Any) -> Any:
    """A hashable key with Go ``==`` semantics (1 != 1.0 != True != "1")."""
    t = type(v)
    if t is str or v is None:
        return v
    if t is int or t is float or t is bool:
        return (t, v)
    try:
        hash(v)
    except TypeError:
        return (t, id(v))
    return (t, v)


def _clean(v: Any, drop: bool) -> Any:
    """Copy a patch value as Kubernetes would store it.

    Drops ``null`` object members and directive keys; with ``drop`` (the
    ``removeDirectives`` case) a map holding ``$patch`` is discarded whole.
    """
    if isinstance(v, dict):
        if drop and v.get(_PATCH) is not None:
            return _DROP
        out = {}
        for k, x in v.items():
            if x is None or (k[:1] == "$" and (k in (_PATCH, _RETAIN) or k.startswith((_SEO, _DFPL)))):
                continue
            if isinstance(x, (dict, list)):
                x = _clean(x, drop)
                if x is _DROP:
                    continue
            out[k] = x
        return out
    if isinstance(v, list):
        out_l = []
        for x in v:
            if isinstance(x, (dict, list)):
                x = _clean(x, drop)
                if x is _DROP:
                    continue
            out_l.append(x)
        return out_l
    return v


def _extract_key(s: str, prefix: str) -> str:
    parts = s.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        if prefix == _DFPL:
            raise _bad_request(ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST)
        raise _bad_request(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST)
    return parts[1]


def _other_strategy(strategy: str) -> str:
    """extractRetainKeysPatchStrategy: the strategy besides retainKeys."""
    parts = (strategy or "").split(",")
    if len(parts) == 1:
        return "" if parts[0] == "retainKeys" else parts[0]
    if len(parts) == 2:
        if parts[0] == "retainKeys":
            return parts[1]
        if parts[1] == "retainKeys":
            return parts[0]
    raise _internal(f"unexpected patch strategy: {gofmt.value(parts)}")


def _element_is_map(*lists: list[Any]) -> bool:
    """sliceElementType: all elements share one type, which is not a list."""
    prev: Any = _UNSET
    for lst in lists:
        for v in lst:
            t = type(v)
            if prev is _UNSET:
                prev = t
                if t is list:
                    raise _invalid(ERR_NO_LIST_OF_LISTS)
            elif t is not prev:
                raise _internal(f"list element types are not identical: {gofmt.value(list(lists))}")
    if prev is _UNSET:
        raise _internal("no elements in any of the given slices")
    return prev is dict


def _validate_merge_key(key: str, *lists: list[Any]) -> None:
    for lst in lists:
        for item in lst:
            if not isinstance(item, dict):
                raise _err_bad_arg_type({}, item)
            if key not in item:
                raise _err_no_merge_key(item, key)


def _positions(order: list[Any], key: str, is_map: bool) -> dict[Any, int]:
    """First index in ``order`` of each merge-key value (or primitive)."""
    pos: dict[Any, int] = {}
    for i, o in enumerate(order):
        v = (o.get(key) if isinstance(o, dict) else None) if is_map else o
        pos.setdefault(_hk(v), i)
    return pos


def _val(item: Any, key: str, is_map: bool) -> Any:
    if is_map:
        return _hk(item.get(key) if isinstance(item, dict) else None)
    return _hk(item)


def _go_stable_sort(items: list[Any], less: Any) -> None:
    """Go's sort.SliceStable (insertion sort + SymMerge), in place.

    Only used when ``less`` is not a strict weak order, where the exact
    algorithm decides the outcome.
    """

    def insertion(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and less(items[j], items[j - 1]):
                items[j], items[j - 1] = items[j - 1], items[j]
                j -= 1

    def swap_range(a: int, b: int, n: int) -> None:
        for i in range(n):
            items[a + i], items[b + i] = items[b + i], items[a + i]

    def rotate(a: int, m: int, b: int) -> None:
        i, j = m - a, b - m
        while i != j:
            if i > j:
                swap_range(m - i, m, j)
                i -= j
            else:
                swap_range(m - i, m + j - i, i)
                j -= i
        swap_range(m - i, m, i)

    def sym_merge(a: int, m: int, b: int) -> None:
        if m - a == 1:
            i, j = m, b
            while i < j:
                h = (i + j) >> 1
                if less(items[h], items[a]):
                    i = h + 1
                else:
                    j = h
            for k in range(a, i - 1):
                items[k], items[k + 1] = items[k + 1], items[k]
            return
        if b - m == 1:
            i, j = a, m
            while i < j:
                h = (i + j) >> 1
                if not less(items[m], items[h]):
                    i = h + 1
                else:
                    j = h
            for k in range(m, i, -1):
                items[k], items[k - 1] = items[k - 1], items[k]
            return
        mid = (a + b) >> 1
        n = mid + m
        if m > mid:
            start, r = n - b, mid
        else:
            start, r = a, m
        p = n - 1
        while start < r:
            c = (start + r) >> 1
            if not less(items[p - c], items[c]):
                start = c + 1
            else:
                r = c
        end = n - start
        if start < m < end:
            rotate(start, m, end)
        if a < start < mid:
            sym_merge(a, start, mid)
        if mid < end < b:
            sym_merge(mid, end, b)

    n = len(items)
    block = 20
    a, b = 0, block
    while b <= n:
        insertion(a, b)
        a, b = b, b + block
    insertion(a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            sym_merge(a, a + block, b)
            a, b = b, b + 2 * block
        if a + block < n:
            sym_merge(a, a + block, n)
        block *= 2


def _sort_by_order(
    to_sort: list[Any], order: list[Any], key: str, is_map: bool, pos: dict[Any, int] | None = None
) -> list[Any]:
    """normalizeSliceOrder: stable-sort ``to_sort`` by position in ``order``."""
    to_delete: list[Any] = []
    if is_map:
        _validate_merge_key(key, to_sort, order)
        if any(x.get(_PATCH) == "delete" for x in to_sort):
            to_delete = [x for x in to_sort if x.get(_PATCH) == "delete"]
            to_sort = [x for x in to_sort if x.get(_PATCH) != "delete"]
    if len(to_sort) < 2:
        return to_sort + to_delete
    if pos is None:
        pos = _positions(order, key, is_map)
    idx = [pos.get(_val(x, key, is_map)) for x in to_sort]
    if None not in idx:
        if any(idx[i] > idx[i + 1] for i in range(len(idx) - 1)):
            ranked = sorted(range(len(to_sort)), key=idx.__getitem__)
            to_sort = [to_sort[i] for i in ranked]
    else:
        def less(x: Any, y: Any) -> bool:
            i, j = pos.get(_val(x, key, is_map)), pos.get(_val(y, key, is_map))
            return i < j if i is not None and j is not None else True

        to_sort = list(to_sort)
        _go_stable_sort(to_sort, less)
    return to_sort + to_delete


def _normalize_order(
    patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
    server_order: list[Any], key: str, is_map: bool,
) -> list[Any]:
    """normalizeElementOrder + mergeSortedSlice."""
    server_pos = _positions(server_order, key, is_map)
    right = _sort_by_order(patch_items, patch_order, key, is_map)
    left = _sort_by_order(server_only, server_order, key, is_map, server_pos)
    if not left:
        return right
    if not right:
        return left
    out: list[Any] = []
    i = j = 0
    while i < len(left) and j < len(right):
        li = server_pos.get(_val(left[i], key, is_map))
        ri = server_pos.get(_val(right[j], key, is_map))
        if li is not None and ri is not None and li < ri:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    inside = {_hk(v) for v in by}
    present, absent = [], []
    for v in items:
        (present if _hk(v) in inside else absent).append(v)
    return present, absent


def _partition_maps(items: list[Any], by: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    present, absent = [], []
    inside: set[Any] | None = None
    for v in items:
        if not isinstance(v, dict):
            raise _err_bad_arg_type({}, v)
        if key not in v:
            raise _err_no_merge_key(v, key)
        if inside is None:
            inside = set()
            for i, b in enumerate(by):
                if not isinstance(b, dict):
                    raise _internal(f"value for key {i} is not a map")
                if key in b:
                    inside.add(_hk(b[key]))
        (present if _hk(v[key]) in inside else absent).append(v)
    return present, absent


def _merge_key_equal(left: Any, right: Any, key: str) -> bool:
    if not key:
        return _eq(left, right)
    if not isinstance(left, dict):
        raise _err_bad_arg_type({}, left)
    if not isinstance(right, dict):
        raise _err_bad_arg_type({}, right)
    if key not in left:
        raise _err_no_merge_key(left, key)
    if key not in right:
        raise _err_no_merge_key(right, key)
    return _eq(left[key], right[key])


def _validate_set_element_order(patch_list: list[Any] | None, order: list[Any], key: str) -> None:
    """validatePatchWithSetOrderList."""
    if not order or not patch_list:
        return
    if key:
        non_delete = []
        for v in patch_list:
            if not isinstance(v, dict):
                raise _err_bad_arg_type({}, v)
            if v.get(_PATCH) != "delete":
                non_delete.append(v)
    else:
        non_delete = patch_list
    pi = si = 0
    while pi < len(non_delete) and si < len(order):
        item = non_delete[pi]
        if isinstance(item, dict) and _PATCH in item:
            pi += 1
            continue
        if _merge_key_equal(item, order[si], key):
            pi += 1
        si += 1
    if pi < len(non_delete) and si >= len(order):
        raise _internal(
            f"The order in patch list:\n{gofmt.value(patch_list)}\n doesn't match {_SEO} list:\n{gofmt.value(order)}\n"
        )


# --------------------------------------------------------------------------
# the merge

class _Merger:
    __slots__ = ("schema", "cache")

    def __init__(self, schema: SchemaLike | None) -> None:
        self.schema = schema
        self.cache: dict[tuple[Any, str], tuple[_Ctx, str, str]] = {}

    def lookup(self, ctx: _Ctx, key: str) -> tuple[_Ctx, str, str]:
        """(context of the field's value or items, non-retainKeys strategy, merge key)."""
        if ctx is None:
            return None, "", ""
        if type(ctx) is tuple:
            return ctx[1], "", ""
        hit = self.cache.get((ctx, key))
        if hit is not None:
            return hit
        fi = self.schema.field(ctx, key) if self.schema is not None else None
        if fi is None:
            res: tuple[_Ctx, str, str] = (None, "", "")
        else:
            ftype = getattr(fi, "type", "")
            ref = getattr(fi, "ref", None) or None
            if ftype == "map":
                sub: _Ctx = ("map", ref)
            elif ftype == "array":
                sub = ("map", ref) if getattr(fi, "items_type", None) == "map" else ref
            elif ftype == "object":
                sub = ref
            else:
                sub = None
            res = (
                sub,
                _other_strategy(getattr(fi, "patch_strategy", "") or ""),
                getattr(fi, "patch_merge_key", "") or "",
            )
        self.cache[(ctx, key)] = res
        return res

    @staticmethod
    def map_directive(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
        """handleDirectiveInMergeMap."""
        if directive == "replace" and isinstance(directive, str):
            return _clean(patch, False)
        if directive == "delete" and isinstance(directive, str):
            return {}
        raise _err_bad_patch_type(directive, patch)

    def merge_map(self, original: dict[str, Any] | None, patch: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        if _PATCH in patch:
            return self.map_directive(patch[_PATCH], patch)
        result = dict(original) if original else {}
        skip: set[str] | None = None
        if any(k[:1] == "$" for k in patch):
            skip = set()
            if _RETAIN in patch:
                self.apply_retain_keys(result, patch)
                skip.add(_RETAIN)
            for k in patch:
                if k.startswith(_SEO):
                    skip.add(k)
                    done = self.merge_set_element_order(result, patch, k, ctx)
                    if done is not None:
                        skip.add(done)

        for k, pv in patch.items():
            is_delete_list = False
            if skip is not None:
                if k in skip:
                    continue
                if k.startswith(_DFPL):
                    k = _extract_key(k, _DFPL)
                    is_delete_list = True
            if pv is None:
                result.pop(k, None)
                continue
            ov = result.get(k, _UNSET)
            if ov is _UNSET or type(ov) is not type(pv):
                if not is_delete_list:
                    v = _clean(pv, True)
                    if v is _DROP:
                        result.pop(k, None)
                    else:
                        result[k] = v
                continue
            if type(pv) is dict:
                sub, strategy, _ = self.lookup(ctx, k)
                if strategy == "replace":
                    result[k] = _clean(pv, False)
                else:
                    result[k] = self.merge_map(ov, pv, sub)
            elif type(pv) is list:
                sub, strategy, key = self.lookup(ctx, k)
                result[k] = self.merge_slice_handler(ov, pv, sub, strategy, key, is_delete_list)
            else:
                result[k] = pv
        return result

    def apply_retain_keys(self, result: dict[str, Any], patch: dict[str, Any]) -> None:
        retain = patch[_RETAIN]
        if not isinstance(retain, list):
            raise _bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS)
        keep = {v for v in retain if isinstance(v, str)}
        for k, v in patch.items():
            if k == _RETAIN or v is None or k.startswith((_DFPL, _SEO)):
                continue
            if k not in keep:
                raise _bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS)
        for k in [k for k in result if k not in keep]:
            del result[k]

    def merge_set_element_order(
        self, result: dict[str, Any], patch: dict[str, Any], seo_key: str, ctx: _Ctx
    ) -> str | None:
        """mergePatchIntoOriginal for one ``$setElementOrder/<field>``; returns the field done."""
        order = patch[seo_key]
        if not isinstance(order, list):
            raise _err_bad_arg_type([], order)
        key = _extract_key(seo_key, _SEO)
        original = result.get(key, _UNSET)
        if original == []:
            # Kubernetes' view of the object omits empty lists (omitempty).
            original = _UNSET
        patch_list = patch.get(key, _UNSET)
        if original is not _UNSET and not isinstance(original, list):
            raise _err_bad_arg_type([], original)
        if patch_list is not _UNSET and not isinstance(patch_list, list):
            raise _err_bad_arg_type([], patch_list)
        sub, strategy, merge_key = self.lookup(ctx, key)
        _validate_set_element_order(None if patch_list is _UNSET else patch_list, order, merge_key)
        if original is _UNSET and patch_list is _UNSET:
            return None
        live = [] if original is _UNSET else original
        if patch_list is _UNSET:
            merged = original
        elif original is _UNSET:
            merged = _clean(patch_list, True)
        elif strategy == "merge":
            # The live order Kubernetes uses here is the live list as the
            # in-place list merge left it (see merge_slice_tracked).
            merged, live = self.merge_slice_tracked(original, patch_list, sub, merge_key, False)
        else:
            merged = _clean(patch_list, False)
        if merge_key:
            present, absent = _partition_maps(merged, order, merge_key)
        else:
            present, absent = _partition_primitives(merged, order)
        is_map = _element_is_map(live, [] if patch_list is _UNSET else patch_list)
        result[key] = _normalize_order(present, absent, order, live, merge_key, is_map)
        return key

    def merge_slice_handler(
        self, original: list[Any], patch: list[Any], ctx: _Ctx, strategy: str, key: str, is_delete_list: bool
    ) -> list[Any]:
        if strategy == "merge" or is_delete_list:
            return self.merge_slice(original, patch, ctx, key, is_delete_list)
        return _clean(patch, False)

    def merge_slice(
        self, original: list[Any], patch: list[Any], ctx: _Ctx, key: str, is_delete_list: bool
    ) -> list[Any]:
        return self.merge_slice_tracked(original, patch, ctx, key, is_delete_list)[0]

    def merge_slice_tracked(
        self, original: list[Any], patch: list[Any], ctx: _Ctx, key: str, is_delete_list: bool
    ) -> tuple[list[Any], list[Any]]:
        """mergeSlice; also returns what Go's caller then sees in the live list.

        apimachinery deletes and appends in place, so the caller's view of
        the live list (its length unchanged) afterwards holds the surviving
        items shifted left, then the first appended items, then stale
        entries.  ``$setElementOrder`` ordering uses that view.
        """
        if not original and not patch:
            return original, original
        if not _element_is_map(original, patch):
            if is_delete_list:
                gone = {_hk(v) for v in patch}
                return [v for v in original if _hk(v) not in gone], original
            seen: set[Any] = set()
            merged = []
            for v in original + patch:
                h = _hk(v)
                if h not in seen:
                    seen.add(h)
                    merged.append(v)
            present, absent = _partition_primitives(merged, patch)
            return _normalize_order(present, absent, patch, original, "", False), original

        if not key:
            name = "struct" if isinstance(ctx, str) else ("map" if type(ctx) is tuple else "interface")
            raise _internal(f"cannot merge lists without merge key for {name}")
        survivors, plain, backing, replaced = self.apply_list_directives(original, patch, key)
        merged = self.merge_items(survivors, plain, key, ctx)
        present, absent = _partition_maps(merged, plain, key)
        result = _normalize_order(present, absent, plain, survivors, key, True)
        if backing is None:
            return result, original
        if replaced:
            return result, backing
        n, m = len(original), len(survivors)
        fill = m + min(len(merged) - m, n - m)
        return result, merged[:fill] + backing[fill:n]

    @staticmethod
    def apply_list_directives(
        original: list[Any], patch: list[Any], key: str
    ) -> tuple[list[Any], list[Any], list[Any] | None, bool]:
        """mergeSliceWithSpecialElements: handle ``$patch`` elements of a merging list.

        Returns the surviving live items, the plain patch items, the live
        list's backing array after Go's in-place deletions (None if nothing
        was deleted) and whether the list is replaced.
        """
        plain = []
        replace = False
        backing: list[Any] | None = None
        live = len(original)
        for v in patch:
            if _PATCH not in v:
                plain.append(v)
                continue
            directive = v[_PATCH]
            if directive == "delete" and isinstance(directive, str):
                if key not in v:
                    raise _err_no_merge_key(v, key)
                target = v[key]
                if backing is None:
                    backing = list(original)
                i = 0
                while i < live:
                    o = backing[i]
                    if key in o and _eq(o[key], target):
                        backing[i:live - 1] = backing[i + 1:live]
                        live -= 1
                    else:
                        i += 1
            elif directive == "replace" and isinstance(directive, str):
                replace = True
            elif directive == "merge" and isinstance(directive, str):
                raise _internal("merging lists cannot yet be specified in the patch")
            else:
                raise _err_bad_patch_type(directive, v)
        survivors = original if backing is None else backing[:live]
        if replace:
            return [_clean(v, False) for v in plain], [], backing, True
        return survivors, plain, backing, False

    def merge_items(self, original: list[Any], patch: list[Any], key: str, ctx: _Ctx) -> list[Any]:
        """mergeSliceWithoutSpecialElements: merge items with equal keys, append the rest."""
        result = list(original)
        for v in patch:
            if key not in v:
                raise _err_no_merge_key(v, key)
            target = v[key]
            for i, o in enumerate(result):
                if not isinstance(o, dict):
                    raise _internal(f"value for key {i} is not a map")
                if key in o and _eq(o[key], target):
                    result[i] = self.merge_map(o, v, ctx)
                    break
            else:
                result.append(_clean(v, False))
        return result


def apply_strategic_merge_patch(
    doc: dict[str, Any], patch: Any, schema: SchemaLike | None, type_name: str | None
) -> dict[str, Any]:
    """Apply strategic merge ``patch`` to ``doc`` of definition ``type_name``.

    ``patch`` is the decoded request body; anything but an object (or null,
    which changes nothing) is the 400 the API server returns.
    """
    if patch is None:
        return dict(doc)
    if not isinstance(patch, dict):
        raise _bad_request(f"json: cannot unmarshal {json_kind(patch)} into Go value of type map[string]interface {{}}")
    return _Merger(schema).merge_map(doc, patch, type_name or None)
