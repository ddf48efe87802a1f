"""Static bearer tokens (``--token-auth-file``, as kube-apiserver's): the real
kubectl with ``--token`` and the official Python client with a Bearer
api_key; an unknown token is 401; client certificates still work."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import pytest

from tests.e2e.conftest import Raw, Server, kubectl_bin

TOKENS = """\
s3cret-admin-token,alice,1001,"system:masters,devs"

,blank-token-is-skipped,1002
readonly-token,bob,1003
"""


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("tokens") / "tokens.csv"
    path.write_text(TOKENS)
    s = Server(extra_args=("--token-auth-file", str(path))).start()
    try:
        yield s
    finally:
        s.close()


def _kubectl(s: Server, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with no kubeconfig at all: only the server, its CA and the token."""
    env = dict(os.environ)
    env["HOME"] = s.home
    env["KUBECONFIG"] = os.path.join(s.home, "no-such-kubeconfig")
    ca = os.path.join(s.data_dir, "tls", "ca.crt")
    return subprocess.run([kubectl_bin(), "--server", s.url, "--certificate-authority", ca, "--token", token,
                           *args], capture_output=True, text=True, env=env, timeout=60)


def test_kubectl_with_token(token_server: Server) -> None:
    p = _kubectl(token_server, "s3cret-admin-token", "create", "configmap", "tok-cm", "--from-literal=a=1")
    assert p.returncode == 0, p.stderr
    p = _kubectl(token_server, "s3cret-admin-token", "get", "configmap", "tok-cm", "-o", "jsonpath={.data.a}")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "1"
    p = _kubectl(token_server, "readonly-token", "get", "namespaces", "-o", "name")
    assert p.returncode == 0, p.stderr
    assert "namespace/default" in p.stdout.split()


def test_kubectl_unknown_token_is_unauthorized(token_server: Server) -> None:
    p = _kubectl(token_server, "wrong-token", "get", "pods")
    assert p.returncode != 0
    assert "Unauthorized" in p.stderr or "must be logged in" in p.stderr, p.stderr


def test_python_client_with_token(token_server: Server) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    def api(token: str) -> client.CoreV1Api:
        cfg = client.Configuration()
        cfg.host = token_server.url
        cfg.ssl_ca_cert = os.path.join(token_server.data_dir, "tls", "ca.crt")
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.CoreV1Api(client.ApiClient(cfg))

    v1 = api("s3cret-admin-token")
    v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-tok"),
                                                                   data={"k": "v"}))
    assert v1.read_namespaced_config_map("py-tok", "default").data == {"k": "v"}
    for bad in ("nope", "s3cret-admin-tokenX"):
        with pytest.raises(ApiException) as e:
            api(bad).list_namespaced_config_map("default")
        assert e.value.status == 401


def test_raw_token_rules(token_server: Server) -> None:
    """Unknown token, empty token, other schemes: 401; the scheme is case-insensitive;
    a client certificate still authenticates; public paths need nothing."""
    anon = Raw(token_server, anonymous=True)
    path = "/api/v1/namespaces/default/configmaps"
    assert anon("GET", path, headers={"Authorization": "Bearer readonly-token"})[0] == 200
    assert anon("GET", path, headers={"Authorization": "bearer readonly-token"})[0] == 200
    for h in ("Bearer wrong", "Bearer ", "Basic cmVhZG9ubHktdG9rZW4=", "readonly-token",
              "Bearer blank-token-is-skipped"):
        status, body = anon("GET", path, headers={"Authorization": h})
        assert status == 401, h
        assert body["reason"] == "Unauthorized"
    assert anon("GET", path)[0] == 401
    assert anon("GET", "/version")[0] == 200
    assert Raw(token_server)("GET", path)[0] == 200  # the admin client certificate


def test_bad_token_file_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("only-two,columns\n")
    s = Server(extra_args=("--token-auth-file", str(path)))
    try:
        with pytest.raises(RuntimeError) as e:
            s.start(timeout=20)
        assert "at least 3 columns" in str(e.value)
    finally:
        s.close()
