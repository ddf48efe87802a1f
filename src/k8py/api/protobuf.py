"""Decode Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

Go clients built on client-go >= 1.32 (kubectl 1.32+ included) send built-in
objects from typed clients as protobuf.  The body is the Kubernetes envelope::

    b"k8s\\x00" + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}

where ``raw`` is the object's own message (``apps.v1.Deployment`` ...).  :func:`decode`
turns such a body into the JSON object that Go's ``encoding/json`` would produce for
the same Go value, i.e. exactly what an older kubectl would have sent as JSON:

* field names, key order, ``omitempty`` and pointer semantics follow the Go structs
  (tables in :mod:`k8py.api.protobuf_schema`).  gogo-protobuf writes every non-pointer
  scalar even when zero, so "present" says nothing for those: a zero value is dropped
  when the JSON tag has ``omitempty``.  Pointer fields (``*int32 replicas``) are only
  written when set, so a present zero (``replicas: 0``) is kept.
* non-pointer structs are always emitted (``"status": {}``, ``"resources": {}``), and a
  zero ``metav1.Time`` is ``null`` (``"creationTimestamp": null``), as in Go.
* absent slices/maps are Go ``nil``: omitted with ``omitempty``, ``null`` without
  (``ClusterRole.rules``).  Protobuf cannot tell an empty slice from a nil one.
* ``int64`` -> int, ``bytes`` -> base64 string, ``Quantity`` -> its string,
  ``IntOrString`` -> int or str, ``Time`` -> ``"2024-01-02T03:04:05Z"`` (seconds only,
  as kube does), ``MicroTime`` -> microsecond RFC 3339, ``Duration`` -> Go duration
  string, ``RawExtension``/``FieldsV1`` -> the embedded JSON value.

Repeated occurrences of a message field are merged (protobuf semantics), scalars are
last-one-wins, packed and unpacked repeated scalars are both accepted, and unknown
field numbers are skipped.  Anything malformed raises :class:`ProtobufError`; the API
server answers those with ``400 BadRequest`` and the message.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import struct
from typing import Any, Callable

from k8py.api.protobuf_schema import (
    ANY_VERSION_KINDS,
    KINDS,
    LIST_WRAPPERS,
    MESSAGES,
    SPECIAL_MESSAGES,
)

__all__ = ["CONTENT_TYPE", "MAGIC", "ProtobufError", "decode", "message_for", "supports"]

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# Wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

_MAX_DEPTH = 100

_INT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "bool", "sint32", "sint64"})
_I64_TYPES = frozenset({"double", "fixed64", "sfixed64"})
_I32_TYPES = frozenset({"float", "fixed32", "sfixed32"})
_SCALARS = _INT_TYPES | _I64_TYPES | _I32_TYPES | {"string", "bytes"}

# Seconds of Go's zero time.Time (0001-01-01T00:00:00Z) since the Unix epoch.
_GO_ZERO_UNIX = -62135596800
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class ProtobufError(Exception):
    """The body is not a valid Kubernetes protobuf message of a supported kind."""


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def message_for(api_version: str, kind: str) -> str | None:
    """Name of the protobuf message for ``apiVersion``/``kind``, or None."""
    name = KINDS.get((api_version, kind))
    if name is None and api_version:
        name = ANY_VERSION_KINDS.get(kind)
    return name


def supports(api_version: str, kind: str) -> bool:
    """Whether :func:`decode` can decode objects of this ``apiVersion``/``kind``."""
    return message_for(api_version, kind) is not None


def decode(body: bytes) -> dict[str, Any]:
    """Decode an enveloped Kubernetes protobuf body into a JSON-style dict."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtobufError("protobuf body must be bytes")
    body = bytes(body)
    if body[:4] != MAGIC:
        raise ProtobufError("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    api_version, kind, raw, content_encoding, content_type = _decode_unknown(body[4:])
    if content_encoding:
        raise ProtobufError(f"unsupported protobuf contentEncoding {content_encoding!r}")
    if content_type and content_type != CONTENT_TYPE:
        raise ProtobufError(f"unsupported protobuf contentType {content_type!r}")
    if not kind:
        raise ProtobufError("Object 'Kind' is missing in protobuf message")
    name = message_for(api_version, kind)
    if name is None:
        raise ProtobufError(f"no kind {kind!r} is registered for version {api_version!r} in protobuf")
    obj: dict[str, Any] = {"kind": kind}
    if api_version:
        obj["apiVersion"] = api_version
    body_obj = _decode_message(raw, name, 0)
    body_obj.pop("kind", None)
    body_obj.pop("apiVersion", None)
    obj.update(body_obj)
    return obj


# ---------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtobufError("unexpected EOF in varint")
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise ProtobufError("integer overflow in varint")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("integer overflow in varint")


# Field value as found on the wire: (wire_type, int value or bytes payload).
_Raw = tuple[int, "int | bytes"]


def _parse_fields(buf: bytes) -> dict[int, list[_Raw]]:
    """Split a message into its fields, keeping every occurrence in order."""
    fields: dict[int, list[_Raw]] = {}
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num <= 0 or num > 0x1FFFFFFF:
            raise ProtobufError(f"illegal field number {num}")
        val: int | bytes
        if wt == _VARINT:
            val, pos = _read_varint(buf, pos)
        elif wt == _LEN:
            n, pos = _read_varint(buf, pos)
            if n > end - pos:
                raise ProtobufError("unexpected EOF in length-delimited field")
            val = buf[pos:pos + n]
            pos += n
        elif wt == _I64:
            if pos + 8 > end:
                raise ProtobufError("unexpected EOF in 64-bit field")
            val = buf[pos:pos + 8]
            pos += 8
        elif wt == _I32:
            if pos + 4 > end:
                raise ProtobufError("unexpected EOF in 32-bit field")
            val = buf[pos:pos + 4]
            pos += 4
        else:
            raise ProtobufError(f"illegal wire type {wt} for field {num}")
        fields.setdefault(num, []).append((wt, val))
    return fields


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _scalar_from_int(t: str, v: int) -> int | bool:
    if t == "int32":
        return _signed(v, 32)
    if t == "int64":
        return _signed(v, 64)
    if t == "uint32":
        return v & 0xFFFFFFFF
    if t == "uint64":
        return v
    if t == "bool":
        return v != 0
    if t == "sint32":
        v &= 0xFFFFFFFF
        return (v >> 1) ^ -(v & 1)
    if t == "sint64":
        return (v >> 1) ^ -(v & 1)
    raise ProtobufError(f"unsupported scalar type {t}")  # pragma: no cover


def _go_float(x: float) -> float | int:
    # Go's encoding/json writes integral floats without a fraction ("1", not "1.0").
    if x != x or x in (float("inf"), float("-inf")):
        raise ProtobufError("unsupported float value in protobuf message")
    return int(x) if x.is_integer() and abs(x) < 1e21 else x


def _scalar_from_fixed(t: str, data: bytes) -> Any:
    if t == "double":
        return _go_float(struct.unpack("<d", data)[0])
    if t == "float":
        return _go_float(struct.unpack("<f", data)[0])
    if t == "fixed64":
        return struct.unpack("<Q", data)[0]
    if t == "sfixed64":
        return struct.unpack("<q", data)[0]
    if t == "fixed32":
        return struct.unpack("<I", data)[0]
    if t == "sfixed32":
        return struct.unpack("<i", data)[0]
    raise ProtobufError(f"unsupported scalar type {t}")  # pragma: no cover


def _expect(wt: int, want: int, what: str) -> None:
    if wt != want:
        raise ProtobufError(f"wrong wireType = {wt} for field {what}")


def _scalar(t: str, wt: int, val: int | bytes, what: str) -> Any:
    """Decode one non-repeated scalar occurrence."""
    if t in _INT_TYPES:
        _expect(wt, _VARINT, what)
        assert isinstance(val, int)
        return _scalar_from_int(t, val)
    if t == "string":
        _expect(wt, _LEN, what)
        assert isinstance(val, bytes)
        return val.decode("utf-8", errors="replace")
    if t == "bytes":
        _expect(wt, _LEN, what)
        assert isinstance(val, bytes)
        return base64.b64encode(val).decode("ascii")
    if t in _I64_TYPES:
        _expect(wt, _I64, what)
    elif t in _I32_TYPES:
        _expect(wt, _I32, what)
    else:  # pragma: no cover - table error
        raise ProtobufError(f"unsupported scalar type {t}")
    assert isinstance(val, bytes)
    return _scalar_from_fixed(t, val)


def _repeated_scalars(t: str, occurrences: list[_Raw], what: str) -> list[Any]:
    """Decode a repeated scalar field, accepting packed and unpacked encodings."""
    out: list[Any] = []
    for wt, val in occurrences:
        if wt == _LEN and t not in ("string", "bytes"):
            assert isinstance(val, bytes)
            pos = 0
            if t in _INT_TYPES:
                while pos < len(val):
                    v, pos = _read_varint(val, pos)
                    out.append(_scalar_from_int(t, v))
            else:
                size = 8 if t in _I64_TYPES else 4
                if len(val) % size:
                    raise ProtobufError(f"bad packed length for field {what}")
                for i in range(0, len(val), size):
                    out.append(_scalar_from_fixed(t, val[i:i + size]))
        else:
            out.append(_scalar(t, wt, val, what))
    return out


def _message_bytes(occurrences: list[_Raw], what: str) -> bytes:
    """Concatenate every occurrence of a message field (= protobuf merge)."""
    parts = []
    for wt, val in occurrences:
        _expect(wt, _LEN, what)
        assert isinstance(val, bytes)
        parts.append(val)
    return parts[0] if len(parts) == 1 else b"".join(parts)


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------


def _decode_unknown(buf: bytes) -> tuple[str, str, bytes, str, str]:
    """runtime.Unknown: 1 typeMeta{1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType."""
    fields = _parse_fields(buf)
    api_version = kind = ""
    if 1 in fields:
        tm = _parse_fields(_message_bytes(fields[1], "Unknown.typeMeta"))
        if 1 in tm:
            api_version = _scalar("string", *tm[1][-1], "TypeMeta.apiVersion")
        if 2 in tm:
            kind = _scalar("string", *tm[2][-1], "TypeMeta.kind")
    raw = b""
    if 2 in fields:
        wt, val = fields[2][-1]
        _expect(wt, _LEN, "Unknown.raw")
        assert isinstance(val, bytes)
        raw = val
    enc = _scalar("string", *fields[3][-1], "Unknown.contentEncoding") if 3 in fields else ""
    ctype = _scalar("string", *fields[4][-1], "Unknown.contentType") if 4 in fields else ""
    return api_version, kind, raw, enc, ctype


# ---------------------------------------------------------------------------
# Messages with a custom JSON form
# ---------------------------------------------------------------------------


def _int_field(fields: dict[int, list[_Raw]], num: int, t: str, what: str) -> int:
    if num not in fields:
        return 0
    v = _scalar(t, *fields[num][-1], what)
    return int(v)


def _format_time(seconds: int, micros: int | None) -> str:
    try:
        t = _EPOCH + _dt.timedelta(seconds=seconds)
    except OverflowError as e:
        raise ProtobufError(f"Time out of range: {seconds}") from e
    if not 0 <= t.year <= 9999:  # pragma: no cover - timedelta already limits this
        raise ProtobufError(f"Time out of range: {seconds}")
    s = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if micros is not None:
        s += f".{micros:06d}"
    return s + "Z"


def _time(data: bytes) -> str | None:
    # metav1.Time: empty message = zero time (JSON null); nanos are dropped by kube.
    if not data:
        return None
    f = _parse_fields(data)
    seconds = _int_field(f, 1, "int64", "Time.seconds")
    _int_field(f, 2, "int32", "Time.nanos")
    if seconds == _GO_ZERO_UNIX:
        return None
    return _format_time(seconds, None)


def _micro_time(data: bytes) -> str | None:
    if not data:
        return None
    f = _parse_fields(data)
    seconds = _int_field(f, 1, "int64", "MicroTime.seconds")
    nanos = _int_field(f, 2, "int32", "MicroTime.nanos")
    seconds += nanos // 1_000_000_000
    nanos %= 1_000_000_000
    if seconds == _GO_ZERO_UNIX and nanos < 1000:
        return None
    return _format_time(seconds, nanos // 1000)


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    # Go time.fmtFrac: print v/10**prec as ".ddd" without trailing zeros.
    digits = ""
    printed = False
    for _ in range(prec):
        d = v % 10
        printed = printed or d != 0
        if printed:
            digits = str(d) + digits
        v //= 10
    return ("." + digits if printed else ""), v


def go_duration(ns: int) -> str:
    """Format nanoseconds like Go's ``time.Duration.String()`` (``1h0m0s``)."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u < 1_000:
            s = f"{u}ns"
        elif u < 1_000_000:
            frac, w = _fmt_frac(u, 3)
            s = f"{w}{frac}µs"
        else:
            frac, w = _fmt_frac(u, 6)
            s = f"{w}{frac}ms"
    else:
        frac, w = _fmt_frac(u, 9)
        secs = w % 60
        w //= 60
        s = f"{secs}{frac}s"
        if w > 0:
            mins = w % 60
            w //= 60
            s = f"{mins}m" + s
            if w > 0:
                s = f"{w}h" + s
    return "-" + s if neg else s


def _duration(data: bytes) -> str:
    f = _parse_fields(data)
    return go_duration(_int_field(f, 1, "int64", "Duration.duration"))


def _quantity(data: bytes) -> str:
    f = _parse_fields(data)
    if 1 not in f:
        return "0"
    s = _scalar("string", *f[1][-1], "Quantity.string")
    return s or "0"


def _int_or_string(data: bytes) -> int | str:
    f = _parse_fields(data)
    typ = _int_field(f, 1, "int64", "IntOrString.type")
    if typ == 0:
        return _int_field(f, 2, "int32", "IntOrString.intVal")
    if typ == 1:
        return _scalar("string", *f[3][-1], "IntOrString.strVal") if 3 in f else ""
    raise ProtobufError(f"impossible IntOrString.Type {typ}")


def _embedded_json(data: bytes, what: str) -> Any:
    f = _parse_fields(data)
    if 1 not in f:
        return None
    wt, raw = f[1][-1]
    _expect(wt, _LEN, what)
    assert isinstance(raw, bytes)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ProtobufError(f"{what} does not hold JSON: {e}") from e


_SPECIAL: dict[str, Callable[[bytes], Any]] = {
    "meta.v1.Time": _time,
    "meta.v1.MicroTime": _micro_time,
    "meta.v1.Duration": _duration,
    "meta.v1.FieldsV1": lambda d: _embedded_json(d, "FieldsV1.Raw"),
    "resource.Quantity": _quantity,
    "intstr.IntOrString": _int_or_string,
    "runtime.RawExtension": lambda d: _embedded_json(d, "RawExtension.raw"),
}
assert set(_SPECIAL) == set(SPECIAL_MESSAGES)


# ---------------------------------------------------------------------------
# Generic, table-driven messages
# ---------------------------------------------------------------------------


def _split_type(t: str) -> tuple[str, str, str | None]:
    """'*int32' -> ('*', 'int32', None); '[]x' -> ('[]', 'x', None); 'map[string]x' -> ('map', 'x', 'string')."""
    if t.startswith("*"):
        return "*", t[1:], None
    if t.startswith("[]"):
        return "[]", t[2:], None
    if t.startswith("map["):
        close = t.index("]")
        return "map", t[close + 1:], t[4:close]
    return "", t, None


def _zero_json(base: str, depth: int) -> Any:
    """JSON of a Go zero value of a non-pointer field of type ``base``."""
    if base in ("string", "bytes"):
        return ""
    if base == "bool":
        return False
    if base in _SCALARS:
        return 0
    return _decode_value(base, b"", depth)


def _is_empty(v: Any) -> bool:
    # Go omitempty for scalars/slices/maps (structs are never empty).
    if v is None or v is False:
        return True
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == 0
    return v in ("", [], {})


def _decode_value(base: str, data: bytes, depth: int) -> Any:
    """Decode one message-typed value (a present occurrence)."""
    if base in LIST_WRAPPERS:
        items = _parse_fields(data).get(1)
        return _repeated_value(LIST_WRAPPERS[base], items, f"{base}.items", depth) if items else []
    return _decode_message(data, base, depth)


def _repeated_value(base: str, occurrences: list[_Raw], what: str, depth: int) -> list[Any]:
    if base in _SCALARS:
        return _repeated_scalars(base, occurrences, what)
    out = []
    for wt, val in occurrences:
        _expect(wt, _LEN, what)
        assert isinstance(val, bytes)
        out.append(_decode_value(base, val, depth))
    return out


def _map_value(key_t: str, base: str, occurrences: list[_Raw], what: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for wt, entry in occurrences:
        _expect(wt, _LEN, what)
        assert isinstance(entry, bytes)
        ef = _parse_fields(entry)
        key: Any = _scalar(key_t, *ef[1][-1], f"{what}.key") if 1 in ef else _zero_json(key_t, depth)
        if 2 in ef:
            if base in _SCALARS:
                value = _scalar(base, *ef[2][-1], f"{what}.value")
            else:
                value = _decode_value(base, _message_bytes(ef[2], f"{what}.value"), depth)
        elif base == "bytes":
            value = ""  # gogo initialises absent map bytes values to []byte{}
        else:
            value = _zero_json(base, depth)
        if not isinstance(key, str):
            key = "true" if key is True else "false" if key is False else str(key)
        out[key] = value
    return out


def _decode_message(data: bytes, name: str, depth: int) -> Any:
    """Decode ``data`` as message ``name`` into its Go-JSON form."""
    depth += 1
    if depth > _MAX_DEPTH:
        raise ProtobufError("protobuf message nested too deeply")
    special = _SPECIAL.get(name)
    if special is not None:
        return special(data)
    spec = MESSAGES.get(name)
    if spec is None:  # pragma: no cover - table error
        raise ProtobufError(f"no protobuf schema for message {name}")
    fields = _parse_fields(data) if data else {}
    out: dict[str, Any] = {}
    for num, (jname, t, flags) in spec.items():
        what = f"{name}.{jname or num}"
        mod, base, key_t = _split_type(t)
        occ = fields.get(num)
        omitempty = "o" in flags
        if "i" in flags:
            sub = _decode_value(base, _message_bytes(occ, what) if occ else b"", depth)
            if isinstance(sub, dict):
                for k, v in sub.items():
                    out.setdefault(k, v)
            continue
        value: Any
        if mod == "map":
            if not occ:
                if omitempty:
                    continue
                value = None
            else:
                value = _map_value(key_t or "string", base, occ, what, depth)
                if omitempty and not value:
                    continue
        elif mod == "[]" or base in LIST_WRAPPERS and mod == "":
            if base in LIST_WRAPPERS and mod == "":
                # A Go named slice (e.g. metav1.Verbs): nil unless the wrapper is present.
                if not occ:
                    if omitempty:
                        continue
                    value = None
                else:
                    value = _decode_value(base, _message_bytes(occ, what), depth)
                    if omitempty and not value:
                        continue
            elif not occ:
                if omitempty:
                    continue
                value = None
            else:
                value = _repeated_value(base, occ, what, depth)
        elif mod == "*":
            if not occ:
                if omitempty:
                    continue
                value = None
            elif base in _SCALARS:
                value = _scalar(base, *occ[-1], what)
            else:
                value = _decode_value(base, _message_bytes(occ, what), depth)
        elif base == "bytes":
            # []byte: nil when absent, non-nil (maybe empty) when present.
            if not occ:
                if omitempty:
                    continue
                value = None
            else:
                value = _scalar(base, *occ[-1], what)
                if omitempty and not value:
                    continue
        elif base in _SCALARS:
            value = _scalar(base, *occ[-1], what) if occ else _zero_json(base, depth)
            if omitempty and _is_empty(value):
                continue
        else:
            # Non-pointer struct: always emitted, even with omitempty.
            value = _decode_value(base, _message_bytes(occ, what) if occ else b"", depth)
        out[jname] = value
    return out
