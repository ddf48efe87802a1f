"""Shared pieces of kube-style validation: field errors, Go value formatting, name rules, metadata.

Everything here mirrors ``k8s.io/apimachinery`` (``util/validation``,
``util/validation/field``, ``api/validation``, ``apis/meta/v1/validation``)
closely enough that messages are byte-identical to kube-apiserver's.

Validators append :class:`FieldError` to an ``errs`` list passed in (no
intermediate lists), and field paths are plain strings (``spec.containers[0].image``).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from k8py.api import gofmt
from k8py.api import quantity as _q
from k8py.api.labels import SelectorError, from_label_selector, validate_label_key, validate_label_value

# --- field errors ----------------------------------------------------------------------------------
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"

_TYPE_TEXT = {
    NOT_FOUND: "Not found", REQUIRED: "Required value", DUPLICATE: "Duplicate value",
    INVALID: "Invalid value", NOT_SUPPORTED: "Unsupported value", FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long", TOO_MANY: "Too many", INTERNAL: "Internal error", TYPE_INVALID: "Invalid value",
}
_NO_VALUE_TYPES = frozenset((REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL))


class GoRepr(str):
    """A bad value already rendered as Go would print it (e.g. ``map[string]string{...}``)."""

    __slots__ = ()


class _Omit:
    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT"


OMIT = _Omit()  # bad value that kube omits from the message


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field-level error, as kube's ``field.Error``."""

    type: str
    field: str
    bad_value: object
    detail: str

    def body(self) -> str:
        """kube ``ErrorBody()``: the message without the field path (Status cause message)."""
        s = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _NO_VALUE_TYPES and self.bad_value is not OMIT:
            s = f"{s}: {go_value(self.bad_value)}"
        if self.detail:
            s = f"{s}: {self.detail}"
        return s

    def message(self) -> str:
        """kube ``Error()``: ``<field>: <body>``."""
        return f"{self.field}: {self.body()}"

    def __str__(self) -> str:
        return self.message()

    def cause(self) -> dict[str, str]:
        """The ``metav1.StatusCause`` kube reports for this error."""
        return {"reason": self.type, "message": self.body(), "field": self.field}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, "", detail)


def invalid(path: str, value: object, detail: str) -> FieldError:
    return FieldError(INVALID, path, value, detail)


def not_supported(path: str, value: object, valid: Sequence[str]) -> FieldError:
    detail = ""
    if valid:
        detail = "supported values: " + ", ".join(go_quote(v) for v in valid)
    return FieldError(NOT_SUPPORTED, path, value, detail)


def duplicate(path: str, value: object) -> FieldError:
    return FieldError(DUPLICATE, path, value, "")


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, "", detail)


def not_found(path: str, value: object, detail: str = "") -> FieldError:
    return FieldError(NOT_FOUND, path, value, detail)


def too_long(path: str, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, path, "", f"must have at most {max_len} bytes")


def too_long_max_length(path: str, value: object, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, path, value, f"may not be longer than {max_len}")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return FieldError(TOO_MANY, path, actual, f"must have at most {max_items} items")


def internal_error(path: str, detail: str) -> FieldError:
    return FieldError(INTERNAL, path, None, detail)


# --- Go value formatting -------------------------------------------------------------------------
def go_quote(s: str) -> str:
    """Go ``strconv.Quote``; a value that is not a string renders as ``go_value`` does."""
    if not isinstance(s, str):
        return go_value(s)
    return gofmt.quote(s)


