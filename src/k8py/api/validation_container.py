"""Container validation: ports, env, mounts, probes, lifecycle, resources, security context."""

from __future__ import annotations

import json

from k8py.api.validation_common import (
    PORT_RANGE_MSG, GoRepr, as_dict, as_int, as_list, as_str, duplicate, forbidden, inclusive_range_error, invalid,
    is_config_map_key, is_env_var_name, is_http_header_name, is_valid_port_name, name_is_dns_subdomain, not_found,
    not_supported, required, validate_dns1123_label, validate_nonnegative,
)
from k8py.api.validation_resources import validate_resource_requirements
from k8py.api.validation_volumes import (
    _ENV_FIELD_PATH_SET, _local_descending_path, _object_field_selector, _resource_field_selector,
)

# --- containers ---------------------------------------------------------------------------------------
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TMP_POLICIES = ("File", "FallbackToLogsOnError")
_MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")


def _container_ports(path: str, ports: list, errs: list) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        ip = f"{path}[{i}]"
        name = as_str(port.get("name"))
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                for m in msgs:
                    errs.append(invalid(ip + ".name", name, m))
            elif name in names:
                errs.append(duplicate(ip + ".name", name))
            else:
                names.add(name)
        cp = port.get("containerPort")
        if not cp:
            errs.append(required(ip + ".containerPort"))
        elif not (isinstance(cp, int) and 1 <= cp <= 65535):
            errs.append(invalid(ip + ".containerPort", cp, PORT_RANGE_MSG))
        hp = port.get("hostPort")
        if hp and not (isinstance(hp, int) and 1 <= hp <= 65535):
            errs.append(invalid(ip + ".hostPort", hp, PORT_RANGE_MSG))
        proto = port.get("protocol")
        if not proto:
            errs.append(required(ip + ".protocol"))
        elif proto not in _PROTOCOLS:
            errs.append(not_supported(ip + ".protocol", proto, _PROTOCOLS))


def _env(path: str, env: list, errs: list) -> None:
    for i, ev in enumerate(env):
        ev = as_dict(ev)
        ip = f"{path}[{i}]"
        name = as_str(ev.get("name"))
        if not name:
            errs.append(required(ip + ".name"))
        else:
            for msg in is_env_var_name(name):
                errs.append(invalid(ip + ".name", name, msg))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf = as_dict(vf)
        vp = ip + ".valueFrom"
        n = 0
        if vf.get("fieldRef") is not None:
            n += 1
            _object_field_selector(vp + ".fieldRef", as_dict(vf.get("fieldRef")), _ENV_FIELD_PATH_SET, errs)
        if vf.get("resourceFieldRef") is not None:
            n += 1
            _resource_field_selector(vp + ".resourceFieldRef", as_dict(vf.get("resourceFieldRef")), False, errs)
        for key in ("configMapKeyRef", "secretKeyRef"):
            if vf.get(key) is not None:
                n += 1
                ref = as_dict(vf.get(key))
                rn = as_str(ref.get("name"))
                for msg in name_is_dns_subdomain(rn):
                    errs.append(invalid(f"{vp}.{key}.name", rn, msg))
                k = as_str(ref.get("key"))
                if not k:
                    errs.append(required(f"{vp}.{key}.key"))
                else:
                    for msg in is_config_map_key(k):
                        errs.append(invalid(f"{vp}.{key}.key", k, msg))
        if n == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                                        "`secretKeyRef`"))
        elif ev.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif n > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))


def _env_from(path: str, env_from: list, errs: list) -> None:
    for i, ef in enumerate(env_from):
        ef = as_dict(ef)
        ip = f"{path}[{i}]"
        prefix = as_str(ef.get("prefix"))
        if prefix:
            for msg in is_env_var_name(prefix):
                errs.append(invalid(ip + ".prefix", prefix, msg))
        n = 0
        for key in ("configMapRef", "secretRef"):
            if ef.get(key) is not None:
                n += 1
                rn = as_str(as_dict(ef.get(key)).get("name"))
                if not rn:
                    errs.append(required(f"{ip}.{key}.name"))
                else:
                    for msg in name_is_dns_subdomain(rn, True):
                        errs.append(invalid(f"{ip}.{key}.name", rn, msg))
        if n == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))


