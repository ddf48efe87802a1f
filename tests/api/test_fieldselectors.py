"""Field selectors: kube's parser, per-kind supported labels, field sets and matching."""

from __future__ import annotations

import pytest

from k8py.api import fieldselectors as fs
from k8py.api.registry import REGISTRY


def res(group: str, version: str, plural: str):
    r = REGISTRY.lookup(group, version, plural)
    assert r is not None
    return r


PODS = res("", "v1", "pods")


# --------------------------------------------------------------------------- parse

@pytest.mark.parametrize("selector,want", [
    ("", []),
    ("metadata.name=foo", [("metadata.name", "=", "foo")]),
    ("metadata.name==foo", [("metadata.name", "=", "foo")]),
    ("status.phase!=Running", [("status.phase", "!=", "Running")]),
    ("a=1,b!=2,c==3", [("a", "=", "1"), ("b", "!=", "2"), ("c", "=", "3")]),
    ("z=1,a=2", [("a", "=", "2"), ("z", "=", "1")]),  # kube sorts the terms
    ("a=", [("a", "=", "")]),
    ("a=1,,b=2", [("a", "=", "1"), ("b", "=", "2")]),
    (r"a=x\,y", [("a", "=", "x,y")]),
    (r"a=x\=y", [("a", "=", "x=y")]),
    (r"a=x\\y", [("a", "=", "x\\y")]),
    (r"a=x\\,b=1", [("a", "=", "x\\"), ("b", "=", "1")]),
    ("a!=b=c".replace("=c", r"\=c"), [("a", "!=", "b=c")]),
    ("x!y=1", [("x!y", "=", "1")]),
    ("spec.nodeName=node-1,metadata.namespace=default",
     [("metadata.namespace", "=", "default"), ("spec.nodeName", "=", "node-1")]),
])
def test_parse(selector, want):
    assert fs.parse(selector) == want


