"""Pod volumes, volume sources and the downward-API/field selectors they share with env vars."""

from __future__ import annotations

from k8py.api.validation_common import (
    FILE_MODE_MSG, as_dict, as_int, as_list, as_str, duplicate, forbidden, go_quote, invalid, name_is_dns_subdomain,
    not_supported, parse_q, required, too_long, validate_annotations, validate_dns1123_label, validate_labels,
    validate_qualified_name,
)

# --- volumes ----------------------------------------------------------------------------------------
# (json key, path used in the "more than 1 volume type" error)
_VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"),
    ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
)
_HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
_VOLUME_FIELD_PATHS = frozenset(("metadata.name", "metadata.namespace", "metadata.labels", "metadata.annotations",
                                 "metadata.uid"))
_ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
_ENV_FIELD_PATH_SET = frozenset(_ENV_FIELD_PATHS)
_CONTAINER_RESOURCE_FIELDS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                              "requests.ephemeral-storage", "requests.memory")
_DOWNWARD_LABELS = frozenset((
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName", "status.phase",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
))


def _path_no_backsteps(path: str, target: str, errs: list) -> None:
    if ".." in target and ".." in target.replace("\\", "/").split("/"):
        errs.append(invalid(path, target, "must not contain '..'"))


def _local_descending_path(path: str, target: str, errs: list) -> None:
    if target.startswith("/"):
        errs.append(invalid(path, target, "must be a relative path"))
    _path_no_backsteps(path, target, errs)


def _local_non_reserved_path(path: str, target: str, errs: list) -> None:
    _local_descending_path(path, target, errs)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))


def _file_mode(path: str, mode: object, errs: list) -> None:
    if mode is not None and isinstance(mode, int) and (mode > 0o777 or mode < 0):
        errs.append(invalid(path, mode, FILE_MODE_MSG))


def _key_to_path(path: str, kp: dict, errs: list) -> None:
    if not as_str(kp.get("key")):
        errs.append(required(path + ".key"))
    p = as_str(kp.get("path"))
    if not p:
        errs.append(required(path + ".path"))
    _local_non_reserved_path(path + ".path", p, errs)
    _file_mode(path + ".mode", kp.get("mode"), errs)


def _split_subscript(fp: str) -> tuple[str, str] | None:
    if not fp.endswith("']"):
        return None
    parts = fp[:-2].split("['", 1)
    if len(parts) < 2 or not parts[0]:
        return None
    return parts[0], parts[1]


def _object_field_selector(path: str, fs: dict, expressions, errs: list) -> None:
    api_version = as_str(fs.get("apiVersion"))
    field_path = as_str(fs.get("fieldPath"))
    if not api_version:
        errs.append(required(path + ".apiVersion"))
        return
    if not field_path:
        errs.append(required(path + ".fieldPath"))
        return
    err = None
    sub = _split_subscript(field_path)
    internal = field_path
    if api_version != "v1":
        err = f"unsupported pod version: {api_version}"
    elif sub is not None:
        if sub[0] not in ("metadata.annotations", "metadata.labels"):
            err = f"field label does not support subscript: {field_path}"
    elif field_path == "spec.host":
        internal = "spec.nodeName"
    elif field_path not in _DOWNWARD_LABELS:
        err = f"field label not supported: {field_path}"
    if err:
        errs.append(invalid(path + ".fieldPath", field_path, f"error converting fieldPath: {err}"))
        return
    sub = _split_subscript(internal)
    if sub is not None:
        if sub[0] == "metadata.annotations":
            validate_qualified_name(path, sub[1].lower(), errs)
        else:
            validate_qualified_name(path, sub[1], errs)
    elif internal not in expressions:
        errs.append(not_supported(path + ".fieldPath", internal, sorted(expressions)))


_DIVISORS_CPU = frozenset(("1m", "1"))
_DIVISORS_MEM = frozenset(("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"))


def _resource_field_selector(path: str, fs: dict, volume: bool, errs: list) -> None:
    resource = as_str(fs.get("resource"))
    if volume and not as_str(fs.get("containerName")):
        errs.append(required(path + ".containerName"))
    elif not resource:
        errs.append(required(path + ".resource"))
    elif resource not in _CONTAINER_RESOURCE_FIELDS and not resource.startswith(("limits.hugepages-",
                                                                                  "requests.hugepages-")):
        errs.append(not_supported(path + ".resource", resource, _CONTAINER_RESOURCE_FIELDS))
    div = fs.get("divisor")
    if div in (None, "", "0", 0):
        return
    q = parse_q(div)
    if q is None or q.nanos == 0:
        return
    d = str(q)
    if resource in ("limits.cpu", "requests.cpu"):
        if d not in _DIVISORS_CPU:
            errs.append(invalid(path + ".divisor", resource,
                                "only divisor's values 1m and 1 are supported with the cpu resource"))
    elif resource in ("limits.memory", "requests.memory"):
        if d not in _DIVISORS_MEM:
            errs.append(invalid(path + ".divisor", resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, "
                                "1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"))
    elif resource in ("limits.ephemeral-storage", "requests.ephemeral-storage"):
        if d not in _DIVISORS_MEM:
            errs.append(invalid(path + ".divisor", resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, "
                                "1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource"))


