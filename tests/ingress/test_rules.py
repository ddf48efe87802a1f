"""The routing table: the path matching table of the Ingress docs
(https://kubernetes.io/docs/concepts/services-networking/ingress/#examples),
hosts and wildcards, merging, default backends, endpoints from
EndpointSlices, and which Ingresses are ours."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.ingress.rules import (Backend, RoutingTable, TableBuilder, is_ours, load_balancer_status,
                                our_classes, split_host)

Obj = dict[str, Any]


def ingress(name: str, rules: list[Obj], *, ns: str = "default", created: str = "2024-01-01T00:00:00Z",
            default: str | None = None, tls: list[Obj] | None = None, cls: str | None = None,
            annotations: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"rules": rules}
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if tls:
        spec["tls"] = tls
    if cls:
        spec["ingressClassName"] = cls
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created,
                         "annotations": annotations or {}}, "spec": spec}


def paths(*ps: tuple[str, str, str], host: str | None = None) -> Obj:
    rule: Obj = {"http": {"paths": [{"path": p, "pathType": t,
                                     "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                                    for p, t, svc in ps]}}
    if host:
        rule["host"] = host
    return rule


def build(*ings: Obj, services: dict[tuple[str, str], Obj] | None = None,
          slices: dict[tuple[str, str], list[Obj]] | None = None,
          secrets: dict[tuple[str, str], Obj] | None = None) -> RoutingTable:
    services = services or {}
    slices = slices or {}
    secrets = secrets or {}
    return TableBuilder(lambda ns, n: services.get((ns, n)), lambda ns, n: slices.get((ns, n), []),
                        lambda ns, n: secrets.get((ns, n))).build(ings)


def routed(t: RoutingTable, path: str, host: str = "") -> str | None:
    b = t.route(host, path)
    return None if b is None else b.name.split("/")[1].split(":")[0]


# The table of the Ingress docs: (rule paths, request path, matched service or None)
DOCS_TABLE = [
    ([("/", "Prefix")], "/", "/"),  # all paths
    ([("/foo", "Exact")], "/foo", "/foo"),
    ([("/foo", "Exact")], "/bar", None),
    ([("/foo", "Exact")], "/foo/", None),
    ([("/foo/", "Exact")], "/foo", None),
    ([("/foo", "Prefix")], "/foo", "/foo"),
    ([("/foo", "Prefix")], "/foo/", "/foo"),
    ([("/foo/", "Prefix")], "/foo", "/foo/"),
    ([("/foo/", "Prefix")], "/foo/", "/foo/"),
    ([("/aaa/bb", "Prefix")], "/aaa/bbb", None),
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb", "/aaa/bbb"),
    ([("/aaa/bbb/", "Prefix")], "/aaa/bbb", "/aaa/bbb/"),  # trailing slash of the rule ignored
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb/", "/aaa/bbb"),  # trailing slash of the request matches
    ([("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", "/aaa/bbb"),  # subpath
    ([("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),  # not a string prefix match
    ([("/", "Prefix"), ("/aaa", "Prefix")], "/aaa/ccc", "/aaa"),  # the longest prefix
    ([("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/aaa/bbb", "/aaa/bbb"),
    ([("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/ccc", "/"),
    ([("/aaa", "Prefix")], "/ccc", None),  # no match: the default backend
    ([("/aaa", "Prefix"), ("/aaa", "Exact")], "/aaa", "/aaa Exact"),  # Exact first
    ([("/aaa", "Prefix"), ("/aaa", "Exact")], "/aaa/x", "/aaa Prefix"),
    ([("/foo", "ImplementationSpecific")], "/foo/bar", "/foo"),  # treated as Prefix
    ([("/foo", "ImplementationSpecific")], "/foobar", None),
]


@pytest.mark.parametrize("rules,request_path,want", DOCS_TABLE)
def test_docs_path_table(rules: list[tuple[str, str]], request_path: str, want: str | None) -> None:
    # each rule's service is named after its path and type, so the winner shows
    def svc(p: str, t: str) -> str:
        return f"{p} {t}" if any(r[0] == p and r[1] != t for r in rules) else p

    t = build(ingress("i", [paths(*((p, ty, svc(p, ty)) for p, ty in rules))]))
    got = t.route("", request_path)
    assert (None if got is None else got.name.split("/", 1)[1].rsplit(":", 1)[0]) == want


def test_hosts_exact_wildcard_and_catch_all() -> None:
    t = build(ingress("i", [paths(("/", "Prefix", "foo")), paths(("/", "Prefix", "exact"), host="foo.example.com"),
                            paths(("/", "Prefix", "wild"), host="*.example.com"),
                            paths(("/api", "Prefix", "api"), host="FOO.example.com")]))
    assert routed(t, "/", "foo.example.com") == "exact"
    assert routed(t, "/api/x", "foo.example.com") == "api"  # hosts are case-insensitive, rules merged
    assert routed(t, "/", "bar.example.com") == "wild"
    assert routed(t, "/", "a.bar.example.com") == "foo"  # a wildcard covers one label only
    assert routed(t, "/", "example.com") == "foo"
    assert routed(t, "/", "other.org") == "foo"
    assert split_host("Foo.Example.com:8443") == "foo.example.com"
    assert split_host("[::1]:80") == "[::1]"
    assert split_host("10.0.0.1") == "10.0.0.1"


def test_host_without_matching_path_goes_to_default_backend() -> None:
    t = build(ingress("i", [paths(("/app", "Prefix", "app"), host="a.example.com")], default="fallback"))
    assert routed(t, "/app", "a.example.com") == "app"
    assert routed(t, "/other", "a.example.com") == "fallback"
    assert routed(t, "/", "nohost.example.com") == "fallback"
    assert build(ingress("i", [paths(("/app", "Prefix", "app"))])).route("", "/x") is None  # 404


def test_merging_oldest_ingress_wins() -> None:
    old = ingress("old", [paths(("/", "Prefix", "old"), host="h")], created="2024-01-01T00:00:00Z",
                  default="old-default")
    new = ingress("new", [paths(("/", "Prefix", "new"), ("/new", "Prefix", "new-only"), host="h")],
                  created="2024-06-01T00:00:00Z", default="new-default")
    for order in ((old, new), (new, old)):
        t = build(*order)
        assert routed(t, "/", "h") == "old"
        assert routed(t, "/new/x", "h") == "new-only"
        assert t.default is not None and "old-default" in t.default.name


def service(name: str, ports: list[Obj], typ: str = "ClusterIP", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"type": typ, "ports": ports, **spec}}


def eps(name: str, port_name: str, port: int, *endpoints: tuple[str, bool | None]) -> Obj:
    return {"metadata": {"name": name + "-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], **({} if r is None else {"conditions": {"ready": r}})}
                          for a, r in endpoints]}


def test_backends_from_endpointslices() -> None:
    services = {("default", "web"): service("web", [{"name": "http", "port": 80, "targetPort": 8080},
                                                    {"name": "metrics", "port": 9090}]),
                ("default", "ext"): service("ext", [{"port": 80}], typ="ExternalName", externalName="example.org")}
    slices = {("default", "web"): [eps("web", "http", 8080, ("10.42.0.5", True), ("10.42.0.6", None),
                                       ("10.42.0.7", False)),
                                   eps("web", "metrics", 9090, ("10.42.0.5", True))]}
    by_name = {"http": {"path": "/n", "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"name": "http"}}}}}
    rules = [paths(("/", "Prefix", "web"), ("/ext", "Prefix", "ext"), ("/none", "Prefix", "missing")),
             {"host": "n", "http": {"paths": [by_name["http"]]}}]
    t = build(ingress("i", rules), services=services, slices=slices)
    web = t.route("", "/")
    assert web is not None and web.endpoints == [("10.42.0.5", 8080), ("10.42.0.6", 8080)]  # not-ready left out
    assert t.route("n", "/n") is web  # by port name: the same Backend, one round robin
    ext = t.route("", "/ext")
    assert ext is not None and ext.endpoints == [("example.org", 80)]
    missing = t.route("", "/none")
    assert missing is not None and missing.endpoints == []  # 503
    assert ("EndpointSlice", "default", "web") in t.refs and ("Service", "default", "missing") in t.refs


def test_round_robin_and_retry_order() -> None:
    b = Backend("x", [("a", 1), ("b", 1), ("c", 1), ("d", 1)])
    firsts = [b.attempts()[0][0] for _ in range(8)]
    assert firsts == ["a", "b", "c", "d"] * 2
    assert b.attempts() == [("a", 1), ("b", 1), ("c", 1)]  # up to three tries
    assert Backend("y", []).attempts() == []


def test_which_ingresses_are_ours() -> None:
    classes = [{"metadata": {"name": "k8py", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": "k8py.io/ingress"}},
               {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}]
    names, default = our_classes(classes, "k8py.io/ingress")
    assert names == {"k8py"} and default
    assert is_ours(ingress("a", [], cls="k8py"), names, default)
    assert not is_ours(ingress("b", [], cls="nginx"), names, default)
    assert is_ours(ingress("c", []), names, default)  # no class: the default class's
    assert not is_ours(ingress("c", []), names, False)
    assert is_ours(ingress("d", [], annotations={"kubernetes.io/ingress.class": "k8py"}), names, False)
    assert not is_ours(ingress("e", [], annotations={"kubernetes.io/ingress.class": "nginx"}), names, True)
    assert load_balancer_status(["10.0.0.1", "lb.example.com"]) == [{"ip": "10.0.0.1"},
                                                                    {"hostname": "lb.example.com"}]
