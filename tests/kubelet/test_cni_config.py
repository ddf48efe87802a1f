"""The CNI runner's config building and result parsing (no root needed)."""

from __future__ import annotations

from k8py.kubelet.network import CNIRunner, PodNetworkConfig, PortMapping, Result, RuntimeArgs


def test_chained_plugin_config_gets_name_version_prev_result_and_runtime_config() -> None:
    conf = PodNetworkConfig(pod_cidr="10.42.0.0/24", bridge="br-x", data_dir="/d").conflist()
    runner = CNIRunner(conf)
    rt = RuntimeArgs(
        "c1", "/run/netns/x", "eth0", (("K8S_POD_NAME", "p"),),
        {"portMappings": [PortMapping(80, 8080).to_cni()], "bandwidth": {}},
    )
    bridge, portmap = conf["plugins"]
    b = runner.plugin_config(bridge, rt, None)
    assert b["name"] == "k8py" and b["cniVersion"] == "1.0.0"
    assert b["bridge"] == "br-x" and b["ipMasq"] is False and b["isGateway"] is True
    assert b["ipam"]["ranges"] == [[{"subnet": "10.42.0.0/24"}]]
    assert b["ipam"]["dataDir"] == "/d/ipam"
    assert "prevResult" not in b and "runtimeConfig" not in b
    prev = {"cniVersion": "1.0.0", "ips": []}
    p = runner.plugin_config(portmap, rt, prev)
    assert p["prevResult"] == prev
    # only the capabilities the plugin declared
    assert p["runtimeConfig"] == {
        "portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]
    }
    env = rt.env("ADD", "/usr/lib/cni")
    assert env["CNI_COMMAND"] == "ADD" and env["CNI_NETNS"] == "/run/netns/x"
    assert env["CNI_ARGS"] == "K8S_POD_NAME=p" and env["CNI_IFNAME"] == "eth0"


def test_results_of_both_spec_versions_parse() -> None:
    v1 = Result.parse({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "br"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/n"}],
        "ips": [{"interface": 2, "address": "10.42.0.5/24", "gateway": "10.42.0.1"}],
    })
    assert [ip.ip for ip in v1.sandbox_ips()] == ["10.42.0.5"]
    v04 = Result.parse({
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "sandbox": "/n"}],
        "ips": [{"version": "6", "interface": 0, "address": "fd00::5/64"}],
    })
    assert v04.sandbox_ips()[0].version == 6 and v04.sandbox_ips()[0].ip == "fd00::5"
