"""Who may use the kubelet API: a client certificate of the cluster CA, of a cluster administrator.

Owns: `authenticate(scope, ca)` -> `Caller` (the CN and Organizations of the client certificate the TLS
handshake checked against the cluster CA, re-checked here: issued by the CA and within its validity)
and `authorize(caller, attributes)` -> None or kubelet's Forbidden message.

The decision: kubelet asks kube-apiserver with a SubjectAccessReview (`--authorization-mode=Webhook`);
orchestra's kubelet API accepts only callers in `system:masters`, which is the group of the API
server's own kubelet client (`kube-apiserver-kubelet-client`, as kubeadm issues it) and of cluster
administrators, whom RBAC would allow `nodes/proxy` anyway. The API server is the one client this API
has; a SubjectAccessReview per stream would add an API round trip (and make the node's streams depend
on the API answering) to reach the same decision for it. Everyone else, nodes included, is refused.
Must not import: anything of orchestra but node/kubeletapi/paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from orchestra.node.kubeletapi.paths import Attributes

MASTERS = "system:masters"


@attrs.frozen
class Caller:
    name: str
    groups: tuple[str, ...]


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The PEM of the certificate the client sent (the ASGI `tls` extension), if any."""
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    return str(chain[0]) if chain else None


def authenticate(pem: str | None, ca: x509.Certificate, now: dt.datetime) -> Caller | None:
    """The caller a client certificate names; None without one, or for one the CA did not issue."""
    if pem is None:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return None  # not the cluster CA's: as if no certificate was sent
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return Caller(cn[0] if cn else "", orgs)


def authorize(caller: Caller, attrs_: Attributes) -> str | None:
    """None when allowed; otherwise kubelet's 403 text (auth.go's Forbidden message)."""
    if MASTERS in caller.groups:
        return None
    return (
        f"Forbidden (user={caller.name}, verb={attrs_.verb}, resource={attrs_.resource}, "
        f"subresource(s)=[{attrs_.subresource}])"
    )
