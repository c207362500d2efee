"""The kubelet API's serving certificate: a `kubernetes.io/kubelet-serving` CSR, as kubelet's
serverTLSBootstrap makes one, renewed before it expires.

Owns: `ServingCertificate(client, node_name, addresses, pki_dir)`: a new EC key and a CSR for
CN=system:node:<name>, O=system:nodes with the node's IP addresses and host names as SANs (usages
digital signature + server auth), created through the API as the node; it waits for a person (or an
approver: kube has none for kubelet-serving CSRs, orchestra's reconcilers/csrserving.py approves those
naming only the Node's addresses) to approve it and the signer to issue it,
then writes <pki>/kubelet-server.crt and .key (0600). A certificate already there that is still valid
for at least RENEW_FRACTION of its life and names the same addresses is used as it is. `run()` hands
out the files and then renews at RENEW_FRACTION of each certificate's life (kubelet renews between
70 and 90 %), calling `on_renewed` with the new files; a denied or failed CSR is retried with a new
one after RETRY_SECONDS.
Must not import: apiserver, app, cli, reconcilers.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestra.api.errors import ApiError
from orchestra.api.registry import DEFAULT_REGISTRY, ResourceType
from orchestra.client.base import Client
from orchestra.objects import Obj, as_dict, only_dicts

log = logging.getLogger("orchestra.node.kubeletapi")

SIGNER = "kubernetes.io/kubelet-serving"
USAGES = ["digital signature", "server auth"]  # an EC key: no key encipherment (kube's ECDSA set)
RENEW_FRACTION = 0.8
RETRY_SECONDS = 60.0
POLL_SECONDS = 1.0


def _csr_type() -> ResourceType:
    rt = DEFAULT_REGISTRY.by_kind("CertificateSigningRequest")
    assert rt is not None  # a built-in kind
    return rt


CSR_RT = _csr_type()


class CsrRefused(Exception):
    """The CSR was denied or failed; the message says which and why."""


@attrs.frozen
class CertFiles:
    cert: Path
    key: Path
    not_before: dt.datetime
    not_after: dt.datetime

    def renew_at(self) -> dt.datetime:
        return self.not_before + (self.not_after - self.not_before) * RENEW_FRACTION


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # certificate validity is calendar time


def san_names(addresses: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for a in dict.fromkeys(addresses):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            names.append(x509.DNSName(a))
    return names


def request_pem(node_name: str, addresses: Sequence[str], key: ec.EllipticCurvePrivateKey) -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
        ]
    )
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(san_names(addresses)), critical=False)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _conditions(csr: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in only_dicts(as_dict(csr.get("status")).get("conditions"))}


class ServingCertificate:
    def __init__(
        self,
        client: Client,
        node_name: str,
        addresses: Sequence[str],
        pki_dir: Path,
        *,
        expiration_seconds: int | None = None,
        now: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.addresses = list(addresses)
        self.pki = pki_dir
        self.expiration_seconds = expiration_seconds
        self.now = now
        self.cert_path, self.key_path = pki_dir / "kubelet-server.crt", pki_dir / "kubelet-server.key"
        self.csrs_created: list[str] = []

    def current(self) -> CertFiles | None:
        """The certificate on disk, if it still fits (its names, and not yet due for renewal)."""
        if not (self.cert_path.exists() and self.key_path.exists()):
            return None
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        try:
            sans = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            return None
        files = CertFiles(self.cert_path, self.key_path, cert.not_valid_before_utc, cert.not_valid_after_utc)
        if sans != set(san_names(self.addresses)) or self.now() >= files.renew_at():
            return None
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except ValueError:
            return None  # a damaged key file: ask for a new certificate
        if key.public_key() != cert.public_key():
            return None
        return files

    async def obtain(self) -> CertFiles:
        """A new certificate through a CSR, retried after a denial or failure."""
        while True:
            try:
                return await self._request()
            except (CsrRefused, ApiError, OSError) as exc:  # (OSError: the API server went away)
                log.warning("node %s: %s; asking again in %d s", self.node_name, exc, RETRY_SECONDS)
            await trio.sleep(RETRY_SECONDS)

    async def _request(self) -> CertFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        spec: Obj = {
            "request": base64.b64encode(request_pem(self.node_name, self.addresses, key)).decode(),
            "signerName": SIGNER,
            "usages": USAGES,
        }
        if self.expiration_seconds is not None:
            spec["expirationSeconds"] = self.expiration_seconds
        made = await self.client.create(
            CSR_RT,
            None,
            {
                "apiVersion": "certificates.k8s.io/v1",
                "kind": "CertificateSigningRequest",
                "metadata": {"generateName": "csr-"},
                "spec": spec,
            },
        )
        name = str(made["metadata"]["name"])
        self.csrs_created.append(name)
        log.info(
            "node %s: the kubelet API waits for its serving certificate: orchestra's API server approves "
            "it when its names are the Node's addresses, else `kubectl certificate approve %s`",
            self.node_name,
            name,
        )
        pem = await self._wait_issued(name)
        return self._write(pem, key)

    async def _wait_issued(self, name: str) -> bytes:
        while True:
            csr = await self.client.get(CSR_RT, None, name)
            conditions = _conditions(csr)
            for kind in ("Denied", "Failed"):
                if kind in conditions:
                    why = conditions[kind].get("message") or conditions[kind].get("reason") or ""
                    raise CsrRefused(
                        f"certificate signing request {name} was {kind.lower()}: {why}".rstrip(": ")
                    )
            cert = as_dict(csr.get("status")).get("certificate")
            if cert:
                return base64.b64decode(str(cert))
            await trio.sleep(POLL_SECONDS)

    def _write(self, pem: bytes, key: ec.EllipticCurvePrivateKey) -> CertFiles:
        cert = x509.load_pem_x509_certificate(pem)
        self.pki.mkdir(parents=True, exist_ok=True)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_tmp, cert_tmp = (p.with_name(p.name + ".tmp") for p in (self.key_path, self.cert_path))
        fd = os.open(key_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        cert_tmp.write_bytes(pem)
        os.replace(key_tmp, self.key_path)  # key first: a crash between leaves a pair that does not match,
        os.replace(cert_tmp, self.cert_path)  # which `current()` never trusts
        return CertFiles(self.cert_path, self.key_path, cert.not_valid_before_utc, cert.not_valid_after_utc)

    async def run(
        self,
        on_renewed: Callable[[CertFiles], None],
        *,
        task_status: trio.TaskStatus[CertFiles] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand out a certificate (started()), then renew each one at RENEW_FRACTION of its life."""
        files = self.current() or await self.obtain()
        task_status.started(files)
        while True:
            wait = (files.renew_at() - self.now()).total_seconds()
            await trio.sleep(max(wait, 0.0))
            files = await self.obtain()
            on_renewed(files)
            log.info(
                "node %s: renewed the kubelet API's serving certificate (valid until %s)",
                self.node_name,
                files.not_after.isoformat(),
            )
