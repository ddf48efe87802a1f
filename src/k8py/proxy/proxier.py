"""Services and EndpointSlices to one nftables table, as kube-proxy's
nftables proxier (pkg/proxy/nftables) lays it out.

The table (family ``ip``, name ``--nft-table``)::

    filter-prerouting/-input/-forward/-output   base chains at dstnat-10 (-110): pre-DNAT addresses
    filter-output-post-dnat                     base chain at dstnat+10 (-90)
    nat-prerouting, nat-output  -> services     dispatch through two verdict maps:
        service-ips        ip . proto . port -> goto service-/local-/external-<HASH>-ns/name/proto/port
        service-nodeports  proto . port      -> goto external-... (destination in @nodeport-ips)
    nat-postrouting -> masquerading              masquerade what carries the mark 0x4000
    mark-for-masquerade                          sets that mark
    service-<H>-ns/svc/proto/port                affinity lookups, then numgen random mod N vmap
                                                 { i : goto endpoint-... }: equal spreading
    local-<H>-...                                the same over this node's endpoints only
    external-<H>-...                             NodePort/LB/external IP traffic: masquerade (Cluster
                                                 policy) or keep the source (Local policy)
    endpoint-<H>-ns/svc/proto/port__ip/port      hairpin mark, affinity update, dnat
    affinity-<H>-...                             dynamic set of client addresses, with timeout
    endpoints-check + no-endpoint-services/-nodeports maps: reject (no endpoints; TCP by a
                                                 reset) or drop (no local endpoint, Local policy)
    firewall-check + firewall-ips map            loadBalancerSourceRanges
    cluster-ips-check + cluster-ips set          reject unknown ports of ClusterIPs, drop
                                                 unallocated addresses of the service CIDR

Every sync is ONE ``nft -f`` transaction: chains and maps are added then
flushed and refilled, so the kernel switches from the old ruleset to the new
one atomically.  The affinity sets are added but never flushed (their
dynamic contents are the clients' affinity and must survive resyncs).
Chains no longer used are flushed and deleted in the same transaction (kube
waits a second before deleting them, for kernels older than 6.2 that kept a
chain busy after its last map element went; :attr:`Ruleset.stale` lets the
caller defer deletion the same way).  The first sync after start, or after
a failed one, recreates the table from nothing: ``add table`` then ``delete
table`` then the whole ruleset, still one transaction.

``build_ruleset`` is pure (objects in, text out) so the rules are unit
tested as text; :class:`Proxier` holds the informers' stores and applies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # kube's DefaultClientIPServiceAffinitySeconds

# chain/map/set names (kube's, for the same meaning)
SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
ENDPOINTS_CHECK = "endpoints-check"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
FIREWALL_IPS = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
CLUSTER_IPS = "cluster-ips"
CLUSTER_IPS_CHECK = "cluster-ips-check"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

# (name, type, hook, priority): numbers, since nft before 1.0.7 takes the names "dstnat" and
# "srcnat" only on their own hooks (dstnat = -100, srcnat = 100)
BASE_CHAINS = (
    ("filter-prerouting", "filter", "prerouting", "-110"),
    ("filter-input", "filter", "input", "-110"),
    ("filter-forward", "filter", "forward", "-110"),
    ("filter-output", "filter", "output", "-110"),
    ("filter-output-post-dnat", "filter", "output", "-90"),
    ("nat-prerouting", "nat", "prerouting", "-100"),
    ("nat-output", "nat", "output", "-100"),
    ("nat-postrouting", "nat", "postrouting", "100"),
)

# (destination, source, extra match): regular chains jumped to from base chains
JUMP_CHAINS = (
    # reject is only valid in input/forward/output, hence not from filter-prerouting
    (ENDPOINTS_CHECK, "filter-input", "ct state new"),
    (ENDPOINTS_CHECK, "filter-forward", "ct state new"),
    (ENDPOINTS_CHECK, "filter-output", "ct state new"),
    (FIREWALL_CHECK, "filter-prerouting", "ct state new"),
    (FIREWALL_CHECK, "filter-output", "ct state new"),
    (SERVICES, "nat-output", ""),
    (SERVICES, "nat-prerouting", ""),
    (MASQUERADING, "nat-postrouting", ""),
)
# after DNAT: a packet still addressed to a ClusterIP matched no service port
CLUSTER_IPS_JUMPS = ((CLUSTER_IPS_CHECK, "filter-forward", "ct state new"),
                     (CLUSTER_IPS_CHECK, "filter-output-post-dnat", "ct state new"))


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str  # the ServicePort's name ("" for a single unnamed port)
    protocol: str  # TCP, UDP, SCTP

    def __str__(self) -> str:  # kube's ServicePortName.String()
        return f"{self.namespace}/{self.name}:{self.port}"


@dataclass
class ServicePortInfo:
    """One port of one Service, as the proxy needs it (kube's BaseServicePortInfo)."""

    name: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    lb_vips: list[str] = field(default_factory=list)
    lb_source_ranges: list[str] = field(default_factory=list)
    affinity_timeout: int = 0  # >0: sessionAffinity ClientIP with this many seconds
    external_policy_local: bool = False
    internal_policy_local: bool = False

    @property
    def proto(self) -> str:
        return self.name.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_vips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # even with externalTrafficPolicy Local, the short-circuit of pod and host traffic needs them
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.externally_accessible and self.external_policy_local)


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    local: bool = False

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def _is_ipv4(s: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(s), ipaddress.IPv4Address)
    except ValueError:
        return False


