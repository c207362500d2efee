"""Authentication and authorization in the apiserver (apiserver/auth/, requestinfo.py), without HTTP."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.api.request.core import ApiCore
from orchestra.api.request.stored import Codec
from orchestra.api.serviceaccount import ISSUER, NAME_ANNOTATION, TOKEN_SECRET_TYPE
from orchestra.api.serviceaccount.claims import bound_claims, legacy_claims
from orchestra.api.serviceaccount.tokens import TokenIssuer, new_signing_key
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authn import AdminToken, RequestAuthenticator, attempted, bearer_token
from orchestra.apiserver.auth.authz import forbidden
from orchestra.apiserver.auth.base import AuthenticationError
from orchestra.apiserver.auth.reviews import self_subject_review, token_review
from orchestra.apiserver.auth.serviceaccounts import ServiceAccountTokens, StoreLookup
from orchestra.apiserver.auth.x509 import ClientCertificates
from orchestra.apiserver.requestinfo import RequestInfo, request_info
from orchestra.apiserver.tls import ensure_serving_cert, issue_client_cert
from orchestra.store import Store

NOW = 1_800_000_000.0
SA = {"metadata": {"name": "robot", "namespace": "ns", "uid": "sa-uid"}}
ADMIN_TOKEN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    ensure_serving_cert(state, [])
    return state


def authenticator(
    pki: Path, objects: dict[str, Any] | None = None
) -> tuple[RequestAuthenticator, TokenIssuer]:
    issuer = TokenIssuer(new_signing_key(), clock=lambda: NOW)
    found = {"robot": SA} if objects is None else objects
    accounts = ServiceAccountTokens(
        issuer.verifier(), lambda kind, ns, name: found.get(name), clock=lambda: NOW
    )
    ca = x509.load_pem_x509_certificate((pki / "pki" / "ca.crt").read_bytes())
    return RequestAuthenticator(
        [AdminToken(ADMIN_TOKEN, issuer.audiences), accounts],
        certificates=ClientCertificates(ca),
        api_audiences=issuer.audiences,
    ), issuer


def sa_token(issuer: TokenIssuer, **kw: Any) -> str:
    args: dict[str, Any] = {
        "audiences": [ISSUER],
        "issuer": ISSUER,
        "now": NOW,
        "expiration_seconds": 600,
        **kw,
    }
    return issuer.sign(bound_claims(SA, **args))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def pem_of(pki: Path, user: str, groups: list[str]) -> str:
    cert, _key = issue_client_cert(pki, user, groups)
    return cert.decode()


def test_the_three_kinds_of_users(pki: Path) -> None:
    auth, issuer = authenticator(pki)
    admin = auth.authenticate(bearer(ADMIN_TOKEN), None)
    assert admin == UserInfo("orchestra-admin", groups=("system:masters", "system:authenticated"))
    jane = auth.authenticate({}, {"client_cert_chain": [pem_of(pki, "jane", ["dev", "ops"])]})
    assert jane == UserInfo("jane", groups=("dev", "ops", "system:authenticated"))
    robot = auth.authenticate(bearer(sa_token(issuer)), None)
    assert robot.name == "system:serviceaccount:ns:robot"
    assert robot.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")


def test_a_certificate_wins_over_a_token_and_a_bad_one_leaves_the_token(pki: Path, tmp_path: Path) -> None:
    auth, _ = authenticator(pki)
    jane = {"client_cert_chain": [pem_of(pki, "jane", [])]}
    assert auth.authenticate(bearer(ADMIN_TOKEN), jane).name == "jane"
    ensure_serving_cert(tmp_path, [])  # another cluster's CA
    foreign = {"client_cert_chain": [pem_of(tmp_path, "mallory", ["system:masters"])]}
    assert auth.authenticate(bearer(ADMIN_TOKEN), foreign).name == "orchestra-admin"


def _cert(pki: Path, names: list[x509.NameAttribute], *, until: dt.datetime) -> str:
    """A certificate of our CA with exactly these subject names, valid from 2020 to `until`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from orchestra.apiserver.tls import load_ca

    ca, ca_key = load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(until)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _expired_cert(pki: Path) -> str:
    return _cert(
        pki, [x509.NameAttribute(NameOID.COMMON_NAME, "old")], until=dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    )


