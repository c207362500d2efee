"""rbac.authorization.k8s.io/v1 validation and defaults (api/policy/validation/rbac.py, defaults.py),
worded like kube-apiserver 1.32, through the API core."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.api.errors import Invalid
from orchestra.api.request.core import ApiCore
from orchestra.store import Store

RBAC = "rbac.authorization.k8s.io"
REF = {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}

BAD = [
    (
        "role-no-verbs",
        "Role",
        {"rules": [{"apiGroups": [""], "resources": ["pods"]}]},
        "rules[0].verbs: Required value: verbs must contain at least one value",
    ),
    (
        "role-no-groups",
        "Role",
        {"rules": [{"resources": ["pods"], "verbs": ["get"]}]},
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
    ),
    (
        "role-no-resources",
        "Role",
        {"rules": [{"apiGroups": [""], "verbs": ["get"]}]},
        "rules[0].resources: Required value: resource rules must supply at least one resource",
    ),
    (
        "role-urls",
        "Role",
        {"rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]},
        'rules[0].nonResourceURLs: Invalid value: []string{"/x"}: namespaced rules cannot apply to '
        'non-resource URLs',
    ),
    (
        "clusterrole-urls-and-resources",
        "ClusterRole",
        {"rules": [{"nonResourceURLs": ["/x"], "resources": ["pods"], "verbs": ["get"]}]},
        'rules[0].nonResourceURLs: Invalid value: []string{"/x"}: '
        "rules cannot apply to both regular resources and non-resource URLs",
    ),
    (
        "clusterrole-empty-aggregation",
        "ClusterRole",
        {"aggregationRule": {}},
        "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if "
        "aggregationRule is non-nil",
    ),
    (
        "name-slash",
        "ClusterRole",
        {"metadata": {"name": "a/b"}},
        "metadata.name: Invalid value: \"a/b\": may not contain '/'",
    ),
    (
        "binding-kind",
        "ClusterRoleBinding",
        {"roleRef": {**REF, "kind": "Role"}},
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
    ),
    (
        "binding-group",
        "RoleBinding",
        {"roleRef": {**REF, "apiGroup": "x"}},
        'roleRef.apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
    ),
    ("binding-no-name", "RoleBinding", {"roleRef": {**REF, "name": ""}}, "roleRef.name: Required value"),
    (
        "subject-kind",
        "RoleBinding",
        {"roleRef": REF, "subjects": [{"kind": "Robot", "name": "r"}]},
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
    ),
    (
        "subject-sa-namespace",
        "ClusterRoleBinding",
        {"roleRef": REF, "subjects": [{"kind": "ServiceAccount", "name": "r"}]},
        "subjects[0].namespace: Required value",
    ),
    (
        "subject-sa-group",
        "RoleBinding",
        {"roleRef": REF, "subjects": [{"kind": "ServiceAccount", "name": "r", "apiGroup": RBAC}]},
        'subjects[0].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: ""',
    ),
    (
        "subject-no-name",
        "RoleBinding",
        {"roleRef": REF, "subjects": [{"kind": "User", "name": ""}]},
        "subjects[0].name: Required value",
    ),
]


async def _create(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    core = ApiCore(Store.open_memory())
    await core.create(core.registry.by_kind("Namespace"), None, {"metadata": {"name": "dev"}})  # type: ignore[arg-type]
    rt = core.registry.by_kind(kind)
    assert rt is not None
    obj = {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        **body,
        "metadata": {"name": "x", **body.get("metadata", {})},
    }
    return (await core.create(rt, "dev" if rt.namespaced else None, obj)).obj


@pytest.mark.parametrize(("kind", "body", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_invalid_rbac_objects(kind: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as err:
        await _create(kind, body)
    name = body.get("metadata", {}).get("name", "x")
    assert err.value.status()["message"] == f'{kind}.{RBAC} "{name}" is invalid: {message}'


async def test_binding_defaults_fill_the_api_groups() -> None:
    made = await _create(
        "RoleBinding",
        {
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [
                {"kind": "User", "name": "u"},
                {"kind": "Group", "name": "g"},
                {"kind": "ServiceAccount", "name": "s"},
            ],
        },
    )
    assert made["roleRef"]["apiGroup"] == RBAC
    assert [s.get("apiGroup") for s in made["subjects"]] == [RBAC, RBAC, None]
    assert "generation" not in made["metadata"]
