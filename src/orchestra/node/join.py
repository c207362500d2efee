"""Joining a cluster, node side: what kubelet's TLS bootstrap and `kubeadm join` discovery do.

Owns: the join state machine `join(...)` -> the node's kubeconfig: fetch the server's CA from
/cacerts without trusting it yet and check its SHA-256 (of the DER) against the join token's pin
(`check_pin`); as the bootstrap token, check the node name is not held by a live node, then submit a
certificates.k8s.io/v1 CertificateSigningRequest for CN=system:node:<name>, O=system:nodes (a key made
here with `cryptography`, the kube-apiserver-client-kubelet signer, kubelet's usages) and wait until
it is approved and signed; write <state-dir>/kubeconfig (server, CA, the client certificate and key).
Nothing is written before the certificate arrives (the key stays in memory), and the kubeconfig is
written whole (a temporary file renamed), so an interrupted join leaves nothing for its retry to trip
on. Every refusal is a `JoinError` whose message says what to do.
`request_certificate` is also what certificate rotation (certrotation.py) uses, as the node itself.
Must not import: apiserver, reconcilers, cli, runtime.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ruamel.yaml import YAML

from orchestra.api import errors
from orchestra.api.policy import bootstraptoken as bt
from orchestra.client.http import Endpoint, TransportError

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_USAGES = ["digital signature", "client auth"]  # kubelet's for an ECDSA key
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"


class JoinError(Exception):
    """The join cannot go on; the message says why and what to do."""


class Api(Protocol):
    """What the join needs of a client: HttpClient.request (the decoded answer, or
    ApiError/TransportError)."""

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any: ...

    async def aclose(self) -> None: ...


FetchCA = Callable[[str], Awaitable[bytes]]
Connect = Callable[[Endpoint], Api]


@attrs.frozen
class JoinRequest:
    server: str
    token: str  # the join token K10<sha256>::<id>.<secret>
    node_name: str
    state_dir: Path
    wait_seconds: float = 120.0  # for the CSR's approval and certificate
    poll_seconds: float = 0.1
    expiration_seconds: int | None = None  # the certificate's requested lifetime (None: the signer's)


def ca_digest(ca_pem: bytes) -> str:
    """SHA-256 (hex) of the first certificate's DER; JoinError if it is not a PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise JoinError(f"the server's /cacerts is not a PEM certificate ({exc}): is it an orchestra "
                        "API server?") from None
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def check_pin(ca_pem: bytes, pin: str, server: str) -> None:
    """Refuse a CA whose hash is not the token's pin: a man in the middle, or a token of another cluster."""
    got = ca_digest(ca_pem)
    if got != pin.lower():
        raise JoinError(
            f"the CA certificate served by {server} (sha256 {got}) does not match the join token's pin "
            f"(sha256 {pin.lower()}): either something between this host and the server is impersonating it "
            "(a man in the middle), or the token belongs to another cluster; check the server address and "
            "use a token from `orchestra token create` on that server")


def parse(token: str) -> tuple[str, str]:
    try:
        return bt.parse_join_token(token.strip())
    except ValueError as exc:
        raise JoinError(f"--token: {exc}; use the whole token `orchestra token create` printed on the server "
                        "(K10<sha256>::<id>.<secret>)") from None


def node_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def csr_object(node_name: str, key: ec.EllipticCurvePrivateKey,
               expiration_seconds: int | None) -> dict[str, Any]:
    """kubelet's CSR: subject CN=system:node:<name>, O=system:nodes; named after its key and user."""
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                         x509.NameAttribute(NameOID.COMMON_NAME, NODE_PREFIX + node_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    pem = request.public_bytes(serialization.Encoding.PEM)
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(public + node_name.encode()).hexdigest()
    spec: dict[str, Any] = {"request": base64.b64encode(pem).decode(), "signerName": KUBELET_SIGNER,
                            "usages": KUBELET_USAGES}
    if expiration_seconds:
        spec["expirationSeconds"] = expiration_seconds
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "node-csr-" + digest[:32]},
            "spec": spec}


