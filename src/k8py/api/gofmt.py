"""Go-compatible formatting of decoded JSON values, for error messages copied from Kubernetes.

Kubernetes builds many of its messages with Go's ``fmt`` and ``strconv``; the
functions here render the Python values json/orjson decode to (dict, list,
str, int, float, bool, None) the way Go renders the matching Go values:

- ``quote``: ``strconv.Quote`` (and ``%q``);
- ``value``: ``%v`` of an ``interface{}`` holding the value;
- ``sharp``: ``%#v`` of an ``interface{}`` holding the value;
- ``float_str``: a float64, in one of the three ways callers need (see there).

Maps print with their keys sorted, as Go's ``fmt`` does.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

__all__ = ["float_str", "quote", "sharp", "value"]

_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def quote(s: str, *, style: str = "go") -> str:
    """Go's ``strconv.Quote`` of ``s``.

    Printable characters (Python's ``str.isprintable``, non-ASCII ones
    included) stay as they are; ``"`` and ``\\`` are escaped, the rest
    becomes ``\\n``-style, ``\\xhh``, ``\\uhhhh`` or ``\\Uhhhhhhhh``.

    ``style="json"`` is the older approximation the patch module used
    (``json.dumps`` without ASCII escaping); it differs only for control and
    other non-printable characters, and is kept so its messages do not change.
    """
    if style == "json":
        return json.dumps(s, ensure_ascii=False)
    if s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _ESC:
            out.append(_ESC[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _float_v(f: float) -> str:
    """``%v`` of a float64: ``strconv.FormatFloat(f, 'g', -1, 64)``."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits_t, exp = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    assert isinstance(exp, int)
    exp10 = len(digits_t) + exp - 1  # exponent of the first digit
    neg = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:  # strconv 'g', shortest: eprec = 6
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp10 < 0:
        return f"{neg}0.{'0' * (-exp10 - 1)}{digits}"
    if len(digits) <= exp10 + 1:
        return neg + digits + "0" * (exp10 + 1 - len(digits))
    return f"{neg}{digits[:exp10 + 1]}.{digits[exp10 + 1:]}"


def _float_json(f: float) -> str:
    """A float64 as encoding/json writes it ('f' format, 'e' outside [1e-6, 1e21)); NaN and infinities as null."""
    if f != f or math.isinf(f):
        return "null"
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = repr(f)
        mant, _, exp = s.partition("e")
        sign = exp[:1] if exp[:1] in ("+", "-") else "+"
        digits = exp.lstrip("+-")
        if len(digits) == 2 and digits[0] == "0" and sign == "-":
            digits = digits[1:]
        return f"{mant}e{sign}{digits}"
    s = repr(f)
    if "e" in s or "E" in s:
        s = format(Decimal(s), "f")
    if s.endswith(".0"):
        s = s[:-2]
    return s


def _float_int(f: float) -> str:
    """Integral values (below 1e21) as integers, others as Python's repr with a two-digit exponent."""
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    r = repr(f)
    if "e" in r:
        mant, _, exp = r.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        exp = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{exp}"
    return r


_FLOAT_STYLES = {"v": _float_v, "json": _float_json, "int": _float_int}


def float_str(f: float, style: str = "v") -> str:
    """A float64 as text.

    ``style``:

    - ``"v"``: Go's ``%v`` (``strconv`` ``'g'``, shortest: ``1e+06``, ``0.5``);
    - ``"json"``: as encoding/json writes it (``1000000``, ``1e-7``, ``1e+21``);
    - ``"int"``: integral values as integers (``1000000``), others as Python's
      repr with Go's two-digit exponent (``1e-05``); what field errors print
      for numbers that are integers on the Go side.
    """
    return _FLOAT_STYLES[style](f)


def value(v: Any, *, floats: str = "v") -> str:
    """Go's ``%v`` of a decoded JSON value (``floats`` is ``float_str``'s style)."""
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return float_str(v, floats)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{value(v[k], floats=floats)}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(value(x, floats=floats) for x in v) + "]"
    return str(v)


def sharp(v: Any, *, floats: str = "v") -> str:
    """Go's ``%#v`` of an ``interface{}`` holding a decoded JSON value (``floats`` is ``float_str``'s style)."""
    if v is None:
        return "interface {}(nil)"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, float):
        return float_str(v, floats)
    if isinstance(v, dict):
        return ("map[string]interface {}{"
                + ", ".join(f"{quote(k)}:{sharp(v[k], floats=floats)}" for k in sorted(v)) + "}")
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(sharp(x, floats=floats) for x in v) + "}"
    return str(v)


def type_name(v: Any, nil: str = "<nil>") -> str:
    """The Go type ``reflect.TypeOf`` reports for a decoded JSON value;
    ``nil`` is how the caller's Go code prints a nil value's type."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if v is None:
        return nil
    return type(v).__name__
