"""Label selectors, as ``k8s.io/apimachinery/pkg/labels``.

:func:`parse` reads the string syntax used by ``?labelSelector=`` and
``kubectl -l`` (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
``a``, ``!a``, ``a>1``, ``a<1``), with kube's lexer/parser and error messages.
:func:`from_label_selector` converts a ``metav1.LabelSelector`` dict
(``matchLabels``/``matchExpressions``) as ``LabelSelectorAsSelector`` does:
``None`` selects nothing, ``{}`` selects everything.

Errors are :class:`SelectorError`; ``str(err)`` is kube's message, e.g.
``unable to parse requirement: found '', expected: ',' or ')'``.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

from k8py.api import gofmt

__all__ = [
    "EXISTS", "DOES_NOT_EXIST", "EQUALS", "DOUBLE_EQUALS", "NOT_EQUALS", "IN", "NOT_IN", "GT", "LT",
    "Requirement", "Selector", "SelectorError", "everything", "from_label_selector", "nothing",
    "parse", "selector_from_set", "validate_label_key", "validate_label_value",
]

EXISTS = "exists"
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
GT = "gt"
LT = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GT, LT)
_VALID_OPERATORS = _BINARY_OPERATORS + (EXISTS, DOES_NOT_EXIST)

# --- label key / value syntax (apimachinery util/validation, api/validate/content) ---------------
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN + r"\Z")
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT + r"\Z")
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT + r"\Z")
_LABEL_KEY_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


_SUBDOMAIN_REGEX_ERR = _regex_error(_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com")
_KEY_NAME_REGEX_ERR = "name part " + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
_KEY_TOO_MANY_SLASHES = ("a valid label key " + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
                         + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
_VALUE_REGEX_ERR = _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")


# Fast acceptors (length bounds folded in; no capture groups); the messages come from the slow path.
_NAME_FAST_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_PREFIX_FAST_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/")


def validate_label_key(key: str) -> list[str]:
    """Kube's ``IsQualifiedName``/``IsLabelKey``: a list of problems (empty when valid)."""
    if len(key) <= 63 and key.isalnum() and key.isascii():
        return []
    i = key.find("/")
    if i < 0:
        if _NAME_FAST_RE.match(key):
            return []
    elif i <= 253 and _PREFIX_FAST_RE.match(key) and _NAME_FAST_RE.match(key, i + 1):
        return []
    parts = key.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = key
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not _SUBDOMAIN_RE.match(prefix):
                errs.append("prefix part " + _SUBDOMAIN_REGEX_ERR)
    else:
        return [_KEY_TOO_MANY_SLASHES]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _LABEL_KEY_RE.match(name):
        errs.append(_KEY_NAME_REGEX_ERR)
    return errs


def validate_label_value(value: str) -> list[str]:
    """Kube's ``IsValidLabelValue``."""
    if len(value) <= 63 and ((value.isalnum() and value.isascii()) or not value or _NAME_FAST_RE.match(value)):
        return []
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_VALUE_REGEX_ERR)
    return errs


def _go_str_slice(vals: Sequence[str] | None) -> str:
    if vals is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(gofmt.quote(v) for v in vals) + "}"


class SelectorError(ValueError):
    """A selector that kube would reject; ``str(err)`` is kube's message."""


def _aggregate(msgs: list[str]) -> str:
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


def _parse_int64(s: str) -> int | None:
    if not s or not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    v = int(s)
    if v > (1 << 63) - 1 or v < -(1 << 63):
        return None
    return v