def _volume_mounts(path: str, mounts: list, devices: dict, volumes: dict, privileged: bool, errs: list) -> None:
    mountpoints: set[str] = set()
    for i, m in enumerate(mounts):
        m = as_dict(m)
        ip = f"{path}[{i}]"
        name = as_str(m.get("name"))
        mp = as_str(m.get("mountPath"))
        if not name:
            errs.append(required(ip + ".name"))
        if name not in volumes:
            errs.append(not_found(ip + ".name", name))
        if not mp:
            errs.append(required(ip + ".mountPath"))
        if mp in mountpoints:
            errs.append(invalid(ip + ".mountPath", mp, "must be unique"))
        mountpoints.add(mp)
        if devices:
            if name in devices:
                errs.append(invalid(ip + ".name", name, "must not already exist in volumeDevices"))
            if mp in devices.values():
                errs.append(invalid(ip + ".mountPath", mp, "must not already exist as a path in volumeDevices"))
        sub = as_str(m.get("subPath"))
        sub_expr = as_str(m.get("subPathExpr"))
        vol = volumes.get(name)
        if vol is not None and vol.get("image") is not None:
            if sub:
                errs.append(invalid(ip + ".subPath", sub, "not allowed in image volume sources"))
            if sub_expr:
                errs.append(invalid(ip + ".subPathExpr", sub_expr, "not allowed in image volume sources"))
        if sub:
            _local_descending_path(path + ".subPath", sub, errs)
        if sub_expr:
            if sub:
                errs.append(invalid(ip + ".subPathExpr", sub_expr, "subPathExpr and subPath are mutually exclusive"))
            _local_descending_path(path + ".subPathExpr", sub_expr, errs)
        prop = m.get("mountPropagation")
        if prop is not None:
            if prop not in _MOUNT_PROPAGATIONS:
                errs.append(not_supported(path + ".mountPropagation", prop, _MOUNT_PROPAGATIONS))
            if prop == "Bidirectional" and not privileged:
                errs.append(forbidden(path + ".mountPropagation",
                                      "Bidirectional mount propagation is available only to privileged containers"))
        rro = m.get("recursiveReadOnly")
        if rro is not None and rro != "Disabled":
            rp = path + ".recursiveReadOnly"
            if rro in ("Enabled", "IfPossible"):
                if not m.get("readOnly"):
                    errs.append(forbidden(rp, "may only be specified when readOnly is true"))
                if prop not in (None, "None"):
                    errs.append(forbidden(rp, "may only be specified when mountPropagation is None or not specified"))
            else:
                errs.append(not_supported(rp, rro, ("Disabled", "Enabled", "IfPossible")))


