"""The zone built from fake Services and EndpointSlices, queried through
the resolver (fast and slow paths, UDP limits and TCP)."""

from __future__ import annotations

from typing import Any

from k8py.dns import wire
from k8py.dns.records import Contribution, Zone, service_records
from k8py.dns.server import Resolver
from k8py.dns.wire import Edns, Message

D = "cluster.local"


def svc(name: str, ns: str = "default", ip: str | None = "10.43.0.20", ports: list[dict] | None = None,
        **spec: Any) -> dict:
    s: dict[str, Any] = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if ip is not None:
        s["clusterIP"] = ip
        s["clusterIPs"] = [ip]
    s.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": s}


def slice_(svc_name: str, eps: list[dict], ns: str = "default", name: str = "", ports: list[dict] | None = None,
           address_type: str = "IPv4") -> dict:
    return {"metadata": {"name": name or f"{svc_name}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": address_type, "endpoints": eps,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip: str, ready: bool | None = True, hostname: str | None = None) -> dict:
    e: dict[str, Any] = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


def put(zone: Zone, s: dict, slices: list[dict] | None = None) -> None:
    md = s["metadata"]
    zone.set_owner(f"svc/{md['namespace']}/{md['name']}", service_records(s, slices or [], zone.domain, zone.ttl))


def namespace(zone: Zone, ns: str) -> None:
    c = Contribution()
    c.names.add(f"{ns}.svc.{zone.domain}")
    zone.set_owner("ns/" + ns, c)


def ask(r: Resolver, name: str, qtype: int = wire.A, *, tcp: bool = False, edns: Edns | None = None,
        mid: int = 4242, rd: bool = True) -> Message:
    resp = r.handle(wire.make_query(name, qtype, mid, rd=rd, edns=edns), tcp)
    assert isinstance(resp, bytes), resp
    m = wire.parse(resp)
    assert m.id == mid and m.flags & wire.QR
    assert bool(m.flags & wire.RD) == rd
    return m


def data(m: Message, rtype: int | None = None) -> list:
    return sorted(rr.data for rr in m.answer if rtype is None or rr.rtype == rtype)


def test_cluster_ip_service() -> None:
    z = Zone(D)
    r = Resolver(z)
    put(z, svc("web", ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 9000, "protocol": "UDP"}]))
    m = ask(r, "web.default.svc.cluster.local")
    assert m.rcode == wire.NOERROR and m.flags & wire.AA
    assert [(rr.name, rr.rtype, rr.ttl, rr.data) for rr in m.answer] == [
        ("web.default.svc.cluster.local", wire.A, 5, "10.43.0.20")]
    assert r.stats["fast"] == 1
    # names are case-insensitive; the answer echoes the question's case
    m = ask(r, "WEB.Default.SVC.cluster.local")
    assert m.answer[0].name == "WEB.Default.SVC.cluster.local" and data(m) == ["10.43.0.20"]
    # an existing name without AAAA: NODATA with the SOA (negative TTL = SOA minimum = 5)
    m = ask(r, "web.default.svc.cluster.local", wire.AAAA)
    assert m.rcode == wire.NOERROR and not m.answer
    soa = m.authority[0]
    assert soa.rtype == wire.SOA and soa.name == D and soa.data[:2] == ("ns.dns.cluster.local",
                                                                         "hostmaster.cluster.local")
    assert soa.ttl == 5 and soa.data[6] == 5
    # SRV for the named port only, targeting the service, its address as additional data
    m = ask(r, "_http._tcp.web.default.svc.cluster.local", wire.SRV)
    assert data(m) == [(0, 100, 80, "web.default.svc.cluster.local")]
    assert [(rr.name, rr.data) for rr in m.additional] == [("web.default.svc.cluster.local", "10.43.0.20")]
    assert ask(r, "_http._udp.web.default.svc.cluster.local", wire.SRV).rcode == wire.NXDOMAIN
    # the bare service name's SRV lists every port
    assert data(ask(r, "web.default.svc.cluster.local", wire.SRV)) == [
        (0, 50, 80, "web.default.svc.cluster.local"), (0, 50, 9000, "web.default.svc.cluster.local")]
    # empty non-terminals and the namespace exist (NODATA); other names do not
    for n in ("_tcp.web.default.svc.cluster.local", "default.svc.cluster.local", "svc.cluster.local"):
        m = ask(r, n)
        assert m.rcode == wire.NOERROR and not m.answer and m.authority[0].rtype == wire.SOA, n
    for n in ("nope.default.svc.cluster.local", "web.other.svc.cluster.local", "x.web.default.svc.cluster.local"):
        m = ask(r, n)
        assert m.rcode == wire.NXDOMAIN and m.authority[0].rtype == wire.SOA and m.flags & wire.AA, n
    # PTR for the ClusterIP
    assert data(ask(r, "20.0.43.10.in-addr.arpa", wire.PTR)) == ["web.default.svc.cluster.local"]


