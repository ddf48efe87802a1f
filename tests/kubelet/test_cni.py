"""Pod networking through the real CNI plugins (bridge, host-local,
loopback, portmap), as root.

Every pod here sits on a bridge that this module owns (a unique name) in a
private subnet that it picks (10.250.N.0/24); traffic goes only between the
host and those pods, or to loopback. At the end the module removes the
bridge and the iptables chains and nat tables the plugins made when they
were not there before, restores ip_forward (the bridge plugin turns it on
for a gateway) and checks that nothing of its own is left.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from k8py.kubelet.network import (
    CNIError,
    CNIRunner,
    PodNetwork,
    PodNetworkConfig,
    PortMapping,
    RuntimeArgs,
)
from k8py.kubelet.network import netns

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="no CNI plugins"),
]

SHARED_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


@dataclass
class Env:
    config: PodNetworkConfig
    prefix: str  # sandbox ids of this run start with it

    def network(self) -> PodNetwork:
        return PodNetwork(self.config)


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True)


def _nat_dump(cmd: str = "iptables-save") -> str:
    return _sh(cmd, "-t", "nat").stdout if shutil.which(cmd) else ""


def _nft_tables() -> set[str]:
    out = _sh("nft", "list", "tables").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def _remove_shared_hostport_chains() -> None:
    """Remove portmap's shared chains and the jumps to them, only when no
    rule of anyone's remains in them."""
    dump = _nat_dump()
    if any(line.startswith("-A CNI-HOSTPORT-DNAT ") for line in dump.splitlines()):
        return  # someone else's hostPort rules live there
    jumps = [
        ("PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
        ("OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
        ("POSTROUTING", ["-m", "comment", "--comment",
                         "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"]),
    ]
    for cmd in ("iptables", "ip6tables"):
        for chain, rule in jumps:
            while _sh(cmd, "-t", "nat", "-D", chain, *rule).returncode == 0:
                pass
        for chain in SHARED_CHAINS:
            if _sh(cmd, "-t", "nat", "-F", chain).returncode == 0:
                _sh(cmd, "-t", "nat", "-X", chain)


def _remove_empty_nat_table(family: str) -> None:
    out = _sh("nft", "list", "table", family, "nat").stdout
    if out and "\t\t" not in out.replace("\t\ttype nat", ""):
        # only base chains with no rules (or no chains at all)
        _sh("nft", "delete", "table", family, "nat")


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    n = 20 + os.getpid() % 200
    bridge = f"k8t{os.getpid():x}"[:15]
    data_dir = tempfile.mkdtemp(prefix="k8py-cni-")
    tables_before = _nft_tables()
    chains_before = _nat_dump()
    with open(IP_FORWARD) as f:
        forward_before = f.read().strip()
    config = PodNetworkConfig(pod_cidr=f"10.250.{n}.0/24", bridge=bridge, data_dir=data_dir)
    e = Env(config, prefix=f"k8pyt{os.getpid()}-")
    try:
        yield e
    finally:
        pn = e.network()
        for sid in pn.sandboxes():
            asyncio.run(pn.teardown(sid))
        for name in os.listdir(netns.NETNS_DIR) if os.path.isdir(netns.NETNS_DIR) else ():
            if name.startswith("k8py-" + e.prefix):
                asyncio.run(netns.delete_netns(name))
        _sh("ip", "link", "del", bridge)
        if "CNI-HOSTPORT-DNAT" not in chains_before:
            _remove_shared_hostport_chains()
        for fam in ("ip", "ip6"):
            if f"table {fam} nat" not in tables_before:
                _remove_empty_nat_table(fam)
        with open(IP_FORWARD, "w") as f:
            f.write(forward_before)
        shutil.rmtree(data_dir, ignore_errors=True)
        # nothing of ours is left
        assert _sh("ip", "link", "show", bridge).returncode != 0
        assert not [n for n in os.listdir(netns.NETNS_DIR) if e.prefix in n]
        assert e.prefix not in _nat_dump() and f"10.250.{n}." not in _nat_dump()
        left = {t for t in _nft_tables() - tables_before if t.endswith(" nat")}
        assert not left, left


def _ping(ns: str | None, ip: str) -> int:
    argv = ["busybox", "ping", "-c", "1", "-W", "2", ip]
    if ns is not None:
        argv = ["nsenter", f"--net={netns.netns_path(ns)}", "--", *argv]
    return subprocess.run(argv, capture_output=True).returncode


def _veths() -> set[str]:
    out = _sh("ip", "-o", "link", "show", "type", "veth").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
s.settimeout(20)
c, addr = s.accept()
c.sendall(b"hello from pod\n")
c.close()
"""


async def _serve_in_pod(ns: str, host: str, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns.netns_path(ns)}", "--",
        sys.executable, "-c", SERVER, host, str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line.strip() == b"ready"
    return proc


async def _fetch(ip: str, port: int) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def test_two_pods_reach_each_other_the_host_and_their_loopback(env: Env) -> None:
    async def body() -> None:
        pn = env.network()
        a, b = env.prefix + "a", env.prefix + "b"
        sa = await pn.setup(a, "default", "pod-a", pod_uid="uid-a")
        sb = await pn.setup(b, "default", "pod-b")
        try:
            subnet = env.config.pod_cidr.rsplit(".", 1)[0] + "."
            assert sa.pod_ip.startswith(subnet) and sb.pod_ip.startswith(subnet)
            assert sa.pod_ip != sb.pod_ip
            assert sa.netns_path == netns.netns_path(pn.netns_name(a))
            assert os.path.exists(sa.netns_path)
            # pod to pod, both ways; the host through the bridge
            assert await asyncio.to_thread(_ping, pn.netns_name(a), sb.pod_ip) == 0
            assert await asyncio.to_thread(_ping, pn.netns_name(b), sa.pod_ip) == 0
            assert await asyncio.to_thread(_ping, None, sa.pod_ip) == 0
            # loopback is up inside the pod
            assert await asyncio.to_thread(_ping, pn.netns_name(a), "127.0.0.1") == 0
            # TCP: host to pod, and pod b to pod a
            srv = await _serve_in_pod(pn.netns_name(a), "0.0.0.0", 8080)
            assert await _fetch(sa.pod_ip, 8080) == b"hello from pod\n"
            await srv.wait()
            srv = await _serve_in_pod(pn.netns_name(a), "0.0.0.0", 8080)
            code, out, _ = await netns.run_in_netns(
                pn.netns_name(b), "busybox", "nc", "-w", "3", sa.pod_ip, "8080"
            )
            assert out == b"hello from pod\n", (code, out)
            await srv.wait()
            # CNI CHECK agrees; status is read back from the cache
            await pn.check(a)
            st = pn.status(a)
            assert st is not None and st.pod_ip == sa.pod_ip
            assert set(pn.sandboxes()) >= {a, b}
        finally:
            await pn.teardown(a)
            await pn.teardown(b)

    asyncio.run(body())


def test_teardown_releases_ip_veth_and_netns_idempotently(env: Env) -> None:
    async def body() -> None:
        pn = env.network()
        sid = env.prefix + "td"
        before = _veths()
        st = await pn.setup(sid, "ns1", "pod-td")
        assert st.result is not None
        host_veths = {i.name for i in st.result.interfaces if not i.sandbox} - {
            env.config.bridge
        }
        assert host_veths and host_veths <= _veths() - before
        lease = os.path.join(env.config.data_dir, "ipam", "k8py", st.pod_ip)
        assert os.path.exists(lease)
        await pn.teardown(sid)
        assert not os.path.exists(lease)
        assert not host_veths & _veths()
        assert not os.path.exists(st.netns_path)
        assert pn.status(sid) is None and sid not in pn.sandboxes()
        await pn.teardown(sid)  # again: nothing to do, no error
        await pn.teardown(env.prefix + "never-set-up")

    asyncio.run(body())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("iptables") is None, reason="no iptables")
def test_host_port_through_portmap(env: Env) -> None:
    async def body() -> None:
        pn = env.network()
        sid = env.prefix + "hp"
        host_port = _free_port()
        st = await pn.setup(sid, "default", "pod-hp", [PortMapping(host_port, 8081)])
        try:
            dump = _nat_dump()
            assert f"--dport {host_port}" in dump and f"{st.pod_ip}:8081" in dump
            srv = await _serve_in_pod(pn.netns_name(sid), "0.0.0.0", 8081)
            assert await _fetch("127.0.0.1", host_port) == b"hello from pod\n"
            await srv.wait()
        finally:
            await pn.teardown(sid)
        dump = _nat_dump()
        assert f"--dport {host_port}" not in dump and st.pod_ip not in dump

    asyncio.run(body())


def test_plugin_errors_are_surfaced(env: Env) -> None:
    async def body() -> None:
        ns_name = "k8py-" + env.prefix + "err"
        path = await netns.create_netns(ns_name)
        try:
            bad = CNIRunner({
                "cniVersion": "1.0.0",
                "name": "k8py-bad",
                "plugins": [{
                    "type": "bridge",
                    "bridge": env.config.bridge,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": "not-a-cidr"}]],
                             "dataDir": os.path.join(env.config.data_dir, "bad")},
                }],
            })
            with pytest.raises(CNIError) as err:
                await bad.add(RuntimeArgs("k8py-bad", path))
            assert err.value.plugin == "bridge" and err.value.command == "ADD"
            assert "not-a-cidr" in str(err.value)
            missing = CNIRunner({"cniVersion": "1.0.0", "name": "x",
                                 "plugins": [{"type": "no-such-plugin"}]})
            with pytest.raises(CNIError, match="not found"):
                await missing.add(RuntimeArgs("k8py-bad", path))
        finally:
            await netns.delete_netns(ns_name)
        assert not os.path.exists(path)

    asyncio.run(body())


def test_many_pods_set_up_and_torn_down_concurrently(env: Env) -> None:
    async def body() -> None:
        pn = env.network()
        ids = [f"{env.prefix}c{i}" for i in range(6)]
        sts = await asyncio.gather(*(pn.setup(s, "default", s) for s in ids))
        assert len({st.pod_ip for st in sts}) == len(ids)
        await asyncio.gather(*(pn.teardown(s) for s in ids))
        assert not set(pn.sandboxes()) & set(ids)
        leases = os.listdir(os.path.join(env.config.data_dir, "ipam", "k8py"))
        assert not {st.pod_ip for st in sts} & set(leases)

    asyncio.run(body())
