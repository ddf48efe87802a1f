"""The cluster zone: what CoreDNS's kubernetes plugin answers, computed from
Services, EndpointSlices, Namespaces (and Pods, in ``pods verified`` mode).

Records follow kubernetes/dns docs/specification.md as CoreDNS implements
it:

- ``<svc>.<ns>.svc.<zone>`` A/AAAA: the ClusterIPs; for a headless Service
  the ready endpoints' addresses, and NXDOMAIN when none is ready (what
  kube-dns and CoreDNS do; the spec was changed to match).
- ``<host>.<svc>.<ns>.svc.<zone>`` for each ready endpoint of a headless
  Service, ``<host>`` being the endpoint's hostname (StatefulSet pods,
  pods with hostname+subdomain) or its address with dashes.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for named ports: the
  Service name as target, or each endpoint's name for headless Services,
  with their addresses as additional records; weight 100 split evenly.
- ExternalName: a CNAME to ``spec.externalName`` for every query type.
- PTR for ClusterIPs and headless endpoint addresses.
- ``<a-b-c-d>.<ns>.pod.<zone>`` (``pods insecure``, k3s' default).
- ``dns-version.<zone>`` TXT "1.1.0".
- Names that exist with no record of the asked type: NOERROR with the SOA
  (NODATA); names that do not exist: NXDOMAIN with the SOA, whose minimum
  (the TTL, 5 s) is the negative caching time.

Speed comes from doing the work on watch events, not on queries: every
(name, type) with records is compiled into a response *template*, the
wire bytes after the question, so answering is a dictionary lookup keyed
by the query's own (lowered) question bytes plus a join.  Each Service is
one *owner* of a set of record sets; an event recomputes that owner and
recompiles only the keys it touched."""

from __future__ import annotations

import ipaddress
import itertools
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..netutil import is_ip
from . import wire
from .wire import AAAA, CNAME, NS, PTR, RR, SOA, SRV, TXT, A, Message, Question

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, int]  # (lowercase name, type)

DNS_SCHEMA_VERSION = b"1.1.0"


def key_bytes(name: str, qtype: int) -> bytes:
    """The table key: the name's uncompressed wire form, lowered, then the
    type: exactly the first bytes of a query's question, lowered."""
    return wire.name_to_wire(name.lower()) + struct.pack(">H", qtype)


@dataclass
class Template:
    """A precompiled positive answer.  The response is ``id + flags[rd] +
    counts + <the query's question> + tail`` (+ an OPT record); every name
    in ``tail`` that repeats the question points at offset 12, which the
    query's own question occupies with the same length."""

    flags: tuple[bytes, bytes]      # indexed by the query's RD bit
    counts: bytes                   # QD, AN, NS, AR without OPT
    counts_edns: bytes              # ... with one more additional record
    tail: bytes
    answer_ends: list[int]          # end of each answer record, relative to the tail
    qlen: int                       # length of the question section

    def truncated(self, mid: bytes, rd: int, question: bytes, limit: int, opt: bytes) -> bytes:
        """The largest prefix of the answer section that fits in ``limit``,
        with TC set and no authority/additional data (RFC 2181 9)."""
        room = limit - 12 - self.qlen - len(opt)
        k = 0
        for end in self.answer_ends:
            if end > room:
                break
            k += 1
        body = self.tail[:self.answer_ends[k - 1]] if k else b""
        flags = bytes((self.flags[rd][0] | 0x02, self.flags[rd][1]))
        return b"".join((mid, flags, struct.pack(">HHHH", 1, k, 0, 1 if opt else 0), question, body, opt))


def compile_template(name: str, qtype: int, answers: list[RR], additional: list[RR]) -> Template:
    msg = Message(0, wire.QR | wire.AA | wire.RA, [Question(name.lower(), qtype)], answers, [], additional)
    built = wire.build(msg)
    qlen = len(wire.name_to_wire(name)) + 4
    start = 12 + qlen
    flags0 = struct.pack(">H", msg.flags)
    flags1 = struct.pack(">H", msg.flags | wire.RD)
    an, ar = len(answers), len(additional)
    return Template((flags0, flags1), struct.pack(">HHHH", 1, an, 0, ar), struct.pack(">HHHH", 1, an, 0, ar + 1),
                    built.wire[start:], [e - start for e in built.ends[0]], qlen)


