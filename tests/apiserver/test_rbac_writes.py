"""Escalation prevention (auth/escalation.py), the access reviews (auth/accessreviews.py) and
impersonation (auth/impersonation.py) over a real store and API core."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestra.api.errors import ApiError, BadRequest, Forbidden, Invalid, NotFound
from orchestra.api.request.core import ApiCore
from orchestra.api.request.types import WriteOptions
from orchestra.api.user import UserInfo
from orchestra.apiserver.auth.accessreviews import access_review
from orchestra.apiserver.auth.escalation import RbacEscalation
from orchestra.apiserver.auth.impersonation import impersonate
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.store import Store

RBAC = "rbac.authorization.k8s.io"
JANE = UserInfo("jane", groups=("devs", "system:authenticated"))
ADMIN = UserInfo("orchestra-admin", groups=("system:masters", "system:authenticated"))
PODS_READ = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}


class Cluster:
    def __init__(self) -> None:
        store = Store.open_memory()
        self.index = RbacIndex(store)
        self.authorizer = cluster_authorizer(self.index)
        self.core = ApiCore(store, admission=(RbacEscalation(self.index, self.authorizer),))

    async def write(
        self,
        kind: str,
        namespace: str | None,
        body: dict[str, Any],
        user: UserInfo | None = None,
        *,
        update: bool = False,
    ) -> dict[str, Any]:
        rt = self.core.registry.by_kind(kind)
        assert rt is not None
        obj = {"apiVersion": f"{RBAC}/v1", "kind": kind, **body}
        opts = WriteOptions(user=user)
        if update:
            current = self.core.get(rt, namespace, body["metadata"]["name"])
            obj["metadata"] = {**current["metadata"], **body["metadata"]}
            return (await self.core.update(rt, namespace, body["metadata"]["name"], obj, opts)).obj
        return (await self.core.create(rt, namespace, obj, opts)).obj


def role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": list(rules)}


def binding(name: str, kind: str, ref: str, user: str = "jane") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": ref},
        "subjects": [{"kind": "User", "name": user}],
    }


@pytest.fixture
async def cluster() -> Cluster:
    c = Cluster()
    await ensure_bootstrap_policy(c.core)
    for ns in ("dev", "prod"):
        await c.core.create(c.core.registry.by_kind("Namespace"), None, {"metadata": {"name": ns}})  # type: ignore[arg-type]
    # jane: reads pods and manages roles and bindings in dev, nothing in prod
    manager = {
        "apiGroups": [RBAC],
        "resources": ["roles", "rolebindings"],
        "verbs": ["create", "update", "get"],
    }
    await c.write("Role", "dev", role("jane", PODS_READ, manager))
    await c.write("RoleBinding", "dev", binding("jane", "Role", "jane"))
    return c


async def test_a_role_within_ones_rights_is_created(cluster: Cluster) -> None:
    made = await cluster.write("Role", "dev", role("readers", {**PODS_READ, "verbs": ["list"]}), JANE)
    assert made["metadata"]["name"] == "readers"


ESCALATIONS = [
    (
        "secrets",
        role("sneaky", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}',
    ),
    (
        "more-verbs",
        role("sneaky", {**PODS_READ, "verbs": ["get", "delete", "update"]}),
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "update"]}',
    ),
    (
        "star",
        role("sneaky", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}',
    ),
]


@pytest.mark.parametrize(("body", "missing"), [e[1:] for e in ESCALATIONS], ids=[e[0] for e in ESCALATIONS])
async def test_a_role_with_rights_one_lacks_is_forbidden(
    cluster: Cluster, body: dict[str, Any], missing: str
) -> None:
    with pytest.raises(Forbidden) as err:
        await cluster.write("Role", "dev", body, JANE)
    assert err.value.status()["message"] == (
        'roles.rbac.authorization.k8s.io "sneaky" is forbidden: '
        'user "jane" (groups=["devs" "system:authenticated"]) '
        f"is attempting to grant RBAC permissions not currently held:\n{missing}"
    )
    assert err.value.status()["details"] == {"name": "sneaky", "group": RBAC, "kind": "roles"}


async def test_updating_a_role_beyond_ones_rights_is_forbidden(cluster: Cluster) -> None:
    await cluster.write("Role", "dev", role("readers", PODS_READ), JANE)
    with pytest.raises(Forbidden, match="attempting to grant RBAC permissions"):
        await cluster.write("Role", "dev", role("readers", {**PODS_READ, "verbs": ["*"]}), JANE, update=True)


async def test_escalate_verb_and_system_masters_may_grant_anything(cluster: Cluster) -> None:
    await cluster.write(
        "Role", "dev", role("anything", {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}), ADMIN
    )
    await cluster.write(
        "Role", "dev", role("escalator", {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]})
    )
    await cluster.write("RoleBinding", "dev", binding("escalator", "Role", "escalator"))
    await cluster.write(
        "Role", "dev", role("secrets", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}), JANE
    )


async def test_binding_a_role_one_does_not_hold_is_forbidden(cluster: Cluster) -> None:
    with pytest.raises(Forbidden) as err:
        await cluster.write("RoleBinding", "dev", binding("evil", "ClusterRole", "cluster-admin"), JANE)
    assert err.value.status()["message"].startswith(
        'rolebindings.rbac.authorization.k8s.io "evil" is forbidden: user "jane" (groups=["devs" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n{NonResourceURLs:["*"], Verbs:["*"]}'
    )
    await cluster.write(
        "RoleBinding", "dev", binding("fine", "Role", "jane", user="bob"), JANE
    )  # her own rights


async def test_the_bind_verb_allows_binding_that_role(cluster: Cluster) -> None:
    binder = {
        "apiGroups": [RBAC],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": ["admin"],
    }
    await cluster.write("Role", "dev", role("binder", binder))
    await cluster.write("RoleBinding", "dev", binding("binder", "Role", "binder"))
    await cluster.write("RoleBinding", "dev", binding("ok", "ClusterRole", "admin", user="bob"), JANE)
    with pytest.raises(Forbidden):
        await cluster.write(
            "RoleBinding", "dev", binding("no", "ClusterRole", "cluster-admin", user="bob"), JANE
        )


async def test_binding_a_missing_role_is_404_unless_system_masters(cluster: Cluster) -> None:
    with pytest.raises(NotFound, match=re.escape('clusterroles.rbac.authorization.k8s.io "ghost" not found')):
        await cluster.write("RoleBinding", "dev", binding("g", "ClusterRole", "ghost"), JANE)
    await cluster.write("RoleBinding", "dev", binding("g", "ClusterRole", "ghost"), ADMIN)


async def test_in_process_writers_are_trusted(cluster: Cluster) -> None:
    await cluster.write("ClusterRoleBinding", None, binding("x", "ClusterRole", "cluster-admin"))


async def test_role_ref_is_immutable(cluster: Cluster) -> None:
    with pytest.raises(Invalid) as err:
        await cluster.write("RoleBinding", "dev", binding("jane", "ClusterRole", "view"), update=True)
    assert err.value.status()["message"] == (
        'RoleBinding.rbac.authorization.k8s.io "jane" is invalid: roleRef: Invalid value: '
        'rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io",'
        ' Kind:"ClusterRole", Name:"view"}: cannot change roleRef'
    )


# --- access reviews ----------------------------------------------------------------------------------------


def review(
    cluster: Cluster, kind: str, spec: dict[str, Any], user: UserInfo = JANE, ns: str | None = None
) -> Any:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}
    return access_review(kind, body, user, ns, cluster.authorizer, cluster.index)


REVIEWS = [
    (
        "ssar-allowed",
        "SelfSubjectAccessReview",
        {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "dev"}},
        True,
    ),
    (
        "ssar-denied",
        "SelfSubjectAccessReview",
        {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "prod"}},
        False,
    ),
    (
        "ssar-non-resource",
        "SelfSubjectAccessReview",
        {"nonResourceAttributes": {"verb": "get", "path": "/api"}},
        True,
    ),
    (
        "sar-other-user",
        "SubjectAccessReview",
        {"user": "bob", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "dev"}},
        False,
    ),
    (
        "sar-group",
        "SubjectAccessReview",
        {
            "user": "x",
            "groups": ["system:masters"],
            "resourceAttributes": {"verb": "delete", "resource": "nodes"},
        },
        True,
    ),
]


@pytest.mark.parametrize(("kind", "spec", "allowed"), [r[1:] for r in REVIEWS], ids=[r[0] for r in REVIEWS])
async def test_access_reviews(cluster: Cluster, kind: str, spec: dict[str, Any], allowed: bool) -> None:
    answered = review(cluster, kind, spec)
    assert answered["status"]["allowed"] is allowed
    assert answered["spec"] == spec and answered["kind"] == kind


async def test_an_allowed_review_says_why(cluster: Cluster) -> None:
    spec = {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "dev"}}
    assert review(cluster, "SelfSubjectAccessReview", spec)["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "jane/dev" of Role "jane" to User "jane"',
    }


async def test_local_review_namespace_must_match(cluster: Cluster) -> None:
    spec = {"user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "dev"}}
    assert review(cluster, "LocalSubjectAccessReview", spec, ns="dev")["status"]["allowed"] is True
    with pytest.raises(
        BadRequest, match=re.escape("spec.resourceAttributes.namespace must match namespace: prod")
    ):
        review(cluster, "LocalSubjectAccessReview", spec, ns="prod")


BAD_REVIEWS = [
    (
        "no-attributes",
        "SelfSubjectAccessReview",
        {},
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
        "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified",
    ),
    (
        "both",
        "SelfSubjectAccessReview",
        {"resourceAttributes": {}, "nonResourceAttributes": {}},
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: '
        "Invalid value: null: cannot be specified in combination with resourceAttributes",
    ),
    (
        "no-user",
        "SubjectAccessReview",
        {"resourceAttributes": {"verb": "get"}},
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": '
        "at least one of user or group must be specified",
    ),
]


@pytest.mark.parametrize(
    ("kind", "spec", "message"), [b[1:] for b in BAD_REVIEWS], ids=[b[0] for b in BAD_REVIEWS]
)
async def test_bad_reviews_are_422(cluster: Cluster, kind: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as err:
        review(cluster, kind, spec)
    assert err.value.status()["message"] == message


async def test_rules_review_lists_what_one_holds(cluster: Cluster) -> None:
    status = review(cluster, "SelfSubjectRulesReview", {"namespace": "dev"})["status"]
    assert PODS_READ | {"verbs": ["get", "list", "watch"]} in [
        {"apiGroups": r["apiGroups"], "resources": r["resources"], "verbs": r["verbs"]}
        for r in status["resourceRules"]
    ]
    assert {
        "verbs": ["get"],
        "nonResourceURLs": [
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
        ],
    } in status["nonResourceRules"]
    assert status["incomplete"] is False and "evaluationError" not in status
    elsewhere = review(cluster, "SelfSubjectRulesReview", {"namespace": "prod"})["status"]["resourceRules"]
    assert all(r["resources"] != ["pods"] for r in elsewhere)
    with pytest.raises(BadRequest, match="no namespace on request"):
        review(cluster, "SelfSubjectRulesReview", {})


# --- impersonation -----------------------------------------------------------------------------------------


def headers(**values: str | list[str]) -> list[tuple[bytes, bytes]]:
    out = []
    for key, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            out.append((key.replace("_", "-").encode(), v.encode()))
    return out


async def test_admin_may_impersonate_anyone(cluster: Cluster) -> None:
    acting = impersonate(
        ADMIN,
        headers(
            Impersonate_User="bob",
            Impersonate_Group=["g1", "g2"],
            Impersonate_Extra_Scopes_Team="a",
            Impersonate_Uid="u1",
        ),
        cluster.authorizer,
    )
    assert acting == UserInfo(
        "bob", uid="u1", groups=("g1", "g2", "system:authenticated"), extra={"scopes-team": ["a"]}
    )
    account = impersonate(
        ADMIN, headers(Impersonate_User="system:serviceaccount:dev:robot"), cluster.authorizer
    )
    assert account == UserInfo(
        "system:serviceaccount:dev:robot",
        groups=("system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"),
    )
    anonymous = impersonate(ADMIN, headers(Impersonate_User="system:anonymous"), cluster.authorizer)
    assert anonymous is not None and anonymous.groups == ("system:unauthenticated",)
    assert impersonate(ADMIN, [(b"accept", b"x")], cluster.authorizer) is None


IMPERSONATION_REFUSALS = [
    (
        "user",
        headers(Impersonate_User="bob"),
        'users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the '
        'cluster scope',
    ),
    (
        "service-account",
        headers(Impersonate_User="system:serviceaccount:prod:robot"),
        'serviceaccounts "robot" is forbidden: User "jane" cannot impersonate resource "serviceaccounts" in '
        'API group '
        '"" in the namespace "prod"',
    ),
    (
        "group",
        headers(Impersonate_User="jane", Impersonate_Group="system:masters"),
        'users "jane" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the '
        'cluster '
        "scope",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"), [i[1:] for i in IMPERSONATION_REFUSALS], ids=[i[0] for i in IMPERSONATION_REFUSALS]
)
async def test_impersonation_without_the_right_is_403(cluster: Cluster, raw: Any, message: str) -> None:
    with pytest.raises(Forbidden) as err:
        impersonate(JANE, raw, cluster.authorizer)
    assert err.value.status()["message"] == message


async def test_the_impersonate_verb_grants_exactly_what_it_names(cluster: Cluster) -> None:
    rule = {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["bob"]}
    await cluster.write("ClusterRole", None, role("as-bob", rule))
    await cluster.write("ClusterRoleBinding", None, binding("as-bob", "ClusterRole", "as-bob"))
    assert impersonate(JANE, headers(Impersonate_User="bob"), cluster.authorizer) == UserInfo(
        "bob", groups=("system:authenticated",)
    )
    with pytest.raises(Forbidden, match='groups "devs" is forbidden'):
        impersonate(JANE, headers(Impersonate_User="bob", Impersonate_Group="devs"), cluster.authorizer)


async def test_groups_without_a_user_are_400(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as err:
        impersonate(ADMIN, headers(Impersonate_Group="g"), cluster.authorizer)
    assert err.value.code == 400 and "without impersonating a user" in err.value.status()["message"]
