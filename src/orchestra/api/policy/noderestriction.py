"""kube's NodeRestriction admission plugin (plugin/pkg/admission/noderestriction), with kube's messages.

Owns: `node_identity(user)` (kube's NodeIdentifier: `system:node:<name>` in `system:nodes`) and
`NodeRestriction`, which limits what a node's writes may change, the Node authorizer having let them
through: its own Node only (create and update, status included), never its taints, and no labels
under kubernetes.io / k8s.io but kube's kubelet labels; Leases only in kube-node-lease and named
after itself; pods: only mirror pods may be created, and only the status of pods bound to it updated.
Writes by anyone else (and in-process ones) pass untouched.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.api.policy.admission import Attributes, forbidden
from orchestra.api.user import UserInfo
from orchestra.objects import as_dict

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# kube's kubelet labels a node may set on itself (kubeletapis.KubeletLabels and its namespaces)
ALLOWED_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
})
ALLOWED_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def node_identity(user: UserInfo | None) -> tuple[bool, str]:
    """(is a node, its name); the name may be empty (a node kube cannot identify)."""
    if user is None or NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
        return False, ""
    return True, user.name.removeprefix(NODE_PREFIX)


def _forbidden_label(key: str) -> bool:
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if namespace == "node-restriction.kubernetes.io" or namespace.endswith(".node-restriction.kubernetes.io"):
        return True
    if key in ALLOWED_LABELS:
        return False
    if any(namespace == n or namespace.endswith("." + n) for n in ALLOWED_NAMESPACES):
        return False
    return any(namespace == n or namespace.endswith("." + n) for n in ("kubernetes.io", "k8s.io"))


def _modified_labels(new: dict[str, str], old: dict[str, str]) -> list[str]:
    return sorted(k for k in {*new, *old} if new.get(k) != old.get(k))


class NodeRestriction:
    name = "NodeRestriction"

    async def admit(self, a: Attributes) -> None:
        is_node, node = node_identity(a.user)
        if not is_node:
            return
        if not node:
            raise forbidden(_resource(a.kind), a.name, "could not determine node from user")
        if a.kind == "Node":
            self._node(a, node)
        elif a.kind == "Lease":
            _lease(a, node)
        elif a.kind == "Pod":
            _pod(a, node)

    def _node(self, a: Attributes, node: str) -> None:
        if a.name != node:
            raise forbidden("nodes", a.name, f'node "{node}" is not allowed to modify node "{a.name}"')
        labels = {str(k): str(v) for k, v in as_dict(as_dict(a.obj.get("metadata")).get("labels")).items()}
        if a.operation == "CREATE":
            bad = [k for k in _modified_labels(labels, {}) if _forbidden_label(k)]
            if bad:
                raise forbidden("nodes", a.name, f'node "{node}" is not allowed to set the following labels: '
                                f"{', '.join(bad)}")
            return
        old = a.old or {}
        if as_dict(a.obj.get("spec")).get("taints") != as_dict(old.get("spec")).get("taints"):
            raise forbidden("nodes", a.name, f'node "{node}" is not allowed to modify taints')
        before = {str(k): str(v) for k, v in as_dict(as_dict(old.get("metadata")).get("labels")).items()}
        bad = [k for k in _modified_labels(labels, before) if _forbidden_label(k)]
        if bad:
            raise forbidden("nodes", a.name, f"is not allowed to modify labels: {', '.join(bad)}")


def _lease(a: Attributes, node: str) -> None:
    if a.namespace != LEASE_NAMESPACE:
        raise forbidden("leases.coordination.k8s.io", a.name,
                        f'can only access leases in the "{LEASE_NAMESPACE}" system namespace')
    if a.operation == "CREATE" and a.name != node:
        raise forbidden("leases.coordination.k8s.io", a.name,
                        "can only access node lease with the same name as the requesting node")


def _pod(a: Attributes, node: str) -> None:
    if a.operation == "CREATE":
        annotations = as_dict(as_dict(a.obj.get("metadata")).get("annotations"))
        if MIRROR_ANNOTATION not in annotations:
            raise forbidden("pods", a.name, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node '
                            f'"{node}" can only create mirror pods')
        if as_dict(a.obj.get("spec")).get("nodeName") != node:
            raise forbidden("pods", a.name,
                            f'node "{node}" can only create pods with spec.nodeName set to itself')
        return
    if a.subresource == "status":
        if as_dict((a.old or {}).get("spec")).get("nodeName") != node:
            raise forbidden("pods", a.name, f'node "{node}" can only update pod status for pods with '
                            "spec.nodeName set to itself")
        return
    raise forbidden("pods", a.name, f"unexpected operation {a.operation}")


def _resource(kind: str) -> str:
    return {"Node": "nodes", "Lease": "leases.coordination.k8s.io", "Pod": "pods"}.get(kind, kind.lower())