async def request_certificate(api: Api, node_name: str, key: ec.EllipticCurvePrivateKey, *,
                              wait_seconds: float, poll_seconds: float = 0.1,
                              expiration_seconds: int | None = None) -> bytes:
    """Submit the node's CSR and wait for its certificate (PEM); JoinError when denied or not in time."""
    body = csr_object(node_name, key, expiration_seconds)
    name = body["metadata"]["name"]
    await api.request("POST", CSRS, body=body)
    with trio.move_on_after(wait_seconds):
        while True:
            got = await api.request("GET", f"{CSRS}/{name}")
            status = got.get("status") or {}
            for cond in status.get("conditions") or []:
                if cond.get("type") in ("Denied", "Failed") and cond.get("status", "True") == "True":
                    raise JoinError(
                        f"the certificate signing request {name} was {cond['type'].lower()} "
                        f"({cond.get('reason', '')}: {cond.get('message', '')}); ask the cluster's admin, "
                        "then join again")
            if status.get("certificate"):
                return base64.b64decode(status["certificate"])
            await trio.sleep(poll_seconds)
    raise JoinError(
        f"no certificate for the certificate signing request {name} after {wait_seconds:g} s (not approved, "
        f"or no signer): on the server, `kubectl certificate approve {name}`, and check `kubectl get csr`")


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, cert_pem: bytes, key: bytes,
                     node_name: str) -> None:
    """The node's kubeconfig, written whole (temporary file, then renamed), readable by root only."""
    user = NODE_PREFIX + node_name
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "default",
        "clusters": [{"name": "default", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                          "client-key-data": base64.b64encode(key).decode()}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": user}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        YAML(typ="safe").dump(doc, f)
    os.replace(tmp, path)


def _live(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def join(req: JoinRequest, *, fetch_ca: FetchCA, connect: Connect) -> Path:
    """Join the cluster; the node's kubeconfig path once it holds its client certificate."""
    pin, token = parse(req.token)
    try:
        ca_pem = await fetch_ca(req.server)
    except (TransportError, OSError) as exc:
        raise JoinError(f"cannot reach the API server at {req.server} ({exc}): check the address and port, "
                        "that `orchestra up` runs there and listens on an address this host can reach "
                        "(`orchestra up --listen 0.0.0.0:6443`)") from None
    check_pin(ca_pem, pin, req.server)
    api = connect(Endpoint(req.server, token=token, ca_data=ca_pem))
    try:
        await _check_name(api, req.node_name)
        key = node_key()
        cert = await request_certificate(api, req.node_name, key, wait_seconds=req.wait_seconds,
                                         poll_seconds=req.poll_seconds,
                                         expiration_seconds=req.expiration_seconds)
    except errors.Unauthorized as exc:
        raise JoinError(f"the server refused the bootstrap token ({exc}): it is wrong, expired or deleted; "
                        "create a new one on the server with `orchestra token create`") from None
    except errors.Forbidden as exc:
        raise JoinError(f"the bootstrap token may not join nodes ({exc}): use one from "
                        "`orchestra token create`") from None
    except TransportError as exc:
        raise JoinError(f"lost the API server at {req.server} while joining ({exc}): join again") from None
    finally:
        await api.aclose()
    path = req.state_dir / "kubeconfig"
    write_kubeconfig(path, req.server, ca_pem, cert, key_pem(key), req.node_name)
    return path


async def _check_name(api: Api, node_name: str) -> None:
    try:
        node = await api.request("GET", f"/api/v1/nodes/{node_name}")
    except errors.NotFound:
        return
    if _live(node):
        raise JoinError(
            f"node name {node_name!r} is held by another live node (its Node is Ready): choose another with "
            f"--node-name, or stop that node and wait until it is NotReady, or remove it on the server with "
            f"`kubectl delete node {node_name}`")