@dataclass
class RRSet:
    answers: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)


@dataclass
class Contribution:
    """What one owner (a Service, a Namespace) puts into the zone."""

    rrsets: dict[Key, RRSet] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)        # names that exist (NODATA rather than NXDOMAIN)
    cnames: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, rr: RR, additional: list[RR] | None = None) -> None:
        s = self.rrsets.setdefault((name.lower(), rr.rtype), RRSet())
        if rr not in s.answers:
            s.answers.append(rr)
        for a in additional or ():
            if a not in s.additional:
                s.additional.append(a)
        self.names.add(name.lower())

    def empty(self) -> bool:
        return not (self.rrsets or self.names or self.cnames)


def _addr_rr(name: str, ip: str, ttl: int) -> RR:
    return RR(name, AAAA if ":" in ip else A, ttl, ip)


def _ready(ep: Obj) -> bool:
    # EndpointConditions.ready: nil means ready (discovery/v1); the slice
    # controller already sets it for publishNotReadyAddresses Services
    return (ep.get("conditions") or {}).get("ready") is not False


def service_records(svc: Obj, slices: list[Obj], domain: str, ttl: int) -> Contribution:
    """Every record one Service gives (see the module docstring)."""
    md = svc["metadata"]
    spec = svc.get("spec") or {}
    base = f"{md['name']}.{md['namespace']}.svc.{domain}"
    c = Contribution()
    ports = spec.get("ports") or []
    if spec.get("type") == "ExternalName":
        target = (spec.get("externalName") or "").rstrip(".")
        if target:
            c.cnames[base.lower()] = target
            c.names.add(base.lower())
            named = [p for p in ports if p.get("name")]
            for p in named:  # CoreDNS answers SRV for an ExternalName's named ports with it as target
                c.add(f"_{p['name']}._{p.get('protocol', 'TCP').lower()}.{base}",
                      RR(f"_{p['name']}._{p.get('protocol', 'TCP').lower()}.{base}", SRV, ttl,
                         (0, 100, int(p.get("port") or 0), target)))
        return c
    cips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP") or ""]) if ip]
    if cips and cips[0] != "None":
        addrs = [_addr_rr(base, ip, ttl) for ip in cips if is_ip(ip)]
        for rr in addrs:
            c.add(base, rr)
            c.add(wire.reverse_name(rr.data), RR(wire.reverse_name(rr.data), PTR, ttl, base))
        all_srv: list[RR] = []
        for p in ports:
            srv = (0, 100, int(p.get("port") or 0), base)
            all_srv.append(RR(base, SRV, ttl, srv))
            if p.get("name"):
                n = f"_{p['name']}._{p.get('protocol', 'TCP').lower()}.{base}"
                c.add(n, RR(n, SRV, ttl, srv), addrs)
        if all_srv:
            w = 100 // len(all_srv)
            for rr in all_srv:
                c.add(base, RR(base, SRV, ttl, (0, w, rr.data[2], base)), addrs)
        return c
    if not cips:
        return c  # being created, no ClusterIP allocated yet
    # headless: the ready endpoints, by their own names
    targets: dict[str, list[RR]] = {}   # endpoint name -> its address records
    srv_targets: dict[tuple[str, str, int], list[str]] = {}  # (port name, proto, port) -> endpoint names
    for sl in sorted(slices, key=lambda s: s["metadata"]["name"]):
        if sl.get("addressType") not in ("IPv4", "IPv6"):
            continue
        eps = [ep for ep in sl.get("endpoints") or [] if _ready(ep)]
        names_here = []
        for ep in eps:
            for ip in ep.get("addresses") or []:
                if not is_ip(ip):
                    continue
                host = ep.get("hostname") or wire.dashed_ip(ip)
                en = f"{host}.{base}"
                rr = _addr_rr(en, ip, ttl)
                lst = targets.setdefault(en.lower(), [])
                if rr not in lst:
                    lst.append(rr)
                c.add(base, _addr_rr(base, ip, ttl))
                c.add(en, rr)
                c.add(wire.reverse_name(ip), RR(wire.reverse_name(ip), PTR, ttl, en))
                if en not in names_here:
                    names_here.append(en)
        for p in sl.get("ports") or []:
            k = (p.get("name") or "", (p.get("protocol") or "TCP").lower(), int(p.get("port") or 0))
            lst2 = srv_targets.setdefault(k, [])
            lst2.extend(n for n in names_here if n not in lst2)
    all_srv2: list[tuple[int, str]] = []
    for (pname, proto, port), ens in srv_targets.items():
        for en in ens:
            all_srv2.append((port, en))
        if not pname or not ens:
            continue
        n = f"_{pname}._{proto}.{base}"
        w = 100 // len(ens)
        for en in ens:
            c.add(n, RR(n, SRV, ttl, (0, w, port, en)), targets.get(en.lower(), []))
    if all_srv2:
        w = 100 // len(all_srv2)
        for port, en in all_srv2:
            c.add(base, RR(base, SRV, ttl, (0, w, port, en)), targets.get(en.lower(), []))
    return c


