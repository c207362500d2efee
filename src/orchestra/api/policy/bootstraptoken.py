"""Bootstrap tokens: kube's `bootstrap.kubernetes.io/token` Secrets in kube-system (bootstrapapi).

Owns: the token format (`<id>.<secret>`, id [a-z0-9]{6}, secret [a-z0-9]{16}), the Secret it lives
in (`bootstrap-token-<id>`, keys token-id, token-secret, expiration, usage-bootstrap-*,
auth-extra-groups, description), `check_secret(secret, token_id, token_secret, now)` -> the user and
groups it authenticates or `TokenRefused` saying why (kube's bootstrap token authenticator's rules),
`expired(secret, now)` (the token cleaner's test), `new_token()` and `token_secret(...)` (what
`orchestra token create` writes), and the join token that pins the cluster CA
(`K10<sha256 of the CA certificate DER>::<id>.<secret>`, k3s' secure format).
Must not import: anything above the api layer.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets as random
from typing import Any

import attrs

from orchestra.objects import Obj, format_time, parse_time

SECRET_TYPE = "bootstrap.kubernetes.io/token"
NAMESPACE = "kube-system"
NAME_PREFIX = "bootstrap-token-"
USER_PREFIX = "system:bootstrap:"
GROUP = "system:bootstrappers"
ID_KEY, SECRET_KEY, EXPIRATION_KEY = "token-id", "token-secret", "expiration"
USAGE_AUTHENTICATION, USAGE_SIGNING = "usage-bootstrap-authentication", "usage-bootstrap-signing"
EXTRA_GROUPS_KEY, DESCRIPTION_KEY = "auth-extra-groups", "description"
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
ID_RE = re.compile(r"^[a-z0-9]{6}$")
GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
JOIN_PREFIX = "K10"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class TokenRefused(Exception):
    """The Secret exists but does not authenticate the token; the message says why."""


@attrs.frozen
class BootstrapUser:
    name: str
    groups: tuple[str, ...]


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a bootstrap token, None when `token` is not one."""
    found = TOKEN_RE.match(token)
    return (found.group(1), found.group(2)) if found else None


def secret_name(token_id: str) -> str:
    return NAME_PREFIX + token_id


def data_of(secret: Obj, key: str) -> str:
    """A data key decoded (stringData never reaches the store); "" when absent or not base64."""
    value = (secret.get("data") or {}).get(key)
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""  # not base64 text: the same as missing, as kube's GetData of bad bytes compares unequal


def expiration(secret: Obj) -> dt.datetime | None:
    """The `expiration` time; None when absent. ValueError when present and not RFC 3339."""
    raw = data_of(secret, EXPIRATION_KEY)
    if not raw:
        return None
    when = parse_time(raw)
    if when is None:
        raise ValueError(f"invalid expiration time {raw!r}")
    return when


def expired(secret: Obj, now: dt.datetime) -> bool:
    """kube's HasExpired: an unparsable expiration counts as expired."""
    try:
        when = expiration(secret)
    except ValueError:
        return True
    return when is not None and now >= when


def groups_of(secret: Obj) -> tuple[str, ...]:
    """system:bootstrappers and the auth-extra-groups; ValueError naming a bad group."""
    groups = [GROUP]
    for raw in data_of(secret, EXTRA_GROUPS_KEY).split(","):
        group = raw.strip()
        if not group:
            continue
        if not GROUP_RE.match(group):
            raise ValueError(f"{group!r} is not a valid bootstrap group name")
        if group not in groups:
            groups.append(group)
    return tuple(groups)


def check_secret(secret: Obj, token_id: str, token_secret: str, now: dt.datetime) -> BootstrapUser:
    """The user `<id>.<secret>` authenticates as through this Secret, else TokenRefused."""
    where = f"{NAMESPACE}/{(secret.get('metadata') or {}).get('name', '')}"
    lead = f"bootstrap token secret {where}"
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        raise TokenRefused(f"{lead} is being deleted")
    if secret.get("type") != SECRET_TYPE:
        raise TokenRefused(f"{lead} is of type {secret.get('type')!r}, not {SECRET_TYPE!r}")
    if not hmac.compare_digest(data_of(secret, SECRET_KEY).encode(), token_secret.encode()):
        raise TokenRefused(f"{lead} matching bearer token has invalid value for key {SECRET_KEY}")
    if data_of(secret, ID_KEY) != token_id:
        raise TokenRefused(f"{lead} matching bearer token has invalid value for key {ID_KEY}")
    if expired(secret, now):
        raise TokenRefused(f"bootstrap token {token_id} has expired ({data_of(secret, EXPIRATION_KEY)}); "
                           "create a new one with `orchestra token create`")
    if data_of(secret, USAGE_AUTHENTICATION) != "true":
        raise TokenRefused(f"{lead} matching bearer token is not marked {USAGE_AUTHENTICATION}=true")
    try:
        groups = groups_of(secret)
    except ValueError as exc:
        raise TokenRefused(f"{lead} matching bearer token has invalid value for key "
                           f"{EXTRA_GROUPS_KEY}: {exc}") from None
    return BootstrapUser(USER_PREFIX + token_id, groups)


def new_token() -> tuple[str, str]:
    """A fresh (id, secret) from the token alphabet."""
    pick = lambda n: "".join(random.choice(_ALPHABET) for _ in range(n))  # noqa: E731
    return pick(6), pick(16)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def token_secret(token_id: str, secret: str, *, expires: dt.datetime | None, description: str = "",
                 extra_groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Secret `orchestra token create` (and kubeadm token create) writes."""
    data = {ID_KEY: token_id, SECRET_KEY: secret, USAGE_AUTHENTICATION: "true", USAGE_SIGNING: "true"}
    if expires is not None:
        data[EXPIRATION_KEY] = format_time(expires)
    if description:
        data[DESCRIPTION_KEY] = description
    if extra_groups:
        data[EXTRA_GROUPS_KEY] = ",".join(extra_groups)
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": secret_name(token_id), "namespace": NAMESPACE},
            "data": {k: _b64(v) for k, v in data.items()}}


def ca_hash(ca_der: bytes) -> str:
    return hashlib.sha256(ca_der).hexdigest()


def join_token(ca_der: bytes, token_id: str, secret: str) -> str:
    return f"{JOIN_PREFIX}{ca_hash(ca_der)}::{token_id}.{secret}"


def parse_join_token(value: str) -> tuple[str, str]:
    """(CA sha256 hex, `<id>.<secret>`) of a join token; ValueError saying what is wrong."""
    if not value.startswith(JOIN_PREFIX) or "::" not in value:
        raise ValueError(f"a join token looks like {JOIN_PREFIX}<sha256 of the CA>::<id>.<secret>")
    digest, _, token = value[len(JOIN_PREFIX):].partition("::")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("the CA hash of a join token is 64 lowercase hex digits (sha256)")
    if parse_token(token) is None:
        raise ValueError("the token of a join token is <id>.<secret>: [a-z0-9]{6}.[a-z0-9]{16}")
    return digest, token


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # wall-clock: token expirations are calendar times