def service_ports(svc: Obj) -> list[ServicePortInfo]:
    """The proxied ports of a Service; none for headless and ExternalName
    Services, for ones another proxy claims (``service-proxy-name``), and for
    non-IPv4 ClusterIPs (this proxier is IPv4 only)."""
    md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    if SERVICE_PROXY_NAME_LABEL in (md.get("labels") or {}):
        return []
    typ = spec.get("type") or "ClusterIP"
    cip = spec.get("clusterIP") or ""
    if typ == "ExternalName" or not _is_ipv4(cip):
        return []
    external = typ in ("NodePort", "LoadBalancer")
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = int(((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
                       or DEFAULT_AFFINITY_TIMEOUT)
    vips: list[str] = []
    if typ == "LoadBalancer":
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ():
            if _is_ipv4(ing.get("ip") or "") and ing.get("ipMode") != "Proxy":
                vips.append(ing["ip"])
    out = []
    for p in spec.get("ports") or ():
        out.append(ServicePortInfo(
            name=ServicePortName(md.get("namespace") or "default", md["name"], p.get("name") or "",
                                 p.get("protocol") or "TCP"),
            cluster_ip=cip, port=int(p["port"]), node_port=int(p.get("nodePort") or 0) if external else 0,
            external_ips=[ip for ip in spec.get("externalIPs") or () if _is_ipv4(ip)],
            lb_vips=list(vips),
            lb_source_ranges=list(spec.get("loadBalancerSourceRanges") or ()) if vips else [],
            affinity_timeout=affinity,
            external_policy_local=external and spec.get("externalTrafficPolicy") == "Local",
            internal_policy_local=spec.get("internalTrafficPolicy") == "Local"))
    return out


def endpoints_by_port(slices: Iterable[Obj], hostname: str) -> dict[ServicePortName, list[Endpoint]]:
    """Merge a Service's EndpointSlices per service port, as kube's
    EndpointSliceCache does: the first address of each endpoint, conditions
    with kube's defaults (ready and serving when unset, terminating when
    set), one entry per ip:port (a ready copy wins), sorted."""
    merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        md = sl.get("metadata") or {}
        svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            continue
        for p in sl.get("ports") or ():
            if p.get("port") is None:
                continue
            spn = ServicePortName(md.get("namespace") or "default", svc, p.get("name") or "",
                                  p.get("protocol") or "TCP")
            eps = merged.setdefault(spn, {})
            for ep in sl.get("endpoints") or ():
                addrs = ep.get("addresses") or ()
                if not addrs or not _is_ipv4(addrs[0]):
                    continue
                c = ep.get("conditions") or {}
                ready = c.get("ready") is not False
                e = Endpoint(ip=addrs[0], port=int(p["port"]), ready=ready,
                             serving=c["serving"] if c.get("serving") is not None else ready,
                             terminating=bool(c.get("terminating")),
                             local=bool(hostname) and ep.get("nodeName") == hostname)
                k = (e.ip, e.port)
                if k not in eps or (e.ready and not eps[k].ready):
                    eps[k] = e
    return {spn: sorted(eps.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port))
            for spn, eps in merged.items()}


def categorize(eps: list[Endpoint], svc: ServicePortInfo
               ) -> tuple[list[Endpoint], list[Endpoint], list[Endpoint], bool]:
    """kube's CategorizeEndpoints (without topology hints): the endpoints for
    Cluster policy, for Local policy, all that this node may reach, and
    whether the Service has usable endpoints anywhere.  Ready ones are used;
    when none is, serving-and-terminating ones are, so that a Service whose
    pods are all shutting down still drains gracefully."""
    cluster: list[Endpoint] = []
    local: list[Endpoint] = []
    if svc.uses_cluster_endpoints:
        cluster = [e for e in eps if e.ready] or [e for e in eps if e.serving and e.terminating]
        if not svc.uses_local_endpoints:
            return cluster, [], cluster, bool(cluster)
    has_any = any(e.ready or (e.serving and e.terminating) for e in eps)
    local = [e for e in eps if e.local and e.ready] or [e for e in eps if e.local and e.serving and e.terminating]
    if not svc.uses_cluster_endpoints:
        return [], local, local, has_any
    seen = {(e.ip, e.port) for e in cluster}
    return cluster, local, cluster + [e for e in local if (e.ip, e.port) not in seen], has_any


def _hash_and_truncate(name: str) -> str:
    h = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]
    name = f"{h}-{name}"
    return name if len(name) <= 240 else name[:237] + "..."


