"""The claims of ServiceAccount tokens and what makes them still good (kube's claims.go, legacy.go).

Owns: `bound_claims` (a TokenRequest token: sub, aud, exp/iat/nbf, jti and the `kubernetes.io`
claims naming the namespace, the service account, the pod / secret / node it is bound to and
`warnafter`), `legacy_claims` (the non-expiring token of a `kubernetes.io/service-account-token`
Secret), and `validate_bound` / `validate_legacy`: a token is refused once the service account is
gone or replaced (uid), or the object it is bound to is (a deleted pod's token stops working), or —
for a legacy token — once its Secret no longer holds it. They return the token's `UserInfo`.
Objects are read through a `Lookup(kind, namespace, name) -> Obj | None`, so the caller chooses
how fresh and how cheap the reads are. Messages are kube's.
Must not import: anything above the api layer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from orchestra.api.serviceaccount import (
    CREDENTIAL_ID_KEY,
    LEEWAY,
    LEGACY_ISSUER,
    NODE_NAME_KEY,
    NODE_UID_KEY,
    POD_NAME_KEY,
    POD_UID_KEY,
)
from orchestra.api.serviceaccount.tokens import TokenInvalid
from orchestra.api.user import (
    UserInfo,
    service_account_groups,
    service_account_username,
    split_service_account_username,
)

Obj = dict[str, Any]
Lookup = Callable[[str, str | None, str], Obj | None]  # (kind, namespace, name) -> object or None
_PRIVATE = "kubernetes.io"
_LEGACY = "kubernetes.io/serviceaccount/"


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ref(obj: Obj) -> dict[str, str]:
    m = _meta(obj)
    return {"name": str(m.get("name") or ""), "uid": str(m.get("uid") or "")}


def bound_claims(sa: Obj, *, audiences: Sequence[str], issuer: str, now: float, expiration_seconds: int,
                 warn_after: int = 0, jti: str = "", pod: Obj | None = None, secret: Obj | None = None,
                 node: Obj | None = None) -> dict[str, Any]:
    """The claims of a TokenRequest token (kube's serviceaccount.Claims); times are whole seconds."""
    now = int(now)
    namespace = str(_meta(sa).get("namespace") or "")
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": _ref(sa)}
    if pod is not None:
        private["pod"] = _ref(pod)
    elif secret is not None:
        private["secret"] = _ref(secret)
    if node is not None:
        private["node"] = {k: v for k, v in _ref(node).items() if v}
    if warn_after:
        private["warnafter"] = now + warn_after
    claims: dict[str, Any] = {
        "aud": list(audiences), "exp": now + expiration_seconds, "iat": now, "iss": issuer,
        _PRIVATE: private, "nbf": now, "sub": service_account_username(namespace, _ref(sa)["name"]),
    }
    if jti:
        claims["jti"] = jti
    return claims


def legacy_claims(sa: Obj, secret: Obj) -> dict[str, Any]:
    """A token Secret's token (kube's LegacyClaims): no expiry, no audience."""
    namespace = str(_meta(sa).get("namespace") or "")
    return {
        "iss": LEGACY_ISSUER,
        _LEGACY + "namespace": namespace,
        _LEGACY + "secret.name": _ref(secret)["name"],
        _LEGACY + "service-account.name": _ref(sa)["name"],
        _LEGACY + "service-account.uid": _ref(sa)["uid"],
        "sub": service_account_username(namespace, _ref(sa)["name"]),
    }


def is_legacy(claims: dict[str, Any]) -> bool:
    return claims.get("iss") == LEGACY_ISSUER


def _deleted_before(obj: Obj, cutoff: float) -> bool:
    stamp = _meta(obj).get("deletionTimestamp")
    if not isinstance(stamp, str):
        return False
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() < cutoff
    except ValueError:  # an unreadable stamp still marks a deletion: kube would not have stored it
        return True


def _claim_ref(private: Obj, key: str) -> dict[str, str] | None:
    ref = private.get(key)
    if not isinstance(ref, dict):
        return None
    return {"name": str(ref.get("name") or ""), "uid": str(ref.get("uid") or "")}


def validate_bound(claims: dict[str, Any], lookup: Lookup, *, now: float) -> UserInfo:
    """kube's validator.Validate: the service account, and the pod / secret the token is bound to,
    must still exist with the uids the token names (deleted more than a minute ago counts as gone)."""
    private = claims.get(_PRIVATE)
    if not isinstance(private, dict):
        raise TokenInvalid("Token could not be validated.")
    namespace = str(private.get("namespace") or "")
    sa_ref = _claim_ref(private, "serviceaccount") or {"name": "", "uid": ""}
    cutoff = now - LEEWAY
    sa = lookup("ServiceAccount", namespace, sa_ref["name"])
    if sa is None:
        raise TokenInvalid(f'serviceaccounts "{sa_ref["name"]}" not found')
    if _deleted_before(sa, cutoff):
        raise TokenInvalid(f"ServiceAccount {namespace}/{sa_ref['name']} has been deleted")
    if _ref(sa)["uid"] != sa_ref["uid"]:
        raise TokenInvalid(f"ServiceAccount UID ({_ref(sa)['uid']}) does not match claim ({sa_ref['uid']})")
    extra: dict[str, list[str]] = {}
    for kind, key in (("Secret", "secret"), ("Pod", "pod")):
        ref = _claim_ref(private, key)
        if ref is None:
            continue
        obj = lookup(kind, namespace, ref["name"])
        if obj is None or _deleted_before(obj, cutoff):
            raise TokenInvalid("Token has been invalidated")
        if _ref(obj)["uid"] != ref["uid"]:
            raise TokenInvalid(f"{kind} UID ({_ref(obj)['uid']}) does not match claim ({ref['uid']})")
        if kind == "Pod":
            extra = {POD_NAME_KEY: [ref["name"]], POD_UID_KEY: [ref["uid"]]}
    node = _claim_ref(private, "node")
    if node is not None and node["name"]:
        if "pod" not in private:  # a token bound to the node itself: the node must still be there
            obj = lookup("Node", None, node["name"])
            if obj is None:
                raise TokenInvalid("Token has been invalidated")
            if _ref(obj)["uid"] != node["uid"]:
                raise TokenInvalid(f"Node UID ({_ref(obj)['uid']}) does not match claim ({node['uid']})")
        extra[NODE_NAME_KEY] = [node["name"]]
        if node["uid"]:
            extra[NODE_UID_KEY] = [node["uid"]]
    if isinstance(claims.get("jti"), str) and claims["jti"]:
        extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
    return _user(namespace, sa_ref["name"], sa_ref["uid"], extra)


def validate_legacy(claims: dict[str, Any], token: str, lookup: Lookup) -> UserInfo:
    """kube's legacyValidator: the claims must be whole, and the Secret must still hold this very token."""
    fields = {}
    for claim, label in (("namespace", "namespace"), ("secret.name", "secretName"),
                         ("service-account.name", "serviceAccountName"),
                         ("service-account.uid", "serviceAccountUID")):
        value = claims.get(_LEGACY + claim)
        if not isinstance(value, str) or not value:
            raise TokenInvalid(f"{label} claim is missing")
        fields[label] = value
    namespace, name = fields["namespace"], fields["serviceAccountName"]
    if split_service_account_username(str(claims.get("sub") or "")) != (namespace, name):
        raise TokenInvalid("sub claim is missing" if not claims.get("sub") else "sub claim is invalid")
    secret = lookup("Secret", namespace, fields["secretName"])
    if secret is None or _meta(secret).get("deletionTimestamp"):
        raise TokenInvalid("Token has been invalidated")
    if _secret_token(secret) != token.encode():
        raise TokenInvalid("Token does not match server's copy")
    sa = lookup("ServiceAccount", namespace, name)
    if sa is None:
        raise TokenInvalid(f'serviceaccounts "{name}" not found')
    if _meta(sa).get("deletionTimestamp"):
        raise TokenInvalid(f"ServiceAccount {namespace}/{name} has been deleted")
    if _ref(sa)["uid"] != fields["serviceAccountUID"]:
        raise TokenInvalid(f"ServiceAccount UID ({_ref(sa)['uid']}) does not match claim "
                           f"({fields['serviceAccountUID']})")
    return _user(namespace, name, fields["serviceAccountUID"], {})


def _secret_token(secret: Obj) -> bytes | None:
    data = secret.get("data")
    value = data.get("token") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):  # not base64: cannot be the token we wrote
        return None


def _user(namespace: str, name: str, uid: str, extra: dict[str, list[str]]) -> UserInfo:
    return UserInfo(service_account_username(namespace, name), uid, service_account_groups(namespace), extra)
