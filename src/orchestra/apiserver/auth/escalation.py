"""RBAC escalation prevention: nobody grants rights they do not hold (kube's policybased rbac storage).

Owns: `RbacEscalation(index, authorizer)`, an admission plugin (api/policy/admission.py's seam) the
app gives the API core. On create and update of
  * a Role or ClusterRole: allowed for system:masters, or with the `escalate` verb on the role;
    otherwise every rule must be covered by the rules the writer holds in the role's namespace
    (cluster-wide ones for a ClusterRole), and an aggregationRule needs full authority;
  * a RoleBinding or ClusterRoleBinding: allowed for system:masters, or with the `bind` verb on the
    referenced role (checked in the binding's namespace); otherwise the role must exist (404) and its
    rules be covered by the writer's.
A refusal is kube's 403: `roles.rbac.authorization.k8s.io "x" is forbidden: user "alice"
(groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently
held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`. An update that only touches
ownerReferences or finalizers (the garbage collector's) is not checked. In-process writers (no user)
are trusted, as every other admission plugin treats them.
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

from typing import Any

from orchestra.api.errors import NotFound
from orchestra.api.policy.admission import Attributes, forbidden
from orchestra.api.policy.rbac.rules import Rule, compact_rules, compact_string, covers, go_strings, rules_of
from orchestra.api.user import SYSTEM_MASTERS, UserInfo
from orchestra.apiserver.auth.authz import Authorizer, Decision
from orchestra.apiserver.auth.rbac import rules_for
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.requestinfo import RequestInfo
from orchestra.objects import as_dict

GROUP = "rbac.authorization.k8s.io"
ROLES = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDINGS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}
FULL_AUTHORITY = (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))


def _gc_only(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """rbacregistry.IsOnlyMutatingGCFields: nothing but ownerReferences and finalizers changed."""
    if old is None:
        return False

    def stripped(o: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in (o.get("metadata") or {}).items()
            if k not in ("ownerReferences", "finalizers", "resourceVersion", "managedFields")
        }
        return {**o, "metadata": meta}

    return stripped(obj) == stripped(old)


class RbacEscalation:
    name = "RBACEscalation"

    def __init__(self, index: RbacIndex, authorizer: Authorizer) -> None:
        self.index = index
        self.authorizer = authorizer

    async def admit(self, attributes: Attributes) -> None:
        user = attributes.user
        if user is None or SYSTEM_MASTERS in user.groups:
            return  # trusted in-process path; system:masters (rbacregistry.EscalationAllowed)
        if attributes.kind in ROLES:
            self._check_role(attributes, user)
        elif attributes.kind in BINDINGS:
            self._check_binding(attributes, user)

    def _allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        info = RequestInfo(
            path="",
            verb=verb,
            resource_request=True,
            api_group=GROUP,
            api_version="*",
            namespace=namespace,
            resource=resource,
            name=name,
        )
        return self.authorizer.authorize(user, info)[0] is Decision.ALLOW

    def _check_role(self, a: Attributes, user: UserInfo) -> None:
        resource, namespace = ROLES[a.kind], a.namespace or ""
        if a.operation == "UPDATE" and _gc_only(a.obj, a.old):
            return
        if self._allowed(user, "escalate", resource, namespace, a.name if a.operation == "UPDATE" else ""):
            return
        self._confirm(user, namespace, rules_of(a.obj), f"{resource}.{GROUP}", a.name)
        if a.kind == "ClusterRole" and (a.obj.get("aggregationRule") or (a.old or {}).get("aggregationRule")):
            owned, _ = rules_for(self.index, user, namespace)
            if covers(owned, FULL_AUTHORITY):
                raise forbidden(
                    f"{resource}.{GROUP}",
                    a.name,
                    "must have cluster-admin privileges to use the aggregationRule",
                )

    def _check_binding(self, a: Attributes, user: UserInfo) -> None:
        resource, namespace = BINDINGS[a.kind], a.namespace or ""
        if a.operation == "UPDATE" and _gc_only(a.obj, a.old):
            return
        ref = as_dict(a.obj.get("roleRef"))
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if self._allowed(user, "bind", ROLES.get(kind, ""), namespace, name):
            return
        self.index.sync()
        rules = self.index.role_rules(kind, name, namespace)
        if rules is None:
            plural = ROLES.get(kind, kind.lower())
            raise NotFound(f'{plural}.{GROUP} "{name}" not found', name=name, group=GROUP, kind=plural)
        self._confirm(user, namespace, rules, f"{resource}.{GROUP}", a.name)

    def _confirm(
        self, user: UserInfo, namespace: str, wanted: tuple[Rule, ...], resource: str, name: str
    ) -> None:
        """ConfirmNoEscalation: the writer's rules in `namespace` must cover `wanted`."""
        owned, resolved = rules_for(self.index, user, namespace)
        missing = covers(owned, wanted)
        if not missing:
            return
        described = sorted({compact_string(r) for r in compact_rules(missing)})
        msg = (
            f'user "{user.name}" (groups={go_strings(user.groups)}) is attempting to grant RBAC permissions '
            "not currently held:\n" + "\n".join(described)
        )
        if resolved.errors:
            msg += f"; resolution errors: [{', '.join(resolved.errors)}]"
        raise forbidden(resource, name, msg)