def _downward_file(path: str, f: dict, errs: list) -> None:
    p = as_str(f.get("path"))
    if not p:
        errs.append(required(path + ".path"))
    _local_non_reserved_path(path + ".path", p, errs)
    if f.get("fieldRef") is not None:
        _object_field_selector(path + ".fieldRef", as_dict(f.get("fieldRef")), _VOLUME_FIELD_PATHS, errs)
        if f.get("resourceFieldRef") is not None:
            errs.append(invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
    elif f.get("resourceFieldRef") is not None:
        _resource_field_selector(path + ".resourceFieldRef", as_dict(f.get("resourceFieldRef")), True, errs)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    _file_mode(path + ".mode", f.get("mode"), errs)


def _projected(path: str, src: dict, errs: list, allow_nonlocal_token_path: bool = False) -> None:
    _file_mode(path + ".defaultMode", src.get("defaultMode"), errs)
    all_paths: set[str] = set()
    for i, s in enumerate(as_list(src.get("sources"))):
        s = as_dict(s)
        sp = f"{path}.sources[{i}]"
        n = 0
        for kind in ("secret", "configMap"):
            if s.get(kind) is not None:
                n += 1
                ref = as_dict(s.get(kind))
                if not as_str(ref.get("name")):
                    errs.append(required(f"{sp}.{kind}.name"))
                for j, kp in enumerate(as_list(ref.get("items"))):
                    kp = as_dict(kp)
                    _key_to_path(f"{sp}.{kind}.items[{j}]", kp, errs)
                    cp = as_str(kp.get("path"))
                    if cp:
                        if cp in all_paths:
                            errs.append(invalid(path, as_str(ref.get("name")), "conflicting duplicate paths"))
                        all_paths.add(cp)
        if s.get("downwardAPI") is not None:
            n += 1
            for f in as_list(as_dict(s.get("downwardAPI")).get("items")):
                f = as_dict(f)
                _downward_file(sp + ".downwardAPI", f, errs)
                cp = as_str(f.get("path"))
                if cp:
                    if cp in all_paths:
                        errs.append(invalid(path, cp, "conflicting duplicate paths"))
                    all_paths.add(cp)
        if s.get("serviceAccountToken") is not None:
            n += 1
            sat = as_dict(s.get("serviceAccountToken"))
            exp = as_int(sat.get("expirationSeconds"), 3600)
            if exp < 600:
                errs.append(invalid(sp + ".serviceAccountToken.expirationSeconds", exp,
                                    "may not specify a duration less than 10 minutes"))
            if exp > 1 << 32:
                errs.append(invalid(sp + ".serviceAccountToken.expirationSeconds", exp,
                                    "may not specify a duration larger than 2^32 seconds"))
            tp = as_str(sat.get("path"))
            if not tp:
                errs.append(required(path + ".path"))
            elif not allow_nonlocal_token_path:
                _local_non_reserved_path(path + ".path", tp, errs)
        if s.get("clusterTrustBundle") is not None:
            n += 1
            ctb = as_dict(s.get("clusterTrustBundle"))
            cp = as_str(ctb.get("path"))
            if not cp:
                errs.append(required(sp + ".clusterTrustBundle.path"))
            _local_non_reserved_path(sp + ".clusterTrustBundle.path", cp, errs)
        if n > 1:
            errs.append(forbidden(sp, "may not specify more than 1 volume type per source"))


_SOURCE_INDEX = {key: (i, dup) for i, (key, dup) in enumerate(_VOLUME_SOURCES)}


def _volume_source(path: str, vol: dict, vol_name: str, pod_name: str, errs: list) -> None:
    num = 0
    present = [(_SOURCE_INDEX[k], k) for k, v in vol.items() if v is not None and k in _SOURCE_INDEX]
    if len(present) > 1:
        present.sort()
    for (_, dup_name), key in present:
        src = vol[key]
        if num > 0:
            if key != "emptyDir":
                errs.append(forbidden(f"{path}.{dup_name}", "may not specify more than 1 volume type"))
            continue
        num += 1
        src = as_dict(src)
        sp = f"{path}.{key}"
        if key == "emptyDir":
            sl = src.get("sizeLimit")
            if sl is not None:
                q = parse_q(sl)
                if q is not None and q.nanos < 0:
                    errs.append(forbidden(sp + ".sizeLimit", "SizeLimit field must be a valid resource quantity"))
        elif key == "hostPath":
            hp = as_str(src.get("path"))
            if not hp:
                errs.append(required(sp + ".path"))
                continue
            _path_no_backsteps(sp + ".path", hp, errs)
            t = src.get("type")
            if t is not None and t not in _HOST_PATH_TYPES:
                errs.append(not_supported(sp + ".type", t, _HOST_PATH_TYPES))
        elif key == "secret":
            if not as_str(src.get("secretName")):
                errs.append(required(sp + ".secretName"))
            _file_mode(sp + ".defaultMode", src.get("defaultMode"), errs)
            for i, kp in enumerate(as_list(src.get("items"))):
                _key_to_path(f"{sp}.items[{i}]", as_dict(kp), errs)
        elif key == "configMap":
            if not as_str(src.get("name")):
                errs.append(required(sp + ".name"))
            _file_mode(sp + ".defaultMode", src.get("defaultMode"), errs)
            for i, kp in enumerate(as_list(src.get("items"))):
                _key_to_path(f"{sp}.items[{i}]", as_dict(kp), errs)
        elif key == "persistentVolumeClaim":
            if not as_str(src.get("claimName")):
                errs.append(required(sp + ".claimName"))
        elif key == "nfs":
            p = as_str(src.get("path"))
            if not as_str(src.get("server")):
                errs.append(required(sp + ".server"))
            if not p:
                errs.append(required(sp + ".path"))
            if not p.startswith("/"):
                errs.append(invalid(sp + ".path", p, "must be an absolute path"))
        elif key == "downwardAPI":
            _file_mode(sp + ".defaultMode", src.get("defaultMode"), errs)
            for f in as_list(src.get("items")):
                _downward_file(sp, as_dict(f), errs)
        elif key == "projected":
            _projected(sp, src, errs)
        elif key == "gitRepo":
            if not as_str(src.get("repository")):
                errs.append(required(sp + ".repository"))
            _local_descending_path(sp + ".directory", as_str(src.get("directory")), errs)
        elif key == "csi":
            drv = as_str(src.get("driver"))
            if not drv:
                errs.append(required(sp + ".driver"))
            if len(drv) > 63:
                errs.append(too_long(sp + ".driver", 63))
            for msg in name_is_dns_subdomain(drv.lower()):
                errs.append(invalid(sp + ".driver", drv, msg))
        elif key == "ephemeral":
            if src.get("volumeClaimTemplate") is None:
                errs.append(required(sp + ".volumeClaimTemplate"))
            else:
                tmpl = as_dict(src.get("volumeClaimTemplate"))
                tp = sp + ".volumeClaimTemplate"
                tmeta = as_dict(tmpl.get("metadata"))
                validate_annotations(tp + ".metadata.annotations", tmeta.get("annotations"), errs)
                validate_labels(tp + ".metadata.labels", tmeta.get("labels"), errs)
                for k in tmeta:
                    if k not in ("labels", "annotations", "creationTimestamp"):
                        errs.append(forbidden(f"{tp}.metadata.{k}", "cannot be set"))
                from k8py.api.validation_core import validate_pvc_spec
                validate_pvc_spec(tp + ".spec", as_dict(tmpl.get("spec")), errs)
                if pod_name and vol_name:
                    pvc = f"{pod_name}-{vol_name}"
                    for msg in name_is_dns_subdomain(pvc):
                        errs.append(invalid(path + ".name", vol_name, f"PVC name {go_quote(pvc)}: {msg}"))
        elif key == "image":
            pp = src.get("pullPolicy")
            if pp not in ("Always", "IfNotPresent", "Never"):
                if not pp:
                    errs.append(required(sp + ".pullPolicy"))
                else:
                    errs.append(not_supported(sp + ".pullPolicy", pp, ("Always", "IfNotPresent", "Never")))
    if num == 0:
        errs.append(required(path, "must specify a volume type"))


def validate_volumes(path: str, volumes: list, pod_name: str, errs: list) -> dict[str, dict]:
    """``ValidateVolumes``; returns {name: volume} for the valid ones."""
    vols: dict[str, dict] = {}
    created_pvcs = {f"{pod_name}-{as_str(as_dict(v).get('name'))}" for v in volumes
                    if as_dict(v).get("ephemeral") is not None} if pod_name else set()
    for i, vol in enumerate(volumes):
        vol = as_dict(vol)
        ip = f"{path}[{i}]"
        name = as_str(vol.get("name"))
        el: list = []
        _volume_source(ip, vol, name, pod_name, el)
        if not name:
            el.append(required(ip + ".name"))
        else:
            validate_dns1123_label(ip + ".name", name, el)
        if name in vols:
            el.append(duplicate(ip + ".name", name))
        if not el:
            vols[name] = vol
        else:
            errs.extend(el)
        pvc = vol.get("persistentVolumeClaim")
        if pvc is not None and as_str(as_dict(pvc).get("claimName")) in created_pvcs:
            errs.append(invalid(ip + ".persistentVolumeClaim.claimName", as_str(as_dict(pvc).get("claimName")),
                                "must not reference a PVC that gets created for an ephemeral volume"))
    return vols


