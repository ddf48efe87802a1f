"""Pod and PodSpec validation (``pkg/apis/core/validation``); containers, volumes and resources
are in ``validation_container``, ``validation_volumes`` and ``validation_resources``.

Used by Pod itself and by every kind that embeds a pod template.  The public
entry points are :func:`validate_pod_spec`, :func:`validate_pod_template_spec`,
:func:`validate_pod` and :func:`validate_pod_update`.
"""

from __future__ import annotations

import json
import re as _re

from k8py.api.validation_container import _containers, _ephemeral_containers, _id_range, _init_containers, _seccomp
from k8py.api.validation_resources import validate_resource_requirements
from k8py.api.validation_volumes import validate_volumes
from k8py.api.validation_common import (
    GoRepr, as_dict, as_int, as_list, as_str, duplicate, forbidden, go_map, go_quote, go_slice, inclusive_range_error,
    invalid, is_qualified_name, is_valid_ip, is_valid_label_value, name_is_dns_label, name_is_dns_subdomain,
    not_supported, required, spec_diff, validate_annotations, validate_dns1123_label, validate_dns1123_subdomain,
    validate_label_selector, validate_labels, validate_object_meta, validate_object_meta_update, validate_qualified_name,
)

# --- pod-level fields -------------------------------------------------------------------------------
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_tolerations(path: str, tolerations: list, errs: list) -> None:
    for i, t in enumerate(tolerations):
        t = as_dict(t)
        ip = f"{path}[{i}]"
        key = as_str(t.get("key"))
        op = as_str(t.get("operator"))
        effect = as_str(t.get("effect"))
        value = as_str(t.get("value"))
        if key:
            for msg in is_qualified_name(key):
                errs.append(invalid(ip + ".key", key, msg))
        if not key and op != "Exists":
            errs.append(invalid(ip + ".operator", op,
                                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(ip + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            verrs = is_valid_label_value(value)
            if verrs:
                errs.append(invalid(ip + ".operator", value, ";".join(verrs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(ip + ".operator", value, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(ip + ".operator", op, ("Equal", "Exists")))
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(not_supported(ip + ".effect", effect, _TAINT_EFFECTS))


def _node_selector_requirement(path: str, rq: dict, allow_invalid_values: bool, errs: list) -> None:
    op = as_str(rq.get("operator"))
    vals = as_list(rq.get("values"))
    if op in ("In", "NotIn"):
        if not vals:
            errs.append(required(path + ".values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if vals:
            errs.append(forbidden(path + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(vals) != 1:
            errs.append(required(path + ".values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(invalid(path + ".operator", op, "not a valid selector operator"))
    key = as_str(rq.get("key"))
    for msg in is_qualified_name(key):
        errs.append(invalid(path + ".key", key, msg))
    if not allow_invalid_values:
        for j, v in enumerate(vals):
            for msg in is_valid_label_value(as_str(v)):
                errs.append(invalid(f"{path}.values[{j}]", as_str(v), msg))


def _node_selector_term(path: str, term: dict, allow_invalid: bool, errs: list) -> None:
    for j, rq in enumerate(as_list(term.get("matchExpressions"))):
        _node_selector_requirement(f"{path}.matchExpressions[{j}]", as_dict(rq), allow_invalid, errs)
    for j, rq in enumerate(as_list(term.get("matchFields"))):
        rq = as_dict(rq)
        fp = f"{path}.matchFields[{j}]"
        op = as_str(rq.get("operator"))
        if op in ("In", "NotIn"):
            if len(as_list(rq.get("values"))) != 1:
                errs.append(required(fp + ".values",
                                     "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
        else:
            errs.append(invalid(fp + ".operator", op, "not a valid selector operator"))
        key = as_str(rq.get("key"))
        if key != "metadata.name":
            errs.append(invalid(fp + ".key", key, "not a valid field selector key"))
        else:
            for k, v in enumerate(as_list(rq.get("values"))):
                for msg in name_is_dns_subdomain(as_str(v)):
                    errs.append(invalid(f"{fp}.values[{k}]", as_str(v), msg))


def validate_node_selector(path: str, ns: dict, errs: list, allow_invalid: bool = False) -> None:
    terms = as_list(ns.get("nodeSelectorTerms"))
    tp = path + ".nodeSelectorTerms"
    if not terms:
        errs.append(required(tp, "must have at least one node selector term"))
        return
    for i, term in enumerate(terms):
        _node_selector_term(f"{tp}[{i}]", as_dict(term), allow_invalid, errs)


def _pod_affinity_term(path: str, term: dict, errs: list) -> None:
    validate_label_selector(path + ".labelSelector", term.get("labelSelector"), errs)
    validate_label_selector(path + ".namespaceSelector", term.get("namespaceSelector"), errs)
    for ns in as_list(term.get("namespaces")):
        for msg in name_is_dns_label(as_str(ns)):
            errs.append(invalid(path + ".namespace", as_str(ns), msg))
    tk = as_str(term.get("topologyKey"))
    if not tk:
        errs.append(required(path + ".topologyKey", "can not be empty"))
    for msg in is_qualified_name(tk):
        errs.append(invalid(path + ".topologyKey", tk, msg))


def _affinity(path: str, aff: dict, errs: list) -> None:
    na = aff.get("nodeAffinity")
    if na is not None:
        na = as_dict(na)
        np_ = path + ".nodeAffinity"
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            validate_node_selector(np_ + ".requiredDuringSchedulingIgnoredDuringExecution", as_dict(req), errs)
        for i, t in enumerate(as_list(na.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            t = as_dict(t)
            tp = f"{np_}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            w = as_int(t.get("weight"))
            if w <= 0 or w > 100:
                errs.append(invalid(tp + ".weight", w, "must be in the range 1-100"))
            _node_selector_term(tp + ".preference", as_dict(t.get("preference")), True, errs)
    for key in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(key)
        if pa is None:
            continue
        pa = as_dict(pa)
        pp = f"{path}.{key}"
        for i, t in enumerate(as_list(pa.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            _pod_affinity_term(f"{pp}.requiredDuringSchedulingIgnoredDuringExecution[{i}]", as_dict(t), errs)
        for i, t in enumerate(as_list(pa.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            t = as_dict(t)
            tp = f"{pp}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            w = as_int(t.get("weight"))
            if w <= 0 or w > 100:
                errs.append(invalid(tp + ".weight", w, "must be in the range 1-100"))
            _pod_affinity_term(tp + ".podAffinityTerm", as_dict(t.get("podAffinityTerm")), errs)


def _topology_spread(path: str, tscs: list, errs: list) -> None:
    for i, c in enumerate(tscs):
        c = as_dict(c)
        ip = f"{path}[{i}]"
        ms = as_int(c.get("maxSkew"))
        if ms <= 0:
            errs.append(invalid(ip + ".maxSkew", ms, "must be greater than zero"))
        if not as_str(c.get("topologyKey")):
            errs.append(required(ip + ".topologyKey", "can not be empty"))
        wu = as_str(c.get("whenUnsatisfiable"))
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(ip + ".whenUnsatisfiable", wu, ("DoNotSchedule", "ScheduleAnyway")))
        for rest in tscs[i + 1:]:
            rest = as_dict(rest)
            if as_str(rest.get("topologyKey")) == as_str(c.get("topologyKey")) and \
                    as_str(rest.get("whenUnsatisfiable")) == wu:
                errs.append(duplicate(ip + ".{topologyKey, whenUnsatisfiable}",
                                      f"{{{as_str(c.get('topologyKey'))}, {wu}}}"))
                break
        md = c.get("minDomains")
        if md is not None:
            if as_int(md) <= 0:
                errs.append(invalid(ip + ".minDomains", as_int(md), "must be greater than zero"))
            if wu != "DoNotSchedule":
                errs.append(invalid(ip + ".minDomains", as_int(md),
                                    f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}"))
        for key in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(key)
            if v is not None and v not in ("Honor", "Ignore"):
                errs.append(not_supported(f"{ip}.{key}", v, ("Honor", "Ignore")))
        validate_label_selector(ip + ".labelSelector", c.get("labelSelector"), errs)


def _pod_security_context(path: str, sc: dict, errs: list) -> None:
    _id_range(path + ".fsGroup", sc.get("fsGroup"), errs)
    _id_range(path + ".runAsUser", sc.get("runAsUser"), errs)
    _id_range(path + ".runAsGroup", sc.get("runAsGroup"), errs)
    for g, gid in enumerate(as_list(sc.get("supplementalGroups"))):
        _id_range(f"{path}.supplementalGroups[{g}]", gid, errs)
    fcp = sc.get("fsGroupChangePolicy")
    if fcp is not None and fcp not in ("Always", "OnRootMismatch"):
        errs.append(not_supported(path + ".fsGroupChangePolicy", fcp, ("Always", "OnRootMismatch")))
    names: set[str] = set()
    for i, s in enumerate(as_list(sc.get("sysctls"))):
        n = as_str(as_dict(s).get("name"))
        sp = f"{path}.sysctls[{i}].name"
        if not n:
            errs.append(required(sp))
        elif len(n) > 253 or not _SYSCTL_RE.match(n):
            errs.append(invalid(sp, n, f"must have at most 253 characters and match regex {_SYSCTL_FMT}"))
        elif n in names:
            errs.append(duplicate(sp, n))
        names.add(n)
    _seccomp(path + ".seccompProfile", sc.get("seccompProfile"), errs)
    sgp = sc.get("supplementalGroupsPolicy")
    if sgp is not None and sgp not in ("Merge", "Strict"):
        errs.append(not_supported(path + ".supplementalGroupsPolicy", sgp, ("Merge", "Strict")))


_SYSCTL_SEG = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = "^(" + _SYSCTL_SEG + "[\\./])*" + _SYSCTL_SEG + "$"
_SYSCTL_RE = _re.compile(_SYSCTL_FMT)


def _dns_config(path: str, cfg: object, policy: str, errs: list) -> None:
    if policy == "None":
        if cfg is None:
            errs.append(required(path, "must provide `dnsConfig` when `dnsPolicy` is None"))
            return
        if not as_list(as_dict(cfg).get("nameservers")):
            errs.append(required(path + ".nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"))
            return
    if cfg is None:
        return
    cfg = as_dict(cfg)
    ns = as_list(cfg.get("nameservers"))
    if len(ns) > 3:
        errs.append(invalid(path + ".nameservers", GoRepr(go_slice(ns, "[]string")), "must not have more than 3 nameservers"))
    for i, n in enumerate(ns):
        is_valid_ip(f"{path}.nameservers[{i}]", as_str(n), errs)
    searches = [as_str(s) for s in as_list(cfg.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid(path + ".searches", GoRepr(go_slice(searches, "[]string")),
                            "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid(path + ".searches", GoRepr(go_slice(searches, "[]string")),
                            "must not have more than 2048 characters (including spaces) in the search list"))
    for i, s in enumerate(searches):
        validate_dns1123_subdomain(f"{path}.searches[{i}]", s[:-1] if s.endswith(".") else s, errs)
    for i, o in enumerate(as_list(cfg.get("options"))):
        if not as_str(as_dict(o).get("name")):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))


def validate_pod_spec(spec: dict, path: str, errs: list, pod_name: str = "", is_pod: bool = False) -> None:
    """``ValidatePodSpec``."""
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(path + ".terminationGracePeriodSeconds"))
    restart_policy = as_str(spec.get("restartPolicy"))
    volumes = validate_volumes(path + ".volumes", as_list(spec.get("volumes")), pod_name, errs) \
        if spec.get("volumes") else {}
    claims = as_list(spec.get("resourceClaims"))
    pod_claims = frozenset(as_str(as_dict(c).get("name")) for c in claims if as_str(as_dict(c).get("name")))
    if claims:
        seen: set[str] = set()
        for i, c in enumerate(claims):
            c = as_dict(c)
            cp = f"{path}.resourceClaims[{i}]"
            cn = as_str(c.get("name"))
            if not cn:
                errs.append(required(cp + ".name"))
            elif cn in seen:
                errs.append(duplicate(cp + ".name", cn))
            else:
                validate_dns1123_label(cp + ".name", cn, errs)
                seen.add(cn)
    containers = as_list(spec.get("containers"))
    inits = as_list(spec.get("initContainers"))
    _containers(path + ".containers", containers, volumes, pod_claims, grace, restart_policy, errs)
    if inits:
        _init_containers(path + ".initContainers", inits, containers, volumes, pod_claims, grace, restart_policy, errs)
    ecs = as_list(spec.get("ephemeralContainers"))
    if ecs:
        _ephemeral_containers(path + ".ephemeralContainers", ecs, containers, inits, volumes, pod_claims,
                              restart_policy, errs)
    if spec.get("hostNetwork"):
        for i, c in enumerate(containers):
            for j, port in enumerate(as_list(as_dict(c).get("ports"))):
                port = as_dict(port)
                hp, cp = as_int(port.get("hostPort")), as_int(port.get("containerPort"))
                if (is_pod or hp != 0) and hp != cp:
                    errs.append(invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                        "must match `containerPort` when `hostNetwork` is true"))
    if restart_policy not in _RESTART_POLICIES:
        if not restart_policy:
            errs.append(required(path + ".restartPolicy"))
        else:
            errs.append(not_supported(path + ".restartPolicy", restart_policy, _RESTART_POLICIES))
    dns_policy = as_str(spec.get("dnsPolicy"))
    if dns_policy not in _DNS_POLICIES:
        if not dns_policy:
            errs.append(required(path + ".dnsPolicy"))
        else:
            errs.append(not_supported(path + ".dnsPolicy", dns_policy, _DNS_POLICIES))
    if spec.get("nodeSelector"):
        validate_labels(path + ".nodeSelector", spec.get("nodeSelector"), errs)
    sc = spec.get("securityContext")
    if sc:
        sc = as_dict(sc)
        _pod_security_context(path + ".securityContext", sc, errs)
        if sc.get("shareProcessNamespace") is True and spec.get("hostPID"):
            errs.append(invalid(path + ".securityContext.shareProcessNamespace", True,
                                "ShareProcessNamespace and HostPID cannot both be enabled"))
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID"):
        errs.append(invalid(path + ".securityContext.shareProcessNamespace", True,
                            "ShareProcessNamespace and HostPID cannot both be enabled"))
    for i, ips in enumerate(as_list(spec.get("imagePullSecrets"))):
        ips = as_dict(ips)
        if set(ips) - {"name"}:
            errs.append(invalid(f"{path}.imagePullSecrets[{i}]",
                                GoRepr(f'core.LocalObjectReference{{Name:{json.dumps(as_str(ips.get("name")))}}}'),
                                "only name may be set"))
    if spec.get("affinity"):
        _affinity(path + ".affinity", as_dict(spec.get("affinity")), errs)
    _dns_config(path + ".dnsConfig", spec.get("dnsConfig"), dns_policy, errs)
    for i, rg in enumerate(as_list(spec.get("readinessGates"))):
        validate_qualified_name(f"{path}.readinessGates[{i}].conditionType",
                                as_str(as_dict(rg).get("conditionType")), errs)
    seen_gates: set[str] = set()
    for i, g in enumerate(as_list(spec.get("schedulingGates"))):
        gn = as_str(as_dict(g).get("name"))
        validate_qualified_name(f"{path}.schedulingGates[{i}]", gn, errs)
        if gn in seen_gates:
            errs.append(duplicate(f"{path}.schedulingGates[{i}]", gn))
        seen_gates.add(gn)
    if spec.get("topologySpreadConstraints"):
        _topology_spread(path + ".topologySpreadConstraints", as_list(spec.get("topologySpreadConstraints")), errs)
    san = as_str(spec.get("serviceAccountName"))
    if san:
        for msg in name_is_dns_subdomain(san):
            errs.append(invalid(path + ".serviceAccountName", san, msg))
    node = as_str(spec.get("nodeName"))
    if node:
        for msg in name_is_dns_subdomain(node):
            errs.append(invalid(path + ".nodeName", node, msg))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        v = as_int(ads)
        if v < 1 or v > 2147483647:
            errs.append(invalid(path + ".activeDeadlineSeconds", v, inclusive_range_error(1, 2147483647)))
    hn = as_str(spec.get("hostname"))
    if hn:
        validate_dns1123_label(path + ".hostname", hn, errs)
    sd = as_str(spec.get("subdomain"))
    if sd:
        validate_dns1123_label(path + ".subdomain", sd, errs)
    if spec.get("tolerations"):
        validate_tolerations(path + ".tolerations", as_list(spec.get("tolerations")), errs)
    for i, ha in enumerate(as_list(spec.get("hostAliases"))):
        ha = as_dict(ha)
        is_valid_ip(f"{path}.hostAliases[{i}].ip", as_str(ha.get("ip")), errs)
        for j, h in enumerate(as_list(ha.get("hostnames"))):
            validate_dns1123_subdomain(f"{path}.hostAliases[{i}].hostnames[{j}]", as_str(h), errs)
    pcn = as_str(spec.get("priorityClassName"))
    if pcn:
        for msg in name_is_dns_subdomain(pcn):
            errs.append(invalid(path + ".priorityClassName", pcn, msg))
    rcn = spec.get("runtimeClassName")
    if rcn is not None:
        validate_dns1123_subdomain(path + ".runtimeClassName", as_str(rcn), errs)
    pp = spec.get("preemptionPolicy")
    if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
        if not pp:
            errs.append(required(path + ".preemptionPolicy"))
        else:
            errs.append(not_supported(path + ".preemptionPolicy", pp, ("PreemptLowerPriority", "Never")))
    if spec.get("overhead"):
        validate_resource_requirements(path + ".overhead", {"limits": spec.get("overhead")}, errs)
    os_ = spec.get("os")
    if os_ is not None:
        osn = as_str(as_dict(os_).get("name"))
        if not osn:
            errs.append(required(path + ".os.name", "cannot be empty"))
        elif osn not in ("linux", "windows"):
            errs.append(not_supported(path + ".os", osn, ("linux", "windows")))


_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_MIRROR = "kubernetes.io/config.mirror"


def validate_pod_specific_annotations(path: str, annotations: dict, spec: dict, errs: list) -> None:
    if _MIRROR in annotations and not as_str(spec.get("nodeName")):
        errs.append(invalid(f"{path}[{_MIRROR}]", annotations[_MIRROR], "must set spec.nodeName if mirror pod "
                                                                         "annotation is set"))
    if _DELETION_COST in annotations:
        v = annotations[_DELETION_COST]
        ok = isinstance(v, str) and _re.fullmatch(r"[+-]?[0-9]+", v) is not None and -(2 ** 31) <= int(v) < 2 ** 31
        if not ok:
            errs.append(invalid(f"{path}[{_DELETION_COST}]", v, "must be a 32bit integer"))


def validate_pod_template_spec(path: str, tmpl: dict, errs: list) -> None:
    """``ValidatePodTemplateSpec`` (labels, annotations, spec; no ephemeral containers)."""
    meta = as_dict(tmpl.get("metadata"))
    validate_labels(path + ".labels", meta.get("labels"), errs)
    ann = meta.get("annotations")
    if ann:
        validate_annotations(path + ".annotations", ann, errs)
        validate_pod_specific_annotations(path + ".annotations", as_dict(ann), as_dict(tmpl.get("spec")), errs)
    spec = as_dict(tmpl.get("spec"))
    validate_pod_spec(spec, path + ".spec", errs)
    if spec.get("ephemeralContainers"):
        errs.append(forbidden(path + ".spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))


def _pod_metadata_and_spec(pod: dict, errs: list) -> None:
    meta = as_dict(pod.get("metadata"))
    spec = as_dict(pod.get("spec"))
    validate_object_meta(meta, True, name_is_dns_subdomain, errs)
    ann = meta.get("annotations")
    if ann:
        validate_pod_specific_annotations("metadata.annotations", as_dict(ann), spec, errs)
    validate_pod_spec(spec, "spec", errs, as_str(meta.get("name")), True)
    if not as_str(spec.get("serviceAccountName")):
        for vi, vol in enumerate(as_list(spec.get("volumes"))):
            proj = as_dict(vol).get("projected")
            if proj is None:
                continue
            for si, src in enumerate(as_list(as_dict(proj).get("sources"))):
                if as_dict(src).get("serviceAccountToken") is not None:
                    errs.append(forbidden(f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                                          "must not be specified when serviceAccountName is not set"))
    for key in ("containers", "initContainers"):
        for i, c in enumerate(as_list(spec.get(key))):
            image = as_str(as_dict(c).get("image"))
            if len(image) != len(image.strip()):
                errs.append(invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace"))


def validate_pod(pod: dict, errs: list) -> None:
    """``ValidatePodCreate``."""
    _pod_metadata_and_spec(pod, errs)
    spec = as_dict(pod.get("spec"))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if as_str(spec.get("nodeName")) and spec.get("schedulingGates"):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))


_UPDATABLE_POD_FIELDS = ",".join((
    "`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
))


def _toleration_key(t: dict) -> tuple:
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in t.items() if k != "tolerationSeconds"))


def validate_pod_update(new: dict, old: dict, errs: list) -> None:
    """``ValidatePodUpdate``."""
    validate_object_meta_update(new.get("metadata"), old.get("metadata"), errs)
    _pod_metadata_and_spec(new, errs)
    _mirror_annotation_update(new, old, errs)
    ns, os_ = as_dict(new.get("spec")), as_dict(old.get("spec"))
    for key in ("containers", "initContainers"):
        nc, oc = as_list(ns.get(key)), as_list(os_.get(key))
        if len(nc) != len(oc):
            errs.append(forbidden("spec." + key, "pod updates may not add or remove containers"))
            return
        for i, c in enumerate(nc):
            image = as_str(as_dict(c).get("image"))
            if not image:
                errs.append(required(f"spec.{key}[{i}].image"))
            if len(image.strip()) != len(image):
                errs.append(invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace"))
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        v = as_int(nads)
        if v < 0 or v > 2147483647:
            errs.append(invalid("spec.activeDeadlineSeconds", v, inclusive_range_error(0, 2147483647)))
            return
        if oads is not None and as_int(oads) < v:
            errs.append(invalid("spec.activeDeadlineSeconds", v, "must be less than or equal to previous value"))
            return
    elif oads is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    new_tols = [as_dict(t) for t in as_list(ns.get("tolerations"))]
    new_keys = {_toleration_key(t) for t in new_tols}
    for t in as_list(os_.get("tolerations")):
        if _toleration_key(as_dict(t)) not in new_keys:
            errs.append(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
            break
    old_gates = {as_str(as_dict(g).get("name")) for g in as_list(os_.get("schedulingGates"))}
    for i, g in enumerate(as_list(ns.get("schedulingGates"))):
        gn = as_str(as_dict(g).get("name"))
        if gn not in old_gates:
            errs.append(forbidden(f"spec.schedulingGates[{i}].name",
                                  f"only deletion is allowed, but found new scheduling gate '{gn}'"))
    if ns == os_:
        return
    munged = dict(ns)
    for key in ("containers", "initContainers"):
        if key in munged:
            munged[key] = [dict(as_dict(c), image=as_dict(oc).get("image")) if "image" in as_dict(oc) else
                           {k: v for k, v in as_dict(c).items() if k != "image"}
                           for c, oc in zip(as_list(ns.get(key)), as_list(os_.get(key)))]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in os_:
            munged[key] = os_[key]
    otg = os_.get("terminationGracePeriodSeconds")
    if isinstance(otg, int) and otg < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = otg
    if os_.get("schedulingGates"):
        nsel, osel = as_dict(munged.get("nodeSelector")), as_dict(os_.get("nodeSelector"))
        if nsel != osel:
            for k, v in osel.items():
                if nsel.get(k) != v:
                    errs.append(invalid("spec.nodeSelector", GoRepr(go_map(nsel, "map[string]string")),
                                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
                    break
            if "nodeSelector" in os_:
                munged["nodeSelector"] = os_["nodeSelector"]
            else:
                munged.pop("nodeSelector", None)
        naff = as_dict(as_dict(munged.get("affinity")).get("nodeAffinity"))
        oaff = as_dict(as_dict(os_.get("affinity")).get("nodeAffinity"))
        if naff != oaff:
            aff = dict(as_dict(munged.get("affinity")))
            if oaff:
                aff["nodeAffinity"] = oaff
            else:
                aff.pop("nodeAffinity", None)
            if aff or "affinity" in os_:
                munged["affinity"] = aff
            else:
                munged.pop("affinity", None)
    if munged != os_:
        errs.append(forbidden("spec", f"pod updates may not change fields other than {_UPDATABLE_POD_FIELDS}\n"
                                      + spec_diff("core.PodSpec", os_, munged)))


def _mirror_annotation_update(new: dict, old: dict, errs: list) -> None:
    """``ValidatePodSpecificAnnotationUpdates`` (the mirror-pod annotation is immutable)."""
    nm = as_dict(as_dict(new.get("metadata")).get("annotations"))
    om = as_dict(as_dict(old.get("metadata")).get("annotations"))
    if (_MIRROR in om or _MIRROR in nm) and om.get(_MIRROR) != nm.get(_MIRROR):
        errs.append(forbidden(f"metadata.annotations[{_MIRROR}]",
                              "may not add mirror pod annotation" if _MIRROR not in om else
                              "may not remove or update mirror pod annotation"))


def validate_pod_ephemeral_containers_update(new: dict, old: dict, errs: list) -> None:
    """``ValidatePodEphemeralContainersUpdate`` (the ``ephemeralcontainers`` subresource).

    ``new`` must be ``old`` with only ``spec.ephemeralContainers`` taken from the request (kube's
    ``dropNonEphemeralContainerUpdates``).  Existing ephemeral containers may be neither removed nor
    changed; the diff in the "may not be changed" message is a JSON rendering, not Go's ``cmp.Diff``.
    """
    validate_object_meta_update(new.get("metadata"), old.get("metadata"), errs)
    _pod_metadata_and_spec(new, errs)
    _mirror_annotation_update(new, old, errs)
    if _MIRROR in as_dict(as_dict(old.get("metadata")).get("annotations")):
        errs[:] = [forbidden("", "static pods do not support ephemeral containers")]
        return
    by_name = {}
    for c in as_list(as_dict(new.get("spec")).get("ephemeralContainers")):
        c = as_dict(c)
        by_name[as_str(c.get("name"))] = c
    for oc in as_list(as_dict(old.get("spec")).get("ephemeralContainers")):
        oc = as_dict(oc)
        name = as_str(oc.get("name"))
        nc = by_name.get(name)
        if nc is None:
            errs.append(forbidden("spec.ephemeralContainers",
                                  f"existing ephemeral containers {go_quote(name)} may not be removed\n"))
        elif nc != oc:
            errs.append(forbidden("spec.ephemeralContainers",
                                  f"existing ephemeral containers {go_quote(name)} may not be changed\n"
                                  + spec_diff("core.PodSpec", oc, nc).replace("core.PodSpec", "core.EphemeralContainer")))


def validate_pod_status_update(new: dict, old: dict, errs: list) -> None:
    """``ValidatePodStatusUpdate`` (the checks that matter for a status write)."""
    validate_object_meta_update(new.get("metadata"), old.get("metadata"), errs)
    status = as_dict(new.get("status"))
    for i, c in enumerate(as_list(status.get("conditions"))):
        t = as_str(as_dict(c).get("type"))
        if t not in ("PodScheduled", "Ready", "Initialized"):
            validate_qualified_name(f"metadata.conditions[{i}].Type", t, errs)
    if as_str(as_dict(new.get("spec")).get("nodeName")) != as_str(as_dict(old.get("spec")).get("nodeName")):
        errs.append(forbidden("status.nodeName", "may not be changed directly"))
    nnn = as_str(status.get("nominatedNodeName"))
    if nnn and nnn != as_str(as_dict(old.get("status")).get("nominatedNodeName")):
        for msg in name_is_dns_subdomain(nnn):
            errs.append(invalid("status.nominatedNodeName", nnn, msg))
    oq = as_str(as_dict(old.get("status")).get("qosClass"))
    nq = as_str(status.get("qosClass"))
    if nq != oq:
        errs.append(invalid("status.qosClass", nq, "field is immutable"))
    for i, ip in enumerate(as_list(status.get("podIPs"))):
        is_valid_ip(f"status.podIPs[{i}]", as_str(as_dict(ip).get("ip")), errs)
    host_ips = as_list(status.get("hostIPs"))
    if host_ips:
        if as_str(status.get("hostIP")) != as_str(as_dict(host_ips[0]).get("ip")):
            errs.append(invalid("status.hostIPs[0].ip", as_str(as_dict(host_ips[0]).get("ip")),
                                "must be equal to `hostIP`"))
        for i, ip in enumerate(host_ips):
            is_valid_ip(f"status.hostIPs[{i}]", as_str(as_dict(ip).get("ip")), errs)


def validate_binding(binding: dict, errs: list) -> None:
    target = as_dict(binding.get("target"))
    kind = as_str(target.get("kind"))
    if kind and kind != "Node":
        errs.append(not_supported("target.kind", kind, ("Node", "<empty>")))
    if not as_str(target.get("name")):
        errs.append(required("target.name"))


__all__ = [
    "is_extended_resource", "is_hugepage", "is_integer_resource", "is_native_resource", "is_overcommit_allowed",
    "validate_binding", "validate_container_resource_name", "validate_node_selector", "validate_pod",
    "validate_pod_spec", "validate_pod_status_update", "validate_pod_template_spec", "validate_pod_update",
    "validate_quota_resource_name", "validate_resource_name", "validate_resource_quantity",
    "validate_resource_requirements", "validate_tolerations", "validate_volumes",
]

