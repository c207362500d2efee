"""Who made a request: kube's `user.Info` (k8s.io/apiserver/pkg/authentication/user).

Owns: `UserInfo(name, uid, groups, extra)`, the well-known user and group names, and the JSON shape
TokenReview, SelfSubjectReview and the audit log give it (`to_json`). Authenticators
(apiserver/auth/) make it, the request carries it, authorization and admission read it; in-process
components (controllers, node agents through LocalClient) have none: their path is trusted.
Must not import: anything else from orchestra (it sits at the bottom of the api layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ADMIN = "orchestra-admin"  # the state directory's bearer token (kubeadm's is kubernetes-admin)


def _groups(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _extra(value: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]],
           ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), tuple(v)) for k, v in pairs))


@attrs.frozen
class UserInfo:
    """An authenticated (or anonymous) user; `extra` is kept as sorted (key, values) pairs so the
    value is hashable and compares by content."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = attrs.field(default=(), converter=_groups)
    extra: tuple[tuple[str, tuple[str, ...]], ...] = attrs.field(default=(), converter=_extra)

    def with_group(self, group: str) -> UserInfo:
        """The same user with `group` added once (kube's AuthenticatedGroupAdder)."""
        return self if group in self.groups else attrs.evolve(self, groups=(*self.groups, group))

    def to_json(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo: empty fields left out, as Go's omitempty does."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


def service_account_username(namespace: str, name: str) -> str:
    """`system:serviceaccount:<namespace>:<name>` (kube's serviceaccount.MakeUsername)."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, str]:
    return SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a service account's username, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name