class Zone:
    """The compiled zone: ``table`` (positive answers by question bytes),
    plus what the slow path needs (existing names, CNAMEs, the SOA)."""

    def __init__(self, domain: str = "cluster.local", ttl: int = 5, pods: str = "insecure"):
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self.pods = pods
        self.table: dict[bytes, list[Template]] = {}
        self.cnames: dict[str, str] = {}
        self.names: dict[str, int] = {}        # existing name -> reference count
        self.ns_ips: list[str] = []            # kube-system/kube-dns' ClusterIPs (glue for ns.dns.<zone>)
        self.pod_ips: set[tuple[str, str]] = set()  # (namespace, ip), for pods verified
        self.serial = int(time.time())
        self.changed: Callable[[], None] | None = None
        self._owners: dict[str, Contribution] = {}
        self._owner_names: dict[str, set[str]] = {}
        self._key_owners: dict[Key, set[str]] = {}
        self._rotation = itertools.count()
        self.version_name = f"dns-version.{self.domain}"
        static = Contribution()
        static.add(self.version_name, RR(self.version_name, TXT, ttl, (DNS_SCHEMA_VERSION,)))
        for n in (f"svc.{self.domain}", f"pod.{self.domain}"):
            static.names.add(n)
        self.set_owner("static", static)

    # ---------------------------------------------------------- updates

    def in_zone(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def _expand(self, names: set[str]) -> set[str]:
        """Names and their parents down to the zone apex (empty
        non-terminals exist too: NODATA, not NXDOMAIN)."""
        out: set[str] = set()
        for n in names:
            while n and n not in out:
                out.add(n)
                if n == self.domain or not self.in_zone(n):
                    break
                n = n.partition(".")[2]
        return out

    def set_owner(self, owner: str, contrib: Contribution | None) -> None:
        old = self._owners.pop(owner, None)
        if contrib is not None and not contrib.empty():
            self._owners[owner] = contrib
        else:
            contrib = None
        touched: set[Key] = set()
        if old is not None:
            for k in old.rrsets:
                self._key_owners[k].discard(owner)
                if not self._key_owners[k]:
                    del self._key_owners[k]
                touched.add(k)
            for n in old.cnames:
                if self.cnames.get(n) == old.cnames[n]:
                    del self.cnames[n]
        for n in self._owner_names.pop(owner, ()):
            r = self.names[n] - 1
            if r:
                self.names[n] = r
            else:
                del self.names[n]
        if contrib is not None:
            for k in contrib.rrsets:
                self._key_owners.setdefault(k, set()).add(owner)
                touched.add(k)
            self.cnames.update(contrib.cnames)
            ns = self._expand(contrib.names | {k[0] for k in contrib.rrsets})
            self._owner_names[owner] = ns
            for n in ns:
                self.names[n] = self.names.get(n, 0) + 1
        for k in touched:
            self._compile(k)
        self.serial = max(self.serial + 1, int(time.time()))
        if self.changed is not None:
            self.changed()

    def _compile(self, k: Key) -> None:
        kb = key_bytes(*k)
        owners = self._key_owners.get(k)
        if not owners:
            self.table.pop(kb, None)
            return
        answers: list[RR] = []
        additional: list[RR] = []
        for o in sorted(owners):
            s = self._owners[o].rrsets[k]
            answers.extend(rr for rr in s.answers if rr not in answers)
            additional.extend(rr for rr in s.additional if rr not in additional)
        try:
            if k[1] in (A, AAAA) and len(answers) > 1:
                # CoreDNS' loadbalance plugin (on in k3s) rotates address
                # records; precompile up to 8 rotations, served in turn
                n = min(len(answers), 8)
                self.table[kb] = [compile_template(k[0], k[1], answers[i:] + answers[:i], additional)
                                  for i in range(n)]
            else:
                self.table[kb] = [compile_template(k[0], k[1], answers, additional)]
        except wire.WireError as e:  # e.g. a label over 63 bytes: not servable
            log.warning("cannot serve %s %s: %s", k[0], wire.TYPE_NAMES.get(k[1], k[1]), e)
            self.table.pop(kb, None)

    def template(self, key: bytes) -> Template | None:
        ts = self.table.get(key)
        if ts is None:
            return None
        return ts[0] if len(ts) == 1 else ts[next(self._rotation) % len(ts)]

    # ---------------------------------------------------------- slow path

    def soa(self) -> RR:
        d = self.domain
        return RR(d, SOA, self.ttl, (f"ns.dns.{d}", f"hostmaster.{d}", self.serial & 0xFFFFFFFF,
                                     7200, 1800, 86400, self.ttl))

    def lookup(self, name: str, qtype: int) -> "Answer":
        """Anything the template table did not answer, for a name in the
        zone (``name`` lowered)."""
        ts = self.table.get(key_bytes(name, qtype))
        if ts is not None:
            return Answer(template=ts[0])
        target = self.cnames.get(name)
        if target is not None:
            ans = Answer(answer=[RR(name, CNAME, self.ttl, target)])
            if qtype != CNAME:
                t = target.lower()
                if self.in_zone(t):
                    inner = self.lookup(t, qtype)
                    if inner.template is not None:
                        ans.answer += self._rrs_of(t, qtype)
                    else:
                        ans.answer += inner.answer
                else:
                    ans.chase = target
            return ans
        d = self.domain
        if name == d:
            if qtype == SOA:
                return Answer(answer=[self.soa()])
            if qtype == NS:
                ns = f"ns.dns.{d}"
                return Answer(answer=[RR(d, NS, self.ttl, ns)],
                              additional=[_addr_rr(ns, ip, self.ttl) for ip in self.ns_ips])
            return Answer(authority=[self.soa()])
        if name == f"ns.dns.{d}":
            rrs = [_addr_rr(name, ip, self.ttl) for ip in self.ns_ips]
            want = [rr for rr in rrs if rr.rtype == qtype]
            if want:
                return Answer(answer=want)
            if rrs:
                return Answer(authority=[self.soa()])
        labels = name[:-len(d) - 1].split(".") if name.endswith("." + d) else []
        if len(labels) == 3 and labels[2] == "pod" and self.pods != "disabled":
            ip = _undash(labels[0])
            if ip is not None and (self.pods == "insecure" or (labels[1], ip) in self.pod_ips):
                rr = _addr_rr(name, ip, self.ttl)
                if rr.rtype == qtype:
                    return Answer(answer=[rr])
                return Answer(authority=[self.soa()])
        if name in self.names:
            return Answer(authority=[self.soa()])
        return Answer(rcode=wire.NXDOMAIN, authority=[self.soa()])

    def _rrs_of(self, name: str, qtype: int) -> list[RR]:
        out: list[RR] = []
        for o in sorted(self._key_owners.get((name, qtype), ())):
            out.extend(self._owners[o].rrsets[(name, qtype)].answers)
        return out


def _undash(label: str) -> str | None:
    """``10-42-0-5`` -> ``10.42.0.5``; IPv6 labels use dashes for colons."""
    for cand in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(cand))
        except ValueError:
            continue
    return None


