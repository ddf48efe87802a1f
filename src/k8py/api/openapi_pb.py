"""Protobuf encoding of a Swagger 2.0 document as gnostic's ``openapi_v2.Document``.

kubectl (through client-go's ``DiscoveryClient.OpenAPISchema``) fetches
``/openapi/v2`` with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
and decodes the body with ``proto.Unmarshal``; a JSON body fails to decode.
This module writes the subset of the message types a Kubernetes document
uses: info, paths (operations, parameters, responses), definitions (schemas)
and vendor extensions (``x-kubernetes-*``, carried as YAML text; JSON text is
valid YAML).

Field numbers follow gnostic's ``openapiv2/OpenAPIv2.proto``.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Callable, Iterable

# ---------------------------------------------------------------------------
# wire format
# ---------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _varint((num << 3) | wire)


class _Msg:
    """Accumulates the fields of one message."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def string(self, num: int, value: Any) -> None:
        if value is None or value == "":
            return
        data = str(value).encode()
        self.buf += _key(num, 2) + _varint(len(data)) + data

    def strings(self, num: int, values: Iterable[Any] | None) -> None:
        for v in values or ():
            data = str(v).encode()
            self.buf += _key(num, 2) + _varint(len(data)) + data

    def boolean(self, num: int, value: Any) -> None:
        if value:
            self.buf += _key(num, 0) + b"\x01"

    def int64(self, num: int, value: Any) -> None:
        if value:
            self.buf += _key(num, 0) + _varint(int(value))

    def double(self, num: int, value: Any) -> None:
        if value:
            self.buf += _key(num, 1) + struct.pack("<d", float(value))

    def message(self, num: int, data: bytes | None, always: bool = False) -> None:
        if data is None or (not data and not always):
            return
        self.buf += _key(num, 2) + _varint(len(data)) + data

    def bytes(self) -> bytes:
        return bytes(self.buf)


# ---------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------


def _any(value: Any) -> bytes:
    m = _Msg()
    m.string(2, json.dumps(value, separators=(",", ":")) + "\n")  # Any.yaml
    return m.bytes()


def _named(name: str, value: bytes) -> bytes:
    m = _Msg()
    m.string(1, name)
    m.message(2, value, always=True)
    return m.bytes()


def _extensions(m: _Msg, num: int, obj: dict[str, Any]) -> None:
    for k, v in obj.items():
        if k.startswith("x-"):
            m.message(num, _named(k, _any(v)))


def _schema(s: dict[str, Any]) -> bytes:
    m = _Msg()
    m.string(1, s.get("$ref"))
    m.string(2, s.get("format"))
    m.string(3, s.get("title"))
    m.string(4, s.get("description"))
    if "default" in s:
        m.message(5, _any(s["default"]), always=True)
    m.double(6, s.get("multipleOf"))
    m.double(7, s.get("maximum"))
    m.boolean(8, s.get("exclusiveMaximum"))
    m.double(9, s.get("minimum"))
    m.boolean(10, s.get("exclusiveMinimum"))
    m.int64(11, s.get("maxLength"))
    m.int64(12, s.get("minLength"))
    m.string(13, s.get("pattern"))
    m.int64(14, s.get("maxItems"))
    m.int64(15, s.get("minItems"))
    m.boolean(16, s.get("uniqueItems"))
    m.strings(19, s.get("required"))
    for e in s.get("enum") or ():
        m.message(20, _any(e), always=True)
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        sub = _Msg()
        sub.message(1, _schema(ap), always=True)
        m.message(21, sub.bytes(), always=True)
    elif isinstance(ap, bool):
        sub = _Msg()
        sub.buf += _key(2, 0) + (b"\x01" if ap else b"\x00")
        m.message(21, sub.bytes(), always=True)
    typ = s.get("type")
    if typ:
        t = _Msg()
        t.strings(1, [typ] if isinstance(typ, str) else typ)
        m.message(22, t.bytes())
    items = s.get("items")
    if isinstance(items, dict):
        it = _Msg()
        it.message(1, _schema(items), always=True)
        m.message(23, it.bytes(), always=True)
    for sub_schema in s.get("allOf") or ():
        m.message(24, _schema(sub_schema), always=True)
    props = s.get("properties")
    if props is not None:
        p = _Msg()
        for name, value in props.items():
            p.message(1, _named(name, _schema(value)))
        m.message(25, p.bytes(), always=True)
    m.boolean(27, s.get("readOnly"))
    _extensions(m, 31, s)
    return m.bytes()


