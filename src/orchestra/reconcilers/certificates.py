"""kube-controller-manager's csrapproving and csrsigning controllers (pkg/controller/certificates).

Owns:
  * `CsrApprover(client, can)`: a pending `kubernetes.io/kube-apiserver-client-kubelet` CSR whose
    request is a kubelet client certificate (ValidateKubeletClientCSR: CN system:node:<name>,
    O system:nodes, no SANs, kube's usages) is approved (condition Approved, reason AutoApproved)
    when its requester may `create` certificatesigningrequests/selfnodeclient (a node renewing its
    own: the requester is the CN) or certificatesigningrequests/nodeclient (bootstrap) — asked of
    the cluster's authorizer through `can(spec, subresource)`, kube's SubjectAccessReview. Anything
    else is left for a person (`kubectl certificate approve|deny`).
  * `CsrSigner(client, ca_cert, ca_key, max_seconds)`: an approved CSR, not denied or failed and not
    yet issued, for kube-apiserver-client-kubelet, kube-apiserver-client or kubelet-serving is
    checked against its signer's rules (a violation: condition Failed, reason
    SignerValidationFailure) and signed by the cluster CA, valid from 5 minutes ago for
    spec.expirationSeconds capped at `max_seconds` (and at the CA's own end), written to
    status.certificate. Other signers' CSRs are not ours.
Must not import: node, net, apiserver, cli, runtime.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from orchestra.api.policy import certificates as certs
from orchestra.client.base import Client
from orchestra.controller import Controller, Result
from orchestra.controller.clock import Clock, wall_clock
from orchestra.objects import Obj, as_dict, as_list, deep_copy, format_time

# can(csr spec, subresource) -> may the CSR's requester create certificatesigningrequests/<subresource>?
Can = Callable[[Obj, str], bool]
SIGNERS = (certs.KUBELET_CLIENT, certs.APISERVER_CLIENT, certs.KUBELET_SERVING)
DEFAULT_MAX_SECONDS = 365 * 24 * 3600  # kube's --cluster-signing-duration default (8760h)
BACKDATE = dt.timedelta(minutes=5)  # kube backdates certificates for clock skew


def _settled(csr: Obj) -> bool:
    return bool(certs.condition_types(csr) & {certs.APPROVED, certs.DENIED}) or certs.is_issued(csr)


def _condition(kind: str, reason: str, message: str, now: dt.datetime) -> Obj:
    stamp = format_time(now)
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp}


class CsrApprover(Controller):
    name = "csrapproving"

    def __init__(self, client: Client, can: Can, *, clock: Clock = wall_clock, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.can = can
        self.clock = clock
        self.csrs = self.informer("CertificateSigningRequest")
        self.enqueue_on(self.csrs)

    async def reconcile(self, key: str) -> Result | None:
        csr = self.csrs.get(None, key)
        if csr is None or _settled(csr):
            return None
        spec = as_dict(csr.get("spec"))
        if spec.get("signerName") != certs.KUBELET_CLIENT:
            return None
        try:
            request = certs.parse_request(spec.get("request"))
        except certs.CsrError:
            return None  # validation refuses these; nothing to approve
        usages = [str(u) for u in as_list(spec.get("usages"))]
        if certs.kubelet_client_error(request, usages) is not None:
            return None
        cn, _ = certs.subject(request)
        if spec.get("username") == cn and self.can(spec, "selfnodeclient"):
            message = "Auto approving self kubelet client certificate after SubjectAccessReview."
        elif self.can(spec, "nodeclient"):
            message = "Auto approving kubelet client certificate after SubjectAccessReview."
        else:
            return None
        updated = deep_copy(csr)
        status = updated.setdefault("status", {})
        status["conditions"] = [*as_list(status.get("conditions")),
                                _condition(certs.APPROVED, "AutoApproved", message, self.clock())]
        await self.client.patch(self.csrs.rt, None, key, {"status": {"conditions": status["conditions"]}},
                                subresource="approval")
        return None


class CsrSigner(Controller):
    name = "csrsigning"

    def __init__(self, client: Client, ca_cert: x509.Certificate, ca_key: Any, *,
                 max_seconds: int = DEFAULT_MAX_SECONDS, clock: Clock = wall_clock, **kwargs: Any) -> None:
        super().__init__(client, workers=1, **kwargs)
        self.ca_cert, self.ca_key = ca_cert, ca_key
        self.max_seconds = max_seconds
        self.clock = clock
        self.csrs = self.informer("CertificateSigningRequest")
        self.enqueue_on(self.csrs)

    async def reconcile(self, key: str) -> Result | None:
        csr = self.csrs.get(None, key)
        if csr is None or certs.is_issued(csr):
            return None
        kinds = certs.condition_types(csr)
        spec = as_dict(csr.get("spec"))
        if certs.APPROVED not in kinds or kinds & {certs.DENIED, certs.FAILED}:
            return None
        if spec.get("signerName") not in SIGNERS:
            return None
        usages = [str(u) for u in as_list(spec.get("usages"))]
        try:
            request = certs.parse_request(spec.get("request"))
            problem = _signer_error(str(spec["signerName"]), request, usages)
        except certs.CsrError as exc:
            problem = str(exc)
        updated = deep_copy(csr)
        status = updated.setdefault("status", {})
        if problem is not None:
            failed = _condition(certs.FAILED, "SignerValidationFailure", problem, self.clock())
            status["conditions"] = [*as_list(status.get("conditions")), failed]
        else:
            pem = self.sign(request, usages, spec.get("expirationSeconds"))
            status["certificate"] = base64.b64encode(pem).decode()
        await self.client.update_status(self.csrs.rt, updated)  # a Conflict re-queues with the fresh CSR
        return None

    def sign(self, request: x509.CertificateSigningRequest, usages: list[str], seconds: Any) -> bytes:
        now = self.clock()
        ttl = self.max_seconds
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            ttl = min(ttl, seconds)
        not_after = min(now + dt.timedelta(seconds=ttl), self.ca_cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(request.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(usages), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
        )
        eku = [oid for usage, oid in (("client auth", ExtendedKeyUsageOID.CLIENT_AUTH),
                                      ("server auth", ExtendedKeyUsageOID.SERVER_AUTH)) if usage in usages]
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = None
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(usages: list[str]) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature="digital signature" in usages, content_commitment="content commitment" in usages,
        key_encipherment="key encipherment" in usages, data_encipherment="data encipherment" in usages,
        key_agreement="key agreement" in usages, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


def _signer_error(signer: str, request: x509.CertificateSigningRequest, usages: list[str]) -> str | None:
    """kube's per-signer checks before signing."""
    if isinstance(request.public_key(), rsa.RSAPublicKey | ec.EllipticCurvePublicKey) is False:
        return "only RSA and ECDSA keys are supported"
    if signer == certs.KUBELET_CLIENT:
        return certs.kubelet_client_error(request, usages)
    if signer == certs.KUBELET_SERVING:
        return certs.kubelet_serving_error(request, usages)
    bad = sorted(set(usages) - certs.CLIENT_USAGES)
    return f"invalid usage for client certificate: {bad[0]}" if bad else None
