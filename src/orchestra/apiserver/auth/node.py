"""kube's Node authorizer (plugin/pkg/auth/authorizer/node): what a kubelet may do, with kube's reasons.

Owns: `NodeAuthorizer(graph)` (a user `system:node:<name>` in `system:nodes` is node <name>): for a
node's requests, Secrets and ConfigMaps may only be read (get, list, watch of one named object, no
subresource, in a namespace) and PersistentVolumeClaims got, and a ServiceAccount's token created,
when one of the node's pods uses the object (nodegraph.py); Leases only in kube-node-lease, under
the node's own name (create: NodeRestriction checks the name); everything else by kube's static node
rules (the system:node role of api/policy/rbac/bootstrap.py). A refusal is NoOpinion with kube's
reason (so RBAC after it may still allow, as with --authorization-mode=Node,RBAC). Which Node, Lease
or pod a node may write is NodeRestriction's (api/policy/noderestriction.py).
Must not import: reconcilers, node, net.
"""

from __future__ import annotations

from orchestra.api.policy.noderestriction import LEASE_NAMESPACE, node_identity
from orchestra.api.policy.rbac.bootstrap import CLUSTER_ROLES
from orchestra.api.policy.rbac.rules import Attributes, rules_of
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Decision
from orchestra.apiserver.auth.nodegraph import NodeGraph

NODE_RULES = rules_of(next(r for r in CLUSTER_ROLES if r["metadata"]["name"] == "system:node"))
_GRAPH_KINDS = {("", "secrets"): "Secret", ("", "configmaps"): "ConfigMap",
                ("", "persistentvolumeclaims"): "PersistentVolumeClaim",
                ("", "serviceaccounts"): "ServiceAccount"}


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph) -> None:
        self.graph = graph

    def authorize(self, user: UserInfo, info: Attributes) -> tuple[Decision, str]:
        is_node, node = node_identity(user)
        if not is_node:
            return Decision.NO_OPINION, ""
        if not node:
            return Decision.NO_OPINION, f'unknown node for user "{user.name}"'
        if info.resource_request:
            resource = (info.api_group, info.resource)
            if resource in (("", "secrets"), ("", "configmaps")):
                return self._read_namespaced(node, info)
            if resource == ("", "persistentvolumeclaims"):
                return self._get(node, info)
            if resource == ("", "serviceaccounts"):
                return self._create_token(node, info)
            if resource == ("coordination.k8s.io", "leases"):
                return _lease(node, info)
        if any(rule.allows(info) for rule in NODE_RULES):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def _read_namespaced(self, node: str, info: Attributes) -> tuple[Decision, str]:
        if info.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if info.subresource:
            return Decision.NO_OPINION, "cannot read subresource"
        if not info.namespace:
            return Decision.NO_OPINION, "can only read namespaced object of this type"
        return self._related(node, info)

    def _get(self, node: str, info: Attributes) -> tuple[Decision, str]:
        if info.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if info.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        return self._related(node, info)

    def _create_token(self, node: str, info: Attributes) -> tuple[Decision, str]:
        if info.verb != "create" or not info.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if info.subresource != "token":
            return Decision.NO_OPINION, "can only create token subresource of serviceaccount"
        return self._related(node, info)

    def _related(self, node: str, info: Attributes) -> tuple[Decision, str]:
        if not info.name:
            return Decision.NO_OPINION, "No Object name found"
        kind = _GRAPH_KINDS[info.api_group, info.resource]
        if not self.graph.has_path(node, kind, info.namespace, info.name):
            return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"
        return Decision.ALLOW, ""


def _lease(node: str, info: Attributes) -> tuple[Decision, str]:
    if info.verb not in ("get", "create", "update", "patch", "delete"):
        return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
    if info.namespace != LEASE_NAMESPACE:
        return Decision.NO_OPINION, f'can only access leases in the "{LEASE_NAMESPACE}" system namespace'
    if info.verb != "create" and info.name != node:
        return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
    return Decision.ALLOW, ""
