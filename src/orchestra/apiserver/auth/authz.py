"""Authorization: the seam after authentication (kube's authorizer.Authorizer).

Owns: `Decision`, the `Authorizer` protocol (`authorize(user, info) -> (decision, reason)`, info
being the request's RequestInfo: verb, API group, resource, subresource, namespace, name, path),
`AlwaysAllow` (a server built without an authorizer, as in tests; the app uses rbac.py's) and
`forbidden(user, info, reason)`, kube's 403 for a denied request (`pods "x" is forbidden: User "u"
cannot get resource "pods" in API group "" in the namespace "default"`). RBAC (rbac.py) and a future
Node authorizer are Authorizers, in a union (the first Allow or Deny wins, as kube's does).
Must not import: the api core, the store, reconcilers, node, net.
"""

from __future__ import annotations

import enum
from typing import Protocol

from orchestra.api.errors import Forbidden
from orchestra.api.user import UserInfo
from orchestra.apiserver.requestinfo import RequestInfo


class Decision(enum.Enum):
    DENY = 0
    ALLOW = 1
    NO_OPINION = 2


class Authorizer(Protocol):
    def authorize(self, user: UserInfo, info: RequestInfo) -> tuple[Decision, str]: ...


class AlwaysAllow:
    """kube's --authorization-mode=AlwaysAllow: for servers built without RBAC (tests)."""

    def authorize(self, user: UserInfo, info: RequestInfo) -> tuple[Decision, str]:
        return Decision.ALLOW, ""


def forbidden(user: UserInfo, info: RequestInfo, reason: str = "") -> Forbidden:
    """responsewriters.Forbidden: the message, and the Status details kube gives."""
    if not info.resource_request:
        msg = f'User "{user.name}" cannot {info.verb} path "{info.path}"'
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
        msg = (f'User "{user.name}" cannot {info.verb} resource "{resource}" in API group '
               f'"{info.api_group}" {where}')
    if reason:
        msg = f"{msg}: {reason}"
    if not info.resource:
        return Forbidden(f"forbidden: {msg}")
    qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    target = f'{qualified} "{info.name}"' if info.name else qualified
    return Forbidden(f"{target} is forbidden: {msg}", name=info.name, group=info.api_group,
                     kind=info.resource)
