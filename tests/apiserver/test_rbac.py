"""The RBAC authorizer (apiserver/auth/rbac.py, rbacindex.py) and PolicyRule semantics
(api/policy/rbac/rules.py): rule matching tables, subjects, the store-watched index, kube's wording."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from orchestra.api.policy.rbac.rules import Access, Rule, compact_rules, compact_string, covers
from orchestra.api.request.core import ApiCore
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.authz import Decision, forbidden
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.requestinfo import request_info
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.store import Store

RBAC = "rbac.authorization.k8s.io/v1"

# (rule, access, allowed)
RULE_TABLE: list[tuple[str, dict[str, Any], Access, bool]] = [
    ("exact", {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, Access("get", "", "pods"), True),
    (
        "other-verb",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
        Access("list", "", "pods"),
        False,
    ),
    (
        "other-group",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["deployments"]},
        Access("get", "apps", "deployments"),
        False,
    ),
    (
        "star-verb",
        {"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]},
        Access("delete", "apps", "deployments"),
        True,
    ),
    (
        "star-group",
        {"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]},
        Access("get", "apps", "deployments"),
        True,
    ),
    (
        "star-resource",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["*"]},
        Access("get", "", "secrets"),
        True,
    ),
    (
        "star-resource-covers-subresource",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["*"]},
        Access("get", "", "pods", "log"),
        True,
    ),
    (
        "resource-not-subresource",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
        Access("get", "", "pods", "log"),
        False,
    ),
    (
        "subresource",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
        Access("get", "", "pods", "log"),
        True,
    ),
    (
        "subresource-not-resource",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
        Access("get", "", "pods"),
        False,
    ),
    (
        "star-slash-subresource",
        {"verbs": ["update"], "apiGroups": ["apps"], "resources": ["*/scale"]},
        Access("update", "apps", "deployments", "scale"),
        True,
    ),
    (
        "star-slash-other-subresource",
        {"verbs": ["update"], "apiGroups": ["apps"], "resources": ["*/scale"]},
        Access("update", "apps", "deployments", "status"),
        False,
    ),
    (
        "resource-name",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
        Access("get", "", "configmaps", name="a"),
        True,
    ),
    (
        "other-resource-name",
        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
        Access("get", "", "configmaps", name="b"),
        False,
    ),
    (
        "resource-names-never-list",
        {"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
        Access("list", "", "configmaps"),
        False,
    ),
    (
        "url",
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        Access("get", path="/healthz", resource_request=False),
        True,
    ),
    (
        "url-prefix",
        {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]},
        Access("get", path="/apis/apps/v1", resource_request=False),
        True,
    ),
    (
        "url-other",
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        Access("get", path="/metrics", resource_request=False),
        False,
    ),
    (
        "url-star",
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
        Access("post", path="/x", resource_request=False),
        True,
    ),
    ("url-rule-no-resources", {"verbs": ["*"], "nonResourceURLs": ["*"]}, Access("get", "", "pods"), False),
    (
        "resource-rule-no-urls",
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        Access("get", path="/healthz", resource_request=False),
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule", "access", "allowed"), [t[1:] for t in RULE_TABLE], ids=[t[0] for t in RULE_TABLE]
)
def test_rule_allows(rule: dict[str, Any], access: Access, allowed: bool) -> None:
    assert Rule.from_json(rule).allows(access) is allowed


COVER_TABLE = [
    (
        "same",
        [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
        [],
    ),
    (
        "more-verbs",
        [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        {"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]},
        ['{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'],
    ),
    (
        "star-covers-all",
        [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale"]},
        [],
    ),
    (
        "names-narrower",
        [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}],
        {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]},
        ['{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'],
    ),
    (
        "star-slash",
        [{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]}],
        {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale"]},
        [],
    ),
    (
        "star-verb-not-held",
        [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}],
        {"verbs": ["*"], "apiGroups": [""], "resources": ["secrets"]},
        ['{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}'],
    ),
    (
        "url-prefix",
        [{"verbs": ["get"], "nonResourceURLs": ["/api/*"]}],
        {"verbs": ["get"], "nonResourceURLs": ["/api/v1"]},
        [],
    ),
    (
        "url-missing",
        [{"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}],
        {"verbs": ["get"], "nonResourceURLs": ["/metrics"]},
        ['{NonResourceURLs:["/metrics"], Verbs:["get"]}'],
    ),
]


@pytest.mark.parametrize(
    ("owner", "wanted", "missing"), [t[1:] for t in COVER_TABLE], ids=[t[0] for t in COVER_TABLE]
)
def test_covers(owner: list[dict[str, Any]], wanted: dict[str, Any], missing: list[str]) -> None:
    left = covers([Rule.from_json(r) for r in owner], [Rule.from_json(wanted)])
    assert sorted(compact_string(r) for r in compact_rules(left)) == missing


def test_compact_rules_merge_verbs_of_one_resource() -> None:
    parts = [
        Rule(("get",), ("",), ("pods",)),
        Rule(("list",), ("",), ("pods",)),
        Rule(("get",), ("apps",), ("x",)),
    ]
    assert [compact_string(r) for r in compact_rules(parts)] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}',
        '{APIGroups:["apps"], Resources:["x"], Verbs:["get"]}',
    ]


# --- the authorizer over the store ----------------------------------------------------------------


async def _cluster() -> tuple[ApiCore, RbacIndex]:
    store = Store.open_memory()
    index = RbacIndex(store)
    core = ApiCore(store)
    await ensure_bootstrap_policy(core)
    for ns in ("dev", "prod"):
        await core.create(core.registry.by_kind("Namespace"), None, {"metadata": {"name": ns}})  # type: ignore[arg-type]
    return core, index


async def _put(core: ApiCore, kind: str, namespace: str | None, body: dict[str, Any]) -> None:
    rt = core.registry.by_kind(kind)
    assert rt is not None
    await core.create(rt, namespace, {"apiVersion": RBAC, "kind": kind, **body})


def _role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": list(rules)}


def _binding(name: str, kind: str, role: str, *subjects: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": list(subjects),
    }


ALICE = UserInfo("alice", groups=("system:authenticated",))
DEVS = UserInfo("bob", groups=("devs", "system:authenticated"))
ROBOT = UserInfo(
    "system:serviceaccount:dev:robot",
    groups=("system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"),
)
ADMIN = UserInfo("orchestra-admin", groups=("system:masters", "system:authenticated"))
ANON = UserInfo("system:anonymous", groups=("system:unauthenticated",))

# (user, method, path, allowed)
MATRIX: list[tuple[str, UserInfo, str, str, bool]] = [
    ("alice-list-pods-dev", ALICE, "GET", "/api/v1/namespaces/dev/pods", True),
    ("alice-list-pods-prod", ALICE, "GET", "/api/v1/namespaces/prod/pods", False),
    ("alice-get-pod-dev", ALICE, "GET", "/api/v1/namespaces/dev/pods/p", True),
    ("alice-delete-pod-dev", ALICE, "DELETE", "/api/v1/namespaces/dev/pods/p", False),
    ("alice-log-dev", ALICE, "GET", "/api/v1/namespaces/dev/pods/p/log", False),
    ("alice-all-namespaces", ALICE, "GET", "/api/v1/pods", False),
    ("alice-discovery", ALICE, "GET", "/apis/apps/v1", True),
    ("alice-version", ALICE, "GET", "/version", True),
    ("alice-metrics", ALICE, "GET", "/metrics", False),
    ("alice-ssar", ALICE, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", True),
    ("alice-sar", ALICE, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", False),
    ("devs-group-edit-dev", DEVS, "POST", "/apis/apps/v1/namespaces/dev/deployments", True),
    ("devs-group-edit-scale", DEVS, "PUT", "/apis/apps/v1/namespaces/dev/deployments/d/scale", True),
    ("devs-group-no-roles", DEVS, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/roles", False),
    ("devs-group-prod", DEVS, "POST", "/apis/apps/v1/namespaces/prod/deployments", False),
    ("devs-edit-netpol", DEVS, "POST", "/apis/networking.k8s.io/v1/namespaces/dev/networkpolicies", True),
    ("devs-edit-ingress", DEVS, "DELETE", "/apis/networking.k8s.io/v1/namespaces/dev/ingresses/i", True),
    ("devs-edit-hpa", DEVS, "PATCH", "/apis/autoscaling/v2/namespaces/dev/horizontalpodautoscalers/h", True),
    ("devs-no-custom-kinds", DEVS, "GET", "/apis/example.com/v1/namespaces/dev/widgets", False),
    ("devs-no-crds", DEVS, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", False),
    ("devs-one-configmap", DEVS, "GET", "/api/v1/namespaces/prod/configmaps/settings", True),
    ("devs-other-configmap", DEVS, "GET", "/api/v1/namespaces/prod/configmaps/other", False),
    ("robot-watch-pods", ROBOT, "GET", "/api/v1/namespaces/dev/pods", True),
    ("robot-secrets", ROBOT, "GET", "/api/v1/namespaces/dev/secrets", False),
    ("robot-nodes", ROBOT, "GET", "/api/v1/nodes", True),
    ("robot-issuer-discovery", ROBOT, "GET", "/openid/v1/jwks", True),
    ("admin-anything", ADMIN, "DELETE", "/api/v1/nodes/n", True),
    ("admin-any-path", ADMIN, "PUT", "/whatever", True),
    ("anonymous-health", ANON, "GET", "/healthz", True),
    ("anonymous-pods", ANON, "GET", "/api/v1/namespaces/dev/pods", False),
    ("anonymous-discovery", ANON, "GET", "/api", False),
]


@pytest.fixture
async def authorized() -> Any:
    core, index = await _cluster()
    await _put(
        core,
        "Role",
        "dev",
        _role("pod-reader", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}),
    )
    await _put(
        core,
        "RoleBinding",
        "dev",
        _binding("alice-reads", "Role", "pod-reader", {"kind": "User", "name": "alice"}),
    )
    await _put(
        core,
        "RoleBinding",
        "dev",
        _binding("robot-reads", "Role", "pod-reader", {"kind": "ServiceAccount", "name": "robot"}),
    )
    await _put(
        core,
        "RoleBinding",
        "dev",
        _binding("devs-edit", "ClusterRole", "edit", {"kind": "Group", "name": "devs"}),
    )
    await _put(
        core,
        "Role",
        "prod",
        _role(
            "settings",
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]},
        ),
    )
    await _put(
        core,
        "RoleBinding",
        "prod",
        _binding("devs-settings", "Role", "settings", {"kind": "Group", "name": "devs"}),
    )
    await _put(
        core,
        "ClusterRole",
        None,
        _role("node-reader", {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}),
    )
    await _put(
        core,
        "ClusterRoleBinding",
        None,
        _binding(
            "robots-nodes",
            "ClusterRole",
            "node-reader",
            {"kind": "Group", "name": "system:serviceaccounts:dev"},
        ),
    )
    # the edit role is aggregated: the controller fills it; here the sum is written directly
    from orchestra.api.policy.rbac.aggregation import aggregated_rules

    roles = core.registry.by_kind("ClusterRole")
    assert roles is not None
    listed = core.list(roles, None).items
    edit = next(r for r in listed if r["metadata"]["name"] == "edit")
    await core.update(roles, None, "edit", {**edit, "rules": aggregated_rules(edit, listed)})
    return cluster_authorizer(index)


@pytest.mark.parametrize(
    ("user", "method", "path", "allowed"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX]
)
async def test_the_authorizer_matrix(
    authorized: Any, user: UserInfo, method: str, path: str, allowed: bool
) -> None:
    decision, _ = authorized.authorize(user, request_info(method, path, {}))
    assert (decision is Decision.ALLOW) is allowed


async def test_reasons_and_the_forbidden_wording(authorized: Any) -> None:
    info = request_info("GET", "/api/v1/namespaces/dev/pods", {})
    assert authorized.authorize(ROBOT, info) == (
        Decision.ALLOW,
        'RBAC: allowed by RoleBinding "robot-reads/dev" of Role "pod-reader" to ServiceAccount "robot/dev"',
    )
    denied = request_info("GET", "/api/v1/namespaces/prod/pods", {})
    assert authorized.authorize(ALICE, denied) == (Decision.NO_OPINION, "")
    assert forbidden(ALICE, denied).status()["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "prod"'
    )
    log = request_info("GET", "/api/v1/namespaces/dev/pods/p/log", {})
    status = forbidden(ALICE, log).status()
    assert status["message"] == (
        'pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" '
        'in the namespace "dev"'
    )
    assert status["reason"] == "Forbidden" and status["details"] == {"name": "p", "kind": "pods"}
    nodes = request_info("GET", "/api/v1/nodes", {})
    assert forbidden(ALICE, nodes).status()["message"] == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope'
    )


async def test_the_index_follows_writes_and_deletes_at_once() -> None:
    with trio.fail_after(5):
        core, index = await _cluster()
        authorizer = cluster_authorizer(index)
        info = request_info("GET", "/api/v1/namespaces/dev/secrets", {})
        assert authorizer.authorize(ALICE, info)[0] is Decision.NO_OPINION
        await _put(
            core,
            "RoleBinding",
            "dev",
            _binding("a", "ClusterRole", "view", {"kind": "User", "name": "alice"}),
        )
        await _put(
            core,
            "ClusterRole",
            None,
            _role("secrets", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}),
        )
        assert authorizer.authorize(ALICE, info)[0] is Decision.NO_OPINION  # view has no secrets
        await _put(
            core,
            "RoleBinding",
            "dev",
            _binding("b", "ClusterRole", "secrets", {"kind": "User", "name": "alice"}),
        )
        assert authorizer.authorize(ALICE, info)[0] is Decision.ALLOW
        from orchestra.api.request.deletion import DeleteOptions

        await core.delete(core.registry.by_kind("ClusterRole"), None, "secrets", DeleteOptions())  # type: ignore[arg-type]
        assert authorizer.authorize(ALICE, info) == (
            Decision.NO_OPINION,
            'RBAC: clusterrole.rbac.authorization.k8s.io "secrets" not found',
        )


async def test_the_index_reads_rbac_objects_encrypted_at_rest() -> None:
    """An encryption config may name RBAC resources: the index reads them through the core's codec
    (read as plain JSON they would grant nothing)."""
    from orchestra.api.registry import DEFAULT_REGISTRY
    from orchestra.api.request import encryption
    from orchestra.api.request.stored import Codec

    config = encryption.new_config()
    config["resources"][0]["resources"] = ["roles.rbac.authorization.k8s.io",
                                           "rolebindings.rbac.authorization.k8s.io"]
    codec = Codec(encryption.transformers(config, DEFAULT_REGISTRY))
    store = Store.open_memory()
    core = ApiCore(store, codec=codec)
    index = RbacIndex(store, decode=codec.decode)
    await core.create(core.registry.by_kind("Namespace"), None, {"metadata": {"name": "dev"}})  # type: ignore[arg-type]
    await _put(core, "Role", "dev", _role("secrets", {"apiGroups": [""], "resources": ["secrets"],
                                                      "verbs": ["list"]}))
    alice = {"kind": "User", "name": "alice"}
    await _put(core, "RoleBinding", "dev", _binding("a", "Role", "secrets", alice))
    kvs, _ = store.range("/registry/rbac.authorization.k8s.io/")
    assert kvs and all(kv.value.startswith(b"k8s:enc:aesgcm:v1:key1:") for kv in kvs)
    info = request_info("GET", "/api/v1/namespaces/dev/secrets", {})
    assert cluster_authorizer(index).authorize(ALICE, info)[0] is Decision.ALLOW


class CountingStore:
    """The store, counting the reads that scan or fetch objects."""

    def __init__(self, store: Store) -> None:
        self.store, self.reads = store, 0

    def __getattr__(self, name: str) -> Any:
        if name in ("range", "get"):
            self.reads += 1
        return getattr(self.store, name)


async def test_a_request_costs_no_store_scan() -> None:
    """Once the index is built, deciding reads nothing from the store but a revision number."""
    core, _ = await _cluster()
    viewer = "system:aggregate-to-view"
    await _put(
        core, "RoleBinding", "dev", _binding("a", "ClusterRole", viewer, {"kind": "User", "name": "alice"})
    )
    counting = CountingStore(core.store)
    authorizer = cluster_authorizer(RbacIndex(counting))  # type: ignore[arg-type]
    built = counting.reads
    for _ in range(3):
        assert (
            authorizer.authorize(ALICE, request_info("GET", "/api/v1/namespaces/dev/pods", {}))[0]
            is Decision.ALLOW
        )
    await _put(
        core, "RoleBinding", "prod", _binding("b", "ClusterRole", viewer, {"kind": "User", "name": "alice"})
    )
    assert (
        authorizer.authorize(ALICE, request_info("GET", "/api/v1/namespaces/prod/pods", {}))[0]
        is Decision.ALLOW
    )
    assert counting.reads == built


async def test_bootstrap_policy_is_reconciled_not_overwritten() -> None:
    core, index = await _cluster()
    roles = core.registry.by_kind("ClusterRole")
    assert roles is not None
    view = core.get(roles, None, "system:public-info-viewer")
    extra = {"nonResourceURLs": ["/extra"], "verbs": ["get"]}
    await core.update(roles, None, view["metadata"]["name"], {**view, "rules": [view["rules"][0], extra]})
    basic = core.get(roles, None, "system:basic-user")
    basic["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
    await core.update(roles, None, "system:basic-user", {**basic, "rules": []})
    discovery = core.get(roles, None, "system:discovery")
    await core.update(roles, None, "system:discovery", {**discovery, "rules": []})
    await ensure_bootstrap_policy(core)
    assert core.get(roles, None, "system:public-info-viewer")["rules"][1] == extra  # kept: additive
    assert core.get(roles, None, "system:basic-user").get("rules") in (
        None,
        [],
    )  # autoupdate=false: left alone
    restored = core.get(roles, None, "system:discovery")["rules"]
    assert {u for r in restored for u in r["nonResourceURLs"]} >= {"/api", "/apis/*", "/version"}
    assert authorizer_allows(index, ALICE, "GET", "/api")


def authorizer_allows(index: RbacIndex, user: UserInfo, method: str, path: str) -> bool:
    return cluster_authorizer(index).authorize(user, request_info(method, path, {}))[0] is Decision.ALLOW
