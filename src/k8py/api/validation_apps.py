"""Validation of apps/v1 kinds (``pkg/apis/apps/validation``)."""

from __future__ import annotations

import re

from k8py.api.validation_common import (
    FIELD_IMMUTABLE_MSG, IS_NEGATIVE_MSG, GoRepr, as_dict, as_int, as_str, forbidden, go_label_selector, go_map,
    go_quote, intstr_repr, invalid, is_valid_percent, name_is_dns_label, name_is_dns_subdomain, not_supported, required,
    selector_or_none, str_map, validate_annotations, validate_label_selector, validate_labels, validate_nonnegative,
    validate_object_meta, validate_object_meta_update,
)
from k8py.api.validation_core import replica_status_checks
from k8py.api.validation_pod import validate_pod_specific_annotations, validate_pod_template_spec

_PERCENT_RE = re.compile(r"[0-9]+%\Z")


def _int_or_percent_value(v: object) -> int:
    if isinstance(v, str):
        if _PERCENT_RE.match(v):
            return int(v[:-1])
        try:
            return int(v)
        except ValueError:
            return 0
    return as_int(v)


def validate_positive_int_or_percent(path: str, v: object, errs: list) -> None:
    if isinstance(v, str):
        for msg in is_valid_percent(v):
            errs.append(invalid(path, intstr_repr(v), msg))
    elif isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            errs.append(invalid(path, v, IS_NEGATIVE_MSG))
    else:
        errs.append(invalid(path, intstr_repr(v), "must be an integer or percentage (e.g '5%%')"))


def is_not_more_than_100_percent(path: str, v: object, errs: list) -> None:
    if isinstance(v, str) and _PERCENT_RE.match(v) and int(v[:-1]) > 100:
        errs.append(invalid(path, intstr_repr(v), "must not be greater than 100%"))


def _selector_and_template(spec: dict, errs: list, kind: str, validate_template: bool = True) -> None:
    """Selector required/non-empty, must match template labels; template validation; restartPolicy Always."""
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector"))
    else:
        validate_label_selector("spec.selector", sel, errs)
        sd = as_dict(sel)
        if not sd.get("matchLabels") and not sd.get("matchExpressions"):
            errs.append(invalid("spec.selector", go_label_selector(sd), f"empty selector is invalid for {kind}"))
    selector = selector_or_none(sel)
    tmpl = as_dict(spec.get("template"))
    labels = as_dict(tmpl.get("metadata")).get("labels")
    if selector is None:
        errs.append(invalid("spec.selector", go_label_selector(as_dict(sel)), "invalid label selector"))
        return
    if not selector.empty() and not selector.matches(str_map(labels) or {}):
        errs.append(invalid("spec.template.metadata.labels",
                            GoRepr(go_map(labels if isinstance(labels, dict) else None, "map[string]string")),
                            "`selector` does not match template `labels`"))
    if validate_template:
        validate_pod_template_spec("spec.template", tmpl, errs)
    tspec = as_dict(tmpl.get("spec"))
    rp = as_str(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, ("Always",)))


# --- Deployment / ReplicaSet ------------------------------------------------------------------------
def _strategy_repr(strategy: dict) -> GoRepr:
    ru = "(*apps.RollingUpdateDeployment)(nil)" if strategy.get("rollingUpdate") is None else \
        "(*apps.RollingUpdateDeployment)(0xc000000000)"
    return GoRepr(f'apps.DeploymentStrategy{{Type:{go_quote(as_str(strategy.get("type")))}, RollingUpdate:{ru}}}')


def validate_deployment(obj: dict, old: dict | None, errs: list) -> None:
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    spec = as_dict(obj.get("spec"))
    validate_nonnegative("spec.replicas", spec.get("replicas"), errs)
    _selector_and_template(spec, errs, "deployment")
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicaSet is not Supported"))
    strategy = as_dict(spec.get("strategy"))
    st = as_str(strategy.get("type"))
    if st == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif st == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            errs.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            ru = as_dict(ru)
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            validate_positive_int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", mu, errs)
            validate_positive_int_or_percent("spec.strategy.rollingUpdate.maxSurge", ms, errs)
            if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
                errs.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", intstr_repr(mu),
                                    "may not be 0 when `maxSurge` is 0"))
            is_not_more_than_100_percent("spec.strategy.rollingUpdate.maxUnavailable", mu, errs)
    else:
        errs.append(not_supported("spec.strategy", _strategy_repr(strategy), ("Recreate", "RollingUpdate")))
    mrs = as_int(spec.get("minReadySeconds"))
    validate_nonnegative("spec.minReadySeconds", mrs, errs)
    if spec.get("revisionHistoryLimit") is not None:
        validate_nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"), errs)
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        validate_nonnegative("spec.progressDeadlineSeconds", pds, errs)
        if as_int(pds) <= mrs:
            errs.append(invalid("spec.progressDeadlineSeconds", as_int(pds), "must be greater than minReadySeconds"))
    if old is not None and as_dict(spec.get("selector")) != as_dict(as_dict(old.get("spec")).get("selector")):
        # apps/v1 strategy: the selector is immutable
        errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG))