def go_value(v: object) -> str:
    """Render a bad value as ``field.Error`` does."""
    if v is None:
        return "null"
    if isinstance(v, GoRepr):
        return str(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return gofmt.float_str(v, "int")
    if isinstance(v, _q.Quantity):
        return str(v)
    if isinstance(v, Mapping):
        return go_map(v)
    if isinstance(v, (list, tuple)):
        return go_slice(v)
    return str(v)


def _go_elem(v: object) -> str:
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return go_value(v)
    if isinstance(v, Mapping):
        return go_map(v)
    if isinstance(v, (list, tuple)):
        return go_slice(v)
    return go_value(v)


def go_map(m: Mapping | None, typ: str | None = None) -> str:
    """``%#v`` of a map; ``map[string]string`` when every value is a string."""
    if typ is None:
        typ = "map[string]string" if not isinstance(m, Mapping) or all(isinstance(x, str) for x in m.values()) else "map[string]interface {}"
    if m is None:
        return f"{typ}(nil)"
    if not isinstance(m, Mapping):
        return go_value(m)
    items = ", ".join(f"{go_quote(str(k))}:{_go_elem(m[k])}" for k in sorted(m))
    return f"{typ}{{{items}}}"


def go_slice(s: Sequence | None, typ: str | None = None) -> str:
    """``%#v`` of a slice; ``[]string`` when every element is a string."""
    if typ is None:
        typ = "[]string" if not isinstance(s, (list, tuple)) or all(isinstance(x, str) for x in s) else "[]interface {}"
    if s is None:
        return f"{typ}(nil)"
    if not isinstance(s, (list, tuple)):
        return go_value(s)
    return typ + "{" + ", ".join(_go_elem(x) for x in s) + "}"


def go_time(ts: object) -> str:
    """``time.Time.String()`` of an RFC 3339 timestamp (as metav1.Time prints)."""
    if not isinstance(ts, str) or not ts:
        return "0001-01-01 00:00:00 +0000 UTC"
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return ts
    base = dt.strftime("%Y-%m-%d %H:%M:%S")
    if dt.microsecond:
        base += ("." + f"{dt.microsecond:06d}").rstrip("0")
    return base + " +0000 UTC"


def go_label_selector(sel: Mapping | None) -> GoRepr:
    """``%#v`` of a (dereferenced) ``metav1.LabelSelector``."""
    if not isinstance(sel, Mapping):
        return GoRepr(go_value(sel))
    ml = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        ex = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in as_list(exprs):
            e = as_dict(e)
            vals = e.get("values")
            parts.append(f'v1.LabelSelectorRequirement{{Key:{go_quote(e.get("key") or "")}, '
                         f'Operator:{go_quote(e.get("operator") or "")}, Values:{go_slice(vals, "[]string")}}}')
        ex = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{go_map(ml, 'map[string]string')}, MatchExpressions:{ex}}}")


def intstr_repr(v: object) -> GoRepr:
    """An IntOrString as kube prints it (its ``String()``)."""
    return GoRepr(str(v) if v is not None else "null")


# --- messages shared by kube's validators ----------------------------------------------------------
IS_NEGATIVE_MSG = "must be greater than or equal to 0"
FIELD_IMMUTABLE_MSG = "field is immutable"
IS_NOT_INTEGER_MSG = "must be an integer"
IS_NOT_POSITIVE_MSG = "must be greater than zero"
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT + r"\Z")
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT + r"\Z")
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT + r"\Z")
_WILDCARD_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_WILDCARD_RE = re.compile(_WILDCARD_FMT + r"\Z")

_DNS1123_LABEL_ERR = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character", _DNS1123_LABEL_FMT, "my-name", "123-abc")
_DNS1123_SUBDOMAIN_ERR = regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character", _DNS1123_SUBDOMAIN_FMT, "example.com")
_DNS1035_LABEL_ERR = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, "
    "and end with an alphanumeric character", _DNS1035_LABEL_FMT, "my-name", "abc-123")
_WILDCARD_ERR = regex_error(
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of "
    "lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
    _WILDCARD_FMT, "*.example.com")


def is_dns1123_label(v: str) -> list[str]:
    if len(v) <= 63 and _DNS1123_LABEL_RE.match(v):
        return []
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL_RE.match(v):
        errs.append("must not contain dots" if _DNS1123_SUBDOMAIN_RE.match(v) else _DNS1123_LABEL_ERR)
    return errs


