"""Kubernetes resource quantities, as ``k8s.io/apimachinery/pkg/api/resource``.

A quantity is a fixed-point number with an optional suffix: decimal SI
(``n u m "" k M G T P E``), binary SI (``Ki Mi Gi Ti Pi Ei``) or a decimal
exponent (``1e3``).  The value is kept exactly, as an integer count of
nano-units (kube rounds anything finer than ``1n`` up to ``1n``), together
with the *format* the input was written in, because kube's canonical string
depends on it (``1.5Gi`` -> ``1536Mi``, ``0.5`` -> ``500m``, ``1000`` -> ``1k``,
``1024Mi`` -> ``1Gi``).

:func:`parse` follows ``ParseQuantity`` and keeps the caller's string where kube
does (an input already in canonical form, e.g. ``1e3`` or ``100m``), so that
:func:`canonicalize` and ``str(q)`` give byte-identical output to kube's JSON.

Quantities compare and add exactly; ``value()``/``milli_value()`` round up
(away from zero) like kube's ``Value()``/``MilliValue()``.
"""

from __future__ import annotations

import re
from functools import total_ordering

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "Quantity",
    "QuantityError",
    "canonicalize",
    "cmp",
    "parse",
    "parse_quantity",
]

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

ERR_FORMAT = ("quantities must match the regular expression "
              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_NANO = 10 ** 9
_MAX_INT64 = (1 << 63) - 1

# suffix -> (base, exponent, format)
_SUFFIXES: dict[str, tuple[int, int, str]] = {
    "": (10, 0, DECIMAL_SI),
    "n": (10, -9, DECIMAL_SI),
    "u": (10, -6, DECIMAL_SI),
    "m": (10, -3, DECIMAL_SI),
    "k": (10, 3, DECIMAL_SI),
    "M": (10, 6, DECIMAL_SI),
    "G": (10, 9, DECIMAL_SI),
    "T": (10, 12, DECIMAL_SI),
    "P": (10, 15, DECIMAL_SI),
    "E": (10, 18, DECIMAL_SI),
    "Ki": (2, 10, BINARY_SI),
    "Mi": (2, 20, BINARY_SI),
    "Gi": (2, 30, BINARY_SI),
    "Ti": (2, 40, BINARY_SI),
    "Pi": (2, 50, BINARY_SI),
    "Ei": (2, 60, BINARY_SI),
}
_DEC_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIX = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_EXP_RE = re.compile(r"[+-]?[0-9]+\Z")
# Fast path: plain unsigned integers and simple suffixed integers.
_SIMPLE_RE = re.compile(r"([1-9][0-9]{0,14})(|m|k|M|G|Ki|Mi|Gi|Ti)\Z")


class QuantityError(ValueError):
    """A string that is not a quantity; ``str(err)`` is kube's message."""


def _parse_quantity_string(s: str) -> tuple[bool, str, str, str]:
    """Port of ``parseQuantityString``: (positive, num, denom, suffix)."""
    positive = True
    pos = 0
    end = len(s)
    if end and s[0] in "+-":
        positive = s[0] != "-"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    num = s[start:pos] or "0"
    if pos >= end:
        return positive, num, "", ""
    denom = ""
    if s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[start:pos]
        if pos >= end:
            return positive, num, denom, ""
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos >= end:
        return positive, num, denom, s[suffix_start:]
    if s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos >= end:
        return positive, num, denom, s[suffix_start:]
    raise QuantityError(ERR_FORMAT)


def _interpret(suffix: str) -> tuple[int, int, str]:
    hit = _SUFFIXES.get(suffix)
    if hit is not None:
        return hit
    if len(suffix) > 1 and suffix[0] in "eE" and _EXP_RE.match(suffix, 1):
        exp = int(suffix[1:])
        if -1000 <= exp <= 1000:
            return 10, exp, DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _canonical(n: int, fmt: str) -> str:
    """Canonical string for ``n`` nano-units written in format ``fmt``."""
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    a = -n if n < 0 else n
    if fmt == BINARY_SI:
        if a < 1024 * _NANO or a % _NANO:
            fmt = DECIMAL_SI
        else:
            v = a // _NANO
            exp = 0
            while exp < 6 and v % 1024 == 0:
                v //= 1024
                exp += 1
            return sign + str(v) + _BIN_SUFFIX[exp]
    mantissa = a
    exponent = -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    r = exponent % 3
    if r:
        mantissa *= 10 ** r
        exponent -= r
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{mantissa}e{exponent}" if exponent else sign + str(mantissa)
    if exponent > 18:
        mantissa *= 10 ** (exponent - 18)
        exponent = 18
    return sign + str(mantissa) + _DEC_SUFFIX[exponent]


@total_ordering
class Quantity:
    """An exact quantity: ``nanos`` (int, value * 1e9), ``format`` and maybe the cached input string."""

    __slots__ = ("nanos", "format", "_s")

    def __init__(self, nanos: int = 0, format: str = DECIMAL_SI, s: str | None = None) -> None:
        self.nanos = nanos
        self.format = format
        self._s = s

    # -- construction --------------------------------------------------------
    @classmethod
    def parse(cls, value: str | int | float | Quantity) -> Quantity:
        return parse(value)

    @classmethod
    def from_int(cls, v: int, format: str = DECIMAL_SI) -> Quantity:
        return cls(v * _NANO, format)

    @classmethod
    def from_milli(cls, v: int, format: str = DECIMAL_SI) -> Quantity:
        return cls(v * 1_000_000, format)

    # -- views ---------------------------------------------------------------
    def __str__(self) -> str:
        s = self._s
        if s is None:
            s = _canonical(self.nanos, self.format)
        return s

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def value(self) -> int:
        """Integer value, rounded up away from zero (kube ``Value()``)."""
        n = self.nanos
        return -((-n) // _NANO) if n >= 0 else -((n * -1 + _NANO - 1) // _NANO)

    def milli_value(self) -> int:
        """Value in milli-units, rounded up away from zero (kube ``MilliValue()``)."""
        n = self.nanos
        return -((-n) // 1_000_000) if n >= 0 else -((-n + 999_999) // 1_000_000)

    def as_float(self) -> float:
        return self.nanos / _NANO

    def is_zero(self) -> bool:
        return self.nanos == 0

    def sign(self) -> int:
        return (self.nanos > 0) - (self.nanos < 0)

    def round_up(self, scale: int) -> bool:
        """Round up (away from zero) to 10**scale (scale >= -9); return True if exact.

        Mirrors ``Quantity.RoundUp``; the cached input string is dropped when the value changes.
        """
        if scale <= -9:
            return True
        step = 10 ** (scale + 9)
        n = self.nanos
        rem = (n if n >= 0 else -n) % step
        if rem == 0:
            return True
        self.nanos = n + (step - rem) if n >= 0 else n - (step - rem)
        self._s = None
        return False

    def copy(self) -> Quantity:
        return Quantity(self.nanos, self.format, self._s)

    # -- arithmetic / comparison ---------------------------------------------
    def cmp(self, other: Quantity) -> int:
        a, b = self.nanos, other.nanos
        return (a > b) - (a < b)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos == other.nanos
        return NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        return self.nanos < other.nanos

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos + other.nanos, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos - other.nanos, self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)

    def __mul__(self, k: int) -> Quantity:
        return Quantity(self.nanos * k, self.format)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.nanos != 0


def _number_to_str(value: int | float) -> str:
    if isinstance(value, bool):
        raise QuantityError(ERR_FORMAT)
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise QuantityError(ERR_FORMAT)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def parse(value: str | int | float | Quantity) -> Quantity:
    """Parse a quantity as kube's ``ParseQuantity`` (JSON numbers are accepted too).

    Raises :class:`QuantityError` with kube's message for malformed input.
    """
    if type(value) is str:
        m = _SIMPLE_RE.match(value)
        if m is not None:
            num, suf = m.groups()
            base, exponent, fmt = _SUFFIXES[suf]
            if base == 10:
                return Quantity(int(num) * 10 ** (exponent + 9), fmt, None if num.endswith("000") else value)
            v = int(num)
            if (v << exponent) <= _MAX_INT64 and len(num) <= 14 - int(exponent * 3 / 10):
                return Quantity((v << exponent) * _NANO, fmt, value if v & 7 else None)
    if isinstance(value, Quantity):
        return value.copy()
    if not isinstance(value, str):
        if isinstance(value, (int, float)):
            value = _number_to_str(value)
        else:
            raise QuantityError(ERR_FORMAT)
    s = value.strip()
    if not s:
        raise QuantityError(ERR_FORMAT)
    if s == "0":
        return Quantity(0, DECIMAL_SI, "0")
    m = _SIMPLE_RE.match(s)
    if m is not None:
        num, suf = m.group(1), m.group(2)
        base, exponent, fmt = _SUFFIXES[suf]
        v = int(num)
        if base == 10:
            return Quantity(v * 10 ** (exponent + 9), fmt, None if num.endswith("000") else s)
        if (v << exponent) <= _MAX_INT64 and len(num) <= 14 - int(exponent * 3 / 10):
            return Quantity((v << exponent) * _NANO, fmt, s if v & 7 else None)

    positive, num, denom, suf = _parse_quantity_string(s)
    base, exponent, fmt = _interpret(suf)

    # int64 fast path of ParseQuantity: decides whether the input string is kept.
    if fmt == BINARY_SI:
        precision = (15 - len(num) - int(exponent * 3 / 10) - 1) if (exponent >= 0 and not denom) else -1
    else:
        precision = 18 - (len(num) + len(denom))
    if precision >= 0:
        scale = (exponent if base == 10 else 0) - len(denom)
        if scale >= -9:
            shifted = num + denom
            v = int(shifted)
            mant = v if base == 10 else v << exponent
            if mant <= _MAX_INT64:
                signed = mant if positive else -mant
                n = signed * 10 ** (scale + 9)
                if base == 2:
                    keep = exponent % 10 == 0 and (v & 7) != 0
                else:
                    keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
                return Quantity(n, fmt, s if keep else None)

    # Exact path: value = num.denom * base**exponent, rounded up to 1n.
    digits = int(num + denom)
    if base == 10:
        e = exponent - len(denom) + 9
        if e >= 0:
            n = digits * 10 ** e
        else:
            d = 10 ** (-e)
            n = -((-digits) // d)
    else:
        d = 10 ** len(denom)
        top = (digits << exponent) * _NANO
        n = -((-top) // d)
        if n > _MAX_INT64 * _NANO:
            n = _MAX_INT64 * _NANO
        if 0 < n < _NANO:
            fmt = DECIMAL_SI
    if not positive:
        n = -n
    return Quantity(n, fmt, None)


parse_quantity = parse


def canonicalize(value: str | int | float | Quantity) -> str:
    """The string kube would serialize for ``value`` (raises :class:`QuantityError`)."""
    return str(parse(value))


def cmp(a: str | int | float | Quantity, b: str | int | float | Quantity) -> int:
    """-1, 0 or 1 as ``a`` is less than, equal to or greater than ``b``."""
    x = a.nanos if isinstance(a, Quantity) else parse(a).nanos
    y = b.nanos if isinstance(b, Quantity) else parse(b).nanos
    return (x > y) - (x < y)
