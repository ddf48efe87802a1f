"""Nodes joining: the server's join token and the two bootstrap endpoints.

The token has k3s's shape::

    K10<sha256 hex of the CA bundle>::server:<secret>

The hash lets an agent that knows nothing but the token trust the server:
it fetches the CA bundle from ``GET /cacerts`` (served to anyone, over TLS
it cannot verify yet), and accepts it only if its sha256 is the token's.
The secret then proves the agent may join: sent as a bearer token it
authenticates the bootstrap user (``system:bootstrap:k8py`` in group
``system:bootstrappers``, kube's names for bootstrap tokens), which may do
one thing only: ``POST /v1-k8py/client-certificate`` with a PEM CSR for
``CN=system:node:<name>, O=system:nodes`` (the kubelet's identity) or
``CN=system:kube-proxy`` (the proxy's), which the cluster CA signs.

k8py has no certificates.k8s.io CSR API (and no RBAC yet), so signing is
this endpoint rather than a CSR object approved by a controller, as k3s's
``/v1-k3s/client-kubelet.crt`` is.  Because every authenticated user may do
everything until RBAC exists, the bootstrap user is refused everywhere else
(``allowed``), or the join secret would be an admin password.

The secret is made once and kept in ``<data-dir>/token`` (mode 0600, the
full token, so it can be read back and handed to agents); a restarted
server keeps its token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOKEN_PREFIX = "K10"
BOOTSTRAP_USER = "system:bootstrap:k8py"
BOOTSTRAP_GROUP = "system:bootstrappers"
CACERTS_PATH = "/cacerts"
CLIENT_CERT_PATH = "/v1-k8py/client-certificate"
PUBLIC_PATHS = frozenset({CACERTS_PATH})
BOOTSTRAP_PATHS = frozenset({CACERTS_PATH, CLIENT_CERT_PATH})
NODE_CERT_DAYS = 365
MAX_CSR_BYTES = 16 * 1024


class TokenError(ValueError):
    """A join token k8py cannot use."""


@dataclass(frozen=True)
class JoinToken:
    ca_hash: str   # sha256 hex of the CA bundle; "" for a bare secret
    user: str      # "server" (k3s's name for the full server token)
    secret: str

    def __str__(self) -> str:
        return format_token(self.ca_hash, self.secret, self.user)


def ca_hash(ca_pem: bytes) -> str:
    """k3s's hash of the CA: sha256 of the bytes ``/cacerts`` serves, hex."""
    return hashlib.sha256(ca_pem).hexdigest()


def format_token(hash_hex: str, secret: str, user: str = "server") -> str:
    return f"{TOKEN_PREFIX}{hash_hex}::{user}:{secret}"


def parse_token(token: str) -> JoinToken:
    """``K10<hash>::<user>:<secret>``; a bare secret parses with no hash (the agent refuses it)."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX):
        if not token or ":" in token:
            raise TokenError("join token: want K10<ca sha256>::server:<secret>")
        return JoinToken("", "server", token)
    hash_hex, sep, creds = token[len(TOKEN_PREFIX):].partition("::")
    user, sep2, secret = creds.partition(":")
    if not sep or not sep2 or not secret or not user:
        raise TokenError("join token: want K10<ca sha256>::server:<secret>")
    if len(hash_hex) != 64 or any(c not in "0123456789abcdef" for c in hash_hex.lower()):
        raise TokenError("join token: the CA hash is not a sha256 hex digest")
    return JoinToken(hash_hex.lower(), user, secret)


def token_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "token"


def ensure_token(data_dir: str | os.PathLike[str], ca_pem: bytes) -> JoinToken:
    """The server's join token: the stored secret (made now if there is none) with the current CA's
    hash. The file holds the full token, rewritten when the CA's hash changed."""
    path = token_path(data_dir)
    secret = ""
    try:
        secret = parse_token(path.read_text()).secret
    except (OSError, TokenError):
        pass
    if not secret:
        secret = secrets.token_hex(24)
    tok = JoinToken(ca_hash(ca_pem), "server", secret)
    text = str(tok) + "\n"
    try:
        if path.read_text() == text:
            return tok
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return tok


def secret_matches(secret: str, presented: str) -> bool:
    """Constant-time comparison (a timing oracle on the join secret would leak it)."""
    return hmac.compare_digest(secret.encode(), presented.encode())


def allowed(groups: tuple[str, ...], path: str) -> bool:
    """Whether a user in ``groups`` may call ``path``: bootstrappers only the join endpoints."""
    return BOOTSTRAP_GROUP not in groups or path in BOOTSTRAP_PATHS


class CSRError(ValueError):
    """A certificate request the server will not sign."""


def _subject(csr: x509.CertificateSigningRequest) -> tuple[str, list[str]]:
    cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if len(cns) != 1:
        raise CSRError("the request must name exactly one common name")
    return str(cns[0]), orgs


def check_csr(csr_pem: bytes) -> tuple[x509.CertificateSigningRequest, str, list[str]]:
    """The CSR, if it asks for a node's or the proxy's client identity, as kube's CSR approver
    checks kubelet client requests (the subject only; no SANs, since it is a client certificate)."""
    if len(csr_pem) > MAX_CSR_BYTES:
        raise CSRError("the request is too large")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise CSRError(f"not a PEM certificate request: {e}") from None
    if not csr.is_signature_valid:
        raise CSRError("the request's signature is not valid")
    cn, orgs = _subject(csr)
    if cn.startswith("system:node:"):
        name = cn.removeprefix("system:node:")
        if not name or len(name) > 253 or not all(c.isalnum() or c in "-." for c in name) \
                or name != name.lower():
            raise CSRError(f"{cn!r}: not a node name")
        if orgs != ["system:nodes"]:
            raise CSRError("a node's certificate must have exactly the organization system:nodes")
    elif cn == "system:kube-proxy":
        if orgs:
            raise CSRError("the proxy's certificate has no organization")
    else:
        raise CSRError(f"{cn!r}: only system:node:<name> and system:kube-proxy are signed here")
    return csr, cn, orgs


def sign_csr(ca_crt: Path, ca_key: Path, csr_pem: bytes, days: int = NODE_CERT_DAYS) -> bytes:
    """A client certificate for the CSR's key and subject, signed by the cluster CA (PEM)."""
    csr, _, _ = check_csr(csr_pem)
    ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)