def chain_base(spn: ServicePortName) -> str:
    """``HASH-namespace/name/proto/port``: readable, unique, and (by its
    slash) never one of the fixed chain names."""
    return _hash_and_truncate(f"{spn.namespace}/{spn.name}/{spn.protocol.lower()}/{spn.port}")


def endpoint_chain_base(spn: ServicePortName, ep: Endpoint) -> str:
    return _hash_and_truncate(f"{spn.namespace}/{spn.name}/{spn.protocol.lower()}/{spn.port}__{ep.ip}/{ep.port}")


@dataclass
class RulesConfig:
    table: str = "k8py-proxy"
    hostname: str = ""
    cluster_cidr: str = ""  # pod addresses: what is "local" traffic; "" = unknown (no cluster-CIDR masquerade)
    service_cidr: str = ""  # unallocated ClusterIPs are dropped when set
    masquerade_all: bool = False
    masquerade_bit: int = 14
    nodeport_match_all: bool = False  # --nodeport-addresses 0.0.0.0/0: every local non-loopback address

    @property
    def mark(self) -> str:
        return f"{1 << self.masquerade_bit:#06x}"


@dataclass
class SyncState:
    """What the table holds after a successful sync (to know what to delete next time)."""
    chains: set[str] = field(default_factory=set)  # service/endpoint chains
    affinity: dict[str, int] = field(default_factory=dict)  # affinity set -> timeout


@dataclass
class Ruleset:
    text: str
    state: SyncState
    stale: list[str]  # chains deleted by this transaction


class _Tx:
    def __init__(self, table: str):
        self.t = f"ip {table}"
        self.lines: list[str] = []
        self.chains: set[str] = set()

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def chain(self, name: str, spec: str = "") -> None:
        """Add (if absent) and flush: the chain then holds only what this transaction puts in it."""
        if name in self.chains:
            return
        self.chains.add(name)
        self(f"add chain {self.t} {name}" + (f" {{ {spec} ; }}" if spec else ""))
        self(f"flush chain {self.t} {name}")

    def rule(self, chain: str, rule: str) -> None:
        self(f"add rule {self.t} {chain} {rule}")

    def element(self, m: str, elem: str) -> None:
        self(f"add element {self.t} {m} {{ {elem} }}")


