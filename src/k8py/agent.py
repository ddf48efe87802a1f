"""``k8py agent``: turn this machine into a node of a cluster whose server is elsewhere.

    k8py agent --server https://HOST:6443 --token K10<ca sha256>::server:<secret>

As k3s's agent does:

1. **Trust the server from the token.**  ``GET /cacerts`` is fetched without
   verifying the server (nothing to verify it with yet); the bundle is
   accepted only if its sha256 is the token's hash (``apiserver/join.py``).
   From then on every request verifies the server against that CA, host
   name included.  A bare secret (no hash) is refused: it would trust
   whoever answers.
2. **Get the node's own credentials.**  A key is made here and never leaves
   the machine; a CSR for ``CN=system:node:<name>, O=system:nodes`` (and one
   for ``CN=system:kube-proxy``) is sent to ``POST /v1-k8py/client-certificate``
   with the secret as bearer token, and the CA signs it.  The certificates
   and kubeconfigs are kept under ``<data-dir>/agent/`` and reused on restart
   while they still chain to the token's CA and are not about to expire.
3. **Run the node.**  ``k8py kubelet``, ``k8py proxy`` (when that module
   exists) and ``k8py ingress`` (ports 80 and 443; ``--disable-ingress``) as
   child processes, restarted if they die, stopped with the agent.
   The kubelet gets ``--cluster-cidr``: pods route the cluster's pod CIDR
   through their bridge, and the kubelet keeps host-gw routes to the other
   nodes' podCIDRs (``kubelet/routes.py``).

Forwarding: other nodes' pods reach this node's pods through this machine,
so ``net.ipv4.ip_forward`` must be 1.  The agent sets it only inside a
network namespace other than the initial one (a test's node, a container)
or when told to (``--enable-ip-forward=true``); on a real machine it never
flips the host's forwarding silently, and warns when it is off.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .apiserver import join

log = logging.getLogger("k8py.agent")

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
RENEW_BEFORE = dt.timedelta(days=30)


class JoinError(Exception):
    """The agent could not join (bad token, unreachable server, CA mismatch, refused request)."""


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=os.environ.get("K8PY_URL", ""),
                   help="the API server, https://HOST:PORT ($K8PY_URL)")
    p.add_argument("--token", default=os.environ.get("K8PY_TOKEN", ""),
                   help="the join token the server printed, K10<ca sha256>::server:<secret> ($K8PY_TOKEN)")
    p.add_argument("--token-file", default="", help="read the join token from this file instead")
    p.add_argument("--data-dir", default=None,
                   help="the node's state (default /var/lib/k8py as root, ~/.local/share/k8py otherwise)")
    p.add_argument("--hostname-override", default="", help="the node's name (default: the host name)")
    p.add_argument("--node-ip", default="",
                   help="the node's InternalIP (default: this machine's address towards the server)")
    p.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR,
                   help="the cluster's pod CIDR (the controller-manager's --cluster-cidr)")
    p.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    p.add_argument("--enable-ip-forward", default="auto", choices=("auto", "true", "false"),
                   help="set net.ipv4.ip_forward=1 (auto: only inside a non-initial network namespace)")
    p.add_argument("--kubelet-arg", action="append", default=[], help="extra kubelet flag (repeatable)")
    p.add_argument("--kube-proxy-arg", action="append", default=[], help="extra proxy flag (repeatable)")
    p.add_argument("--disable-kube-proxy", action="store_true")
    p.add_argument("--ingress-arg", action="append", default=[], help="extra ingress controller flag (repeatable)")
    p.add_argument("--disable-ingress", action="store_true",
                   help="do not run the Ingress controller (k8py ingress, ports 80 and 443) on this node")
    p.add_argument("-v", "--verbose", action="store_true")


# -- joining -----------------------------------------------------------------------------


def _url(server: str, path: str) -> str:
    return server.rstrip("/") + path


def fetch_ca(server: str, token: join.JoinToken, timeout: float = 10.0) -> bytes:
    """The server's CA bundle, fetched unverified and accepted only if it hashes to the token's."""
    if not token.ca_hash:
        raise JoinError("the token has no CA hash (K10<sha256>::server:<secret>): refusing to trust "
                        "an unverified server")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # verified below, by hash, before anything secret is sent
    try:
        with urllib.request.urlopen(_url(server, join.CACERTS_PATH), context=ctx, timeout=timeout) as r:
            ca = r.read(1 << 20)
    except (urllib.error.URLError, OSError) as e:
        raise JoinError(f"cannot fetch the CA from {server}: {e}") from None
    got = join.ca_hash(ca)
    if not join.secret_matches(token.ca_hash, got):
        raise JoinError(f"the server's CA hash {got} is not the token's {token.ca_hash}: "
                        "wrong server, or a man in the middle")
    return ca


def verified_context(ca: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca.decode())
    ctx.check_hostname = True
    return ctx


def make_csr(cn: str, org: str | None) -> tuple[bytes, bytes]:
    """(key PEM, CSR PEM): a new P-256 key and a request for this subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def request_certificate(server: str, ca: bytes, secret: str, csr: bytes, timeout: float = 20.0) -> bytes:
    req = urllib.request.Request(_url(server, join.CLIENT_CERT_PATH), data=csr, method="POST",
                                 headers={"Authorization": f"Bearer {secret}",
                                          "Content-Type": "application/x-pem-file"})
    try:
        with urllib.request.urlopen(req, context=verified_context(ca), timeout=timeout) as r:
            return r.read(1 << 20)
    except urllib.error.HTTPError as e:
        body = e.read(4096).decode(errors="replace")
        raise JoinError(f"the server refused the certificate request ({e.code}): {body}") from None
    except (urllib.error.URLError, OSError) as e:
        raise JoinError(f"certificate request to {server} failed: {e}") from None


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def kubeconfig_text(server: str, ca: bytes, cert: bytes, key: bytes, user: str) -> str:
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()
    return ("apiVersion: v1\nkind: Config\n"
            f"clusters:\n- cluster:\n    certificate-authority-data: {b64(ca)}\n    server: {server}\n"
            "  name: k8py\n"
            f"contexts:\n- context:\n    cluster: k8py\n    user: {user}\n  name: k8py\n"
            "current-context: k8py\npreferences: {}\n"
            f"users:\n- name: {user}\n  user:\n    client-certificate-data: {b64(cert)}\n"
            f"    client-key-data: {b64(key)}\n")


