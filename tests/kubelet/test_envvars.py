"""The container environment: $(VAR) expansion, service links, envFrom, valueFrom
(ConfigMap, Secret, fieldRef, resourceFieldRef) and kube's error messages."""

from __future__ import annotations

import asyncio
import base64

import pytest

from k8py.kubelet import envvars
from k8py.kubelet.envvars import CreateContainerConfigError, container_env, expand, mapping_func_for

CTX = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}

# the behaviours of kube's expansion package, case by case
EXPANSIONS = [
    ("$(VAR_A)", "A"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("$(VAR_A)-1", "A-1"),
    ("___$(VAR_B)___", "___B___"),
    ("___$(VAR_C)", "___C"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
    ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
    ("$(VAR_REF)", "$(VAR_A)"),
    ("%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
    ("foo$(VAR_EMPTY)bar", "foobar"),
    ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
    ("f00__(VAR_A)__", "f00__(VAR_A)__"),
    ("$?_boo_$!", "$?_boo_$!"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
    ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("$VAR_A)", "$VAR_A)"),
    ("${VAR_A}", "${VAR_A}"),
    ("$(VAR_B)_______$(A", "B_______$(A"),
    ("$(VAR_C)_______$(", "C_______$("),
    ("$(VAR_A)foobarzab$", "Afoobarzab$"),
    ("foo-\\$(VAR_A", "foo-\\$(VAR_A"),
    ("--$($($($($--", "--$($($($($--"),
    ("$($($($($--foo$(", "$($($($($--foo$("),
    ("foo0--$($($($(", "foo0--$($($($("),
    ("$(foo$$var)", "$(foo$$var)"),
    ("\n", "\n"),
    ("$()", "$()"),
]


@pytest.mark.parametrize("value,expected", EXPANSIONS)
def test_expand_like_kube(value: str, expected: str) -> None:
    assert expand(value, mapping_func_for(CTX)) == expected
    # the same with the names split over two contexts (declared env, then service env)
    dual = mapping_func_for({"VAR_A": "A", "VAR_EMPTY": ""}, {"VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)"})
    assert expand(value, dual) == expected


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


OBJECTS = {
    ("configmaps", "ns1", "cfg"): {"data": {"LOG_LEVEL": "debug", "mode": "fast", "1bad": "x", "a=b": "y"}},
    ("secrets", "ns1", "sec"): {"data": {"PASSWORD": b64("s3cr3t"), "TOKEN": b64("t0k")}},
}


async def get(kind: str, ns: str, name: str) -> dict | None:
    return OBJECTS.get((kind, ns, name))


POD = {
    "metadata": {"name": "web-0", "namespace": "ns1", "uid": "1234-abcd",
                 "labels": {"app": "web", "tier": "front"},
                 "annotations": {"note": 'say "hi"\n', "b": "2"}},
    "spec": {"nodeName": "node-a", "serviceAccountName": "robot", "containers": []},
}


def env_of(container: dict, **kw) -> dict[str, str]:
    kw.setdefault("pod_ip", "10.88.0.7")
    kw.setdefault("pod_ips", ["10.88.0.7", "fd00::7"])
    kw.setdefault("host_ip", "192.168.1.2")
    kw.setdefault("node_name", "node-a")
    kw.setdefault("node_allocatable", {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "20Gi"})
    kw.setdefault("service_env", {})
    result = asyncio.run(container_env(POD, container, get, **kw))
    names = [n for n, _ in result]
    assert len(names) == len(set(names)), "names are unique"
    return dict(result)


def test_env_values_expansion_and_order() -> None:
    c = {"name": "app", "env": [
        {"name": "FOO", "value": "bar"},
        {"name": "ZOO", "value": "$(FOO)-1"},
        {"name": "BLU", "value": "$(ZOO)-2"},
        {"name": "EARLY", "value": "$(LATE)"},        # declared later: left as written
        {"name": "LATE", "value": "late"},
        {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST):443"},
        {"name": "EMPTY", "value": ""},
    ]}
    result = asyncio.run(container_env(POD, c, get, service_env={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                                                 "FOO": "overridden"}))
    assert result[0] == ("KUBERNETES_SERVICE_HOST", "10.96.0.1")       # service vars first
    env = dict(result)
    assert env["FOO"] == "bar" and env["ZOO"] == "bar-1" and env["BLU"] == "bar-1-2"
    assert env["EARLY"] == "$(LATE)" and env["SVC"] == "10.96.0.1:443" and env["EMPTY"] == ""


def test_env_from_configmap_and_secret_with_prefix() -> None:
    warnings: list[tuple[str, str]] = []
    c = {"name": "app",
         "envFrom": [{"configMapRef": {"name": "cfg"}},
                     {"secretRef": {"name": "sec"}, "prefix": "S_"},
                     {"configMapRef": {"name": "absent", "optional": True}}],
         "env": [{"name": "mode", "value": "slow"}, {"name": "X", "value": "$(S_TOKEN)"}]}
    env = env_of(c, warn=lambda r, m: warnings.append((r, m)))
    assert env["LOG_LEVEL"] == "debug" and env["mode"] == "slow"       # env overrides envFrom
    assert env["S_PASSWORD"] == "s3cr3t" and env["X"] == "t0k"
    assert "1bad" not in env and "a=b" not in env
    assert warnings == [("InvalidEnvironmentVariableNames",
                         "Keys [1bad, a=b] from the EnvFrom configMap ns1/cfg were skipped since they are "
                         "considered invalid environment variable names.")]


def test_value_from_keys_and_errors() -> None:
    c = {"name": "app", "env": [
        {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LOG_LEVEL"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
        {"name": "OPT1", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}},
    ]}
    env = env_of(c)
    assert env["LVL"] == "debug" and env["PW"] == "s3cr3t"
    assert "OPT1" not in env and "OPT2" not in env

    cases = [
        ({"envFrom": [{"configMapRef": {"name": "x"}}]}, 'configmap "x" not found'),
        ({"envFrom": [{"secretRef": {"name": "y"}}]}, 'secret "y" not found'),
        ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
         "couldn't find key k in ConfigMap ns1/cfg"),
        ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]},
         "couldn't find key k in Secret ns1/sec"),
        ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}]},
         'configmap "x" not found'),
    ]
    for spec, message in cases:
        with pytest.raises(CreateContainerConfigError) as err:
            env_of({"name": "app", **spec})
        assert err.value.message == message and err.value.reason == "CreateContainerConfigError"


