"""Validation per kind with kube's exact messages, plus FieldError/Status formatting."""

from __future__ import annotations

import copy
import os

import pytest

from k8py.api import defaults, validation
from k8py.api.registry import REGISTRY
from k8py.api.validation import FieldError

SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
             "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
         "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
NAME_PART = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
               "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
              "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
PORT_RANGE = "must be between 1 and 65535, inclusive"


def res(group: str, version: str, kind: str):
    r = REGISTRY.by_kind(group, version, kind)
    assert r is not None
    return r


def errors(gvk: tuple[str, str, str], obj: dict, old: dict | None = None, default: bool = True) -> list[str]:
    r = res(*gvk)
    obj = copy.deepcopy(obj)
    if default:
        defaults.apply_defaults(r, obj)
        if old is not None:
            old = copy.deepcopy(old)
            defaults.apply_defaults(r, old)
    return [e.message() for e in validation.validate(r, obj, old)]


POD = ("", "v1", "Pod")
SVC = ("", "v1", "Service")
DEPLOY = ("apps", "v1", "Deployment")
RS = ("apps", "v1", "ReplicaSet")
STS = ("apps", "v1", "StatefulSet")
DS = ("apps", "v1", "DaemonSet")
JOB = ("batch", "v1", "Job")
CRON = ("batch", "v1", "CronJob")


def pod(spec_extra: dict | None = None, container: dict | None = None, **meta) -> dict:
    c = {"name": "app", "image": "nginx:1.25"}
    c.update(container or {})
    spec = {"containers": [c]}
    spec.update(spec_extra or {})
    return {"metadata": {"name": "web", "namespace": "default", **meta}, "spec": spec}


def one(gvk, obj, old=None, default=True) -> str:
    errs = errors(gvk, obj, old, default)
    assert len(errs) == 1, errs
    return errs[0]


# =========================================================================== formatting
def test_field_error_message_formats():
    assert FieldError("FieldValueRequired", "spec.x", "", "").message() == "spec.x: Required value"
    assert FieldError("FieldValueRequired", "spec.x", "", "why").message() == "spec.x: Required value: why"
    assert FieldError("FieldValueInvalid", "a", 5, "bad").message() == "a: Invalid value: 5: bad"
    assert FieldError("FieldValueInvalid", "a", None, "bad").message() == "a: Invalid value: null: bad"
    assert FieldError("FieldValueInvalid", "a", True, "bad").message() == "a: Invalid value: true: bad"
    assert FieldError("FieldValueInvalid", "a", 'q"\n', "x").message() == 'a: Invalid value: "q\\"\\n": x'
    assert FieldError("FieldValueInvalid", "a", {"b": "c", "a": "d"}, "x").message() == \
        'a: Invalid value: map[string]string{"a":"d", "b":"c"}: x'
    assert FieldError("FieldValueInvalid", "a", ["x", "y"], "z").message() == 'a: Invalid value: []string{"x", "y"}: z'
    assert FieldError("FieldValueDuplicate", "a", "x", "").message() == 'a: Duplicate value: "x"'
    assert FieldError("FieldValueForbidden", "a", "", "no").message() == "a: Forbidden: no"
    assert FieldError("FieldValueTooLong", "a", "", "must have at most 3 bytes").message() == \
        "a: Too long: must have at most 3 bytes"
    assert FieldError("FieldValueTooMany", "a", 5, "must have at most 3 items").message() == \
        "a: Too many: 5: must have at most 3 items"
    assert FieldError("FieldValueNotFound", "a", "v", "").message() == 'a: Not found: "v"'
    assert FieldError("FieldValueTypeInvalid", "a", "v", "t").message() == 'a: Invalid value: "v": t'


def test_invalid_message_and_status():
    e1 = FieldError("FieldValueRequired", "spec.containers[0].image", "", "")
    e2 = FieldError("FieldValueInvalid", "metadata.name", "Foo", "bad")
    assert validation.invalid_message("Pod", "x", [e1]) == 'Pod "x" is invalid: spec.containers[0].image: Required value'
    assert validation.invalid_message("Pod", "x", [e1, e2, e1]) == \
        'Pod "x" is invalid: [spec.containers[0].image: Required value, metadata.name: Invalid value: "Foo": bad]'
    assert validation.invalid_message("Deployment.apps", "d", [e1]).startswith('Deployment.apps "d" is invalid: ')
    assert validation.invalid_message("Deployment", "d", [e1], group="apps").startswith('Deployment.apps "d"')
    assert validation.invalid_message(res(*DEPLOY), "d", [e1]).startswith('Deployment.apps "d"')
    assert validation.invalid_message("Pod", "x", []) == 'Pod "x" is invalid'
    st = validation.invalid_status(res(*DEPLOY), "d", [e1, e2])
    assert st["code"] == 422 and st["reason"] == "Invalid" and st["status"] == "Failure"
    assert st["details"] == {"name": "d", "group": "apps", "kind": "Deployment", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"},
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "Foo": bad', "field": "metadata.name"}]}
    assert "group" not in validation.invalid_status("Pod", "p", [e1])["details"]


# =========================================================================== metadata
def test_valid_pod_passes():
    assert errors(POD, pod()) == []


@pytest.mark.parametrize("meta, want", [
    ({"name": "Foo_"}, f'metadata.name: Invalid value: "Foo_": {SUBDOMAIN}'),
    ({"name": ""}, "metadata.name: Required value: name or generateName is required"),
    ({"name": "a" * 254}, f'metadata.name: Invalid value: "{"a" * 254}": must be no more than 253 characters'),
    ({"namespace": ""}, "metadata.namespace: Required value"),
    ({"namespace": "Bad"}, f'metadata.namespace: Invalid value: "Bad": {LABEL}'),
    ({"namespace": "a.b"}, 'metadata.namespace: Invalid value: "a.b": must not contain dots'),
    ({"labels": {"a b": "x"}}, f'metadata.labels: Invalid value: "a b": {NAME_PART}'),
    ({"labels": {"a": "x y"}}, f'metadata.labels: Invalid value: "x y": {LABEL_VALUE}'),
    ({"labels": {"a": "v" * 64}}, f'metadata.labels: Invalid value: "{"v" * 64}": must be no more than 63 '
                                  "characters"),
    ({"annotations": {"a/b/c": "x"}}, 'metadata.annotations: Invalid value: "a/b/c": a valid label key must consist '
                                      "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                      "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                                      "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
                                      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    ({"annotations": {"big": "x" * (256 * 1024)}}, "metadata.annotations: Too long: must have at most 262144 bytes"),
    ({"finalizers": ["foo"]}, 'metadata.finalizers[0]: Invalid value: "foo": name is neither a standard finalizer '
                              "name nor is it fully qualified"),
    ({"finalizers": ["a b/c"]}, 'metadata.finalizers: Invalid value: "a b/c": prefix part ' + SUBDOMAIN),
    ({"generation": -1}, "metadata.generation: Invalid value: -1: must be greater than or equal to 0"),
    ({"generateName": "Web-"}, f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN}'),
])
def test_object_meta(meta, want):
    p = pod()
    p["metadata"].update(meta)
    assert want in errors(POD, p)


def test_annotation_keys_are_case_insensitive_and_finalizer_conflict():
    p = pod(annotations={"Example.COM/Key": "v"}, finalizers=["orphan", "foregroundDeletion"])
    assert errors(POD, p) == ['metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
                              "finalizer orphan and foregroundDeletion cannot be both set"]


@pytest.mark.parametrize("refs, want", [
    ([{"apiVersion": "", "kind": "ReplicaSet", "name": "r", "uid": "u"}],
     'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty'),
    ([{"apiVersion": "apps/v1", "kind": "", "name": "r", "uid": "u"}],
     'metadata.ownerReferences.kind: Invalid value: "": must not be empty'),
    ([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"}],
     'metadata.ownerReferences.name: Invalid value: "": must not be empty'),
    ([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": ""}],
     'metadata.ownerReferences.uid: Invalid value: "": must not be empty'),
])
def test_owner_references(refs, want):
    assert errors(POD, pod(ownerReferences=refs)) == [want]


def test_owner_references_controller_and_banned():
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True}]
    (msg,) = errors(POD, pod(ownerReferences=refs))
    assert msg.startswith("metadata.ownerReferences: Invalid value: []v1.OwnerReference{")
    assert msg.endswith('Only one reference can have Controller set to true. Found "true" in references for '
                        "ReplicaSet/a and ReplicaSet/b")
    (msg,) = errors(POD, pod(ownerReferences=[{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]))
    assert msg.endswith(": /v1, Kind=Event is disallowed from being an owner")


def test_metadata_update_rules():
    old = pod(uid="u1", resourceVersion="5", creationTimestamp="2024-01-01T00:00:00Z")
    new = copy.deepcopy(old)
    assert errors(POD, new, old) == []
    new["metadata"]["name"] = "other"
    assert 'metadata.name: Invalid value: "other": field is immutable' in errors(POD, new, old)
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "u2"
    assert errors(POD, new, old) == ['metadata.uid: Invalid value: "u2": field is immutable']
    new = copy.deepcopy(old)
    del new["metadata"]["resourceVersion"]
    assert errors(POD, new, old) == ['metadata.resourceVersion: Invalid value: "": must be specified for an update']
    new = copy.deepcopy(old)
    new["metadata"]["creationTimestamp"] = "2024-02-01T10:00:00Z"
    assert errors(POD, new, old) == ["metadata.creationTimestamp: Invalid value: 2024-02-01 10:00:00 +0000 UTC: "
                                     "field is immutable"]
    old2 = copy.deepcopy(old)
    old2["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z"
    old2["metadata"]["finalizers"] = ["a.io/x"]
    new = copy.deepcopy(old2)
    new["metadata"]["finalizers"] = ["a.io/x", "b.io/y"]
    assert errors(POD, new, old2) == ['metadata.finalizers: Forbidden: no new finalizers can be added if the object '
                                      'is being deleted, found new finalizers []string{"b.io/y"}']
    old3 = pod(uid="u1", resourceVersion="5", generation=3)
    new = copy.deepcopy(old3)
    new["metadata"]["generation"] = 2
    assert errors(POD, new, old3) == ["metadata.generation: Invalid value: 2: must not be decremented"]


# =========================================================================== pods
@pytest.mark.parametrize("container, want", [
    ({"image": ""}, "spec.containers[0].image: Required value"),
    ({"name": ""}, "spec.containers[0].name: Required value"),
    ({"name": "Web"}, f'spec.containers[0].name: Invalid value: "Web": {LABEL}'),
    ({"image": " nginx"}, 'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
                          "whitespace"),
    ({"imagePullPolicy": "Sometimes"}, 'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": '
                                       'supported values: "Always", "IfNotPresent", "Never"'),
    ({"terminationMessagePolicy": "X"}, 'spec.containers[0].terminationMessagePolicy: Unsupported value: "X": '
                                        'supported values: "File", "FallbackToLogsOnError"'),
    ({"ports": [{"containerPort": 0}]}, "spec.containers[0].ports[0].containerPort: Required value"),
    ({"ports": [{"containerPort": 70000}]}, f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
                                            f"{PORT_RANGE}"),
    ({"ports": [{"containerPort": 80, "hostPort": -1}]}, f"spec.containers[0].ports[0].hostPort: Invalid value: -1: "
                                                         f"{PORT_RANGE}"),
    ({"ports": [{"containerPort": 80, "protocol": "ICMP"}]},
     'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    ({"ports": [{"containerPort": 80, "name": "Http"}]},
     'spec.containers[0].ports[0].name: Invalid value: "Http": must contain only alpha-numeric characters (a-z, 0-9), '
     "and hyphens (-)"),
    ({"ports": [{"containerPort": 80, "name": "8080"}]},
     'spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one letter (a-z)'),
    ({"ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]},
     'spec.containers[0].ports[1].name: Duplicate value: "web"'),
    ({"ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}]},
     'spec.containers[0].ports[1].hostPort: Duplicate value: "TCP//80"'),
    ({"env": [{"name": "1BAD", "value": "x"}]},
     'spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable name must consist of '
     "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
     "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"),
    ({"env": [{"name": ""}]}, "spec.containers[0].env[0].name: Required value"),
    ({"env": [{"name": "A", "valueFrom": {}}]},
     'spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, '
     "`configMapKeyRef` or `secretKeyRef`"),
    ({"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
     'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'),
    ({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}]},
     'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.foo": error converting '
     "fieldPath: field label not supported: spec.foo"),
    ({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]},
     'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "metadata.labels": supported '
     'values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
     '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'),
    ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a/b"}}}]},
     f'spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "a/b": {CONFIG_KEY}'),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     "spec.containers[0].env[0].valueFrom.secretKeyRef.key: Required value"),
    ({"env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.foo"}}}]},
     'spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: "limits.foo": supported '
     'values: "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", '
     '"requests.ephemeral-storage", "requests.memory"'),
    ({"envFrom": [{}]}, 'spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or '
                        "`secretRef`"),
    ({"volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
     'spec.containers[0].volumeMounts[0].name: Not found: "missing"'),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
     'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ({"resources": {"requests": {"memory": "-1"}}},
     'spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0'),
    ({"resources": {"limits": {"foo": "1"}}},
     'spec.containers[0].resources.limits[foo]: Invalid value: "foo": must be a standard resource type or fully '
     "qualified"),
    ({"resources": {"limits": {"pods": "1"}}},
     'spec.containers[0].resources.limits[pods]: Invalid value: "pods": must be a standard resource for containers'),
    ({"resources": {"limits": {"example.com/gpu": "1500m"}, "requests": {"example.com/gpu": "1500m"}}},
     "spec.containers[0].resources.limits[example.com/gpu]: Invalid value: 1500m: must be an integer"),
    ({"resources": {"requests": {"example.com/gpu": "1"}}},
     "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"),
    ({"resources": {"limits": {"hugepages-2Mi": "2Mi"}}},
     "spec.containers[0].resources: Forbidden: HugePages require cpu or memory"),
    ({"livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}},
     "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"),
    ({"livenessProbe": {}}, "spec.containers[0].livenessProbe: Required value: must specify a handler type"),
    ({"readinessProbe": {"exec": {"command": []}}}, "spec.containers[0].readinessProbe.exec.command: Required value"),
    ({"readinessProbe": {"httpGet": {"port": 0}}},
     f"spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: {PORT_RANGE}"),
    ({"readinessProbe": {"tcpSocket": {"port": "Web"}}},
     'spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: "Web": must contain only alpha-numeric '
     "characters (a-z, 0-9), and hyphens (-)"),
    ({"readinessProbe": {"exec": {"command": ["a"]}, "tcpSocket": {"port": 80}}},
     "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
    ({"readinessProbe": {"exec": {"command": ["a"]}, "initialDelaySeconds": -1}},
     "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ({"readinessProbe": {"httpGet": {"port": 80, "scheme": "FTP"}}},
     'spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"'),
    ({"restartPolicy": "Always"}, "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"),
    ({"securityContext": {"runAsUser": -1}},
     "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 4294967295, inclusive"),
    ({"lifecycle": {"preStop": {"sleep": {"seconds": 100}}}},
     "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 100: must be non-negative and less than "
     "terminationGracePeriodSeconds (30)"),
])
def test_container_errors(container, want):
    assert want in errors(POD, pod(container=container))


