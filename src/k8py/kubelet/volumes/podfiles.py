"""The files the kubelet writes for each pod itself: /etc/hosts and resolv.conf.

Usage::

    hostname, domain = pod_hostname_and_domain(pod, "cluster.local")
    hosts = write_etc_hosts(pod_dir, pod, pod_ips=["10.88.0.5"], cluster_domain="cluster.local")
    resolv = write_resolv_conf(pod_dir, pod, cluster_dns=["10.96.0.10"], cluster_domain="cluster.local")
    # both are host files for PodSandboxConfig(hosts_file=..., resolv_conf=...)

``/etc/hosts`` is kube's managed hosts file (``managedHostsFileContent``): the
localhost lines, the pod's IPs with its hostname (and ``<hostname>.<subdomain>.<ns>.svc.<domain>``
when the pod has a subdomain) and the pod's hostAliases; a hostNetwork pod gets
the node's own /etc/hosts under a header, plus its aliases.

resolv.conf follows kube's ``dns.Configurer.GetPodDNS``: ``ClusterFirst`` (the
default) uses the cluster DNS servers, the search list
``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the host's, and
``options ndots:5``; ``ClusterFirstWithHostNet`` is the same for hostNetwork
pods (plain ``ClusterFirst`` on the host network means ``Default``);
``Default`` is the host's resolv.conf; ``None`` starts empty.  The pod's
``dnsConfig`` is merged in last, then kube's limits (3 nameservers, 32 search
domains / 2048 characters) are applied.  The text is what containerd writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "DNSConfig",
    "HOSTS_FILE",
    "RESOLV_FILE",
    "default_host_resolv",
    "etc_hosts_content",
    "parse_resolv_conf",
    "pod_dns_config",
    "pod_hostname_and_domain",
    "resolv_conf_content",
    "write_etc_hosts",
    "write_resolv_conf",
]

HOSTS_FILE = "etc-hosts"
RESOLV_FILE = "resolv.conf"
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"

MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
DEFAULT_DNS_OPTIONS = ("ndots:5",)

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


class PodFileError(ValueError):
    """The pod's hostname/subdomain or DNS settings cannot be used."""


def pod_hostname_and_domain(pod: dict, cluster_domain: str) -> tuple[str, str]:
    """kube's GeneratePodHostNameAndDomain: (hostname, "<subdomain>.<ns>.svc.<domain>" or "")."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = meta.get("name", "")
    hostname = name
    if spec.get("hostname"):
        if not _DNS1123_LABEL.match(spec["hostname"]) or len(spec["hostname"]) > 63:
            raise PodFileError(f'pod Hostname "{spec["hostname"]}" is not a valid DNS label')
        hostname = spec["hostname"]
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
        if not hostname:
            raise PodFileError(f'hostname for pod "{name}" was invalid: "{hostname}"')
    domain = ""
    if spec.get("subdomain"):
        if not _DNS1123_LABEL.match(spec["subdomain"]) or len(spec["subdomain"]) > 63:
            raise PodFileError(f'pod Subdomain "{spec["subdomain"]}" is not a valid DNS label')
        domain = f'{spec["subdomain"]}.{meta.get("namespace", "default")}.svc.{cluster_domain}'
    return hostname, domain


def _aliases(host_aliases: Iterable[dict] | None) -> str:
    host_aliases = list(host_aliases or [])
    if not host_aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    for a in host_aliases:
        lines.append(f'{a.get("ip", "")}\t' + "\t".join(a.get("hostnames") or []))
    return "\n".join(lines) + "\n"


def etc_hosts_content(pod: dict, pod_ips: Sequence[str], cluster_domain: str,
                      host_hosts: str = "/etc/hosts") -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        with open(host_hosts, encoding="utf-8", errors="surrogateescape") as f:
            node = f.read()
        return MANAGED_HOSTS_HEADER_HOST_NETWORK + node + _aliases(spec.get("hostAliases"))
    hostname, domain = pod_hostname_and_domain(pod, cluster_domain)
    out = [MANAGED_HOSTS_HEADER,
           "127.0.0.1\tlocalhost\n",
           "::1\tlocalhost ip6-localhost ip6-loopback\n",
           "fe00::0\tip6-localnet\n",
           "fe00::0\tip6-mcastprefix\n",
           "fe00::1\tip6-allnodes\n",
           "fe00::2\tip6-allrouters\n"]
    for ip in pod_ips:
        out.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n")
    out.append(_aliases(spec.get("hostAliases")))
    return "".join(out)


def _write(path: str, content: str) -> None:
    """Write via a temporary file and rename, so a running pod never reads half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_etc_hosts(pod_dir: str, pod: dict, pod_ips: Sequence[str], cluster_domain: str,
                    host_hosts: str = "/etc/hosts") -> str:
    """Write ``<pod_dir>/etc-hosts`` and return its path."""
    os.makedirs(pod_dir, mode=0o750, exist_ok=True)
    path = os.path.join(pod_dir, HOSTS_FILE)
    _write(path, etc_hosts_content(pod, pod_ips, cluster_domain, host_hosts))
    return path