def _volume_devices(path: str, devices: list, mounts: dict, volumes: dict, errs: list) -> None:
    paths: set[str] = set()
    names: set[str] = set()
    for i, d in enumerate(devices):
        d = as_dict(d)
        ip = f"{path}[{i}]"
        name = as_str(d.get("name"))
        dp = as_str(d.get("devicePath"))
        vol = volumes.get(name)
        is_pvc = vol is not None and (vol.get("persistentVolumeClaim") is not None or vol.get("ephemeral") is not None)
        if not name:
            errs.append(required(ip + ".name"))
        if name in names:
            errs.append(invalid(ip + ".name", name, "must be unique"))
        if vol is not None and not is_pvc:
            errs.append(invalid(ip + ".name", name,
                                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
        if vol is None:
            errs.append(not_found(ip + ".name", name))
        if not dp:
            errs.append(required(ip + ".devicePath"))
        if dp in paths:
            errs.append(invalid(ip + ".devicePath", dp, "must be unique"))
        if dp and ".." in dp.split("/"):
            errs.append(invalid(ip + ".devicePath", dp, "can not contain backsteps ('..')"))
        else:
            paths.add(dp)
        if name in mounts:
            errs.append(invalid(ip + ".name", name, "must not already exist in volumeMounts"))
        if dp in mounts.values():
            errs.append(invalid(ip + ".devicePath", dp, "must not already exist as a path in volumeMounts"))
        if name:
            names.add(name)


def _port_num_or_name(path: str, port: object, errs: list) -> None:
    if isinstance(port, str):
        for msg in is_valid_port_name(port):
            errs.append(invalid(path, port, msg))
    else:
        p = as_int(port)
        if not 1 <= p <= 65535:
            errs.append(invalid(path, p, PORT_RANGE_MSG))


def _handler(path: str, h: dict, grace: object, errs: list, lifecycle: bool) -> None:
    n = 0
    keys = ("exec", "httpGet", "tcpSocket", "sleep") if lifecycle else ("exec", "httpGet", "tcpSocket", "grpc")
    for key in keys:
        src = h.get(key)
        if src is None:
            continue
        if n > 0:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 handler type"))
            continue
        n += 1
        src = as_dict(src)
        kp = f"{path}.{key}"
        if key == "exec":
            if not as_list(src.get("command")):
                errs.append(required(kp + ".command"))
        elif key == "httpGet":
            if not as_str(src.get("path")):
                errs.append(required(kp + ".path"))
            _port_num_or_name(kp + ".port", src.get("port"), errs)
            scheme = as_str(src.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(kp + ".scheme", scheme, ("HTTP", "HTTPS")))
            for hdr in as_list(src.get("httpHeaders")):
                hn = as_str(as_dict(hdr).get("name"))
                for msg in is_http_header_name(hn):
                    errs.append(invalid(kp + ".httpHeaders", hn, msg))
        elif key == "tcpSocket":
            _port_num_or_name(kp + ".port", src.get("port"), errs)
        elif key == "grpc":
            _port_num_or_name(kp + ".port", as_int(src.get("port")), errs)
        elif key == "sleep":
            secs = as_int(src.get("seconds"))
            if isinstance(grace, int) and (secs < 0 or secs > grace):
                errs.append(invalid(kp, secs, f"must be non-negative and less than terminationGracePeriodSeconds "
                                              f"({grace})"))
    if n == 0:
        errs.append(required(path, "must specify a handler type"))


def _probe(path: str, probe: object, grace: object, kind: str, errs: list) -> None:
    if probe is None:
        return
    probe = as_dict(probe)
    _handler(path, probe, grace, errs, False)
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        validate_nonnegative(f"{path}.{f}", probe.get(f), errs)
    tgs = probe.get("terminationGracePeriodSeconds")
    if tgs is not None and as_int(tgs) <= 0:
        errs.append(invalid(path + ".terminationGracePeriodSeconds", as_int(tgs), "must be greater than 0"))
    if kind in ("liveness", "startup"):
        st = probe.get("successThreshold", 1)
        if st != 1:
            errs.append(invalid(path + ".successThreshold", as_int(st), "must be 1"))
    elif kind == "readiness" and tgs is not None:
        errs.append(invalid(path + ".terminationGracePeriodSeconds", as_int(tgs),
                            "must not be set for readinessProbes"))


def _lifecycle(path: str, lc: dict, grace: object, errs: list) -> None:
    for key in ("postStart", "preStop"):
        h = lc.get(key)
        if h is not None:
            _handler(f"{path}.{key}", as_dict(h), grace, errs, True)


_UID_RANGE = inclusive_range_error(0, 0xFFFFFFFF)


def _id_range(path: str, v: object, errs: list) -> None:
    if v is not None and isinstance(v, int) and not 0 <= v <= 0xFFFFFFFF:
        errs.append(invalid(path, v, _UID_RANGE))


def _seccomp(path: str, sp: object, errs: list) -> None:
    if sp is None:
        return
    sp = as_dict(sp)
    t = as_str(sp.get("type"))
    if t == "":
        errs.append(required(path + ".type", "type is required when seccompProfile is set"))
    elif t not in ("Localhost", "RuntimeDefault", "Unconfined"):
        errs.append(not_supported(path + ".type", t, ("Localhost", "RuntimeDefault", "Unconfined")))
    lp = sp.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            errs.append(required(path + ".localhostProfile", "must be set when seccomp type is Localhost"))
        else:
            _local_descending_path(path + ".localhostProfile", as_str(lp), errs)
    elif lp is not None:
        errs.append(invalid(path + ".localhostProfile",
                            GoRepr(f'core.SeccompProfile{{Type:{json.dumps(t)}, LocalhostProfile:(*string)(0xc000000000)}}'),
                            "can only be set when seccomp type is Localhost"))


def _container_security_context(path: str, sc: object, errs: list) -> None:
    if sc is None:
        return
    sc = as_dict(sc)
    _id_range(path + ".runAsUser", sc.get("runAsUser"), errs)
    _id_range(path + ".runAsGroup", sc.get("runAsGroup"), errs)
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in ("Default", "Unmasked"):
            errs.append(not_supported(path + ".procMount", pm, ("Default", "Unmasked")))
    _seccomp(path + ".seccompProfile", sc.get("seccompProfile"), errs)
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.append(invalid(path, GoRepr("&core.SecurityContext{...}"),
                                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
        for cap in as_list(as_dict(sc.get("capabilities")).get("add")):
            if cap == "CAP_SYS_ADMIN":
                errs.append(invalid(path, GoRepr("&core.SecurityContext{...}"),
                                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))


def _container_common(path: str, c: dict, volumes: dict, pod_claims: frozenset, restart_policy: str,
                      errs: list) -> None:
    name = as_str(c.get("name"))
    if not name:
        errs.append(required(path + ".name"))
    else:
        validate_dns1123_label(path + ".name", name, errs)
    if not as_str(c.get("image")):
        errs.append(required(path + ".image"))
    tmp = c.get("terminationMessagePolicy")
    if tmp not in _TMP_POLICIES:
        if not tmp:
            errs.append(required(path + ".terminationMessagePolicy"))
        else:
            errs.append(not_supported(path + ".terminationMessagePolicy", tmp, _TMP_POLICIES))
    mounts = as_list(c.get("volumeMounts"))
    devices = as_list(c.get("volumeDevices"))
    if c.get("ports"):
        _container_ports(path + ".ports", as_list(c.get("ports")), errs)
    if c.get("env"):
        _env(path + ".env", as_list(c.get("env")), errs)
    if c.get("envFrom"):
        _env_from(path + ".envFrom", as_list(c.get("envFrom")), errs)
    dev_map = {as_str(as_dict(d).get("name")): as_str(as_dict(d).get("devicePath")) for d in devices} if devices else {}
    if mounts:
        sc = as_dict(c.get("securityContext"))
        _volume_mounts(path + ".volumeMounts", mounts, dev_map, volumes, sc.get("privileged") is True, errs)
    if devices:
        mount_map = {as_str(as_dict(m).get("name")): as_str(as_dict(m).get("mountPath")) for m in mounts}
        _volume_devices(path + ".volumeDevices", devices, mount_map, volumes, errs)
    pp = c.get("imagePullPolicy")
    if pp not in _PULL_POLICIES:
        if not pp:
            errs.append(required(path + ".imagePullPolicy"))
        else:
            errs.append(not_supported(path + ".imagePullPolicy", pp, _PULL_POLICIES))
    res = c.get("resources")
    if res:
        validate_resource_requirements(path + ".resources", res, errs, pod_claims)
    rp = c.get("resizePolicy")
    if rp:
        seen: set[str] = set()
        rpp = path + ".resizePolicy"
        for i, p in enumerate(as_list(rp)):
            p = as_dict(p)
            rn = as_str(p.get("resourceName"))
            pol = as_str(p.get("restartPolicy"))
            if rn in seen:
                errs.append(duplicate(f"{rpp}[{i}]", rn))
            seen.add(rn)
            if rn not in ("cpu", "memory"):
                errs.append(required(rpp) if not rn else not_supported(rpp, rn, ("cpu", "memory")))
            if pol not in ("NotRequired", "RestartContainer"):
                errs.append(required(rpp) if not pol else not_supported(rpp, pol, ("NotRequired", "RestartContainer")))
            if restart_policy == "Never" and pol != "NotRequired":
                errs.append(invalid(rpp, pol, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
    if c.get("securityContext") is not None:
        _container_security_context(path + ".securityContext", c.get("securityContext"), errs)


def _host_port_conflicts(path: str, containers: list, errs: list, seen: set | None = None) -> None:
    if seen is None:
        seen = set()
    for ci, c in enumerate(containers):
        for pi, port in enumerate(as_list(as_dict(c).get("ports"))):
            port = as_dict(port)
            hp = port.get("hostPort")
            if not hp:
                continue
            key = f"{as_str(port.get('protocol'))}/{as_str(port.get('hostIP'))}/{hp}"
            if key in seen:
                errs.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            else:
                seen.add(key)


def _containers(path: str, containers: list, volumes: dict, pod_claims: frozenset, grace: object,
                restart_policy: str, errs: list) -> None:
    if not containers:
        errs.append(required(path))
        return
    names: set[str] = set()
    for i, c in enumerate(containers):
        c = as_dict(c)
        cp = f"{path}[{i}]"
        _container_common(cp, c, volumes, pod_claims, restart_policy, errs)
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(cp + ".name", name))
        else:
            names.add(name)
        lc = c.get("lifecycle")
        if lc is not None:
            _lifecycle(cp + ".lifecycle", as_dict(lc), grace, errs)
        _probe(cp + ".livenessProbe", c.get("livenessProbe"), grace, "liveness", errs)
        _probe(cp + ".readinessProbe", c.get("readinessProbe"), grace, "readiness", errs)
        _probe(cp + ".startupProbe", c.get("startupProbe"), grace, "startup", errs)
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(cp + ".restartPolicy", "may not be set for non-init containers"))
    _host_port_conflicts(path, containers, errs)


def _init_containers(path: str, containers: list, regular: list, volumes: dict, pod_claims: frozenset,
                     grace: object, restart_policy: str, errs: list) -> None:
    names = {as_str(as_dict(c).get("name")) for c in regular}
    for i, c in enumerate(containers):
        c = as_dict(c)
        cp = f"{path}[{i}]"
        _container_common(cp, c, volumes, pod_claims, restart_policy, errs)
        restart_always = False
        crp = c.get("restartPolicy")
        if crp is not None:
            if crp != "Always":
                errs.append(not_supported(cp + ".restartPolicy", crp, ("Always",)))
            restart_always = crp == "Always"
        name = as_str(c.get("name"))
        if name in names:
            errs.append(duplicate(cp + ".name", name))
        elif name:
            names.add(name)
        _host_port_conflicts(path, [c], errs)
        if restart_always:
            lc = c.get("lifecycle")
            if lc is not None:
                _lifecycle(cp + ".lifecycle", as_dict(lc), grace, errs)
            _probe(cp + ".livenessProbe", c.get("livenessProbe"), grace, "liveness", errs)
            _probe(cp + ".readinessProbe", c.get("readinessProbe"), grace, "readiness", errs)
            _probe(cp + ".startupProbe", c.get("startupProbe"), grace, "startup", errs)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.append(forbidden(f"{cp}.{key}", "may not be set for init containers without restartPolicy=Always"))


_EPHEMERAL_FORBIDDEN = ("ports", "resources", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe",
                        "resizePolicy", "restartPolicy")


def _ephemeral_containers(path: str, ecs: list, containers: list, inits: list, volumes: dict,
                          pod_claims: frozenset, restart_policy: str, errs: list) -> None:
    other = {as_str(as_dict(c).get("name")) for c in containers} | {as_str(as_dict(c).get("name")) for c in inits}
    all_names = set(other)
    for i, ec in enumerate(ecs):
        ec = as_dict(ec)
        ip = f"{path}[{i}]"
        _container_common(ip, ec, volumes, pod_claims, restart_policy, errs)
        image = as_str(ec.get("image"))
        if len(image) != len(image.strip()):
            errs.append(invalid(ip + ".image", image, "must not have leading or trailing whitespace"))
        name = as_str(ec.get("name"))
        if name in all_names:
            errs.append(duplicate(ip + ".name", name))
        else:
            all_names.add(name)
        tcn = as_str(ec.get("targetContainerName"))
        if tcn and tcn not in other:
            errs.append(not_found(ip + ".targetContainerName", tcn))
        for key in _EPHEMERAL_FORBIDDEN:
            v = ec.get(key)
            if v not in (None, [], {}, ""):
                errs.append(forbidden(f"{ip}.{key}", "cannot be set for an Ephemeral Container"))
        for j, vm in enumerate(as_list(ec.get("volumeMounts"))):
            vm = as_dict(vm)
            if vm.get("subPath"):
                errs.append(forbidden(f"{ip}.volumeMounts[{j}].subPath", "cannot be set for an Ephemeral Container"))
            if vm.get("subPathExpr"):
                errs.append(forbidden(f"{ip}.volumeMounts[{j}].subPathExpr",
                                      "cannot be set for an Ephemeral Container"))