def _foreign_cert(tmp: Path) -> str:
    ensure_serving_cert(tmp, [])
    return pem_of(tmp, "mallory", ["system:masters"])


def _server_cert(pki: Path) -> str:
    return (pki / "pki" / "apiserver.crt").read_text()  # our CA's, but for serving only


REFUSED: dict[str, tuple[Any, str]] = {
    "no-credentials": (lambda pki, issuer, tmp: ({}, None), "no credentials provided"),
    "unknown-token": (lambda pki, issuer, tmp: (bearer("nope"), None), "invalid bearer token"),
    "basic-auth": (
        lambda pki, issuer, tmp: ({"authorization": "Basic YTpi"}, None),
        "no credentials provided",
    ),
    "empty-bearer": (
        lambda pki, issuer, tmp: ({"authorization": "Bearer "}, None),
        "no credentials provided",
    ),
    "expired-token": (
        lambda pki, issuer, tmp: (bearer(sa_token(issuer, now=NOW - 7200)), None),
        "invalid bearer token, Token has expired.",
    ),
    "wrong-audience": (
        lambda pki, issuer, tmp: (bearer(sa_token(issuer, audiences=["vault"])), None),
        'invalid bearer token, token audiences ["vault"] is invalid for the target audiences '
        '["https://kubernetes.default.svc.cluster.local"]',
    ),
    "other-signer": (
        lambda pki, issuer, tmp: (bearer(sa_token(TokenIssuer(new_signing_key(), clock=lambda: NOW))), None),
        "invalid bearer token, token signature is invalid",
    ),
    "foreign-certificate": (
        lambda pki, issuer, tmp: ({}, {"client_cert_chain": [_foreign_cert(tmp)]}),
        "x509: certificate signed by unknown authority",
    ),
    "expired-certificate": (
        lambda pki, issuer, tmp: ({}, {"client_cert_chain": [_expired_cert(pki)]}),
        "x509: certificate has expired or is not yet valid",
    ),
    "serving-certificate": (
        lambda pki, issuer, tmp: ({}, {"client_cert_chain": [_server_cert(pki)]}),
        "x509: certificate specifies an incompatible key usage",
    ),
    "malformed-certificate": (
        lambda pki, issuer, tmp: ({}, {"client_cert_chain": ["-----BEGIN junk"]}),
        "x509: malformed certificate",
    ),
}


