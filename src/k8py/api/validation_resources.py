"""Compute-resource names and quantities in pod specs, quotas and limit ranges (``pkg/apis/core/validation``)."""

from __future__ import annotations

from k8py.api.validation_common import (
    IS_NEGATIVE_MSG, IS_NOT_INTEGER_MSG, GoRepr, as_dict, as_list, as_str, duplicate, forbidden, invalid,
    is_qualified_name, not_found, parse_q, required,
)

# --- resource names ----------------------------------------------------------------------------------
_STANDARD_RESOURCES = frozenset((
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims", "storage", "requests.storage",
    "services.nodeports", "services.loadbalancers",
))
_STANDARD_CONTAINER_RESOURCES = frozenset(("cpu", "memory", "ephemeral-storage"))
_INTEGER_RESOURCES = frozenset((
    "pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
))
_STANDARD_QUOTA_RESOURCES = frozenset((
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
    "resourcequotas", "services", "replicationcontrollers", "secrets", "persistentvolumeclaims", "configmaps",
    "services.nodeports", "services.loadbalancers",
))


def is_hugepage(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource(name: str) -> bool:
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not is_hugepage(name)


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER_RESOURCES or is_extended_resource(name)


def validate_resource_name(path: str, name: str, errs: list) -> bool:
    n = len(errs)
    for msg in is_qualified_name(name):
        errs.append(invalid(path, name, msg))
    if len(errs) != n:
        return False
    if "/" not in name and not (name in _STANDARD_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-"))):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        return False
    return True


def validate_container_resource_name(path: str, name: str, errs: list) -> None:
    validate_resource_name(path, name, errs)
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not is_hugepage(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and not is_extended_resource(name):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))


def validate_quota_resource_name(path: str, name: str, errs: list) -> None:
    validate_resource_name(path, name, errs)
    if "/" not in name and not (name in _STANDARD_QUOTA_RESOURCES
                                or name.startswith(("hugepages-", "requests.hugepages-"))):
        errs.append(invalid(path, name, "must be a standard resource for quota"))


def validate_resource_quantity(path: str, name: str, value: object, errs: list):
    """``ValidateResourceQuantityValue``; returns the parsed quantity (or None)."""
    q = parse_q(value)
    if q is not None and q.nanos >= 0 and name in _STANDARD_CONTAINER_RESOURCES:
        return q
    if q is None:
        errs.append(invalid(path, value if isinstance(value, str) else str(value),
                            "quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
        return None
    if q.nanos < 0:
        errs.append(invalid(path, str(q), IS_NEGATIVE_MSG))
    if is_integer_resource(name) and q.milli_value() % 1000 != 0:
        errs.append(invalid(path, GoRepr(str(q)), IS_NOT_INTEGER_MSG))
    return q


def validate_resource_requirements(path: str, req: object, errs: list, pod_claims: frozenset = frozenset()) -> None:
    req = as_dict(req)
    lim_path, req_path = path + ".limits", path + ".requests"
    limits = as_dict(req.get("limits"))
    requests = as_dict(req.get("requests"))
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    lim_q = {}
    for name, value in limits.items():
        fp = f"{lim_path}[{name}]"
        if name not in _STANDARD_CONTAINER_RESOURCES:
            validate_container_resource_name(fp, name, errs)
        q = validate_resource_quantity(fp, name, value, errs)
        lim_q[name] = q
        if is_hugepage(name):
            lim_huge = True
        if name in ("cpu", "memory"):
            lim_cpu_mem = True
    for name, value in requests.items():
        fp = f"{req_path}[{name}]"
        if name not in _STANDARD_CONTAINER_RESOURCES:
            validate_container_resource_name(fp, name, errs)
        q = validate_resource_quantity(fp, name, value, errs)
        if name in limits:
            lq = lim_q.get(name)
            if q is not None and lq is not None:
                c = (q.nanos > lq.nanos) - (q.nanos < lq.nanos)
                if c != 0 and not is_overcommit_allowed(name):
                    errs.append(invalid(req_path, str(q), f"must be equal to {name} limit of {lq}"))
                elif c > 0:
                    errs.append(invalid(req_path, str(q), f"must be less than or equal to {name} limit of {lq}"))
        elif not is_overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepage(name):
            req_huge = True
        if name in ("cpu", "memory"):
            req_cpu_mem = True
    if not lim_cpu_mem and not req_cpu_mem and (req_huge or lim_huge):
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    claims = as_list(req.get("claims"))
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        cname = as_str(as_dict(claim).get("name"))
        cp = f"{path}.claims[{i}]"
        if not cname:
            errs.append(required(cp))
            continue
        if cname in seen:
            errs.append(duplicate(cp, cname))
        seen.add(cname)
        if cname not in pod_claims:
            detail = "must be one of the names in pod.spec.resourceClaims"
            detail += " which is empty" if not pod_claims else ": " + ", ".join(sorted(pod_claims))
            errs.append(not_found(cp, cname, detail))


