"""Reading a kubeconfig: which server, which CA, which credentials.

Components find theirs as kube's do: ``--kubeconfig FILE``, else
``$KUBECONFIG`` (first file of the list), else the admin kubeconfig that
``k8py server`` writes into its data dir."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class ClientConfig:
    server: str
    ca_data: bytes | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    insecure: bool = False
    user_agent: str = "k8py"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        if self.cert_data and self.key_data:
            # ssl wants files; write them to a private temporary dir briefly
            with tempfile.TemporaryDirectory(prefix="k8py-client-") as d:
                cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
                with open(os.open(cert, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(self.cert_data)
                with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(self.key_data)
                ctx.load_cert_chain(cert, key)
        return ctx


def _data(entry: dict, name: str, base: str) -> bytes | None:
    if entry.get(f"{name}-data"):
        return base64.b64decode(entry[f"{name}-data"])
    path = entry.get(name)
    if path:
        with open(os.path.join(base, os.path.expanduser(path)), "rb") as f:
            return f.read()
    return None


def load(path: str, user_agent: str = "k8py") -> ClientConfig:
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    base = os.path.dirname(os.path.abspath(path))
    ctx_name = doc.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in doc.get("contexts") or []}
    ctx = contexts.get(ctx_name) or (next(iter(contexts.values())) if contexts else {})
    clusters = {c["name"]: c.get("cluster") or {} for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster")) or (next(iter(clusters.values())) if clusters else {})
    user = users.get(ctx.get("user")) or {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(os.path.join(base, user["tokenFile"])) as f:
            token = f.read().strip()
    return ClientConfig(
        server=cluster["server"].rstrip("/"),
        ca_data=_data(cluster, "certificate-authority", base),
        cert_data=_data(user, "client-certificate", base),
        key_data=_data(user, "client-key", base),
        token=token,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        user_agent=user_agent,
    )


def default_path(explicit: str | None = None) -> str:
    """``--kubeconfig``, else ``$KUBECONFIG``, else the server's admin kubeconfig."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        for p in env.split(os.pathsep):
            if p and os.path.exists(p):
                return p
    from ..cli import default_data_dir
    return os.path.join(default_data_dir(), "kubeconfig.yaml")
