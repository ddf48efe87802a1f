"""The three patch types of the Kubernetes API, applied as kube-apiserver does.

* :func:`json_patch` -- RFC 6902 JSON Patch with the exact semantics (and
  quirks) of ``gopkg.in/evanphx/json-patch.v4``, which the API server uses.
* :func:`merge_patch` -- RFC 7386 JSON Merge Patch, again as evanphx v4 does it.
* :func:`strategic_merge_patch` -- Kubernetes' strategic merge patch
  (``k8s.io/apimachinery/pkg/util/strategicpatch``); implemented in
  :mod:`k8py.api.strategicpatch`.
* :func:`parse_patch_body` -- Content-Type negotiation and body decoding of a
  PATCH request, with the API server's status codes and messages.

Every failure is a :class:`PatchError` carrying the HTTP code, the Status
``reason`` and the Status ``message`` that Kubernetes returns for it
(:meth:`PatchError.status` builds the whole ``metav1.Status``).

Inputs are never mutated.  Results share the subtrees the patch did not touch
with the original document, so callers that mutate a result in place must
copy what they mutate (see :func:`deep_copy`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import yaml

from k8py.api import gofmt
from k8py.api.status import failure_status

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "JSON_PATCH_MAX_COPY_BYTES",
    "PatchError",
    "deep_copy",
    "json_patch",
    "merge_patch",
    "parse_patch_body",
    "patch_decode_error",
    "strategic_merge_patch",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH_YAML = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

# Media types accepted on PATCH of built-in resources and of custom resources.
NATIVE_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH_YAML)
CUSTOM_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH_YAML)
_KIND_OF_TYPE = {
    JSON_PATCH: "json",
    MERGE_PATCH: "merge",
    STRATEGIC_MERGE_PATCH: "strategic",
    APPLY_PATCH_YAML: "apply",
}

MAX_JSON_PATCH_OPERATIONS = 10000  # apiserver maxJSONPatchOperations
JSON_PATCH_MAX_COPY_BYTES = 3 * 1024 * 1024  # apiserver default --json-patch-max-copy-bytes

_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
}
# NewGenericServerResponse replaces the server's text for these codes.
_GENERIC_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    422: "the server rejected our request due to an error in our request",
}


class PatchError(Exception):
    """A patch failure, with the HTTP status Kubernetes answers it with.

    ``message`` is the ``Status.message`` kube-apiserver sends, ``reason`` the
    ``Status.reason`` ("" for errors kube does not classify, which it serves
    as 500 with no reason), ``detail`` the underlying library error (differs
    from ``message`` when Kubernetes hides it, e.g. a failed JSON-patch op),
    and ``details`` the ``Status.details`` object or None when kube omits it.
    """

    code: int
    message: str
    reason: str
    detail: str
    details: dict[str, Any] | None

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = _REASONS.get(code, "") if reason is None else reason
        self.detail = message if detail is None else detail
        self.details = details

    @classmethod
    def generic(cls, code: int, server_message: str) -> PatchError:
        """Like apimachinery's ``NewGenericServerResponse(code, "", {}, "", msg, 0, false)``."""
        message = _GENERIC_MESSAGES.get(code, server_message)
        return cls(code, message, detail=server_message, details={})

    def status(self) -> dict[str, Any]:
        """The ``metav1.Status`` body Kubernetes responds with."""
        return failure_status(self.message, self.code, self.reason, self.details)

    def __repr__(self) -> str:
        return f"PatchError({self.code}, {self.message!r})"


# --------------------------------------------------------------------------
# Go-compatible formatting (used in error messages copied from Go code)

def go_type(v: Any) -> str:
    """The Go type name ``reflect.TypeOf`` reports for a decoded JSON value."""
    return gofmt.type_name(v, nil="%!s(<nil>)")


def json_kind(v: Any) -> str:
    """The JSON value kind encoding/json names in an UnmarshalTypeError."""
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


def go_fmt_s(v: Any) -> str:
    """Go's ``%s`` of an ``interface{}`` holding a decoded JSON value."""
    if isinstance(v, str):
        return v
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, (bool, int, float)):
        return f"%!s({go_type(v)}={gofmt.value(v)})"
    return gofmt.value(v)


def _compact_json(v: Any) -> str:
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def deep_copy(v: Any) -> Any:
    """Deep copy of a decoded JSON value (dicts and lists only are copied)."""
    if isinstance(v, dict):
        return {k: deep_copy(x) if isinstance(x, (dict, list)) else x for k, x in v.items()}
    if isinstance(v, list):
        return [deep_copy(x) if isinstance(x, (dict, list)) else x for x in v]
    return v


