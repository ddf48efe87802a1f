"""The ruleset as text, feature by feature (kube-proxy's nftables layout)."""

from __future__ import annotations

import re
from typing import Any

from k8py.proxy.proxier import (Endpoint, RulesConfig, ServicePortInfo, ServicePortName, SyncState,
                                build_ruleset, categorize, chain_base, endpoint_chain_base, endpoints_by_port,
                                service_ports)
from k8py.proxy.servicelb import desired_ingress, wants_servicelb

CFG = RulesConfig(table="t", hostname="n1", cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16")


def svc(name: str = "web", ns: str = "default", typ: str = "ClusterIP", cip: str = "10.43.0.5",
        ports: list[dict] | None = None, status: dict | None = None, **spec: Any) -> dict:
    s: dict = {"metadata": {"name": name, "namespace": ns},
               "spec": {"type": typ, "clusterIP": cip,
                        "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}
    if status:
        s["status"] = status
    return s


def ep(ip: str, node: str = "n1", ready: bool | None = True, serving: bool | None = None,
       terminating: bool | None = None) -> dict:
    c: dict = {}
    for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating)):
        if v is not None:
            c[k] = v
    return {"addresses": [ip], "conditions": c, "nodeName": node}


def slice_(svc_name: str, eps: list[dict], ns: str = "default", port: int = 8080, name: str = "http",
           proto: str = "TCP", slice_name: str = "") -> dict:
    return {"metadata": {"name": slice_name or f"{svc_name}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": "IPv4", "ports": [{"name": name, "port": port, "protocol": proto}], "endpoints": eps}


def build(services: list[dict], slices: list[dict], nodeport_ips: list[str] = ["192.0.2.1"],
          cfg: RulesConfig = CFG, prev: SyncState | None = None) -> str:
    return build_ruleset(cfg, services, slices, nodeport_ips, prev).text


def rules_of(text: str, chain: str) -> list[str]:
    p = f"add rule ip t {chain} "
    return [line[len(p):] for line in text.splitlines() if line.startswith(p)]


def elements_of(text: str, m: str) -> list[str]:
    p = f"add element ip t {m} {{ "
    return [line[len(p):-2] for line in text.splitlines() if line.startswith(p)]


SPN = ServicePortName("default", "web", "http", "TCP")
SVC_CHAIN = "service-" + chain_base(SPN)
EXT_CHAIN = "external-" + chain_base(SPN)
LOCAL_CHAIN = "local-" + chain_base(SPN)


def ep_chain(ip: str, port: int = 8080) -> str:
    return "endpoint-" + endpoint_chain_base(SPN, Endpoint(ip, port))


def test_chain_names_are_kubes() -> None:
    # kube's own example shape: HASH-namespace/name/proto/port, 8 base32 characters of sha256
    assert re.fullmatch(r"[A-Z2-7]{8}-default/web/tcp/http", chain_base(SPN))
    assert endpoint_chain_base(SPN, Endpoint("10.42.0.7", 8080)).endswith("-default/web/tcp/http__10.42.0.7/8080")


def test_fixed_layout_and_masquerade_mark() -> None:
    text = build([], [])
    for name, hook, prio in (("nat-prerouting", "prerouting", "-100"), ("nat-output", "output", "-100"),
                             ("nat-postrouting", "postrouting", "100"), ("filter-input", "input", "-110")):
        assert f"hook {hook} priority {prio}" in next(l for l in text.splitlines() if f"chain ip t {name} " in l)
    assert rules_of(text, "nat-prerouting") == ["jump services"]
    assert rules_of(text, "nat-output") == ["jump services"]
    assert rules_of(text, "nat-postrouting") == ["jump masquerading"]
    assert rules_of(text, "mark-for-masquerade") == ["mark set mark or 0x4000"]
    assert rules_of(text, "masquerading") == ["mark and 0x4000 == 0 return", "mark set mark xor 0x4000",
                                              "masquerade fully-random"]
    assert rules_of(text, "services") == ["ip daddr . meta l4proto . th dport vmap @service-ips",
                                          "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"]
    assert elements_of(text, "nodeport-ips") == ["192.0.2.1"]
    # the first sync recreates the table inside the same transaction
    assert text.splitlines()[:2] == ["add table ip t", "delete table ip t"]


def test_clusterip_equal_spreading_over_ready_endpoints() -> None:
    text = build([svc()], [slice_("web", [ep("10.42.0.7"), ep("10.42.0.8"), ep("10.42.0.9"),
                                         ep("10.42.0.10", ready=False)])])
    assert elements_of(text, "service-ips") == [f"10.43.0.5 . tcp . 80 : goto {SVC_CHAIN}"]
    assert elements_of(text, "cluster-ips") == ["10.43.0.5"]
    r = rules_of(text, SVC_CHAIN)
    # off-cluster sources are masqueraded (cluster-CIDR based, masquerade-all off)
    assert r[0] == "ip daddr 10.43.0.5 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
    assert r[1] == (f"numgen random mod 3 vmap {{ 0 : goto {ep_chain('10.42.0.7')}, "
                    f"1 : goto {ep_chain('10.42.0.8')}, 2 : goto {ep_chain('10.42.0.9')} }}")
    assert rules_of(text, ep_chain("10.42.0.7")) == ["ip saddr 10.42.0.7 jump mark-for-masquerade",
                                                     "meta l4proto tcp dnat to 10.42.0.7:8080"]
    assert ep_chain("10.42.0.10") not in text  # not ready: no chain at all


def test_masquerade_all() -> None:
    cfg = RulesConfig(table="t", cluster_cidr="10.42.0.0/16", masquerade_all=True)
    r = rules_of(build([svc()], [slice_("web", [ep("10.42.0.7")])], cfg=cfg), SVC_CHAIN)
    assert r[0] == "ip daddr 10.43.0.5 tcp dport 80 jump mark-for-masquerade"


def test_terminating_endpoints_only_when_none_is_ready() -> None:
    eps = [ep("10.42.0.7", ready=False, serving=True, terminating=True),
           ep("10.42.0.8", ready=False, serving=False, terminating=True)]
    text = build([svc()], [slice_("web", eps)])
    assert rules_of(text, SVC_CHAIN)[-1] == f"numgen random mod 1 vmap {{ 0 : goto {ep_chain('10.42.0.7')} }}"
    eps.append(ep("10.42.0.9"))
    text = build([svc()], [slice_("web", eps)])
    assert rules_of(text, SVC_CHAIN)[-1] == f"numgen random mod 1 vmap {{ 0 : goto {ep_chain('10.42.0.9')} }}"
    assert ep_chain("10.42.0.7") not in text


def test_no_endpoints_rejects() -> None:
    text = build([svc(typ="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])],
                 [slice_("web", [ep("10.42.0.7", ready=False)])])
    assert elements_of(text, "service-ips") == []
    assert elements_of(text, "no-endpoint-services") == ["10.43.0.5 . tcp . 80 : goto reject-chain"]
    assert elements_of(text, "no-endpoint-nodeports") == ["tcp . 30080 : goto reject-chain"]
    assert rules_of(text, "reject-chain") == ["meta l4proto tcp reject with tcp reset", "reject"]
    assert "endpoints-check" in rules_of(text, "filter-input")[0]


def test_ports_by_name_number_and_protocol() -> None:
    s = svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                   {"name": "sctp", "port": 9, "protocol": "SCTP"}])
    sl = {"metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
          "addressType": "IPv4", "endpoints": [ep("10.42.0.7")],
          "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "dns-tcp", "port": 5354, "protocol": "TCP"},
                    {"name": "sctp", "port": 99, "protocol": "SCTP"}]}
    text = build([s], [sl])
    els = elements_of(text, "service-ips")
    assert any(e.startswith("10.43.0.5 . udp . 53 : goto service-") and "/web/udp/dns" in e for e in els)
    assert any(e.startswith("10.43.0.5 . tcp . 53 : goto service-") and "/web/tcp/dns-tcp" in e for e in els)
    assert any(e.startswith("10.43.0.5 . sctp . 9 : goto service-") for e in els)
    assert "meta l4proto udp dnat to 10.42.0.7:5353" in text
    assert "meta l4proto tcp dnat to 10.42.0.7:5354" in text
    assert "meta l4proto sctp dnat to 10.42.0.7:99" in text


def test_endpoints_merged_across_slices_and_deduplicated() -> None:
    a = slice_("web", [ep("10.42.0.7", ready=False), ep("10.42.0.8")], slice_name="a")
    b = slice_("web", [ep("10.42.0.7"), ep("10.42.0.9", node="n2")], slice_name="b")
    eps = endpoints_by_port([a, b], "n1")[SPN]
    assert [(e.ip, e.ready, e.local) for e in eps] == [("10.42.0.7", True, True), ("10.42.0.8", True, True),
                                                      ("10.42.0.9", True, False)]


def test_nodeport_and_loadbalancer() -> None:
    s = svc(typ="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
            status={"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}, {"ip": "127.0.0.1"}]}})
    text = build([s], [slice_("web", [ep("10.42.0.7")])], nodeport_ips=["127.0.0.1", "192.0.2.1"])
    # loopback never serves NodePorts or LB VIPs (kube's nftables mode)
    assert elements_of(text, "nodeport-ips") == ["192.0.2.1"]
    assert elements_of(text, "service-nodeports") == [f"tcp . 30080 : goto {EXT_CHAIN}"]
    assert f"192.0.2.1 . tcp . 80 : goto {EXT_CHAIN}" in elements_of(text, "service-ips")
    assert not any(e.startswith("127.") for e in elements_of(text, "service-ips"))
    # Cluster policy: external traffic is masqueraded (it may cross nodes)
    assert rules_of(text, EXT_CHAIN) == ["jump mark-for-masquerade", f"goto {SVC_CHAIN}"]


def test_nodeport_match_all_uses_fib() -> None:
    cfg = RulesConfig(table="t", cluster_cidr="10.42.0.0/16", nodeport_match_all=True)
    text = build([], [], cfg=cfg)
    assert "delete set ip t nodeport-ips" in text
    assert rules_of(text, "services")[1] == ("fib daddr type local ip daddr != 127.0.0.0/8 "
                                             "meta l4proto . th dport vmap @service-nodeports")


def test_load_balancer_source_ranges() -> None:
    s = svc(typ="LoadBalancer", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
            loadBalancerSourceRanges=["203.0.113.0/24"],
            status={"loadBalancer": {"ingress": [{"ip": "192.0.2.50"}]}})
    text = build([s], [slice_("web", [ep("10.42.0.7")])])
    fw = "firewall-" + chain_base(SPN)
    assert elements_of(text, "firewall-ips") == [f"192.0.2.50 . tcp . 80 : goto {fw}"]
    assert rules_of(text, fw) == ["ip saddr != { 203.0.113.0/24, 192.0.2.50 } drop"]


def test_external_traffic_policy_local() -> None:
    s = svc(typ="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}], externalTrafficPolicy="Local")
    text = build([s], [slice_("web", [ep("10.42.0.7", node="n1"), ep("10.42.1.7", node="n2")])])
    assert rules_of(text, EXT_CHAIN) == [
        f'ip saddr 10.42.0.0/16 goto {SVC_CHAIN} comment "short-circuit pod traffic"',
        'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
        f'fib saddr type local goto {SVC_CHAIN} comment "short-circuit local traffic"',
        f"goto {LOCAL_CHAIN}"]
    assert rules_of(text, LOCAL_CHAIN) == [f"numgen random mod 1 vmap {{ 0 : goto {ep_chain('10.42.0.7')} }}"]
    assert "mod 2" in rules_of(text, SVC_CHAIN)[-1]  # ClusterIP still reaches both
    # no local endpoint: external traffic dropped (pods and the host still short-circuit)
    text = build([s], [slice_("web", [ep("10.42.1.7", node="n2")])])
    assert elements_of(text, "no-endpoint-nodeports") == ["tcp . 30080 : drop"]
    assert elements_of(text, "service-nodeports") == [f"tcp . 30080 : goto {EXT_CHAIN}"]
    assert LOCAL_CHAIN not in text


def test_internal_traffic_policy_local() -> None:
    s = svc(internalTrafficPolicy="Local")
    text = build([s], [slice_("web", [ep("10.42.0.7", node="n1"), ep("10.42.1.7", node="n2")])])
    assert elements_of(text, "service-ips") == [f"10.43.0.5 . tcp . 80 : goto {LOCAL_CHAIN}"]
    assert rules_of(text, LOCAL_CHAIN)[-1] == f"numgen random mod 1 vmap {{ 0 : goto {ep_chain('10.42.0.7')} }}"
    text = build([s], [slice_("web", [ep("10.42.1.7", node="n2")])])
    assert elements_of(text, "no-endpoint-services") == ["10.43.0.5 . tcp . 80 : drop"]


def test_session_affinity_client_ip() -> None:
    s = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    rs = build_ruleset(CFG, [s], [slice_("web", [ep("10.42.0.7"), ep("10.42.0.8")])], [], None)
    aff7 = "affinity-" + endpoint_chain_base(SPN, Endpoint("10.42.0.7", 8080))
    assert f"add set ip t {aff7} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }}" in rs.text
    assert f"flush set ip t {aff7}" not in rs.text  # the clients' affinity survives resyncs
    r = rules_of(rs.text, SVC_CHAIN)
    assert r[1] == f"ip saddr @{aff7} goto {ep_chain('10.42.0.7')}"
    assert r[3].startswith("numgen random mod 2")
    assert rules_of(rs.text, ep_chain("10.42.0.7"))[1] == f"update @{aff7} {{ ip saddr }}"
    # a changed timeout replaces the set; a gone endpoint's set is deleted
    s2 = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}})
    text = build([s2], [slice_("web", [ep("10.42.0.7")])], prev=rs.state)
    assert f"delete set ip t {aff7}\nadd set ip t {aff7} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 30s ; }}" in text
    assert f"delete set ip t affinity-{endpoint_chain_base(SPN, Endpoint('10.42.0.8', 8080))}" in text


def test_incremental_sync_deletes_stale_chains() -> None:
    rs = build_ruleset(CFG, [svc()], [slice_("web", [ep("10.42.0.7"), ep("10.42.0.8")])], [], None)
    rs2 = build_ruleset(CFG, [svc()], [slice_("web", [ep("10.42.0.7")])], [], rs.state)
    assert not rs2.text.startswith("add table ip t\ndelete table")
    assert rs2.stale == [ep_chain("10.42.0.8")]
    assert f"delete chain ip t {ep_chain('10.42.0.8')}" in rs2.text
    rs3 = build_ruleset(CFG, [], [], [], rs2.state)
    assert set(rs3.stale) == {SVC_CHAIN, ep_chain("10.42.0.7")}


def test_headless_externalname_and_other_proxies_get_no_rules() -> None:
    headless = svc(name="hl", cip="None")
    ext = svc(name="ext", typ="ExternalName", cip="", externalName="example.com")
    other = svc(name="other", cip="10.43.0.9")
    other["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "foo"}
    slices = [slice_(n, [ep("10.42.0.7")]) for n in ("hl", "ext", "other")]
    text = build([headless, ext, other], slices)
    assert elements_of(text, "service-ips") == [] and "chain ip t endpoint-" not in text
    assert service_ports(headless) == service_ports(ext) == service_ports(other) == []


def test_hairpin_masquerades_a_pod_reaching_itself() -> None:
    text = build([svc()], [slice_("web", [ep("10.42.0.7")])])
    assert rules_of(text, ep_chain("10.42.0.7"))[0] == "ip saddr 10.42.0.7 jump mark-for-masquerade"


def test_categorize_mixed_policies() -> None:
    spi = ServicePortInfo(name=SPN, cluster_ip="10.43.0.5", port=80, node_port=30080, external_policy_local=True)
    eps = [Endpoint("10.42.0.7", 80, local=True), Endpoint("10.42.1.7", 80, local=False)]
    cluster, local, reachable, any_ = categorize(eps, spi)
    assert [e.ip for e in cluster] == ["10.42.0.7", "10.42.1.7"] and [e.ip for e in local] == ["10.42.0.7"]
    assert len(reachable) == 2 and any_


def test_servicelb_ingress_from_ready_nodes() -> None:
    def node(name: str, ready: str, *addrs: tuple[str, str]) -> dict:
        return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}],
                                                       "addresses": [{"type": t, "address": a} for t, a in addrs]}}
    nodes = [node("a", "True", ("InternalIP", "10.0.0.2"), ("Hostname", "a")),
             node("b", "True", ("InternalIP", "10.0.0.3"), ("ExternalIP", "198.51.100.3")),
             node("c", "False", ("InternalIP", "10.0.0.4"))]
    assert desired_ingress(nodes) == [{"ip": "10.0.0.2", "ipMode": "VIP"}, {"ip": "198.51.100.3", "ipMode": "VIP"}]
    assert wants_servicelb(svc(typ="LoadBalancer"))
    assert not wants_servicelb(svc(typ="LoadBalancer", loadBalancerClass="example.com/lb"))
    assert not wants_servicelb(svc(typ="NodePort"))
