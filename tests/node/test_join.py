"""The node side of joining (node/join.py): the CA pin check, and the join state machine against a fake
API server (bootstrap token -> name check -> CSR -> approved certificate -> kubeconfig), each refusal with
its message and nothing left in the state directory."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestra.api import errors
from orchestra.client.http import Endpoint, TransportError
from orchestra.node.join import KUBELET_SIGNER, KUBELET_USAGES, JoinError, JoinRequest, check_pin, join

SERVER = "https://10.1.2.3:6443"
TOKEN_ID, SECRET = "abcdef", "0123456789abcdef"


def _ca(cn: str = "orchestra-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


CA, CA_KEY = _ca()
CA_PEM = CA.public_bytes(serialization.Encoding.PEM)
PIN = hashlib.sha256(CA.public_bytes(serialization.Encoding.DER)).hexdigest()
TOKEN = f"K10{PIN}::{TOKEN_ID}.{SECRET}"


@pytest.mark.parametrize(
    ("pem", "pin", "message"),
    [
        (CA_PEM, PIN, None),
        (CA_PEM, PIN.upper(), None),
        (_ca("impostor")[0].public_bytes(serialization.Encoding.PEM), PIN, "a man in the middle"),
        (b"<html>hello</html>", PIN, "is not a PEM certificate"),
    ],
    ids=["match", "match-any-case", "mismatch", "not-pem"],
)
def test_check_pin(pem: bytes, pin: str, message: str | None) -> None:
    if message is None:
        check_pin(pem, pin, SERVER)
        return
    with pytest.raises(JoinError, match=message):
        check_pin(pem, pin, SERVER)


class FakeApi:
    """The API answers a joining node gets: nodes by name, CSRs created and, after `approve_after`
    polls, signed by the CA (or denied)."""

    def __init__(
        self,
        *,
        node: dict[str, Any] | None = None,
        token_ok: bool = True,
        approve_after: int | None = 2,
        deny: bool = False,
    ) -> None:
        self.node, self.token_ok, self.approve_after, self.deny = node, token_ok, approve_after, deny
        self.csrs: dict[str, dict[str, Any]] = {}
        self.polls = 0
        self.endpoint: Endpoint | None = None
        self.closed = False

    def connect(self, endpoint: Endpoint) -> FakeApi:
        self.endpoint = endpoint
        return self

    async def aclose(self) -> None:
        self.closed = True

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        if not self.token_ok:
            raise errors.Unauthorized("Unauthorized")
        if path.startswith("/api/v1/nodes/"):
            if self.node is None:
                raise errors.NotFound("not found")
            return self.node
        if method == "POST":
            self.csrs[body["metadata"]["name"]] = body
            return body
        csr = self.csrs[path.rsplit("/", 1)[1]]
        self.polls += 1
        if self.approve_after is not None and self.polls >= self.approve_after:
            if self.deny:
                csr["status"] = {
                    "conditions": [
                        {"type": "Denied", "status": "True", "reason": "NotMine", "message": "who are you"}
                    ]
                }
            else:
                csr["status"] = {
                    "conditions": [{"type": "Approved", "status": "True"}],
                    "certificate": base64.b64encode(self._sign(csr)).decode(),
                }
        return csr

    def _sign(self, csr: dict[str, Any]) -> bytes:
        request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(CA.subject)
            .public_key(request.public_key())
            .serial_number(2)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(hours=1))
            .sign(CA_KEY, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def _ready(status: str) -> dict[str, Any]:
    return {"metadata": {"name": "worker-1"}, "status": {"conditions": [{"type": "Ready", "status": status}]}}


async def _serve_ca(server: str) -> bytes:
    return CA_PEM


async def test_join_writes_the_node_kubeconfig(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    api = FakeApi(node=_ready("Unknown"))  # a stopped node of that name may be taken over
    req = JoinRequest(SERVER, TOKEN, "worker-1", tmp_path / "state", expiration_seconds=3600)
    with trio.fail_after(60):
        path = await join(req, fetch_ca=_serve_ca, connect=api.connect)
    assert api.endpoint == Endpoint(SERVER, token=f"{TOKEN_ID}.{SECRET}", ca_data=CA_PEM) and api.closed
    (csr,) = api.csrs.values()
    assert csr["spec"]["signerName"] == KUBELET_SIGNER and csr["spec"]["usages"] == KUBELET_USAGES
    assert csr["spec"]["expirationSeconds"] == 3600
    subject = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"])).subject.rfc4514_string()
    assert subject == "CN=system:node:worker-1,O=system:nodes"
    assert path == tmp_path / "state" / "kubeconfig" and oct(path.stat().st_mode & 0o777) == "0o600"
    endpoint = Endpoint.from_kubeconfig(path)
    assert endpoint.server == SERVER and endpoint.ca_data == CA_PEM and endpoint.token is None
    assert endpoint.cert_data is not None and endpoint.key_data is not None
    cert = x509.load_pem_x509_certificate(endpoint.cert_data)
    key = serialization.load_pem_private_key(endpoint.key_data, None)
    assert cert.public_key() == key.public_key()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["kubeconfig"]


async def _unreachable(server: str) -> bytes:
    raise TransportError(f"GET {server}/cacerts: [Errno 111] Connection refused")


async def _impostor(server: str) -> bytes:
    return _ca("impostor")[0].public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("token", "fetch", "api", "message"),
    [
        (
            "abcdef.0123456789abcdef",
            _serve_ca,
            FakeApi(),
            "use the whole token `orchestra token create` printed",
        ),
        (TOKEN, _unreachable, FakeApi(), f"cannot reach the API server at {SERVER}"),
        (TOKEN, _impostor, FakeApi(), "does not match the join token's pin.*a man in the middle"),
        (
            TOKEN,
            _serve_ca,
            FakeApi(token_ok=False),
            "wrong, expired or deleted; create a new one on the server with `orchestra token create`",
        ),
        (
            TOKEN,
            _serve_ca,
            FakeApi(node=_ready("True")),
            "'worker-1' is held by another live node.*--node-name",
        ),
        (TOKEN, _serve_ca, FakeApi(deny=True), r"was denied \(NotMine: who are you\)"),
        (
            TOKEN,
            _serve_ca,
            FakeApi(approve_after=None),
            r"after 120 s.*`kubectl certificate approve node-csr-",
        ),
    ],
    ids=[
        "not-a-join-token",
        "unreachable",
        "ca-mismatch",
        "token-refused",
        "name-held",
        "denied",
        "not-approved",
    ],
)
async def test_join_refusals_leave_nothing_behind(
    token: str, fetch: Any, api: FakeApi, message: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state = tmp_path / "state"
    with trio.fail_after(600), pytest.raises(JoinError, match=message):
        await join(JoinRequest(SERVER, token, "worker-1", state), fetch_ca=fetch, connect=api.connect)
    assert not state.exists()
    if api.endpoint is not None:
        assert api.closed
