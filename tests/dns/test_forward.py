"""Forwarding and caching against a fake upstream on loopback, through the
real UDP/TCP listeners."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable

from k8py.dns import wire
from k8py.dns.forward import Forwarder, host_upstreams, parse_upstream
from k8py.dns.records import Zone, service_records
from k8py.dns.server import DNSServer, Resolver
from k8py.dns.wire import RR, Edns

from .fakeupstream import FakeUpstream, tcp_query, udp_query


def dead_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(body: Callable[[FakeUpstream, DNSServer, Forwarder, Zone], Awaitable[Any]],
        extra_upstreams: tuple[tuple[str, int], ...] = (), **fw: Any) -> None:
    async def go() -> None:
        up = await FakeUpstream().start()
        zone = Zone("cluster.local")
        f = Forwarder([*extra_upstreams, ("127.0.0.1", up.port)], **fw)
        srv = DNSServer(Resolver(zone, f))
        await srv.start("127.0.0.1", 0)
        try:
            await body(up, srv, f, zone)
        finally:
            await srv.close()
            f.close()
            up.close()
    asyncio.run(go())


def q(name: str, qtype: int = wire.A, mid: int = 1, edns: Edns | None = None) -> bytes:
    return wire.make_query(name, qtype, mid, edns=edns)


def test_forwarding_and_positive_cache() -> None:
    async def body(up: FakeUpstream, srv: DNSServer, f: Forwarder, zone: Zone) -> None:
        up.records[("www.example.com", wire.A)] = [RR("www.example.com", wire.A, 300, "192.0.2.7")]
        m = wire.parse(await udp_query(srv.port, q("WWW.example.com", mid=11)))
        assert m.id == 11 and m.rcode == wire.NOERROR and not m.flags & wire.AA
        assert [(rr.name, rr.data) for rr in m.answer] == [("WWW.example.com", "192.0.2.7")]
        assert m.answer[0].ttl == 30  # capped by the cache's max TTL
        assert m.edns is None  # the client sent none
        # again, concurrently: served from the cache, not asked upstream again
        rs = await asyncio.gather(*(udp_query(srv.port, q("www.example.com", mid=20 + i)) for i in range(5)))
        assert [wire.parse(r).id for r in rs] == [20, 21, 22, 23, 24]
        assert up.log == [("udp", "www.example.com", wire.A)]
        # the TTL counts down while cached
        f.cache[("www.example.com", wire.A, 1, False)].stored -= 7
        m = wire.parse(await udp_query(srv.port, q("www.example.com", mid=3)))
        assert m.answer[0].ttl == 23
        # with EDNS from the client, the reply has our OPT record
        m = wire.parse(await udp_query(srv.port, q("www.example.com", edns=Edns(4096))))
        assert m.edns is not None and m.answer[0].data == "192.0.2.7"
        # over TCP too, several queries on one connection
        rs = await tcp_query(srv.port, q("www.example.com", mid=5), q("www.example.com", wire.AAAA, mid=6))
        assert wire.parse(rs[0]).answer[0].data == "192.0.2.7"
        assert wire.parse(rs[1]).rcode == wire.NOERROR and wire.parse(rs[1]).id == 6
        # expired entries are asked again
        for e in f.cache.values():
            e.expires = 0
        await udp_query(srv.port, q("www.example.com"))
        assert up.log.count(("udp", "www.example.com", wire.A)) == 2
    run(body)


def test_negative_cache_uses_soa_minimum() -> None:
    async def body(up: FakeUpstream, srv: DNSServer, f: Forwarder, zone: Zone) -> None:
        m = wire.parse(await udp_query(srv.port, q("nope.example.com")))
        assert m.rcode == wire.NXDOMAIN and m.authority[0].rtype == wire.SOA
        e = f.cache[("nope.example.com", wire.A, 1, False)]
        assert round(e.expires - e.stored) == 7  # min(SOA TTL 60, minimum 7)
        m = wire.parse(await udp_query(srv.port, q("nope.example.com", mid=2)))
        assert m.rcode == wire.NXDOMAIN and m.id == 2
        assert len(up.log) == 1
    run(body)


def test_truncated_upstream_answer_is_retried_over_tcp() -> None:
    async def body(up: FakeUpstream, srv: DNSServer, f: Forwarder, zone: Zone) -> None:
        up.records[("big.example.com", wire.A)] = [RR("big.example.com", wire.A, 60, f"192.0.2.{i}")
                                                   for i in range(1, 60)]
        up.truncate_udp.add("big.example.com")
        m = wire.parse(await udp_query(srv.port, q("big.example.com", edns=Edns(4096))))
        assert len(m.answer) == 59 and not m.flags & wire.TC
        assert [t for t, *_ in up.log] == ["udp", "tcp"]
        # a client without EDNS gets what fits in 512 bytes, with TC
        m = wire.parse(await udp_query(srv.port, q("big.example.com")))
        assert m.flags & wire.TC and 0 < len(m.answer) < 59
        m = wire.parse((await tcp_query(srv.port, q("big.example.com")))[0])
        assert len(m.answer) == 59
    run(body)


def test_failover_and_servfail() -> None:
    async def body(up: FakeUpstream, srv: DNSServer, f: Forwarder, zone: Zone) -> None:
        up.records[("a.example.com", wire.A)] = [RR("a.example.com", wire.A, 60, "192.0.2.1")]
        m = wire.parse(await udp_query(srv.port, q("a.example.com")))  # the first upstream is dead
        assert m.answer[0].data == "192.0.2.1"
        up.silent = True
        m = wire.parse(await udp_query(srv.port, q("b.example.com"), timeout=5))
        assert m.rcode == wire.SERVFAIL
        assert ("b.example.com", wire.A, 1, False) not in f.cache
    run(body, extra_upstreams=(("127.0.0.1", dead_port()),), timeout=0.5)


def test_external_name_target_resolved_upstream() -> None:
    async def body(up: FakeUpstream, srv: DNSServer, f: Forwarder, zone: Zone) -> None:
        up.records[("db.example.com", wire.A)] = [RR("db.example.com", wire.A, 60, "192.0.2.9")]
        s = {"metadata": {"name": "ext", "namespace": "default"},
             "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
        zone.set_owner("svc/default/ext", service_records(s, [], zone.domain, 5))
        m = wire.parse(await udp_query(srv.port, q("ext.default.svc.cluster.local")))
        assert [(rr.rtype, rr.data) for rr in m.answer] == [(wire.CNAME, "db.example.com"), (wire.A, "192.0.2.9")]
        assert m.flags & wire.AA
        # cluster names never go upstream
        m = wire.parse(await udp_query(srv.port, q("nothing.default.svc.cluster.local")))
        assert m.rcode == wire.NXDOMAIN
        assert up.log == [("udp", "db.example.com", wire.A)]
    run(body)


def test_host_upstreams(tmp_path) -> None:
    rc = tmp_path / "resolv.conf"
    rc.write_text("# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n"
                  "nameserver bogus\noptions ndots:2\n")
    assert host_upstreams(str(rc), str(tmp_path / "none")) == [("192.0.2.53", 53), ("fe80::1", 53)]
    stub = tmp_path / "stub.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    real = tmp_path / "real.conf"
    real.write_text("nameserver 198.51.100.1\n")
    assert host_upstreams(str(stub), str(real)) == [("198.51.100.1", 53)]
    assert host_upstreams(str(stub), str(tmp_path / "none")) == [("127.0.0.53", 53)]
    assert parse_upstream("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert parse_upstream("[::1]:54") == ("::1", 54)
    assert parse_upstream("::1") == ("::1", 53)