def test_updates_and_deletes() -> None:
    z = Zone(D)
    r = Resolver(z)
    put(z, svc("web"))
    put(z, svc("web", ip="10.43.0.21"))
    assert data(ask(r, "web.default.svc.cluster.local")) == ["10.43.0.21"]
    # unknown reverse names fall through to the upstreams (none here), as with CoreDNS' fallthrough
    assert ask(r, "20.0.43.10.in-addr.arpa", wire.PTR).rcode == wire.SERVFAIL
    z.set_owner("svc/default/web", None)
    assert ask(r, "web.default.svc.cluster.local").rcode == wire.NXDOMAIN
    assert ask(r, "default.svc.cluster.local").rcode == wire.NXDOMAIN  # no namespace object either
    namespace(z, "default")
    assert ask(r, "default.svc.cluster.local").rcode == wire.NOERROR
    assert not z.table.get(b"\x03web") and len(z.table) == 1  # only dns-version is left


def test_headless_service_and_statefulset_names() -> None:
    z = Zone(D)
    r = Resolver(z)
    s = svc("db", ip="None", ports=[{"name": "pg", "port": 5432}])
    put(z, s, [slice_("db", [ep("10.42.0.5", hostname="db-0"), ep("10.42.1.6", hostname="db-1"),
                              ep("10.42.1.7", ready=False, hostname="db-2"), ep("10.42.2.8", ready=None)],
                      ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
               slice_("db", [ep("fd00::5", hostname="db-0")], name="db-v6", address_type="IPv6",
                      ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])])
    assert data(ask(r, "db.default.svc.cluster.local")) == ["10.42.0.5", "10.42.1.6", "10.42.2.8"]
    assert data(ask(r, "db.default.svc.cluster.local", wire.AAAA)) == ["fd00::5"]
    assert data(ask(r, "db-0.db.default.svc.cluster.local")) == ["10.42.0.5"]
    assert data(ask(r, "db-0.db.default.svc.cluster.local", wire.AAAA)) == ["fd00::5"]
    assert data(ask(r, "db-1.db.default.svc.cluster.local")) == ["10.42.1.6"]
    assert ask(r, "db-2.db.default.svc.cluster.local").rcode == wire.NXDOMAIN  # not ready
    # an endpoint without hostname is named by its address with dashes
    assert data(ask(r, "10-42-2-8.db.default.svc.cluster.local")) == ["10.42.2.8"]
    m = ask(r, "_pg._tcp.db.default.svc.cluster.local", wire.SRV)
    assert data(m) == [(0, 33, 5432, "10-42-2-8.db.default.svc.cluster.local"),
                       (0, 33, 5432, "db-0.db.default.svc.cluster.local"),
                       (0, 33, 5432, "db-1.db.default.svc.cluster.local")]
    assert {(rr.name, rr.data) for rr in m.additional} == {
        ("db-0.db.default.svc.cluster.local", "10.42.0.5"), ("db-0.db.default.svc.cluster.local", "fd00::5"),
        ("db-1.db.default.svc.cluster.local", "10.42.1.6"), ("10-42-2-8.db.default.svc.cluster.local", "10.42.2.8")}
    assert data(ask(r, "5.0.42.10.in-addr.arpa", wire.PTR)) == ["db-0.db.default.svc.cluster.local"]
    # address records rotate between answers (CoreDNS' loadbalance)
    firsts = {ask(r, "db.default.svc.cluster.local").answer[0].data for _ in range(3)}
    assert len(firsts) == 3
    # no ready endpoint: NXDOMAIN, as kube-dns and CoreDNS do
    put(z, s, [slice_("db", [ep("10.42.0.5", ready=False, hostname="db-0")])])
    assert ask(r, "db.default.svc.cluster.local").rcode == wire.NXDOMAIN
    assert ask(r, "db-0.db.default.svc.cluster.local").rcode == wire.NXDOMAIN


def test_external_name() -> None:
    z = Zone(D)
    r = Resolver(z)
    put(z, svc("ext", ip=None, type="ExternalName", externalName="web.other.svc.cluster.local."))
    put(z, svc("web", ns="other"))
    for qtype in (wire.A, wire.CNAME, wire.AAAA):
        m = ask(r, "ext.default.svc.cluster.local", qtype)
        assert m.rcode == wire.NOERROR
        assert (m.answer[0].rtype, m.answer[0].data) == (wire.CNAME, "web.other.svc.cluster.local")
    # an in-cluster target is followed
    assert data(ask(r, "ext.default.svc.cluster.local"), wire.A) == ["10.43.0.20"]
    assert len(ask(r, "ext.default.svc.cluster.local", wire.CNAME).answer) == 1