# -- resolv.conf ---------------------------------------------------------------------

class DNSConfig:
    """Servers, searches and options: the CRI's DNSConfig."""

    def __init__(self, servers: Sequence[str] = (), searches: Sequence[str] = (),
                 options: Sequence[str] = ()) -> None:
        self.servers = list(servers)
        self.searches = list(searches)
        self.options = list(options)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DNSConfig) and (self.servers, self.searches, self.options) == \
            (other.servers, other.searches, other.options)

    def __repr__(self) -> str:
        return f"DNSConfig(servers={self.servers}, searches={self.searches}, options={self.options})"


def parse_resolv_conf(text: str) -> DNSConfig:
    """kube's parseResolvConf: nameservers, the last search line (without "." and trailing dots), options."""
    cfg = DNSConfig()
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0]
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            cfg.servers.append(fields[1])
        elif fields[0] == "search":
            cfg.searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            cfg.options = fields[1:]
    return cfg


def default_host_resolv() -> str:
    """The resolv.conf to give ``Default`` pods: the host's, or systemd-resolved's
    upstream file when the host's only points at the 127.0.0.53 stub (which a pod's
    network namespace cannot reach), as kubeadm configures kubelets."""
    upstream = "/run/systemd/resolve/resolv.conf"
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            servers = parse_resolv_conf(f.read()).servers
    except OSError:
        servers = []
    if servers and all(s.startswith("127.0.0.53") for s in servers) and os.path.exists(upstream):
        return upstream
    return "/etc/resolv.conf"


def _omit_duplicates(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _merge_options(existing: Sequence[str], extra: Iterable[dict]) -> list[str]:
    opts: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        opts[name] = value
    for op in extra:
        opts[op.get("name", "")] = op.get("value") or ""
    return [f"{k}:{v}" if v else k for k, v in opts.items()]


def pod_dns_config(pod: dict, cluster_dns: Sequence[str], cluster_domain: str,
                   host_resolv: str | None = "/etc/resolv.conf") -> DNSConfig:
    """kube's GetPodDNS (``host_resolv=None`` is kubelet's ``--resolv-conf=""``)."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    if policy == "ClusterFirstWithHostNet":
        mode = "cluster"
    elif policy == "ClusterFirst":
        mode = "host" if host_network else "cluster"
    elif policy == "None":
        mode = "none"
    else:
        mode = "host"

    if host_resolv:
        with open(host_resolv, encoding="utf-8", errors="replace") as f:
            cfg = parse_resolv_conf(f.read())
    else:
        cfg = DNSConfig()
    if mode == "cluster" and not cluster_dns:
        mode = "host"           # kube records MissingClusterDNS and falls back to Default
    if mode == "cluster":
        searches = cfg.searches
        if cluster_domain:
            searches = _omit_duplicates([f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}",
                                         cluster_domain, *cfg.searches])
        cfg = DNSConfig(list(cluster_dns), searches, DEFAULT_DNS_OPTIONS)
    elif mode == "host" and not host_resolv:
        cfg = DNSConfig(["127.0.0.1"], ["."], [])
    elif mode == "none":
        cfg = DNSConfig()
    dc = spec.get("dnsConfig")
    if dc:
        cfg.servers = _omit_duplicates(cfg.servers + list(dc.get("nameservers") or []))
        cfg.searches = _omit_duplicates(cfg.searches + list(dc.get("searches") or []))
        cfg.options = _merge_options(cfg.options, dc.get("options") or [])
    # formDNSConfigFitsLimits
    cfg.servers = cfg.servers[:MAX_DNS_NAMESERVERS]
    searches = cfg.searches[:MAX_DNS_SEARCH_PATHS]
    while searches and len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        searches.pop()
    cfg.searches = searches
    return cfg


def resolv_conf_content(cfg: DNSConfig) -> str:
    out = ""
    if cfg.searches:
        out += "search " + " ".join(cfg.searches) + "\n"
    for s in cfg.servers:
        out += f"nameserver {s}\n"
    if cfg.options:
        out += "options " + " ".join(cfg.options) + "\n"
    return out


def write_resolv_conf(pod_dir: str, pod: dict, cluster_dns: Sequence[str], cluster_domain: str,
                      host_resolv: str | None = "/etc/resolv.conf") -> str:
    """Write ``<pod_dir>/resolv.conf`` for the pod's dnsPolicy and dnsConfig; return its path."""
    os.makedirs(pod_dir, mode=0o750, exist_ok=True)
    path = os.path.join(pod_dir, RESOLV_FILE)
    _write(path, resolv_conf_content(pod_dns_config(pod, cluster_dns, cluster_domain, host_resolv)))
    return path
