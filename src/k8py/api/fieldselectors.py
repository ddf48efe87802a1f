"""Field selectors (``?fieldSelector=``), as kube-apiserver 1.32 parses, validates and matches them.

* ``parse`` is apimachinery's ``fields.ParseSelector``: terms split on unescaped
  ``,``, sorted, each split at the first ``!=``, ``==`` or ``=`` (``==`` means ``=``);
  values unescape ``\\\\``, ``\\,`` and ``\\=``.
* Which labels a kind accepts is its field label conversion function
  (``AddFieldLabelConversionFunc`` in ``pkg/apis/*/v1/conversion.go``); kinds
  without one accept only ``metadata.name`` and ``metadata.namespace``.  The
  conversion may rename a label (pods: ``spec.host`` -> ``spec.nodeName``;
  events.k8s.io: ``regarding.*`` -> ``involvedObject.*``).
* ``field_set`` is the kind's ``GetAttrs`` field set (``pkg/registry/*/strategy.go``);
  a label absent from it reads as ``""``.

Every error is a ``FieldSelectorError``: the API server answers 400 BadRequest with
``str(err)`` as the Status message.
"""

from __future__ import annotations

from typing import Any, Callable

from k8py.api.tables_core import core_event, pod_ip

__all__ = ["FieldSelectorError", "parse", "supported_fields", "field_set", "compile", "convert_label",
           "escape_value"]

EMPTY: dict[str, Any] = {}


class FieldSelectorError(ValueError):
    """An unparsable or unsupported field selector: HTTP 400, reason BadRequest, message ``str(err)``."""

    code = 400
    reason = "BadRequest"


# --------------------------------------------------------------------------- parsing

_OPERATORS = ("!=", "==", "=")


def escape_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape ``\\``, ``,`` and ``=``."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(value: str) -> str:
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch in "\\,=":
                out.append(ch)
            else:
                raise FieldSelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            in_slash = False
            continue
        if ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go prints the rune with %v: its code point.
            raise FieldSelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise FieldSelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(selector: str) -> list[str]:
    if not selector:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(selector):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse(selector: str) -> list[tuple[str, str, str]]:
    """Parse a field selector into ``(field, op, value)`` terms (op ``=`` or ``!=``), sorted as kube sorts them."""
    parts = _split_terms(selector or "")
    parts.sort()  # Go sorts the raw terms (byte order; same as code point order for UTF-8)
    out: list[tuple[str, str, str]] = []
    for part in parts:
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise FieldSelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        lhs, op, rhs = split
        out.append((lhs, "!=" if op == "!=" else "=", _unescape(rhs)))
    return out


# --------------------------------------------------------------------------- supported labels per kind

_META = ("metadata.name", "metadata.namespace")
_EVENT_CORE = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type") + _META