def build_ruleset(cfg: RulesConfig, services: Iterable[Obj], slices: Iterable[Obj], nodeport_ips: Iterable[str],
                  prev: SyncState | None) -> Ruleset:
    """The whole transaction for one sync.  ``prev`` is the state after the
    last successful sync, or None to recreate the table from nothing."""
    tx = _Tx(cfg.table)
    t = tx.t
    if prev is None:
        tx(f"add table {t}")
        tx(f"delete table {t}")
        prev = SyncState()
    tx(f'add table {t} {{ comment "rules for k8py proxy (kube-proxy nftables layout)" ; }}')
    for name, typ, hook, prio in BASE_CHAINS:
        tx.chain(name, f"type {typ} hook {hook} priority {prio}")
    for dst, src, extra in JUMP_CHAINS:
        tx.chain(dst)
        tx.rule(src, f"{extra} jump {dst}".strip())
    for name in (SERVICES, MASQUERADING, MARK_MASQ):
        tx.chain(name)
    mark = cfg.mark
    tx.rule(MARK_MASQ, f"mark set mark or {mark}")
    tx.rule(MASQUERADING, f"mark and {mark} == 0 return")
    tx.rule(MASQUERADING, f"mark set mark xor {mark}")
    tx.rule(MASQUERADING, "masquerade fully-random")

    # NodePort addresses: a set of this node's addresses, or every local one
    tx(f'add set {t} {NODEPORT_IPS} {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}')
    if cfg.nodeport_match_all:
        tx(f"delete set {t} {NODEPORT_IPS}")
        nodeport_match = "fib daddr type local ip daddr != 127.0.0.0/8"
    else:
        tx(f"flush set {t} {NODEPORT_IPS}")
        ips = []
        for ip in nodeport_ips:
            if ipaddress.ip_address(ip).is_loopback:
                log.debug("localhost NodePorts are not supported (as in kube-proxy's nftables mode): %s", ip)
                continue
            if _is_ipv4(ip):
                ips.append(ip)
        if ips:
            tx.element(NODEPORT_IPS, ", ".join(sorted(set(ips), key=ipaddress.ip_address)))
        nodeport_match = f"ip daddr @{NODEPORT_IPS}"

    # no endpoints: reject (or drop, for a Local policy without local endpoints)
    for m, key in ((NO_ENDPOINT_SERVICES, "ipv4_addr . inet_proto . inet_service"),
                   (NO_ENDPOINT_NODEPORTS, "inet_proto . inet_service"),
                   (FIREWALL_IPS, "ipv4_addr . inet_proto . inet_service"),
                   (SERVICE_IPS, "ipv4_addr . inet_proto . inet_service"),
                   (SERVICE_NODEPORTS, "inet_proto . inet_service")):
        tx(f"add map {t} {m} {{ type {key} : verdict ; }}")
        tx(f"flush map {t} {m}")
    tx.chain(REJECT_CHAIN)
    # TCP gets a reset rather than kube-proxy's ICMP port-unreachable: the service CIDR is routed
    # back out the pod bridge, so the kernel first sends the pod an ICMP redirect, and that resets
    # the per-destination ICMP rate limit, which then swallows the port-unreachable (a client would
    # hang until its timeout instead of being refused). Other protocols still get the ICMP.
    tx.rule(REJECT_CHAIN, "meta l4proto tcp reject with tcp reset")
    tx.rule(REJECT_CHAIN, "reject")
    tx.rule(ENDPOINTS_CHECK, f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}")
    tx.rule(ENDPOINTS_CHECK, f"{nodeport_match} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")
    tx.rule(FIREWALL_CHECK, f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}")
    # ClusterIPs on ports no Service has (seen after DNAT: anything still addressed there)
    tx(f'add set {t} {CLUSTER_IPS} {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}')
    tx(f"flush set {t} {CLUSTER_IPS}")
    tx.chain(CLUSTER_IPS_CHECK)
    for dst, src, extra in CLUSTER_IPS_JUMPS:
        tx.rule(src, f"{extra} jump {dst}")
    tx.rule(CLUSTER_IPS_CHECK,
            f'ip daddr @{CLUSTER_IPS} goto {REJECT_CHAIN} comment "Reject traffic to invalid ports of ClusterIPs"')
    if cfg.service_cidr:
        tx.rule(CLUSTER_IPS_CHECK, f'ip daddr {cfg.service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"')
    tx.rule(SERVICES, f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}")
    tx.rule(SERVICES, f"{nodeport_match} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")

    body = _Tx(cfg.table)  # service chains, rules and elements, after every fixed object exists
    body.chains = tx.chains
    active: set[str] = set()
    affinity: dict[str, int] = {}
    cluster_ips: set[str] = set()
    eps_by_port = endpoints_by_port(slices, cfg.hostname)
    ports = sorted((p for s in services for p in service_ports(s)), key=lambda p: p.name)
    for svc in ports:
        _service_rules(cfg, body, svc, eps_by_port.get(svc.name, []), active, affinity)
        cluster_ips.add(svc.cluster_ip)
    if cluster_ips:
        tx.element(CLUSTER_IPS, ", ".join(sorted(cluster_ips, key=ipaddress.ip_address)))
    # affinity sets: created before the rules that use them; one whose timeout changed is replaced
    for name, timeout in sorted(affinity.items()):
        old = prev.affinity.get(name)
        if old is not None and old != timeout:
            tx(f"delete set {t} {name}")
        tx(f"add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}")
    tx.lines.extend(body.lines)
    stale = sorted(prev.chains - active)
    for c in stale:
        tx(f"flush chain {t} {c}")
    for c in stale:
        tx(f"delete chain {t} {c}")
    for name in sorted(set(prev.affinity) - set(affinity)):
        tx(f"delete set {t} {name}")
    return Ruleset(text="\n".join(tx.lines) + "\n", state=SyncState(active, affinity), stale=stale)