@dataclass(frozen=True)
class Identity:
    """One client identity of the node: file names under <data-dir>/agent and its subject."""
    name: str   # "kubelet" or "kube-proxy"
    cn: str
    org: str | None

    @property
    def kubeconfig(self) -> str:
        return "kubelet.kubeconfig" if self.name == "kubelet" else "kubeproxy.kubeconfig"


def _still_good(cert_path: Path, ca: bytes, cn: str) -> bool:
    """A stored certificate to reuse: this subject, issued by this CA, not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(ca)
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # noqa: BLE001 - any doubt (missing, unreadable, another CA): ask again
        return False
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return cns == [cn] and cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE


def bootstrap(server: str, token: join.JoinToken, agent_dir: Path, node_name: str) -> dict[str, Path]:
    """Verify the server by the token, get (or reuse) the node's and the proxy's client certificates,
    and write their kubeconfigs; returns {"kubelet": path, "kube-proxy": path}."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(agent_dir, 0o700)
    ca = fetch_ca(server, token)
    _write(agent_dir / "server-ca.crt", ca, 0o644)
    out: dict[str, Path] = {}
    for ident in (Identity("kubelet", f"system:node:{node_name}", "system:nodes"),
                  Identity("kube-proxy", "system:kube-proxy", None)):
        crt, key = agent_dir / f"client-{ident.name}.crt", agent_dir / f"client-{ident.name}.key"
        if not (_still_good(crt, ca, ident.cn) and key.exists()):
            key_pem, csr = make_csr(ident.cn, ident.org)
            cert = request_certificate(server, ca, token.secret, csr)
            _write(key, key_pem)
            _write(crt, cert, 0o644)
            log.info("got a client certificate for %s", ident.cn)
        kc = agent_dir / ident.kubeconfig
        _write(kc, kubeconfig_text(server, ca, crt.read_bytes(), key.read_bytes(), ident.cn).encode())
        out[ident.name] = kc
    return out


# -- running the node ------------------------------------------------------------------------


def read_token(args: argparse.Namespace) -> join.JoinToken:
    text = args.token
    if args.token_file:
        text = Path(args.token_file).read_text()
    if not text:
        raise JoinError("no join token: --token, --token-file or $K8PY_TOKEN")
    try:
        return join.parse_token(text)
    except join.TokenError as e:
        raise JoinError(str(e)) from None


