"""ServiceAccount JWTs (api/serviceaccount): signing, the checks a token must pass, and what it names."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from orchestra.api.serviceaccount import ISSUER, LEGACY_ISSUER
from orchestra.api.serviceaccount.claims import bound_claims, legacy_claims, validate_bound, validate_legacy
from orchestra.api.serviceaccount.tokens import TokenInvalid, TokenIssuer, key_id, new_signing_key

NOW = 1_800_000_000.0
SA = {"metadata": {"name": "robot", "namespace": "ns", "uid": "sa-uid"}}
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"}}
SECRET = {"metadata": {"name": "robot-token", "namespace": "ns", "uid": "secret-uid"}}
NODE = {"metadata": {"name": "node-1", "uid": "node-uid"}}


def issuer(now: float = NOW, key: Any = None) -> TokenIssuer:
    return TokenIssuer(key or new_signing_key(), clock=lambda: now)


KEY = new_signing_key()
ISSUER_ = issuer(key=KEY)


def token(
    *, now: float = NOW, seconds: int = 600, audiences: tuple[str, ...] = (ISSUER,), **bound: Any
) -> str:
    claims = bound_claims(
        SA, audiences=audiences, issuer=ISSUER, now=now, expiration_seconds=seconds, jti="j-1", **bound
    )
    return ISSUER_.sign(claims)


def objects(*extra: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = {("ServiceAccount", "robot"): SA}
    for obj in extra:
        kind = {"pod-uid": "Pod", "secret-uid": "Secret", "node-uid": "Node"}.get(
            obj["metadata"]["uid"], "Pod"
        )
        found[(kind, obj["metadata"]["name"])] = obj
    return found


def lookup(found: dict[tuple[str, str], dict[str, Any]]):  # type: ignore[no-untyped-def]
    return lambda kind, _ns, name: found.get((kind, name))


def test_a_token_names_its_account_and_pod_and_carries_kubes_claims() -> None:
    t = token(pod=POD, node=NODE)
    header = jwt.get_unverified_header(t)
    assert header == {"alg": "ES256", "kid": key_id(KEY.public_key()), "typ": "JWT"}
    claims = jwt.decode(t, options={"verify_signature": False})
    assert claims == {
        "aud": [ISSUER],
        "exp": int(NOW) + 600,
        "iat": int(NOW),
        "nbf": int(NOW),
        "iss": ISSUER,
        "jti": "j-1",
        "sub": "system:serviceaccount:ns:robot",
        "kubernetes.io": {
            "namespace": "ns",
            "serviceaccount": {"name": "robot", "uid": "sa-uid"},
            "pod": {"name": "p", "uid": "pod-uid"},
            "node": {"name": "node-1", "uid": "node-uid"},
        },
    }
    verified, audiences = ISSUER_.verifier().verify(t)
    assert audiences == (ISSUER,)
    user = validate_bound(verified, lookup(objects(POD)), now=NOW)
    assert user.name == "system:serviceaccount:ns:robot"
    assert user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns")
    assert dict(user.extra) == {
        "authentication.kubernetes.io/pod-name": ("p",), "authentication.kubernetes.io/pod-uid": ("pod-uid",),
        "authentication.kubernetes.io/node-name": ("node-1",),
        "authentication.kubernetes.io/node-uid": ("node-uid",),
        "authentication.kubernetes.io/credential-id": ("JTI=j-1",),
    }


def _tampered(t: str) -> str:
    head, body, sig = t.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{sig}"


def _unsigned() -> str:
    claims = jwt.decode(token(), options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


BAD = {
    "expired": (lambda: token(now=NOW - 3600), "Token has expired."),
    "not-yet-valid": (lambda: token(now=NOW + 3600), "Token could not be validated."),
    "another-key": (lambda: issuer(key=new_signing_key()).sign(
        bound_claims(SA, audiences=[ISSUER], issuer=ISSUER, now=NOW, expiration_seconds=600)),
                    "token signature is invalid"),
    "tampered": (lambda: _tampered(token()), "token signature is invalid"),
    "alg-none": (_unsigned, "The specified alg value is not allowed"),
    "wrong-audience": (lambda: token(audiences=("https://elsewhere",)),
                       'token audiences ["https://elsewhere"] is invalid for the target audiences '
                       '["https://kubernetes.default.svc.cluster.local"]'),
}


@pytest.mark.parametrize(("make", "message"), BAD.values(), ids=BAD.keys())
def test_bad_tokens_are_refused_with_kubes_reason(make: Any, message: str) -> None:
    with pytest.raises(TokenInvalid) as caught:
        ISSUER_.verifier().verify(make())
    assert str(caught.value) == message


def test_expiry_allows_a_minute_of_clock_skew() -> None:
    t = token(now=NOW - 600 - 59)  # expired 59 s ago
    assert ISSUER_.verifier().verify(t)[1] == (ISSUER,)


@pytest.mark.parametrize("text", ["", "garbage", "a.b", "a.b.c", "Zm9v.YmFy.YmF6"], ids=str)
def test_what_is_not_a_jwt_of_ours_is_not_ours(text: str) -> None:
    assert ISSUER_.verifier().peek(text) is None


def test_another_issuers_jwt_is_not_ours() -> None:
    other = jwt.encode({"iss": "https://accounts.example", "sub": "x"}, new_signing_key(), algorithm="ES256")
    assert ISSUER_.verifier().peek(other) is None


GONE = {
    "account-deleted": (objects(POD), ("ServiceAccount", "robot"), None, 'serviceaccounts "robot" not found'),
    "account-replaced": (
        objects(POD),
        ("ServiceAccount", "robot"),
        {"metadata": {"name": "robot", "uid": "new-uid"}},
        "ServiceAccount UID (new-uid) does not match claim (sa-uid)",
    ),
    "pod-deleted": (objects(POD), ("Pod", "p"), None, "Token has been invalidated"),
    "pod-replaced": (
        objects(POD),
        ("Pod", "p"),
        {"metadata": {"name": "p", "uid": "other"}},
        "Pod UID (other) does not match claim (pod-uid)",
    ),
    "pod-deleting-for-a-while": (
        objects(POD),
        ("Pod", "p"),
        {"metadata": {**POD["metadata"], "deletionTimestamp": "2020-01-01T00:00:00Z"}},
        "Token has been invalidated",
    ),
}


@pytest.mark.parametrize(("found", "key", "replacement", "message"), GONE.values(), ids=GONE.keys())
def test_a_token_dies_with_what_it_names(found: dict[Any, Any], key: tuple[str, str], replacement: Any,
                                         message: str) -> None:
    claims, _ = ISSUER_.verifier().verify(token(pod=POD))
    assert validate_bound(claims, lookup(found), now=NOW).name == "system:serviceaccount:ns:robot"
    changed = dict(found)
    if replacement is None:
        del changed[key]
    else:
        changed[key] = replacement
    with pytest.raises(TokenInvalid) as caught:
        validate_bound(claims, lookup(changed), now=NOW)
    assert str(caught.value) == message


def test_a_pod_deleted_less_than_a_minute_ago_still_counts() -> None:
    claims, _ = ISSUER_.verifier().verify(token(pod=POD))
    deleting = {"metadata": {**POD["metadata"], "deletionTimestamp": "2027-01-15T08:00:00Z"}}  # NOW - 20 s
    assert validate_bound(claims, lookup({**objects(), ("Pod", "p"): deleting}), now=1_800_000_020.0)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_legacy_secret_tokens_live_while_their_secret_holds_them() -> None:
    t = ISSUER_.sign(legacy_claims(SA, SECRET))
    claims, audiences = ISSUER_.verifier().verify(t)
    assert claims["iss"] == LEGACY_ISSUER and audiences == (ISSUER,)
    secret = {**SECRET, "data": {"token": _b64(t)}}
    assert validate_legacy(claims, t, lookup(objects(secret))).name == "system:serviceaccount:ns:robot"
    with pytest.raises(TokenInvalid, match="Token does not match server's copy"):
        validate_legacy(claims, t, lookup(objects({**SECRET, "data": {"token": _b64("another")}})))
    with pytest.raises(TokenInvalid, match="Token has been invalidated"):
        validate_legacy(claims, t, lookup(objects()))
