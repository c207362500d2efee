"""kube-apiserver's authorizer chain with RBAC: the privileged group first, then RBAC, as a union.

Owns: `RBACAuthorizer(index)` (kube's RBACAuthorizer: Allow when a rule of a binding that names the
user — or one of the user's groups — allows the request, with the reason `RBAC: allowed by
<binding>`; otherwise NoOpinion, with `RBAC: <errors>` when a binding names a missing role),
`PrivilegedGroups(system:masters)` (always Allow), `Union` (the first Allow or Deny wins; the
NoOpinions' reasons are joined), `rules_for(index, user, namespace)` (what a user holds: escalation
checks and SelfSubjectRulesReview) and `cluster_authorizer(index)`, the chain the API server uses.
Cost per request: a dict lookup when nothing RBAC changed (rbacindex.py's sync), the memoised rules
of (user, namespace), then a set lookup or two per rule until one matches.
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestra.api.policy.rbac.rules import Attributes, Rule
from orchestra.api.user import SYSTEM_MASTERS, UserInfo
from orchestra.apiserver.auth.authz import Authorizer, Decision
from orchestra.apiserver.auth.rbacindex import RbacIndex, Resolved


def _aggregate(errors: Sequence[str]) -> str:
    """utilerrors.NewAggregate(errs).Error(): one message alone, several in brackets."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


class RBACAuthorizer:
    def __init__(self, index: RbacIndex) -> None:
        self.index = index

    def authorize(self, user: UserInfo, info: Attributes) -> tuple[Decision, str]:
        resolved = self.index.resolve(user, info.namespace)
        for source, rules in resolved.sources:
            for rule in rules:
                if rule.allows(info):
                    return Decision.ALLOW, f"RBAC: allowed by {source}"
        return Decision.NO_OPINION, f"RBAC: {_aggregate(resolved.errors)}" if resolved.errors else ""


class PrivilegedGroups:
    """kube's privileged-group authorizer: members of these groups may do anything."""

    def __init__(self, *groups: str) -> None:
        self.groups = frozenset(groups)

    def authorize(self, user: UserInfo, info: Attributes) -> tuple[Decision, str]:
        if self.groups.intersection(user.groups):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class Union:
    def __init__(self, *authorizers: Authorizer) -> None:
        self.authorizers = authorizers

    def authorize(self, user: UserInfo, info: Attributes) -> tuple[Decision, str]:
        reasons = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(user, info)  # type: ignore[arg-type]
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, "\n".join(reasons)


def cluster_authorizer(index: RbacIndex) -> Union:
    """--authorization-mode=RBAC, behind kube's always-on system:masters authorizer."""
    return Union(PrivilegedGroups(SYSTEM_MASTERS), RBACAuthorizer(index))


def rules_for(index: RbacIndex, user: UserInfo, namespace: str) -> tuple[list[Rule], Resolved]:
    """Every rule `user` holds in `namespace` (cluster-wide ones included), and the resolution."""
    resolved = index.resolve(user, namespace)
    return resolved.rules(), resolved