def _identity(labels: tuple[str, ...], extra: dict[str, str] | None = None) -> dict[str, str]:
    d = {label: label for label in labels}
    if extra:
        d.update(extra)
    return d


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _go_quote(s: str) -> str:
    """Go's %q for the plain strings labels are."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _job_not_supported(label: str) -> str:
    return f"field label {_go_quote(label)} not supported for batchv1.Job"


def _unknown(label: str) -> str:
    return f'{_go_quote(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


# (group, kind) -> (accepted label -> label in field_set, error message for any other label)
_CONVERSIONS: dict[tuple[str, str], tuple[dict[str, str], Callable[[str], str]]] = {
    ("", "Pod"): (_identity(_META + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                     "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                                     "status.podIP", "status.podIPs", "status.nominatedNodeName"),
                            {"spec.host": "spec.nodeName"}), _not_supported),
    ("", "Node"): (_identity(("metadata.name", "spec.unschedulable")), _not_supported),
    ("", "ReplicationController"): (_identity(_META + ("status.replicas",)), _not_supported),
    ("", "Event"): (_identity(_EVENT_CORE), _not_supported),
    ("", "Namespace"): (_identity(("status.phase", "metadata.name")), _not_supported),
    ("", "Secret"): (_identity(("type",) + _META), _not_supported),
    ("", "Service"): (_identity(_META + ("spec.clusterIP", "spec.type")), _not_supported),
    ("batch", "Job"): (_identity(_META + ("status.successful",)), _job_not_supported),
    ("events.k8s.io", "Event"): ({
        "reason": "reason",
        "regarding.kind": "involvedObject.kind",
        "regarding.namespace": "involvedObject.namespace",
        "regarding.name": "involvedObject.name",
        "regarding.uid": "involvedObject.uid",
        "regarding.apiVersion": "involvedObject.apiVersion",
        "regarding.resourceVersion": "involvedObject.resourceVersion",
        "regarding.fieldPath": "involvedObject.fieldPath",
        "reportingController": "reportingComponent",
        "source": "source",
        "type": "type",
        "metadata.namespace": "metadata.namespace",
        "metadata.name": "metadata.name",
    }, _not_supported),
}
_DEFAULT_CONVERSION = (_identity(_META), _unknown)


def _conversion(resource: Any) -> tuple[dict[str, str], Callable[[str], str]]:
    return _CONVERSIONS.get((resource.group, resource.kind), _DEFAULT_CONVERSION)


def supported_fields(resource: Any) -> frozenset[str]:
    """The field labels a ``fieldSelector`` may use for this resource (in the request's version)."""
    return frozenset(_conversion(resource)[0])


def convert_label(resource: Any, label: str) -> str:
    """The label as ``field_set`` names it (e.g. ``spec.host`` -> ``spec.nodeName``); raises if unsupported."""
    mapping, message = _conversion(resource)
    try:
        return mapping[label]
    except KeyError:
        raise FieldSelectorError(message(label)) from None


# --------------------------------------------------------------------------- field sets (GetAttrs)

def _meta(obj: dict[str, Any], namespaced: bool = True) -> dict[str, str]:
    meta = obj.get("metadata") or EMPTY
    if namespaced:
        return {"metadata.name": meta.get("name") or "", "metadata.namespace": meta.get("namespace") or ""}
    return {"metadata.name": meta.get("name") or ""}


def _bool(v: Any) -> str:
    return "true" if v else "false"


def _pod_fields(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    d = {
        "spec.nodeName": spec.get("nodeName") or "",
        "spec.restartPolicy": spec.get("restartPolicy") or "",
        "spec.schedulerName": spec.get("schedulerName") or "",
        "spec.serviceAccountName": spec.get("serviceAccountName") or "",
        "spec.hostNetwork": _bool(spec.get("hostNetwork")),
        "status.phase": status.get("phase") or "",
        "status.podIP": pod_ip(status),
        "status.nominatedNodeName": status.get("nominatedNodeName") or "",
    }
    d.update(_meta(obj))
    return d


def _event_fields(obj: dict[str, Any]) -> dict[str, str]:
    ev = core_event(obj)
    inv = ev.get("involvedObject") or EMPTY
    reporting = ev.get("reportingComponent") or ""
    source = (ev.get("source") or EMPTY).get("component") or reporting
    d = {
        "involvedObject.kind": inv.get("kind") or "",
        "involvedObject.namespace": inv.get("namespace") or "",
        "involvedObject.name": inv.get("name") or "",
        "involvedObject.uid": inv.get("uid") or "",
        "involvedObject.apiVersion": inv.get("apiVersion") or "",
        "involvedObject.resourceVersion": inv.get("resourceVersion") or "",
        "involvedObject.fieldPath": inv.get("fieldPath") or "",
        "reason": ev.get("reason") or "",
        "reportingComponent": reporting,
        "source": source,
        "type": ev.get("type") or "",
    }
    d.update(_meta(ev))
    return d


def _node_fields(obj: dict[str, Any]) -> dict[str, str]:
    d = _meta(obj, False)
    d["spec.unschedulable"] = _bool((obj.get("spec") or EMPTY).get("unschedulable"))
    return d


def _namespace_fields(obj: dict[str, Any]) -> dict[str, str]:
    d = _meta(obj, False)
    d["status.phase"] = (obj.get("status") or EMPTY).get("phase") or ""
    d["name"] = d["metadata.name"]  # kube keeps this legacy label in the set
    return d


def _with(extra: Callable[[dict[str, Any]], dict[str, str]]) -> Callable[[dict[str, Any]], dict[str, str]]:
    def fields(obj: dict[str, Any]) -> dict[str, str]:
        d = extra(obj)
        d.update(_meta(obj))
        return d
    return fields


_FIELD_SETS: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, str]]] = {
    ("", "Pod"): _pod_fields,
    ("", "Node"): _node_fields,
    ("", "Namespace"): _namespace_fields,
    ("", "Event"): _event_fields,
    ("events.k8s.io", "Event"): _event_fields,
    ("", "ReplicationController"): _with(
        lambda o: {"status.replicas": str((o.get("status") or EMPTY).get("replicas") or 0)}),
    ("apps", "ReplicaSet"): _with(
        lambda o: {"status.replicas": str((o.get("status") or EMPTY).get("replicas") or 0)}),
    ("", "Secret"): _with(lambda o: {"type": o.get("type") or ""}),
    ("", "Service"): _with(lambda o: {"spec.clusterIP": (o.get("spec") or EMPTY).get("clusterIP") or "",
                                      "spec.type": (o.get("spec") or EMPTY).get("type") or ""}),
    ("batch", "Job"): _with(lambda o: {"status.successful": str((o.get("status") or EMPTY).get("succeeded") or 0)}),
}


def field_set(resource: Any, obj: dict[str, Any]) -> dict[str, str]:
    """The selectable fields of one object (kube's GetAttrs field set)."""
    fn = _FIELD_SETS.get((resource.group, resource.kind))
    if fn is not None:
        return fn(obj)
    return _meta(obj, resource.namespaced)


# --------------------------------------------------------------------------- compile

def _always(_fields: dict[str, str]) -> bool:
    return True


def compile(resource: Any, selector: str) -> Callable[[dict[str, str]], bool]:  # noqa: A001 - the brief's name
    """Parse and validate ``selector`` for ``resource``; return a matcher over ``field_set`` output.

    Raises FieldSelectorError (400) for a parse error or the first unsupported label (in kube's
    sorted term order).  A missing field reads as ``""``.
    """
    terms = parse(selector)
    eq: list[tuple[str, str]] = []
    ne: list[tuple[str, str]] = []
    for field, op, value in terms:
        label = convert_label(resource, field)
        (ne if op == "!=" else eq).append((label, value))
    if not eq and not ne:
        return _always
    if len(eq) == 1 and not ne:
        (f1, v1), = eq

        def match_one(fields: dict[str, str]) -> bool:
            return fields.get(f1, "") == v1
        return match_one

    def match(fields: dict[str, str]) -> bool:
        get = fields.get
        for f, v in eq:
            if get(f, "") != v:
                return False
        for f, v in ne:
            if get(f, "") == v:
                return False
        return True
    return match


def requires_exact_match(resource: Any, selector: str, field: str) -> str | None:
    """The value a selector requires ``field`` to equal (e.g. ``metadata.name``), if any; for fast paths."""
    for f, op, value in parse(selector):
        if op == "=" and convert_label(resource, f) == field:
            return value
    return None