@pytest.mark.parametrize("selector,message", [
    ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
    ("a=1,bar", "invalid selector: 'a=1,bar'; can't understand 'bar'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a==b,c", "invalid selector: 'a==b,c'; can't understand 'c'"),
    (r"a=x\y", r"invalid field selector: invalid escape sequence: \y"),
    ("a=x\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_parse_errors(selector, message):
    with pytest.raises(fs.FieldSelectorError) as e:
        fs.parse(selector)
    assert str(e.value) == message
    assert e.value.code == 400 and e.value.reason == "BadRequest"


def test_escape_roundtrip():
    value = "a,b=c\\d"
    assert fs.escape_value(value) == r"a\,b\=c\\d"
    assert fs.parse("f=" + fs.escape_value(value)) == [("f", "=", value)]


# --------------------------------------------------------------------------- supported labels

def test_supported_fields_per_kind():
    assert fs.supported_fields(PODS) == {
        "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
        "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
        "status.nominatedNodeName", "spec.host"}
    assert fs.supported_fields(res("", "v1", "nodes")) == {"metadata.name", "spec.unschedulable"}
    assert fs.supported_fields(res("", "v1", "namespaces")) == {"metadata.name", "status.phase"}
    assert fs.supported_fields(res("", "v1", "secrets")) == {"metadata.name", "metadata.namespace", "type"}
    assert fs.supported_fields(res("", "v1", "services")) == {"metadata.name", "metadata.namespace",
                                                              "spec.clusterIP", "spec.type"}
    assert fs.supported_fields(res("", "v1", "replicationcontrollers")) == {"metadata.name", "metadata.namespace",
                                                                            "status.replicas"}
    assert fs.supported_fields(res("batch", "v1", "jobs")) == {"metadata.name", "metadata.namespace",
                                                               "status.successful"}
    assert fs.supported_fields(res("", "v1", "events")) == {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
        "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"}
    assert fs.supported_fields(res("events.k8s.io", "v1", "events")) == {
        "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "regarding.apiVersion",
        "regarding.resourceVersion", "regarding.fieldPath", "reason", "reportingController", "source", "type",
        "metadata.namespace", "metadata.name"}
    for plural, group in [("deployments", "apps"), ("replicasets", "apps"), ("configmaps", ""),
                          ("clusterroles", "rbac.authorization.k8s.io"), ("cronjobs", "batch")]:
        assert fs.supported_fields(res(group, "v1", plural)) == {"metadata.name", "metadata.namespace"}


@pytest.mark.parametrize("group,plural,selector,message", [
    ("", "pods", "spec.foo=bar", "field label not supported: spec.foo"),
    ("", "nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("", "events", "regarding.name=x", "field label not supported: regarding.name"),
    ("events.k8s.io", "events", "involvedObject.name=x", "field label not supported: involvedObject.name"),
    ("batch", "jobs", "status.active=1", 'field label "status.active" not supported for batchv1.Job'),
    ("apps", "deployments", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("", "configmaps", "data.x=1", '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    # the first unsupported label in kube's sorted term order is reported
    ("", "pods", "zzz=1,aaa=2", "field label not supported: aaa"),
])
def test_unsupported_labels(group, plural, selector, message):
    with pytest.raises(fs.FieldSelectorError) as e:
        fs.compile(res(group, "v1", plural), selector)
    assert str(e.value) == message
    assert e.value.code == 400


# --------------------------------------------------------------------------- field sets and matching

def _pod(name="p", ns="default", node="node-1", phase="Running", **spec):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": node, "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default", **spec},
            "status": {"phase": phase, "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}}


def test_pod_field_set():
    assert fs.field_set(PODS, _pod()) == {
        "metadata.name": "p", "metadata.namespace": "default", "spec.nodeName": "node-1",
        "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler", "spec.serviceAccountName": "default",
        "spec.hostNetwork": "false", "status.phase": "Running", "status.podIP": "10.0.0.1",
        "status.nominatedNodeName": ""}
    assert fs.field_set(PODS, _pod(hostNetwork=True))["spec.hostNetwork"] == "true"


def test_pod_matching():
    pods = [_pod("a", node="n1"), _pod("b", node="n2", phase="Succeeded"), _pod("c", node="", phase="Pending")]

    def sel(s):
        m = fs.compile(PODS, s)
        return [p["metadata"]["name"] for p in pods if m(fs.field_set(PODS, p))]
    assert sel("") == ["a", "b", "c"]
    assert sel("spec.nodeName=n1") == ["a"]
    assert sel("spec.host=n2") == ["b"]
    assert sel("spec.nodeName=") == ["c"]
    assert sel("spec.nodeName!=") == ["a", "b"]
    assert sel("status.phase!=Succeeded,status.phase!=Failed") == ["a", "c"]
    assert sel("metadata.name=b,status.phase==Succeeded") == ["b"]
    assert sel("metadata.namespace=default,metadata.name!=a") == ["b", "c"]
    assert sel("status.podIPs=10.0.0.1") == []  # accepted, but not in the field set: reads as ""
    assert sel("status.podIP=10.0.0.1") == ["a", "b", "c"]


def test_other_field_sets():
    node = res("", "v1", "nodes")
    assert fs.field_set(node, {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}) == {
        "metadata.name": "n", "spec.unschedulable": "true"}
    assert fs.compile(node, "spec.unschedulable=false")(fs.field_set(node, {"metadata": {"name": "n"}}))
    ns = res("", "v1", "namespaces")
    f = fs.field_set(ns, {"metadata": {"name": "kube-system"}, "status": {"phase": "Terminating"}})
    assert f["status.phase"] == "Terminating" and f["metadata.name"] == "kube-system"
    sec = res("", "v1", "secrets")
    f = fs.field_set(sec, {"metadata": {"name": "s", "namespace": "x"}, "type": "kubernetes.io/tls"})
    assert f == {"type": "kubernetes.io/tls", "metadata.name": "s", "metadata.namespace": "x"}
    svc = res("", "v1", "services")
    f = fs.field_set(svc, {"metadata": {"name": "s", "namespace": "x"},
                           "spec": {"type": "NodePort", "clusterIP": "10.96.0.7"}})
    assert f["spec.type"] == "NodePort" and f["spec.clusterIP"] == "10.96.0.7"
    job = res("batch", "v1", "jobs")
    assert fs.field_set(job, {"metadata": {"name": "j", "namespace": "x"}, "status": {"succeeded": 2}})[
        "status.successful"] == "2"
    assert fs.compile(job, "status.successful=0")(fs.field_set(job, {"metadata": {"name": "j"}}))
    rc = res("", "v1", "replicationcontrollers")
    assert fs.field_set(rc, {"metadata": {"name": "r", "namespace": "x"}, "status": {"replicas": 3}})[
        "status.replicas"] == "3"
    cm = res("", "v1", "configmaps")
    assert fs.field_set(cm, {"metadata": {"name": "c", "namespace": "x"}}) == {"metadata.name": "c",
                                                                              "metadata.namespace": "x"}
    cr = res("rbac.authorization.k8s.io", "v1", "clusterroles")
    assert fs.field_set(cr, {"metadata": {"name": "admin"}}) == {"metadata.name": "admin"}
    assert not fs.compile(cr, "metadata.namespace=x")(fs.field_set(cr, {"metadata": {"name": "admin"}}))
    assert fs.compile(cr, "metadata.namespace=")(fs.field_set(cr, {"metadata": {"name": "admin"}}))


CORE_EVENT = {"metadata": {"name": "e1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1",
                                 "apiVersion": "v1", "resourceVersion": "9", "fieldPath": "spec.containers{c}"},
              "reason": "BackOff", "type": "Warning", "source": {"component": "kubelet", "host": "n1"},
              "reportingComponent": "kubelet", "reportingInstance": "n1"}


def test_core_event_fields():
    ev = res("", "v1", "events")
    f = fs.field_set(ev, CORE_EVENT)
    assert f == {"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web-1",
                 "involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "9",
                 "involvedObject.fieldPath": "spec.containers{c}", "reason": "BackOff",
                 "reportingComponent": "kubelet", "source": "kubelet", "type": "Warning",
                 "metadata.name": "e1", "metadata.namespace": "default"}
    assert fs.compile(ev, "involvedObject.kind=Pod,involvedObject.name=web-1,type!=Normal")(f)
    no_source = dict(CORE_EVENT, source={}, reportingComponent="scheduler")
    assert fs.field_set(ev, no_source)["source"] == "scheduler"


def test_events_k8s_io_fields():
    ev = res("events.k8s.io", "v1", "events")
    obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
           "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"}, "reason": "Pulled",
           "reportingController": "kubelet", "type": "Normal", "note": "x"}
    f = fs.field_set(ev, obj)
    assert f["involvedObject.name"] == "web-1" and f["reportingComponent"] == "kubelet" and f["source"] == "kubelet"
    assert fs.compile(ev, "regarding.name=web-1,reportingController=kubelet")(f)
    assert not fs.compile(ev, "regarding.kind=Node")(f)
    # an events.k8s.io selector also matches a core/v1-shaped stored event
    assert fs.compile(ev, "regarding.name=web-1")(fs.field_set(ev, CORE_EVENT))


def test_convert_label_and_exact_match():
    assert fs.convert_label(PODS, "spec.host") == "spec.nodeName"
    assert fs.requires_exact_match(PODS, "spec.host=n1,metadata.name=x", "spec.nodeName") == "n1"
    assert fs.requires_exact_match(PODS, "metadata.name!=x", "metadata.name") is None
