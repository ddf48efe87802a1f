"""Defaulting per kind, as kube's SetObjectDefaults_* do, plus the create-time helpers."""

from __future__ import annotations

import copy

import pytest

from k8py.api import defaults
from k8py.api.quantity import QuantityError
from k8py.api.registry import REGISTRY


def res(group: str, version: str, kind: str):
    r = REGISTRY.by_kind(group, version, kind)
    assert r is not None
    return r


def dflt(group: str, version: str, kind: str, obj: dict) -> dict:
    defaults.apply_defaults(res(group, version, kind), obj)
    return obj


def pod(spec: dict | None = None, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", **meta},
            "spec": spec if spec is not None else {"containers": [{"name": "c", "image": "nginx"}]}}


# --------------------------------------------------------------------------- pods
def test_pod_spec_defaults():
    p = dflt("", "v1", "Pod", pod())
    s = p["spec"]
    assert s["restartPolicy"] == "Always"
    assert s["dnsPolicy"] == "ClusterFirst"
    assert s["terminationGracePeriodSeconds"] == 30
    assert s["schedulerName"] == "default-scheduler"
    assert s["securityContext"] == {}
    assert s["enableServiceLinks"] is True
    c = s["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"] == {}


def test_pod_defaults_keep_user_values():
    p = dflt("", "v1", "Pod", pod({"restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
                                   "enableServiceLinks": False, "schedulerName": "mine",
                                   "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never",
                                                   "terminationMessagePolicy": "FallbackToLogsOnError"}]}))
    s = p["spec"]
    assert (s["restartPolicy"], s["dnsPolicy"], s["terminationGracePeriodSeconds"]) == ("Never", "Default", 0)
    assert s["enableServiceLinks"] is False and s["schedulerName"] == "mine"
    assert s["containers"][0]["imagePullPolicy"] == "Never"
    assert s["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize("image, policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("docker.io/library/nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"),
    ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("registry.k8s.io/pause:3.9", "IfNotPresent"),
    ("Nginx", "IfNotPresent"),
    ("", "IfNotPresent"),
])
def test_image_pull_policy(image, policy):
    assert defaults.image_pull_policy(image) == policy