def fref(path: str) -> dict:
    return {"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def test_field_refs() -> None:
    paths = {
        "NAME": "metadata.name", "NS": "metadata.namespace", "UID": "metadata.uid",
        "APP": "metadata.labels['app']", "NOPE": "metadata.labels['missing']",
        "NOTE": "metadata.annotations['note']", "LABELS": "metadata.labels",
        "ANNOTATIONS": "metadata.annotations", "NODE": "spec.nodeName", "SA": "spec.serviceAccountName",
        "HOST_IP": "status.hostIP", "HOST_IPS": "status.hostIPs", "POD_IP": "status.podIP",
        "POD_IPS": "status.podIPs",
    }
    env = env_of({"name": "app", "env": [{"name": n, **fref(p)} for n, p in paths.items()]},
                 host_ips=["192.168.1.2", "fd00::2"])
    assert env["NAME"] == "web-0" and env["NS"] == "ns1" and env["UID"] == "1234-abcd"
    assert env["APP"] == "web" and env["NOPE"] == "" and env["NOTE"] == 'say "hi"\n'
    assert env["LABELS"] == 'app="web"\ntier="front"'
    assert env["ANNOTATIONS"] == 'b="2"\nnote="say \\"hi\\"\\n"'
    assert env["NODE"] == "node-a" and env["SA"] == "robot"
    assert env["HOST_IP"] == "192.168.1.2" and env["HOST_IPS"] == "192.168.1.2,fd00::2"
    assert env["POD_IP"] == "10.88.0.7" and env["POD_IPS"] == "10.88.0.7,fd00::7"


def rref(resource: str, divisor: str | None = None, **kw) -> dict:
    ref = {"resource": resource, **kw}
    if divisor is not None:
        ref["divisor"] = divisor
    return {"valueFrom": {"resourceFieldRef": ref}}


def test_resource_field_refs_with_divisors_and_node_defaults() -> None:
    limited = {"name": "app", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"},
                                            "requests": {"cpu": "100m", "memory": "32Mi"}},
               "env": [
                   {"name": "CPU_LIMIT", **rref("limits.cpu")},               # 250m rounds up to 1
                   {"name": "CPU_LIMIT_M", **rref("limits.cpu", "1m")},
                   {"name": "CPU_REQ_M", **rref("requests.cpu", "1m")},
                   {"name": "MEM_LIMIT", **rref("limits.memory")},
                   {"name": "MEM_LIMIT_MI", **rref("limits.memory", "1Mi")},
                   {"name": "MEM_REQ_K", **rref("requests.memory", "1k")},       # 33554432 / 1000 rounds up
                   {"name": "EPH", **rref("limits.ephemeral-storage", "1Gi")},   # node allocatable
               ]}
    env = env_of(limited)
    assert env["CPU_LIMIT"] == "1" and env["CPU_LIMIT_M"] == "250" and env["CPU_REQ_M"] == "100"
    assert env["MEM_LIMIT"] == str(64 * 2**20) and env["MEM_LIMIT_MI"] == "64"
    assert env["MEM_REQ_K"] == "33555"
    assert env["EPH"] == "20"

    unlimited = {"name": "app", "env": [
        {"name": "CPU", **rref("limits.cpu")},
        {"name": "MEM_MI", **rref("limits.memory", "1Mi")},
        {"name": "REQ_CPU", **rref("requests.cpu")},
        {"name": "OTHER", **rref("limits.cpu", "1m", containerName="side")},
    ]}
    pod_with_side = {**POD, "spec": {**POD["spec"], "containers": [
        unlimited, {"name": "side", "resources": {"limits": {"cpu": "1500m"}}}]}}
    result = dict(asyncio.run(container_env(pod_with_side, unlimited, get,
                                            node_allocatable={"cpu": "3", "memory": "2Gi"})))
    assert result == {"CPU": "3", "MEM_MI": "2048", "REQ_CPU": "0", "OTHER": "1500"}


