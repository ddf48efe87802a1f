"""Pods as real containers: ``k8py server`` as root runs its kubelet with
runc, CNI and images pulled from a real local registry (a docker.io
mirror holding the busybox/httpd test image); everything through real
kubectl."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request

import pytest

from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster, node  # noqa: F401 - fixture
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")


def events(node: NodeCluster, pod: str) -> list[dict]:
    out = node.kubectl("get", "events", "-o", "json", "--field-selector", f"involvedObject.name={pod}").stdout
    return json.loads(out)["items"]


def test_walkthrough_two_httpd_pods(node: NodeCluster) -> None:
    for name in ("web-1", "web-2"):
        node.kubectl("run", name, "--image=httpd", "--port=80")
    ips = []
    for name in ("web-1", "web-2"):
        pod = node.wait_ready(name)
        ip = pod["status"]["podIP"]
        assert ip.startswith("10.42."), ip
        ips.append(ip)
        st = pod["status"]["containerStatuses"][0]
        assert st["state"]["running"] and st["ready"] and st["restartCount"] == 0
        assert st["containerID"].startswith("k8py://")
        assert st["image"] == "docker.io/library/httpd:latest"
        assert "@sha256:" in st["imageID"]
    assert ips[0] != ips[1]
    for ip in ips:
        page = wait_for(lambda: urllib.request.urlopen(f"http://{ip}/", timeout=2).read(), 10, what="page")
        assert b"It works!" in page
    reasons = [e["reason"] for e in events(node, "web-1")]
    for r in ("Pulled", "Created", "Started"):
        assert r in reasons
    out = node.kubectl("get", "pods", "-o", "wide").stdout
    assert "web-1" in out and "Running" in out and "k8py-node" in out
    node.kubectl("delete", "pod", "web-1", "web-2", "--wait=false")
    # Terminating while the containers stop, then gone
    seen = node.kubectl("get", "pod", "web-1", check=False).stdout
    assert "Terminating" in seen or "web-1" not in seen
    wait_for(lambda: "NotFound" in node.kubectl("get", "pod", "web-1", "web-2", check=False).stderr
             and "web" not in node.kubectl("get", "pods", check=False).stdout, 60, what="pods deleted")


def test_restart_policy_and_crashloop_backoff(node: NodeCluster) -> None:
    node.kubectl("run", "crash", "--image=busybox", "--", "sh", "-c", "echo bye; exit 3")

    def restarts() -> int:
        st = node.pod_json("crash")["status"].get("containerStatuses") or [{}]
        return st[0].get("restartCount", 0)

    wait_for(lambda: restarts() >= 3, 60, what="3 restarts")
    pod = node.pod_json("crash")
    st = pod["status"]["containerStatuses"][0]
    last = st["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    # growing delays: the gaps between restarts (2 s, 4 s, ...) are not shrinking
    waiting = wait_for(lambda: (node.pod_json("crash")["status"]["containerStatuses"][0]["state"]
                                .get("waiting") or {}).get("reason") == "CrashLoopBackOff", 30,
                       what="CrashLoopBackOff")
    assert waiting
    backoffs = [e for e in events(node, "crash") if e["reason"] == "BackOff"]
    assert backoffs
    out = node.kubectl("get", "pod", "crash").stdout
    assert "CrashLoopBackOff" in out or "Error" in out
    node.kubectl("delete", "pod", "crash", "--grace-period=0", "--force")


def test_never_and_onfailure(node: NodeCluster) -> None:
    node.kubectl("run", "once-ok", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo done")
    node.kubectl("run", "once-bad", "--image=busybox", "--restart=Never", "--", "sh", "-c", "exit 7")
    ok = node.wait_phase("once-ok", "Succeeded")
    assert ok["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    bad = node.wait_phase("once-bad", "Failed")
    t = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert t["exitCode"] == 7 and t["reason"] == "Error"
    assert node.kubectl("logs", "once-ok").stdout == "done\n"
    node.kubectl("delete", "pod", "once-ok", "once-bad", "--wait=false")


def test_init_containers_in_order_and_shared_volume(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  initContainers:
  - {name: first, image: busybox, command: [sh, -c, "echo first >> /work/order; sleep 1"],
     volumeMounts: [{name: w, mountPath: /work}]}
  - {name: second, image: busybox, command: [sh, -c, "echo second >> /work/order"],
     volumeMounts: [{name: w, mountPath: /work}]}
  containers:
  - {name: main, image: busybox, command: [sh, -c, "cat /work/order; sleep 3600"],
     volumeMounts: [{name: w, mountPath: /work}]}
  - {name: side, image: busybox, command: [sh, -c, "sleep 3600"]}
  volumes: [{name: w, emptyDir: {}}]
""")
    pod = node.wait_ready("inits", timeout=60)
    inits = pod["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    assert inits[0]["state"]["terminated"]["finishedAt"] <= inits[1]["state"]["terminated"]["startedAt"]
    wait_for(lambda: node.kubectl("logs", "inits", "-c", "main").stdout == "first\nsecond\n", 10,
             what="main saw both init containers' output")
    node.kubectl("delete", "pod", "inits", "--grace-period=1", "--wait=false")


def test_probes_liveness_restarts_and_readiness_gates(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 1   # httpd as pid 1 ignores SIGTERM
  containers:
  - name: web
    image: httpd
    readinessProbe:
      httpGet: {path: /ready.html, port: 80}
      periodSeconds: 1
    livenessProbe:
      exec: {command: [test, -f, /tmp/alive]}
      periodSeconds: 1
      failureThreshold: 2
    lifecycle:
      postStart: {exec: {command: [touch, /tmp/alive]}}
""")
    node.wait_phase("probed", "Running")
    time.sleep(2)
    pod = node.pod_json("probed")
    conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conds["Ready"] == "False" and pod["status"]["containerStatuses"][0]["ready"] is False
    node.kubectl("exec", "probed", "--", "sh", "-c", "echo ok > /usr/local/apache2/htdocs/ready.html")
    node.wait_ready("probed", timeout=20)
    node.kubectl("exec", "probed", "--", "rm", "/tmp/alive")
    wait_for(lambda: node.pod_json("probed")["status"]["containerStatuses"][0]["restartCount"] >= 1, 30,
             what="liveness restart")
    assert any(e["reason"] == "Unhealthy" for e in events(node, "probed"))
    assert any(e["reason"] == "Killing" for e in events(node, "probed"))
    node.kubectl("delete", "pod", "probed", "--grace-period=1", "--wait=false")


def test_oom_killed_under_memory_limit(node: NodeCluster) -> None:
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: busybox
    command: [sh, -c, "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]
    resources: {limits: {memory: 32Mi, cpu: 500m}, requests: {memory: 32Mi, cpu: 500m}}
""")
    pod = node.wait_phase("hog", "Failed", timeout=60)
    t = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert t["reason"] == "OOMKilled", t
    assert t["exitCode"] == 137
    assert pod["status"]["qosClass"] == "Guaranteed"
    node.kubectl("delete", "pod", "hog", "--wait=false")


def test_configmap_env_and_volume_update(node: NodeCluster) -> None:
    node.kubectl("create", "configmap", "cfg", "--from-literal=greeting=hello", "--from-literal=color=blue")
    node.kubectl("create", "secret", "generic", "sec", "--from-literal=password=s3cret")
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: cfgpod, labels: {app: cfg}}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "sleep 3600"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MY_POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: MSG, value: "$(GREETING) world"}
    envFrom: [{prefix: CM_, configMapRef: {name: cfg}}]
    resources: {limits: {memory: 64Mi}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec, readOnly: true}
    - {name: info, mountPath: /etc/info}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - {name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}
