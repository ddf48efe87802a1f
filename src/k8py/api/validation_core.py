"""Validation of core/v1 kinds other than Pod (``pkg/apis/core/validation``).

Each ``validate_<kind>(obj, old, errs)`` handles create (``old is None``) and update.
"""

from __future__ import annotations

import json

from k8py.api.labels import selector_from_set
from k8py.api.validation_common import (
    FIELD_IMMUTABLE_MSG, GoRepr, as_dict, as_int, as_list, as_str, decoded_len, duplicate, forbidden, go_map, go_quote,
    go_slice, invalid, is_config_map_key, is_qualified_name, is_valid_cidr, is_valid_label_value, name_is_dns_label,
    name_is_dns_subdomain, not_supported, parse_q, required, spec_diff, str_map, too_long, validate_dns1123_subdomain,
    validate_label_selector, validate_meta, validate_nonnegative, validate_object_meta, validate_object_meta_update,
    validate_qualified_name,
)
from k8py.api.validation_pod import validate_node_selector, validate_pod_template_spec
from k8py.api.validation_resources import (
    validate_container_resource_name, validate_quota_resource_name, validate_resource_name, validate_resource_quantity,
)

MAX_SECRET_SIZE = 1024 * 1024


# --- ConfigMap / Secret ---------------------------------------------------------------------------------
def validate_configmap(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if (obj.get("data") or None) != (old.get("data") or None):
                errs.append(forbidden("data", "field is immutable when `immutable` is set"))
            if (obj.get("binaryData") or None) != (old.get("binaryData") or None):
                errs.append(forbidden("binaryData", "field is immutable when `immutable` is set"))
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    data = as_dict(obj.get("data"))
    binary = as_dict(obj.get("binaryData"))
    total = 0
    for k, v in data.items():
        for msg in is_config_map_key(k):
            errs.append(invalid(f"data[{k}]", k, msg))
        if k in binary:
            errs.append(invalid(f"data[{k}]", k, "duplicate of key present in binaryData"))
        total += len(v.encode()) if isinstance(v, str) else 0
    for k, v in binary.items():
        for msg in is_config_map_key(k):
            errs.append(invalid(f"binaryData[{k}]", k, msg))
        total += decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("[]", MAX_SECRET_SIZE))


_GO_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def _json_error(raw: bytes) -> str | None:
    """A Go ``json.Unmarshal(raw, &map[string]interface{}{})`` error message, or None."""
    text = raw.decode(errors="replace")
    try:
        v = json.loads(text)
    except ValueError:
        s = text.lstrip(" \t\r\n")
        if not s:
            return "unexpected end of JSON input"
        first = s[0]
        for lit in ("true", "false", "null"):
            if first == lit[0]:
                for i, ch in enumerate(s[1:len(lit)], 1):
                    if ch != lit[i]:
                        return f"invalid character '{ch}' in literal {lit} (expecting '{lit[i]}')"
                if len(s) < len(lit):
                    return "unexpected end of JSON input"
                break
        else:
            if first not in '{["-0123456789':
                return f"invalid character '{first}' looking for beginning of value"
            if first == "{":
                rest = s[1:].lstrip(" \t\r\n")
                if not rest:
                    return "unexpected end of JSON input"
                if rest[0] not in '"}':
                    return f"invalid character '{rest[0]}' looking for beginning of object key string"
        return "invalid character looking for beginning of value"
    if v is None:
        return None
    if not isinstance(v, dict):
        return f"json: cannot unmarshal {_GO_JSON_TYPES.get(type(v), 'value')} into Go value of type " \
               "map[string]interface {}"
    return None


def _b64(v: object) -> bytes:
    import base64
    try:
        return base64.b64decode(v) if isinstance(v, str) else b""
    except ValueError:
        return b""