def test_service_env_vars() -> None:
    services = [
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
        {"metadata": {"name": "my-db", "namespace": "ns1"},
         "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 5432}, {"name": "metrics", "port": 9187,
                                                                         "protocol": "UDP"}]}},
        {"metadata": {"name": "headless", "namespace": "ns1"}, "spec": {"clusterIP": "None",
                                                                        "ports": [{"port": 80}]}},
        {"metadata": {"name": "other", "namespace": "ns2"}, "spec": {"clusterIP": "10.96.0.30",
                                                                     "ports": [{"port": 80}]}},
        {"metadata": {"name": "v6", "namespace": "ns1"}, "spec": {"clusterIP": "fd00::10", "ports": [{"port": 80}]}},
    ]
    env = envvars.service_env_vars(services, "ns1", True)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
    assert env["KUBERNETES_PORT_443_TCP_PORT"] == "443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert env["MY_DB_SERVICE_HOST"] == "10.96.0.20" and env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_METRICS"] == "9187"
    assert env["MY_DB_PORT"] == "tcp://10.96.0.20:5432"
    assert env["MY_DB_PORT_9187_UDP"] == "udp://10.96.0.20:9187"
    assert env["V6_PORT"] == "tcp://[fd00::10]:80"
    assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in env)
    # enableServiceLinks: false keeps only the master service
    only_master = envvars.service_env_vars(services, "ns1", False)
    assert {k.split("_")[0] for k in only_master} == {"KUBERNETES"}
    assert envvars.service_env_vars(services, "ns2", True)["OTHER_SERVICE_PORT"] == "80"


def test_unsupported_paths_raise() -> None:
    with pytest.raises(CreateContainerConfigError, match="unsupported fieldPath: spec.bogus"):
        env_of({"name": "a", "env": [{"name": "X", **fref("spec.bogus")}]})
    with pytest.raises(CreateContainerConfigError, match="unsupported container resource : limits.gpu"):
        env_of({"name": "a", "env": [{"name": "X", **rref("limits.gpu")}]})