@pytest.mark.parametrize("spec, want", [
    ({"containers": []}, "spec.containers: Required value"),
    ({"restartPolicy": "Sometimes"}, 'spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                                     '"Always", "OnFailure", "Never"'),
    ({"dnsPolicy": "Foo"}, 'spec.dnsPolicy: Unsupported value: "Foo": supported values: "ClusterFirstWithHostNet", '
                           '"ClusterFirst", "Default", "None"'),
    ({"dnsPolicy": "None"}, "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
                                   "inclusive"),
    ({"nodeSelector": {"a": "b c"}}, f'spec.nodeSelector: Invalid value: "b c": {LABEL_VALUE}'),
    ({"serviceAccountName": "Bad"}, f'spec.serviceAccountName: Invalid value: "Bad": {SUBDOMAIN}'),
    ({"hostname": "a.b"}, 'spec.hostname: Invalid value: "a.b": must not contain dots'),
    ({"priorityClassName": "X"}, f'spec.priorityClassName: Invalid value: "X": {SUBDOMAIN}'),
    ({"tolerations": [{"key": "a", "operator": "Foo"}]},
     'spec.tolerations[0].operator: Unsupported value: "Foo": supported values: "Equal", "Exists"'),
    ({"tolerations": [{"operator": "Equal", "value": "x"}]},
     'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means '
     '"match all values and all keys"'),
    ({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]},
     "spec.tolerations[0].operator: Invalid value: \"x\": value must be empty when `operator` is 'Exists'"),
    ({"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` "
     "is set"),
    ({"tolerations": [{"key": "a", "effect": "Never"}]},
     'spec.tolerations[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", '
     '"NoExecute"'),
    ({"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
     'spec.volumes[1].name: Duplicate value: "v"'),
    ({"volumes": [{"name": "V", "emptyDir": {}}]}, f'spec.volumes[0].name: Invalid value: "V": {LABEL}'),
    ({"volumes": [{"name": "v", "secret": {}}]}, "spec.volumes[0].secret.secretName: Required value"),
    ({"volumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 1000}}]},
     "spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both "
     "inclusive"),
    ({"volumes": [{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "/abs"}]}}]},
     'spec.volumes[0].configMap.items[0].path: Invalid value: "/abs": must be a relative path'),
    ({"volumes": [{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "../x"}]}}]},
     "spec.volumes[0].configMap.items[0].path: Invalid value: \"../x\": must not contain '..'"),
    ({"volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]},
     "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"),
    ({"volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Weird"}}]},
     'spec.volumes[0].hostPath.type: Unsupported value: "Weird": supported values: "", "BlockDevice", "CharDevice", '
     '"Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"'),
    ({"volumes": [{"name": "v", "persistentVolumeClaim": {}}]},
     "spec.volumes[0].persistentVolumeClaim.claimName: Required value"),
    ({"volumes": [{"name": "v", "nfs": {"server": "s", "path": "rel"}}]},
     'spec.volumes[0].nfs.path: Invalid value: "rel": must be an absolute path'),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
     "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: "
     "must have at least one node selector term"),
    ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}},
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: "
     "can not be empty"),
    ({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero"),
    ({"os": {"name": "mac"}}, 'spec.os: Unsupported value: "mac": supported values: "linux", "windows"'),
    ({"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]},
     "spec.ephemeralContainers: Forbidden: cannot be set on create"),
    ({"initContainers": [{"name": "app", "image": "busybox"}]}, 'spec.initContainers[0].name: Duplicate value: "app"'),
    ({"initContainers": [{"name": "i", "image": "busybox", "readinessProbe": {"exec": {"command": ["a"]}}}]},
     "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
     "restartPolicy=Always"),
    ({"initContainers": [{"name": "i", "image": "busybox", "restartPolicy": "OnFailure"}]},
     'spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'),
])
def test_pod_spec_errors(spec, want):
    assert want in errors(POD, pod(spec))


def test_pod_multiple_errors_message():
    p = pod({"restartPolicy": "Sometimes"}, {"image": ""})
    p["metadata"]["name"] = "Foo_"
    r = res(*POD)
    defaults.apply_defaults(r, p)
    errs = validation.validate(r, p)
    assert validation.invalid_message("Pod", "Foo_", errs) == (
        f'Pod "Foo_" is invalid: [metadata.name: Invalid value: "Foo_": {SUBDOMAIN}, spec.containers[0].image: '
        'Required value, spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
        '"Never"]')


def test_pod_valid_complex():
    p = pod({"volumes": [{"name": "data", "emptyDir": {}},
                         {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "a.txt"}]}},
                         {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
             "serviceAccountName": "default",
             "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]},
                                {"name": "side", "image": "busybox", "restartPolicy": "Always",
                                 "readinessProbe": {"exec": {"command": ["true"]}}}],
             "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                              "tolerationSeconds": 10}],
             "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                 {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
             "securityContext": {"runAsUser": 1000, "fsGroup": 2000}},
            {"ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}],
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
             "readinessProbe": {"httpGet": {"port": "http"}},
             "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/cfg"}]})
    assert errors(POD, p) == []


