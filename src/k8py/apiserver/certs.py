"""The cluster's certificates: a CA, the API server's serving certificate and
the admin client certificate, made on first start and kept in the data dir.

Layout under ``<data-dir>/tls``: ``ca.crt ca.key serving.crt serving.key
admin.crt admin.key kubelet-client.crt kubelet-client.key``.  A kubeconfig embeds the CA
and admin credentials; the kubelet-client pair is what the API server shows
kubelets (CN kube-apiserver-kubelet-client, O system:masters, as kubeadm's).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..netutil import is_ip

_YEARS = 10


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def host_sans() -> tuple[list[str], list[str]]:
    """DNS names and IP addresses the serving certificate is valid for."""
    names = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"}
    ips = {"127.0.0.1", "::1", "10.43.0.1"}
    host = socket.gethostname()
    names.add(host)
    try:
        for info in socket.getaddrinfo(host, None):
            ips.add(info[4][0].split("%")[0])
    except OSError:
        pass
    return sorted(names), sorted(ips)


class ClusterCerts:
    def __init__(self, data_dir: str | os.PathLike[str]):
        self.dir = Path(data_dir) / "tls"
        self.ca_crt = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.serving_crt = self.dir / "serving.crt"
        self.serving_key = self.dir / "serving.key"
        self.admin_crt = self.dir / "admin.crt"
        self.admin_key = self.dir / "admin.key"
        self.kubelet_client_crt = self.dir / "kubelet-client.crt"
        self.kubelet_client_key = self.dir / "kubelet-client.key"

    def ensure(self, extra_ips: list[str] | tuple[str, ...] = ()) -> None:
        """Makes what is missing. ``extra_ips`` (the advertise and bind addresses) must be in the
        serving certificate, or agents joining through them could not verify the server: one made
        without them is made again."""
        self.dir.mkdir(parents=True, exist_ok=True)
        extra_ips = [i for i in extra_ips if is_ip(i)]
        if not self.ca_crt.exists() or not self.ca_key.exists():
            self._make_ca()
        if self.serving_crt.exists() and not self._serves_ips(extra_ips):
            self.serving_crt.unlink()
        if not self.serving_crt.exists():
            names, ips = host_sans()
            ips = sorted(set(ips) | set(extra_ips))
            self.issue(self.serving_crt, self.serving_key, "kube-apiserver", None, server=True,
                       dns_names=names, ips=ips)
        if not self.admin_crt.exists():
            self.issue(self.admin_crt, self.admin_key, "admin", "system:masters")
        if not self.kubelet_client_crt.exists():
            self.issue(self.kubelet_client_crt, self.kubelet_client_key, "kube-apiserver-kubelet-client",
                       "system:masters")

    def _serves_ips(self, ips: list[str] | tuple[str, ...]) -> bool:
        if not ips:
            return True
        try:
            cert = x509.load_pem_x509_certificate(self.serving_crt.read_bytes())
            have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
                .get_values_for_type(x509.IPAddress)
        except (ValueError, x509.ExtensionNotFound):
            return False
        return all(ipaddress.ip_address(i) in have for i in ips)

    def _make_ca(self) -> None:
        key = _key()
        name = _name(f"k8py-ca@{int(_now().timestamp())}")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(hours=1))
                .not_valid_after(_now() + dt.timedelta(days=365 * _YEARS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write(self.ca_key, _pem_key(key), private=True)
        _write(self.ca_crt, cert.public_bytes(serialization.Encoding.PEM))

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_crt.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        return cert, key  # type: ignore[return-value]

    def issue(self, crt: Path, key_path: Path, cn: str, org: str | None, *, server: bool = False,
              dns_names: list[str] | None = None, ips: list[str] | None = None) -> None:
        ca, ca_key = self._load_ca()
        key = _key()
        b = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(_now() - dt.timedelta(hours=1))
             .not_valid_after(_now() + dt.timedelta(days=365 * _YEARS))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                 critical=False))
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names or []]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        _write(key_path, _pem_key(key), private=True)
        _write(crt, cert.public_bytes(serialization.Encoding.PEM))

    def kubeconfig(self, server_url: str, user: str = "admin") -> str:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        return (
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- cluster:\n"
            f"    certificate-authority-data: {b64(self.ca_crt)}\n"
            f"    server: {server_url}\n"
            "  name: k8py\n"
            "contexts:\n- context:\n    cluster: k8py\n"
            f"    user: {user}\n"
            "  name: k8py\n"
            "current-context: k8py\n"
            "preferences: {}\n"
            "users:\n"
            f"- name: {user}\n  user:\n"
            f"    client-certificate-data: {b64(self.admin_crt)}\n"
            f"    client-key-data: {b64(self.admin_key)}\n"
        )


def write_kubeconfig(path: str | os.PathLike[str], content: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _write(p, content.encode(), private=True)