""")
    pod = node.wait_ready("cfgpod")
    env = dict(line.split("=", 1) for line in node.kubectl("exec", "cfgpod", "--", "env").stdout.splitlines()
               if "=" in line)
    assert env["GREETING"] == "hello" and env["PASSWORD"] == "s3cret" and env["MY_POD"] == "cfgpod"
    assert env["MY_IP"] == pod["status"]["podIP"] and env["MEM"] == "64"
    assert env["MSG"] == "hello world" and env["CM_color"] == "blue"
    assert node.kubectl("exec", "cfgpod", "--", "cat", "/etc/cfg/color").stdout == "blue"
    assert node.kubectl("exec", "cfgpod", "--", "cat", "/etc/sec/password").stdout == "s3cret"
    assert 'app="cfg"' in node.kubectl("exec", "cfgpod", "--", "cat", "/etc/info/labels").stdout
    node.kubectl("patch", "configmap", "cfg", "-p", '{"data":{"color":"green"}}')
    wait_for(lambda: node.kubectl("exec", "cfgpod", "--", "cat", "/etc/cfg/color").stdout == "green", 30,
             what="the changed ConfigMap in the volume")
    node.kubectl("delete", "pod", "cfgpod", "--grace-period=1", "--wait=false")
    node.kubectl("delete", "configmap", "cfg")
    node.kubectl("delete", "secret", "sec")


def test_missing_configmap_is_create_container_config_error(node: NodeCluster) -> None:
    node.kubectl("run", "nocfg", "--image=busybox", "--overrides",
                 json.dumps({"spec": {"containers": [{"name": "nocfg", "image": "busybox",
                                                      "command": ["sleep", "3600"],
                                                      "envFrom": [{"configMapRef": {"name": "absent"}}]}]}}))
    wait_for(lambda: (node.pod_json("nocfg")["status"].get("containerStatuses") or [{}])[0]
             .get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError", 30,
             what="CreateContainerConfigError")
    node.kubectl("create", "configmap", "absent", "--from-literal=a=b")
    node.wait_phase("nocfg", "Running", timeout=30)
    node.kubectl("delete", "pod", "nocfg", "--grace-period=1", "--wait=false")
    node.kubectl("delete", "configmap", "absent")


def test_image_pull_errors_and_pull_secrets(node: NodeCluster, busybox_archive) -> None:  # noqa: F811
    with Registry(auth=("puller", "pw123")) as private:
        private.push_archive(busybox_archive.path, "team/app:v1", source="busybox:latest")
        image = f"{private.host}/team/app:v1"
        node.kubectl("run", "nosecret", f"--image={image}", "--", "sleep", "3600")

        def reason() -> str:
            st = (node.pod_json("nosecret")["status"].get("containerStatuses") or [{}])[0]
            return st.get("state", {}).get("waiting", {}).get("reason", "")
        wait_for(lambda: reason() in ("ErrImagePull", "ImagePullBackOff"), 30, what="ErrImagePull")
        wait_for(lambda: reason() == "ImagePullBackOff", 30, what="ImagePullBackOff")
        node.kubectl("create", "secret", "docker-registry", "regcred", f"--docker-server={private.host}",
                     "--docker-username=puller", "--docker-password=pw123")
        node.kubectl("run", "withsecret", f"--image={image}", "--overrides",
                     json.dumps({"spec": {"imagePullSecrets": [{"name": "regcred"}]}}), "--", "sleep", "3600")
        node.wait_phase("withsecret", "Running", timeout=60)
        node.kubectl("delete", "pod", "nosecret", "withsecret", "--grace-period=1", "--wait=false")
        node.kubectl("delete", "secret", "regcred")
        wait_for(lambda: "with" not in node.kubectl("get", "pods", check=False).stdout, 30, what="pods gone")


def test_image_pull_policy_never_and_cri_logs(node: NodeCluster) -> None:
    node.kubectl("run", "never", "--image=example.invalid/absent:1", "--image-pull-policy=Never", "--",
                 "sleep", "3600")
    wait_for(lambda: (node.pod_json("never")["status"].get("containerStatuses") or [{}])[0]
             .get("state", {}).get("waiting", {}).get("reason") == "ErrImageNeverPull", 30, what="ErrImageNeverPull")
    node.kubectl("run", "talker", "--image=busybox", "--image-pull-policy=IfNotPresent", "--restart=Never", "--",
                 "sh", "-c", "echo out; echo err >&2")
    pod = node.wait_phase("talker", "Succeeded")
    # the container's log in the CRI format, where kubelets keep it
    path = os.path.join(node.data_dir, "log", "pods", f"default_talker_{pod['metadata']['uid']}", "talker", "0.log")
    lines = open(path).read().splitlines()
    streams = sorted(line.split(" ", 3)[1] for line in lines)
    assert streams == ["stderr", "stdout"] and all(line.split(" ", 3)[2] == "F" for line in lines)
    assert {line.split(" ", 3)[3] for line in lines} == {"out", "err"}
    node.kubectl("delete", "pod", "never", "talker", "--grace-period=1", "--wait=false")