def is_dns1123_subdomain(v: str) -> list[str]:
    if len(v) <= 253 and _DNS1123_SUBDOMAIN_RE.match(v):
        return []
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(v):
        errs.append(_DNS1123_SUBDOMAIN_ERR)
    return errs


def is_dns1035_label(v: str) -> list[str]:
    if len(v) <= 63 and _DNS1035_LABEL_RE.match(v):
        return []
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL_RE.match(v):
        errs.append(_DNS1035_LABEL_ERR)
    return errs


def is_wildcard_dns1123_subdomain(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _WILDCARD_RE.match(v):
        errs.append(_WILDCARD_ERR)
    return errs


def _mask_trailing_dash(name: str) -> str:
    if name.endswith("-"):
        return name[:max(len(name) - 2, 0)] + "a"
    return name


_NOT_A_STRING = ["must be a string"]


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    if not isinstance(name, str):
        return _NOT_A_STRING
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    if not isinstance(name, str):
        return _NOT_A_STRING
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    if not isinstance(name, str):
        return _NOT_A_STRING
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not isinstance(name, str):
        return _NOT_A_STRING
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    errs = []
    if "/" in name:
        errs.append("may not contain '/'")
    if "%" in name:
        errs.append("may not contain '%'")
    return errs


NameFn = Callable[[str, bool], list]

# qualified names (label keys) and label values are shared with labels.py
is_qualified_name = validate_label_key
is_valid_label_value = validate_label_value

_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT + r"\Z")
_CONFIG_KEY_ERR = regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                              _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")


def _chdir_prefix(v: str) -> list[str]:
    if v == ".":
        return ["must not be '.'"]
    if v == "..":
        return ["must not be '..'"]
    if v.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY_RE.match(v):
        errs.append(_CONFIG_KEY_ERR)
    if v.startswith("."):
        errs.extend(_chdir_prefix(v))
    return errs


