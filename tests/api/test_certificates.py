"""CertificateSigningRequest: kube's validation, the approval/status strategies, the kubelet CSR rules."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestra.api.errors import Invalid
from orchestra.api.policy import certificates as certs
from orchestra.api.policy.validation import validate
from orchestra.api.request.core import ApiCore
from orchestra.api.request.types import WriteOptions
from orchestra.api.user import UserInfo
from orchestra.store import Store
from tests.csrs import csr, request_pem

PEM = request_pem("system:node:n1")


def _fields(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate("CertificateSigningRequest", obj, old)]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, [], id="valid"),
        pytest.param(
            {"request": base64.b64encode(b"nope").decode()},
            [("spec.request", "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST")],
            id="not-pem",
        ),
        pytest.param({"signerName": ""}, [("spec.signerName", "Required value")], id="no-signer"),
        pytest.param(
            {"signerName": "nodomain"},
            [
                (
                    "spec.signerName",
                    'Invalid value: "nodomain": must be a fully '
                    "qualified domain and path of the form 'example.com/signer-name'",
                )
            ],
            id="unqualified-signer",
        ),
        pytest.param(
            {"signerName": "kubernetes.io/legacy-unknown"},
            [
                (
                    "spec.signerName",
                    'Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is '
                    "not allowed via this API version",
                )
            ],
            id="legacy-signer",
        ),
        pytest.param(
            {"usages": []}, [("spec.usages", "Required value: usages must be provided")], id="no-usages"
        ),
        pytest.param(
            {"usages": ["client auth", "client auth"]},
            [("spec.usages[1]", 'Duplicate value: "client auth"')],
            id="duplicate-usage",
        ),
        pytest.param({"usages": ["flying"]}, [("spec.usages[0]", None)], id="unknown-usage"),
        pytest.param(
            {"expirationSeconds": 599},
            [
                (
                    "spec.expirationSeconds",
                    "Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
                )
            ],
            id="too-short",
        ),
        pytest.param({"expirationSeconds": 600}, [], id="ten-minutes"),
    ],
)
def test_validation(changes: dict[str, Any], expected: list[tuple[str, str | None]]) -> None:
    obj = csr("c", PEM)
    obj["spec"].update(changes)
    found = _fields(obj)
    assert [f for f, _ in found] == [f for f, _ in expected]
    for (_, message), (_, want) in zip(found, expected, strict=True):
        if want is not None:
            assert message == want
        else:
            assert message.startswith('Unsupported value: "flying": supported values:')


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        pytest.param([{"type": "Approved", "status": "True"}], None, id="approved"),
        pytest.param(
            [{"type": "Approved", "status": "False"}], "status.conditions[0].status", id="approved-false"
        ),
        pytest.param(
            [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}],
            "status.conditions",
            id="approved-and-denied",
        ),
        pytest.param(
            [{"type": "Approved", "status": "True"}, {"type": "Approved", "status": "True"}],
            "status.conditions[1].type",
            id="twice",
        ),
        pytest.param([{"type": "", "status": "True"}], "status.conditions[0].type", id="untyped"),
    ],
)
def test_condition_validation(conditions: list[dict[str, str]], field: str | None) -> None:
    obj = csr("c", PEM)
    obj["status"] = {"conditions": conditions}
    assert [f for f, _ in _fields(obj)] == ([field] if field else [])


def test_an_issued_certificate_and_an_approval_cannot_be_undone() -> None:
    old = csr("c", PEM)
    old["status"] = {
        "conditions": [{"type": "Approved", "status": "True"}],
        "certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAA==\n").decode(),
    }
    new = csr("c", PEM)
    new["status"] = {"certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAB==\n").decode()}
    assert _fields(new, old) == [
        (
            "status.certificate",
            'Invalid value: "<certificate data>": updates may not modify existing certificate content',
        ),
        ("status.conditions", "Forbidden: updates may not remove a condition of type 'Approved'"),
    ]


@pytest.mark.parametrize(
    ("cn", "orgs", "dns", "usages", "error"),
    [
        pytest.param(
            "system:node:n1", ("system:nodes",), (), ["digital signature", "client auth"], None, id="ok"
        ),
        pytest.param(
            "system:node:n1",
            ("system:nodes",),
            (),
            ["key encipherment", "digital signature", "client auth"],
            None,
            id="ok-rsa-usages",
        ),
        pytest.param(
            "system:node:n1",
            ("other",),
            (),
            ["digital signature", "client auth"],
            "subject organization is not system:nodes",
            id="wrong-org",
        ),
        pytest.param(
            "system:node:n1",
            ("system:nodes", "x"),
            (),
            ["digital signature", "client auth"],
            "subject organization is not system:nodes",
            id="extra-org",
        ),
        pytest.param(
            "jane",
            ("system:nodes",),
            (),
            ["digital signature", "client auth"],
            "subject common name does not begin with system:node:",
            id="not-a-node",
        ),
        pytest.param(
            "system:node:n1",
            ("system:nodes",),
            ("n1",),
            ["digital signature", "client auth"],
            "DNS subjectAltNames are not allowed",
            id="dns-san",
        ),
        pytest.param(
            "system:node:n1",
            ("system:nodes",),
            (),
            ["digital signature", "client auth", "server auth"],
            "usages did not match [client auth digital signature key encipherment]",
            id="server-usage",
        ),
    ],
)
def test_kubelet_client_rules(
    cn: str, orgs: tuple[str, ...], dns: tuple[str, ...], usages: list[str], error: str | None
) -> None:
    request = certs.parse_request(base64.b64encode(request_pem(cn, orgs, dns=dns)).decode())
    assert certs.kubelet_client_error(request, usages) == error


@pytest.mark.parametrize(
    ("dns", "ips", "usages", "error"),
    [
        pytest.param(("n1",), ("10.0.0.5",), ["digital signature", "server auth"], None, id="ok"),
        pytest.param(
            (), (), ["digital signature", "server auth"], "DNS or IP subjectAltName is required", id="no-san"
        ),
        pytest.param(
            (),
            ("10.0.0.5",),
            ["digital signature", "client auth"],
            "usages did not match [digital signature key encipherment server auth]",
            id="client-usage",
        ),
    ],
)
def test_kubelet_serving_rules(
    dns: tuple[str, ...], ips: tuple[str, ...], usages: list[str], error: str | None
) -> None:
    request = certs.parse_request(base64.b64encode(request_pem("system:node:n1", dns=dns, ips=ips)).decode())
    assert certs.kubelet_serving_error(request, usages) == error


async def test_create_takes_the_requester_and_subresources_keep_their_parts() -> None:
    core = ApiCore(Store.open_memory(), admission=(certs.RequesterAdmission(),))
    rt = core.registry.by_kind("CertificateSigningRequest")
    assert rt is not None
    body = csr("c", PEM, username="system:admin", groups=["system:masters"])
    user = UserInfo("system:bootstrap:abcdef", groups=("system:bootstrappers", "system:authenticated"))
    made = (await core.create(rt, None, body, WriteOptions(user=user))).obj
    assert made["spec"]["username"] == "system:bootstrap:abcdef"
    assert made["spec"]["groups"] == ["system:bootstrappers", "system:authenticated"]
    assert "status" not in made or not made["status"]
    # the approval subresource changes conditions only; the status one cannot approve
    approve = {
        **made,
        "spec": {**made["spec"], "signerName": "example.com/other"},
        "status": {
            "conditions": [{"type": "Approved", "status": "True", "reason": "R"}],
            "certificate": "Zm9v",
        },
    }
    approved = (await core.update(rt, None, "c", approve, subresource="approval")).obj
    assert approved["spec"] == made["spec"]
    assert [c["type"] for c in approved["status"]["conditions"]] == ["Approved"]
    assert approved["status"]["conditions"][0]["lastUpdateTime"]
    assert "certificate" not in approved["status"]
    deny = {**approved, "status": {"conditions": [{"type": "Denied", "status": "True"}]}}
    kept = (await core.update(rt, None, "c", deny, subresource="status")).obj
    assert [c["type"] for c in kept["status"]["conditions"]] == ["Approved"]
    with pytest.raises(Invalid):
        await core.update(rt, None, "c", {**kept, "status": {"conditions": []}}, subresource="approval")