def patch_decode_error(patched: Any, detail: str) -> PatchError:
    """The 422 the API server returns when a patched document does not decode.

    Mirrors ``errors.NewInvalid(schema.GroupKind{}, "", field.Invalid(
    field.NewPath("patch"), string(patchedJS), err.Error()))`` in the patch
    handler; ``patched`` is the patched document (or its JSON text).
    """
    text = patched if isinstance(patched, str) else _compact_json(patched)
    body = f"Invalid value: {gofmt.quote(text, style='json')}: {detail}"
    return PatchError(
        422,
        f' "" is invalid: patch: {body}',
        details={"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]},
    )


def _not_an_object(value: Any) -> str:
    """The decoder's error for a patched document that is not a JSON object."""
    return (
        f"couldn't get version/kind; json parse error: json: cannot unmarshal {json_kind(value)} into Go value of type "
        'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
    )


# --------------------------------------------------------------------------
# Request bodies

def _loads_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass

    def _reject(name: str) -> Any:
        raise ValueError(name)

    # encoding/json accepts a few documents orjson refuses (lone surrogate
    # escapes, which it decodes as U+FFFD; nesting deeper than 1024).
    try:
        return _fix_surrogates(json.loads(body, parse_constant=_reject))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PatchError(400, "invalid JSON patch") from None


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _fix_surrogates(v: Any) -> Any:
    if isinstance(v, str):
        return _SURROGATE_RE.sub("\ufffd", v)
    if isinstance(v, dict):
        return {_fix_surrogates(k): _fix_surrogates(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fix_surrogates(x) for x in v]
    return v


class _YAMLLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that, like sigs.k8s.io/yaml, keeps timestamps as strings."""


_YAMLLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_key(k: Any) -> str:
    """How sigs.k8s.io/yaml turns a non-string mapping key into a JSON key."""
    if isinstance(k, str):
        return k
    if k is None:
        return "null"
    return gofmt.value(k)


def _yaml_mapping(loader: Any, node: Any) -> dict[str, Any]:
    # Keys become strings while constructing, so that ``true`` and ``1``
    # stay distinct keys as they are in Go.
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[_yaml_key(key)] = loader.construct_object(value_node, deep=True)
    return out


_YAMLLoader.add_constructor("tag:yaml.org,2002:map", _yaml_mapping)


def _yaml_to_json_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {_yaml_key(k): _yaml_to_json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_yaml_to_json_value(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    if not isinstance(v, (str, int, float, bool)) and v is not None:
        return str(v)
    return v


def _parse_apply(body: bytes) -> dict[str, Any]:
    obj: Any = None
    parsed = False
    if body.lstrip()[:1] == b"{":
        try:
            obj, parsed = orjson.loads(body), True
        except orjson.JSONDecodeError:
            pass
    if not parsed:
        try:
            docs = yaml.load_all(body, Loader=_YAMLLoader)
            obj = _yaml_to_json_value(next(iter(docs), None))
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e)
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise PatchError(
                400, f"error encoding patch: error converting YAML to JSON: yaml: {where}{problem}"
            ) from None
        except (ValueError, RecursionError) as e:
            raise PatchError(400, f"error encoding patch: error converting YAML to JSON: yaml: {e}") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise PatchError(
            400,
            "error decoding patch: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            f"{json_kind(obj)} into Go value of type map[string]interface {{}}",
        )
    return obj


def _restful_accepts(content_type: str, consumes: tuple[str, ...]) -> bool:
    """go-restful's Route.matchesContentType for a PATCH route."""
    mime_types = content_type or "application/octet-stream"
    for mime in mime_types.split(","):
        mime = mime.split(";", 1)[0].strip(" ")
        if mime in consumes:
            return True
    return False


def parse_patch_body(content_type: str, body: bytes, *, custom_resource: bool = False) -> tuple[str, object]:
    """Decode a PATCH request body according to its Content-Type header.

    Returns ``(kind, patch)`` with kind ``"json"``, ``"merge"``,
    ``"strategic"`` or ``"apply"``.  For the first three ``patch`` is the
    decoded JSON value as sent (its shape is checked by :func:`json_patch`,
    :func:`merge_patch` and :func:`strategic_merge_patch`, which is where
    Kubernetes checks it -- after the object was found).  For ``"apply"`` it
    is the object parsed from YAML or JSON.

    ``custom_resource`` selects the custom-resource handler, which accepts
    no strategic merge patch and reports unknown media types differently.
    Raises :class:`PatchError` 415 for unsupported media types and 400 for
    bodies that do not parse.
    """
    content_type = content_type or ""
    supported = CUSTOM_PATCH_TYPES if custom_resource else NATIVE_PATCH_TYPES
    if not custom_resource and not _restful_accepts(content_type, supported):
        # Built-in resources are routed by go-restful, which rejects the
        # request before the patch handler sees it.
        if body:
            raise PatchError.generic(415, "415: Unsupported Media Type")
        raise PatchError.generic(415, "415: Unsupported Media Type\n\nAvailable representations: ")
    media = content_type
    idx = media.find(";")
    if idx > 0:
        media = media[:idx]
    kind = _KIND_OF_TYPE.get(media)
    if kind is None or media not in supported:
        raise PatchError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(supported),
        )
    if kind == "apply":
        return kind, _parse_apply(body)
    return kind, _loads_json(body)


# --------------------------------------------------------------------------
# JSON merge patch (RFC 7386, evanphx/json-patch v4 MergePatch)

def _prune_nulls(v: Any) -> Any:
    """Copy of a patch value without null object members (array nulls stay)."""
    if isinstance(v, dict):
        return {k: _prune_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune_nulls(x) for x in v]
    return v


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if cur is None or not isinstance(cur, dict):
            out[k] = _prune_nulls(v)
        elif isinstance(v, dict):
            out[k] = _merge_docs(cur, v)
        else:
            out[k] = deep_copy(v)
    return out


def merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON merge patch (``application/merge-patch+json``)."""
    if isinstance(patch, dict):
        return _merge_docs(doc, patch)
    if isinstance(patch, list):
        # evanphx returns the (pruned) array as the new document, which then
        # fails to decode into the object.
        pruned = _prune_nulls(patch)
        raise patch_decode_error(pruned, _not_an_object(pruned))
    raise PatchError(400, "Invalid JSON Patch")


# --------------------------------------------------------------------------
# JSON patch (RFC 6902, evanphx/json-patch v4)

class _OpError(Exception):
    pass


_MISSING = "missing value"
_INVALID_INDEX = "invalid index referenced"
_TEST_FAILED = "test failed"
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_ESCAPE_RE = re.compile(r"~[01]")
_INT64_MAX = (1 << 63) - 1


def _unescape(token: str) -> str:
    if "~" not in token:
        return token
    return _ESCAPE_RE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


def _atoi(s: str) -> int:
    """strconv.Atoi, raising its error text."""
    if not _INT_RE.match(s):
        raise _OpError(f"strconv.Atoi: parsing {gofmt.quote(s, style='json')}: invalid syntax")
    n = int(s)
    if not -_INT64_MAX - 1 <= n <= _INT64_MAX:
        raise _OpError(f"strconv.Atoi: parsing {gofmt.quote(s, style='json')}: value out of range")
    return n


def _invalid_index(idx: int) -> _OpError:
    return _OpError(f"Unable to access invalid index: {idx}: {_INVALID_INDEX}")


def _ary_get_index(ary: list[Any], key: str) -> int:
    idx = _atoi(key)
    if idx < 0:
        if idx < -len(ary):
            raise _invalid_index(idx)
        idx += len(ary)
    if idx >= len(ary):
        raise _invalid_index(idx)
    return idx


def _json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality; numbers compare by kind and value as evanphx does."""
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not _json_equal(v, b[k]):
                return False
        return True
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_json_equal, a, b))
    return type(a) is type(b) and a == b