def test_pods_and_version_and_apex() -> None:
    z = Zone(D)
    r = Resolver(z)
    namespace(z, "default")
    assert data(ask(r, "10-42-0-9.default.pod.cluster.local")) == ["10.42.0.9"]
    assert ask(r, "10-42-0-9.default.pod.cluster.local", wire.AAAA).answer == []
    assert ask(r, "nonsense.default.pod.cluster.local").rcode == wire.NXDOMAIN
    z.pods = "verified"
    assert ask(r, "10-42-0-9.default.pod.cluster.local").rcode == wire.NXDOMAIN
    z.pod_ips.add(("default", "10.42.0.9"))
    assert data(ask(r, "10-42-0-9.default.pod.cluster.local")) == ["10.42.0.9"]
    assert data(ask(r, "dns-version.cluster.local", wire.TXT)) == [(b"1.1.0",)]
    z.ns_ips = ["10.43.0.10"]
    m = ask(r, "cluster.local", wire.NS)
    assert data(m) == ["ns.dns.cluster.local"] and m.additional[0].data == "10.43.0.10"
    assert data(ask(r, "cluster.local", wire.SOA))[0][0] == "ns.dns.cluster.local"
    assert data(ask(r, "ns.dns.cluster.local")) == ["10.43.0.10"]


def test_udp_truncation_edns_and_tcp() -> None:
    z = Zone(D)
    r = Resolver(z)
    eps = [ep(f"10.42.{i // 250}.{i % 250 + 1}", hostname=f"p-{i}") for i in range(100)]
    put(z, svc("big", ip="None"), [slice_("big", eps)])
    name = "big.default.svc.cluster.local"
    # 100 A records (16 bytes each) do not fit in 512 bytes: TC, whole records only
    m = ask(r, name)
    assert m.flags & wire.TC and 0 < len(m.answer) < 100
    assert len(r.handle(wire.make_query(name, wire.A, 1), False)) <= 512  # type: ignore[arg-type]
    # EDNS0 raises the limit: 4096 bytes hold them all, and the reply carries an OPT record
    m = ask(r, name, edns=Edns(4096))
    assert not m.flags & wire.TC and len(m.answer) == 100
    assert m.edns is not None and not m.edns.do
    assert ask(r, name, edns=Edns(4096, do=True)).edns.do  # type: ignore[union-attr]
    m = ask(r, name, edns=Edns(1000))
    assert m.flags & wire.TC and m.edns is not None
    assert len(r.handle(wire.make_query(name, wire.A, 1, edns=Edns(1000)), False)) <= 1000  # type: ignore[arg-type]
    # TCP has no such limit
    m = ask(r, name, tcp=True)
    assert not m.flags & wire.TC and len(m.answer) == 100
    # SRV with additional records: truncated replies drop the additional section
    m = ask(r, "big.default.svc.cluster.local", wire.SRV)
    assert m.flags & wire.TC and not m.additional


def test_edns_options_versions_and_errors() -> None:
    z = Zone(D)
    r = Resolver(z)
    put(z, svc("web"))
    # a cookie option is ignored, the answer still comes (through the fast path)
    m = ask(r, "web.default.svc.cluster.local", edns=Edns(1232, options=b"\x00\x0a\x00\x08abcdefgh"))
    assert data(m) == ["10.43.0.20"] and m.edns is not None and m.edns.options == b""
    # EDNS version 1: BADVERS (extended rcode 16)
    m = ask(r, "web.default.svc.cluster.local", edns=Edns(1232, version=1))
    assert m.rcode == wire.BADVERS and m.edns is not None
    # garbage: FORMERR; an unknown opcode: NOTIMP; a response: ignored
    q = wire.make_query("web.default.svc.cluster.local", wire.A, 77)
    f = wire.parse(r.handle(q[:20], False))  # type: ignore[arg-type]
    assert f.id == 77 and f.rcode == wire.FORMERR
    notify = bytearray(q)
    notify[2] |= 4 << 3
    assert wire.parse(r.handle(bytes(notify), False)).rcode == wire.NOTIMP  # type: ignore[arg-type]
    resp = bytearray(q)
    resp[2] |= 0x80
    assert r.handle(bytes(resp), False) is None
    assert r.handle(b"\x00\x01", False) is None
    # class CH: refused; no upstream for outside names: SERVFAIL
    ch = Message(5, wire.RD, [wire.Question("version.bind", wire.TXT, 3)]).to_wire()
    assert wire.parse(r.handle(ch, False)).rcode == wire.REFUSED  # type: ignore[arg-type]
    assert ask(r, "example.com").rcode == wire.SERVFAIL
    # RD is copied; without it the answer is the same
    assert data(ask(r, "web.default.svc.cluster.local", rd=False)) == ["10.43.0.20"]


def test_other_cluster_domain() -> None:
    z = Zone("k8s.example.")
    r = Resolver(z)
    put(z, svc("web"))
    assert data(ask(r, "web.default.svc.k8s.example")) == ["10.43.0.20"]
    assert ask(r, "nope.k8s.example").authority[0].name == "k8s.example"
