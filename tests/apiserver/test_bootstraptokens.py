"""Bootstrap tokens: the token format, the Secret rules, the authenticator and the join token."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest

from orchestra.api.policy import bootstraptoken as bt
from orchestra.apiserver.auth.base import AuthenticationError
from orchestra.apiserver.auth.bootstraptokens import BootstrapTokens

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
AUD = ("https://kubernetes.default.svc.cluster.local",)


def _secret(**changes: Any) -> dict[str, Any]:
    secret = bt.token_secret("abcdef", "0123456789abcdef", expires=NOW + dt.timedelta(hours=1),
                             extra_groups=changes.pop("extra_groups", ()))
    for key, value in changes.items():
        if key in ("type",):
            secret[key] = value
        elif value is None:
            secret["data"].pop(key.replace("_", "-"), None)
        else:
            secret["data"][key.replace("_", "-")] = base64.b64encode(value.encode()).decode()
    return secret


@pytest.mark.parametrize(("token", "parsed"), [
    pytest.param("abcdef.0123456789abcdef", ("abcdef", "0123456789abcdef"), id="valid"),
    pytest.param("ABCDEF.0123456789abcdef", None, id="upper-case-id"),
    pytest.param("abcde.0123456789abcdef", None, id="short-id"),
    pytest.param("abcdef.0123456789abcde", None, id="short-secret"),
    pytest.param("abcdef0123456789abcdef", None, id="no-dot"),
    pytest.param("abcdef.0123456789abcdef.x", None, id="trailing"),
    pytest.param("eyJhbGciOi.x.y", None, id="a-jwt"),
])
def test_parse_token(token: str, parsed: tuple[str, str] | None) -> None:
    assert bt.parse_token(token) == parsed


@pytest.mark.parametrize(("secret", "token", "error"), [
    pytest.param(_secret(), "0123456789abcdef", None, id="valid"),
    pytest.param(_secret(), "0123456789abcdeX", "has invalid value for key token-secret", id="wrong-secret"),
    pytest.param(_secret(token_id="zzzzzz"), "0123456789abcdef", "has invalid value for key token-id",
                 id="wrong-id"),
    pytest.param(_secret(type="Opaque"), "0123456789abcdef", "is of type 'Opaque'", id="wrong-type"),
    pytest.param(_secret(expiration="2024-12-31T23:59:59Z"), "0123456789abcdef",
                 "bootstrap token abcdef has expired (2024-12-31T23:59:59Z)", id="expired"),
    pytest.param(_secret(expiration="tomorrow"), "0123456789abcdef", "has expired", id="bad-expiration"),
    pytest.param(_secret(expiration=None), "0123456789abcdef", None, id="never-expires"),
    pytest.param(_secret(usage_bootstrap_authentication="false"), "0123456789abcdef",
                 "not marked usage-bootstrap-authentication=true", id="not-for-authentication"),
    pytest.param(_secret(auth_extra_groups="system:nodes"), "0123456789abcdef",
                 "'system:nodes' is not a valid bootstrap group name", id="bad-extra-group"),
])
def test_check_secret(secret: dict[str, Any], token: str, error: str | None) -> None:
    if error is None:
        user = bt.check_secret(secret, "abcdef", token, NOW)
        assert user == bt.BootstrapUser("system:bootstrap:abcdef", ("system:bootstrappers",))
        return
    with pytest.raises(bt.TokenRefused, match=error.replace("(", r"\(").replace(")", r"\)")):
        bt.check_secret(secret, "abcdef", token, NOW)


def test_extra_groups_join_the_bootstrappers() -> None:
    secret = _secret(extra_groups=("system:bootstrappers:kubeadm:default-node-token",))
    user = bt.check_secret(secret, "abcdef", "0123456789abcdef", NOW)
    assert user.groups == ("system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token")


@pytest.mark.parametrize(("secret", "expired"), [
    pytest.param(_secret(), False, id="future"),
    pytest.param(_secret(expiration=None), False, id="none"),
    pytest.param(_secret(expiration="2025-01-01T00:00:00Z"), True, id="now"),
    pytest.param(_secret(expiration="garbage"), True, id="unparsable"),
])
def test_expired(secret: dict[str, Any], expired: bool) -> None:
    assert bt.expired(secret, NOW) is expired


def _authenticator(secrets: dict[str, dict[str, Any]]) -> BootstrapTokens:
    def lookup(kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        assert (kind, namespace) == ("Secret", "kube-system")
        return secrets.get(name)

    return BootstrapTokens(lookup, AUD, clock=lambda: NOW)


@pytest.mark.parametrize(("token", "secrets", "error"), [
    pytest.param("abcdef.0123456789abcdef", {"bootstrap-token-abcdef": _secret()}, None, id="valid"),
    pytest.param("abcdef.0123456789abcdef", {}, "bootstrap token abcdef is unknown: no Secret "
                 "kube-system/bootstrap-token-abcdef", id="unknown"),
    pytest.param("abcdef.0123456789abcdef", {"bootstrap-token-abcdef": _secret(
        expiration="2024-01-01T00:00:00Z")}, "has expired", id="expired"),
])
def test_authenticator(token: str, secrets: dict[str, Any], error: str | None) -> None:
    authn = _authenticator(secrets)
    if error is None:
        found = authn.authenticate_token(token, AUD)
        assert found is not None
        assert found.user.name == "system:bootstrap:abcdef"
        assert found.user.groups == ("system:bootstrappers",)
        assert found.audiences == AUD
        return
    with pytest.raises(AuthenticationError, match=error):
        authn.authenticate_token(token, AUD)


@pytest.mark.parametrize(("token", "audiences"), [
    pytest.param("not-a-bootstrap-token", AUD, id="other-shape"),
    pytest.param("abcdef.0123456789abcdef", ("other-audience",), id="other-audience"),
])
def test_authenticator_not_mine(token: str, audiences: tuple[str, ...]) -> None:
    assert _authenticator({"bootstrap-token-abcdef": _secret()}).authenticate_token(token, audiences) is None


@pytest.mark.parametrize(("value", "error"), [
    pytest.param("K10" + "a" * 64 + "::abcdef.0123456789abcdef", None, id="valid"),
    pytest.param("abcdef.0123456789abcdef", "a join token looks like", id="bare-token"),
    pytest.param("K10" + "a" * 63 + "::abcdef.0123456789abcdef", "64 lowercase hex", id="short-hash"),
    pytest.param("K10" + "a" * 64 + "::abcdef.012345", "the token of a join token", id="short-secret"),
])
def test_parse_join_token(value: str, error: str | None) -> None:
    if error is None:
        assert bt.parse_join_token(value) == ("a" * 64, "abcdef.0123456789abcdef")
        return
    with pytest.raises(ValueError, match=error):
        bt.parse_join_token(value)


def test_join_token_pins_the_ca_der() -> None:
    token = bt.join_token(b"der-bytes", "abcdef", "0123456789abcdef")
    digest, bare = bt.parse_join_token(token)
    assert bare == "abcdef.0123456789abcdef"
    assert digest == hashlib.sha256(b"der-bytes").hexdigest()


def test_new_token_has_the_format() -> None:
    token_id, secret = bt.new_token()
    assert bt.parse_token(f"{token_id}.{secret}") == (token_id, secret)
