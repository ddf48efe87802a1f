"""The real kubectl against k8py: every command the issue names."""

from __future__ import annotations

import json
import stat
import subprocess
import textwrap
import time

import pytest

DEPLOY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web, tier: front}
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: httpd:2.4
            ports:
            - containerPort: 80
    """)


VERSION: dict[str, str | None] = {"v": None}


@pytest.fixture(autouse=True, params=["1.32", "1.27"])
def kubectl_version(request):
    """Every test here runs with kubectl 1.32 (the default binary) and 1.27."""
    VERSION["v"] = None if request.param == "1.32" else request.param
    yield request.param
    VERSION["v"] = None


@pytest.fixture
def ns(server, request, kubectl_version):
    base = request.node.originalname.replace("_", "-").lower()[:44].rstrip("-")
    name = f"{base}-{kubectl_version.replace('.', '')}"
    server.kubectl("create", "namespace", name)
    yield name


def k(server, ns, *args, **kw):
    kw.setdefault("version", VERSION["v"])
    return server.kubectl("-n", ns, *args, **kw)


def test_create_multi_document_yaml_and_json(server, ns):
    docs = DEPLOY + "---\n" + textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {a: "1"}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports: [{port: 80}]
        """)
    out = k(server, ns, "create", "-f", "-", input=docs).stdout
    assert "deployment.apps/web created" in out
    assert "configmap/cfg created" in out
    assert "service/web created" in out
    as_json = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "stringData": {"k": "v"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg2"}, "data": {"x": "y"}}]})
    out = k(server, ns, "create", "-f", "-", input=as_json).stdout
    assert "secret/s1 created" in out and "configmap/cfg2 created" in out
    again = k(server, ns, "create", "-f", "-", input=docs, check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr and "already exists" in again.stderr


@pytest.mark.parametrize("version", [None, "1.33"])
def test_create_subcommands(server, version, kubectl_version):
    if version is None:
        version = VERSION["v"]
    ns = f"sub-{(version or '132').replace('.', '')}-{kubectl_version.replace('.', '')}"
    kc = lambda *a, **kw: server.kubectl(*a, version=version, **kw)  # noqa: E731
    kc("create", "namespace", ns)
    cmds = [
        ("configmap", "cm1", "--from-literal=a=b"),
        ("secret", "generic", "sec1", "--from-literal=user=admin"),
        ("deployment", "dep1", "--image=httpd", "--replicas=3"),
        ("service", "clusterip", "svc1", "--tcp=80:8080"),
        ("job", "job1", "--image=busybox", "--", "echo", "hi"),
        ("cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"),
        ("serviceaccount", "sa1"),
        ("role", "role1", "--verb=get,list", "--resource=pods"),
        ("rolebinding", "rb1", "--role=role1", "--serviceaccount=" + ns + ":sa1"),
    ]
    for c in cmds:
        out = kc("-n", ns, "create", *c).stdout
        assert "created" in out, out
    dep = json.loads(kc("-n", ns, "get", "deployment", "dep1", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "httpd"
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert dep["spec"]["revisionHistoryLimit"] == 10
    svc = json.loads(kc("-n", ns, "get", "svc", "svc1", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["clusterIP"].startswith("10.43.")
    sec = json.loads(kc("-n", ns, "get", "secret", "sec1", "-o", "json").stdout)
    assert sec["data"]["user"] == "YWRtaW4=" and sec["type"] == "Opaque"
    cj = json.loads(kc("-n", ns, "get", "cronjob", "cj1", "-o", "json").stdout)
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    rb = json.loads(kc("-n", ns, "get", "rolebinding", "rb1", "-o", "json").stdout)
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role1"}
    job = json.loads(kc("-n", ns, "get", "job", "job1", "-o", "json").stdout)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "batch.kubernetes.io/controller-uid" in job["spec"]["selector"]["matchLabels"]


def test_get_output_formats(server, ns):
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    k(server, ns, "create", "configmap", "zeta", "--from-literal=a=1")
    k(server, ns, "label", "configmap", "zeta", "env=prod")
    k(server, ns, "create", "configmap", "alpha", "--from-literal=a=1", "--from-literal=b=2")
    out = k(server, ns, "get", "deploy").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:2] == ["web", "0/2"]
    wide = k(server, ns, "get", "deploy", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                               "SELECTOR"]
    assert "httpd:2.4" in wide[1] and "app=web" in wide[1]
    y = k(server, ns, "get", "deploy", "web", "-o", "yaml").stdout
    assert "kind: Deployment" in y and "name: web" in y
    j = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert j["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert k(server, ns, "get", "cm", "-o", "name").stdout.split() == ["configmap/alpha", "configmap/zeta"] or \
        set(k(server, ns, "get", "cm", "-o", "name").stdout.split()) >= {"configmap/alpha", "configmap/zeta"}
    assert k(server, ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    cc = k(server, ns, "get", "cm", "-o", "custom-columns=N:.metadata.name,D:.data.a").stdout.split("\n")
    assert cc[0].split() == ["N", "D"] and any(line.split() == ["zeta", "1"] for line in cc)
    assert k(server, ns, "get", "cm", "-l", "env=prod", "-o", "name").stdout.split() == ["configmap/zeta"]
    assert k(server, ns, "get", "cm", "-l", "env!=prod,env notin (x)", "-o", "name").stdout.split().count(
        "configmap/zeta") == 0
    assert k(server, ns, "get", "cm", "--field-selector", "metadata.name=alpha", "-o", "name").stdout.split() == [
        "configmap/alpha"]
    shown = k(server, ns, "get", "cm", "zeta", "--show-labels").stdout.splitlines()
    assert shown[0].split()[-1] == "LABELS" and "env=prod" in shown[1]
    sorted_names = k(server, ns, "get", "cm", "--sort-by=.metadata.name", "-o", "name").stdout.split()
    assert sorted_names == sorted(sorted_names)
    every = server.kubectl("get", "cm", "-A").stdout
    assert every.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"] and ns in every


def test_get_every_kind(server):
    names = server.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    assert len(names) >= 35
    for name in names:
        p = server.kubectl("get", name, "-A", check=False)
        assert p.returncode == 0, (name, p.stderr)
        assert "error" not in p.stderr.lower(), (name, p.stderr)


def test_describe(server, ns):
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    out = k(server, ns, "describe", "deployment", "web").stdout
    assert "Name:" in out and "web" in out and "Replicas:" in out and "RollingUpdate" in out
    out = server.kubectl("describe", "namespace", ns).stdout
    assert "Status:" in out and "Active" in out


def test_apply_client_side_twice(server, ns):
    out = k(server, ns, "apply", "-f", "-", input=DEPLOY).stdout
    assert "deployment.apps/web created" in out
    changed = DEPLOY.replace("replicas: 2", "replicas: 4").replace("httpd:2.4", "httpd:2.5")
    out = k(server, ns, "apply", "-f", "-", input=changed).stdout
    assert "deployment.apps/web configured" in out
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 4
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "httpd:2.5"
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    assert d["metadata"]["generation"] == 2
    out = k(server, ns, "apply", "-f", "-", input=changed).stdout
    assert "unchanged" in out
    dropped = changed.replace("labels: {app: web, tier: front}", "labels: {app: web}")
    k(server, ns, "apply", "-f", "-", input=dropped)
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["labels"] == {"app": "web"}


def test_apply_server_side_twice(server, ns):
    out = k(server, ns, "apply", "--server-side", "-f", "-", input=DEPLOY).stdout
    assert "serverside-applied" in out
    changed = DEPLOY.replace("replicas: 2", "replicas: 5")
    k(server, ns, "apply", "--server-side", "-f", "-", input=changed)
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json", "--show-managed-fields").stdout)
    assert d["spec"]["replicas"] == 5
    managers = {m["manager"]: m for m in d["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    # another manager changes replicas; re-applying conflicts until forced
    k(server, ns, "scale", "deploy", "web", "--replicas=1")
    p = k(server, ns, "apply", "--server-side", "-f", "-", input=changed, check=False)
    assert p.returncode != 0 and "conflict" in p.stderr.lower() and ".spec.replicas" in p.stderr
    k(server, ns, "apply", "--server-side", "--force-conflicts", "-f", "-", input=changed)
    assert k(server, ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5"


def test_diff(server, ns):
    k(server, ns, "apply", "-f", "-", input=DEPLOY)
    same = k(server, ns, "diff", "-f", "-", input=DEPLOY, check=False)
    assert same.returncode == 0, same.stderr
    changed = DEPLOY.replace("replicas: 2", "replicas: 3")
    p = k(server, ns, "diff", "-f", "-", input=changed, check=False)
    assert p.returncode == 1, p.stderr
    assert "-  replicas: 2" in p.stdout and "+  replicas: 3" in p.stdout


def test_edit_with_editor_script(server, ns, tmp_path):
    k(server, ns, "create", "configmap", "ed", "--from-literal=color=blue")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = k(server, ns, "edit", "cm", "ed", env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}).stdout
    assert "edited" in out
    assert k(server, ns, "get", "cm", "ed", "-o", "jsonpath={.data.color}").stdout == "green"


def test_patch_three_types(server, ns):
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    k(server, ns, "patch", "deploy", "web", "-p",
      '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}')
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    # a strategic merge puts new list items first, as kube does
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["side", "web"]
    k(server, ns, "patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"labels":{"tier":null}}}')
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["labels"] == {"app": "web"}
    k(server, ns, "patch", "deploy", "web", "--type=json", "-p",
      '[{"op":"replace","path":"/spec/replicas","value":7}]')
    assert k(server, ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "7"
    bad = k(server, ns, "patch", "deploy", "web", "--type=json", "-p",
            '[{"op":"test","path":"/spec/replicas","value":1}]', check=False)
    assert bad.returncode != 0


def test_replace(server, ns):
    k(server, ns, "create", "configmap", "rep", "--from-literal=a=1")
    cm = json.loads(k(server, ns, "get", "cm", "rep", "-o", "json").stdout)
    cm["data"] = {"a": "2"}
    out = k(server, ns, "replace", "-f", "-", input=json.dumps(cm)).stdout
    assert "replaced" in out
    assert k(server, ns, "get", "cm", "rep", "-o", "jsonpath={.data.a}").stdout == "2"
    # replacing with the stale resourceVersion is a conflict
    p = k(server, ns, "replace", "-f", "-", input=json.dumps(cm), check=False)
    assert p.returncode != 0 and "the object has been modified" in p.stderr


def test_delete_variants(server, ns):
    k(server, ns, "create", "configmap", "d1", "--from-literal=a=1")
    out = k(server, ns, "delete", "cm", "d1", "--wait=true").stdout
    assert 'configmap "d1" deleted' in out
    p = k(server, ns, "get", "cm", "d1", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    # orphan: the garbage collector (a later issue) removes the "orphan" finalizer
    out = k(server, ns, "delete", "deploy", "web", "--cascade=orphan", "--wait=false").stdout
    assert "deleted" in out
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["finalizers"] == ["orphan"]
    k(server, ns, "patch", "deploy", "web", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    # foreground: the object stays with a finalizer until the garbage collector (a later issue) acts
    k(server, ns, "delete", "deploy", "web", "--cascade=foreground", "--wait=false")
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["deletionTimestamp"] and "foregroundDeletion" in d["metadata"]["finalizers"]
    k(server, ns, "patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert k(server, ns, "get", "deploy", "web", check=False).returncode != 0
    # a pod that is not on a node goes at once, whatever the grace period
    k(server, ns, "run", "p1", "--image=busybox", "--restart=Never")
    k(server, ns, "delete", "pod", "p1", "--grace-period=30", "--wait=true", timeout=30)
    k(server, ns, "run", "p2", "--image=busybox", "--restart=Never")
    k(server, ns, "delete", "pod", "p2", "--grace-period=0", "--force")
    assert "p2" not in k(server, ns, "get", "pods", "-o", "name").stdout


def test_label_annotate_scale_set_image_restart(server, ns):
    k(server, ns, "create", "-f", "-", input=DEPLOY)
    k(server, ns, "label", "deploy", "web", "color=red")
    k(server, ns, "annotate", "deploy", "web", "note=hello")
    k(server, ns, "label", "deploy", "web", "color=blue", "--overwrite")
    k(server, ns, "label", "deploy", "web", "tier-")
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["metadata"]["labels"] == {"app": "web", "color": "blue"}
    assert d["metadata"]["annotations"]["note"] == "hello"
    assert "scaled" in k(server, ns, "scale", "deploy", "web", "--replicas=5").stdout
    assert k(server, ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5"
    k(server, ns, "set", "image", "deploy/web", "web=httpd:2.6")
    k(server, ns, "rollout", "restart", "deploy/web")
    d = json.loads(k(server, ns, "get", "deploy", "web", "-o", "json").stdout)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "httpd:2.6"
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]


def test_wait_for_jsonpath(server, ns):
    k(server, ns, "create", "configmap", "w", "--from-literal=ready=no")
    waiter = subprocess.Popen(
        [*_kubectl(server), "-n", ns, "wait", "cm/w", "--for=jsonpath={.data.ready}=yes", "--timeout=30s"],
        env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    k(server, ns, "patch", "cm", "w", "--type=merge", "-p", '{"data":{"ready":"yes"}}')
    out, err = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, err
    assert "condition met" in out


def test_get_watch(server, ns):
    import threading
    watcher = subprocess.Popen([*_kubectl(server), "-n", ns, "get", "cm", "-w", "--request-timeout=0"],
                               env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        time.sleep(1.0)
        k(server, ns, "create", "configmap", "watched", "--from-literal=a=1")
        k(server, ns, "label", "configmap", "watched", "x=y")
        deadline = time.time() + 15
        while time.time() < deadline and sum("watched" in line for line in lines) < 2:
            time.sleep(0.1)
        rows = [line.split() for line in lines if "watched" in line]
        assert len(rows) >= 2 and rows[0][:2] == ["watched", "1"]
    finally:
        watcher.kill()
        watcher.wait()
        reader.join(5)


def _kubectl(server):
    from .conftest import kubectl_bin
    return [kubectl_bin(VERSION["v"])]


def test_explain(server):
    out = server.kubectl("explain", "pods.spec.containers", version=VERSION["v"]).stdout
    assert "KIND:" in out and "Pod" in out and "image" in out and "FIELD" in out
    out = server.kubectl("explain", "deployment.spec.strategy", version=VERSION["v"]).stdout
    assert "rollingUpdate" in out
    out = server.kubectl("explain", "hpa", "--api-version=autoscaling/v1", version=VERSION["v"]).stdout
    assert "HorizontalPodAutoscaler" in out


def test_get_every_kind_short_names(server):
    for short in ("po", "deploy", "svc", "cm", "ns", "no", "rs", "sts", "ds", "cj", "ing", "pvc", "pv", "sa",
                  "ep", "ev", "hpa", "pdb", "sc", "pc", "netpol", "quota", "limits", "rc"):
        p = server.kubectl("get", short, "-A", version=VERSION["v"], check=False)
        assert p.returncode == 0, (short, p.stderr)
