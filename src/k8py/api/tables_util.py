"""Shared helpers for the table printers (``tables_*.py``).

Formatting here follows what kube's printers call: ``metav1.Time`` ages,
``resource.Quantity.String()`` (canonical quantities), ``labels.FormatLabels``,
``metav1.FormatLabelSelector`` / ``LabelSelectorAsSelector(...).String()`` and
the container name/image layout of the wide columns.
"""

from __future__ import annotations

import re
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

from k8py.api.duration import human_duration
from k8py.api.tables_docs import DOCS

EMPTY: dict[str, Any] = {}
NEG_INF = float("-inf")


# --------------------------------------------------------------------------- column definitions

def col(name: str, typ: str, doc: str, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    """A metav1.TableColumnDefinition (keys in kube's JSON order); ``doc`` is a DOCS key or literal text."""
    return {"name": name, "type": typ, "format": fmt, "description": DOCS.get(doc, doc), "priority": priority}


NAME_COL = col("Name", "string", "name", fmt="name")
AGE_COL = col("Age", "string", "created")
CONTAINERS_COL = col("Containers", "string", "Names of each container in the template.", 1)
IMAGES_COL = col("Images", "string", "Images referenced by each container in the template.", 1)


# --------------------------------------------------------------------------- time

@lru_cache(maxsize=65536)
def parse_time(value: str) -> float:
    """RFC 3339 (metav1.Time / MicroTime) to epoch seconds; -inf when unparsable."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return NEG_INF


def ts(value: Any) -> float | None:
    """Epoch seconds of a timestamp field, or None when it is unset (Go's zero time)."""
    if not value or not isinstance(value, str):
        return None
    t = parse_time(value)
    return None if t == NEG_INF else t


def since(value: Any, now: float) -> str:
    """translateTimestampSince: ``<unknown>`` for an unset time, else HumanDuration(now - t)."""
    if not value:
        return "<unknown>"
    t = parse_time(value) if isinstance(value, str) else NEG_INF
    if t == NEG_INF:
        return "<unknown>"
    return human_duration(now - t)


def age(obj: dict[str, Any], now: float) -> str:
    return since((obj.get("metadata") or EMPTY).get("creationTimestamp"), now)


# --------------------------------------------------------------------------- labels / selectors

def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted ``k=v`` joined by ``,``; ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(sorted(f"{k}={v}" for k, v in labels.items()))


_OPS = {"In": " in ", "NotIn": " notin "}


def selector_string(sel: Any) -> str | None:
    """LabelSelectorAsSelector(sel).String(); None when the selector is invalid."""
    if not sel:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or EMPTY).items():
        reqs.append((k, f"{k}={v}"))
    for expr in sel.get("matchExpressions") or ():
        key = expr.get("key") or ""
        op = expr.get("operator")
        values = list(expr.get("values") or ())
        if op in _OPS:
            if not values:
                return None
            reqs.append((key, f"{key}{_OPS[op]}({','.join(sorted(values))})"))
        elif op == "Exists":
            if values:
                return None
            reqs.append((key, key))
        elif op == "DoesNotExist":
            if values:
                return None
            reqs.append((key, "!" + key))
        else:
            return None
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector: ``<error>`` if invalid, ``<none>`` if it selects nothing/everything."""
    s = selector_string(sel)
    if s is None:
        return "<error>"
    return s or "<none>"


def containers_cells(pod_spec: Any) -> tuple[str, str]:
    """layoutContainerCells: container names and images, each joined by ``,``."""
    containers = (pod_spec or EMPTY).get("containers") or ()
    return (",".join(c.get("name") or "" for c in containers),
            ",".join(c.get("image") or "" for c in containers))


def template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return ((obj.get("spec") or EMPTY).get("template") or EMPTY).get("spec") or EMPTY


def int_or_string(v: Any) -> str:
    """intstr.IntOrString.String()."""
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def bool_ptr(v: Any) -> str:
    """printBoolPtr: ``True``/``False``, ``<unset>`` for nil."""
    if v is None:
        return "<unset>"
    return "True" if v else "False"


def has_condition(conditions: Any, ctype: str) -> bool:
    """True when the first condition of ``ctype`` has status True (hasJobCondition)."""
    for c in conditions or ():
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def lb_ingress_string(status: Any) -> str:
    """(ingress)LoadBalancerStatusStringer, wide: sorted unique IPs/hostnames joined by ``,``."""
    out: set[str] = set()
    for ing in ((status or EMPTY).get("loadBalancer") or EMPTY).get("ingress") or ():
        if ing.get("ip"):
            out.add(ing["ip"])
        elif ing.get("hostname"):
            out.add(ing["hostname"])
    return ",".join(sorted(out))


def list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    """listWithMoreString."""
    ret = ",".join(items)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret or "<unset>"


# --------------------------------------------------------------------------- quantities

_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_NAME = {v: k for k, v in _DEC_SUFFIX.items()}
_BIN_NAME = {v // 10: k for k, v in _BIN_SUFFIX.items()}
_QTY_RE = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(.*)$")
_EXP_RE = re.compile(r"^[eE]([+-]?\d+)$")
_NANO = Fraction(1, 10**9)


def _ceil_nano(v: Fraction) -> Fraction:
    # Round the magnitude up to a multiple of 1e-9, as ParseQuantity does.
    n = v / _NANO
    if n.denominator == 1:
        return v
    return Fraction(-((-n.numerator) // n.denominator)) * _NANO


def _strip10(n: int) -> tuple[int, int]:
    times = 0
    while n >= 10 and n % 10 == 0:
        n //= 10
        times += 1
    return n, times


@lru_cache(maxsize=4096)
def quantity(value: Any) -> str:
    """resource.Quantity.String() of a serialized quantity: its canonical form.

    ``1.5Gi`` -> ``1536Mi``, ``1000m`` -> ``1``, ``0.5`` -> ``500m``, ``1024Mi`` -> ``1Gi``;
    an unparsable value is returned unchanged.
    """
    if value is None:
        return "0"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        value = repr(value) if isinstance(value, float) else str(value)
    s = str(value).strip()
    m = _QTY_RE.match(s)
    if not m or not (m.group(2) or m.group(3)):
        return s
    sign, whole, frac, suffix = m.groups()
    frac = frac or ""
    if suffix in _BIN_SUFFIX:
        fmt, base, exp = "bin", 2, _BIN_SUFFIX[suffix]
    elif suffix in _DEC_SUFFIX:
        fmt, base, exp = "dec", 10, _DEC_SUFFIX[suffix]
    else:
        em = _EXP_RE.match(suffix)
        if not em:
            return s
        fmt, base, exp = "exp", 10, int(em.group(1))
    mag = Fraction(int((whole or "0") + frac), 10 ** len(frac))
    mag = mag * (Fraction(2) ** exp if base == 2 else Fraction(10) ** exp)
    if mag == 0:
        return "0"
    mag = _ceil_nano(mag)
    neg = sign == "-"
    if fmt == "bin" and (mag < 1024 or mag.denominator != 1):
        fmt = "dec"
    if fmt == "bin":
        n, times = int(mag), 0
        while n >= 1024 and n % 1024 == 0:
            n //= 1024
            times += 1
        name = _BIN_NAME.get(times)
        if name is None:  # beyond Ei: not representable in int64 in kube either
            return s
        return f"{'-' if neg else ''}{n}{name}"
    # decimal: mantissa * 10**e, trailing zeros removed, e lowered to a multiple of 3
    e = -9
    n = int(mag / _NANO)
    n, times = _strip10(n)
    e += times
    r = e % 3
    if r:
        n *= 10 ** r
        e -= r
    if fmt == "exp":
        sfx = "" if e == 0 else f"e{e}"
    else:
        sfx = _DEC_NAME.get(e)
        if sfx is None:
            sfx = f"e{e}"
    return f"{'-' if neg else ''}{n}{sfx}"
