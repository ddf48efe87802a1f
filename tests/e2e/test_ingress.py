"""``k8py ingress`` on a real node: two httpd Deployments behind two
Services, one Ingress routing two host names to them, one host over TLS
with a Secret made by ``kubectl create secret tls``; requests from the host
to the ingress's ports on loopback (the proxy reaches the pods' addresses
through the node's bridge); status.loadBalancer filled in; a change to
the Ingress applied while the proxy runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
from typing import Iterator

import pytest

from tests.e2e.conftest import K8PY, free_port, stop_process
from tests.support.cluster import wait_for
from tests.support.images import busybox_archive  # noqa: F401 - fixture
from tests.support.node import NodeCluster, node  # noqa: F401 - fixture
from tests.support.registry import Registry, busybox_registry  # noqa: F401 - fixture
from tests.support.tls import make_cert

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")

NS = "ingress-e2e"


def get(port: int, host: str, path: str = "/", tls: ssl.SSLContext | None = None) -> tuple[int, str]:
    """One request with a Host header (and SNI) to the ingress on loopback."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode(errors="replace")


@pytest.fixture
def ingress_proc(node: NodeCluster) -> Iterator[tuple[int, int]]:
    http, https = free_port(), free_port()
    log = open(os.path.join(node.data_dir, "ingress.log"), "ab")
    proc = subprocess.Popen([K8PY, "ingress", "--kubeconfig", node.kubeconfig, "--bind-address", "127.0.0.1",
                             "--http-port", str(http), "--https-port", str(https),
                             "--hostname-override", node.node_name],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield http, https
        assert proc.poll() is None, "k8py ingress died"
    finally:
        stop_process(proc)
        log.close()
        node.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        node.kubectl("delete", "ingressclass", "k8py", check=False)


def test_two_hosts_one_over_tls(node: NodeCluster, ingress_proc: tuple[int, int], tmp_path) -> None:
    http, https = ingress_proc
    node.kubectl("create", "namespace", NS)
    for name in ("web-a", "web-b"):
        node.kubectl("create", "deployment", name, "--image=httpd", "--port=80", "-n", NS)
        node.kubectl("expose", "deployment", name, "--port=80", "-n", NS)
    cert, key = make_cert("b.example.test")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    node.kubectl("create", "secret", "tls", "web-b-tls", f"--cert={tmp_path / 'tls.crt'}",
                 f"--key={tmp_path / 'tls.key'}", "-n", NS)
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
        "spec": {"ingressClassName": "k8py",
                 "tls": [{"hosts": ["b.example.test"], "secretName": "web-b-tls"}],
                 "rules": [{"host": "a.example.test", "http": {"paths": [
                               {"path": "/", "pathType": "Prefix",
                                "backend": {"service": {"name": "web-a", "port": {"number": 80}}}}]}},
                           {"host": "b.example.test", "http": {"paths": [
                               {"path": "/", "pathType": "Prefix",
                                "backend": {"service": {"name": "web-b", "port": {"number": 80}}}}]}}]}}
    node.kubectl("apply", "-f", "-", input=json.dumps(ingress))

    # each Deployment's pod serves its own page
    for name in ("web-a", "web-b"):
        def ready_pod() -> str | None:
            pods = json.loads(node.kubectl("get", "pods", "-n", NS, "-l", f"app={name}", "-o", "json").stdout)
            for p in pods["items"]:
                conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions") or ()}
                if conds.get("Ready") == "True":
                    return p["metadata"]["name"]
            return None
        pod = wait_for(ready_pod, 90, what=f"{name} pod ready")
        node.kubectl("exec", pod, "-n", NS, "--", "sh", "-c",
                     f"cd /usr/local/apache2/htdocs && echo page of {name} > index.html && "
                     f"mkdir b && echo {name} under /b > b/index.html")

    # the IngressClass the controller made is the default, and ours
    ic = json.loads(node.kubectl("get", "ingressclass", "k8py", "-o", "json").stdout)
    assert ic["spec"]["controller"] == "k8py.io/ingress"
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"

    assert wait_for(lambda: get(http, "a.example.test") == (200, "page of web-a\n"), 30, what="a over HTTP")
    assert get(http, "b.example.test") == (200, "page of web-b\n")
    assert get(http, "A.Example.Test:80") == (200, "page of web-a\n")
    status, body = get(http, "nobody.example.test")
    assert status == 404 and "default backend - 404" in body

    # b over TLS: the Secret's certificate, chosen by SNI, verified by the client
    tls = ssl.create_default_context(cadata=cert.decode())
    assert get(https, "b.example.test", tls=tls) == (200, "page of web-b\n")
    with pytest.raises(ssl.SSLCertVerificationError):  # a has no certificate: the default one, untrusted
        get(https, "a.example.test", tls=ssl.create_default_context(cadata=cert.decode()))

    # status.loadBalancer: the node's InternalIP (the test node's is 127.0.0.1)
    def lb() -> str:
        return node.kubectl("get", "ingress", "web", "-n", NS, "-o",
                            "jsonpath={.status.loadBalancer.ingress[*].ip}").stdout.strip()
    assert wait_for(lambda: lb() == "127.0.0.1", 20, what="status.loadBalancer")
    assert "127.0.0.1" in node.kubectl("get", "ingress", "-n", NS).stdout

    # a change applied while serving: a path on a's host now goes to web-b (the path is passed as it is)
    assert get(http, "a.example.test", "/b/index.html") == (200, "web-a under /b\n")
    patch = [{"op": "add", "path": "/spec/rules/0/http/paths/-",
              "value": {"path": "/b", "pathType": "Prefix",
                        "backend": {"service": {"name": "web-b", "port": {"number": 80}}}}}]
    node.kubectl("patch", "ingress", "web", "-n", NS, "--type=json", "-p", json.dumps(patch))
    assert wait_for(lambda: get(http, "a.example.test", "/b/index.html") == (200, "web-b under /b\n"), 20,
                    what="new path routed")
    assert get(http, "a.example.test", "/") == (200, "page of web-a\n")

    # a Service without ready endpoints answers 503
    node.kubectl("scale", "deployment", "web-a", "--replicas=0", "-n", NS)
    assert wait_for(lambda: get(http, "a.example.test")[0] == 503, 60, what="503 once web-a has no pods")