class Requirement:
    """One ``key op values`` term of a selector."""

    __slots__ = ("key", "operator", "values", "_set", "_int")

    def __init__(self, key: str, operator: str, values: Sequence[str] = ()) -> None:
        self.key = key
        self.operator = operator
        self.values = tuple(values)
        self._set = frozenset(self.values)
        self._int = _parse_int64(self.values[0]) if operator in (GT, LT) and len(self.values) == 1 else None

    @classmethod
    def new(cls, key: str, operator: str, values: Sequence[str] | None, path: str | None = "") -> Requirement:
        """``NewRequirement``: validates like kube and raises :class:`SelectorError`.

        ``path`` is the field path prefix ('' for none; ``None`` renders as kube's ``<nil>``).
        """
        if not isinstance(key, str) or (values is not None and not all(isinstance(v, str) for v in values)):
            raise SelectorError(f"invalid requirement: key and values must be strings: {key!r} {values!r}")
        errs: list[str] = []
        key_path = "key" if not path else path + ".key"
        values_path = "values" if not path else path + ".values"
        kerrs = validate_label_key(key)
        if kerrs:
            errs.append(f"{key_path}: Invalid value: {gofmt.quote(key)}: " + "; ".join(kerrs))
        n = len(values) if values is not None else 0
        if operator in (IN, NOT_IN):
            if n == 0:
                errs.append(f"{values_path}: Invalid value: {_go_str_slice(values)}: "
                            "for 'in', 'notin' operators, values set can't be empty")
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if n != 1:
                errs.append(f"{values_path}: Invalid value: {_go_str_slice(values)}: "
                            "exact-match compatibility requires one single value")
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if n != 0:
                errs.append(f"{values_path}: Invalid value: {_go_str_slice(values)}: "
                            "values set must be empty for exists and does not exist")
        elif operator in (GT, LT):
            if n != 1:
                errs.append(f"{values_path}: Invalid value: {_go_str_slice(values)}: "
                            "for 'Gt', 'Lt' operators, exactly one value is required")
            for i, v in enumerate(values or ()):
                if _parse_int64(v) is None:
                    errs.append(f"{values_path}[{i}]: Invalid value: {gofmt.quote(v)}: "
                                "for 'Gt', 'Lt' operators, the value must be an integer")
        else:
            supported = ", ".join(gofmt.quote(o) for o in _VALID_OPERATORS)
            op_path = "operator" if not path else path + ".operator"
            errs.append(f"{op_path}: Unsupported value: {gofmt.quote(operator)}: supported values: {supported}")
        for v in values or ():
            verrs = validate_label_value(v)
            if verrs:
                errs.append(f"{values_path}[{key}]: Invalid value: {gofmt.quote(v)}: " + "; ".join(verrs))
        if errs:
            raise SelectorError(_aggregate(errs))
        return cls(key, operator, values or ())

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            v = labels.get(self.key)
            return v is not None and v in self._set
        if op in (NOT_EQUALS, NOT_IN):
            v = labels.get(self.key)
            return v is None or v not in self._set
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GT, LT):
            v = labels.get(self.key)
            if v is None or self._int is None:
                return False
            lv = _parse_int64(v)
            if lv is None:
                return False
            return lv > self._int if op == GT else lv < self._int
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        vals = self.values
        if len(vals) == 1:
            joined = vals[0]
        else:
            joined = ",".join(sorted(vals))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        sym = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", GT: ">", LT: "<"}.get(op, op)
        return f"{self.key}{sym}{joined}"

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator!r}, {list(self.values)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Requirement) and self.key == other.key and self.operator == other.operator
                and self.values == other.values)

    def __hash__(self) -> int:
        return hash((self.key, self.operator, self.values))


class Selector:
    """An AND of requirements.  ``Selector(None)`` (see :func:`nothing`) matches nothing."""

    __slots__ = ("requirements", "_nothing")

    def __init__(self, requirements: Iterable[Requirement] | None = ()) -> None:
        self._nothing = requirements is None
        reqs = list(requirements or ())
        reqs.sort(key=lambda r: r.key)
        self.requirements: tuple[Requirement, ...] = tuple(reqs)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        if not self.requirements:
            return True
        if labels is None:
            labels = {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def empty(self) -> bool:
        """True if the selector does not restrict the selection (kube ``Empty()``)."""
        return not self._nothing and not self.requirements

    def matches_nothing(self) -> bool:
        return self._nothing

    def requires_exact_match(self, label: str) -> str | None:
        """The single value ``label`` must have, if the selector pins it (kube ``RequiresExactMatch``)."""
        for r in self.requirements:
            if r.key == label:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def add(self, *reqs: Requirement) -> Selector:
        if self._nothing:
            return self
        return Selector(self.requirements + reqs)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "Selector(<nothing>)" if self._nothing else f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Selector) and self._nothing == other._nothing
                and self.requirements == other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


def everything() -> Selector:
    return Selector(())


def nothing() -> Selector:
    return Selector(None)