def validate_replicaset(obj: dict, old: dict | None, errs: list) -> None:
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    spec = as_dict(obj.get("spec"))
    validate_nonnegative("spec.replicas", spec.get("replicas"), errs)
    validate_nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"), errs)
    _selector_and_template(spec, errs, "deployment")
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicaSet is not Supported"))
    if old is not None and as_dict(spec.get("selector")) != as_dict(as_dict(old.get("spec")).get("selector")):
        errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG))


def validate_deployment_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    for f in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
              "unavailableReplicas", "collisionCount"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)
    replicas = as_int(status.get("replicas"))
    for f in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if as_int(status.get(f)) > replicas:
            errs.append(invalid(f"status.{f}", as_int(status.get(f)), "cannot be greater than status.replicas"))
    if as_int(status.get("availableReplicas")) > as_int(status.get("readyReplicas")):
        errs.append(invalid("status.availableReplicas", as_int(status.get("availableReplicas")),
                            "cannot be greater than readyReplicas"))
    _collision_count(status, as_dict(old.get("status")), errs)


def validate_replicaset_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    replica_status_checks(as_dict(obj.get("status")), errs, ("fullyLabeledReplicas",))


def _collision_count(status: dict, old_status: dict, errs: list) -> None:
    new, oldv = status.get("collisionCount"), old_status.get("collisionCount")
    if (new is None and oldv is not None) or (new is not None and oldv is not None and as_int(new) < as_int(oldv)):
        errs.append(invalid("status.collisionCount", as_int(new), "cannot be decremented"))