@dataclass
class Answer:
    """A slow-path answer: either a compiled template, or records (and a
    CNAME target outside the zone still to be resolved upstream)."""

    rcode: int = wire.NOERROR
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    template: Template | None = None
    chase: str | None = None


# ------------------------------------------------------------------ the watch


def _trim_service(o: Obj) -> Obj:
    md = o["metadata"]
    return {"metadata": {"name": md["name"], "namespace": md.get("namespace"),
                         "resourceVersion": md.get("resourceVersion")},
            "spec": {k: v for k, v in (o.get("spec") or {}).items()
                     if k in ("type", "clusterIP", "clusterIPs", "ports", "externalName")}}


def _trim_slice(o: Obj) -> Obj:
    md = o["metadata"]
    return {"metadata": {"name": md["name"], "namespace": md.get("namespace"),
                         "resourceVersion": md.get("resourceVersion"), "labels": md.get("labels") or {}},
            "addressType": o.get("addressType"), "endpoints": [
                {k: v for k, v in ep.items() if k in ("addresses", "conditions", "hostname")}
                for ep in o.get("endpoints") or []],
            "ports": o.get("ports") or []}


def _trim_namespace(o: Obj) -> Obj:
    md = o["metadata"]
    return {"metadata": {"name": md["name"], "resourceVersion": md.get("resourceVersion")}}


