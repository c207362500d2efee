"""The bootstrap RBAC policy kube-apiserver 1.32 creates at start (its rbac/bootstrap-roles post-start hook).

Owns: `CLUSTER_ROLES` and `CLUSTER_ROLE_BINDINGS`, the objects of kube's bootstrappolicy (its
testdata/cluster-roles.yaml and cluster-role-bindings.yaml): the user-facing roles cluster-admin,
admin, edit and view (the last three aggregated from the `system:aggregate-to-*` roles by their
labels), system:basic-user, system:discovery, system:public-info-viewer, system:monitoring,
system:service-account-issuer-discovery, system:auth-delegator, and the component roles
(kube-scheduler, kube-controller-manager, node, node-proxier, kube-dns, volume-scheduler, ...) for
clients that identify as those components over HTTP. Every object carries kube's label
`kubernetes.io/bootstrapping: rbac-defaults` and the annotation
`rbac.authorization.kubernetes.io/autoupdate: "true"` (reconcile.py keeps such objects current).
The per-controller roles (`system:controller:*`) are left out: orchestra's controllers run in
process, on the trusted path, and never present an identity.
Orchestra's own additions (named `orchestra:*`) are those of kubeadm's join and of a node's network:
in kube, kube-proxy and CoreDNS run with their own identities (`system:kube-proxy`, the kube-dns
ServiceAccount); a node of `orchestra join` runs its service proxy, cluster DNS and NetworkPolicy
enforcer itself, as `system:node:<name>`, so `system:nodes` is bound to `system:node-proxier` and to
`orchestra:node-network` (what DNS and the enforcer read beyond that and the Node authorizer's rules).
`NAMESPACED_ROLES` / `NAMESPACED_ROLE_BINDINGS` (kube's NamespaceRoles): the Role that lets joining
and joined nodes read the `kube-system/orchestra-cluster` ConfigMap (`CLUSTER_SETTINGS`), kubeadm's
`kubeadm:nodes-kubeadm-config` pattern.
Must not import: anything (pure data).
"""

from __future__ import annotations

from typing import Any

RBAC_V1 = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
EVENTS = ("", "events.k8s.io")