def _parameter(p: dict[str, Any]) -> bytes:
    """A ParametersItem holding a Parameter (or a JsonReference)."""
    item = _Msg()
    if "$ref" in p:
        ref = _Msg()
        ref.string(1, p["$ref"])
        item.message(2, ref.bytes(), always=True)
        return item.bytes()
    param = _Msg()
    where = p.get("in")
    if where == "body":
        body = _Msg()
        body.string(1, p.get("description"))
        body.string(2, p.get("name"))
        body.string(3, "body")
        body.boolean(4, p.get("required"))
        body.message(5, _schema(p.get("schema") or {}), always=True)
        _extensions(body, 6, p)
        param.message(1, body.bytes(), always=True)
    else:
        sub = _Msg()
        if where == "path":
            # PathParameterSubSchema: required=1 in=2 description=3 name=4 type=5 format=6 unique_items=19
            sub.boolean(1, p.get("required"))
            sub.string(2, where)
            sub.string(3, p.get("description"))
            sub.string(4, p.get("name"))
            sub.string(5, p.get("type"))
            sub.string(6, p.get("format"))
            sub.boolean(19, p.get("uniqueItems"))
            _extensions(sub, 22, p)
            variant = 4
        else:
            # QueryParameterSubSchema: required=1 in=2 description=3 name=4 type=6 format=7 unique_items=20
            sub.boolean(1, p.get("required"))
            sub.string(2, where)
            sub.string(3, p.get("description"))
            sub.string(4, p.get("name"))
            sub.string(6, p.get("type"))
            sub.string(7, p.get("format"))
            sub.boolean(20, p.get("uniqueItems"))
            _extensions(sub, 23, p)
            variant = 3 if where == "query" else 1  # header=1
        non_body = _Msg()
        non_body.message(variant, sub.bytes(), always=True)
        param.message(2, non_body.bytes(), always=True)
    item.message(1, param.bytes(), always=True)
    return item.bytes()


def _responses(responses: dict[str, Any]) -> bytes:
    m = _Msg()
    for code, r in responses.items():
        if code.startswith("x-"):
            continue
        resp = _Msg()
        resp.string(1, r.get("description"))
        if "schema" in r:
            item = _Msg()
            item.message(1, _schema(r["schema"]), always=True)
            resp.message(2, item.bytes(), always=True)
        _extensions(resp, 5, r)
        value = _Msg()
        value.message(1, resp.bytes(), always=True)
        m.message(1, _named(code, value.bytes()))
    _extensions(m, 2, responses)
    return m.bytes()


def _operation(op: dict[str, Any]) -> bytes:
    m = _Msg()
    m.strings(1, op.get("tags"))
    m.string(2, op.get("summary"))
    m.string(3, op.get("description"))
    m.string(5, op.get("operationId"))
    m.strings(6, op.get("produces"))
    m.strings(7, op.get("consumes"))
    for p in op.get("parameters") or ():
        m.message(8, _parameter(p), always=True)
    m.message(9, _responses(op.get("responses") or {}), always=True)
    m.strings(10, op.get("schemes"))
    m.boolean(11, op.get("deprecated"))
    _extensions(m, 13, op)
    return m.bytes()


_METHODS: dict[str, int] = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    m = _Msg()
    m.string(1, item.get("$ref"))
    for method, num in _METHODS.items():
        if method in item:
            m.message(num, _operation(item[method]), always=True)
    for p in item.get("parameters") or ():
        m.message(9, _parameter(p), always=True)
    _extensions(m, 10, item)
    return m.bytes()


def _repeated_named(num: int, entries: dict[str, Any], enc: Callable[[Any], bytes]) -> bytes:
    m = _Msg()
    for name, value in entries.items():
        m.message(num, _named(name, enc(value)))
    return m.bytes()


def encode_document(doc: dict[str, Any]) -> bytes:
    """Encode a Swagger 2.0 document (as produced by ``openapi._build_v2``)."""
    m = _Msg()
    m.string(1, doc.get("swagger", "2.0"))
    info = doc.get("info") or {}
    im = _Msg()
    im.string(1, info.get("title"))
    im.string(2, info.get("version"))
    im.string(3, info.get("description"))
    m.message(2, im.bytes(), always=True)
    m.string(3, doc.get("host"))
    m.string(4, doc.get("basePath"))
    m.strings(5, doc.get("schemes"))
    m.strings(6, doc.get("consumes"))
    m.strings(7, doc.get("produces"))
    m.message(8, _repeated_named(2, doc.get("paths") or {}, _path_item), always=True)
    m.message(9, _repeated_named(1, doc.get("definitions") or {}, _schema), always=True)
    _extensions(m, 16, doc)
    return m.bytes()
