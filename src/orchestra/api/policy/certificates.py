"""certificates.k8s.io/v1 CertificateSigningRequest: what validation, the approver and the signer share.

Owns: the well-known signer names and key usages, `parse_request(spec.request)` (base64 of a PEM
`CERTIFICATE REQUEST`, signature checked; CsrError saying why not), kube's
`ValidateKubeletClientCSR` / `ValidateKubeletServingCSR` (`kubelet_client_error`,
`kubelet_serving_error`: None when the request fits), the condition helpers (`condition_types`,
`is_issued`) and `RequesterAdmission`, the part of kube's CSR strategy that needs the caller: on
create, spec.username/uid/groups/extra become the requesting user's (a client cannot claim another).
Must not import: anything above the api layer.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import NameOID

from orchestra.objects import Obj, as_dict, only_dicts

if TYPE_CHECKING:  # admission imports validation, which imports this module
    from orchestra.api.policy.admission import Attributes

GROUP = "certificates.k8s.io"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
VALID_USAGES = ("signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                "server auth", "client auth", "code signing", "email protection", "s/mime",
                "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                "microsoft sgc", "netscape sgc")
KUBELET_CLIENT_USAGES = frozenset({"key encipherment", "digital signature", "client auth"})
KUBELET_CLIENT_USAGES_NO_RSA = frozenset({"digital signature", "client auth"})
KUBELET_SERVING_USAGES = frozenset({"key encipherment", "digital signature", "server auth"})
KUBELET_SERVING_USAGES_NO_RSA = frozenset({"digital signature", "server auth"})
CLIENT_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})


class CsrError(Exception):
    pass


def decode_request(value: object) -> bytes:
    """spec.request's bytes (JSON carries []byte as base64)."""
    if not isinstance(value, str):
        raise CsrError("PEM block type must be CERTIFICATE REQUEST")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CsrError("PEM block type must be CERTIFICATE REQUEST") from None


def parse_request(value: object) -> x509.CertificateSigningRequest:
    """kube's ParseCSR and CheckSignature."""
    pem = decode_request(value)
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise CsrError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CsrError(f"x509: malformed certificate request: {exc}") from None
    if not csr.is_signature_valid:
        raise CsrError("x509: ECDSA verification failure")
    return csr


def _names(csr: x509.CertificateSigningRequest) -> tuple[list[str], list[str], list[str], list[str]]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    return (san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.RFC822Name),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
            san.get_values_for_type(x509.UniformResourceIdentifier))


def subject(csr: x509.CertificateSigningRequest) -> tuple[str, list[str]]:
    """(Common Name, Organizations)."""
    cn = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (cn[0] if cn else ""), orgs


def kubelet_client_error(csr: x509.CertificateSigningRequest, usages: list[str]) -> str | None:
    """kube's ValidateKubeletClientCSR: None when `csr` is a kubelet client certificate request."""
    cn, orgs = subject(csr)
    dns, emails, ips, uris = _names(csr)
    if orgs != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    for found, what in ((dns, "DNS"), (emails, "Email"), (ips, "IP"), (uris, "URI")):
        if found:
            return f"{what} subjectAltNames are not allowed"
    if not cn.startswith(NODE_PREFIX):
        return "subject common name does not begin with system:node:"
    if set(usages) not in (KUBELET_CLIENT_USAGES, KUBELET_CLIENT_USAGES_NO_RSA):
        return f"usages did not match [{' '.join(sorted(KUBELET_CLIENT_USAGES))}]"
    return None


def kubelet_serving_error(csr: x509.CertificateSigningRequest, usages: list[str]) -> str | None:
    """kube's ValidateKubeletServingCSR."""
    cn, orgs = subject(csr)
    dns, emails, ips, uris = _names(csr)
    if orgs != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    if emails:
        return "Email subjectAltNames are not allowed"
    if uris:
        return "URI subjectAltNames are not allowed"
    if not dns and not ips:
        return "DNS or IP subjectAltName is required"
    if not cn.startswith(NODE_PREFIX):
        return "subject common name does not begin with system:node:"
    if set(usages) not in (KUBELET_SERVING_USAGES, KUBELET_SERVING_USAGES_NO_RSA):
        return f"usages did not match [{' '.join(sorted(KUBELET_SERVING_USAGES))}]"
    return None


def condition_types(csr: Obj) -> set[str]:
    return {str(c.get("type")) for c in only_dicts(as_dict(csr.get("status")).get("conditions"))
            if c.get("status", "True") == "True"}


def is_issued(csr: Obj) -> bool:
    return bool(as_dict(csr.get("status")).get("certificate"))


class RequesterAdmission:
    """kube's CSR PrepareForCreate: the requester fields are the caller's, whatever the body says."""

    name = "CertificateSigningRequestRequester"

    async def admit(self, a: Attributes) -> None:
        if a.kind != "CertificateSigningRequest" or a.operation != "CREATE" or a.user is None:
            return  # in-process writers (tests, controllers) are trusted to fill them in
        spec = a.obj.setdefault("spec", {})
        for field in ("username", "uid", "groups", "extra"):
            spec.pop(field, None)
        if a.user.name:
            spec["username"] = a.user.name
        if a.user.uid:
            spec["uid"] = a.user.uid
        if a.user.groups:
            spec["groups"] = list(a.user.groups)
        if a.user.extra:
            spec["extra"] = {k: list(v) for k, v in a.user.extra}


def merge_update(old: Obj, new: Obj, subresource: str, now: str) -> Obj:
    """kube's CSR update strategies: the spec never changes; `approval` changes only the conditions,
    `status` everything but the Approved/Denied conditions; a plain update changes neither (the
    core keeps the status). Conditions get their timestamps when missing."""
    merged = dict(new)
    merged["spec"] = old.get("spec") or {}
    if subresource == "approval":
        merged["status"] = {**as_dict(old.get("status")),
                            "conditions": list(only_dicts(as_dict(new.get("status")).get("conditions")))}
    elif subresource == "status":
        approvals = [c for c in only_dicts(as_dict(old.get("status")).get("conditions"))
                     if c.get("type") in (APPROVED, DENIED)]
        others = [c for c in only_dicts(as_dict(new.get("status")).get("conditions"))
                  if c.get("type") not in (APPROVED, DENIED)]
        merged["status"] = {**as_dict(new.get("status")), "conditions": approvals + others}
    conditions = as_dict(merged.get("status")).get("conditions")
    if subresource and conditions is not None:
        for c in only_dicts(conditions):
            c.setdefault("lastUpdateTime", now)
            c.setdefault("lastTransitionTime", now)
        if not conditions:
            merged["status"].pop("conditions")
    return merged
