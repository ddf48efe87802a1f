"""Validation of the smaller groups: autoscaling, policy, rbac, storage, scheduling, coordination
and events.k8s.io (each as kube's ``pkg/apis/<group>/validation``)."""

from __future__ import annotations

from k8py.api.validation_common import (
    FIELD_IMMUTABLE_MSG, GoRepr, as_dict, as_int, as_list, as_str, duplicate, forbidden, go_quote, go_slice, invalid,
    name_is_dns_subdomain, not_supported, parse_q, path_segment_name, required, too_long, validate_dns1123_label,
    validate_label_selector, validate_meta, validate_nonnegative, validate_object_meta, validate_object_meta_update,
    validate_path_segment, validate_qualified_name,
)
from k8py.api.validation_apps import is_not_more_than_100_percent, validate_positive_int_or_percent
from k8py.api.validation_resources import validate_container_resource_name


# --- autoscaling -----------------------------------------------------------------------------------
def _cross_version_ref(path: str, ref: dict, errs: list) -> None:
    for key in ("kind", "name"):
        v = as_str(ref.get(key))
        if not v:
            errs.append(required(f"{path}.{key}"))
        else:
            validate_path_segment(f"{path}.{key}", v, errs)


def _metric_target(path: str, mt: dict, errs: list) -> None:
    t = as_str(mt.get("type"))
    if not t:
        errs.append(required(path + ".type", "must specify a metric target type"))
    if t not in ("Utilization", "Value", "AverageValue"):
        errs.append(invalid(path + ".type", t, "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        if mt.get(key) is not None:
            q = parse_q(mt.get(key))
            if q is not None and q.sign() != 1:
                errs.append(invalid(f"{path}.{key}", q, "must be positive"))
    au = mt.get("averageUtilization")
    if au is not None and as_int(au) < 1:
        errs.append(invalid(path + ".averageUtilization", as_int(au), "must be greater than 0"))


def _metric_identifier(path: str, mi: dict, errs: list) -> None:
    name = as_str(mi.get("name"))
    if not name:
        errs.append(required(path + ".name", "must specify a metric name"))
    else:
        validate_path_segment(path + ".name", name, errs)


_METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_METRIC_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                 "ContainerResource": "containerResource"}


def _metric_spec(path: str, spec: dict, errs: list) -> None:
    mtype = as_str(spec.get("type"))
    if not mtype:
        errs.append(required(path + ".type", "must specify a metric source type"))
    if mtype not in _METRIC_TYPES:
        errs.append(not_supported(path + ".type", mtype, _METRIC_TYPES))
    present = [k for k in ("object", "external", "pods", "resource", "containerResource") if spec.get(k) is not None]
    if present:
        first = present[0]
        src = as_dict(spec.get(first))
        sp = f"{path}.{first}"
        target = as_dict(src.get("target"))
        if first == "object":
            _cross_version_ref(sp + ".describedObject", as_dict(src.get("describedObject")), errs)
            _metric_identifier(sp + ".metric", as_dict(src.get("metric")), errs)
            _metric_target(sp + ".target", target, errs)
            if target.get("value") is None and target.get("averageValue") is None:
                errs.append(required(sp + ".target.averageValue", "must set either a target value or averageValue"))
        elif first == "external":
            _metric_identifier(sp + ".metric", as_dict(src.get("metric")), errs)
            _metric_target(sp + ".target", target, errs)
            if target.get("value") is None and target.get("averageValue") is None:
                errs.append(required(sp + ".target.averageValue",
                                     "must set either a target value for metric or a per-pod target"))
            if target.get("value") is not None and target.get("averageValue") is not None:
                errs.append(forbidden(sp + ".target.value", "may not set both a target value for metric and a per-pod target"))
        elif first == "pods":
            _metric_identifier(sp + ".metric", as_dict(src.get("metric")), errs)
            _metric_target(sp + ".target", target, errs)
            if target.get("averageValue") is None:
                errs.append(required(sp + ".target.averageValue", "must specify a positive target averageValue"))
        else:
            name = as_str(src.get("name"))
            if not name:
                errs.append(required(sp + ".name", "must specify a resource name"))
            elif first == "containerResource":
                validate_container_resource_name(sp + ".name", name, errs)
            if first == "containerResource":
                c = as_str(src.get("container"))
                if not c:
                    errs.append(required(sp + ".container", "must specify a container"))
                else:
                    validate_dns1123_label(sp + ".container", c, errs)
            _metric_target(sp + ".target", target, errs)
            if target.get("averageUtilization") is None and target.get("averageValue") is None:
                errs.append(required(sp + ".target.averageUtilization",
                                     "must set either a target raw value or a target utilization"))
            if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
                errs.append(forbidden(sp + ".target.averageValue",
                                      "may not set both a target raw value and a target utilization"))
    expected = _METRIC_FIELD.get(mtype)
    if expected and spec.get(expected) is None:
        errs.append(required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        for typ in present:
            if typ != expected:
                errs.append(forbidden(f"{path}.{typ}", "must populate the given metric source only"))


def _scaling_rules(path: str, rules: object, errs: list) -> None:
    if rules is None:
        return
    rules = as_dict(rules)
    sws = rules.get("stabilizationWindowSeconds")
    if sws is not None:
        if as_int(sws) < 0:
            errs.append(invalid(path + ".stabilizationWindowSeconds", as_int(sws), "must be greater than or equal to zero"))
        if as_int(sws) > 3600:
            errs.append(invalid(path + ".stabilizationWindowSeconds", as_int(sws), "must be less than or equal to 3600"))
    sp = rules.get("selectPolicy")
    if sp is not None and sp not in ("Disabled", "Max", "Min"):
        errs.append(not_supported(path + ".selectPolicy", sp, ("Disabled", "Max", "Min")))
    policies = as_list(rules.get("policies"))
    if not policies:
        errs.append(required(path + ".policies", "must specify at least one Policy"))
    for i, p in enumerate(policies):
        p = as_dict(p)
        pp = f"{path}.policies[{i}]"
        if p.get("type") not in ("Percent", "Pods"):
            errs.append(not_supported(pp + ".type", as_str(p.get("type")), ("Percent", "Pods")))
        if as_int(p.get("value")) <= 0:
            errs.append(invalid(pp + ".value", as_int(p.get("value")), "must be greater than zero"))
        ps = as_int(p.get("periodSeconds"))
        if ps <= 0:
            errs.append(invalid(pp + ".periodSeconds", ps, "must be greater than zero"))
        if ps > 1800:
            errs.append(invalid(pp + ".periodSeconds", ps, "must be less than or equal to 1800"))


def _v1_to_v2_spec(spec: dict) -> dict:
    out = {k: v for k, v in spec.items() if k != "targetCPUUtilizationPercentage"}
    t = spec.get("targetCPUUtilizationPercentage")
    if t is not None:
        out["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]
    return out


def validate_hpa(obj: dict, old: dict | None, errs: list, version: str = "v2") -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    if version == "v1":
        spec = _v1_to_v2_spec(spec)
    min_r = spec.get("minReplicas")
    lower = 1
    if old is not None and as_dict(old.get("spec")).get("minReplicas") == 0:
        lower = 0
    if min_r is not None and as_int(min_r) < lower:
        errs.append(invalid("spec.minReplicas", as_int(min_r), f"must be greater than or equal to {lower}"))
    max_r = as_int(spec.get("maxReplicas"))
    if max_r < 1:
        errs.append(invalid("spec.maxReplicas", max_r, "must be greater than 0"))
    if min_r is not None and max_r < as_int(min_r):
        errs.append(invalid("spec.maxReplicas", max_r, "must be greater than or equal to `minReplicas`"))
    _cross_version_ref("spec.scaleTargetRef", as_dict(spec.get("scaleTargetRef")), errs)
    has_obj_ext = False
    for i, m in enumerate(as_list(spec.get("metrics"))):
        m = as_dict(m)
        _metric_spec(f"spec.metrics[{i}]", m, errs)
        if m.get("type") in ("Object", "External"):
            has_obj_ext = True
    if min_r is not None and as_int(min_r) == 0 and not has_obj_ext:
        errs.append(forbidden("spec.metrics", "must specify at least one Object or External metric to support "
                                              "scaling to zero replicas"))
    beh = spec.get("behavior")
    if beh is not None:
        _scaling_rules("spec.behavior.scaleUp", as_dict(beh).get("scaleUp"), errs)
        _scaling_rules("spec.behavior.scaleDown", as_dict(beh).get("scaleDown"), errs)


def validate_hpa_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    validate_nonnegative("status.currentReplicas", status.get("currentReplicas"), errs)
    validate_nonnegative("status.desiredReplicas", status.get("desiredReplicas"), errs)


# --- policy ----------------------------------------------------------------------------------------
def validate_pdb(obj: dict, old: dict | None, errs: list) -> None:
    spec = as_dict(obj.get("spec"))
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid("spec", GoRepr("policy.PodDisruptionBudgetSpec{...}"),
                            "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        v = spec.get(key)
        if v is not None:
            validate_positive_int_or_percent(f"spec.{key}", v, errs)
            is_not_more_than_100_percent(f"spec.{key}", v, errs)
    validate_label_selector("spec.selector", spec.get("selector"), errs)
    upe = spec.get("unhealthyPodEvictionPolicy")
    if upe is not None and upe not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", upe, ("AlwaysAllow", "IfHealthyBudget")))
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)


def validate_pdb_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    for f in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)


# --- rbac ------------------------------------------------------------------------------------------
RBAC_GROUP = "rbac.authorization.k8s.io"


def _policy_rule(path: str, rule: dict, namespaced: bool, errs: list) -> None:
    if not as_list(rule.get("verbs")):
        errs.append(required(path + ".verbs", "verbs must contain at least one value"))
    nru = as_list(rule.get("nonResourceURLs"))
    if nru:
        go_nru = GoRepr(go_slice(nru, "[]string"))
        if namespaced:
            errs.append(invalid(path + ".nonResourceURLs", go_nru, "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.append(invalid(path + ".nonResourceURLs", go_nru,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return
    if not as_list(rule.get("apiGroups")):
        errs.append(required(path + ".apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(path + ".resources", "resource rules must supply at least one resource"))


def validate_role(obj: dict, old: dict | None, errs: list, namespaced: bool = True) -> None:
    validate_object_meta(obj.get("metadata"), namespaced, path_segment_name, errs)
    for i, rule in enumerate(as_list(obj.get("rules"))):
        _policy_rule(f"rules[{i}]", as_dict(rule), namespaced, errs)
    if not namespaced and obj.get("aggregationRule") is not None:
        sels = as_list(as_dict(obj.get("aggregationRule")).get("clusterRoleSelectors"))
        if not sels:
            errs.append(required("aggregationRule.clusterRoleSelectors",
                                 "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, sel in enumerate(sels):
            validate_label_selector(f"aggregationRule.clusterRoleSelectors[{i}]", sel, errs)
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)


def _role_ref_repr(rr: dict) -> GoRepr:
    return GoRepr(f'rbac.RoleRef{{APIGroup:{go_quote(as_str(rr.get("apiGroup")))}, '
                  f'Kind:{go_quote(as_str(rr.get("kind")))}, Name:{go_quote(as_str(rr.get("name")))}}}')


def validate_role_binding(obj: dict, old: dict | None, errs: list, namespaced: bool = True) -> None:
    validate_object_meta(obj.get("metadata"), namespaced, path_segment_name, errs)
    rr = as_dict(obj.get("roleRef"))
    if as_str(rr.get("apiGroup")) != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", as_str(rr.get("apiGroup")), (RBAC_GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if as_str(rr.get("kind")) not in kinds:
        errs.append(not_supported("roleRef.kind", as_str(rr.get("kind")), kinds))
    rname = as_str(rr.get("name"))
    if not rname:
        errs.append(required("roleRef.name"))
    else:
        validate_path_segment("roleRef.name", rname, errs)
    for i, s in enumerate(as_list(obj.get("subjects"))):
        s = as_dict(s)
        sp = f"subjects[{i}]"
        name = as_str(s.get("name"))
        if not name:
            errs.append(required(sp + ".name"))
        kind = as_str(s.get("kind"))
        group = as_str(s.get("apiGroup"))
        if kind == "ServiceAccount":
            if name:
                for msg in name_is_dns_subdomain(name):
                    errs.append(invalid(sp + ".name", name, msg))
            if group:
                errs.append(not_supported(sp + ".apiGroup", group, ("",)))
            if not namespaced and not as_str(s.get("namespace")):
                errs.append(required(sp + ".namespace"))
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                errs.append(not_supported(sp + ".apiGroup", group, (RBAC_GROUP,)))
        else:
            errs.append(not_supported(sp + ".kind", kind, ("ServiceAccount", "User", "Group")))
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
        orr = as_dict(old.get("roleRef"))
        if any(as_str(orr.get(k)) != as_str(rr.get(k)) for k in ("apiGroup", "kind", "name")):
            errs.append(invalid("roleRef", _role_ref_repr(rr), "cannot change roleRef"))


# --- storage / scheduling / coordination -----------------------------------------------------------------
def validate_storage_class(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, False, name_is_dns_subdomain, errs)
    prov = as_str(obj.get("provisioner"))
    if not prov:
        errs.append(required("provisioner", prov))
    else:
        validate_qualified_name("provisioner", prov.lower(), errs)
    params = as_dict(obj.get("parameters"))
    if len(params) > 512:
        errs.append(too_long("parameters", 512))
    else:
        total = 0
        for k, v in params.items():
            if not k:
                errs.append(invalid("parameters", k, "field can not be empty."))
            total += len(k) + len(as_str(v))
        if total > 256 * 1024:
            errs.append(too_long("parameters", 256 * 1024))
    rp = obj.get("reclaimPolicy")
    if rp and rp not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", rp, ("Delete", "Retain")))
    vbm = obj.get("volumeBindingMode")
    if vbm is None:
        errs.append(required("volumeBindingMode"))
    elif vbm not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", vbm, ("Immediate", "WaitForFirstConsumer")))
    for i, term in enumerate(as_list(obj.get("allowedTopologies"))):
        exprs = as_list(as_dict(term).get("matchLabelExpressions"))
        seen: set = set()
        for j, e in enumerate(exprs):
            e = as_dict(e)
            ep = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
            vals = as_list(e.get("values"))
            if not vals:
                errs.append(required(ep + ".values"))
            vs: set = set()
            for k, v in enumerate(vals):
                if not isinstance(v, str):
                    errs.append(invalid(f"{ep}.values[{k}]", v, "must be a string"))
                elif v in vs:
                    errs.append(duplicate(f"{ep}.values[{k}]", v))
                else:
                    vs.add(v)
            key = as_str(e.get("key"))
            validate_qualified_name(ep + ".key", key, errs)
            if key in seen:
                errs.append(duplicate(ep + ".key", key))
            seen.add(key)
    if old is not None:
        if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(forbidden("parameters", "updates to parameters are forbidden."))
        if prov != as_str(old.get("provisioner")):
            errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if obj.get("volumeBindingMode") != old.get("volumeBindingMode"):
            errs.append(invalid("volumeBindingMode", obj.get("volumeBindingMode"), FIELD_IMMUTABLE_MSG))


HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}


def validate_priority_class(obj: dict, old: dict | None, errs: list) -> None:
    meta = as_dict(obj.get("metadata"))
    value = as_int(obj.get("value"))
    if old is None:
        validate_object_meta(meta, False, name_is_dns_subdomain, errs)
        name = as_str(meta.get("name"))
        if name.startswith("system-"):
            if name not in SYSTEM_PRIORITY_CLASSES:
                err = f"{name} is not a known system priority class"
            elif value != SYSTEM_PRIORITY_CLASSES[name]:
                err = f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
            elif obj.get("globalDefault"):
                err = f"globalDefault of {name} PriorityClass must be false"
            else:
                err = ""
            if err:
                errs.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved for "
                                                       f"system use only. error: {err}"))
        elif value > HIGHEST_USER_PRIORITY:
            errs.append(forbidden("value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
        pp = obj.get("preemptionPolicy")
        if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
            if not pp:
                errs.append(required("preemptionPolicy"))
            else:
                errs.append(not_supported("preemptionPolicy", pp, ("PreemptLowerPriority", "Never")))
        return
    validate_object_meta_update(meta, old.get("metadata"), errs)
    if value != as_int(old.get("value")):
        errs.append(forbidden("value", "may not be changed in an update."))
    if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errs.append(invalid("preemptionPolicy", obj.get("preemptionPolicy"), FIELD_IMMUTABLE_MSG))


def validate_lease(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    lds = spec.get("leaseDurationSeconds")
    if lds is not None and as_int(lds) <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", as_int(lds), "must be greater than 0"))
    lt = spec.get("leaseTransitions")
    if lt is not None and as_int(lt) < 0:
        errs.append(invalid("spec.leaseTransitions", as_int(lt), "must be greater than or equal to 0"))
    st = spec.get("strategy")
    if st is not None:
        validate_qualified_name("spec.strategy", as_str(st), errs)
    ph = spec.get("preferredHolder")
    if ph is not None and as_str(ph) and st is None:
        errs.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))


# --- events.k8s.io ---------------------------------------------------------------------------------
def validate_events_v1_event(obj: dict, old: dict | None, errs: list) -> None:
    """``ValidateEventCreate``/``Update`` for an events.k8s.io/v1 request (paths are kube's internal names)."""
    meta = as_dict(obj.get("metadata"))
    ns = as_str(meta.get("namespace"))
    regarding = as_dict(obj.get("regarding"))
    rns = as_str(regarding.get("namespace"))
    if not obj.get("eventTime"):
        if not rns:
            if ns not in ("", "default"):
                errs.append(invalid("involvedObject.namespace", rns, "does not match event.namespace"))
        elif ns != rns:
            errs.append(invalid("involvedObject.namespace", rns, "does not match event.namespace"))
    else:
        if not rns and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", rns, "does not match event.namespace"))
        rc = as_str(obj.get("reportingController"))
        if not rc:
            errs.append(required("reportingController"))
        validate_qualified_name("reportingController", rc, errs)
        ri = as_str(obj.get("reportingInstance"))
        if not ri:
            errs.append(required("reportingInstance"))
        if len(ri) > 128:
            errs.append(invalid("reportingInstance", "", "can have at most 128 characters"))
        action = as_str(obj.get("action"))
        if not action:
            errs.append(required("action"))
        if len(action) > 128:
            errs.append(invalid("action", "", "can have at most 128 characters"))
        reason = as_str(obj.get("reason"))
        if not reason:
            errs.append(required("reason"))
        if len(reason) > 128:
            errs.append(invalid("reason", "", "can have at most 128 characters"))
        if len(as_str(obj.get("note"))) > 1024:
            errs.append(invalid("message", "", "can have at most 1024 characters"))
    for msg in name_is_dns_subdomain(ns):
        errs.append(invalid("namespace", ns, msg))
    if old is None:
        validate_object_meta(meta, True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(meta, old.get("metadata"), errs)
    series = obj.get("series")
    if series is not None:
        series = as_dict(series)
        if as_int(series.get("count")) < 2:
            errs.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    if old is None:
        if not obj.get("eventTime"):
            errs.append(required("eventTime"))
        t = as_str(obj.get("type"))
        if t not in ("Normal", "Warning"):
            errs.append(invalid("type", "", f"has invalid value: {t}"))
        if obj.get("deprecatedFirstTimestamp"):
            errs.append(invalid("firstTimestamp", "", "needs to be unset"))
        if obj.get("deprecatedLastTimestamp"):
            errs.append(invalid("lastTimestamp", "", "needs to be unset"))
        if as_int(obj.get("deprecatedCount")) != 0:
            errs.append(invalid("count", "", "needs to be unset"))
        src = as_dict(obj.get("deprecatedSource"))
        if src.get("component") or src.get("host"):
            errs.append(invalid("source", "", "needs to be unset"))
    else:
        for f, internal in (("regarding", "involvedObject"), ("reason", "reason"), ("note", "message"),
                            ("type", "type"), ("eventTime", "eventTime"), ("action", "action"),
                            ("related", "related"), ("reportingController", "reportingController"),
                            ("reportingInstance", "reportingInstance")):
            if obj.get(f) != old.get(f):
                v = obj.get(f)
                errs.append(invalid(internal, v if isinstance(v, str) or v is None else GoRepr("{...}"),
                                    FIELD_IMMUTABLE_MSG))


__all__ = [
    "validate_endpoint_slice", "validate_events_v1_event", "validate_hpa", "validate_hpa_status", "validate_ingress",
    "validate_ingress_class", "validate_ingress_status", "validate_lease", "validate_network_policy", "validate_pdb",
    "validate_pdb_status", "validate_priority_class", "validate_role", "validate_role_binding",
    "validate_storage_class",
]
