"""Test certificates made with `cryptography`: a CA, and leaf certificates for DNS names, as PEM, plus
the kubernetes.io/tls Secret that carries one."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@attrs.frozen
class Pem:
    cert: bytes
    key: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: str, issuer: str, public: Any) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)  # wall clock: certificate validity is calendar time
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)))


class CertAuthority:
    def __init__(self, name: str = "test-ca") -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (_builder(name, name, self.key.public_key())
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, *names: str) -> Pem:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (_builder(names[0], self.name, key.public_key())
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def tls_secret(name: str, pem: Pem) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(pem.cert).decode(),
            "tls.key": base64.b64encode(pem.key).decode(),
        },
    }
