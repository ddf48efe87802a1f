"""Validation of networking.k8s.io (Ingress, IngressClass, NetworkPolicy) and discovery.k8s.io
(EndpointSlice), as kube's ``pkg/apis/networking/validation`` and ``pkg/apis/discovery/validation``.
"""

from __future__ import annotations

from k8py.api.validation_common import (
    FIELD_IMMUTABLE_MSG, GoRepr, as_dict, as_int, as_list, as_str, duplicate, forbidden, go_slice, invalid,
    is_dns1123_subdomain, is_domain_prefixed_path, is_valid_ip, is_valid_port_name, is_wildcard_dns1123_subdomain,
    name_is_dns1035_label, name_is_dns_label, name_is_dns_subdomain, not_supported, parse_cidr, parse_ip, required,
    too_long, too_many, validate_dns1123_label, validate_label_selector, validate_labels, validate_meta,
    validate_object_meta, validate_object_meta_update, validate_path_segment, validate_qualified_name,
)
from k8py.api.validation_service import validate_non_special_ip


# --- networking ------------------------------------------------------------------------------------
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _typed_local_ref(path: str, ref: dict, errs: list) -> None:
    if ref.get("apiGroup") is not None:
        g = as_str(ref.get("apiGroup"))
        for msg in is_dns1123_subdomain(g):
            errs.append(invalid(path + ".apiGroup", g, msg))
    kind = as_str(ref.get("kind"))
    if not kind:
        errs.append(required(path + ".kind", "kind is required"))
    else:
        validate_path_segment(path + ".kind", kind, errs)
    name = as_str(ref.get("name"))
    if not name:
        errs.append(required(path + ".name", "name is required"))
    else:
        validate_path_segment(path + ".name", name, errs)


def _ingress_backend(path: str, backend: dict, errs: list) -> None:
    res, svc = backend.get("resource"), backend.get("service")
    if res is not None and svc is not None:
        errs.append(invalid(path, "", "cannot set both resource and service backends"))
        return
    if res is not None:
        _typed_local_ref(path + ".resource", as_dict(res), errs)
    elif svc is not None:
        svc = as_dict(svc)
        name = as_str(svc.get("name"))
        if not name:
            errs.append(required(path + ".service.name"))
        else:
            for msg in name_is_dns1035_label(name):
                errs.append(invalid(path + ".service.name", name, msg))
        port = as_dict(svc.get("port"))
        pname, pnum = as_str(port.get("name")), as_int(port.get("number"))
        if pname and pnum:
            errs.append(invalid(path, "", "cannot set both port name & port number"))
        elif pname:
            for msg in is_valid_port_name(pname):
                errs.append(invalid(path + ".service.port.name", pname, msg))
        elif pnum:
            if not 1 <= pnum <= 65535:
                errs.append(invalid(path + ".service.port.number", pnum, "must be between 1 and 65535, inclusive"))
        else:
            errs.append(required(path, "port name or number is required"))
    else:
        errs.append(invalid(path, "", "resource or service backend is required"))


def _ingress_host(path: str, host: str, errs: list) -> None:
    if parse_ip(host) is not None:
        errs.append(invalid(path, host, "must be a DNS name, not an IP address"))
    fn = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
    for msg in fn(host):
        errs.append(invalid(path, host, msg))