# --- StatefulSet ------------------------------------------------------------------------------------
def validate_statefulset(obj: dict, old: dict | None, errs: list) -> None:
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns_label, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    spec = as_dict(obj.get("spec"))
    pmp = as_str(spec.get("podManagementPolicy"))
    if not pmp:
        errs.append(required("spec.podManagementPolicy"))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"))
    us = as_dict(spec.get("updateStrategy"))
    ut = as_str(us.get("type"))
    if not ut:
        errs.append(required("spec.updateStrategy"))
    elif ut == "OnDelete":
        if us.get("rollingUpdate") is not None:
            errs.append(invalid("spec.updateStrategy.rollingUpdate",
                                GoRepr("&apps.RollingUpdateStatefulSetStrategy{...}"),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif ut == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if ru is not None:
            ru = as_dict(ru)
            validate_nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"), errs)
            mu = ru.get("maxUnavailable")
            if mu is not None:
                mp = "spec.updateStrategy.rollingUpdate.maxUnavailable"
                validate_positive_int_or_percent(mp, mu, errs)
                if _int_or_percent_value(mu) == 0:
                    errs.append(invalid(mp, intstr_repr(mu), "cannot be 0"))
                is_not_more_than_100_percent(mp, mu, errs)
    else:
        errs.append(invalid("spec.updateStrategy",
                            GoRepr(f'apps.StatefulSetUpdateStrategy{{Type:{go_quote(ut)}, RollingUpdate:'
                                   f'(*apps.RollingUpdateStatefulSetStrategy)(nil)}}'),
                            "must be 'RollingUpdate' or 'OnDelete'"))
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if pol is not None:
        pol = as_dict(pol)
        for f in ("whenDeleted", "whenScaled"):
            v = as_str(pol.get(f))
            if v not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{f}", v, ("Retain", "Delete")))
    validate_nonnegative("spec.replicas", spec.get("replicas"), errs)
    validate_nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"), errs)
    if spec.get("ordinals") is not None:
        validate_nonnegative("spec.ordinals.start", as_dict(spec.get("ordinals")).get("start"), errs)
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector"))
    else:
        validate_label_selector("spec.selector", sel, errs)
        sd = as_dict(sel)
        if not sd.get("matchLabels") and not sd.get("matchExpressions"):
            errs.append(invalid("spec.selector", go_label_selector(sd), "empty selector is invalid for statefulset"))
    selector = selector_or_none(sel)
    tmpl = as_dict(spec.get("template"))
    tmeta = as_dict(tmpl.get("metadata"))
    if selector is None:
        errs.append(invalid("spec.selector", go_label_selector(as_dict(sel)), ""))
    else:
        labels = tmeta.get("labels")
        if not selector.empty() and not selector.matches(str_map(labels) or {}):
            errs.append(invalid("spec.template.metadata.labels",
                                GoRepr(go_map(labels if isinstance(labels, dict) else None, "map[string]string")),
                                "`selector` does not match template `labels`"))
        validate_labels("spec.template.labels", tmeta.get("labels"), errs)
        ann = tmeta.get("annotations")
        if ann:
            validate_annotations("spec.template.annotations", ann, errs)
            validate_pod_specific_annotations("spec.template.annotations", as_dict(ann), as_dict(tmpl.get("spec")),
                                              errs)
    tspec = as_dict(tmpl.get("spec"))
    rp = as_str(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in StatefulSet is not Supported"))
    if old is not None:
        ospec = as_dict(old.get("spec"))
        mutable = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                   "persistentVolumeClaimRetentionPolicy")
        a = {k: v for k, v in spec.items() if k not in mutable}
        b = {k: v for k, v in ospec.items() if k not in mutable}
        if a != b:
            errs.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                          "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                          "'minReadySeconds' are forbidden"))


def validate_statefulset_status(obj: dict, old: dict, errs: list) -> None:
    status = as_dict(obj.get("status"))
    for f in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
              "observedGeneration", "collisionCount"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)
    replicas = as_int(status.get("replicas"))
    for f in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        if as_int(status.get(f)) > replicas:
            errs.append(invalid(f"status.{f}", as_int(status.get(f)), "cannot be greater than status.replicas"))
    if as_int(status.get("availableReplicas")) > as_int(status.get("readyReplicas")):
        errs.append(invalid("status.availableReplicas", as_int(status.get("availableReplicas")),
                            "cannot be greater than status.readyReplicas"))
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    _collision_count(status, as_dict(old.get("status")), errs)


# --- DaemonSet -------------------------------------------------------------------------------------
def validate_daemonset(obj: dict, old: dict | None, errs: list) -> None:
    spec = as_dict(obj.get("spec"))
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    sel = spec.get("selector")
    validate_label_selector("spec.selector", sel, errs)
    selector = selector_or_none(sel)
    tmpl = as_dict(spec.get("template"))
    labels = as_dict(tmpl.get("metadata")).get("labels")
    if selector is not None and not selector.matches(str_map(labels) or {}):
        errs.append(invalid("spec.template.metadata.labels",
                            GoRepr(go_map(labels if isinstance(labels, dict) else None, "map[string]string")),
                            "`selector` does not match template `labels`"))
    if sel is not None and not as_dict(sel).get("matchLabels") and not as_dict(sel).get("matchExpressions"):
        errs.append(invalid("spec.selector", go_label_selector(as_dict(sel)), "empty selector is invalid for daemonset"))
    validate_pod_template_spec("spec.template", tmpl, errs)
    tspec = as_dict(tmpl.get("spec"))
    rp = as_str(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in DaemonSet is not Supported"))
    validate_nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"), errs)
    us = as_dict(spec.get("updateStrategy"))
    ut = as_str(us.get("type"))
    if ut == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if ru is None:
            errs.append(required("spec.updateStrategy.rollingUpdate"))
        else:
            ru = as_dict(ru)
            rp_ = "spec.updateStrategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            validate_positive_int_or_percent(rp_ + ".maxUnavailable", mu, errs)
            validate_positive_int_or_percent(rp_ + ".maxSurge", ms, errs)
            is_not_more_than_100_percent(rp_ + ".maxUnavailable", mu, errs)
            is_not_more_than_100_percent(rp_ + ".maxSurge", ms, errs)
            has_u = _int_or_percent_value(mu) != 0
            has_s = _int_or_percent_value(ms) != 0
            if has_u and has_s:
                errs.append(invalid(rp_ + ".maxSurge", intstr_repr(ms), "may not be set when maxUnavailable is non-zero"))
            elif not has_u and not has_s:
                errs.append(required(rp_ + ".maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif ut != "OnDelete":
        errs.append(not_supported("spec.updateStrategy",
                                  GoRepr(f'apps.DaemonSetUpdateStrategy{{Type:{go_quote(ut)}, RollingUpdate:'
                                         f'(*apps.RollingUpdateDaemonSet)(nil)}}'), ("RollingUpdate", "OnDelete")))
    if spec.get("revisionHistoryLimit") is not None:
        validate_nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"), errs)
    if old is not None and as_dict(spec.get("selector")) != as_dict(as_dict(old.get("spec")).get("selector")):
        errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG))


def validate_daemonset_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    for f in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
              "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
              "collisionCount"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)
    _collision_count(status, as_dict(old.get("status")), errs)


# --- ControllerRevision -----------------------------------------------------------------------------
def validate_controller_revision(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    validate_nonnegative("revision", obj.get("revision"), errs)
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(invalid("data", GoRepr("runtime.RawExtension{...}"), FIELD_IMMUTABLE_MSG))


__all__ = [
    "is_not_more_than_100_percent", "validate_controller_revision", "validate_daemonset",
    "validate_daemonset_status", "validate_deployment", "validate_deployment_status", "validate_positive_int_or_percent",
    "validate_replicaset", "validate_replicaset_status", "validate_statefulset", "validate_statefulset_status",
]
