"""Service and Endpoints validation (core/v1, ``pkg/apis/core/validation``).

Each ``validate_<kind>(obj, old, errs)`` handles create (``old is None``) and update.
"""

from __future__ import annotations

from k8py.api.validation_common import (
    GoRepr, as_dict, as_int, as_list, as_str, duplicate, forbidden, go_quote, go_slice, invalid, is_valid_cidr,
    is_valid_ip, name_is_dns1035_label, name_is_dns_subdomain, not_supported, parse_ip, required,
    validate_dns1123_label, validate_dns1123_subdomain, validate_labels, validate_object_meta,
    validate_object_meta_update, validate_qualified_name,
)


# --- Service --------------------------------------------------------------------------------------------
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _service_port_repr(p: dict) -> GoRepr:
    return GoRepr(f'core.ServicePort{{Name:"", Protocol:{go_quote(as_str(p.get("protocol")))}, '
                  f'AppProtocol:(*string)(nil), Port:{as_int(p.get("port"))}, '
                  f'TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def _cluster_ips(spec: dict) -> list:
    ips = as_list(spec.get("clusterIPs"))
    if not ips and as_str(spec.get("clusterIP")):
        return [spec["clusterIP"]]
    return ips


def _is_headless(spec: dict) -> bool:
    ips = _cluster_ips(spec)
    return len(ips) == 1 and ips[0] == "None"


def _externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _validate_service(obj: dict, errs: list, check_node_port_range: bool = True) -> None:
    spec = as_dict(obj.get("spec"))
    meta = as_dict(obj.get("metadata"))
    ann = as_dict(meta.get("annotations"))
    t_hints = ann.get("service.kubernetes.io/topology-aware-hints")
    t_mode = ann.get("service.kubernetes.io/topology-mode")
    if t_hints is not None and t_mode is not None and t_hints != t_mode:
        errs.append(invalid("metadata.annotations[service.kubernetes.io/topology-mode]", t_mode,
                            "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified"))
    stype = as_str(spec.get("type"))
    ports = as_list(spec.get("ports"))
    headless = _is_headless(spec)
    cluster_ips = _cluster_ips(spec)
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports"))
    if stype == "LoadBalancer" and headless:
        errs.append(invalid("spec.clusterIPs[0]", cluster_ips[0], "may not be set to 'None' for LoadBalancer services"))
    elif stype == "NodePort" and headless:
        errs.append(invalid("spec.clusterIPs[0]", cluster_ips[0], "may not be set to 'None' for NodePort services"))
    elif stype == "ExternalName":
        if cluster_ips:
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName"))
        if cname.endswith("."):
            cname = cname[:-1]
        if cname:
            validate_dns1123_subdomain("spec.externalName", cname, errs)
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    multi = len(ports) > 1
    for i, p in enumerate(ports):
        p = as_dict(p)
        pp = f"spec.ports[{i}]"
        name = as_str(p.get("name"))
        if multi and not name:
            errs.append(required(pp + ".name"))
        elif name:
            validate_dns1123_label(pp + ".name", name, errs)
            if name in names:
                errs.append(duplicate(pp + ".name", name))
            else:
                names.add(name)
        port = p.get("port")
        if not (isinstance(port, int) and 1 <= port <= 65535):
            errs.append(invalid(pp + ".port", as_int(port), "must be between 1 and 65535, inclusive"))
        proto = as_str(p.get("protocol"))
        if not proto:
            errs.append(required(pp + ".protocol"))
        elif proto not in _PROTOCOLS:
            errs.append(not_supported(pp + ".protocol", proto, _PROTOCOLS))
        tp = p.get("targetPort")
        if isinstance(tp, str):
            from k8py.api.validation_common import is_valid_port_name
            for msg in is_valid_port_name(tp):
                errs.append(invalid(pp + ".targetPort", tp, msg))
        else:
            v = as_int(tp)
            if not 1 <= v <= 65535:
                errs.append(invalid(pp + ".targetPort", v, "must be between 1 and 65535, inclusive"))
        ap = p.get("appProtocol")
        if ap is not None:
            validate_qualified_name(pp + ".appProtocol", as_str(ap), errs)
    if spec.get("selector") is not None:
        validate_labels("spec.selector", spec.get("selector"), errs)
    sa = as_str(spec.get("sessionAffinity"))
    if not sa:
        errs.append(required("spec.sessionAffinity"))
    elif sa not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", sa, ("ClientIP", "None")))
    sac = spec.get("sessionAffinityConfig")
    if sa == "ClientIP":
        cip = as_dict(sac).get("clientIP") if sac is not None else None
        if sac is None:
            errs.append(required("spec.sessionAffinityConfig", "when session affinity type is ClientIP"))
        elif cip is None:
            errs.append(required("spec.sessionAffinityConfig.clientIP", "when session affinity type is ClientIP"))
        elif as_dict(cip).get("timeoutSeconds") is None:
            errs.append(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                                 "when session affinity type is ClientIP"))
        else:
            ts = as_int(as_dict(cip).get("timeoutSeconds"))
            if ts <= 0 or ts > 86400:
                errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", ts,
                                    "must be greater than 0 and less than 86400"))
    elif sa == "None" and sac is not None:
        errs.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    _cluster_ips_related(spec, errs)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        ip = as_str(ip)
        if is_valid_ip(f"spec.externalIPs[{i}]", ip, errs):
            validate_non_special_ip(f"spec.externalIPs[{i}]", ip, errs)
    if not stype:
        errs.append(required("spec.type"))
    elif stype not in _SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if as_int(as_dict(p).get("nodePort")):
                errs.append(forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    elif check_node_port_range and stype in ("NodePort", "LoadBalancer"):
        lo, hi = NODE_PORT_RANGE
        for i, p in enumerate(ports):
            np_ = as_int(as_dict(p).get("nodePort"))
            if np_ and not lo <= np_ <= hi:
                errs.append(invalid(f"spec.ports[{i}].nodePort", np_,
                                    f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"))
    seen_np: set = set()
    for i, p in enumerate(ports):
        p = as_dict(p)
        np_ = as_int(p.get("nodePort"))
        if not np_:
            continue
        key = (as_str(p.get("protocol")), np_)
        if key in seen_np:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", np_))
        seen_np.add(key)
    seen_p: set = set()
    for i, p in enumerate(ports):
        p = as_dict(p)
        key = (as_str(p.get("protocol")), as_int(p.get("port")))
        if key in seen_p:
            errs.append(duplicate(f"spec.ports[{i}]", _service_port_repr(p)))
        seen_p.add(key)
    lbsr = as_list(spec.get("loadBalancerSourceRanges"))
    if lbsr:
        if stype != "LoadBalancer":
            errs.append(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, v in enumerate(lbsr):
            is_valid_cidr(f"spec.LoadBalancerSourceRanges[{i}]", as_str(v).strip(), errs)
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    lbc = spec.get("loadBalancerClass")
    if stype == "LoadBalancer":
        if lbc is not None:
            validate_qualified_name("spec.loadBalancerClass", as_str(lbc), errs)
    elif lbc is not None:
        errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    etp = as_str(spec.get("externalTrafficPolicy"))
    if not _externally_accessible(spec):
        if etp:
            errs.append(invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    hcnp = as_int(spec.get("healthCheckNodePort"))
    needs_hc = stype == "LoadBalancer" and etp == "Local"
    if not needs_hc:
        if hcnp:
            errs.append(invalid("spec.healthCheckNodePort", hcnp,
                                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required("spec.internalTrafficPolicy"))
    elif itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    td = spec.get("trafficDistribution")
    if td is not None and td not in ("PreferClose",):
        errs.append(not_supported("spec.trafficDistribution", td, ("PreferClose",)))


def _cluster_ips_related(spec: dict, errs: list) -> None:
    if spec.get("type") == "ExternalName":
        return
    ips = _cluster_ips(spec)
    fams = as_list(spec.get("ipFamilies"))
    seen: set = set()
    for i, fam in enumerate(fams):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6")))
        elif fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        else:
            seen.add(fam)
    pol = spec.get("ipFamilyPolicy")
    if pol is not None and pol not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", pol, ("PreferDualStack", "RequireDualStack", "SingleStack")))
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad = True
                errs.append(invalid("spec.clusterIPs", GoRepr(go_slice(ips, "[]string")),
                                    "'None' must be the first and only value"))
            continue
        if not is_valid_ip(f"spec.clusterIPs[{i}]", as_str(ip), errs):
            bad = True
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", GoRepr(go_slice(ips, "[]string")), "may only hold up to 2 values"))
    if bad:
        return
    if len(ips) > 1:
        a, b = parse_ip(ips[0]), parse_ip(ips[1])
        if len(ips) > 2 or a is None or b is None or a.version == b.version:
            errs.append(invalid("spec.clusterIPs", GoRepr(go_slice(ips, "[]string")),
                                "may specify no more than one IP for each IP family"))
    if not _is_headless(spec) and ips and fams:
        for i, ip in enumerate(ips):
            if i > len(fams) - 1:
                break
            addr = parse_ip(ip)
            is6 = addr is not None and addr.version == 6
            if fams[i] == "IPv4" and is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if fams[i] == "IPv6" and not is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))


def validate_non_special_ip(path: str, ip: str, errs: list) -> None:
    addr = parse_ip(ip)
    if addr is None:
        errs.append(invalid(path, ip, "must be a valid IP address"))
        return
    if addr.is_unspecified:
        errs.append(invalid(path, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback:
        errs.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local and not addr.is_multicast:
        errs.append(invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if addr.is_multicast and (str(addr).startswith("224.0.0.") or str(addr).startswith("ff02:")):
        errs.append(invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))


def validate_service(obj: dict, old: dict | None, errs: list) -> None:
    if old is None:
        validate_object_meta(obj.get("metadata"), True, name_is_dns1035_label, errs)
        _validate_service(obj, errs)
        return
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    spec, ospec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    if spec.get("type") != "ExternalName" and ospec.get("type") != "ExternalName" and \
            not (_is_headless(spec) and _is_headless(ospec)):
        ni, oi = _cluster_ips(spec), _cluster_ips(ospec)
        go_ni = GoRepr(go_slice(ni, "[]string"))
        if len(oi) == len(ni):
            for i, ip in enumerate(oi):
                if ip != ni[i]:
                    errs.append(invalid(f"spec.clusterIPs[{i}]", go_ni, "may not change once set"))
        elif len(oi) > len(ni):
            if not ni:
                errs.append(invalid("spec.clusterIPs[0]", go_ni, "primary clusterIP can not be unset"))
            if oi and ni and ni[0] != oi[0]:
                errs.append(invalid("spec.clusterIPs[0]", go_ni, "may not change once set"))
            if len(ni) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
                errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                    "must be set to 'SingleStack' when releasing the secondary clusterIP"))
        elif oi and ni[0] != oi[0]:
            errs.append(invalid("spec.clusterIPs[0]", go_ni, "may not change once set"))
    if ospec.get("type") == "LoadBalancer" and spec.get("type") == "LoadBalancer" and \
            spec.get("loadBalancerClass") != ospec.get("loadBalancerClass"):
        errs.append(invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set"))
    _validate_service(obj, errs)


def validate_service_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    spec = as_dict(obj.get("spec"))
    ingress = as_list(as_dict(as_dict(obj.get("status")).get("loadBalancer")).get("ingress"))
    if spec.get("type") != "LoadBalancer" and ingress:
        errs.append(forbidden("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'"))
        return
    for i, ing in enumerate(ingress):
        ing = as_dict(ing)
        ip = as_str(ing.get("ip"))
        p = f"status.loadBalancer.ingress[{i}]"
        if ip:
            is_valid_ip(p + ".ip", ip, errs)
        if ing.get("ipMode") is not None and not ip:
            errs.append(forbidden(p + ".ipMode", "may not be specified when `ip` is not set"))
        elif ing.get("ipMode") is not None and ing.get("ipMode") not in ("Proxy", "VIP"):
            errs.append(not_supported(p + ".ipMode", ing.get("ipMode"), ("Proxy", "VIP")))
        hn = as_str(ing.get("hostname"))
        if hn:
            validate_dns1123_subdomain(p + ".hostname", hn, errs)
            if parse_ip(hn) is not None:
                errs.append(invalid(p + ".hostname", hn, "must be a DNS name, not an IP address"))


# --- Endpoints ------------------------------------------------------------------------------------------
def _endpoint_address(path: str, a: dict, errs: list) -> None:
    ip = as_str(a.get("ip"))
    is_valid_ip(path + ".ip", ip, errs)
    hn = as_str(a.get("hostname"))
    if hn:
        validate_dns1123_label(path + ".hostname", hn, errs)
    nn = a.get("nodeName")
    if nn is not None:
        for msg in name_is_dns_subdomain(as_str(nn)):
            errs.append(invalid(path + ".nodeName", as_str(nn), msg))
    validate_non_special_ip(path + ".ip", ip, errs)


def validate_endpoints(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    validate_object_meta(obj.get("metadata"), True, name_is_dns_subdomain, errs)
    for i, ss in enumerate(as_list(obj.get("subsets"))):
        ss = as_dict(ss)
        sp = f"subsets[{i}]"
        addrs, nr = as_list(ss.get("addresses")), as_list(ss.get("notReadyAddresses"))
        if not addrs and not nr:
            errs.append(required(sp, "must specify `addresses` or `notReadyAddresses`"))
        for j, a in enumerate(addrs):
            _endpoint_address(f"{sp}.addresses[{j}]", as_dict(a), errs)
        for j, a in enumerate(nr):
            _endpoint_address(f"{sp}.notReadyAddresses[{j}]", as_dict(a), errs)
        ports = as_list(ss.get("ports"))
        for j, p in enumerate(ports):
            p = as_dict(p)
            pp = f"{sp}.ports[{j}]"
            name = as_str(p.get("name"))
            if len(ports) > 1 and not name:
                errs.append(required(pp + ".name"))
            elif name:
                validate_dns1123_label(pp + ".name", name, errs)
            port = p.get("port")
            if not (isinstance(port, int) and 1 <= port <= 65535):
                errs.append(invalid(pp + ".port", as_int(port), "must be between 1 and 65535, inclusive"))
            proto = as_str(p.get("protocol"))
            if not proto:
                errs.append(required(pp + ".protocol"))
            elif proto not in _PROTOCOLS:
                errs.append(not_supported(pp + ".protocol", proto, _PROTOCOLS))
            if p.get("appProtocol") is not None:
                validate_qualified_name(pp + ".appProtocol", as_str(p.get("appProtocol")), errs)