def validate_ingress(obj: dict, old: dict | None, errs: list) -> None:
    if old is not None:
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    meta = as_dict(obj.get("metadata"))
    validate_object_meta(meta, True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    rules = as_list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        errs.append(invalid("spec", GoRepr(go_slice(None, "[]networking.IngressRule") if spec.get("rules") is None
                                           else "[]networking.IngressRule{}"),
                            "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        _ingress_backend("spec.defaultBackend", as_dict(spec.get("defaultBackend")), errs)
    for i, rule in enumerate(rules):
        rule = as_dict(rule)
        rp = f"spec.rules[{i}]"
        host = as_str(rule.get("host"))
        if host:
            _ingress_host(rp + ".host", host, errs)
        http = rule.get("http")
        if http is not None:
            paths = as_list(as_dict(http).get("paths"))
            if not paths:
                errs.append(required(rp + ".http.paths"))
            for j, p in enumerate(paths):
                p = as_dict(p)
                pp = f"{rp}.http.paths[{j}]"
                pt = p.get("pathType")
                path = as_str(p.get("path"))
                if pt is None:
                    errs.append(required(pp + ".pathType", "pathType must be specified"))
                    continue
                if pt in ("Exact", "Prefix"):
                    if not path.startswith("/"):
                        errs.append(invalid(pp + ".path", path, "must be an absolute path"))
                    if path:
                        for seq in ("//", "/./", "/../", "%2f", "%2F"):
                            if seq in path:
                                errs.append(invalid(pp + ".path", path, f"must not contain '{seq}'"))
                        for suf in ("/..", "/."):
                            if path.endswith(suf):
                                errs.append(invalid(pp + ".path", path, f"cannot end with '{suf}'"))
                elif pt == "ImplementationSpecific":
                    if path and not path.startswith("/"):
                        errs.append(invalid(pp + ".path", path, "must be an absolute path"))
                else:
                    errs.append(not_supported(pp + ".pathType", pt, _PATH_TYPES))
                _ingress_backend(pp + ".backend", as_dict(p.get("backend")), errs)
    for tls in as_list(spec.get("tls")):
        for i, h in enumerate(as_list(as_dict(tls).get("hosts"))):
            h = as_str(h)
            fn = is_wildcard_dns1123_subdomain if "*" in h else is_dns1123_subdomain
            for msg in fn(h):
                errs.append(invalid(f"spec.tls[{i}].hosts", h, msg))
    icn = spec.get("ingressClassName")
    if icn is not None:
        for msg in name_is_dns_subdomain(as_str(icn)):
            errs.append(invalid("spec.ingressClassName", as_str(icn), msg))
    if old is None:
        ann = as_dict(meta.get("annotations"))
        if "kubernetes.io/ingress.class" in ann and icn is not None:
            errs.append(invalid("annotations.kubernetes.io/ingress.class", ann["kubernetes.io/ingress.class"],
                                "can not be set when the class field is also set"))


def validate_ingress_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    for i, ing in enumerate(as_list(as_dict(as_dict(obj.get("status")).get("loadBalancer")).get("ingress"))):
        ing = as_dict(ing)
        p = f"status.loadBalancer.ingress[{i}]"
        if as_str(ing.get("ip")):
            is_valid_ip(p + ".ip", as_str(ing.get("ip")), errs)
        hn = as_str(ing.get("hostname"))
        if hn:
            for msg in is_dns1123_subdomain(hn):
                errs.append(invalid(p + ".hostname", hn, msg))
            if parse_ip(hn) is not None:
                errs.append(invalid(p + ".hostname", hn, "must be a DNS name, not an IP address"))


def validate_ingress_class(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, False, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    ctrl = as_str(spec.get("controller"))
    if len(ctrl) > 250:
        errs.append(too_long("spec.controller", 250))
    is_domain_prefixed_path("spec.controller", ctrl, errs)
    params = spec.get("parameters")
    if params is not None:
        params = as_dict(params)
        pp = "spec.parameters"
        _typed_local_ref(pp, params, errs)
        scope = params.get("scope")
        if scope is None:
            errs.append(required(pp + ".scope"))
        elif scope not in ("Cluster", "Namespace"):
            errs.append(not_supported(pp + ".scope", as_str(scope), ("Cluster", "Namespace")))
        elif scope == "Namespace":
            ns = params.get("namespace")
            if ns is None:
                errs.append(required(pp + ".namespace", "`parameters.scope` is set to 'Namespace'"))
            else:
                for msg in name_is_dns_label(as_str(ns)):
                    errs.append(invalid(pp + ".namespace", as_str(ns), msg))
        elif params.get("namespace") is not None:
            errs.append(forbidden(pp + ".namespace", "`parameters.scope` is set to 'Cluster'"))
    if old is not None and ctrl != as_str(as_dict(old.get("spec")).get("controller")):
        errs.append(invalid("spec.controller", ctrl, FIELD_IMMUTABLE_MSG))


def _np_port(path: str, port: dict, errs: list) -> None:
    proto = port.get("protocol")
    if proto is not None and proto not in ("TCP", "UDP", "SCTP"):
        errs.append(not_supported(path + ".protocol", proto, ("TCP", "UDP", "SCTP")))
    p = port.get("port")
    if p is not None:
        if isinstance(p, str):
            for msg in is_valid_port_name(p):
                errs.append(invalid(path + ".port", p, msg))
        elif not 1 <= as_int(p) <= 65535:
            errs.append(invalid(path + ".port", as_int(p), "must be between 1 and 65535, inclusive"))
    ep = port.get("endPort")
    if ep is not None:
        if isinstance(p, str):
            errs.append(forbidden(path + ".endPort", "may not be specified when `port` is non-numeric"))
        elif p is None:
            errs.append(forbidden(path + ".endPort", "may not be specified when `port` is not specified"))
        elif as_int(ep) < as_int(p):
            errs.append(invalid(path + ".endPort", as_int(ep), "must be greater than or equal to `port`"))


def _np_peer(path: str, peer: dict, errs: list) -> None:
    n = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            n += 1
            validate_label_selector(f"{path}.{key}", peer.get(key), errs)
    ipb = peer.get("ipBlock")
    if ipb is not None:
        n += 1
        ipb = as_dict(ipb)
        cidr = as_str(ipb.get("cidr"))
        if not cidr:
            errs.append(required(path + ".ipBlock.cidr"))
        else:
            net = parse_cidr(cidr)
            if net is None:
                errs.append(invalid(path + ".ipBlock.cidr", cidr, "not a valid CIDR"))
            else:
                for i, ex in enumerate(as_list(ipb.get("except"))):
                    ex = as_str(ex)
                    en = parse_cidr(ex)
                    ep = f"{path}.ipBlock.except[{i}]"
                    if en is None:
                        errs.append(invalid(ep, ex, "not a valid CIDR"))
                        break
                    if en.version != net.version or not en.subnet_of(net) or net.prefixlen >= en.prefixlen:
                        errs.append(invalid(ep, ex, "must be a strict subset of `cidr`"))
    if n == 0:
        errs.append(required(path, "must specify a peer"))
    elif n > 1 and ipb is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))


def validate_network_policy(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    spec = as_dict(obj.get("spec"))
    validate_label_selector("spec.podSelector", as_dict(spec.get("podSelector")), errs)
    for key, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(key))):
            rule = as_dict(rule)
            rp = f"spec.{key}[{i}]"
            for j, port in enumerate(as_list(rule.get("ports"))):
                _np_port(f"{rp}.ports[{j}]", as_dict(port), errs)
            for j, peer in enumerate(as_list(rule.get(peers))):
                _np_peer(f"{rp}.{peers}[{j}]", as_dict(peer), errs)
    types = as_list(spec.get("policyTypes"))
    if len(types) > 2:
        errs.append(invalid("spec.policyTypes", GoRepr(go_slice(types, "[]networking.PolicyType")),
                            "may not specify more than two policyTypes"))
        return
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            errs.append(not_supported(f"spec.policyTypes[{i}]", t, ("Ingress", "Egress")))


# --- discovery -------------------------------------------------------------------------------------
_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _fqdn(path: str, name: str, errs: list) -> None:
    if not name:
        errs.append(required(path))
        return
    n = name[:-1] if name.endswith(".") else name
    e = is_dns1123_subdomain(n)
    if e:
        errs.append(invalid(path, n, ",".join(e)))
        return
    if len(n.split(".")) < 2:
        errs.append(invalid(path, n, "should be a domain with at least two segments separated by dots"))
        return
    from k8py.api.validation_common import is_dns1123_label
    for label in n.split("."):
        le = is_dns1123_label(label)
        if le:
            errs.append(invalid(path, label, ",".join(le)))
            return


def validate_endpoint_slice(obj: dict, old: dict | None, errs: list) -> None:
    validate_meta(obj, old, True, name_is_dns_subdomain, errs)
    at = as_str(obj.get("addressType"))
    endpoints = as_list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
    for i, ep in enumerate(endpoints):
        ep = as_dict(ep)
        ip = f"endpoints[{i}]"
        addrs = as_list(ep.get("addresses"))
        if not addrs:
            errs.append(required(ip + ".addresses", "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(too_many(ip + ".addresses", len(addrs), 100))
        for j, a in enumerate(addrs):
            a = as_str(a)
            ap = f"{ip}.addresses[{j}]"
            if at in ("IPv4", "IPv6"):
                addr = parse_ip(a)
                ok = addr is not None and addr.version == (4 if at == "IPv4" else 6)
                if not ok:
                    errs.append(invalid(ap, a, f"must be a valid {at} address"))
                else:
                    validate_non_special_ip(ap, a, errs)
            elif at == "FQDN":
                _fqdn(ap, a, errs)
        nn = ep.get("nodeName")
        if nn is not None:
            for msg in name_is_dns_subdomain(as_str(nn)):
                errs.append(invalid(ip + ".nodeName", as_str(nn), msg))
        hn = ep.get("hostname")
        if hn is not None:
            validate_dns1123_label(ip + ".hostname", as_str(hn), errs)
        if ep.get("deprecatedTopology"):
            validate_labels(ip + ".deprecatedTopology", ep.get("deprecatedTopology"), errs)
    ports = as_list(obj.get("ports"))
    if len(ports) > 20000:
        errs.append(too_many("ports", len(ports), 20000))
    names: set = set()
    for i, p in enumerate(ports):
        p = as_dict(p)
        pp = f"ports[{i}]"
        name = as_str(p.get("name"))
        if name:
            validate_dns1123_label(pp + ".name", name, errs)
        if name in names:
            errs.append(duplicate(pp + ".name", name))
        names.add(name)
        proto = p.get("protocol")
        if proto is None:
            errs.append(required(pp + ".protocol"))
        elif proto not in ("SCTP", "TCP", "UDP"):
            errs.append(not_supported(pp + ".protocol", proto, ("SCTP", "TCP", "UDP")))
        if p.get("appProtocol") is not None:
            validate_qualified_name(pp + ".appProtocol", as_str(p.get("appProtocol")), errs)
    if old is None:
        if not at:
            errs.append(required("addressType"))
        elif at not in _ADDRESS_TYPES:
            errs.append(not_supported("addressType", at, _ADDRESS_TYPES))
    elif at != as_str(old.get("addressType")):
        errs.append(invalid("addressType", at, FIELD_IMMUTABLE_MSG))