def test_projected_token_needs_service_account():
    p = pod({"volumes": [{"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]})
    assert errors(POD, p) == ["spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: must not be "
                              "specified when serviceAccountName is not set"]


def test_pod_deletion_cost_annotation():
    p = pod(annotations={"controller.kubernetes.io/pod-deletion-cost": "abc"})
    assert errors(POD, p) == ['metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: "abc": '
                              "must be a 32bit integer"]


def test_pod_update_rules():
    old = pod({"activeDeadlineSeconds": 100, "tolerations": [{"key": "a", "operator": "Exists"}]}, uid="u",
              resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert errors(POD, new, old) == []
    bad = copy.deepcopy(old)
    bad["spec"]["restartPolicy"] = "Never"
    (msg,) = errors(POD, bad, old)
    assert msg.startswith("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                          "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                          "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
                          "to 1 if it was previously negative)\n")
    assert "restartPolicy" in msg
    bad = copy.deepcopy(old)
    bad["spec"]["containers"].append({"name": "b", "image": "x"})
    assert "spec.containers: Forbidden: pod updates may not add or remove containers" in errors(POD, bad, old)
    bad = copy.deepcopy(old)
    bad["spec"]["activeDeadlineSeconds"] = 200
    assert errors(POD, bad, old) == ["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to "
                                     "previous value"]
    bad = copy.deepcopy(old)
    bad["spec"]["tolerations"] = []
    assert errors(POD, bad, old)[0] == ("spec.tolerations: Forbidden: existing toleration can not be modified except "
                                        "its tolerationSeconds")
    bad = copy.deepcopy(old)
    bad["spec"]["containers"][0]["image"] = ""
    assert "spec.containers[0].image: Required value" in errors(POD, bad, old)


def test_pod_status_update():
    r = res(*POD)
    old = pod(uid="u", resourceVersion="1")
    defaults.apply_defaults(r, old)
    old["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "qosClass": "BestEffort", "podIP": "10.0.0.1",
                     "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "1.2.3.4", "hostIPs": [{"ip": "1.2.3.4"}]}
    assert validation.validate_status(r, new, old) == []
    new["status"]["qosClass"] = "Guaranteed"
    new["status"]["podIPs"] = [{"ip": "nope"}]
    assert [e.message() for e in validation.validate_status(r, new, old)] == [
        'status.qosClass: Invalid value: "Guaranteed": field is immutable',
        'status.podIPs[0]: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']


def test_binding():
    r = res("", "v1", "Binding")
    b = {"metadata": {"name": "p", "namespace": "default"}, "target": {"kind": "Pod", "name": ""}}
    assert [e.message() for e in validation.validate(r, b)] == [
        'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"', "target.name: Required value"]


# =========================================================================== workloads
def tmpl(labels: dict | None = None, **spec) -> dict:
    s = {"containers": [{"name": "c", "image": "busybox"}]}
    s.update(spec)
    return {"metadata": {"labels": {"app": "a"} if labels is None else labels}, "spec": s}


def deploy(**spec) -> dict:
    s = {"selector": {"matchLabels": {"app": "a"}}, "template": tmpl()}
    s.update(spec)
    return {"metadata": {"name": "d", "namespace": "default"}, "spec": s}


def test_deployment_valid():
    assert errors(DEPLOY, deploy()) == []


@pytest.mark.parametrize("spec, want", [
    ({"selector": {"matchLabels": {"app": "b"}}},
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` does not match template '
     "`labels`"),
    ({"selector": None}, "spec.selector: Required value"),
    ({"selector": {}}, "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                       "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"),
    ({"replicas": -1}, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    ({"template": tmpl(restartPolicy="Never")},
     'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    ({"template": tmpl(activeDeadlineSeconds=5)},
     "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {}}},
     "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    ({"strategy": {"type": "Blue"}},
     'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"Blue", RollingUpdate:'
     '(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"'),
    ({"strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}},
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"),
    ({"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}},
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 150%: must not be greater than 100%"),
    ({"strategy": {"rollingUpdate": {"maxSurge": "abc"}}},
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: abc: a valid percent string must be a numeric string "
     "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
    ({"strategy": {"rollingUpdate": {"maxSurge": -1}}},
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"),
    ({"minReadySeconds": 700},
     "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"),
    ({"revisionHistoryLimit": -2}, "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0"),
    ({"template": tmpl(containers=[{"name": "c", "image": ""}])}, "spec.template.spec.containers[0].image: Required value"),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "Is", "values": ["a"]}]}},
     'spec.selector.matchExpressions[0].operator: Invalid value: "Is": not a valid selector operator'),
])
def test_deployment_errors(spec, want):
    assert want in errors(DEPLOY, deploy(**spec))


def test_deployment_selector_immutable():
    old = deploy()
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "a", "v": "2"}}
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert errors(DEPLOY, new, old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"a", "v":"2"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    assert errors(DEPLOY, new, old) == []
    r = res(*DEPLOY)
    d = deploy(selector={"matchLabels": {"app": "b"}})
    defaults.apply_defaults(r, d)
    msg = validation.invalid_message(r, "d", validation.validate(r, d))
    assert msg == ('Deployment.apps "d" is invalid: spec.template.metadata.labels: Invalid value: '
                   'map[string]string{"app":"a"}: `selector` does not match template `labels`')


def test_replicaset_and_rc():
    rs = deploy()
    assert errors(RS, rs) == []
    rs["spec"]["selector"] = {"matchLabels": {"x": "y"}}
    assert errors(RS, rs) == ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: '
                              "`selector` does not match template `labels`"]
    rc = {"metadata": {"name": "rc", "namespace": "default"},
          "spec": {"selector": {"app": "b"}, "template": tmpl()}}
    assert errors(("", "v1", "ReplicationController"), rc) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` does not match '
        "template `labels`"]
    rc["spec"]["selector"] = {"app": "a"}
    rc["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert errors(("", "v1", "ReplicationController"), rc) == [
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"']


def sts(**spec) -> dict:
    s = {"serviceName": "web", "selector": {"matchLabels": {"app": "a"}}, "template": tmpl()}
    s.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": s}


def test_statefulset():
    assert errors(STS, sts()) == []
    assert errors(STS, sts(podManagementPolicy="Random")) == [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"]
    assert errors(STS, sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}})) == [
        "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"]
    assert errors(STS, sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep", "whenScaled": "Retain"})) == [
        'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Retain", '
        '"Delete"']
    s = sts()
    s["metadata"]["name"] = "web.v1"
    assert errors(STS, s) == ['metadata.name: Invalid value: "web.v1": must not contain dots']
    assert errors(STS, sts(selector={})) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset"]


def test_statefulset_update():
    old = sts()
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    assert errors(STS, new, old) == []
    new["spec"]["serviceName"] = "other"
    assert errors(STS, new, old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def test_daemonset():
    ds = {"metadata": {"name": "ds", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": tmpl()}}
    assert errors(DS, ds) == []
    bad = copy.deepcopy(ds)
    bad["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    assert errors(DS, bad) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
                               "maxSurge is 0"]
    bad["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 1}
    assert errors(DS, bad) == ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when "
                               "maxUnavailable is non-zero"]
    bad["spec"]["updateStrategy"] = {"type": "Sometimes"}
    assert errors(DS, bad) == ['spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", '
                               'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", '
                               '"OnDelete"']
    bad = copy.deepcopy(ds)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "b"}
    assert errors(DS, bad) == ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: '
                               "`selector` does not match template `labels`"]


def test_controller_revision():
    cr = {"metadata": {"name": "r", "namespace": "default"}, "revision": -1}
    assert errors(("apps", "v1", "ControllerRevision"), cr) == [
        "data: Required value: data is mandatory", "revision: Invalid value: -1: must be greater than or equal to 0"]


# =========================================================================== batch
def job(**spec) -> dict:
    t = tmpl(restartPolicy="Never")
    s = {"template": t}
    s.update(spec)
    j = {"metadata": {"name": "pi", "namespace": "default"}, "spec": s}
    return j


def job_errors(j: dict, old: dict | None = None) -> list[str]:
    r = res(*JOB)
    j = copy.deepcopy(j)
    defaults.apply_defaults(r, j)
    if old is None:
        defaults.job_prepare_create(j, "11111111-2222-3333-4444-555555555555")
    return [e.message() for e in validation.validate(r, j, old)]


def test_job_valid_and_generated_selector():
    assert job_errors(job()) == []


@pytest.mark.parametrize("spec, want", [
    ({"template": tmpl()}, 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'),
    ({"template": tmpl(restartPolicy="Sometimes")},
     'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "OnFailure", "Never"'),
    ({"parallelism": -1}, "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
    ({"completions": -1}, "spec.completions: Invalid value: -1: must be greater than or equal to 0"),
    ({"backoffLimit": -1}, "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
    ({"activeDeadlineSeconds": -5}, "spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"),
    ({"completionMode": "Sometimes"},
     'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    ({"completionMode": "Indexed", "completions": None, "parallelism": 2},
     "spec.completions: Required value: when completion mode is Indexed"),
    ({"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"),
    ({"podReplacementPolicy": "Never"},
     'spec.podReplacementPolicy: Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"'),
])
def test_job_errors(spec, want):
    assert want in job_errors(job(**spec))


def test_job_manual_selector():
    j = job(manualSelector=True, selector={"matchLabels": {"app": "b"}})
    assert job_errors(j) == ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` '
                             "does not match template `labels`"]
    j = job(manualSelector=True)
    assert job_errors(j) == ["spec.selector: Required value",
                             'spec.template.metadata.labels: Invalid value: map[string]string{"app":"a"}: `selector` '
                             "does not match template `labels`"]


def test_job_update_immutability():
    r = res(*JOB)
    old = job()
    defaults.apply_defaults(r, old)
    defaults.job_prepare_create(old, "u-1")
    old["metadata"]["resourceVersion"] = "1"
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 3
    new["spec"]["activeDeadlineSeconds"] = 100
    assert [e.message() for e in validation.validate(r, new, old)] == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    new["spec"]["completions"] = 5
    msgs = [e.message() for e in validation.validate(r, new, old)]
    assert msgs == ["spec.completions: Invalid value: 5: field is immutable",
                    "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]


def cron(schedule: str = "*/5 * * * *", **spec) -> dict:
    s = {"schedule": schedule, "jobTemplate": {"spec": {"template": tmpl(restartPolicy="OnFailure")}}}
    s.update(spec)
    return {"metadata": {"name": "hello", "namespace": "default"}, "spec": s}


@pytest.mark.parametrize("schedule", [
    "* * * * *", "*/5 * * * *", "0 0 * * *", "0 9-17 * * 1-5", "30 2 1,15 * *", "0 0 1 jan,jul *",
    "0 0 * * MON-FRI", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
    "@every 1h30m", "5/15 * * * *", "0 0 ? * *", "0 0 1-31/2 * *", "59 23 31 12 6",
])
def test_cron_valid_schedules(schedule):
    assert errors(CRON, cron(schedule)) == []


@pytest.mark.parametrize("schedule, want", [
    ("foo", "expected exactly 5 fields, found 1: [foo]"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("* * * 13 *", "end of range (13) above maximum (12): 13"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * foo *", 'failed to parse int from foo: strconv.Atoi: parsing "foo": invalid syntax'),
    ("@often", "unrecognized descriptor: @often"),
    ("@every 5x", 'failed to parse duration @every 5x: time: unknown unit "x" in duration "5x"'),
    ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
])
def test_cron_invalid_schedules(schedule, want):
    assert errors(CRON, cron(schedule)) == [f"spec.schedule: Invalid value: {validation_quote(schedule)}: {want}"]


def validation_quote(s: str) -> str:
    from k8py.api.validation_common import go_quote
    return go_quote(s)


def test_cronjob_other_errors():
    assert errors(CRON, cron("")) == ["spec.schedule: Required value"]
    assert errors(CRON, cron(concurrencyPolicy="Sometimes")) == [
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']
    assert errors(CRON, cron("TZ=UTC * * * * *")) == [
        'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field '
        "instead"]
    assert errors(CRON, cron(timeZone="Europe/Paris")) == []
    assert errors(CRON, cron(timeZone="Mars/Olympus")) == [
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']
    assert errors(CRON, cron(timeZone="")) == ['spec.timeZone: Invalid value: "": timeZone must be nil or non-empty '
                                               "string"]
    assert errors(CRON, cron(startingDeadlineSeconds=-1)) == [
        "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"]
    c = cron()
    c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert errors(CRON, c) == ['spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: '
                               '"OnFailure", "Never"']
    c = cron()
    c["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert errors(CRON, c) == ['spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
                               'map[string]string{"a":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
                               "`selector` will be auto-generated"]
    c = cron()
    c["metadata"]["name"] = "x" * 53
    assert errors(CRON, c) == [f'metadata.name: Invalid value: "{"x" * 53}": must be no more than 52 characters']


def test_cron_schedule_next():
    from datetime import datetime, timezone

    from k8py.api.validation_batch import parse_cron
    t0 = datetime(2024, 1, 1, 10, 7, 30, tzinfo=timezone.utc)
    assert parse_cron("*/15 * * * *").next(t0) == datetime(2024, 1, 1, 10, 15, tzinfo=timezone.utc)
    assert parse_cron("@daily").next(t0) == datetime(2024, 1, 2, 0, 0, tzinfo=timezone.utc)
    assert parse_cron("0 9 * * MON").next(t0) == datetime(2024, 1, 8, 9, 0, tzinfo=timezone.utc)
    assert parse_cron("0 0 29 2 *").next(t0) == datetime(2024, 2, 29, 0, 0, tzinfo=timezone.utc)
    assert parse_cron("@every 1m").next(t0) == datetime(2024, 1, 1, 10, 8, 30, tzinfo=timezone.utc)


# =========================================================================== services
def svc(**spec) -> dict:
    s = {"selector": {"app": "a"}, "ports": [{"port": 80}]}
    s.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": s}


def test_service_valid_variants():
    assert errors(SVC, svc()) == []
    assert errors(SVC, svc(clusterIP="None", ports=[])) == []
    assert errors(SVC, svc(type="ExternalName", externalName="example.com", ports=[], selector=None)) == []
    assert errors(SVC, svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])) == []
    assert errors(SVC, svc(type="LoadBalancer")) == []
    assert errors(SVC, svc(clusterIP="10.43.0.10", clusterIPs=["10.43.0.10"])) == []
    assert errors(SVC, svc(ports=[{"port": 80, "name": "http"}, {"port": 443, "name": "https"}])) == []


@pytest.mark.parametrize("spec, want", [
    ({"ports": []}, "spec.ports: Required value"),
    ({"ports": [{"port": 0}]}, f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"),
    ({"ports": [{"port": 70000}]}, f"spec.ports[0].port: Invalid value: 70000: {PORT_RANGE}"),
    ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name: Required value"),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}, 'spec.ports[1].name: Duplicate value: "a"'),
    ({"ports": [{"port": 80, "name": "Http"}]}, f'spec.ports[0].name: Invalid value: "Http": {LABEL}'),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
     'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
     'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'),
    ({"ports": [{"port": 80, "protocol": "HTTP"}]},
     'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    ({"ports": [{"port": 80, "targetPort": 0}], "clusterIP": "None"}, None),
    ({"ports": [{"port": 80, "targetPort": "Web"}]},
     'spec.ports[0].targetPort: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and '
     "hyphens (-)"),
    ({"type": "Foo"}, 'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", '
                      '"LoadBalancer", "NodePort"'),
    ({"ports": [{"port": 80, "nodePort": 30001}]},
     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
     "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is "
     "30000-32767"),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001, "name": "a"},
                                    {"port": 81, "nodePort": 30001, "name": "b"}]},
     "spec.ports[1].nodePort: Duplicate value: 30001"),
    ({"selector": {"a": "b c"}}, f'spec.selector: Invalid value: "b c": {LABEL_VALUE}'),
    ({"sessionAffinity": "Sticky"}, 'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", '
                                    '"None"'),
    ({"type": "ExternalName", "externalName": "", "ports": []}, "spec.externalName: Required value"),
    ({"type": "ExternalName", "externalName": "Bad_Name"},
     f'spec.externalName: Invalid value: "Bad_Name": {SUBDOMAIN}'),
    ({"type": "NodePort", "clusterIP": "None"},
     "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    ({"clusterIP": "300.1.1.1"},
     'spec.clusterIPs[0]: Invalid value: "300.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ({"externalTrafficPolicy": "Local"},
     'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'),
    ({"loadBalancerSourceRanges": ["10.0.0.0/8"]},
     "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"),
    ({"externalIPs": ["127.0.0.1"]},
     'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'),
    ({"ipFamilies": ["IPv5"]}, 'spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'),
    ({"internalTrafficPolicy": "Nearby"},
     'spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", "Local"'),
])
def test_service_errors(spec, want):
    errs = errors(SVC, svc(**spec))
    if want is None:
        assert errs == []
    else:
        assert want in errs, errs


def test_service_name_is_dns1035():
    s = svc()
    s["metadata"]["name"] = "1web"
    assert errors(SVC, s) == [f'metadata.name: Invalid value: "1web": {DNS1035}']


def test_service_update_cluster_ip_immutable():
    old = svc(clusterIP="10.43.0.10", clusterIPs=["10.43.0.10"])
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.43.0.11"
    new["spec"]["clusterIPs"] = ["10.43.0.11"]
    assert errors(SVC, new, old) == ['spec.clusterIPs[0]: Invalid value: []string{"10.43.0.11"}: may not change once set']
    new = copy.deepcopy(old)
    new["spec"]["ports"] = [{"port": 8080}]
    assert errors(SVC, new, old) == []


# =========================================================================== configmaps / secrets
CM = ("", "v1", "ConfigMap")
SECRET = ("", "v1", "Secret")


def test_configmap():
    cm = {"metadata": {"name": "c", "namespace": "default"}, "data": {"a.txt": "x", "B_KEY": "y"}}
    assert errors(CM, cm) == []
    cm["data"] = {"a/b": "x"}
    assert errors(CM, cm) == [f'data[a/b]: Invalid value: "a/b": {CONFIG_KEY}']
    cm["data"] = {"..x": "y"}
    assert errors(CM, cm) == ["data[..x]: Invalid value: \"..x\": must not start with '..'"]
    cm["data"] = {"k": "v"}
    cm["binaryData"] = {"k": "dg=="}
    assert errors(CM, cm) == ['data[k]: Invalid value: "k": duplicate of key present in binaryData']
    cm = {"metadata": {"name": "c", "namespace": "default"}, "data": {"big": "x" * (1024 * 1024 + 1)}}
    assert errors(CM, cm) == ["[]: Too long: must have at most 1048576 bytes"]


def test_configmap_immutable_update():
    old = {"metadata": {"name": "c", "namespace": "default", "uid": "u", "resourceVersion": "1"},
           "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    assert errors(CM, new, old) == []
    new["data"]["a"] = "2"
    assert errors(CM, new, old) == ["data: Forbidden: field is immutable when `immutable` is set"]
    new = copy.deepcopy(old)
    new["immutable"] = False
    assert errors(CM, new, old) == ["immutable: Forbidden: field is immutable when `immutable` is set"]


def test_secret():
    s = {"metadata": {"name": "s", "namespace": "default"}, "data": {"password": "cGFzcw=="}}
    assert errors(SECRET, s) == []
    s["data"] = {"a b": "eA=="}
    assert errors(SECRET, s) == [f'data[a b]: Invalid value: "a b": {CONFIG_KEY}']
    tls = {"metadata": {"name": "t", "namespace": "default"}, "type": "kubernetes.io/tls", "data": {}}
    assert errors(SECRET, tls) == ["data[tls.crt]: Required value", "data[tls.key]: Required value"]
    sat = {"metadata": {"name": "t", "namespace": "default"}, "type": "kubernetes.io/service-account-token"}
    assert errors(SECRET, sat) == ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    dcj = {"metadata": {"name": "d", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": "bm90IGpzb24="}}
    assert errors(SECRET, dcj) == ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid '
                                   "character 'o' in literal null (expecting 'u')"]
    dcj["data"][".dockerconfigjson"] = "eA=="
    assert errors(SECRET, dcj) == ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid '
                                   "character 'x' looking for beginning of value"]
    dcj["data"][".dockerconfigjson"] = "W10="
    assert errors(SECRET, dcj) == ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": json: '
                                   "cannot unmarshal array into Go value of type map[string]interface {}"]
    dcj["data"][".dockerconfigjson"] = "e30="
    assert errors(SECRET, dcj) == []
    basic = {"metadata": {"name": "b", "namespace": "default"}, "type": "kubernetes.io/basic-auth", "data": {}}
    assert errors(SECRET, basic) == ["data[username]: Required value", "data[password]: Required value"]
    big = {"metadata": {"name": "b", "namespace": "default"}, "data": {"x": "QUFB" * 400000}}
    assert errors(SECRET, big) == ["data: Too long: must have at most 1048576 bytes"]


def test_secret_update():
    old = {"metadata": {"name": "s", "namespace": "default", "uid": "u", "resourceVersion": "1"},
           "type": "Opaque", "data": {"a": "YQ=="}, "immutable": True}
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/tls"
    new["data"] = {"tls.crt": "", "tls.key": ""}
    assert errors(SECRET, new, old) == ['type: Invalid value: "kubernetes.io/tls": field is immutable',
                                        "data: Forbidden: field is immutable when `immutable` is set"]


# =========================================================================== namespaces / nodes / misc core
def test_namespace():
    ns = ("", "v1", "Namespace")
    assert errors(ns, {"metadata": {"name": "team-a"}}) == []
    assert errors(ns, {"metadata": {"name": "Team"}}) == [f'metadata.name: Invalid value: "Team": {LABEL}']
    assert errors(ns, {"metadata": {"name": "a.b"}}) == ['metadata.name: Invalid value: "a.b": must not contain dots']
    assert errors(ns, {"metadata": {"name": "x", "namespace": "y"}}) == [
        "metadata.namespace: Forbidden: not allowed on this type"]
    assert errors(ns, {"metadata": {"name": "x"}, "spec": {"finalizers": ["foo"]}}) == [
        'spec.finalizers: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified']


def test_namespace_status():
    r = res("", "v1", "Namespace")
    old = {"metadata": {"name": "x", "uid": "u", "resourceVersion": "1"}, "status": {"phase": "Active"}}
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Terminating"
    assert [e.message() for e in validation.validate_status(r, new, old)] == [
        "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"]


def test_node():
    node = ("", "v1", "Node")
    assert errors(node, {"metadata": {"name": "node-1"}, "status": {"capacity": {"cpu": "4", "pods": "110"}}}) == []
    n = {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"},
                                                          {"key": "a", "effect": "NoSchedule"},
                                                          {"key": "b", "effect": ""}]}}
    assert errors(node, n) == [
        'metadata.taints[1]: Duplicate value: core.Taint{Key:"a", Value:"", Effect:"NoSchedule", TimeAdded:<nil>}: '
        "taints must be unique by key and effect pair",
        "metadata.taints[2].effect: Required value"]
    n = {"metadata": {"name": "n"}, "status": {"capacity": {"pods": "1500m"}}}
    assert errors(node, n) == ["status.capacity.pods: Invalid value: 1500m: must be an integer",
                               "status.allocatable.pods: Invalid value: 1500m: must be an integer"]
    old = {"metadata": {"name": "n", "uid": "u", "resourceVersion": "1"}, "spec": {"podCIDRs": ["10.0.0.0/24"],
                                                                                   "providerID": "p1"}}
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.0.1.0/24"]
    new["spec"]["providerID"] = "p2"
    assert errors(node, new, old) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
        'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid']


def test_endpoints():
    ep = ("", "v1", "Endpoints")
    good = {"metadata": {"name": "e", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    assert errors(ep, good) == []
    bad = {"metadata": {"name": "e", "namespace": "default"},
           "subsets": [{"ports": [{"port": 80}]}, {"addresses": [{"ip": "x"}]}]}
    assert errors(ep, bad) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
        'subsets[1].addresses[0].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
        'subsets[1].addresses[0].ip: Invalid value: "x": must be a valid IP address']


def test_pv_and_pvc():
    pv = ("", "v1", "PersistentVolume")
    good = {"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                 "hostPath": {"path": "/data"}}}
    assert errors(pv, good) == []
    bad = {"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "0"}, "accessModes": ["ReadWriteSome"]}}
    assert errors(pv, bad) == [
        'spec.accessModes: Unsupported value: "ReadWriteSome": supported values: "ReadOnlyMany", "ReadWriteMany", '
        '"ReadWriteOnce", "ReadWriteOncePod"',
        'spec.capacity[storage]: Invalid value: "0": must be greater than zero',
        "spec: Required value: must specify a volume type"]
    pvc = ("", "v1", "PersistentVolumeClaim")
    good = {"metadata": {"name": "c", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    assert errors(pvc, good) == []
    bad = {"metadata": {"name": "c", "namespace": "default"}, "spec": {"resources": {}}}
    assert errors(pvc, bad) == ["spec.accessModes: Required value: at least 1 access mode is required",
                                "spec.resources[storage]: Required value"]
    both = copy.deepcopy(good)
    both["spec"]["accessModes"] = ["ReadWriteOncePod", "ReadWriteOnce"]
    assert errors(pvc, both) == ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]
    old = copy.deepcopy(good)
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    (msg,) = errors(pvc, new, old)
    assert msg.startswith("spec: Forbidden: spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims\n")


def test_resource_quota_and_limit_range():
    rq = ("", "v1", "ResourceQuota")
    assert errors(rq, {"metadata": {"name": "q", "namespace": "default"},
                       "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5"}}}) == []
    assert errors(rq, {"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": {"foo": "1"}}}) == [
        'spec.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
        'spec.hard[foo]: Invalid value: "foo": must be a standard resource for quota']
    assert errors(rq, {"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": {"pods": "1.5"}}}) == [
        "spec.hard[pods]: Invalid value: 1500m: must be an integer"]
    assert errors(rq, {"metadata": {"name": "q", "namespace": "default"},
                       "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}}) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: conflicting scopes']
    lr = ("", "v1", "LimitRange")
    good = {"metadata": {"name": "l", "namespace": "default"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}}]}}
    assert errors(lr, good) == []
    bad = {"metadata": {"name": "l", "namespace": "default"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "100m"}, "min": {"cpu": "1"}}, {"type": "Thing"}]}}
    assert errors(lr, bad) == [
        "spec.limits[0].min[cpu]: Invalid value: 1: min value 1 is greater than max value 100m",
        "spec.limits[0].defaultRequest[cpu]: Invalid value: 100m: min value 1 is greater than default request value "
        "100m",
        "spec.limits[0].default[cpu]: Invalid value: 1: min value 1 is greater than default value 100m",
        'spec.limits[1].type: Invalid value: "Thing": must be a standard limit type or fully qualified']


def test_service_account_pod_template_event():
    sa = ("", "v1", "ServiceAccount")
    assert errors(sa, {"metadata": {"name": "builder", "namespace": "default"}}) == []
    assert errors(sa, {"metadata": {"name": "B", "namespace": "default"}}) == [
        f'metadata.name: Invalid value: "B": {SUBDOMAIN}']
    pt = ("", "v1", "PodTemplate")
    assert errors(pt, {"metadata": {"name": "t", "namespace": "default"}, "template": tmpl()}) == []
    assert errors(pt, {"metadata": {"name": "t", "namespace": "default"},
                       "template": tmpl(containers=[])}) == ["template.spec.containers: Required value"]
    ev = ("", "v1", "Event")
    good = {"metadata": {"name": "e.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"}
    assert errors(ev, good) == []
    bad = copy.deepcopy(good)
    bad["involvedObject"]["namespace"] = "other"
    assert errors(ev, bad) == ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    new_style = copy.deepcopy(good)
    new_style["eventTime"] = "2024-01-01T00:00:00.000000Z"
    assert errors(ev, new_style) == ["reportingComponent: Required value",
                                     'reportingComponent: Invalid value: "": name part must be non-empty',
                                     "reportingComponent: Invalid value: \"\": " + NAME_PART,
                                     "reportingInstance: Required value", "action: Required value"]


def test_events_k8s_io_event():
    r = ("events.k8s.io", "v1", "Event")
    good = {"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "type": "Normal", "reason": "Started", "action": "Start", "reportingController": "kubelet.io/x",
            "reportingInstance": "node-1", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}}
    assert errors(r, good) == []
    bad = copy.deepcopy(good)
    bad["type"] = "Info"
    bad["series"] = {"count": 1}
    assert errors(r, bad) == ['series.count: Invalid value: "": should be at least 2',
                              "series.lastObservedTime: Required value",
                              'type: Invalid value: "": has invalid value: Info']


# =========================================================================== other groups
def test_hpa():
    v2 = ("autoscaling", "v2", "HorizontalPodAutoscaler")
    good = {"metadata": {"name": "h", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 5}}
    assert errors(v2, good) == []
    bad = copy.deepcopy(good)
    bad["spec"].update(minReplicas=5, maxReplicas=2)
    assert errors(v2, bad) == ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
    bad["spec"].update(minReplicas=0, maxReplicas=0)
    assert errors(v2, bad) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
        "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero "
        "replicas"]
    bad = copy.deepcopy(good)
    bad["spec"]["scaleTargetRef"] = {"kind": "", "name": "a/b"}
    assert errors(v2, bad) == ["spec.scaleTargetRef.kind: Required value",
                               "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'"]
    bad = copy.deepcopy(good)
    bad["spec"]["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 0}}}]
    assert errors(v2, bad) == ["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater "
                               "than 0"]
    bad["spec"]["metrics"] = [{"type": "Pods"}]
    assert errors(v2, bad) == ["spec.metrics[0].pods: Required value: must populate information for the given metric "
                               "source"]
    v1 = ("autoscaling", "v1", "HorizontalPodAutoscaler")
    h1 = copy.deepcopy(good)
    h1["spec"]["targetCPUUtilizationPercentage"] = 0
    assert errors(v1, h1) == ["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater "
                              "than 0"]


def test_ingress():
    ing = ("networking.k8s.io", "v1", "Ingress")

    def i(**spec):
        return {"metadata": {"name": "i", "namespace": "default"}, "spec": spec}
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    assert errors(ing, i(rules=[{"host": "a.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend}]}}])) == []
    assert errors(ing, i(defaultBackend=backend)) == []
    assert errors(ing, i()) == ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or "
                                "`rules` must be specified"]
    assert errors(ing, i(rules=[{"host": "1.2.3.4", "http": {"paths": [
        {"path": "/", "pathType": "Exact", "backend": backend}]}}])) == [
        'spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address']
    assert errors(ing, i(rules=[{"http": {"paths": [{"path": "x", "pathType": "Prefix", "backend": backend}]}}])) == [
        'spec.rules[0].http.paths[0].path: Invalid value: "x": must be an absolute path']
    assert errors(ing, i(rules=[{"http": {"paths": [{"path": "/", "backend": backend}]}}])) == [
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    assert errors(ing, i(rules=[{"http": {"paths": [{"path": "/", "pathType": "Regex", "backend": backend}]}}])) == [
        'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", '
        '"ImplementationSpecific", "Prefix"']
    assert errors(ing, i(defaultBackend={"service": {"name": "web", "port": {}}})) == [
        "spec.defaultBackend: Required value: port name or number is required"]
    assert errors(ing, i(defaultBackend={})) == ['spec.defaultBackend: Invalid value: "": resource or service backend '
                                                 "is required"]
    assert errors(ing, i(rules=[{"host": "*.example.com", "http": {"paths": [
        {"path": "/a//b", "pathType": "Prefix", "backend": backend}]}}])) == [
        "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"]


def test_ingress_class_and_network_policy():
    ic = ("networking.k8s.io", "v1", "IngressClass")
    assert errors(ic, {"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}) == []
    assert errors(ic, {"metadata": {"name": "nginx"}, "spec": {"controller": "nginx"}}) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")']
    np_ = ("networking.k8s.io", "v1", "NetworkPolicy")
    good = {"metadata": {"name": "n", "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"app": "a"}},
                     "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                  "ports": [{"port": 80}]}]}}
    assert errors(np_, good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["ingress"] = [{"from": [{}], "ports": [{"port": 70000, "protocol": "ICMP"}]}]
    bad["spec"]["policyTypes"] = ["Ingress", "Sideways"]
    assert errors(np_, bad) == [
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        f"spec.ingress[0].ports[0].port: Invalid value: 70000: {PORT_RANGE}",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"']
    bad = copy.deepcopy(good)
    bad["spec"]["ingress"][0]["from"][0]["ipBlock"]["except"] = ["192.168.0.0/16"]
    assert errors(np_, bad) == ['spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a '
                                "strict subset of `cidr`"]


def test_pdb():
    pdb = ("policy", "v1", "PodDisruptionBudget")
    good = {"metadata": {"name": "p", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}}
    assert errors(pdb, good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["maxUnavailable"] = "50%"
    assert errors(pdb, bad) == ["spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and "
                                "maxUnavailable cannot be both set"]
    bad = copy.deepcopy(good)
    bad["spec"]["minAvailable"] = "120%"
    assert errors(pdb, bad) == ["spec.minAvailable: Invalid value: 120%: must not be greater than 100%"]
    bad = copy.deepcopy(good)
    bad["metadata"]["name"] = "a/b"
    assert errors(pdb, bad) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_rbac():
    role = ("rbac.authorization.k8s.io", "v1", "Role")
    assert errors(role, {"metadata": {"name": "system:reader", "namespace": "default"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}) == []
    assert errors(role, {"metadata": {"name": "r", "namespace": "default"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[1].resources: Required value: resource rules must supply at least one resource",
        'rules[2].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource '
        "URLs"]
    assert errors(role, {"metadata": {"name": "..", "namespace": "default"}}) == [
        "metadata.name: Invalid value: \"..\": may not be '..'"]
    cr = ("rbac.authorization.k8s.io", "v1", "ClusterRole")
    assert errors(cr, {"metadata": {"name": "view"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}) == []
    rb = ("rbac.authorization.k8s.io", "v1", "RoleBinding")
    good = {"metadata": {"name": "b", "namespace": "default"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}]}
    assert errors(rb, good) == []
    bad = copy.deepcopy(good)
    bad["roleRef"] = {"kind": "Thing", "name": ""}
    bad["subjects"] = [{"kind": "Robot", "name": "x"}]
    assert errors(rb, bad) == [
        'roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']
    crb = ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding")
    assert errors(crb, {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
                        "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value"]
    old = copy.deepcopy(good)
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "other"
    assert errors(rb, new, old) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"other"}: cannot '
        "change roleRef"]


def test_storage_class_priority_class_lease():
    sc = ("storage.k8s.io", "v1", "StorageClass")
    assert errors(sc, {"metadata": {"name": "fast"}, "provisioner": "kubernetes.io/no-provisioner"}) == []
    assert errors(sc, {"metadata": {"name": "fast"}, "provisioner": "", "reclaimPolicy": "Recycle"}) == [
        "provisioner: Required value",
        'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']
    old = {"metadata": {"name": "fast", "uid": "u", "resourceVersion": "1"}, "provisioner": "a.io/b"}
    new = copy.deepcopy(old)
    new["provisioner"] = "c.io/d"
    assert errors(sc, new, old) == ["provisioner: Forbidden: updates to provisioner are forbidden."]
    pc = ("scheduling.k8s.io", "v1", "PriorityClass")
    assert errors(pc, {"metadata": {"name": "high"}, "value": 1000}) == []
    assert errors(pc, {"metadata": {"name": "huge"}, "value": 2000000000}) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    assert errors(pc, {"metadata": {"name": "system-foo"}, "value": 1}) == [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: "
        "system-foo is not a known system priority class"]
    old = {"metadata": {"name": "high", "uid": "u", "resourceVersion": "1"}, "value": 1}
    new = copy.deepcopy(old)
    new["value"] = 2
    assert errors(pc, new, old) == ["value: Forbidden: may not be changed in an update."]
    lease = ("coordination.k8s.io", "v1", "Lease")
    assert errors(lease, {"metadata": {"name": "l", "namespace": "default"},
                          "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}) == []
    assert errors(lease, {"metadata": {"name": "l", "namespace": "default"},
                          "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]


def test_endpoint_slice():
    es = ("discovery.k8s.io", "v1", "EndpointSlice")
    good = {"metadata": {"name": "s", "namespace": "default"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}], "ports": [{"port": 80}]}
    assert errors(es, good) == []
    bad = copy.deepcopy(good)
    bad["addressType"] = "IPv4"
    bad["endpoints"] = [{"addresses": []}, {"addresses": ["::1"]}]
    bad["ports"] = [{"name": "a", "port": 1}, {"name": "a", "port": 2, "protocol": "X"}]
    assert errors(es, bad) == [
        "endpoints[0].addresses: Required value: must contain at least 1 address",
        'endpoints[1].addresses[0]: Invalid value: "::1": must be a valid IPv4 address',
        'ports[1].name: Duplicate value: "a"',
        'ports[1].protocol: Unsupported value: "X": supported values: "SCTP", "TCP", "UDP"']
    bad = copy.deepcopy(good)
    bad["addressType"] = "IPX"
    assert errors(es, bad) == ['addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"']


def test_unknown_kind_gets_generic_meta_validation():
    from k8py.api.registry import Resource
    r = Resource("example.com", "v1", "Widget", "widgets", True)
    assert [e.message() for e in validation.validate(r, {"metadata": {"name": "a/b", "namespace": "x"}})] == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_ephemeral_containers_subresource():
    r = res(*POD)
    old = pod()
    defaults.apply_defaults(r, old)
    old["metadata"].update(uid="u", resourceVersion="3")
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox", "targetContainerName": "app",
                                           "stdin": True, "tty": True}]
    defaults.apply_defaults(r, new)
    assert validation.validate_ephemeral_containers(r, new, old) == []
    bad = copy.deepcopy(new)
    bad["spec"]["ephemeralContainers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    bad["spec"]["ephemeralContainers"].append({"name": "app", "image": "x", "terminationMessagePolicy": "File",
                                               "imagePullPolicy": "Always"})
    assert [e.message() for e in validation.validate_ephemeral_containers(r, bad, old)] == [
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        'spec.ephemeralContainers[1].name: Duplicate value: "app"',
    ]
    # an existing one can be neither removed nor changed
    changed = copy.deepcopy(new)
    changed["spec"]["ephemeralContainers"][0]["image"] = "alpine"
    msgs = [e.message() for e in validation.validate_ephemeral_containers(r, changed, new)]
    assert len(msgs) == 1 and msgs[0].startswith(
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be changed\n')
    removed = copy.deepcopy(old)
    assert [e.message() for e in validation.validate_ephemeral_containers(r, removed, new)] == [
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed\n']
    static = copy.deepcopy(old)
    static["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    new_static = copy.deepcopy(static)
    new_static["spec"]["ephemeralContainers"] = new["spec"]["ephemeralContainers"]
    assert [e.message() for e in validation.validate_ephemeral_containers(r, new_static, static)] == [
        ": Forbidden: static pods do not support ephemeral containers"]


def test_validator_crash_becomes_internal_field_error(monkeypatch):
    from k8py.api import validation_pod
    monkeypatch.setattr(validation_pod, "validate_pod", lambda obj, errs: 1 / 0)
    errs = validation.validate(res(*POD), pod())
    assert [(e.type, e.message()) for e in errs] == [
        ("InternalError", ": Internal error: malformed object: ZeroDivisionError: division by zero")]


def test_validate_does_not_mutate():
    p = pod()
    r = res(*POD)
    defaults.apply_defaults(r, p)
    before = copy.deepcopy(p)
    validation.validate(r, p)
    old = copy.deepcopy(p)
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "x"
    validation.validate(r, new, old)
    assert p == before


# =========================================================================== realistic objects + robustness
_RICH_POD_SPEC = {
    "serviceAccountName": "builder",
    "automountServiceAccountToken": True,
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "hostname": "web-0",
    "subdomain": "web",
    "priorityClassName": "high",
    "runtimeClassName": "runc",
    "activeDeadlineSeconds": 600,
    "terminationGracePeriodSeconds": 10,
    "dnsPolicy": "None",
    "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc.cluster.local"],
                  "options": [{"name": "ndots", "value": "2"}]},
    "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local"]}],
    "imagePullSecrets": [{"name": "regcred"}],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "runAsNonRoot": True,
                        "supplementalGroups": [3000], "fsGroupChangePolicy": "OnRootMismatch",
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                    {"operator": "Exists"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 60}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                      {"key": "gpu", "operator": "Exists"},
                                      {"key": "cores", "operator": "Gt", "values": ["4"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "ssd", "operator": "DoesNotExist"}]}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname",
             "namespaces": ["other"]}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                "namespaceSelector": {}, "topologyKey": "topology.kubernetes.io/zone"}}]}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2,
                                   "labelSelector": {"matchLabels": {"app": "web"}},
                                   "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore"}],
    "readinessGates": [{"conditionType": "example.com/ready"}],
    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"],
                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}},
                       {"name": "sidecar", "image": "envoy:1.0", "restartPolicy": "Always",
                        "startupProbe": {"tcpSocket": {"port": 9901}}}],
    "containers": [{
        "name": "app", "image": "registry.example.com/team/app:v1.2.3", "workingDir": "/srv",
        "command": ["/app"], "args": ["--port=8080"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "hostPort": 19090},
                  {"containerPort": 53, "protocol": "UDP"}],
        "env": [{"name": "A", "value": "1"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}}],
        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}}],
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "1Gi",
                                   "example.com/foo": "2"},
                      "limits": {"cpu": "1", "memory": "256Mi", "example.com/foo": "2", "hugepages-2Mi": "4Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True, "subPath": "app"},
                         {"name": "token", "mountPath": "/var/run/token"},
                         {"name": "pod-info", "mountPath": "/etc/podinfo", "subPathExpr": "$(POD_NAME)"},
                         {"name": "host", "mountPath": "/host", "mountPropagation": "HostToContainer"}],
        "volumeDevices": [{"name": "block", "devicePath": "/dev/xvda"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http",
                                      "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                          "initialDelaySeconds": 5, "periodSeconds": 5, "terminationGracePeriodSeconds": 5},
        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 1},
        "startupProbe": {"grpc": {"port": 9000, "service": "health"}, "failureThreshold": 30},
        "lifecycle": {"postStart": {"exec": {"command": ["echo"]}},
                      "preStop": {"httpGet": {"path": "/stop", "port": 8080, "scheme": "HTTPS"}}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/app.json"},
                            "appArmorProfile": {"type": "RuntimeDefault"}},
        "stdin": True, "tty": True, "terminationMessagePolicy": "FallbackToLogsOnError",
    }],
    "volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "app/app.conf",
                                                                "mode": 0o400}], "optional": True}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o440}},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "vault"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "pod-info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "requests.cpu"}}]}},
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "nfs", "nfs": {"server": "nfs.example.com", "path": "/exports", "readOnly": True}},
        {"name": "block", "persistentVolumeClaim": {"claimName": "block-pvc"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
        {"name": "csi", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                "volumeAttributes": {"secretProviderClass": "x"}}},
        {"name": "git", "gitRepo": {"repository": "https://example.com/repo.git", "revision": "main"}},
        {"name": "iscsi", "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:storage",
                                    "lun": 0, "fsType": "ext4"}},
        {"name": "img", "image": {"reference": "quay.io/data:1", "pullPolicy": "IfNotPresent"}},
    ],
}


def _rich_template(labels: dict) -> dict:
    spec = copy.deepcopy(_RICH_POD_SPEC)
    spec.pop("hostname")
    spec.pop("subdomain")
    spec.pop("activeDeadlineSeconds")  # forbidden in workload templates
    return {"metadata": {"labels": labels, "annotations": {"example.com/x": "y"}}, "spec": spec}


_L = {"app": "web", "tier": "frontend"}
RICH: dict[tuple[str, str, str], dict] = {
    POD: {"metadata": {"name": "web-0", "namespace": "default", "labels": _L,
                       "annotations": {"kubernetes.io/description": "x"}, "finalizers": ["example.com/keep"],
                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                            "uid": "u-1", "controller": True, "blockOwnerDeletion": True}]},
          "spec": _RICH_POD_SPEC},
    DEPLOY: {"metadata": {"name": "web", "namespace": "default", "labels": _L},
             "spec": {"replicas": 3, "minReadySeconds": 5, "paused": False,
                      "selector": {"matchLabels": {"app": "web"},
                                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}]},
                      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}},
                      "template": _rich_template(_L)}},
    RS: {"metadata": {"name": "web-abc", "namespace": "default"},
         "spec": {"replicas": 2, "selector": {"matchLabels": _L}, "template": _rich_template(_L)}},
    STS: {"metadata": {"name": "web", "namespace": "default"},
          "spec": {"replicas": 3, "serviceName": "web", "podManagementPolicy": "Parallel", "minReadySeconds": 1,
                   "ordinals": {"start": 1},
                   "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1,
                                                                                 "maxUnavailable": 2}},
                   "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                   "selector": {"matchLabels": _L}, "template": _rich_template(_L),
                   "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                       "accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                       "resources": {"requests": {"storage": "10Gi"}}}}]}},
    DS: {"metadata": {"name": "agent", "namespace": "kube-system"},
         "spec": {"selector": {"matchLabels": _L}, "template": _rich_template(_L),
                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}}},
    JOB: {"metadata": {"name": "pi", "namespace": "default"},
          "spec": {"completions": 5, "parallelism": 2, "backoffLimit": 3, "activeDeadlineSeconds": 100,
                   "ttlSecondsAfterFinished": 60, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
                   "maxFailedIndexes": 2,
                   "podFailurePolicy": {"rules": [
                       {"action": "FailJob", "onExitCodes": {"containerName": "app", "operator": "In",
                                                             "values": [42]}},
                       {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                   "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 1}]},
                   "template": {"metadata": {"labels": {"x": "y"}},
                                "spec": {"restartPolicy": "Never",
                                         "containers": [{"name": "app", "image": "perl:5.34",
                                                         "command": ["perl", "-e", "print 1"]}]}}}},
    CRON: {"metadata": {"name": "hello", "namespace": "default"},
           "spec": {"schedule": "0 */2 * jan-jun MON-FRI", "timeZone": "Europe/Paris", "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": 100, "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1,
                    "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {"spec": {
                        "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}},
    SVC: {"metadata": {"name": "web", "namespace": "default"},
          "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "sessionAffinity": "ClientIP",
                   "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 300}},
                   "externalTrafficPolicy": "Local", "healthCheckNodePort": 30200,
                   "loadBalancerSourceRanges": ["10.0.0.0/8"], "externalIPs": ["203.0.113.5"],
                   "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353,
                              "appProtocol": "dns"}]}},
    ("", "v1", "ConfigMap"): {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.conf": "x=1"},
                              "binaryData": {"blob": "AAEC"}, "immutable": False},
    ("", "v1", "Secret"): {"metadata": {"name": "tls", "namespace": "default"}, "type": "kubernetes.io/tls",
                           "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}},
    ("", "v1", "ServiceAccount"): {"metadata": {"name": "builder", "namespace": "default"},
                                   "secrets": [{"name": "s"}], "imagePullSecrets": [{"name": "regcred"}]},
    ("", "v1", "Namespace"): {"metadata": {"name": "team-a", "labels": {"env": "prod"}}},
    ("", "v1", "Node"): {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
                         "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"],
                                  "providerID": "k8py://node-1", "unschedulable": False,
                                  "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
                         "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                    "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
                                    "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}]}},
    ("", "v1", "Endpoints"): {"metadata": {"name": "web", "namespace": "default"},
                              "subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "node-1",
                                                          "targetRef": {"kind": "Pod", "name": "web-0"}}],
                                           "notReadyAddresses": [{"ip": "10.244.1.6"}],
                                           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]},
    ("", "v1", "Event"): {"metadata": {"name": "web.1", "namespace": "default"},
                          "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
                          "reason": "Started", "message": "ok", "type": "Normal", "count": 1,
                          "source": {"component": "kubelet", "host": "node-1"},
                          "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z"},
    ("", "v1", "ReplicationController"): {"metadata": {"name": "rc", "namespace": "default"},
                                          "spec": {"replicas": 1, "selector": _L, "template": _rich_template(_L)}},
    ("", "v1", "PersistentVolume"): {"metadata": {"name": "pv-1"},
                                     "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                                              "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "fast",
                                              "mountOptions": ["hard"], "volumeMode": "Filesystem",
                                              "hostPath": {"path": "/mnt/data"},
                                              "claimRef": {"namespace": "default", "name": "data-pvc"},
                                              "nodeAffinity": {"required": {"nodeSelectorTerms": [{
                                                  "matchExpressions": [{"key": "kubernetes.io/hostname",
                                                                        "operator": "In",
                                                                        "values": ["node-1"]}]}]}}}},
    ("", "v1", "PersistentVolumeClaim"): {"metadata": {"name": "data-pvc", "namespace": "default"},
                                          "spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                                                   "storageClassName": "fast", "volumeMode": "Block",
                                                   "selector": {"matchLabels": {"tier": "gold"}},
                                                   "resources": {"requests": {"storage": "5Gi"},
                                                                 "limits": {"storage": "10Gi"}}}},
    ("", "v1", "ResourceQuota"): {"metadata": {"name": "q", "namespace": "default"},
                                  "spec": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi",
                                                    "count/deployments.apps": "5", "services.nodeports": "0"},
                                           "scopeSelector": {"matchExpressions": [
                                               {"scopeName": "PriorityClass", "operator": "In",
                                                "values": ["high"]}]}}},
    ("", "v1", "LimitRange"): {"metadata": {"name": "lr", "namespace": "default"},
                               "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"},
                                                    "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "2"},
                                                    "min": {"cpu": "50m"}, "maxLimitRequestRatio": {"cpu": "10"}},
                                                   {"type": "PersistentVolumeClaim", "max": {"storage": "50Gi"}}]}},
    ("", "v1", "PodTemplate"): {"metadata": {"name": "pt", "namespace": "default"}, "template": _rich_template(_L)},
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 10,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 60}}},
                             {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {
                                 "type": "AverageValue", "averageValue": "100"}}},
                             {"type": "External", "external": {
                                 "metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                 "target": {"type": "Value", "value": "30"}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                                            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}}}},
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}},
    ("coordination.k8s.io", "v1", "Lease"): {"metadata": {"name": "l", "namespace": "kube-node-lease"},
                                            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                                                     "renewTime": "2024-01-01T00:00:00.000000Z"}},
    ("events.k8s.io", "v1", "Event"): {"metadata": {"name": "e.1", "namespace": "default"},
                                       "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "k8py/x",
                                       "reportingInstance": "x-1", "action": "Scale", "reason": "Scaled",
                                       "type": "Normal", "note": "scaled up",
                                       "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"}},
    ("discovery.k8s.io", "v1", "EndpointSlice"): {
        "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True, "serving": True},
                       "nodeName": "node-1", "zone": "a", "hostname": "web-0",
                       "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"},
                       "hints": {"forZones": [{"name": "a"}]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]},
    ("networking.k8s.io", "v1", "Ingress"): {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["example.com"], "secretName": "tls"}],
                 "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket",
                                                 "name": "static"}},
                 "rules": [{"host": "*.example.com", "http": {"paths": [
                     {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web",
                                                                                 "port": {"number": 80}}}},
                     {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api",
                                                                                   "port": {"name": "http"}}}},
                     {"pathType": "ImplementationSpecific",
                      "backend": {"service": {"name": "x", "port": {"number": 8080}}}}]}}]}},
    ("networking.k8s.io", "v1", "IngressClass"): {
        "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx",
                 "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p",
                                "scope": "Namespace", "namespace": "ingress"}}},
    ("networking.k8s.io", "v1", "NetworkPolicy"): {
        "metadata": {"name": "np", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                                       {"namespaceSelector": {"matchLabels": {"team": "a"}}},
                                       {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                              "ports": [{"protocol": "TCP", "port": 5432},
                                        {"port": 30000, "endPort": 32768}, {"port": "metrics"}]}],
                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 53, "protocol": "UDP"}]}]}},
    ("policy", "v1", "PodDisruptionBudget"): {
        "metadata": {"name": "pdb", "namespace": "default"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"}},
    ("rbac.authorization.k8s.io", "v1", "Role"): {
        "metadata": {"name": "reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
                   "verbs": ["*"]}]},
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"): {
        "metadata": {"name": "system:aggregate:view"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]},
        "rules": [{"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]}]},
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"): {
        "metadata": {"name": "read", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "ServiceAccount", "name": "builder", "namespace": "default"},
                     {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]},
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): {
        "metadata": {"name": "admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "admin", "namespace": "kube-system"}]},
    ("storage.k8s.io", "v1", "StorageClass"): {
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "parameters": {"type": "ssd"}, "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True, "mountOptions": ["ro"],
        "allowedTopologies": [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone",
                                                          "values": ["a"]}]}]},
    ("scheduling.k8s.io", "v1", "PriorityClass"): {"metadata": {"name": "high"}, "value": 100000,
                                                  "globalDefault": False, "description": "high",
                                                  "preemptionPolicy": "Never"},
    ("apps", "v1", "ControllerRevision"): {"metadata": {"name": "web-6d4cf56db6", "namespace": "default"},
                                           "revision": 3, "data": {"spec": {"template": {}}}},
}

_SECRET = ("", "v1", "Secret")
_PV = ("", "v1", "PersistentVolume")
_HPA2 = ("autoscaling", "v2", "HorizontalPodAutoscaler")
_ING = ("networking.k8s.io", "v1", "Ingress")
VARIANTS: list[tuple[tuple[str, str, str], dict]] = [
    (SVC, {"metadata": {"name": "np", "namespace": "default"},
           "spec": {"type": "NodePort", "selector": {"app": "web"}, "externalTrafficPolicy": "Cluster",
                    "ports": [{"port": 80, "nodePort": 30001}]}}),
    (SVC, {"metadata": {"name": "ext", "namespace": "default"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
    (SVC, {"metadata": {"name": "headless", "namespace": "default"},
           "spec": {"clusterIP": "None", "selector": {"app": "web"}, "publishNotReadyAddresses": True}}),
    (SVC, {"metadata": {"name": "fixed", "namespace": "default"},
           "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 53, "protocol": "UDP"}]}}),
    (DEPLOY, {"metadata": {"name": "recreate", "namespace": "default"},
              "spec": {"strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    (STS, {"metadata": {"name": "ondelete", "namespace": "default"},
           "spec": {"updateStrategy": {"type": "OnDelete"}, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    (DS, {"metadata": {"name": "ondelete", "namespace": "default"},
          "spec": {"updateStrategy": {"type": "OnDelete"}, "selector": {"matchLabels": {"a": "b"}},
                   "template": {"metadata": {"labels": {"a": "b"}},
                                "spec": {"hostNetwork": True, "hostPID": True, "containers": [{
                                    "name": "c", "image": "i", "ports": [{"containerPort": 9100}],
                                    "securityContext": {"privileged": True}}]}}}}),
    (POD, {"metadata": {"name": "debug", "namespace": "default"},
           "spec": {"shareProcessNamespace": True, "hostIPC": True, "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}},
                                    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]}],
                    "os": {"name": "linux"}, "schedulingGates": [{"name": "example.com/gate"}],
                    "preemptionPolicy": "Never", "overhead": {"cpu": "10m"}}}),
    (_SECRET, {"metadata": {"name": "reg", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
               "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
    (_SECRET, {"metadata": {"name": "sat", "namespace": "default",
                            "annotations": {"kubernetes.io/service-account.name": "default"}},
               "type": "kubernetes.io/service-account-token"}),
    (_SECRET, {"metadata": {"name": "basic", "namespace": "default"}, "type": "kubernetes.io/basic-auth",
               "stringData": {"username": "u", "password": "p"}}),
    (_SECRET, {"metadata": {"name": "ssh", "namespace": "default"}, "type": "kubernetes.io/ssh-auth",
               "data": {"ssh-privatekey": "a2V5"}, "immutable": True}),
    (_PV, {"metadata": {"name": "csi-pv"},
           "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                    "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1", "fsType": "ext4",
                            "volumeAttributes": {"a": "b"}, "nodePublishSecretRef": {"name": "s", "namespace": "d"}}}}),
    (_PV, {"metadata": {"name": "local-pv"},
           "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOncePod"],
                    "local": {"path": "/mnt/disks/ssd1"}, "storageClassName": "local",
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}}),
    (_PV, {"metadata": {"name": "nfs-pv"},
           "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Recycle", "nfs": {"server": "10.0.0.5", "path": "/exports"}}}),
    (CRON, {"metadata": {"name": "hourly", "namespace": "default"},
            "spec": {"schedule": "@hourly", "suspend": True,
                     "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                         "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    (_HPA2, {"metadata": {"name": "obj", "namespace": "default"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"},
                      "maxReplicas": 3,
                      "metrics": [{"type": "Object", "object": {
                          "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "w"},
                          "metric": {"name": "requests"}, "target": {"type": "Value", "value": "10k"}}},
                                  {"type": "ContainerResource", "containerResource": {
                                      "name": "memory", "container": "app",
                                      "target": {"type": "AverageValue", "averageValue": "500Mi"}}}],
                      "behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}}),
    (_ING, {"metadata": {"name": "default-backend", "namespace": "default"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
    (JOB, {"metadata": {"name": "plain", "namespace": "default"},
           "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                          "containers": [{"name": "c", "image": "busybox"}]}}}}),
]
CASES = list(RICH.items()) + VARIANTS


def _case_id(case) -> str:
    gvk, obj = case
    return f"{gvk[0] or 'core'}/{gvk[2]}/{obj['metadata']['name']}"


# Values that do not belong anywhere: every one must give errors, never an exception.
_GARBAGE = (None, "", "Bad Value!", "0", "*", -1, 0, 70000, 2**64, 1.5, True, [], {}, ["x"], [None], [{}], {"a": 1},
            {"": ""}, "x" * 300)


_DELETE = object()


def _in_pod_template(path: tuple) -> bool:
    return path[:3] == ("spec", "template", "spec") or path[:2] == ("template", "spec")


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rich_objects_are_valid(case):
    gvk, obj = case
    obj = copy.deepcopy(obj)
    if gvk == JOB:
        defaults.job_prepare_create(obj, "0b6f9c1e-9d6a-4a57-a0d2-1f6e8c9b7a10")
    assert errors(gvk, obj) == []


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_garbage_never_raises(case):
    """Replace (or delete) every node of a realistic object with ill-typed values: validation reports, never crashes.

    Each node gets two of the garbage values in rotation; ``K8PY_FULL_FUZZ=1`` tries all of them (minutes).
    """
    gvk, base = case
    r = res(*gvk)
    base = copy.deepcopy(base)
    if gvk == JOB:
        defaults.job_prepare_create(base, "0b6f9c1e-9d6a-4a57-a0d2-1f6e8c9b7a10")
    defaults.apply_defaults(r, base)
    old = copy.deepcopy(base)
    old["metadata"].update(uid="u-1", resourceVersion="5", creationTimestamp="2024-01-01T00:00:00Z")
    full = os.environ.get("K8PY_FULL_FUZZ") == "1"
    n = len(_GARBAGE)
    for i, path in enumerate(list(_paths(base))):
        if not path or (not full and _in_pod_template(path) and len(path) > 4):
            continue  # pod template internals are exercised by the Pod case
        values = _GARBAGE if full else (_GARBAGE[i % n], _GARBAGE[(i * 7 + 3) % n], _DELETE)
        for g in values:
            obj = copy.deepcopy(base)
            if g is _DELETE:
                parent = obj
                for p in path[:-1]:
                    parent = parent[p]
                del parent[path[-1]]
            else:
                _set(obj, path, copy.deepcopy(g))
            upd = obj
            if isinstance(obj.get("metadata"), dict):
                upd = dict(obj, metadata=dict(old["metadata"]))
            for errs in (validation.validate(r, obj), validation.validate(r, upd, old),
                         validation.validate_status(r, upd, old)):
                crashed = [e.message() for e in errs if e.type == "InternalError"]
                assert not crashed, (path, g, crashed)
            try:
                defaults.apply_defaults(r, obj)
            except defaults.DecodeError:
                pass