# --- lexer ---------------------------------------------------------------------------------------
_T_ERROR, _T_EOS, _T_CLOSE, _T_COMMA, _T_NOT, _T_DEQ, _T_EQ, _T_GT, _T_ID, _T_IN, _T_LT, _T_NEQ, _T_NOTIN, _T_OPEN = range(14)
_STRING2TOKEN = {
    ")": _T_CLOSE, ",": _T_COMMA, "!": _T_NOT, "==": _T_DEQ, "=": _T_EQ, ">": _T_GT, "in": _T_IN,
    "<": _T_LT, "!=": _T_NEQ, "notin": _T_NOTIN, "(": _T_OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos = 0
    end = len(s)
    while True:
        while pos < end and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= end or s[pos] == "\x00":
            items.append((_T_EOS, ""))
            return items
        ch = s[pos]
        if ch in _SPECIAL:
            buf = ""
            last_tok, last_lit = _T_ERROR, ""
            while pos < end and s[pos] in _SPECIAL:
                buf += s[pos]
                pos += 1
                tok = _STRING2TOKEN.get(buf)
                if tok is not None:
                    last_tok, last_lit = tok, buf
                elif last_tok != _T_ERROR:
                    pos -= 1
                    break
            if last_tok == _T_ERROR:
                items.append((_T_ERROR, f"error expected: keyword found '{buf}'"))
            else:
                items.append((last_tok, last_lit))
        else:
            start = pos
            while pos < end and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE and s[pos] != "\x00":
                pos += 1
            lit = s[start:pos]
            items.append((_STRING2TOKEN.get(lit, _T_ID), lit))


class _Parser:
    __slots__ = ("items", "pos")

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def lookahead(self, values: bool) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID
        return tok, lit

    def consume(self, values: bool) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        self.pos += 1
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.parse_requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, l = self.consume(True)
                if t == _T_EOS:
                    return reqs
                if t == _T_COMMA:
                    t2, l2 = self.lookahead(True)
                    if t2 not in (_T_ID, _T_NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{l}', expected: ',' or 'end of string'")
            elif tok == _T_EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return Requirement.new(key, op, [])
        op = self.parse_operator()
        if op in (IN, NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return Requirement.new(key, op, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume(True)
        if tok == _T_NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume(True)
        if tok != _T_ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        kerrs = validate_label_key(lit)
        if kerrs:
            raise SelectorError(f"<nil>: Invalid value: {gofmt.quote(lit)}: " + "; ".join(kerrs))
        t, _ = self.lookahead(True)
        if t in (_T_EOS, _T_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def parse_operator(self) -> str:
        tok, lit = self.consume(False)
        op = {_T_IN: IN, _T_EQ: EQUALS, _T_DEQ: DOUBLE_EQUALS, _T_GT: GT, _T_LT: LT, _T_NOTIN: NOT_IN,
              _T_NEQ: NOT_EQUALS}.get(tok)
        if op is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return op

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(True)
        if tok != _T_OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok in (_T_ID, _T_COMMA):
            s = self.parse_identifiers_list()
            tok2, _ = self.consume(True)
            if tok2 != _T_CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return s
        if tok == _T_CLOSE:
            self.consume(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _T_ID:
                s.add(lit)
                tok2, lit2 = self.lookahead(True)
                if tok2 == _T_COMMA:
                    continue
                if tok2 == _T_CLOSE:
                    return s
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _T_COMMA:
                if not s:
                    s.add("")
                tok2, _ = self.lookahead(True)
                if tok2 == _T_CLOSE:
                    s.add("")
                    return s
                if tok2 == _T_COMMA:
                    s.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(True)
        if tok in (_T_EOS, _T_COMMA):
            return {""}
        tok, lit = self.consume(True)
        if tok == _T_ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse(selector: str) -> Selector:
    """Parse the string form of a label selector (kube ``labels.Parse``)."""
    if not selector:
        return Selector(())
    return Selector(_Parser(selector).parse())


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """A selector matching exactly ``labels`` (no validation); empty/None selects everything."""
    if not labels:
        return Selector(())
    return Selector(Requirement(k, EQUALS, (v,)) for k, v in labels.items())


_LS_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector(ls: Mapping | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``: None -> nothing, {} -> everything."""
    if ls is None:
        return Selector(None)
    if not isinstance(ls, Mapping):
        raise SelectorError(f"invalid label selector: {ls!r}")
    match_labels = ls.get("matchLabels") or {}
    exprs = ls.get("matchExpressions") or ()
    if not isinstance(match_labels, Mapping) or not isinstance(exprs, (list, tuple)):
        raise SelectorError(f"invalid label selector: {ls!r}")
    if not match_labels and not exprs:
        return Selector(())
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(Requirement.new(k, EQUALS, [v if v is not None else ""]))
    for expr in exprs:
        if not isinstance(expr, Mapping):
            raise SelectorError(f"invalid label selector requirement: {expr!r}")
        opname = expr.get("operator") or ""
        op = _LS_OPS.get(opname) if isinstance(opname, str) else None
        if op is None:
            raise SelectorError(f"{gofmt.quote(str(opname))} is not a valid label selector operator")
        vals = expr.get("values")
        if vals is not None and not isinstance(vals, (list, tuple)):
            raise SelectorError(f"invalid label selector requirement values: {vals!r}")
        reqs.append(Requirement.new(expr.get("key") or "", op, list(vals) if vals else None))
    return Selector(reqs)