def test_pod_requests_default_to_limits_and_quantities_canonical():
    p = dflt("", "v1", "Pod", pod({"containers": [
        {"name": "c", "image": "x", "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"},
                                                  "requests": {"memory": "512Mi"}}}],
        "initContainers": [{"name": "i", "image": "x", "resources": {"limits": {"cpu": 1}}}]}))
    r = p["spec"]["containers"][0]["resources"]
    assert r["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert r["requests"] == {"memory": "512Mi", "cpu": "500m"}
    assert p["spec"]["initContainers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}


def test_resource_lists_round_up_to_milli():
    p = dflt("", "v1", "Pod", pod({"containers": [
        {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1n", "memory": "1000"}}}]}))
    assert p["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1m", "memory": "1k"}


def test_bad_quantity_raises_decode_error():
    with pytest.raises(QuantityError) as ei:
        dflt("", "v1", "Pod", pod({"containers": [{"name": "c", "image": "x",
                                                    "resources": {"limits": {"cpu": "lots"}}}]}))
    assert str(ei.value).startswith("quantities must match the regular expression")
    assert defaults.DecodeError is QuantityError


def test_probe_and_port_defaults():
    p = dflt("", "v1", "Pod", pod({"containers": [{
        "name": "c", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
        "startupProbe": {"grpc": {"port": 9000}},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
    }]}))
    c = p["spec"]["containers"][0]
    assert [pt["protocol"] for pt in c["ports"]] == ["TCP", "UDP"]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}


def test_env_field_ref_defaults():
    p = dflt("", "v1", "Pod", pod({"containers": [{"name": "c", "image": "x", "env": [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "B", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1024Ki"}}}]}]}))
    env = p["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["fieldRef"] == {"fieldPath": "metadata.name", "apiVersion": "v1"}
    assert env[1]["valueFrom"]["resourceFieldRef"] == {"resource": "limits.cpu", "divisor": "0"}
    assert env[2]["valueFrom"]["resourceFieldRef"]["divisor"] == "1Mi"


def test_volume_defaults():
    p = dflt("", "v1", "Pod", pod({"containers": [{"name": "c", "image": "x"}], "volumes": [
        {"name": "a"},
        {"name": "b", "secret": {"secretName": "s"}},
        {"name": "c", "configMap": {"name": "m", "defaultMode": 256}},
        {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "f", "hostPath": {"path": "/tmp"}},
        {"name": "g", "emptyDir": {"sizeLimit": "1024Mi"}},
        {"name": "h", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                                                                     "resources": {"requests": {"storage": "1Gi"}}}}}},
    ]}))
    v = {x["name"]: x for x in p["spec"]["volumes"]}
    assert v["a"]["emptyDir"] == {}
    assert v["b"]["secret"]["defaultMode"] == 420
    assert v["c"]["configMap"]["defaultMode"] == 256
    assert v["d"]["downwardAPI"]["defaultMode"] == 420
    assert v["d"]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert v["e"]["projected"]["defaultMode"] == 420
    assert v["e"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    assert v["f"]["hostPath"]["type"] == ""
    assert v["g"]["emptyDir"]["sizeLimit"] == "1Gi"
    assert v["h"]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"] == "Filesystem"


def test_host_network_ports():
    p = dflt("", "v1", "Pod", pod({"hostNetwork": True, "containers": [
        {"name": "c", "image": "x", "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9091}]}]}))
    assert [x["hostPort"] for x in p["spec"]["containers"][0]["ports"]] == [8080, 9091]


def test_pod_admission_defaults():
    p = dflt("", "v1", "Pod", pod())
    defaults.pod_admission_defaults(p)
    assert p["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]
    assert p["spec"]["priority"] == 0
    assert p["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
    # idempotent
    defaults.pod_admission_defaults(p)
    assert len(p["spec"]["tolerations"]) == 2


def test_pod_admission_respects_existing_tolerations_and_priority_class():
    p = pod({"containers": [{"name": "c", "image": "x"}], "priorityClassName": "high",
             "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                             {"operator": "Exists", "effect": "NoSchedule"}]})
    defaults.pod_admission_defaults(p, priority_class={"metadata": {"name": "high"}, "value": 1000,
                                                      "preemptionPolicy": "Never"})
    keys = [t.get("key") for t in p["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", None, "node.kubernetes.io/unreachable"]
    assert p["spec"]["priority"] == 1000
    assert p["spec"]["preemptionPolicy"] == "Never"
    q = pod({"containers": [{"name": "c", "image": "x"}], "tolerations": [{"operator": "Exists"}]})
    defaults.pod_admission_defaults(q)
    assert q["spec"]["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize("resources, qos", [
    ([{}], "BestEffort"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}], "Burstable"),
    ([{"requests": {"cpu": "100m"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ([{"requests": {"nvidia.com/gpu": "1"}}], "BestEffort"),
])
def test_pod_qos_and_prepare_create(resources, qos):
    p = pod({"containers": [{"name": f"c{i}", "image": "x", "resources": r} for i, r in enumerate(resources)]})
    assert defaults.pod_qos_class(p) == qos
    defaults.pod_prepare_create(p)
    assert p["status"] == {"phase": "Pending", "qosClass": qos}


# --------------------------------------------------------------------------- workloads
def template(labels: dict | None = None) -> dict:
    return {"metadata": {"labels": labels or {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}


def test_deployment_defaults():
    d = dflt("apps", "v1", "Deployment", {"metadata": {"name": "d"}, "spec": {"template": template()}})
    s = d["spec"]
    assert s["replicas"] == 1
    assert s["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert s["revisionHistoryLimit"] == 10
    assert s["progressDeadlineSeconds"] == 600
    ts = s["template"]["spec"]
    assert ts["restartPolicy"] == "Always" and ts["dnsPolicy"] == "ClusterFirst"
    assert "enableServiceLinks" not in ts
    assert ts["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_deployment_recreate_and_partial_rolling_update():
    d = dflt("apps", "v1", "Deployment", {"spec": {"strategy": {"type": "Recreate"}, "template": template()}})
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    d = dflt("apps", "v1", "Deployment", {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}},
                                                   "template": template(), "replicas": 0}})
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": "25%"}
    assert d["spec"]["replicas"] == 0


def test_replicaset_and_rc_defaults():
    rs = dflt("apps", "v1", "ReplicaSet", {"spec": {"template": template()}})
    assert rs["spec"]["replicas"] == 1
    rc = dflt("", "v1", "ReplicationController", {"metadata": {"name": "rc"}, "spec": {"template": template({"x": "y"})}})
    assert rc["spec"]["replicas"] == 1
    assert rc["spec"]["selector"] == {"x": "y"}
    assert rc["metadata"]["labels"] == {"x": "y"}
    assert rc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_statefulset_defaults():
    s = dflt("apps", "v1", "StatefulSet", {"spec": {"serviceName": "svc", "template": template(),
                                                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                                                        "accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": "1024Mi"}}}}]}})
    sp = s["spec"]
    assert sp["podManagementPolicy"] == "OrderedReady"
    assert sp["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sp["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert sp["replicas"] == 1 and sp["revisionHistoryLimit"] == 10
    vct = sp["volumeClaimTemplates"][0]
    assert vct["spec"]["volumeMode"] == "Filesystem"
    assert vct["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert vct["status"] == {"phase": "Pending"}
    s2 = dflt("apps", "v1", "StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": template()}})
    assert s2["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemonset_defaults():
    d = dflt("apps", "v1", "DaemonSet", {"spec": {"template": template()}})
    assert d["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert d["spec"]["revisionHistoryLimit"] == 10


def test_job_defaults():
    t = template({"app": "j"})
    t["spec"]["restartPolicy"] = "Never"
    j = dflt("batch", "v1", "Job", {"metadata": {"name": "j"}, "spec": {"template": t}})
    s = j["spec"]
    assert (s["completions"], s["parallelism"], s["backoffLimit"]) == (1, 1, 6)
    assert s["completionMode"] == "NonIndexed" and s["suspend"] is False
    assert s["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in s
    assert j["metadata"]["labels"] == {"app": "j"}
    j2 = dflt("batch", "v1", "Job", {"spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
                                              "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                                              "onPodConditions": [{"type": "X"}]}]},
                                              "template": t}})
    assert "completions" not in j2["spec"] and j2["spec"]["parallelism"] == 3
    assert j2["spec"]["backoffLimit"] == 2147483647
    assert j2["spec"]["podReplacementPolicy"] == "Failed"
    assert j2["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_prepare_create():
    t = template({"app": "j"})
    j = {"metadata": {"name": "pi", "namespace": "default"}, "spec": {"template": t}}
    defaults.job_prepare_create(j, "uid-1")
    assert j["metadata"]["uid"] == "uid-1"
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}}
    assert j["spec"]["template"]["metadata"]["labels"] == {
        "app": "j", "job-name": "pi", "batch.kubernetes.io/job-name": "pi", "controller-uid": "uid-1",
        "batch.kubernetes.io/controller-uid": "uid-1"}
    assert j["metadata"]["labels"] == j["spec"]["template"]["metadata"]["labels"]
    manual = {"metadata": {"name": "m", "uid": "u2", "labels": {"mine": "1"}},
              "spec": {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}}, "template": template({"a": "b"})}}
    defaults.job_prepare_create(manual, "ignored")
    assert manual["metadata"]["uid"] == "u2"
    assert manual["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert manual["spec"]["template"]["metadata"]["labels"] == {"a": "b"}
    assert manual["metadata"]["labels"] == {"mine": "1"}


def test_cronjob_defaults():
    t = template()
    c = dflt("batch", "v1", "CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": t}}}})
    s = c["spec"]
    assert s["concurrencyPolicy"] == "Allow" and s["suspend"] is False
    assert s["successfulJobsHistoryLimit"] == 3 and s["failedJobsHistoryLimit"] == 1
    js = s["jobTemplate"]["spec"]
    assert "backoffLimit" not in js and "completions" not in js
    assert js["template"]["spec"]["terminationGracePeriodSeconds"] == 30


# --------------------------------------------------------------------------- core
def test_service_defaults():
    s = dflt("", "v1", "Service", {"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}, "ports": [
        {"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}})
    sp = s["spec"]
    assert sp["type"] == "ClusterIP" and sp["sessionAffinity"] == "None"
    assert sp["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert sp["ports"][1]["targetPort"] == "dns"
    assert sp["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in sp
    assert sp["ipFamilyPolicy"] == "SingleStack" and sp["ipFamilies"] == ["IPv4"]
    assert s["status"] == {"loadBalancer": {}}


def test_service_type_dependent_defaults():
    np_ = dflt("", "v1", "Service", {"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 0}]}})
    assert np_["spec"]["externalTrafficPolicy"] == "Cluster"
    assert np_["spec"]["ports"][0]["targetPort"] == 80
    lb = dflt("", "v1", "Service", {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    en = dflt("", "v1", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "ipFamilies" not in en["spec"] and "internalTrafficPolicy" not in en["spec"]
    ci = dflt("", "v1", "Service", {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}})
    assert ci["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    none = dflt("", "v1", "Service", {"spec": {"sessionAffinityConfig": {"clientIP": {}}, "ports": [{"port": 1}]}})
    assert "sessionAffinityConfig" not in none["spec"]
    headless = dflt("", "v1", "Service", {"spec": {"clusterIP": "None", "ports": [{"port": 1}]}})
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"


def test_namespace_defaults():
    ns = dflt("", "v1", "Namespace", {"metadata": {"name": "team-a"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert "spec" not in ns
    assert ns["status"] == {"phase": "Active"}
    stored = dflt("", "v1", "Namespace", {"metadata": {"name": "x", "uid": "u", "resourceVersion": "5",
                                                       "labels": {"a": "b"}},
                                          "spec": {}, "status": {"phase": "Terminating"}})
    assert stored["spec"] == {}
    assert stored["status"]["phase"] == "Terminating"
    assert stored["metadata"]["labels"] == {"a": "b", "kubernetes.io/metadata.name": "x"}


def test_namespace_prepare_create():
    ns = {"metadata": {"name": "a"}}
    defaults.namespace_prepare_create(ns)
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    ns = {"metadata": {"name": "b"}, "spec": {"finalizers": ["x.io/f"]}, "status": {"phase": "Terminating"}}
    defaults.namespace_prepare_create(ns)
    assert ns["spec"] == {"finalizers": ["x.io/f", "kubernetes"]} and ns["status"] == {"phase": "Active"}
    defaults.namespace_prepare_create(ns)
    assert ns["spec"] == {"finalizers": ["x.io/f", "kubernetes"]}


def test_node_pv_pvc_secret_defaults():
    node = dflt("", "v1", "Node", {"status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    pv = dflt("", "v1", "PersistentVolume", {"spec": {"capacity": {"storage": "10240Mi"}, "hostPath": {"path": "/x"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["spec"]["capacity"] == {"storage": "10Gi"}
    assert pv["spec"]["hostPath"]["type"] == ""
    assert pv["status"] == {"phase": "Pending"}
    pvc = dflt("", "v1", "PersistentVolumeClaim", {"spec": {"resources": {"requests": {"storage": "1000M"}}}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1G"
    assert pvc["status"] == {"phase": "Pending"}
    assert dflt("", "v1", "Secret", {"data": {}})["type"] == "Opaque"
    assert dflt("", "v1", "Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"


def test_secret_string_data_merges_into_data():
    s = dflt("", "v1", "Secret", {"data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "u": "jöe"}})
    assert "stringData" not in s
    assert s["data"] == {"a": "bmV3", "keep": "eA==", "u": "asO2ZQ=="}
    s = dflt("", "v1", "Secret", {"stringData": {}})
    assert "stringData" not in s and "data" not in s


def test_ill_typed_input_is_left_for_validation():
    for kind, obj in [("Pod", {"metadata": None, "spec": {"containers": 5, "volumes": "x", "initContainers": [1]}}),
                      ("ReplicationController", {"metadata": None, "spec": {"template": {"metadata": None}}}),
                      ("Service", {"spec": {"ports": {"a": 1}}, "status": {"loadBalancer": "x"}}),
                      ("LimitRange", {"spec": {"limits": [{"type": "Container", "max": "x", "min": 3}]}})]:
        dflt("", "v1", kind, obj)


def test_endpoints_limitrange_quota_defaults():
    ep = dflt("", "v1", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    lr = dflt("", "v1", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"memory": "0.5Gi"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}})
    c = lr["spec"]["limits"][0]
    assert c["default"] == {"memory": "512Mi", "cpu": "2"}
    assert c["defaultRequest"] == {"memory": "512Mi", "cpu": "2"}
    assert "default" not in lr["spec"]["limits"][1]
    rq = dflt("", "v1", "ResourceQuota", {"spec": {"hard": {"pods": "10", "requests.memory": "2048Mi"}}})
    assert rq["spec"]["hard"] == {"pods": "10", "requests.memory": "2Gi"}


def test_pod_template_defaults():
    pt = dflt("", "v1", "PodTemplate", {"template": template()})
    assert pt["template"]["spec"]["restartPolicy"] == "Always"


# --------------------------------------------------------------------------- other groups
def test_hpa_defaults():
    h = dflt("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert h["spec"]["minReplicas"] == 1
    assert h["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    h2 = dflt("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {
        "maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
    b = h2["spec"]["behavior"]
    assert b["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert b["scaleDown"] == {"selectPolicy": "Max", "stabilizationWindowSeconds": 60,
                              "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    h1 = dflt("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert h1["spec"] == {"maxReplicas": 3, "minReplicas": 1}


def test_networking_defaults():
    np_ = dflt("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}, "ingress": [
        {"ports": [{"port": 80}]}]}})
    assert np_["spec"]["policyTypes"] == ["Ingress"]
    assert np_["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"
    np2 = dflt("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}, "egress": [{}]}})
    assert np2["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ic = dflt("networking.k8s.io", "v1", "IngressClass", {"spec": {"controller": "a.io/b", "parameters": {
        "kind": "K", "name": "n"}}})
    assert ic["spec"]["parameters"]["scope"] == "Cluster"
    es = dflt("discovery.k8s.io", "v1", "EndpointSlice", {"ports": [{"port": 80}]})
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


def test_rbac_storage_scheduling_defaults():
    rb = dflt("rbac.authorization.k8s.io", "v1", "RoleBinding", {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
                     {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]})
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s["apiGroup"] for s in rb["subjects"]] == ["rbac.authorization.k8s.io", "rbac.authorization.k8s.io", ""]
    sc = dflt("storage.k8s.io", "v1", "StorageClass", {"provisioner": "x.io/y"})
    assert sc["reclaimPolicy"] == "Delete" and sc["volumeBindingMode"] == "Immediate"
    pc = dflt("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"


def test_kinds_without_defaults_are_untouched():
    for group, version, kind in (("", "v1", "ConfigMap"), ("coordination.k8s.io", "v1", "Lease"),
                                 ("", "v1", "ServiceAccount"), ("policy", "v1", "PodDisruptionBudget"),
                                 ("events.k8s.io", "v1", "Event"), ("apps", "v1", "ControllerRevision")):
        obj = {"metadata": {"name": "x"}, "data": {"a": "b"}}
        before = copy.deepcopy(obj)
        dflt(group, version, kind, obj)
        assert obj == before


def test_defaulting_is_idempotent():
    objs = [("", "v1", "Pod", pod()),
            ("apps", "v1", "Deployment", {"spec": {"template": template()}}),
            ("", "v1", "Service", {"spec": {"ports": [{"port": 80}]}}),
            ("batch", "v1", "Job", {"spec": {"template": template()}})]
    for g, v, k, o in objs:
        dflt(g, v, k, o)
        once = copy.deepcopy(o)
        dflt(g, v, k, o)
        assert o == once, k