def _trim_pod(o: Obj) -> Obj | None:
    md = o["metadata"]
    ips = [p.get("ip") for p in (o.get("status") or {}).get("podIPs") or [] if p.get("ip")]
    return {"metadata": {"name": md["name"], "namespace": md.get("namespace"),
                         "resourceVersion": md.get("resourceVersion")}, "ips": ips}


def _slice_service(o: Obj) -> list[str]:
    svc = ((o.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
    return [f"{o['metadata'].get('namespace')}/{svc}"] if svc else []


class ClusterView:
    """Keeps a :class:`Zone` in step with the API through informers: each
    Service (with its EndpointSlices) and each Namespace is an owner."""

    def __init__(self, client: Any, zone: Zone, on_kube_dns: Callable[[], None] | None = None):
        from ..client.informer import Informer
        from ..client.rest import resource
        self.zone = zone
        self.on_kube_dns = on_kube_dns
        self.services = Informer(client, resource("services"), transform=_trim_service)
        self.slices = Informer(client, resource("endpointslices.discovery.k8s.io"), transform=_trim_slice,
                               indexers={"service": _slice_service})
        self.namespaces = Informer(client, resource("namespaces"), transform=_trim_namespace)
        self.informers = [self.services, self.slices, self.namespaces]
        self.pods: Informer | None = None
        if zone.pods == "verified":
            self.pods = Informer(client, resource("pods"), transform=_trim_pod)
            self.informers.append(self.pods)
            self.pods.add_handler(lambda o: self._pod(None, o), lambda a, b: self._pod(a, b),
                                  lambda o: self._pod(o, None))
        self.services.add_handler(lambda o: self._service(_key(o)), lambda a, b: self._service(_key(b)),
                                  lambda o: self._service(_key(o)))
        self.slices.add_handler(lambda o: self._slice(o), lambda a, b: self._slice(a, b),
                                lambda o: self._slice(o))
        self.namespaces.add_handler(lambda o: self._namespace(o, True), None,
                                    lambda o: self._namespace(o, False))

    def start(self) -> None:
        for i in self.informers:
            i.start()

    async def stop(self) -> None:
        for i in self.informers:
            await i.stop()

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def _service(self, key: str) -> None:
        svc = self.services.store.get(key)
        contrib = None
        if svc is not None:
            slices = self.slices.store.by_index("service", key)
            contrib = service_records(svc, slices, self.zone.domain, self.zone.ttl)
        self.zone.set_owner("svc/" + key, contrib)
        if key == "kube-system/kube-dns":
            spec = (svc or {}).get("spec") or {}
            self.zone.ns_ips = [ip for ip in spec.get("clusterIPs") or [] if is_ip(ip)]
            if self.on_kube_dns is not None:
                self.on_kube_dns()

    def _slice(self, *objs: Obj) -> None:
        for k in {k for o in objs for k in _slice_service(o)}:
            self._service(k)
            if k == "kube-system/kube-dns" and self.on_kube_dns is not None:
                self.on_kube_dns()

    def _namespace(self, o: Obj, present: bool) -> None:
        ns = o["metadata"]["name"]
        c = None
        if present:
            c = Contribution()
            c.names.update({f"{ns}.svc.{self.zone.domain}", f"{ns}.pod.{self.zone.domain}"})
        self.zone.set_owner("ns/" + ns, c)

    def _pod(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None:
            for ip in old.get("ips") or ():
                self.zone.pod_ips.discard((old["metadata"]["namespace"], ip))
        if new is not None:
            for ip in new.get("ips") or ():
                self.zone.pod_ips.add((new["metadata"]["namespace"], ip))


def _key(o: Obj) -> str:
    return f"{o['metadata'].get('namespace')}/{o['metadata']['name']}"
