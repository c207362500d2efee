"""The CSR approver and signer (reconcilers/certificates.py) on the real API core."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestra.controller.clock import virtual_clock
from orchestra.reconcilers.certificates import CsrApprover, CsrSigner
from tests.controller.harness import make_api
from tests.csrs import csr, request_pem

KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
BOOTSTRAPPER = {"username": "system:bootstrap:abcdef", "groups": ["system:bootstrappers"]}


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _can(allowed: set[tuple[str, str]]) -> Any:
    def can(spec: dict[str, Any], subresource: str) -> bool:
        return any((g, subresource) in allowed for g in [spec.get("username"), *spec.get("groups", [])])

    return can


ALLOWED = {("system:bootstrappers", "nodeclient"), ("system:nodes", "selfnodeclient")}


@pytest.mark.parametrize(
    ("name", "body", "approved"),
    [
        pytest.param(
            "bootstrap",
            csr("bootstrap", request_pem("system:node:n1"), **BOOTSTRAPPER),
            True,
            id="bootstrapper-nodeclient",
        ),
        pytest.param(
            "renewal",
            csr("renewal", request_pem("system:node:n1"), username="system:node:n1", groups=["system:nodes"]),
            True,
            id="self-renewal",
        ),
        pytest.param(
            "other-node",
            csr(
                "other-node",
                request_pem("system:node:n2"),
                username="system:node:n1",
                groups=["system:nodes"],
            ),
            False,
            id="renewal-for-another-node",
        ),
        pytest.param(
            "stranger",
            csr("stranger", request_pem("system:node:n1"), username="jane", groups=["devs"]),
            False,
            id="no-permission",
        ),
        pytest.param(
            "admin-cn",
            csr("admin-cn", request_pem("admin", ("system:masters",)), **BOOTSTRAPPER),
            False,
            id="not-a-kubelet-subject",
        ),
        pytest.param(
            "usages",
            csr(
                "usages", request_pem("system:node:n1"), usages=["client auth", "server auth"], **BOOTSTRAPPER
            ),
            False,
            id="wrong-usages",
        ),
        pytest.param(
            "signer",
            csr(
                "signer",
                request_pem("system:node:n1"),
                signer="kubernetes.io/kubelet-serving",
                **BOOTSTRAPPER,
            ),
            False,
            id="other-signer",
        ),
    ],
)
async def test_approver(
    autojump_clock: trio.testing.MockClock, name: str, body: dict[str, Any], approved: bool
) -> None:
    api = await make_api()
    await api.create("CertificateSigningRequest", body, None)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(CsrApprover(api.client, _can(ALLOWED), clock=virtual_clock()).run)
            await trio.sleep(5)
            found = api.get("CertificateSigningRequest", name, None)
            assert found is not None
            conditions = (found.get("status") or {}).get("conditions") or []
            if approved:
                assert [(c["type"], c["reason"]) for c in conditions] == [("Approved", "AutoApproved")]
                message = conditions[0]["message"]
                assert message == (
                    "Auto approving self kubelet client certificate after SubjectAccessReview."
                    if name == "renewal"
                    else "Auto approving kubelet client certificate after SubjectAccessReview."
                )
            else:
                assert conditions == []
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("signer", "pem", "usages", "seconds", "outcome"),
    [
        pytest.param(KUBELET, request_pem("system:node:n1"), None, None, "issued", id="kubelet-client"),
        pytest.param(KUBELET, request_pem("system:node:n1"), None, 3600, "issued", id="kubelet-client-1h"),
        pytest.param(
            KUBELET,
            request_pem("jane", ("devs",)),
            None,
            None,
            "subject organization is not system:nodes",
            id="kubelet-client-bad-subject",
        ),
        pytest.param(
            "kubernetes.io/kube-apiserver-client",
            request_pem("jane", ("devs",)),
            ["client auth"],
            None,
            "issued",
            id="apiserver-client",
        ),
        pytest.param(
            "kubernetes.io/kube-apiserver-client",
            request_pem("jane", ("devs",)),
            ["server auth"],
            None,
            "invalid usage for client certificate: server auth",
            id="apiserver-client-server-usage",
        ),
        pytest.param(
            "kubernetes.io/kubelet-serving",
            request_pem("system:node:n1", ips=("10.0.0.5",)),
            ["digital signature", "server auth"],
            None,
            "issued",
            id="kubelet-serving",
        ),
        pytest.param(
            "example.com/mine", request_pem("system:node:n1"), None, None, "untouched", id="not-ours"
        ),
    ],
)
async def test_signer(
    autojump_clock: trio.testing.MockClock,
    signer: str,
    pem: bytes,
    usages: list[str] | None,
    seconds: int | None,
    outcome: str,
) -> None:
    api = await make_api()
    ca, key = _ca()
    body = csr("c", pem, signer=signer, usages=usages, **({"expirationSeconds": seconds} if seconds else {}))
    made = await api.create("CertificateSigningRequest", body, None)
    made["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Test"}]}
    await api.client.patch(
        api.rt("CertificateSigningRequest"), None, "c", {"status": made["status"]}, subresource="approval"
    )
    clock = virtual_clock()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(CsrSigner(api.client, ca, key, max_seconds=86400, clock=clock).run)
            await trio.sleep(5)
            found = api.get("CertificateSigningRequest", "c", None)
            nursery.cancel_scope.cancel()
    assert found is not None
    status = found.get("status") or {}
    if outcome == "untouched":
        assert "certificate" not in status and len(status["conditions"]) == 1
        return
    if outcome != "issued":
        assert "certificate" not in status
        assert [(c["type"], c["reason"], c["message"]) for c in status["conditions"][1:]] == [
            ("Failed", "SignerValidationFailure", outcome)
        ]
        return
    cert = x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))
    cert.verify_directly_issued_by(ca)
    assert cert.subject == x509.load_pem_x509_csr(pem).subject
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(seconds=(seconds or 86400) + 300)  # backdated 5 minutes; capped at max
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    want = ExtendedKeyUsageOID.SERVER_AUTH if signer.endswith("serving") else ExtendedKeyUsageOID.CLIENT_AUTH
    assert list(eku) == [want]
    if signer.endswith("serving"):
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
