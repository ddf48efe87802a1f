"""Server-side tables: columns and cells per kind, as kube 1.32's printers fill them."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

from k8py.api import tables
from k8py.api.duration import human_duration, short_human_duration
from k8py.api.registry import REGISTRY
from k8py.api.tables_util import quantity

NOW = 1_700_000_000.0


def T(ago: float) -> str:
    return datetime.fromtimestamp(int(NOW - ago), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def MT(ago: float) -> str:
    return datetime.fromtimestamp(int(NOW - ago), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def res(group: str, version: str, plural: str):
    r = REGISTRY.lookup(group, version, plural)
    assert r is not None
    return r


def meta(name: str, ago: float = 60, ns: str | None = "default", **kw: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "12", "creationTimestamp": T(ago)}
    if ns is not None:
        m["namespace"] = ns
    m.update(kw)
    return m


def names(r) -> list[str]:
    return [c["name"] for c in tables.column_definitions(r)]


def wide(r) -> list[str]:
    return [c["name"] for c in tables.column_definitions(r) if c["priority"]]


# --------------------------------------------------------------------------- durations

@pytest.mark.parametrize("secs,want", [
    (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (59, "59s"), (119.9, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60 * 25, "3h25m"),
    (8 * 3600, "8h"), (47 * 3600 + 3599, "47h"), (48 * 3600, "2d"), (3 * 86400 + 5 * 3600, "3d5h"),
    (8 * 86400, "8d"), (729 * 86400, "729d"), (730 * 86400, "2y"), (800 * 86400, "2y70d"),
    (8 * 365 * 86400, "8y"),
])
def test_human_duration(secs, want):
    assert human_duration(secs) == want


@pytest.mark.parametrize("secs,want", [
    (-3, "<invalid>"), (-1, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"),
    (86400 * 3, "3d"), (86400 * 400, "1y"),
])
def test_short_human_duration(secs, want):
    assert short_human_duration(secs) == want


@pytest.mark.parametrize("q,want", [
    ("1Gi", "1Gi"), ("1.5Gi", "1536Mi"), ("1024Mi", "1Gi"), ("0.5Gi", "512Mi"), ("100Mi", "100Mi"),
    ("512", "512"), ("1000", "1k"), ("1500", "1500"), ("1000m", "1"), ("0.5", "500m"), ("100m", "100m"),
    ("0", "0"), ("0Gi", "0"), ("1e3", "1e3"), ("12e6", "12e6"), ("0.1n", "1n"), ("-1.5", "-1500m"),
    ("10G", "10G"), ("0.5Ki", "512"), (None, "0"), ("junk", "junk"),
])
def test_quantity_canonical(q, want):
    assert quantity(q) == want


# --------------------------------------------------------------------------- pods

POD = res("", "v1", "pods")


def pod(name: str = "p", *, phase: str = "Running", containers: list[dict] | None = None,
        statuses: list[dict] | None = None, init: list[dict] | None = None, init_statuses: list[dict] | None = None,
        conditions: list[dict] | None = None, ago: float = 3600, **meta_kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "c", "image": "nginx"}], "nodeName": "node-1"}
    if init is not None:
        spec["initContainers"] = init
    status: dict[str, Any] = {"phase": phase}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ago, **meta_kw), "spec": spec, "status": status}


def running(name: str = "c", ready: bool = True, restarts: int = 0, last_finished: float | None = None) -> dict:
    cs: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if last_finished is not None:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": T(last_finished)}}
    return cs


def waiting(reason: str, name: str = "c", restarts: int = 0, last_finished: float | None = None) -> dict:
    cs: dict[str, Any] = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if last_finished is not None:
        cs["lastState"] = {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": T(last_finished)}}
    return cs


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0, name: str = "c") -> dict:
    t: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": t}}


def test_pod_columns():
    assert names(POD) == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                          "Readiness Gates"]
    assert wide(POD) == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    cols = tables.column_definitions(POD)
    assert cols[0] == {"name": "Name", "type": "string", "format": "name", "priority": 0,
                       "description": cols[0]["description"]}
    assert cols[0]["description"].startswith("Name must be unique within a namespace.")
    assert [c["type"] for c in cols] == ["string"] * 9
    assert cols[4]["description"].startswith("CreationTimestamp is a timestamp")


def test_pod_running_with_restarts_wide():
    p = pod("web-1", containers=[{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}],
            statuses=[running("web", restarts=3, last_finished=300), running("side")], ago=30 * 3600)
    p["status"]["podIP"] = "10.1.0.5"
    p["status"]["podIPs"] = [{"ip": "10.1.0.5"}]
    assert tables.row_cells(POD, p, NOW) == ["web-1", "2/2", "Running", "3 (5m ago)", "30h", "10.1.0.5", "node-1",
                                             "<none>", "<none>"]


@pytest.mark.parametrize("kwargs,status,ready,restarts", [
    (dict(phase="Pending", statuses=None), "Pending", "0/1", "0"),
    (dict(phase="Pending", statuses=[waiting("ContainerCreating")]), "ContainerCreating", "0/1", "0"),
    (dict(phase="Pending", statuses=[waiting("ImagePullBackOff")]), "ImagePullBackOff", "0/1", "0"),
    (dict(statuses=[waiting("CrashLoopBackOff", restarts=12, last_finished=45)]), "CrashLoopBackOff", "0/1",
     "12 (45s ago)"),
    (dict(phase="Succeeded", statuses=[terminated("Completed")]), "Completed", "0/1", "0"),
    (dict(phase="Failed", statuses=[terminated("Error", 1)]), "Error", "0/1", "0"),
    (dict(phase="Failed", statuses=[terminated("", 137)]), "ExitCode:137", "0/1", "0"),
    (dict(phase="Failed", statuses=[terminated("", 0, signal=9)]), "Signal:9", "0/1", "0"),
    (dict(phase="Running", statuses=[running(ready=False)]), "Running", "0/1", "0"),
])
def test_pod_status_cases(kwargs, status, ready, restarts):
    cells = tables.row_cells(POD, pod(**kwargs), NOW)
    assert cells[1:4] == [ready, status, restarts]


def test_pod_phase_reason_evicted():
    p = pod(phase="Failed")
    p["status"]["reason"] = "Evicted"
    assert tables.row_cells(POD, p, NOW)[2] == "Evicted"


def test_pod_completed_but_one_still_running():
    cs = [running("a"), terminated("Completed", name="b")]
    two = [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]
    p = pod(containers=two, statuses=cs, conditions=[{"type": "Ready", "status": "True"}])
    assert tables.row_cells(POD, p, NOW)[1:3] == ["1/2", "Running"]
    p = pod(containers=two, statuses=cs, conditions=[{"type": "Ready", "status": "False"}])
    assert tables.row_cells(POD, p, NOW)[1:3] == ["1/2", "NotReady"]


INIT2 = [{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}]


@pytest.mark.parametrize("init_statuses,status", [
    ([running("i1", ready=False), waiting("PodInitializing", "i2")], "Init:0/2"),
    ([terminated("Completed", name="i1"), running("i2", ready=False)], "Init:1/2"),
    ([waiting("CrashLoopBackOff", "i1"), waiting("PodInitializing", "i2")], "Init:CrashLoopBackOff"),
    ([terminated("Error", 1, name="i1"), waiting("PodInitializing", "i2")], "Init:Error"),
    ([terminated("", 3, name="i1"), waiting("PodInitializing", "i2")], "Init:ExitCode:3"),
    ([terminated("", 1, signal=9, name="i1"), waiting("PodInitializing", "i2")], "Init:Signal:9"),
    ([waiting("PodInitializing", "i1"), waiting("PodInitializing", "i2")], "Init:0/2"),
])
def test_pod_init_containers(init_statuses, status):
    p = pod(phase="Pending", init=INIT2, init_statuses=init_statuses, statuses=[waiting("PodInitializing")])
    assert tables.row_cells(POD, p, NOW)[1:4] == ["0/1", status, "0"]


def test_pod_init_restarts_count_while_initializing():
    st = waiting("CrashLoopBackOff", "i1", restarts=4, last_finished=90)
    p = pod(phase="Pending", init=INIT2, init_statuses=[st, waiting("PodInitializing", "i2")],
            statuses=[waiting("PodInitializing", restarts=0)])
    assert tables.row_cells(POD, p, NOW)[2:4] == ["Init:CrashLoopBackOff", "4 (90s ago)"]


def test_pod_init_done_counts_only_app_restarts():
    p = pod(init=INIT2, init_statuses=[terminated("Completed", name="i1"), terminated("Completed", name="i2")],
            statuses=[running(restarts=1, last_finished=7200)],
            conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}])
    p["status"]["initContainerStatuses"][0]["restartCount"] = 5
    assert tables.row_cells(POD, p, NOW)[1:4] == ["1/1", "Running", "1 (120m ago)"]


def test_pod_sidecar_init_container():
    init = [{"name": "side", "image": "envoy", "restartPolicy": "Always"}]
    side = running("side", restarts=2, last_finished=600)
    side["started"] = True
    p = pod(init=init, init_statuses=[side], statuses=[running(restarts=1, last_finished=1200)],
            conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}])
    assert tables.row_cells(POD, p, NOW)[1:4] == ["2/2", "Running", "3 (10m ago)"]


def test_pod_terminating_and_node_lost():
    p = pod(statuses=[running()], deletionTimestamp=T(5))
    assert tables.row_cells(POD, p, NOW)[2] == "Terminating"
    p["status"]["reason"] = "NodeLost"
    assert tables.row_cells(POD, p, NOW)[2] == "Unknown"
    done = pod(phase="Succeeded", statuses=[terminated("Completed")], deletionTimestamp=T(5))
    assert tables.row_cells(POD, done, NOW)[2] == "Completed"


def test_pod_scheduling_gated_and_wide_columns():
    p = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}])
    p["spec"].pop("nodeName")
    p["spec"]["readinessGates"] = [{"conditionType": "a.io/x"}, {"conditionType": "b.io/y"}]
    p["status"]["conditions"] += [{"type": "a.io/x", "status": "True"}, {"type": "b.io/y", "status": "False"}]
    p["status"]["nominatedNodeName"] = "node-9"
    assert tables.row_cells(POD, p, NOW) == ["p", "0/1", "SchedulingGated", "0", "60m", "<none>", "<none>",
                                             "node-9", "1/2"]


def test_pod_ip_from_pod_ips_and_unknown_age():
    p = pod(statuses=[running()])
    p["status"]["podIPs"] = [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}]
    del p["metadata"]["creationTimestamp"]
    cells = tables.row_cells(POD, p, NOW)
    assert cells[4] == "<unknown>" and cells[5] == "fd00::5"


# --------------------------------------------------------------------------- the Table object

def test_table_metadata_include_object():
    p = pod("a", phase="Succeeded", statuses=[terminated("Completed")])
    t = tables.table(POD, [p], NOW, None, {"resourceVersion": "77"})
    assert list(t) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "77"}
    assert [c["name"] for c in t["columnDefinitions"]] == names(POD)
    row = t["rows"][0]
    assert list(row) == ["cells", "conditions", "object"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": p["metadata"]}
    assert tables.table(POD, [p], NOW, "Metadata", {})["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_table_include_object_object_none_and_invalid():
    p = pod("a", phase="Failed", statuses=[terminated("Error", 1)])
    t = tables.table(POD, [p], NOW, "Object", {})
    assert t["rows"][0]["object"] is p
    assert t["rows"][0]["conditions"][0]["reason"] == "Failed"
    t = tables.table(POD, [pod("b", statuses=[running()])], NOW, "None", {})
    assert t["rows"][0] == {"cells": t["rows"][0]["cells"], "object": None}
    with pytest.raises(tables.TableOptionsError) as e:
        tables.table(POD, [p], NOW, "Everything", {})
    assert str(e.value) == ('Unable to convert to Table as requested: includeObject: Invalid value: "Everything": '
                            "must be 'Metadata', 'Object', 'None', or empty")
    assert e.value.code == 400


def test_table_object_gets_kind_when_missing_and_no_headers():
    cm = {"metadata": meta("c"), "data": {"a": "1"}}
    r = res("", "v1", "configmaps")
    t = tables.table(r, [cm], NOW, "Object", {}, no_headers=True)
    assert t["columnDefinitions"] is None
    assert t["rows"][0]["object"]["kind"] == "ConfigMap" and t["rows"][0]["object"]["apiVersion"] == "v1"
    assert tables.table(r, [], NOW, None, {})["rows"] == []


def test_default_table_for_kinds_without_printer():
    for plural, group in [("roles", "rbac.authorization.k8s.io"), ("clusterroles", "rbac.authorization.k8s.io"),
                          ("limitranges", "")]:
        r = res(group, "v1", plural)
        cols = tables.column_definitions(r)
        assert [(c["name"], c["type"], c["format"]) for c in cols] == [("Name", "string", "name"),
                                                                      ("Created At", "date", "")]
        obj = {"metadata": meta("x", 90)}
        assert tables.row_cells(r, obj, NOW) == ["x", T(90)]
    r = res("rbac.authorization.k8s.io", "v1", "roles")
    assert tables.row_cells(r, {"metadata": {"name": "y", "creationTimestamp": "2024-05-01T10:00:00+02:00"}},
                            NOW) == ["y", "2024-05-01T08:00:00Z"]
    assert tables.row_cells(r, {"metadata": {"name": "z"}}, NOW) == ["z", "0001-01-01T00:00:00Z"]
    assert tables.table(r, [], NOW, None, {})["rows"] is None


def test_every_registered_kind_has_cells_for_every_column():
    for r in REGISTRY.resources:
        cols = tables.column_definitions(r)
        assert cols[0]["format"] == "name" or r.kind == "Event"
        for obj in ({"metadata": {"name": "x"}}, {"metadata": meta("x"), "spec": {}, "status": {}}):
            assert len(tables.row_cells(r, obj, NOW)) == len(cols), r


def test_table_of_10000_pods_is_fast():
    base = pod("p", containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
               statuses=[running("a", restarts=2, last_finished=100), running("b")],
               conditions=[{"type": "Ready", "status": "True"}])
    objs = []
    for i in range(10000):
        o = dict(base)
        o["metadata"] = dict(base["metadata"], name=f"p-{i}", creationTimestamp=T(i))
        objs.append(o)
    start = time.perf_counter()
    t = tables.table(POD, objs, NOW, "Metadata", {"resourceVersion": "1"})
    elapsed = time.perf_counter() - start
    assert len(t["rows"]) == 10000
    assert elapsed < 2.0, elapsed  # ~0.1 s on a dev machine; generous for CI


# --------------------------------------------------------------------------- apps

def test_deployment():
    r = res("apps", "v1", "deployments")
    assert names(r) == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert wide(r) == ["Containers", "Images", "Selector"]
    d = {"metadata": meta("web", 5 * 3600), "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"},
                                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                         {"key": "canary", "operator": "DoesNotExist"}]},
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"},
                                             {"name": "log", "image": "fluentd"}]}}},
         "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert tables.row_cells(r, d, NOW) == ["web", "2/3", 3, 2, "5h", "web,log", "nginx:1.25,fluentd",
                                           "app=web,!canary,tier in (a,b)"]
    d["spec"]["selector"] = {"matchExpressions": [{"key": "x", "operator": "Bogus"}]}
    assert tables.row_cells(r, d, NOW)[-1] == "<invalid>"
    assert tables.row_cells(r, {"metadata": meta("e"), "spec": {}}, NOW)[1:4] == ["0/1", 0, 0]


def test_replicaset_statefulset_daemonset():
    rs = res("apps", "v1", "replicasets")
    assert names(rs) == ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    obj = {"metadata": meta("web-5d8", 600), "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                                                      "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
           "status": {"replicas": 2, "readyReplicas": 1}}
    assert tables.row_cells(rs, obj, NOW) == ["web-5d8", 2, 2, 1, "10m", "c", "i", "a=b"]

    sts = res("apps", "v1", "statefulsets")
    assert names(sts) == ["Name", "Ready", "Age", "Containers", "Images"]
    obj = {"metadata": meta("db", 86400 * 2), "spec": {"replicas": 3, "template": {"spec": {
        "containers": [{"name": "pg", "image": "postgres:16"}]}}}, "status": {"readyReplicas": 3}}
    assert tables.row_cells(sts, obj, NOW) == ["db", "3/3", "2d", "pg", "postgres:16"]

    ds = res("apps", "v1", "daemonsets")
    assert names(ds) == ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                         "Containers", "Images", "Selector"]
    obj = {"metadata": meta("proxy", 3600), "spec": {"selector": {"matchLabels": {"k": "v"}}, "template": {"spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "p", "image": "kp"}]}}},
           "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                      "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert tables.row_cells(ds, obj, NOW) == ["proxy", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "60m", "p", "kp",
                                              "k=v"]


def test_controller_revision():
    r = res("apps", "v1", "controllerrevisions")
    assert names(r) == ["Name", "Controller", "Revision", "Age"]
    obj = {"metadata": meta("web-7c9", 120, ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": True}]),
           "revision": 4}
    assert tables.row_cells(r, obj, NOW) == ["web-7c9", "statefulset.apps/web", 4, "2m"]
    obj["metadata"]["ownerReferences"] = []
    assert tables.row_cells(r, obj, NOW)[1] == "<none>"


# --------------------------------------------------------------------------- batch

JOB = res("batch", "v1", "jobs")


def job(status: dict, spec: dict | None = None, **kw: Any) -> dict:
    s = {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
         "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}
    s.update(spec or {})
    return {"metadata": meta("pi", 600, **kw), "spec": s, "status": status}


def test_job_columns_and_complete():
    assert names(JOB) == ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
    j = job({"succeeded": 1, "startTime": T(600), "completionTime": T(560),
             "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]})
    assert tables.row_cells(JOB, j, NOW) == ["pi", "Complete", "1/1", "40s", "10m", "pi", "perl",
                                             "batch.kubernetes.io/controller-uid=u"]


def test_job_status_variants():
    running = job({"startTime": T(300), "active": 1})
    assert tables.row_cells(JOB, running, NOW)[1:4] == ["Running", "0/1", "5m"]
    failed = job({"failed": 7, "startTime": T(300), "conditions": [{"type": "Failed", "status": "True"}]})
    assert tables.row_cells(JOB, failed, NOW)[1] == "Failed"
    suspended = job({"conditions": [{"type": "Suspended", "status": "True"}]})
    assert tables.row_cells(JOB, suspended, NOW)[1:4] == ["Suspended", "0/1", ""]
    target = job({"conditions": [{"type": "FailureTarget", "status": "True"}]})
    assert tables.row_cells(JOB, target, NOW)[1] == "FailureTarget"
    deleting = job({"conditions": [{"type": "Suspended", "status": "True"}]}, deletionTimestamp=T(1))
    assert tables.row_cells(JOB, deleting, NOW)[1] == "Terminating"
    parallel = job({"succeeded": 2}, {"completions": None, "parallelism": 3})
    assert tables.row_cells(JOB, parallel, NOW)[2] == "2/1 of 3"
    single = job({"succeeded": 0}, {"completions": None, "parallelism": 1})
    assert tables.row_cells(JOB, single, NOW)[2] == "0/1"


def test_cronjob():
    r = res("batch", "v1", "cronjobs")
    assert names(r) == ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers",
                        "Images", "Selector"]
    cols = tables.column_definitions(r)
    assert cols[3]["type"] == "boolean" and cols[4]["type"] == "integer"
    cj = {"metadata": meta("hello", 86400), "spec": {"schedule": "*/5 * * * *", "suspend": False, "jobTemplate": {
        "spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}]}}}}},
          "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": T(100)}}
    assert tables.row_cells(r, cj, NOW) == ["hello", "*/5 * * * *", "<none>", "False", 1, "100s", "24h", "h",
                                            "busybox", "<none>"]
    cj["spec"]["timeZone"] = "Etc/UTC"
    cj["spec"].pop("suspend")
    cj["status"] = {}
    assert tables.row_cells(r, cj, NOW)[2:6] == ["Etc/UTC", "<unset>", 0, "<none>"]


# --------------------------------------------------------------------------- services, endpoints, nodes

def test_services():
    r = res("", "v1", "services")
    assert names(r) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert wide(r) == ["Selector"]
    k = {"metadata": meta("kubernetes", 86400 * 40), "spec": {
        "type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}
    assert tables.row_cells(r, k, NOW) == ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "40d", "<none>"]
    lb = {"metadata": meta("lb", 600), "spec": {
        "type": "LoadBalancer", "clusterIPs": ["10.96.3.4"], "selector": {"tier": "fe", "app": "web"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "nodePort": 30053, "protocol": "UDP"}]},
          "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]}}}
    assert tables.row_cells(r, lb, NOW) == ["lb", "LoadBalancer", "10.96.3.4", "203.0.113.10,lb.example.com",
                                            "80:30080/TCP,53:30053/UDP", "10m", "app=web,tier=fe"]
    lb["status"] = {}
    assert tables.row_cells(r, lb, NOW)[3] == "<pending>"
    lb["spec"]["externalIPs"] = ["1.2.3.4"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}
    assert tables.row_cells(r, lb, NOW)[3] == "5.6.7.8,1.2.3.4"
    ext = {"metadata": meta("ext", 60), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert tables.row_cells(r, ext, NOW) == ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "60s",
                                             "<none>"]
    headless = {"metadata": meta("h", 60), "spec": {"type": "ClusterIP", "clusterIPs": ["None"],
                                                     "externalIPs": ["9.9.9.9", "8.8.8.8"]}}
    assert tables.row_cells(r, headless, NOW)[2:4] == ["None", "9.9.9.9,8.8.8.8"]


def test_endpoints():
    r = res("", "v1", "endpoints")
    assert names(r) == ["Name", "Endpoints", "Age"]
    ep = {"metadata": meta("web", 60), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}
    assert tables.row_cells(r, ep, NOW) == ["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "60s"]
    v6 = {"metadata": meta("v6", 60), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]}
    assert tables.row_cells(r, v6, NOW)[1] == "[fd00::1]:8080"
    headless = {"metadata": meta("h", 60), "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}
    assert tables.row_cells(r, headless, NOW)[1] == "10.0.0.9"
    assert tables.row_cells(r, {"metadata": meta("none", 60)}, NOW)[1] == "<none>"


def test_endpointslice():
    r = res("discovery.k8s.io", "v1", "endpointslices")
    assert names(r) == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    eps = {"metadata": meta("web-abc", 60), "addressType": "IPv4",
           "ports": [{"name": "http", "port": 80}, {"name": "x"}, {}, {"port": 9}],
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]}
    assert tables.row_cells(r, eps, NOW) == ["web-abc", "IPv4", "80,x,* + 1 more...",
                                             "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "60s"]
    empty = {"metadata": meta("e", 60), "addressType": "IPv6"}
    assert tables.row_cells(r, empty, NOW)[2:4] == ["<unset>", "<unset>"]


def test_nodes():
    r = res("", "v1", "nodes")
    assert names(r) == ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
                        "Kernel-Version", "Container-Runtime"]
    assert wide(r) == ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]
    n = {"metadata": meta("cp", 86400 * 100, ns=None, labels={"node-role.kubernetes.io/control-plane": "",
                                                             "kubernetes.io/role": "master",
                                                             "node-role.kubernetes.io/": "x"}),
         "spec": {"unschedulable": True},
         "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "192.168.1.2"},
                                  {"type": "ExternalIP", "address": "34.1.2.3"}, {"type": "Hostname", "address": "cp"}],
                    "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12",
                                 "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"}}}
    assert tables.row_cells(r, n, NOW) == ["cp", "Ready,SchedulingDisabled", "control-plane,master", "100d", "v1.32.0",
                                           "192.168.1.2", "34.1.2.3", "Debian GNU/Linux 12", "6.1.0",
                                           "containerd://1.7.0"]
    bare = {"metadata": meta("w", 60, ns=None)}
    assert tables.row_cells(r, bare, NOW) == ["w", "Unknown", "<none>", "60s", "", "<none>", "<none>", "<unknown>",
                                              "<unknown>", "<unknown>"]
    bare["status"] = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    assert tables.row_cells(r, bare, NOW)[1] == "NotReady"


# --------------------------------------------------------------------------- events

def test_core_events():
    r = res("", "v1", "events")
    assert names(r) == ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen",
                        "Count", "Name"]
    assert wide(r) == ["Subobject", "Source", "First Seen", "Count", "Name"]
    cols = tables.column_definitions(r)
    assert cols[-1]["format"] == "name" and cols[0]["format"] == ""
    ev = {"metadata": meta("web-1.17a", 400), "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default",
                                                                 "fieldPath": "spec.containers{web}"},
          "reason": "BackOff", "message": "Back-off restarting failed container  ",
          "source": {"component": "kubelet", "host": "node-a"}, "firstTimestamp": T(400), "lastTimestamp": T(30),
          "count": 7, "type": "Warning"}
    assert tables.row_cells(r, ev, NOW) == ["30s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}",
                                            "kubelet, node-a", "Back-off restarting failed container", "6m40s", 7,
                                            "web-1.17a"]
    new_style = {"metadata": meta("web.1", 200), "involvedObject": {"kind": "Deployment", "name": "web"},
                 "reason": "ScalingReplicaSet", "message": "Scaled up", "eventTime": MT(200),
                 "reportingComponent": "deployment-controller", "reportingInstance": "cm-1", "type": "Normal"}
    assert tables.row_cells(r, new_style, NOW) == ["3m20s", "Normal", "ScalingReplicaSet", "deployment/web", "",
                                                   "deployment-controller, cm-1", "Scaled up", "3m20s", 1, "web.1"]
    series = dict(new_style, series={"count": 5, "lastObservedTime": MT(10)}, involvedObject={"kind": "Node"})
    assert tables.row_cells(r, series, NOW)[:4] == ["10s", "Normal", "ScalingReplicaSet", "node"]
    assert tables.row_cells(r, series, NOW)[8] == 5


def test_events_k8s_io_events():
    r = res("events.k8s.io", "v1", "events")
    assert names(r) == names(res("", "v1", "events"))
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("x.1", 100), "eventTime": MT(100),
          "reportingController": "kubelet", "reportingInstance": "node-a", "action": "Pulling", "reason": "Pulling",
          "regarding": {"kind": "Pod", "name": "x", "namespace": "default", "fieldPath": "spec.containers{c}"},
          "note": "Pulling image \"nginx\"", "type": "Normal", "deprecatedCount": 2,
          "deprecatedFirstTimestamp": T(100), "deprecatedLastTimestamp": T(50),
          "deprecatedSource": {"component": "kubelet", "host": "node-a"}}
    assert tables.row_cells(r, ev, NOW) == ["50s", "Normal", "Pulling", "pod/x", "spec.containers{c}",
                                            "kubelet, node-a", 'Pulling image "nginx"', "100s", 2, "x.1"]


# --------------------------------------------------------------------------- simple core kinds

def test_namespace_secret_configmap_serviceaccount():
    ns = res("", "v1", "namespaces")
    assert names(ns) == ["Name", "Status", "Age"]
    assert tables.row_cells(ns, {"metadata": meta("kube-system", 86400 * 9, ns=None),
                                 "status": {"phase": "Active"}}, NOW) == ["kube-system", "Active", "9d"]
    sec = res("", "v1", "secrets")
    assert names(sec) == ["Name", "Type", "Data", "Age"]
    s = {"metadata": meta("tls", 60), "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}
    assert tables.row_cells(sec, s, NOW) == ["tls", "kubernetes.io/tls", 2, "60s"]
    cm = res("", "v1", "configmaps")
    assert names(cm) == ["Name", "Data", "Age"]
    c = {"metadata": meta("cfg", 60), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert tables.row_cells(cm, c, NOW) == ["cfg", 3, "60s"]
    sa = res("", "v1", "serviceaccounts")
    assert names(sa) == ["Name", "Secrets", "Age"]
    assert tables.row_cells(sa, {"metadata": meta("default", 60)}, NOW) == ["default", 0, "60s"]


def test_rc_and_podtemplate():
    rc = res("", "v1", "replicationcontrollers")
    assert names(rc) == ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    obj = {"metadata": meta("rc", 60), "spec": {"replicas": 2, "selector": {"app": "x"},
                                                "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
           "status": {"replicas": 2, "readyReplicas": 2}}
    assert tables.row_cells(rc, obj, NOW) == ["rc", 2, 2, 2, "60s", "c", "i", "app=x"]
    pt = res("", "v1", "podtemplates")
    assert names(pt) == ["Name", "Containers", "Images", "Pod Labels"]
    assert wide(pt) == []
    obj = {"metadata": meta("t", 60), "template": {"metadata": {"labels": {"b": "2", "a": "1"}},
                                                    "spec": {"containers": [{"name": "c1", "image": "i1"},
                                                                            {"name": "c2", "image": "i2"}]}}}
    assert tables.row_cells(pt, obj, NOW) == ["t", "c1,c2", "i1,i2", "a=1,b=2"]


def test_pv_pvc():
    pv = res("", "v1", "persistentvolumes")
    assert names(pv) == ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
                         "VolumeAttributesClass", "Reason", "Age", "VolumeMode"]
    assert wide(pv) == ["VolumeMode"]
    obj = {"metadata": meta("pv-1", 3600, ns=None), "spec": {
        "capacity": {"storage": "1.5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
        "storageClassName": "standard", "volumeMode": "Filesystem"}, "status": {"phase": "Bound"}}
    assert tables.row_cells(pv, obj, NOW) == ["pv-1", "1536Mi", "RWO,RWX", "Retain", "Bound", "default/data",
                                              "standard", "<unset>", "", "60m", "Filesystem"]
    obj["metadata"]["deletionTimestamp"] = T(1)
    obj["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "old"}
    assert tables.row_cells(pv, obj, NOW)[4:7] == ["Terminating", "default/data", "old"]

    pvc = res("", "v1", "persistentvolumeclaims")
    assert names(pvc) == ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                          "VolumeAttributesClass", "Age", "VolumeMode"]
    claim = {"metadata": meta("data", 600), "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                                                     "resources": {"requests": {"storage": "1Gi"}},
                                                     "volumeName": "pv-1", "volumeMode": "Filesystem"},
             "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"],
                        "capacity": {"storage": "1024Mi"}}}
    assert tables.row_cells(pvc, claim, NOW) == ["data", "Bound", "pv-1", "1Gi", "RWO,RWOP", "standard", "<unset>",
                                                 "10m", "Filesystem"]
    pending = {"metadata": meta("p", 5), "spec": {"resources": {"requests": {"storage": "1Gi"}}},
               "status": {"phase": "Pending"}}
    assert tables.row_cells(pvc, pending, NOW) == ["p", "Pending", "", "", "", "", "<unset>", "5s", "<unset>"]


def test_resource_quota():
    r = res("", "v1", "resourcequotas")
    assert names(r) == ["Name", "Request", "Limit", "Age"]
    q = {"metadata": meta("q", 60), "status": {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4000m",
                 "requests.memory": "1Gi"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.memory": "512Mi", "requests.memory": "0"}}}
    assert tables.row_cells(r, q, NOW) == ["q", "pods: 3/10, requests.cpu: 500m/2, requests.memory: 0/1Gi",
                                           "limits.cpu: 0/4, limits.memory: 512Mi/2Gi", "60s"]


# --------------------------------------------------------------------------- other groups

def test_hpa_v2_and_v1():
    r2 = res("autoscaling", "v2", "horizontalpodautoscalers")
    r1 = res("autoscaling", "v1", "horizontalpodautoscalers")
    want_cols = ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert names(r2) == want_cols and names(r1) == want_cols
    h = {"metadata": meta("web", 600), "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1,
        "maxReplicas": 10, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                           "averageValue": "500Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                             "averageValue": "1k"}}}]},
         "status": {"currentReplicas": 2, "currentMetrics": [
             {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12,
                                                                           "averageValue": "120m"}}}]}}
    assert tables.row_cells(r2, h, NOW) == ["web", "Deployment/web", "cpu: 12%/50%, memory: <unknown>/500Mi + 1 more...",
                                            "1", 10, 2, "10m"]
    h["spec"]["metrics"] = h["spec"]["metrics"][2:] + [
        {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "30"}}}]
    h["status"]["currentMetrics"] = [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                                "current": {"averageValue": "1500m"}}}]
    assert tables.row_cells(r2, h, NOW)[2] == "1500m/1k, <unknown>/30"
    h["spec"]["metrics"] = []
    h["spec"].pop("minReplicas")
    assert tables.row_cells(r2, h, NOW)[2:4] == ["<none>", "<unset>"]
    v1 = {"metadata": meta("old", 600), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"},
                                                 "minReplicas": 2, "maxReplicas": 5,
                                                 "targetCPUUtilizationPercentage": 80},
          "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 33}}
    assert tables.row_cells(r1, v1, NOW) == ["old", "Deployment/old", "cpu: 33%/80%", "2", 5, 2, "10m"]


def test_ingress_ingressclass_networkpolicy():
    ing = res("networking.k8s.io", "v1", "ingresses")
    assert names(ing) == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    obj = {"metadata": meta("web", 60), "spec": {
        "ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
        "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"},
                  {"host": "d.example.com"}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}, {"ip": "10.0.0.10"}]}}}
    assert tables.row_cells(ing, obj, NOW) == ["web", "nginx", "a.example.com,b.example.com,c.example.com + 2 more...",
                                               "10.0.0.10,10.0.0.9", "80, 443", "60s"]
    assert tables.row_cells(ing, {"metadata": meta("x", 60), "spec": {}}, NOW) == ["x", "<none>", "*", "", "80", "60s"]
    ic = res("networking.k8s.io", "v1", "ingressclasses")
    assert names(ic) == ["Name", "Controller", "Parameters", "Age"]
    obj = {"metadata": meta("nginx", 60, ns=None), "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}
    assert tables.row_cells(ic, obj, NOW) == ["nginx", "k8s.io/ingress-nginx",
                                              "IngressParameters.k8s.example.com/external-lb", "60s"]
    np = res("networking.k8s.io", "v1", "networkpolicies")
    assert names(np) == ["Name", "Pod-Selector", "Age"]
    assert tables.row_cells(np, {"metadata": meta("deny", 60), "spec": {"podSelector": {}}}, NOW) == ["deny", "<none>",
                                                                                                    "60s"]
    sel = {"podSelector": {"matchLabels": {"role": "db"}}}
    assert tables.row_cells(np, {"metadata": meta("db", 60), "spec": sel}, NOW)[1] == "role=db"


def test_pdb_lease_priorityclass_storageclass():
    pdb = res("policy", "v1", "poddisruptionbudgets")
    assert names(pdb) == ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    obj = {"metadata": meta("p", 60), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    assert tables.row_cells(pdb, obj, NOW) == ["p", "50%", "N/A", 1, "60s"]
    obj["spec"] = {"maxUnavailable": 1}
    assert tables.row_cells(pdb, obj, NOW)[1:3] == ["N/A", "1"]
    lease = res("coordination.k8s.io", "v1", "leases")
    assert names(lease) == ["Name", "Holder", "Age"]
    assert tables.row_cells(lease, {"metadata": meta("kcm", 60), "spec": {"holderIdentity": "cp_1"}}, NOW) == [
        "kcm", "cp_1", "60s"]
    pc = res("scheduling.k8s.io", "v1", "priorityclasses")
    assert names(pc) == ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    assert wide(pc) == []
    obj = {"metadata": meta("system-node-critical", 60, ns=None), "value": 2000001000,
           "preemptionPolicy": "PreemptLowerPriority"}
    assert tables.row_cells(pc, obj, NOW) == ["system-node-critical", 2000001000, False, "60s", "PreemptLowerPriority"]
    sc = res("storage.k8s.io", "v1", "storageclasses")
    assert names(sc) == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"]
    obj = {"metadata": meta("standard", 60, ns=None, annotations={
        "storageclass.kubernetes.io/is-default-class": "true"}), "provisioner": "rancher.io/local-path"}
    assert tables.row_cells(sc, obj, NOW) == ["standard (default)", "rancher.io/local-path", "Delete", "Immediate",
                                              False, "60s"]


def test_role_bindings():
    rb = res("rbac.authorization.k8s.io", "v1", "rolebindings")
    crb = res("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
    assert names(rb) == ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"] == names(crb)
    assert wide(rb) == ["Users", "Groups", "ServiceAccounts"]
    assert tables.column_definitions(crb)[3]["description"] == "Users in the clusterRoleBinding"
    obj = {"metadata": meta("rb", 60), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                   "name": "view"},
           "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                        {"kind": "Group", "name": "devs"},
                        {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}
    assert tables.row_cells(rb, obj, NOW) == ["rb", "ClusterRole/view", "60s", "alice, bob", "devs", "tools/ci"]
