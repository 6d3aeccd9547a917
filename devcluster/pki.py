"""Per-cluster throw-away PKI: one CA, the apiserver serving cert, client certs and the SA key pair.

Everything is ECDSA P-256 (fast to generate, accepted by kube-apiserver for serving, client auth
and service-account token signing). One CA signs both serving and client certificates, which is
all a loopback-only test cluster needs. Keys are written unencrypted with mode 0600; they protect
nothing but a disposable cluster on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
BACKDATE = dt.timedelta(hours=1)

ADMIN_USER = "fleetdeck-admin"
VIEWER_USER = "fleetdeck-viewer"
MASTERS_GROUP = "system:masters"

#: client identities: file stem -> (CN, O). Components get their own CN so audit logs tell them apart.
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": (ADMIN_USER, MASTERS_GROUP),
    "viewer": (VIEWER_USER, None),
    "kube-controller-manager": ("system:kube-controller-manager", MASTERS_GROUP),
    "kube-scheduler": ("system:kube-scheduler", MASTERS_GROUP),
    "kwok": ("system:kwok-controller", MASTERS_GROUP),
    "flux": ("flux-controllers", MASTERS_GROUP),
}
"""``flux``: Flux's source- and kustomize-controller (devcluster.flux), apart from the tests' admin in audit logs."""


@dataclass(frozen=True, slots=True)
class ClusterPki:
    """Paths of one cluster's PKI files (all under ``directory``)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """CA certificate (``--client-ca-file``, kubeconfig certificate-authority-data)."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """CA private key (kcm's cluster signing key)."""
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        """kube-apiserver serving certificate (SAN IP:127.0.0.1, DNS:localhost)."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """kube-apiserver serving key."""
        return self.directory / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        """Service-account token signing key."""
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """Service-account token verification key."""
        return self.directory / "sa.pub"

    def client_cert(self, who: str) -> Path:
        """Client certificate of identity ``who`` (a key of :data:`CLIENTS`)."""
        return self.directory / f"{who}.crt"

    def client_key(self, who: str) -> Path:
        """Client key of identity ``who``."""
        return self.directory / f"{who}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
    )


def _make_ca(cluster: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name(f"fleetdeck-{cluster}-ca")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[bytes, bytes]:
    ca_cert, ca_key = ca
    key = _new_key()
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _write_sa_pair(pki: ClusterPki) -> None:
    key = _new_key()
    _write(pki.sa_key, _key_pem(key), secret=True)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(pki.sa_pub, pub)


def create_pki(directory: Path, *, cluster: str) -> ClusterPki:
    """Create a complete PKI for one cluster in ``directory`` (created if needed).

    Args:
        directory: where the PEM files go.
        cluster: cluster name, used in the CA's common name.

    Returns:
        The paths of the files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = ClusterPki(directory)
    ca = _make_ca(cluster)
    _write(pki.ca_cert, ca[0].public_bytes(serialization.Encoding.PEM))
    _write(pki.ca_key, _key_pem(ca[1]), secret=True)
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    cert, key = _leaf(ca, subject=_name("kube-apiserver"), usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
    _write(pki.serving_cert, cert)
    _write(pki.serving_key, key, secret=True)
    for who, (cn, org) in CLIENTS.items():
        cert, key = _leaf(ca, subject=_name(cn, org), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        _write(pki.client_cert(who), cert)
        _write(pki.client_key(who), key, secret=True)
    _write_sa_pair(pki)
    return pki