def validate_secret(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
        nt, ot = as_str(obj.get("type")), as_str(old.get("type"))
        if nt != ot:
            errs.append(invalid("type", nt, FIELD_IMMUTABLE_MSG))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if (obj.get("data") or None) != (old.get("data") or None):
                errs.append(forbidden("data", "field is immutable when `immutable` is set"))
    meta = as_dict(obj.get("metadata"))
    validate_object_meta(meta, True, name_is_dns_subdomain, errs)
    data = as_dict(obj.get("data"))
    total = 0
    for k, v in data.items():
        for msg in is_config_map_key(k):
            errs.append(invalid(f"data[{k}]", k, msg))
        total += decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    t = as_str(obj.get("type"))
    if t == "kubernetes.io/service-account-token":
        if not as_str(as_dict(meta.get("annotations")).get("kubernetes.io/service-account.name")):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif t in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if t == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errs.append(required(f"data[{key}]"))
        else:
            err = _json_error(_b64(data[key]))
            if err:
                errs.append(invalid(f"data[{key}]", "<secret contents redacted>", err))
    elif t == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(required("data[username]"))
            errs.append(required("data[password]"))
    elif t == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(required("data[ssh-privatekey]"))
    elif t == "kubernetes.io/tls":
        if "tls.crt" not in data:
            errs.append(required("data[tls.crt]"))
        if "tls.key" not in data:
            errs.append(required("data[tls.key]"))


def validate_service_account(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)


# --- Namespace / Node ----------------------------------------------------------------------------------
def _finalizer_name(path: str, f: str, errs: list) -> None:
    for msg in is_qualified_name(f):
        errs.append(invalid(path, f, msg))
    if "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
        errs.append(invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified"))


def validate_namespace(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
        return
    validate_object_meta(obj.get("metadata"), False, name_is_dns_label, errs)
    for f in as_list(as_dict(obj.get("spec")).get("finalizers")):
        _finalizer_name("spec.finalizers", as_str(f), errs)


def validate_namespace_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    phase = as_str(as_dict(obj.get("status")).get("phase"))
    if not as_dict(obj.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            errs.append(invalid("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty"))
    elif phase != "Terminating":
        errs.append(invalid("status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))


def validate_namespace_finalize(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    for i, f in enumerate(as_list(as_dict(obj.get("spec")).get("finalizers"))):
        _finalizer_name(f"spec.finalizers[{i}]", as_str(f), errs)


_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _taint_repr(t: dict) -> GoRepr:
    return GoRepr(f'core.Taint{{Key:{go_quote(as_str(t.get("key")))}, Value:{go_quote(as_str(t.get("value")))}, '
                  f'Effect:{go_quote(as_str(t.get("effect")))}, TimeAdded:<nil>}}')


def _node_taints(path: str, taints: list, errs: list) -> None:
    unique: dict[str, set] = {}
    for i, t in enumerate(taints):
        t = as_dict(t)
        ip = f"{path}[{i}]"
        key = as_str(t.get("key"))
        for msg in is_qualified_name(key):
            errs.append(invalid(ip + ".key", key, msg))
        verrs = is_valid_label_value(as_str(t.get("value")))
        if verrs:
            errs.append(invalid(ip + ".value", as_str(t.get("value")), ";".join(verrs)))
        eff = as_str(t.get("effect"))
        if not eff:
            errs.append(required(ip + ".effect"))
        elif eff not in _TAINT_EFFECTS:
            errs.append(not_supported(ip + ".effect", eff, _TAINT_EFFECTS))
        keys = unique.setdefault(eff, set())
        if key in keys:
            from k8py.api.validation_common import DUPLICATE, FieldError
            errs.append(FieldError(DUPLICATE, ip, _taint_repr(t), "taints must be unique by key and effect pair"))
            continue
        keys.add(key)


def _node_resources(obj: dict, errs: list) -> None:
    status = as_dict(obj.get("status"))
    for key in ("capacity", "allocatable"):
        for k, v in as_dict(status.get(key)).items():
            validate_resource_quantity(f"status.{key}.{k}", k, v, errs)


def _pod_cidrs(obj: dict, errs: list) -> None:
    cidrs = as_list(as_dict(obj.get("spec")).get("podCIDRs"))
    for i, c in enumerate(cidrs):
        is_valid_cidr(f"spec.podCIDRs[{i}]", as_str(c), errs)
    if len(cidrs) > 1:
        from k8py.api.validation_common import parse_cidr
        nets = [parse_cidr(as_str(c)) for c in cidrs]
        if len(cidrs) > 2 or None in nets or nets[0].version == nets[1].version:
            errs.append(invalid("spec.podCIDRs", GoRepr(go_slice(cidrs, "[]string")),
                                "may specify no more than one CIDR for each IP family"))
        seen: set = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                errs.append(duplicate(f"spec.podCIDRs[{i}]", c))
            seen.add(c)


def validate_node(obj: dict, old: dict | None, errs: list) -> None:
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    if old is None:
        validate_object_meta(meta, False, name_is_dns_subdomain, errs)
        if spec.get("taints"):
            _node_taints("metadata.taints", as_list(spec.get("taints")), errs)
        _node_resources(obj, errs)
        _pod_cidrs(obj, errs)
        return
    validate_object_meta_update(meta, old.get("metadata"), errs)
    _node_resources(obj, errs)
    addrs: list = []
    for i, a in enumerate(as_list(as_dict(obj.get("status")).get("addresses"))):
        if a in addrs:
            errs.append(duplicate(f"status.addresses[{i}]",
                                  GoRepr(f'core.NodeAddress{{Type:{go_quote(as_str(as_dict(a).get("type")))}, '
                                         f'Address:{go_quote(as_str(as_dict(a).get("address")))}}}')))
        addrs.append(a)
    ospec = as_dict(old.get("spec"))
    old_cidrs, new_cidrs = as_list(ospec.get("podCIDRs")), as_list(spec.get("podCIDRs"))
    if old_cidrs:
        msg = 'node updates may not change podCIDR except from "" to valid'
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden("spec.podCIDRs", msg))
        else:
            for a, b in zip(old_cidrs, new_cidrs):
                if a != b:
                    errs.append(forbidden("spec.podCIDRs", msg))
    opid = as_str(ospec.get("providerID"))
    if opid and opid != as_str(spec.get("providerID")):
        errs.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    if spec.get("taints"):
        _node_taints("metadata.taints", as_list(spec.get("taints")), errs)
    if as_str(spec.get("externalID")) != as_str(ospec.get("externalID")):
        errs.append(forbidden("spec.externalID", "may not be updated"))


# --- PersistentVolume / PersistentVolumeClaim -----------------------------------------------------------
_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_ACCESS_MODE_SET = frozenset(_ACCESS_MODES)
_RECLAIM = ("Delete", "Recycle", "Retain")
_VOLUME_MODES = ("Block", "Filesystem")
_PV_SOURCES = (
    ("hostPath", "hostPath"), ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("nfs", "nfs"), ("rbd", "rbd"), ("quobyte", "quobyte"), ("cephfs", "cephFS"), ("iscsi", "iscsi"),
    ("cinder", "cinder"), ("fc", "fc"), ("flexVolume", "flexVolume"), ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"), ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"), ("azureDisk", "azureDisk"), ("scaleIO", "scaleIO"), ("local", "local"),
    ("storageos", "storageos"), ("csi", "csi"),
)


def _access_modes(path: str, modes: list, errs: list) -> None:
    rwop = other = False
    for m in modes:
        if not isinstance(m, str) or m not in _ACCESS_MODE_SET:
            errs.append(not_supported(path, m, _ACCESS_MODES))
        elif m == "ReadWriteOncePod":
            rwop = True
        else:
            other = True
    if rwop and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))


def _positive_quantity(path: str, v: object, errs: list) -> None:
    q = parse_q(v)
    if q is None:
        return
    if q.value() < 0:
        errs.append(invalid(path, q.value(), "must be a valid resource quantity"))
    if q.nanos <= 0:
        errs.append(invalid(path, str(q), "must be greater than zero"))


def validate_pvc_spec(path: str, spec: dict, errs: list) -> None:
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errs.append(required(path + ".accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        validate_label_selector(path + ".selector", spec.get("selector"), errs)
    _access_modes(path + ".accessModes", modes, errs)
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    sp = path + ".resources[storage]"
    if "storage" not in requests:
        errs.append(required(sp))
    else:
        q = parse_q(requests["storage"])
        if q is not None:
            if q.nanos <= 0:
                errs.append(invalid(sp, str(q), "must be greater than zero"))
            else:
                validate_resource_quantity(sp, "storage", requests["storage"], errs)
    scn = spec.get("storageClassName")
    if scn:
        for msg in name_is_dns_subdomain(as_str(scn)):
            errs.append(invalid(path + ".storageClassName", as_str(scn), msg))
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        errs.append(not_supported(path + ".volumeMode", vm, _VOLUME_MODES))
    for key in ("dataSource", "dataSourceRef"):
        ds = spec.get(key)
        if ds is None:
            continue
        ds = as_dict(ds)
        dp = f"{path}.{key}"
        if not as_str(ds.get("name")):
            errs.append(required(dp + ".name"))
        kind = as_str(ds.get("kind"))
        if not kind:
            errs.append(required(dp + ".kind"))
        group = as_str(ds.get("apiGroup"))
        if not group and kind != "PersistentVolumeClaim":
            errs.append(invalid(dp, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
        if group:
            validate_dns1123_subdomain(dp + ".apiGroup", group, errs)


def validate_pvc(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    validate_pvc_spec("spec", spec, errs)
    if old is None:
        return
    ospec = as_dict(old.get("spec"))
    new_cmp, old_cmp = dict(spec), dict(ospec)
    if not ospec.get("volumeName"):
        old_cmp.pop("volumeName", None)
        new_cmp.pop("volumeName", None)
    bound = as_str(as_dict(obj.get("status")).get("phase")) == "Bound"
    if bound:
        for d in (new_cmp, old_cmp):
            res = dict(as_dict(d.get("resources")))
            req = dict(as_dict(res.get("requests")))
            req.pop("storage", None)
            res["requests"] = req
            d["resources"] = res
            d.pop("volumeAttributesClassName", None)
    if ospec.get("storageClassName") is None and spec.get("storageClassName") is not None:
        new_cmp.pop("storageClassName", None)
    if new_cmp != old_cmp:
        errs.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                                      "volumeAttributesClassName for bound claims\n"
                                      + spec_diff("core.PersistentVolumeClaimSpec", old_cmp, new_cmp)))
    nq = parse_q(as_dict(as_dict(spec.get("resources")).get("requests")).get("storage", "0"))
    oq = parse_q(as_dict(as_dict(ospec.get("resources")).get("requests")).get("storage", "0"))
    if nq is not None and oq is not None and nq < oq:
        sq = parse_q(as_dict(as_dict(old.get("status")).get("capacity")).get("storage", "0"))
        if sq is not None and nq <= sq:
            errs.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    if spec.get("volumeMode") != ospec.get("volumeMode"):
        errs.append(invalid("volumeMode", spec.get("volumeMode"), FIELD_IMMUTABLE_MSG))


def validate_pv(obj: dict, old: dict | None, errs: list) -> None:
    meta = as_dict(obj.get("metadata"))
    validate_object_meta(meta, False, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    modes = as_list(spec.get("accessModes"))
    if not modes:
        errs.append(required("spec.accessModes"))
    _access_modes("spec.accessModes", modes, errs)
    cap = spec.get("capacity")
    capd = as_dict(cap)
    if not capd:
        errs.append(required("spec.capacity"))
    if "storage" not in capd or len(capd) > 1:
        errs.append(not_supported("spec.capacity", GoRepr(
            "core.ResourceList{" + ", ".join(f"{go_quote(k)}:resource.Quantity{{...}}" for k in sorted(capd)) + "}"
            if cap is not None else "core.ResourceList(nil)"), ("storage",)))
    for k, v in capd.items():
        _positive_quantity(f"spec.capacity[{k}]", v, errs)
    rp = as_str(spec.get("persistentVolumeReclaimPolicy"))
    if rp and rp not in _RECLAIM:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", rp, _RECLAIM))
    na = spec.get("nodeAffinity")
    if na is not None:
        req = as_dict(na).get("required")
        if req is not None:
            validate_node_selector("spec.nodeAffinity.required", as_dict(req), errs)
        else:
            errs.append(required("spec.nodeAffinity.required", "must specify required node constraints"))
    num = 0
    for key, dup in _PV_SOURCES:
        src = spec.get(key)
        if src is None:
            continue
        if num > 0 and key != "flexVolume":
            errs.append(forbidden(f"spec.{dup}", "may not specify more than 1 volume type"))
            continue
        num += 1
        src = as_dict(src)
        sp = f"spec.{key}"
        if key in ("hostPath", "local"):
            p = as_str(src.get("path"))
            if not p:
                errs.append(required(sp + ".path"))
            elif ".." in p.split("/"):
                errs.append(invalid(sp + ".path", p, "must not contain '..'"))
            if key == "local" and na is None:
                errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
        elif key == "nfs":
            p = as_str(src.get("path"))
            if not as_str(src.get("server")):
                errs.append(required(sp + ".server"))
            if not p:
                errs.append(required(sp + ".path"))
            if not p.startswith("/"):
                errs.append(invalid(sp + ".path", p, "must be an absolute path"))
        elif key == "csi":
            drv = as_str(src.get("driver"))
            if not drv:
                errs.append(required(sp + ".driver"))
            for msg in name_is_dns_subdomain(drv.lower()):
                errs.append(invalid(sp + ".driver", drv, msg))
            if not as_str(src.get("volumeHandle")):
                errs.append(required(sp + ".volumeHandle"))
    if num == 0:
        errs.append(required("spec", "must specify a volume type"))
    scn = as_str(spec.get("storageClassName"))
    if scn:
        for msg in name_is_dns_subdomain(scn):
            errs.append(invalid("spec.storageClassName", scn, msg))
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", vm, _VOLUME_MODES))
    if old is None:
        return
    validate_object_meta_update(meta, old.get("metadata"), errs)
    ospec = as_dict(old.get("spec"))
    src_keys = [k for k, _ in _PV_SOURCES]
    if {k: spec.get(k) for k in src_keys} != {k: ospec.get(k) for k in src_keys}:
        errs.append(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation\n"))
    if spec.get("volumeMode") != ospec.get("volumeMode"):
        errs.append(invalid("volumeMode", spec.get("volumeMode"), FIELD_IMMUTABLE_MSG))
    if ospec.get("nodeAffinity") is not None and spec.get("nodeAffinity") != ospec.get("nodeAffinity"):
        errs.append(invalid("nodeAffinity", GoRepr("&core.VolumeNodeAffinity{...}"),
                            FIELD_IMMUTABLE_MSG + ", except for updating from beta label to GA"))


# --- ResourceQuota / LimitRange -------------------------------------------------------------------------
_QUOTA_SCOPES = frozenset(("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                           "CrossNamespacePodAffinity", "VolumeAttributesClass"))


def _quota_list(path: str, rl: object, errs: list) -> None:
    for k, v in as_dict(rl).items():
        rp = f"{path}[{k}]"
        validate_quota_resource_name(rp, k, errs)
        validate_resource_quantity(rp, k, v, errs)


def validate_resource_quota(obj: dict, old: dict | None, errs: list) -> None:
    spec = as_dict(obj.get("spec"))
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    _quota_list("spec.hard", spec.get("hard"), errs)
    scopes = as_list(spec.get("scopes"))
    go_scopes = GoRepr(go_slice(scopes, "[]core.ResourceQuotaScope"))
    for s in scopes:
        if s not in _QUOTA_SCOPES:
            errs.append(invalid("spec.scopes", go_scopes, "unsupported scope"))
    if {"BestEffort", "NotBestEffort"} <= set(scopes) or {"Terminating", "NotTerminating"} <= set(scopes):
        errs.append(invalid("spec.scopes", go_scopes, "conflicting scopes"))
    if old is None:
        status = as_dict(obj.get("status"))
        _quota_list("status.hard", status.get("hard"), errs)
        _quota_list("status.used", status.get("used"), errs)
    elif set(scopes) != set(as_list(as_dict(old.get("spec")).get("scopes"))):
        errs.append(invalid("spec.scopes", go_scopes, FIELD_IMMUTABLE_MSG))


def validate_resource_quota_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    _quota_list("status.hard", status.get("hard"), errs)
    _quota_list("status.used", status.get("used"), errs)


_LIMIT_TYPES = frozenset(("Pod", "Container", "PersistentVolumeClaim"))


def validate_limit_range(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    seen_types: set = set()
    for i, lim in enumerate(as_list(as_dict(obj.get("spec")).get("limits"))):
        lim = as_dict(lim)
        ip = f"spec.limits[{i}]"
        ltype = as_str(lim.get("type"))
        tp = ip + ".type"
        terrs = is_qualified_name(ltype)
        for msg in terrs:
            errs.append(invalid(tp, ltype, msg))
        if not terrs and "/" not in ltype and ltype not in _LIMIT_TYPES:
            errs.append(invalid(tp, ltype, "must be a standard limit type or fully qualified"))
        if ltype in seen_types:
            errs.append(duplicate(tp, ltype))
        seen_types.add(ltype)

        def name_check(p: str, k: str) -> None:
            if ltype in ("Pod", "Container"):
                validate_container_resource_name(p, k, errs)
            else:
                validate_resource_name(p, k, errs)

        vals: dict[str, dict] = {}
        fields = ["max", "min"]
        if ltype == "Pod":
            if lim.get("default"):
                errs.append(forbidden(ip + ".default", "may not be specified when `type` is 'Pod'"))
            if lim.get("defaultRequest"):
                errs.append(forbidden(ip + ".defaultRequest", "may not be specified when `type` is 'Pod'"))
        else:
            fields += ["default", "defaultRequest"]
        fields.append("maxLimitRequestRatio")
        keys: list[str] = []
        for f in fields:
            for k, v in as_dict(lim.get(f)).items():
                name_check(f"{ip}.{f}[{k}]", k)
                q = parse_q(v)
                if q is not None:
                    vals.setdefault(f, {})[k] = q
                if k not in keys:
                    keys.append(k)
        if ltype == "PersistentVolumeClaim":
            if "storage" not in as_dict(lim.get("min")) and "storage" not in as_dict(lim.get("max")):
                errs.append(required(ip + ".limits", "either minimum or maximum storage value is required, but "
                                                     "neither was provided"))
        for k in keys:
            mn = vals.get("min", {}).get(k)
            mx = vals.get("max", {}).get(k)
            df = vals.get("default", {}).get(k)
            dr = vals.get("defaultRequest", {}).get(k)
            ratio = vals.get("maxLimitRequestRatio", {}).get(k)
            if mn is not None and mx is not None and mn > mx:
                errs.append(invalid(f"{ip}.min[{k}]", mn, f"min value {mn} is greater than max value {mx}"))
            if dr is not None and mn is not None and mn > dr:
                errs.append(invalid(f"{ip}.defaultRequest[{k}]", dr,
                                    f"min value {mn} is greater than default request value {dr}"))
            if dr is not None and mx is not None and dr > mx:
                errs.append(invalid(f"{ip}.defaultRequest[{k}]", dr,
                                    f"default request value {dr} is greater than max value {mx}"))
            if dr is not None and df is not None and dr > df:
                errs.append(invalid(f"{ip}.defaultRequest[{k}]", dr,
                                    f"default request value {dr} is greater than default limit value {df}"))
            if df is not None and mn is not None and mn > df:
                errs.append(invalid(f"{ip}.default[{k}]", mn, f"min value {mn} is greater than default value {df}"))
            if df is not None and mx is not None and df > mx:
                errs.append(invalid(f"{ip}.default[{k}]", mx, f"default value {df} is greater than max value {mx}"))
            if ratio is not None and ratio.nanos < 10 ** 9:
                errs.append(invalid(f"{ip}.maxLimitRequestRatio[{k}]", ratio, f"ratio {ratio} is less than 1"))
            if ratio is not None and mn is not None and mx is not None and mn.nanos > 0:
                limit = mx.nanos / mn.nanos
                if ratio.nanos / 10 ** 9 > limit:
                    errs.append(invalid(f"{ip}.maxLimitRequestRatio[{k}]", ratio,
                                        f"ratio {ratio} is greater than max/min = {limit:f}"))


# --- ReplicationController / PodTemplate ------------------------------------------------------------------
def validate_replication_controller(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    validate_nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"), errs)
    selector = spec.get("selector")
    if not selector:
        errs.append(required("spec.selector"))
    validate_nonnegative("spec.replicas", spec.get("replicas"), errs)
    tmpl = spec.get("template")
    if tmpl is None:
        errs.append(required("spec.template"))
        return
    tmpl = as_dict(tmpl)
    labels = as_dict(tmpl.get("metadata")).get("labels")
    if selector and not selector_from_set(str_map(selector) or {}).matches(str_map(labels) or {}):
        errs.append(invalid("spec.template.metadata.labels",
                            GoRepr(go_map(labels if isinstance(labels, dict) else None, "map[string]string")),
                            "`selector` does not match template `labels`"))
    validate_pod_template_spec("spec.template", tmpl, errs)
    tspec = as_dict(tmpl.get("spec"))
    rp = as_str(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicationController is not Supported"))


def validate_replication_controller_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    replica_status_checks(as_dict(obj.get("status")), errs, ("fullyLabeledReplicas",), "readyReplicas")


def replica_status_checks(status: dict, errs: list, extra: tuple = (), ready_name: str = "readyReplicas") -> None:
    """Shared non-negative / not-greater-than-replicas checks of RC/RS/Deployment status."""
    for f in ("replicas",) + extra + ("readyReplicas", "availableReplicas", "observedGeneration"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)
    replicas = as_int(status.get("replicas"))
    msg = "cannot be greater than status.replicas"
    for f in extra + ("readyReplicas", "availableReplicas"):
        v = as_int(status.get(f))
        if v > replicas:
            errs.append(invalid(f"status.{f}", v, msg))
    if as_int(status.get("availableReplicas")) > as_int(status.get("readyReplicas")):
        errs.append(invalid("status.availableReplicas", as_int(status.get("availableReplicas")),
                            "cannot be greater than readyReplicas"))


def validate_pod_template(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    validate_pod_template_spec("template", as_dict(obj.get("template")), errs)


# --- Event (core/v1) ------------------------------------------------------------------------------------
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def validate_core_event(obj: dict, old: dict | None, errs: list) -> None:
    """``ValidateEventCreate`` / ``ValidateEventUpdate`` for a core/v1 request."""
    meta = as_dict(obj.get("metadata"))
    ns = as_str(meta.get("namespace"))
    involved = as_dict(obj.get("involvedObject"))
    ins = as_str(involved.get("namespace"))
    if not obj.get("eventTime"):
        if not ins:
            if ns not in ("", "default"):
                errs.append(invalid("involvedObject.namespace", ins, "does not match event.namespace"))
        elif ns != ins:
            errs.append(invalid("involvedObject.namespace", ins, "does not match event.namespace"))
    else:
        if not ins and ns not in ("default", "kube-system"):
            errs.append(invalid("involvedObject.namespace", ins, "does not match event.namespace"))
        rc = as_str(obj.get("reportingComponent"))
        if not rc:
            errs.append(required("reportingComponent"))
        validate_qualified_name("reportingComponent", rc, errs)
        ri = as_str(obj.get("reportingInstance"))
        if not ri:
            errs.append(required("reportingInstance"))
        if len(ri) > REPORTING_INSTANCE_LIMIT:
            errs.append(invalid("reportingInstance", "", f"can have at most {REPORTING_INSTANCE_LIMIT} characters"))
        action = as_str(obj.get("action"))
        if not action:
            errs.append(required("action"))
        if len(action) > ACTION_LIMIT:
            errs.append(invalid("action", "", f"can have at most {ACTION_LIMIT} characters"))
        reason = as_str(obj.get("reason"))
        if not reason:
            errs.append(required("reason"))
        if len(reason) > REASON_LIMIT:
            errs.append(invalid("reason", "", f"can have at most {REASON_LIMIT} characters"))
        if len(as_str(obj.get("message"))) > NOTE_LIMIT:
            errs.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    for msg in name_is_dns_subdomain(ns):
        errs.append(invalid("namespace", ns, msg))
    if old is not None:
        validate_object_meta_update(meta, old.get("metadata"), errs)


__all__ = [
    "MAX_SECRET_SIZE", "NODE_PORT_RANGE", "replica_status_checks", "validate_configmap", "validate_core_event",
    "validate_endpoints", "validate_limit_range", "validate_namespace", "validate_namespace_finalize",
    "validate_namespace_status", "validate_node", "validate_pod_template", "validate_pv", "validate_pvc",
    "validate_pvc_spec", "validate_replication_controller", "validate_replication_controller_status",
    "validate_resource_quota", "validate_resource_quota_status", "validate_secret", "validate_service",
    "validate_service_account", "validate_service_status",
]