def _service_rules(cfg: RulesConfig, tx: _Tx, svc: ServicePortInfo, eps: list[Endpoint],
                   active: set[str], affinity: dict[str, int]) -> None:
    """One service port's chains, rules and map elements (kube's syncProxyRules loop body)."""
    base = chain_base(svc.name)
    proto, port = svc.proto, svc.port
    cluster_eps, local_eps, reachable, has_endpoints = categorize(eps, svc)

    def chain(name: str) -> None:
        active.add(name)
        tx.chain(name)

    ep_chain = {(e.ip, e.port): "endpoint-" + endpoint_chain_base(svc.name, e) for e in reachable}
    aff_set = {(e.ip, e.port): "affinity-" + endpoint_chain_base(svc.name, e) for e in reachable}
    for e in reachable:
        chain(ep_chain[(e.ip, e.port)])

    cluster_chain, local_chain = "service-" + base, "local-" + base
    external_chain = "external-" + base
    uses_cluster = bool(cluster_eps) and svc.uses_cluster_endpoints
    uses_local = bool(local_eps) and svc.uses_local_endpoints
    if uses_cluster:
        chain(cluster_chain)
    if uses_local:
        chain(local_chain)
    internal_chain, has_internal = cluster_chain, has_endpoints
    if svc.internal_policy_local:
        internal_chain, has_internal = local_chain, bool(local_eps)
    external_policy_chain, has_external = cluster_chain, has_endpoints
    if svc.external_policy_local:
        external_policy_chain, has_external = local_chain, bool(local_eps)
    uses_external = has_endpoints and svc.externally_accessible
    if uses_external:
        chain(external_chain)

    if not has_endpoints:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        internal_verdict = "" if has_internal else "drop"
        external_verdict = "" if has_external else "drop"

    key = f"{svc.cluster_ip} . {proto} . {port}"
    if has_internal:
        tx.element(SERVICE_IPS, f"{key} : goto {internal_chain}")
    else:
        tx.element(NO_ENDPOINT_SERVICES, f"{key} : {internal_verdict}")

    for ip in svc.external_ips:
        k = f"{ip} . {proto} . {port}"
        if has_endpoints:
            tx.element(SERVICE_IPS, f"{k} : goto {external_chain}")
        if not has_external:
            tx.element(NO_ENDPOINT_SERVICES, f"{k} : {external_verdict}")

    vips = [ip for ip in svc.lb_vips if not ipaddress.ip_address(ip).is_loopback]
    uses_fw = bool(vips) and bool(svc.lb_source_ranges)
    fw_chain = "firewall-" + base
    if uses_fw:
        chain(fw_chain)
        sources = ", ".join(svc.lb_source_ranges + vips)
        tx.rule(fw_chain, f"ip saddr != {{ {sources} }} drop")
    for ip in vips:
        k = f"{ip} . {proto} . {port}"
        if has_endpoints:
            tx.element(SERVICE_IPS, f"{k} : goto {external_chain}")
        if uses_fw:
            tx.element(FIREWALL_IPS, f"{k} : goto {fw_chain}")
        if not has_external:
            tx.element(NO_ENDPOINT_SERVICES, f"{k} : {external_verdict}")

    if svc.node_port:
        if has_endpoints:
            tx.element(SERVICE_NODEPORTS, f"{proto} . {svc.node_port} : goto {external_chain}")
        if not has_external:
            tx.element(NO_ENDPOINT_NODEPORTS, f"{proto} . {svc.node_port} : {external_verdict}")

    # internal traffic: masquerade what comes from outside the pod network (it may leave again)
    if has_internal:
        if cfg.masquerade_all:
            tx.rule(internal_chain, f"ip daddr {svc.cluster_ip} {proto} dport {port} jump {MARK_MASQ}")
        elif cfg.cluster_cidr:
            tx.rule(internal_chain,
                    f"ip daddr {svc.cluster_ip} {proto} dport {port} ip saddr != {cfg.cluster_cidr} jump {MARK_MASQ}")

    if uses_external:
        if not svc.external_policy_local:
            tx.rule(external_chain, f"jump {MARK_MASQ}")
        else:
            if cfg.cluster_cidr:
                tx.rule(external_chain, f'ip saddr {cfg.cluster_cidr} goto {cluster_chain} '
                                        f'comment "short-circuit pod traffic"')
            tx.rule(external_chain, f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"')
            tx.rule(external_chain, f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"')
        if has_external:
            tx.rule(external_chain, f"goto {external_policy_chain}")

    if svc.affinity_timeout:
        for e in reachable:
            affinity[aff_set[(e.ip, e.port)]] = svc.affinity_timeout
    if uses_cluster:
        _spread(tx, svc, cluster_chain, cluster_eps, ep_chain, aff_set)
    if uses_local:
        _spread(tx, svc, local_chain, local_eps, ep_chain, aff_set)

    for e in reachable:
        c = ep_chain[(e.ip, e.port)]
        tx.rule(c, f"ip saddr {e.ip} jump {MARK_MASQ}")  # hairpin: a pod reaching itself
        if svc.affinity_timeout:
            tx.rule(c, f"update @{aff_set[(e.ip, e.port)]} {{ ip saddr }}")
        tx.rule(c, f"meta l4proto {proto} dnat to {e.ip}:{e.port}")


def _spread(tx: _Tx, svc: ServicePortInfo, chain: str, eps: list[Endpoint], ep_chain: dict, aff_set: dict) -> None:
    """Affinity lookups first (a known client goes back to its endpoint),
    then an equal random choice among the endpoints."""
    if not eps:
        tx.rule(chain, f"goto {REJECT_CHAIN}")
        return
    if svc.affinity_timeout:
        for e in eps:
            tx.rule(chain, f"ip saddr @{aff_set[(e.ip, e.port)]} goto {ep_chain[(e.ip, e.port)]}")
    vmap = ", ".join(f"{i} : goto {ep_chain[(e.ip, e.port)]}" for i, e in enumerate(eps))
    tx.rule(chain, f"numgen random mod {len(eps)} vmap {{ {vmap} }}")


# --- applying --------------------------------------------------------------------------------------

class NftError(RuntimeError):
    pass


async def run_nft(text: str, *, netns: str = "") -> None:
    """``nft -f -``: the whole text is one kernel transaction, applied or refused as a whole."""
    argv = ["nft", "-f", "-"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise NftError(f"nft -f failed ({proc.returncode}): {err.decode(errors='replace').strip()}")


async def run_cmd(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def delete_table(table: str) -> bool:
    """Remove the proxy's table (``--cleanup``); True when it existed."""
    rc, _ = await run_cmd("nft", "delete", "table", "ip", table)
    return rc == 0


async def local_addresses() -> list[tuple[str, bool]]:
    """This host's IPv4 addresses, (address, is_loopback)."""
    rc, out = await run_cmd("ip", "-j", "-4", "addr", "show")
    if rc != 0:
        return []
    res = []
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info") or ():
            if a.get("local"):
                res.append((a["local"], ipaddress.ip_address(a["local"]).is_loopback))
    return res


async def load_br_netfilter() -> None:
    """Bridged frames pass netfilter only with br_netfilter (k3s loads it too): without it a pod's
    reply to a pod on the same bridge skips conntrack and keeps the endpoint's address."""
    if os.path.exists("/proc/sys/net/bridge"):
        return
    rc, out = await run_cmd("modprobe", "br_netfilter")
    if rc == 0:
        log.info("loaded br_netfilter")
    else:
        log.warning("br_netfilter is not loaded and modprobe failed (%s): Services reached from a pod on "
                    "the same node may not answer", out.strip())


def bridge_calls_netfilter(bridge: str) -> None:
    """Our pod bridge's frames go through netfilter (the bridge's own nf_call_iptables, so the host's
    net.bridge.bridge-nf-call-iptables and its other bridges are left as they are)."""
    path = f"/sys/class/net/{bridge}/bridge/nf_call_iptables"
    try:
        if Path(path).read_text().strip() != "1":
            Path(path).write_text("1\n")
            log.info("bridge %s: nf_call_iptables set to 1", bridge)
    except OSError as e:
        log.warning("bridge %s: cannot set nf_call_iptables: %s", bridge, e)


class Proxier:
    """Holds the desired state (the informers' stores and the node's
    addresses) and applies it.  ``request_sync()`` is cheap and coalesces:
    the loop syncs at most ``burst`` times back to back, then once per
    ``min_sync_period`` (kube's BoundedFrequencyRunner with burstSyncs=2),
    and at least every ``sync_period``."""

    def __init__(self, cfg: RulesConfig, services: Any, slices: Any, *, min_sync_period: float = 1.0,
                 sync_period: float = 30.0, nodeport_cidrs: list[str] | None = None,
                 service_route: tuple[str, str] | None = None, burst: int = 2):
        self.cfg = cfg
        self.services, self.slices = services, slices  # Stores (anything with .list())
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.nodeport_cidrs = [ipaddress.ip_network(c, strict=False) for c in nodeport_cidrs or ()]
        self.node_ips: list[str] = []
        self.state: SyncState | None = None
        self.route = service_route  # (service CIDR, bridge)
        self.route_installed = False
        self._event = asyncio.Event()
        self._tokens = float(burst)
        self._burst = burst
        self._last = 0.0
        self.syncs = 0
        self.last_sync_seconds = 0.0
        self.ready = asyncio.Event()  # set after the first successful sync

    def request_sync(self) -> None:
        self._event.set()

    def set_node_ips(self, ips: list[str]) -> None:
        if ips != self.node_ips:
            self.node_ips = ips
            self.request_sync()

    async def nodeport_ips(self) -> list[str]:
        """kube's NodePortAddresses: the node's own addresses by default,
        or every local address inside the given CIDRs."""
        if self.cfg.nodeport_match_all:
            return []
        if not self.nodeport_cidrs:
            return list(self.node_ips)
        return [a for a, _ in await local_addresses()
                if any(ipaddress.ip_address(a) in n for n in self.nodeport_cidrs)]

    async def sync(self) -> None:
        t0 = time.monotonic()
        rs = build_ruleset(self.cfg, self.services.list(), self.slices.list(), await self.nodeport_ips(),
                           self.state)
        try:
            await run_nft(rs.text)
        except NftError:
            self.state = None  # recreate from nothing next time
            raise
        self.state = rs.state
        await self.ensure_route()
        self.syncs += 1
        self.last_sync_seconds = time.monotonic() - t0
        log.debug("synced %s in %.1f ms (%d service chains)", self.cfg.table, self.last_sync_seconds * 1e3,
                  len(rs.state.chains))
        self.ready.set()

    async def ensure_route(self) -> None:
        """Route the service CIDR to the pod bridge once the bridge exists,
        so a ClusterIP without rules stays on this machine (not the uplink)."""
        if self.route is None:
            return
        cidr, bridge = self.route
        if not os.path.exists(f"/sys/class/net/{bridge}"):
            self.route_installed = False
            return
        if self.route_installed:
            return
        bridge_calls_netfilter(bridge)
        rc, out = await run_cmd("ip", "route", "replace", cidr, "dev", bridge)
        if rc == 0:
            self.route_installed = True
            log.info("routed %s to %s", cidr, bridge)
        else:
            log.warning("ip route replace %s dev %s: %s", cidr, bridge, out.strip())

    async def remove_route(self) -> None:
        if self.route is None:
            return
        cidr, bridge = self.route
        await run_cmd("ip", "route", "del", cidr, "dev", bridge)
        self.route_installed = False

    async def run(self) -> None:
        """The sync loop; the caller requests the first sync once the informers have synced."""
        while True:
            try:
                await asyncio.wait_for(self._event.wait(), self.sync_period)
            except asyncio.TimeoutError:
                self.route_installed = False  # re-check the route on the periodic resync
            now = time.monotonic()
            if self.min_sync_period > 0:
                self._tokens = min(self._burst, self._tokens + (now - self._last) / self.min_sync_period)
                if self._tokens < 1:
                    await asyncio.sleep((1 - self._tokens) * self.min_sync_period)
                    self._tokens = 1.0
                self._tokens -= 1
            self._last = time.monotonic()
            self._event.clear()
            try:
                await self.sync()
            except Exception as e:  # noqa: BLE001 - retried: the next change or the retry below
                log.error("sync of %s failed: %s", self.cfg.table, e)
                await asyncio.sleep(min(1.0, self.sync_period))
                self._event.set()