@pytest.mark.parametrize(("make", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_credentials(pki: Path, tmp_path: Path, make: Any, reason: str) -> None:
    auth, issuer = authenticator(pki)
    headers, tls = make(pki, issuer, tmp_path)
    with pytest.raises(AuthenticationError) as caught:
        auth.authenticate(headers, tls)
    assert reason in str(caught.value)


def test_a_service_account_token_dies_with_its_account(pki: Path) -> None:
    found = {"robot": SA}
    auth, issuer = authenticator(pki, found)
    token = sa_token(issuer)
    assert auth.authenticate(bearer(token), None).name == "system:serviceaccount:ns:robot"
    del found["robot"]
    with pytest.raises(AuthenticationError, match='serviceaccounts "robot" not found'):
        auth.authenticate(bearer(token), None)  # the signature check is cached; the lookup is not


async def test_a_token_secret_encrypted_at_rest_still_authenticates() -> None:
    """A legacy token Secret is encrypted in the store like every Secret; the authenticator reads it
    (its token must still be the Secret's) through the core's codec."""
    store = Store.open_memory()
    core = ApiCore(store, codec=Codec(encryption.transformers(encryption.new_config(), DEFAULT_REGISTRY)))
    ns_rt, sa_rt, secret_rt = (core.registry.by_kind(k) for k in ("Namespace", "ServiceAccount", "Secret"))
    assert ns_rt and sa_rt and secret_rt
    await core.create(ns_rt, None, {"metadata": {"name": "ns"}})
    account = (await core.create(sa_rt, "ns", {"metadata": {"name": "robot"}})).obj
    issuer = TokenIssuer(new_signing_key())
    secret: dict[str, Any] = {"metadata": {"name": "robot-token", "annotations": {NAME_ANNOTATION: "robot"}},
                              "type": TOKEN_SECRET_TYPE}
    token = issuer.sign(legacy_claims(account, secret))
    secret["data"] = {"token": base64.b64encode(token.encode()).decode()}
    await core.create(secret_rt, "ns", secret)
    kv = store.get(secret_rt.key("ns", "robot-token"))
    assert kv is not None
    assert token.encode() not in kv.value and secret["data"]["token"].encode() not in kv.value
    accounts = ServiceAccountTokens(issuer.verifier(), StoreLookup(core))
    found = accounts.authenticate_token(token, issuer.audiences)
    assert found is not None and found.user.name == "system:serviceaccount:ns:robot"
    store.close()


def test_a_certificate_without_a_common_name_is_nobody(pki: Path) -> None:
    auth, _ = authenticator(pki)
    with pytest.raises(AuthenticationError, match="no credentials provided"):
        nameless = _cert(pki, [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dev")],
                         until=dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        auth.authenticate({}, {"client_cert_chain": [nameless]})


@pytest.mark.parametrize(("header", "token"), [("Bearer abc", "abc"), ("bearer abc", "abc"),
                                               ("BEARER  abc", None), ("Bearer", None), ("Basic abc", None),
                                               ("", None)])
def test_bearer_tokens_are_read_as_kube_reads_them(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("headers", "tls", "message"),
    [
        ({}, None, "Authentication failed, no credentials provided"),
        (bearer("x"), None, "Authentication failed, attempted: bearer"),
        (bearer("x"), {"client_cert_chain": ["pem"]}, "Authentication failed, attempted: bearer, x509"),
    ],
)
def test_the_audit_message_of_a_failed_authentication(
    headers: dict[str, str], tls: Any, message: str
) -> None:
    assert attempted(headers, tls) == message


def test_token_review(pki: Path) -> None:
    auth, issuer = authenticator(pki)
    good = token_review(auth, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                               "spec": {"token": sa_token(issuer)}})
    assert good["status"]["authenticated"] is True
    assert good["status"]["user"]["username"] == "system:serviceaccount:ns:robot"
    assert "system:authenticated" in good["status"]["user"]["groups"]
    assert good["status"]["audiences"] == [ISSUER]
    vault = token_review(
        auth, {"spec": {"token": sa_token(issuer, audiences=["vault"]), "audiences": ["vault"]}}
    )
    assert vault["status"]["authenticated"] is True and vault["status"]["audiences"] == ["vault"]
    bad = token_review(auth, {"spec": {"token": "nope"}})
    assert bad["status"] == {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    admin_elsewhere = token_review(auth, {"spec": {"token": ADMIN_TOKEN, "audiences": ["vault"]}})
    assert admin_elsewhere["status"]["authenticated"] is False


def test_token_review_needs_a_token() -> None:
    from orchestra.api.errors import BadRequest

    with pytest.raises(BadRequest, match=r"token is required for TokenReview in authentication\.k8s\.io"):
        token_review(RequestAuthenticator([]), {"spec": {}})


def test_self_subject_review_is_the_requester() -> None:
    user = UserInfo("jane", groups=("dev", "system:authenticated"), extra={"k": ["v"]})
    review = self_subject_review(user, None)
    assert review["kind"] == "SelfSubjectReview" and review["apiVersion"] == "authentication.k8s.io/v1"
    assert review["status"] == {"userInfo": {"username": "jane", "groups": ["dev", "system:authenticated"],
                                             "extra": {"k": ["v"]}}}
    assert review["metadata"]["creationTimestamp"]


INFOS = {
    "list": (
        "GET",
        "/api/v1/namespaces/ns/pods",
        {},
        RequestInfo("/api/v1/namespaces/ns/pods", "list", True, "", "v1", "ns", "pods"),
    ),
    "watch": (
        "GET",
        "/apis/apps/v1/deployments",
        {"watch": ["true"]},
        RequestInfo("/apis/apps/v1/deployments", "watch", True, "apps", "v1", "", "deployments"),
    ),
    "get-by-selector": (
        "GET",
        "/api/v1/namespaces/ns/pods",
        {"fieldSelector": ["metadata.name=web"]},
        RequestInfo("/api/v1/namespaces/ns/pods", "list", True, "", "v1", "ns", "pods", "", "web"),
    ),
    "exec": (
        "POST",
        "/api/v1/namespaces/ns/pods/web/exec",
        {},
        RequestInfo(
            "/api/v1/namespaces/ns/pods/web/exec", "create", True, "", "v1", "ns", "pods", "exec", "web"
        ),
    ),
    "token": (
        "POST",
        "/api/v1/namespaces/ns/serviceaccounts/robot/token",
        {},
        RequestInfo(
            "/api/v1/namespaces/ns/serviceaccounts/robot/token",
            "create",
            True,
            "",
            "v1",
            "ns",
            "serviceaccounts",
            "token",
            "robot",
        ),
    ),
    "namespace-itself": (
        "DELETE",
        "/api/v1/namespaces/ns",
        {},
        RequestInfo("/api/v1/namespaces/ns", "delete", True, "", "v1", "ns", "namespaces", "", "ns"),
    ),
    "namespace-status": (
        "PUT",
        "/api/v1/namespaces/ns/status",
        {},
        RequestInfo(
            "/api/v1/namespaces/ns/status", "update", True, "", "v1", "ns", "namespaces", "status", "ns"
        ),
    ),
    "deletecollection": (
        "DELETE",
        "/api/v1/namespaces/ns/configmaps",
        {},
        RequestInfo(
            "/api/v1/namespaces/ns/configmaps", "deletecollection", True, "", "v1", "ns", "configmaps"
        ),
    ),
    "discovery": ("GET", "/apis/apps/v1", {}, RequestInfo("/apis/apps/v1", "get")),
    "version": ("GET", "/version", {}, RequestInfo("/version", "get")),
    "healthz": ("HEAD", "/healthz", {}, RequestInfo("/healthz", "head")),
}


@pytest.mark.parametrize(("method", "path", "query", "want"), INFOS.values(), ids=INFOS.keys())
def test_request_info(method: str, path: str, query: dict[str, list[str]], want: RequestInfo) -> None:
    assert request_info(method, path, query) == want


FORBIDDEN = {
    "named": (
        RequestInfo("/p", "get", True, "", "v1", "default", "pods", "", "web"),
        'pods "web" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace '
        '"default"',
    ),
    "collection": (
        RequestInfo("/p", "list", True, "apps", "v1", "", "deployments"),
        'deployments.apps is forbidden: User "jane" cannot list resource "deployments" in API group '
        '"apps" at the cluster scope',
    ),
    "subresource": (
        RequestInfo("/p", "create", True, "", "v1", "ns", "pods", "exec", "web"),
        'pods "web" is forbidden: User "jane" cannot create resource "pods/exec" in API group "" in '
        'the namespace "ns"',
    ),
    "non-resource": (RequestInfo("/metrics", "get"), 'forbidden: User "jane" cannot get path "/metrics"'),
}


@pytest.mark.parametrize(("info", "message"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_kubes_forbidden_message(info: RequestInfo, message: str) -> None:
    err = forbidden(UserInfo("jane"), info)
    assert err.code == 403 and err.message == message