_ENV_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_RE = re.compile(_ENV_FMT + r"\Z")
_ENV_ERR = regex_error("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
                       "or '.', and must not start with a digit", _ENV_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")


def is_env_var_name(v: str) -> list[str]:
    errs = [] if _ENV_RE.match(v) else [_ENV_ERR]
    if v.startswith("."):
        errs.extend(_chdir_prefix(v))
    return errs


_PORT_NAME_CHARSET = re.compile(r"[-a-z0-9]+\Z")
_PORT_NAME_LETTER = re.compile(r"[a-z]")


def is_valid_port_name(p: str) -> list[str]:
    errs = []
    if len(p) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET.match(p):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(p):
        errs.append("must contain at least one letter (a-z)")
    if "--" in p:
        errs.append("must not contain consecutive hyphens")
    if p and (p[0] == "-" or p[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


PORT_RANGE_MSG = inclusive_range_error(1, 65535)


def is_valid_port_num(p: object) -> list[str]:
    if isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535:
        return []
    return [PORT_RANGE_MSG]


_PERCENT_RE = re.compile(r"[0-9]+%\Z")
_PERCENT_ERR = regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                           "[0-9]+%", "1%", "93%")


def is_valid_percent(v: str) -> list[str]:
    return [] if _PERCENT_RE.match(v) else [_PERCENT_ERR]


_HTTP_HEADER_RE = re.compile(r"[-A-Za-z0-9]+\Z")
_HTTP_HEADER_ERR = regex_error("a valid HTTP header must consist of alphanumeric characters or '-'",
                               "[-A-Za-z0-9]+", "X-Header-Name")


def is_http_header_name(v: str) -> list[str]:
    return [] if _HTTP_HEADER_RE.match(v) else [_HTTP_HEADER_ERR]


_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT + r"\Z")


def is_domain_prefixed_path(path: str, v: str, errs: list) -> None:
    if not v:
        errs.append(required(path))
        return
    seg = v.split("/", 1)
    if len(seg) != 2 or not seg[0] or not seg[1]:
        errs.append(invalid(path, v, 'must be a domain-prefixed path (such as "acme.io/foo")'))
        return
    for msg in is_dns1123_subdomain(seg[0]):
        errs.append(invalid(path, seg[0], msg))
    if not _HTTP_PATH_RE.match(seg[1]):
        errs.append(invalid(path, seg[1], regex_error("Invalid path", _HTTP_PATH_FMT)))


def _sloppy_ip(v: str) -> str | None:
    import ipaddress
    if not isinstance(v, str) or not v:
        return None
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        pass
    parts = v.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        try:
            return str(ipaddress.ip_address(".".join(str(int(p)) for p in parts)))
        except ValueError:
            return None
    return None


def parse_ip(v: str):
    """``netutils.ParseIPSloppy`` -> ipaddress object or None."""
    import ipaddress
    s = _sloppy_ip(v)
    return ipaddress.ip_address(s) if s else None


def is_valid_ip(path: str, v: str, errs: list) -> bool:
    if _sloppy_ip(v) is None:
        errs.append(invalid(path, v, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        return False
    return True


def parse_cidr(v: str):
    import ipaddress
    if not isinstance(v, str) or "/" not in v:
        return None
    addr, _, bits = v.partition("/")
    ip = _sloppy_ip(addr)
    if ip is None or not bits.isdigit():
        return None
    try:
        return ipaddress.ip_network(f"{ip}/{int(bits)}", strict=False)
    except ValueError:
        return None


def is_valid_cidr(path: str, v: str, errs: list) -> None:
    if parse_cidr(v) is None:
        errs.append(invalid(path, v, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))


# --- small typed getters (objects are JSON dicts; tolerate wrong shapes) ----------------------------
def as_dict(v: object) -> dict:
    return v if isinstance(v, dict) else {}


def as_list(v: object) -> list:
    return v if isinstance(v, list) else []


def str_map(v: object) -> dict | None:
    """``v`` if it is a ``map[string]string`` (what a selector may be matched against), else None."""
    if isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        return v
    return None


def as_str(v: object) -> str:
    return v if isinstance(v, str) else ""


def as_int(v: object, default: int = 0) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return default


def validate_nonnegative(path: str, v: object, errs: list) -> None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        errs.append(invalid(path, int(v), IS_NEGATIVE_MSG))


def validate_dns1123_label(path: str, v: str, errs: list) -> None:
    for msg in is_dns1123_label(v):
        errs.append(invalid(path, v, msg))


def validate_dns1123_subdomain(path: str, v: str, errs: list) -> None:
    for msg in is_dns1123_subdomain(v):
        errs.append(invalid(path, v, msg))


def validate_qualified_name(path: str, v: str, errs: list) -> None:
    for msg in is_qualified_name(v):
        errs.append(invalid(path, v, msg))


def validate_labels(path: str, labels: object, errs: list) -> None:
    if not isinstance(labels, dict):
        return
    for k, v in labels.items():
        for msg in is_qualified_name(k):
            errs.append(invalid(path, k, msg))
        if not isinstance(v, str):
            v = "" if v is None else str(v)
        for msg in is_valid_label_value(v):
            errs.append(invalid(path, v, msg))


def validate_annotations(path: str, annotations: object, errs: list) -> None:
    if not isinstance(annotations, dict):
        return
    total = 0
    for k, v in annotations.items():
        if is_qualified_name(k.lower()):
            for msg in is_qualified_name(k.lower()):
                errs.append(invalid(path, k, msg))
        total += len(k.encode()) + (len(v.encode()) if isinstance(v, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))


def validate_label_selector(path: str, sel: object, errs: list, allow_invalid_values: bool = False) -> None:
    """``ValidateLabelSelector`` (metav1)."""
    if not isinstance(sel, dict):
        return
    validate_labels(path + ".matchLabels", sel.get("matchLabels"), errs)
    for i, expr in enumerate(as_list(sel.get("matchExpressions"))):
        p = f"{path}.matchExpressions[{i}]"
        expr = as_dict(expr)
        op = expr.get("operator")
        vals = as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not vals:
                errs.append(required(p + ".values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if vals:
                errs.append(forbidden(p + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(p + ".operator", as_str(op), "not a valid selector operator"))
        key = as_str(expr.get("key"))
        for msg in is_qualified_name(key):
            errs.append(invalid(p + ".key", key, msg))
        if not allow_invalid_values:
            for j, v in enumerate(vals):
                for msg in is_valid_label_value(as_str(v)):
                    errs.append(invalid(f"{p}.values[{j}]", as_str(v), msg))


def selector_or_none(sel: object):
    """Selector for a metav1.LabelSelector dict, or None if kube's conversion fails."""
    try:
        return from_label_selector(sel if isinstance(sel, dict) else None)
    except SelectorError:
        return None


def spec_diff(type_name: str, old: Mapping, new: Mapping) -> str:
    """The field diff kube appends to "updates to ... are forbidden" errors, top-level keys only."""
    lines = [f"  {type_name}{{"]
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            if k in old:
                lines.append(f"- \t{k}: {json.dumps(old[k], sort_keys=True)},")
            if k in new:
                lines.append(f"+ \t{k}: {json.dumps(new[k], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


# --- object metadata ---------------------------------------------------------------------------------
_STANDARD_FINALIZERS = frozenset(("kubernetes", "orphan", "foregroundDeletion"))
_BANNED_OWNERS = {("", "v1", "Event")}


def _parse_group_version(api_version: str) -> tuple[str, str] | None:
    if not api_version:
        return "", ""
    n = api_version.count("/")
    if n == 0:
        return "", api_version
    if n == 1:
        g, v = api_version.split("/")
        return g, v
    return None


def _owner_ref_repr(ref: Mapping) -> str:
    def ptr(k: str) -> str:
        return "(*bool)(nil)" if ref.get(k) is None else "(*bool)(0xc000000000)"
    return (f'v1.OwnerReference{{APIVersion:{go_quote(as_str(ref.get("apiVersion")))}, '
            f'Kind:{go_quote(as_str(ref.get("kind")))}, Name:{go_quote(as_str(ref.get("name")))}, '
            f'UID:{go_quote(as_str(ref.get("uid")))}, Controller:{ptr("controller")}, '
            f'BlockOwnerDeletion:{ptr("blockOwnerDeletion")}}}')


def validate_owner_references(path: str, refs: object, errs: list) -> None:
    refs = as_list(refs)
    first_controller = ""
    for ref in refs:
        ref = as_dict(ref)
        api_version = as_str(ref.get("apiVersion"))
        kind = as_str(ref.get("kind"))
        gv = _parse_group_version(api_version)
        group, version = gv if gv is not None else ("", "")
        if gv is None:
            kind_for_gvk = kind
        else:
            kind_for_gvk = kind
        if not version:
            errs.append(invalid(path + ".apiVersion", api_version, "version must not be empty"))
        if not kind_for_gvk:
            errs.append(invalid(path + ".kind", kind, "must not be empty"))
        if not as_str(ref.get("name")):
            errs.append(invalid(path + ".name", as_str(ref.get("name")), "must not be empty"))
        if not as_str(ref.get("uid")):
            errs.append(invalid(path + ".uid", as_str(ref.get("uid")), "must not be empty"))
        if (group, version, kind) in _BANNED_OWNERS:
            errs.append(invalid(path, GoRepr(_owner_ref_repr(ref)),
                                f"{group}/{version}, Kind={kind} is disallowed from being an owner"))
        if ref.get("controller") is True:
            cur = f"{kind}/{as_str(ref.get('name'))}"
            if first_controller:
                all_refs = "[]v1.OwnerReference{" + ", ".join(_owner_ref_repr(as_dict(r)) for r in refs) + "}"
                errs.append(invalid(path, GoRepr(all_refs),
                                    f'Only one reference can have Controller set to true. Found "true" in references '
                                    f'for {first_controller} and {cur}'))
            else:
                first_controller = cur


def _validate_managed_fields(path: str, mfs: object, errs: list) -> None:
    for i, mf in enumerate(as_list(mfs)):
        mf = as_dict(mf)
        p = f"{path}[{i}]"
        op = as_str(mf.get("operation"))
        if op not in ("Apply", "Update"):
            errs.append(invalid(p + ".operation", op, "must be `Apply` or `Update`"))
        ft = as_str(mf.get("fieldsType"))
        if ft and ft != "FieldsV1":
            errs.append(invalid(p + ".fieldsType", ft, "must be `FieldsV1`"))
        manager = as_str(mf.get("manager"))
        if len(manager) > 128:
            errs.append(FieldError(TOO_LONG, p + ".manager", manager, "must have at most 128 bytes"))
        sub = as_str(mf.get("subresource"))
        if len(sub) > 256:
            errs.append(FieldError(TOO_LONG, p + ".subresource", sub, "must have at most 256 bytes"))


def _validate_common_meta(meta: dict, namespaced: bool, path: str, errs: list) -> None:
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            errs.append(required(path + ".namespace"))
        else:
            for msg in name_is_dns_label(ns, False):
                errs.append(invalid(path + ".namespace", ns, msg))
    elif ns:
        errs.append(forbidden(path + ".namespace", "not allowed on this type"))
    validate_nonnegative(path + ".generation", meta.get("generation"), errs)
    validate_labels(path + ".labels", meta.get("labels"), errs)
    validate_annotations(path + ".annotations", meta.get("annotations"), errs)
    if meta.get("ownerReferences"):
        validate_owner_references(path + ".ownerReferences", meta.get("ownerReferences"), errs)
    fins = meta.get("finalizers")
    if fins:
        fins = as_list(fins)
        fp = path + ".finalizers"
        for f in fins:
            f = as_str(f)
            for msg in is_qualified_name(f):
                errs.append(invalid(fp, f, msg))
        if "orphan" in fins and "foregroundDeletion" in fins:
            errs.append(invalid(fp, GoRepr(go_slice(fins, "[]string")),
                                "finalizer orphan and foregroundDeletion cannot be both set"))
    if meta.get("managedFields"):
        _validate_managed_fields(path + ".managedFields", meta.get("managedFields"), errs)


def _validate_kube_finalizers(meta: dict, path: str, errs: list) -> None:
    for i, f in enumerate(as_list(meta.get("finalizers"))):
        f = as_str(f)
        if "/" not in f and f not in _STANDARD_FINALIZERS:
            errs.append(invalid(f"{path}.finalizers[{i}]", f,
                                "name is neither a standard finalizer name nor is it fully qualified"))


def validate_object_meta(meta: object, namespaced: bool, name_fn: NameFn, errs: list,
                         path: str = "metadata", kube_finalizers: bool = True) -> None:
    """Core ``ValidateObjectMeta`` (create)."""
    meta = as_dict(meta)
    gen = meta.get("generateName")
    if gen:
        for msg in name_fn(gen, True):
            errs.append(invalid(path + ".generateName", gen, msg))
    name = meta.get("name")
    if not name:
        errs.append(required(path + ".name", "name or generateName is required"))
    else:
        for msg in name_fn(name, False):
            errs.append(invalid(path + ".name", name, msg))
    _validate_common_meta(meta, namespaced, path, errs)
    if kube_finalizers:
        _validate_kube_finalizers(meta, path, errs)


def validate_object_meta_update(new: object, old: object, errs: list, path: str = "metadata",
                                kube_finalizers: bool = True) -> None:
    """Core ``ValidateObjectMetaUpdate``."""
    new = as_dict(new)
    old = as_dict(old)
    if old.get("deletionTimestamp"):
        extra = sorted(set(as_list(new.get("finalizers"))) - set(as_list(old.get("finalizers"))))
        if extra:
            errs.append(forbidden(path + ".finalizers",
                                  "no new finalizers can be added if the object is being deleted, found new finalizers "
                                  + go_slice(extra, "[]string")))
    rv = new.get("resourceVersion")
    if not rv:
        errs.append(invalid(path + ".resourceVersion", "", "must be specified for an update"))
    ng, og = as_int(new.get("generation")), as_int(old.get("generation"))
    if ng < og:
        errs.append(invalid(path + ".generation", ng, "must not be decremented"))
    for key in ("name", "namespace", "uid"):
        nv, ov = as_str(new.get(key)), as_str(old.get(key))
        if nv != ov:
            errs.append(invalid(f"{path}.{key}", nv, FIELD_IMMUTABLE_MSG))
    if (new.get("creationTimestamp") or None) != (old.get("creationTimestamp") or None):
        errs.append(invalid(path + ".creationTimestamp", GoRepr(go_time(new.get("creationTimestamp"))),
                            FIELD_IMMUTABLE_MSG))
    if (new.get("deletionTimestamp") or None) != (old.get("deletionTimestamp") or None):
        dt = new.get("deletionTimestamp")
        errs.append(invalid(path + ".deletionTimestamp", GoRepr(go_time(dt)) if dt else None, FIELD_IMMUTABLE_MSG))
    if new.get("deletionGracePeriodSeconds") != old.get("deletionGracePeriodSeconds"):
        errs.append(invalid(path + ".deletionGracePeriodSeconds", new.get("deletionGracePeriodSeconds"),
                            FIELD_IMMUTABLE_MSG))
    validate_labels(path + ".labels", new.get("labels"), errs)
    validate_annotations(path + ".annotations", new.get("annotations"), errs)
    if new.get("ownerReferences"):
        validate_owner_references(path + ".ownerReferences", new.get("ownerReferences"), errs)
    if new.get("managedFields"):
        _validate_managed_fields(path + ".managedFields", new.get("managedFields"), errs)
    if kube_finalizers:
        _validate_kube_finalizers(new, path, errs)


def validate_immutable(path: str, new: object, old: object, errs: list, repr_value: object = None) -> None:
    if new != old:
        errs.append(invalid(path, new if repr_value is None else repr_value, FIELD_IMMUTABLE_MSG))


# --- quantities ----------------------------------------------------------------------------------------
def parse_q(v: object) -> _q.Quantity | None:
    try:
        return _q.parse(v)  # type: ignore[arg-type]
    except (_q.QuantityError, TypeError):
        return None


def decoded_len(v: object) -> int:
    """Byte length of a base64 ``[]byte`` JSON value."""
    if not isinstance(v, str):
        return 0
    try:
        return len(base64.b64decode(v, validate=False))
    except (ValueError, TypeError):
        return (len(v) * 3) // 4


def iter_items(d: object) -> Iterable[tuple[str, Any]]:
    return d.items() if isinstance(d, dict) else ()


def validate_meta(obj: dict, old: dict | None, namespaced: bool, name_fn, errs: list) -> None:
    """ObjectMeta checks of a create (``old is None``: full, with ``name_fn``) or of an update."""
    if old is None:
        validate_object_meta(obj.get("metadata"), namespaced, name_fn, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)


def validate_path_segment(path: str, value: str, errs: list) -> None:
    """Kube's ``path.ValidatePathSegmentName`` applied to a reference field (e.g. ``roleRef.name``)."""
    for msg in path_segment_name(value):
        errs.append(invalid(path, value, msg))