def address_towards(server: str) -> str:
    """This machine's source address for packets to the server (no packet is sent): the node's
    InternalIP unless --node-ip says otherwise."""
    u = urllib.parse.urlsplit(server)
    host = u.hostname or ""
    infos = socket.getaddrinfo(host, u.port or 6443, type=socket.SOCK_DGRAM)
    fam, _, _, _, addr = infos[0]
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        return str(s.getsockname()[0])


def in_initial_netns() -> bool:
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True  # cannot tell (no /proc/1 access): assume the host's, and leave it alone


def ensure_forwarding(mode: str) -> None:
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        on = Path(path).read_text().strip() == "1"
    except OSError:
        return
    if on or mode == "false":
        if not on:
            log.warning("net.ipv4.ip_forward is 0: pods on other nodes cannot reach this node's pods")
        return
    if mode == "true" or not in_initial_netns():
        Path(path).write_text("1\n")
        log.info("net.ipv4.ip_forward set to 1 (%s)", "asked" if mode == "true" else "own network namespace")
    else:
        log.warning("net.ipv4.ip_forward is 0 on this host: pods on other nodes cannot reach this "
                    "node's pods; enable it, or pass --enable-ip-forward=true")


def proxy_argv(kubeconfig: Path, node_name: str, cluster_cidr: str, service_cidr: str, data_dir: str,
               extra: list[str]) -> list[str]:
    from . import supervisor
    return ["proxy", "--kubeconfig", str(kubeconfig), "--hostname-override", node_name, "--cluster-cidr",
            cluster_cidr, "--service-cidr", service_cidr, "--bridge", supervisor.pod_bridge(data_dir),
            "--nft-table", supervisor.proxy_table(data_dir), *extra]


def ingress_argv(kubeconfig: Path, node_name: str, extra: list[str]) -> list[str]:
    """``k8py ingress``'s flags: one controller per node, as k3s's Traefik answers on every node
    through ServiceLB. It runs as the proxy's identity (cluster-wide reads, Ingress status): the
    join endpoint signs only node and proxy certificates, and the ingress controller, like the
    proxy, is a cluster-wide component that happens to run on this node."""
    return ["ingress", "--kubeconfig", str(kubeconfig), "--hostname-override", node_name, *extra]


async def run(args: argparse.Namespace) -> int:
    from . import supervisor
    from .cli import default_data_dir

    if not args.server.startswith("https://"):
        raise JoinError("--server must be https://HOST:PORT")
    token = read_token(args)
    data_dir = os.path.abspath(args.data_dir or default_data_dir())
    node_name = (args.hostname_override or socket.gethostname()).lower()
    for cidr in (args.cluster_cidr, args.service_cidr):
        ipaddress.ip_network(cidr)
    node_ip = args.node_ip or address_towards(args.server)
    kcs = await asyncio.to_thread(bootstrap, args.server, token, Path(data_dir) / "agent", node_name)
    log.info("joined %s as node %s (%s)", args.server, node_name, node_ip)
    ensure_forwarding(args.enable_ip_forward)

    def k8py(*a: str) -> list[str]:
        return [sys.executable, "-m", "k8py.cli", *a]

    children = [supervisor.Child("kubelet", k8py(*supervisor.kubelet_argv(data_dir, str(kcs["kubelet"]), [
        "--hostname-override", node_name, "--node-ip", node_ip, "--cluster-cidr", args.cluster_cidr,
        "--service-cidr", args.service_cidr, *args.kubelet_arg])))]
    if not args.disable_kube_proxy:
        children.append(supervisor.Child("proxy", k8py(*proxy_argv(
            kcs["kube-proxy"], node_name, args.cluster_cidr, args.service_cidr, data_dir, args.kube_proxy_arg))))
    if not args.disable_ingress:
        children.append(supervisor.Child("ingress", k8py(*ingress_argv(kcs["kube-proxy"], node_name,
                                                                       args.ingress_arg))))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    tasks = [asyncio.create_task(c.keep_running(stopping)) for c in children]
    await stopping.wait()
    await asyncio.gather(*(c.stop() for c in children))
    await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="k8py agent", description="join this machine to a cluster as a node")
    add_flags(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.server:
        p.error("--server is required")
    try:
        return asyncio.run(run(args))
    except JoinError as e:
        log.error("%s", e)
        return 1