def r(
    verbs: tuple[str, ...] | str, groups: tuple[str, ...] | str, *resources: str, names: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One resource rule (the field order kube stores)."""
    rule: dict[str, Any] = {"apiGroups": [groups] if isinstance(groups, str) else list(groups)}
    if names:
        rule["resourceNames"] = list(names)
    rule["resources"] = list(resources)
    rule["verbs"] = [verbs] if isinstance(verbs, str) else list(verbs)
    return rule


def urls(*paths: str, verbs: tuple[str, ...] = ("get",)) -> dict[str, Any]:
    return {"nonResourceURLs": list(paths), "verbs": list(verbs)}


def _role(
    name: str,
    rules: list[dict[str, Any]] | None,
    *,
    labels: dict[str, str] | None = None,
    aggregate: str = "",
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "annotations": {AUTOUPDATE: "true"},
            "labels": {**BOOTSTRAPPING, **(labels or {})},
        },
    }
    if aggregate:
        selector = {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{aggregate}": "true"}}
        role["aggregationRule"] = {"clusterRoleSelectors": [selector]}
    if rules is not None:
        role["rules"] = rules
    return role


def _to(role: str) -> dict[str, str]:
    return {f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"}


_VIEW_RULES = [
    r(
        READ,
        "",
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "serviceaccounts",
        "services",
        "services/status",
    ),
    r(
        READ,
        "",
        "bindings",
        "events",
        "limitranges",
        "namespaces/status",
        "pods/log",
        "pods/status",
        "replicationcontrollers/status",
        "resourcequotas",
        "resourcequotas/status",
    ),
    r(READ, "", "namespaces"),
    r(READ, "discovery.k8s.io", "endpointslices"),
    r(
        READ,
        "apps",
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ),
    r(READ, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
    r(READ, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
    r(
        READ,
        "extensions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "ingresses",
        "ingresses/status",
        "networkpolicies",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "replicationcontrollers/scale",
    ),
    r(READ, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
    r(READ, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
]

_EDIT_RULES = [
    r(READ, "", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
    r("impersonate", "", "serviceaccounts"),
    r(WRITE, "", "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
    r("create", "", "pods/eviction"),
    r(
        WRITE,
        "",
        "configmaps",
        "events",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "secrets",
        "serviceaccounts",
        "services",
        "services/proxy",
    ),
    r("create", "", "serviceaccounts/token"),
    r(
        WRITE,
        "apps",
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ),
    r(WRITE, "autoscaling", "horizontalpodautoscalers"),
    r(WRITE, "batch", "cronjobs", "jobs"),
    r(
        WRITE,
        "extensions",
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "ingresses",
        "networkpolicies",
        "replicasets",
        "replicasets/scale",
        "replicationcontrollers/scale",
    ),
    r(WRITE, "policy", "poddisruptionbudgets"),
    r(WRITE, "networking.k8s.io", "ingresses", "networkpolicies"),
    r(READ_WRITE, "coordination.k8s.io", "leases"),
]

_SCHEDULER_RULES = [
    r(("create", "patch", "update"), EVENTS, "events"),
    r("create", "coordination.k8s.io", "leases"),
    r(("get", "update"), "coordination.k8s.io", "leases", names=("kube-scheduler",)),
    r(READ, "", "nodes"),
    r(("delete", "get", "list", "watch"), "", "pods"),
    r("create", "", "bindings", "pods/binding"),
    r(("patch", "update"), "", "pods/status"),
    r(READ, "", "replicationcontrollers", "services"),
    r(READ, ("apps", "extensions"), "replicasets"),
    r(READ, "apps", "statefulsets"),
    r(READ, "policy", "poddisruptionbudgets"),
    r(READ, "", "persistentvolumeclaims", "persistentvolumes"),
    r("create", "authentication.k8s.io", "tokenreviews"),
    r("create", "authorization.k8s.io", "subjectaccessreviews"),
    r(READ, "storage.k8s.io", "csinodes"),
    r(READ, "", "namespaces"),
    r(READ, "storage.k8s.io", "csidrivers"),
    r(READ, "storage.k8s.io", "csistoragecapacities"),
]

_CONTROLLER_MANAGER_RULES = [
    r(("create", "patch", "update"), EVENTS, "events"),
    r("create", "coordination.k8s.io", "leases"),
    r(("get", "update"), "coordination.k8s.io", "leases", names=("kube-controller-manager",)),
    r("create", "", "secrets", "serviceaccounts"),
    r("delete", "", "secrets"),
    r("get", "", "configmaps", "namespaces", "secrets", "serviceaccounts"),
    r("update", "", "secrets", "serviceaccounts"),
    r("create", "authentication.k8s.io", "tokenreviews"),
    r("create", "authorization.k8s.io", "subjectaccessreviews"),
    r(("list", "watch"), "*", "*"),
    r("create", "", "serviceaccounts/token"),
]

_NODE_RULES = [
    r("create", "authentication.k8s.io", "tokenreviews"),
    r("create", "authorization.k8s.io", "localsubjectaccessreviews", "subjectaccessreviews"),
    r(READ, "", "services"),
    r(("create", "get", "list", "watch"), "", "nodes"),
    r(("patch", "update"), "", "nodes/status"),
    r(("patch", "update"), "", "nodes"),
    r(("create", "patch", "update"), "", "events"),
    r(READ, "", "pods"),
    r(("create", "delete"), "", "pods"),
    r(("patch", "update"), "", "pods/status"),
    r("create", "", "pods/eviction"),
    r(READ, "", "configmaps", "secrets"),
    r("get", "", "persistentvolumeclaims", "persistentvolumes"),
    r("get", "", "endpoints"),
    r(("create", "get", "list", "watch"), "certificates.k8s.io", "certificatesigningrequests"),
    r(("create", "delete", "get", "patch", "update"), "coordination.k8s.io", "leases"),
    r("get", "storage.k8s.io", "volumeattachments"),
    r("create", "", "serviceaccounts/token"),
    r(("get", "patch", "update"), "", "persistentvolumeclaims/status"),
    r(READ, "storage.k8s.io", "csidrivers"),
    r(("create", "delete", "get", "patch", "update"), "storage.k8s.io", "csinodes"),
    r(READ, "node.k8s.io", "runtimeclasses"),
]


def _approver(signer: str) -> dict[str, Any]:
    return _role(
        f"system:certificates.k8s.io:{signer.removeprefix('kubernetes.io/')}-approver",
        [r("approve", "certificates.k8s.io", "signers", names=(signer,))],
    )


CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    _role("admin", None, aggregate="admin"),
    _role("cluster-admin", [r("*", "*", "*"), urls("*", verbs=("*",))]),
    _role("edit", None, labels=_to("admin"), aggregate="edit"),
    _role(
        "system:aggregate-to-admin",
        [
            r("create", "authorization.k8s.io", "localsubjectaccessreviews"),
            r(READ_WRITE, "rbac.authorization.k8s.io", "rolebindings", "roles"),
        ],
        labels=_to("admin"),
    ),
    _role("system:aggregate-to-edit", _EDIT_RULES, labels=_to("edit")),
    _role("system:aggregate-to-view", _VIEW_RULES, labels=_to("view")),
    _role(
        "system:auth-delegator",
        [
            r("create", "authentication.k8s.io", "tokenreviews"),
            r("create", "authorization.k8s.io", "subjectaccessreviews"),
        ],
    ),
    _role(
        "system:basic-user",
        [
            r("create", "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
            r("create", "authentication.k8s.io", "selfsubjectreviews"),
        ],
    ),
    _role(
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        [r("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient")],
    ),
    _role(
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        [r("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient")],
    ),
    _approver("kubernetes.io/kube-apiserver-client"),
    _approver("kubernetes.io/kube-apiserver-client-kubelet"),
    _approver("kubernetes.io/kubelet-serving"),
    _approver("kubernetes.io/legacy-unknown"),
    _role(
        "system:discovery",
        [
            urls(
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            )
        ],
    ),
    _role(
        "system:heapster",
        [r(READ, "", "events", "namespaces", "nodes", "pods"), r(READ, "extensions", "deployments")],
    ),
    _role("system:kube-aggregator", [r(READ, "", "endpoints", "services")]),
    _role("system:kube-controller-manager", _CONTROLLER_MANAGER_RULES),
    _role("system:kube-dns", [r(("list", "watch"), "", "endpoints", "services")]),
    _role("system:kube-scheduler", _SCHEDULER_RULES),
    _role(
        "system:kubelet-api-admin",
        [
            r(READ, "", "nodes"),
            r("proxy", "", "nodes"),
            r("*", "", "nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"),
        ],
    ),
    _role(
        "system:monitoring",
        [
            urls(
                "/healthz",
                "/healthz/*",
                "/livez",
                "/livez/*",
                "/metrics",
                "/metrics/slis",
                "/readyz",
                "/readyz/*",
            )
        ],
    ),
    _role("system:node", _NODE_RULES),
    _role(
        "system:node-bootstrapper",
        [r(("create", "get", "list", "watch"), "certificates.k8s.io", "certificatesigningrequests")],
    ),
    # kubeadm:get-nodes: a joining node checks its name is not held by another live node
    _role("orchestra:get-nodes", [r("get", "", "nodes")]),
    # a joined node's NetworkPolicy enforcer (net/netpol) watches namespaces and policies; its pods (all
    # of them: policies select peers anywhere) the Node authorizer allows already, and what its proxy
    # and cluster DNS watch (Services, EndpointSlices) system:node-proxier does
    _role("orchestra:node-network", [r(("list", "watch"), "", "namespaces"),
                                     r(("list", "watch"), "networking.k8s.io", "networkpolicies")]),
    _role(
        "system:node-problem-detector",
        [
            r("get", "", "nodes"),
            r("patch", "", "nodes/status"),
            r(("create", "patch", "update"), EVENTS, "events"),
        ],
    ),
    _role(
        "system:node-proxier",
        [
            r(("list", "watch"), "", "endpoints", "services"),
            r(READ, "", "nodes"),
            r(("create", "patch", "update"), EVENTS, "events"),
            r(("list", "watch"), "discovery.k8s.io", "endpointslices"),
        ],
    ),
    _role(
        "system:persistent-volume-provisioner",
        [
            r(("create", "delete", "get", "list", "watch"), "", "persistentvolumes"),
            r(("get", "list", "update", "watch"), "", "persistentvolumeclaims"),
            r(READ, "storage.k8s.io", "storageclasses"),
            r("watch", "", "events"),
            r(("create", "patch", "update"), EVENTS, "events"),
        ],
    ),
    _role("system:public-info-viewer", [urls("/healthz", "/livez", "/readyz", "/version", "/version/")]),
    _role(
        "system:service-account-issuer-discovery",
        [urls("/.well-known/openid-configuration", "/openid/v1/jwks")],
    ),
    _role(
        "system:volume-scheduler",
        [
            r(("get", "list", "patch", "update", "watch"), "", "persistentvolumes"),
            r(READ, "storage.k8s.io", "storageclasses"),
            r(("get", "list", "patch", "update", "watch"), "", "persistentvolumeclaims"),
        ],
    ),
    _role("view", None, labels=_to("edit"), aggregate="view"),
)


def _binding(name: str, *subjects: tuple[str, str], role: str = "") -> dict[str, Any]:
    binding: dict[str, Any] = {
        "apiVersion": RBAC_V1,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}, "labels": dict(BOOTSTRAPPING)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role or name},
    }
    if subjects:
        binding["subjects"] = [_subject(kind, name) for kind, name in subjects]
    return binding


def _subject(kind: str, name: str) -> dict[str, str]:
    if kind == "ServiceAccount":
        namespace, _, account = name.partition("/")
        return {"kind": kind, "name": account, "namespace": namespace}
    return {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}


CLUSTER_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    _binding("cluster-admin", ("Group", "system:masters")),
    _binding("system:basic-user", ("Group", "system:authenticated")),
    _binding("system:discovery", ("Group", "system:authenticated")),
    _binding("system:kube-controller-manager", ("User", "system:kube-controller-manager")),
    _binding("system:kube-dns", ("ServiceAccount", "kube-system/kube-dns")),
    _binding("system:kube-scheduler", ("User", "system:kube-scheduler")),
    _binding("system:monitoring", ("Group", "system:monitoring")),
    _binding("system:node"),
    _binding("system:node-proxier", ("User", "system:kube-proxy")),
    _binding(
        "system:public-info-viewer", ("Group", "system:authenticated"), ("Group", "system:unauthenticated")
    ),
    _binding("system:service-account-issuer-discovery", ("Group", "system:serviceaccounts")),
    _binding("system:volume-scheduler", ("User", "system:kube-scheduler")),
    # kubeadm's join bindings (orchestra join): bootstrap tokens may create CSRs and are auto-approved,
    # and nodes' renewals of their own client certificates too
    _binding("orchestra:kubelet-bootstrap", ("Group", "system:bootstrappers"),
             role="system:node-bootstrapper"),
    _binding("orchestra:get-nodes", ("Group", "system:bootstrappers")),
    _binding("orchestra:node-autoapprove-bootstrap", ("Group", "system:bootstrappers"),
             role="system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
    _binding("orchestra:node-autoapprove-certificate-rotation", ("Group", "system:nodes"),
             role="system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
    # a joined node runs kube-proxy's and CoreDNS's roles itself, as the node (see the docstring)
    _binding("orchestra:node-proxier", ("Group", "system:nodes"), role="system:node-proxier"),
    _binding("orchestra:node-network", ("Group", "system:nodes")),
)

CLUSTER_SETTINGS = "orchestra-cluster"  # kube-system's ConfigMap of what a node must know of the cluster
SETTINGS_NAMESPACE = "kube-system"
_SETTINGS_READER = "orchestra:nodes-cluster-settings"


def _namespaced(namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A ClusterRole or ClusterRoleBinding made a Role or RoleBinding of `namespace` (a binding's roleRef
    then names a Role, as kube's namespaced bootstrap bindings do)."""
    kind = obj["kind"].removeprefix("Cluster")
    out = {**obj, "kind": kind, "metadata": {**obj["metadata"], "namespace": namespace}}
    if "roleRef" in out:
        out["roleRef"] = {**out["roleRef"], "kind": "Role"}
    return out


# kubeadm's kubeadm:nodes-kubeadm-config: bootstrap tokens and nodes read the cluster's settings (a
# joined node starts its network from them), and no other ConfigMap of kube-system
NAMESPACED_ROLES: tuple[dict[str, Any], ...] = (
    _namespaced(SETTINGS_NAMESPACE, _role(_SETTINGS_READER, [
        r("get", "", "configmaps", names=(CLUSTER_SETTINGS,))])),
)
NAMESPACED_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    _namespaced(SETTINGS_NAMESPACE, _binding(_SETTINGS_READER, ("Group", "system:bootstrappers"),
                                             ("Group", "system:nodes"))),
)