class _JSONPatcher:
    """Applies operations copy-on-write: containers are copied before first change."""

    __slots__ = ("root", "owned", "copied")

    def __init__(self, doc: Any) -> None:
        self.root: Any = dict(doc) if isinstance(doc, dict) else list(doc)
        self.owned: set[int] = {id(self.root)}
        self.copied = 0

    def _own(self, v: Any) -> Any:
        v = dict(v) if isinstance(v, dict) else list(v)
        self.owned.add(id(v))
        return v

    def find(self, path: str, write: bool) -> tuple[Any, str]:
        """evanphx findObject: the container of the last token (None if absent)."""
        split = path.split("/")
        if len(split) < 2:
            return None, ""
        node = self.root
        for part in split[1:-1]:
            part = _unescape(part)
            if isinstance(node, dict):
                nxt = node.get(part)
                slot: Any = part
            else:
                try:
                    slot = _ary_get_index(node, part)
                except _OpError:
                    return None, ""
                nxt = node[slot]
            if not isinstance(nxt, (dict, list)):
                return None, ""
            if write and id(nxt) not in self.owned:
                nxt = self._own(nxt)
                node[slot] = nxt
            node = nxt
        return node, _unescape(split[-1])

    # container primitives -------------------------------------------------
    @staticmethod
    def get(con: Any, key: str) -> Any:
        if isinstance(con, dict):
            return con.get(key)
        return con[_ary_get_index(con, key)]

    @staticmethod
    def add(con: Any, key: str, val: Any) -> None:
        if isinstance(con, dict):
            con[key] = val
            return
        if key == "-":
            con.append(val)
            return
        try:
            idx = _atoi(key)
        except _OpError as e:
            raise _OpError(f"value was not a proper array index: '{key}': {e}") from None
        size = len(con) + 1
        if idx >= size:
            raise _invalid_index(idx)
        if idx < 0:
            if idx < -size:
                raise _invalid_index(idx)
            idx += size
        con.insert(idx, val)

    @staticmethod
    def remove(con: Any, key: str) -> None:
        if isinstance(con, dict):
            if key not in con:
                raise _OpError(f"Unable to remove nonexistent key: {key}: {_MISSING}")
            del con[key]
            return
        idx = _atoi(key)
        if idx >= len(con):
            raise _invalid_index(idx)
        if idx < 0:
            if idx < -len(con):
                raise _invalid_index(idx)
            idx += len(con)
        del con[idx]

    @staticmethod
    def set(con: Any, key: str, val: Any) -> None:
        if isinstance(con, dict):
            con[key] = val
            return
        idx = _atoi(key)
        if idx < 0:
            if idx < -len(con):
                raise _invalid_index(idx)
            idx += len(con)
        con[idx] = val

    # operations -------------------------------------------------------------
    def apply(self, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if not isinstance(kind, str):
            kind = "unknown"
        handler = self._OPS.get(kind)
        if handler is None:
            raise _OpError(f"Unexpected kind: {kind}")
        handler(self, op)

    def op_add(self, op: dict[str, Any]) -> None:
        path = _op_str(op, "path")
        if path is None or isinstance(path, _OpError):
            raise _OpError(f"add operation failed to decode path: {_MISSING}")
        con, key = self.find(path, True)
        if con is None:
            raise _OpError(f'add operation does not apply: doc is missing path: "{path}": {_MISSING}')
        try:
            self.add(con, key, op.get("value"))
        except _OpError as e:
            raise _OpError(f"error in add for path: '{path}': {e}") from None

    def op_remove(self, op: dict[str, Any]) -> None:
        path = _op_str(op, "path")
        if path is None or isinstance(path, _OpError):
            raise _OpError(f"remove operation failed to decode path: {_MISSING}")
        con, key = self.find(path, True)
        if con is None:
            raise _OpError(f'remove operation does not apply: doc is missing path: "{path}": {_MISSING}')
        try:
            self.remove(con, key)
        except _OpError as e:
            raise _OpError(f"error in remove for path: '{path}': {e}") from None

    def op_replace(self, op: dict[str, Any]) -> None:
        path = _decode_str(op, "path", "replace operation failed to decode path")
        if path == "":
            val = op.get("value")
            if not isinstance(val, (dict, list)):
                raise _OpError("replace operation value must be object or array: %!w(<nil>)")
            self.root = self._own(val)
            return
        con, key = self.find(path, True)
        if con is None:
            raise _OpError(f"replace operation does not apply: doc is missing path: {path}: {_MISSING}")
        try:
            self.get(con, key)
        except _OpError:
            raise _OpError(f"replace operation does not apply: doc is missing key: {path}: {_MISSING}") from None
        try:
            self.set(con, key, op.get("value"))
        except _OpError as e:
            raise _OpError(f"error in remove for path: '{path}': {e}") from None

    def op_move(self, op: dict[str, Any]) -> None:
        frm = _decode_str(op, "from", "move operation failed to decode from")
        con, key = self.find(frm, True)
        if con is None:
            raise _OpError(f"move operation does not apply: doc is missing from path: {frm}: {_MISSING}")
        try:
            val = self.get(con, key)
            self.remove(con, key)
        except _OpError as e:
            raise _OpError(f"error in move for path: '{key}': {e}") from None
        path = _decode_str(op, "path", "move operation failed to decode path")
        con, key = self.find(path, True)
        if con is None:
            raise _OpError(f"move operation does not apply: doc is missing destination path: {path}: {_MISSING}")
        try:
            self.add(con, key, val)
        except _OpError as e:
            raise _OpError(f"error in move for path: '{path}': {e}") from None

    def op_test(self, op: dict[str, Any]) -> None:
        path = _decode_str(op, "path", "test operation failed to decode path")
        if path == "":
            if "value" in op and _json_equal(self.root, op["value"]):
                return
            raise _OpError(f"testing value {path} failed: {_TEST_FAILED}")
        con, key = self.find(path, False)
        if con is None:
            raise _OpError(f"test operation does not apply: is missing path: {path}: {_MISSING}")
        try:
            val = self.get(con, key)
        except _OpError as e:
            raise _OpError(f"error in test for path: '{path}': {e}") from None
        expected = op.get("value")
        if val is None:
            if expected is None:
                return
        elif "value" in op and _json_equal(val, expected):
            return
        raise _OpError(f"testing value {path} failed: {_TEST_FAILED}")

    def op_copy(self, op: dict[str, Any]) -> None:
        frm = _decode_str(op, "from", "copy operation failed to decode from")
        con, key = self.find(frm, False)
        if con is None:
            raise _OpError(f"copy operation does not apply: doc is missing from path: {frm}: {_MISSING}")
        try:
            val = self.get(con, key)
        except _OpError as e:
            raise _OpError(f"error in copy for from: '{frm}': {e}") from None
        path = _op_str(op, "path")
        if path is None or isinstance(path, _OpError):
            raise _OpError(f"copy operation failed to decode path: {_MISSING}")
        con, key = self.find(path, True)
        if con is None:
            raise _OpError(f"copy operation does not apply: doc is missing destination path: {path}: {_MISSING}")
        if val is not None:
            self.copied += len(_compact_json(val).encode())
            if self.copied > JSON_PATCH_MAX_COPY_BYTES:
                raise _OpError(
                    f"Unable to complete the copy, the accumulated size increase of copy is {self.copied}, "
                    f"exceeding the limit {JSON_PATCH_MAX_COPY_BYTES}"
                )
            val = deep_copy(val)
        try:
            self.add(con, key, val)
        except _OpError as e:
            raise _OpError(f"error while adding value during copy: {e}") from None

    _OPS = {
        "add": op_add,
        "remove": op_remove,
        "replace": op_replace,
        "move": op_move,
        "test": op_test,
        "copy": op_copy,
    }


def _op_str(op: dict[str, Any], field: str) -> str | _OpError | None:
    """Operation.Path/From: the string, None when absent/null, an error when not a string."""
    v = op.get(field)
    if v is None or isinstance(v, str):
        return v
    return _OpError(f"json: cannot unmarshal {json_kind(v)} into Go value of type string")


def _decode_str(op: dict[str, Any], field: str, prefix: str) -> str:
    v = _op_str(op, field)
    if isinstance(v, str):
        return v
    if v is None:
        sep = " " if field == "path" else ", "
        raise _OpError(f"{prefix}: operation{sep}missing {field} field: {_MISSING}")
    raise _OpError(f"{prefix}: {v}")


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch (``application/json-patch+json``).

    ``ops`` is the decoded request body.  A body that is not an array of
    objects is a 400; more than 10000 operations a 413; a failing operation a
    422 whose Status message is kube's generic "the server rejected our
    request due to an error in our request" (the evanphx error text is in
    :attr:`PatchError.detail`).
    """
    if ops is None:
        ops = []
    if not isinstance(ops, list):
        raise PatchError(400, f"json: cannot unmarshal {json_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise PatchError(
                400, f"json: cannot unmarshal {json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            413,
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
        )
    patcher = _JSONPatcher(doc)
    for op in ops:
        try:
            patcher.apply(op or {})
        except _OpError as e:
            raise PatchError.generic(422, str(e)) from None
    if not isinstance(patcher.root, dict):
        raise patch_decode_error(patcher.root, _not_an_object(patcher.root))
    return patcher.root


# --------------------------------------------------------------------------
# Strategic merge patch

def strategic_merge_patch(doc: dict[str, Any], patch: Any, schema: Any, type_name: str | None) -> dict[str, Any]:
    """Apply a strategic merge patch (``application/strategic-merge-patch+json``).

    ``schema`` needs only ``field(type_name, field_name) -> FieldInfo | None``;
    ``type_name`` is the definition name of ``doc``'s type (e.g.
    ``"io.k8s.api.core.v1.Pod"``).  See :mod:`k8py.api.strategicpatch`.
    """
    from k8py.api.strategicpatch import apply_strategic_merge_patch

    return apply_strategic_merge_patch(doc, patch, schema, type_name)
