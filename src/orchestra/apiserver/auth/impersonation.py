"""Impersonation: acting as another user (kube's WithImpersonation filter, after authentication).

Owns: `impersonate(requestor, raw_headers, authorizer) -> UserInfo | None` — reads
`Impersonate-User` (a `system:serviceaccount:<ns>:<name>` user is the ServiceAccount), each
`Impersonate-Group`, each `Impersonate-Extra-<key>` value (the key unescaped and lower-cased) and
`Impersonate-Uid`; checks, in that order, that the requestor may `impersonate` each of them
(resources users, serviceaccounts (in their namespace), groups, userextras/<key>, uids — the first
two in the core group, the last two in authentication.k8s.io); a refusal is kube's 403 for that
check (`users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group ""
at the cluster scope`). The user acted as gets the ServiceAccount's groups when it is one and no
groups were asked for, and `system:authenticated` unless `system:(un)authenticated` was asked for
(`system:unauthenticated` for `system:anonymous`). None when the request asks for nobody.
Groups, extras or a uid without a user are refused with 400 (kube answers that with a 500).
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from orchestra.api.errors import BadRequest
from orchestra.api.user import (
    ANONYMOUS,
    AUTHENTICATED,
    UNAUTHENTICATED,
    UserInfo,
    service_account_groups,
    service_account_username,
    split_service_account_username,
)
from orchestra.apiserver.auth.authz import Authorizer, Decision, forbidden
from orchestra.apiserver.requestinfo import RequestInfo

USER, GROUP, UID = b"impersonate-user", b"impersonate-group", b"impersonate-uid"
EXTRA = b"impersonate-extra-"
AUTHENTICATION = "authentication.k8s.io"
RawHeaders = Iterable[tuple[bytes, bytes]]


def wants_impersonation(headers: dict[str, str]) -> bool:
    """Cheap test on the parsed headers: does any header start with `impersonate-`?"""
    return any(key.startswith("impersonate-") for key in headers)


def _requests(raw: RawHeaders) -> tuple[list[RequestInfo], str, list[str], dict[str, list[str]], str]:
    """The impersonation checks, in kube's order, and the user, groups, extras and uid asked for."""
    user, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for key, value in raw:
        name = key.lower()
        if name == USER and not user:
            user = value.decode("latin-1")
        elif name == UID and not uid:
            uid = value.decode("latin-1")
        elif name == GROUP:
            groups.append(value.decode("latin-1"))
        elif name.startswith(EXTRA):
            extra_key = unquote(name[len(EXTRA) :].decode("latin-1"))
            extra.setdefault(extra_key, []).append(value.decode("latin-1"))
    checks = []
    if user:
        account = split_service_account_username(user)
        if account is not None:
            checks.append(_check("serviceaccounts", account[1], namespace=account[0]))
        else:
            checks.append(_check("users", user))
    checks += [_check("groups", g) for g in groups]
    checks += [_check("userextras", v, group=AUTHENTICATION, sub=k) for k, vs in extra.items() for v in vs]
    if uid:
        checks.append(_check("uids", uid, group=AUTHENTICATION))
    return checks, user, groups, extra, uid


def _check(resource: str, name: str, *, namespace: str = "", group: str = "", sub: str = "") -> RequestInfo:
    return RequestInfo(
        path="",
        verb="impersonate",
        resource_request=True,
        api_group=group,
        api_version="v1",
        namespace=namespace,
        resource=resource,
        subresource=sub,
        name=name,
    )


def impersonate(requestor: UserInfo, raw: RawHeaders, authorizer: Authorizer) -> UserInfo | None:
    checks, username, groups, extra, uid = _requests(raw)
    if not checks:
        return None
    if not username:
        raise BadRequest(f"requested {_describe(groups, extra, uid)} without impersonating a user")
    for check in checks:
        decision, reason = authorizer.authorize(requestor, check)
        if decision is not Decision.ALLOW:
            raise forbidden(requestor, check, reason)
    account = split_service_account_username(username)
    if account is not None and not groups:
        groups = list(service_account_groups(account[0]))
        username = service_account_username(*account)
    if username != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(username, uid=uid, groups=groups, extra=extra)


def _describe(groups: list[str], extra: dict[str, list[str]], uid: str) -> str:
    parts = [f"Group {g}" for g in groups] + [f"UserExtra {k}={v}" for k, vs in extra.items() for v in vs]
    return "[" + " ".join(parts + ([f"UID {uid}"] if uid else [])) + "]"
