"""RBAC authorizes custom resources like built-in ones: by their API group, resource and subresource
(status, scale), with kube's 403 wording; the user-facing roles (admin, edit, view) grant custom
resources only through ClusterRoles carrying the aggregation labels, as in kube. Requests go over the
ASGI app as the admin impersonating the users (the chain authorizes the impersonated user)."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.apiserver.auth.escalation import RbacEscalation
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.server import ApiServer
from orchestra.app.bootstrap import bootstrap
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.client.local import LocalClient
from orchestra.reconcilers.clusterroleaggregation import ClusterRoleAggregationController
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store

TOKEN = "admin-token"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(group: str) -> dict[str, Any]:
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}, "scale": scale},
                               "schema": {"openAPIV3Schema": schema}}]},
    }


def widgets(group: str, namespace: str) -> str:
    return f"/apis/{group}/v1/namespaces/{namespace}/widgets"


def rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def binding(name: str, kind: str, role: str, user: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}


class Served:
    def __init__(self, server: ApiServer) -> None:
        self.server = server

    async def call(self, method: str, path: str, body: Any = None, *, user: str = "") -> tuple[int, Any]:
        content_type = b"application/merge-patch+json" if method == "PATCH" else b"application/json"
        headers = [(b"content-type", content_type), (b"authorization", f"Bearer {TOKEN}".encode())]
        if user:
            headers.append((b"impersonate-user", user.encode()))
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                 "query_string": b"", "headers": headers, "client": ("10.0.0.7", 5555), "extensions": {}}
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            data = b"" if body is None else orjson.dumps(body)
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await self.server(scope, receive, send)
        status = next(m for m in sent if m["type"] == "http.response.start")["status"]
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, orjson.loads(payload) if payload else None

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        assert status in (200, 201), answer
        return answer


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    store = Store.open_memory()
    index = RbacIndex(store)
    authorizer = cluster_authorizer(index)
    core = ApiCore(store, admission=(RbacEscalation(index, authorizer),))
    await bootstrap(core)
    await ensure_bootstrap_policy(core)
    s = Served(ApiServer(core, token=TOKEN, authorizer=authorizer, rbac=index))
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(core)).run)
        await nursery.start(ClusterRoleAggregationController(LocalClient(core)).run)
        for ns in ("dev", "prod"):
            await s.ok("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        for group in ("example.com", "other.com"):
            await s.ok("POST", CRDS, crd(group))
        with trio.fail_after(5):
            await trio.testing.wait_all_tasks_blocked()  # the CRD controller established them
        for group in ("example.com", "other.com"):
            for ns in ("dev", "prod"):
                widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"},
                          "spec": {"replicas": 1}}
                await s.ok("POST", widgets(group, ns), widget)
        # jane reads widgets.example.com everywhere and scales them in dev; nothing else of them
        await s.ok("POST", f"{RBAC}/clusterroles", {
            "metadata": {"name": "widget-reader"},
            "rules": [rule("example.com", ["widgets"], ["get", "list", "watch"])]})
        await s.ok("POST", f"{RBAC}/clusterrolebindings", binding("jane-reads", "ClusterRole",
                                                                   "widget-reader", "jane"))
        await s.ok("POST", f"{RBAC}/namespaces/dev/roles", {
            "metadata": {"name": "widget-scaler"},
            "rules": [rule("example.com", ["widgets/scale"], ["get", "update", "patch"])]})
        await s.ok("POST", f"{RBAC}/namespaces/dev/rolebindings", binding("jane-scales", "Role",
                                                                           "widget-scaler", "jane"))
        # bob may edit in dev (the aggregated `edit` ClusterRole)
        await s.ok("POST", f"{RBAC}/namespaces/dev/rolebindings", binding("bob-edits", "ClusterRole",
                                                                           "edit", "bob"))
        yield s
        nursery.cancel_scope.cancel()
    store.close()


def denied(verb: str, resource: str, group: str, namespace: str, name: str = "") -> str:
    target = f'widgets.{group} "{name}"' if name else f"widgets.{group}"
    return (f'{target} is forbidden: User "jane" cannot {verb} resource "{resource}" in API group "{group}" '
            f'in the namespace "{namespace}"')


MATRIX = {
    "get": ("GET", f"{widgets('example.com', 'prod')}/w", None, None),
    "list": ("GET", widgets("example.com", "dev"), None, None),
    "list-other-group": ("GET", widgets("other.com", "dev"), None,
                         denied("list", "widgets", "other.com", "dev")),
    "delete": ("DELETE", f"{widgets('example.com', 'dev')}/w", None,
               denied("delete", "widgets", "example.com", "dev", "w")),
    "create": ("POST", widgets("example.com", "dev"),
               {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}},
               denied("create", "widgets", "example.com", "dev")),
    "get-status": ("GET", f"{widgets('example.com', 'dev')}/w/status", None,
                   denied("get", "widgets/status", "example.com", "dev", "w")),
    "get-scale": ("GET", f"{widgets('example.com', 'dev')}/w/scale", None, None),
    "patch-scale": ("PATCH", f"{widgets('example.com', 'dev')}/w/scale", {"spec": {"replicas": 2}}, None),
    "patch-scale-prod": ("PATCH", f"{widgets('example.com', 'prod')}/w/scale", {"spec": {"replicas": 2}},
                         denied("patch", "widgets/scale", "example.com", "prod", "w")),
}


@pytest.mark.parametrize(("method", "path", "body", "refusal"), MATRIX.values(), ids=MATRIX.keys())
async def test_custom_resources_by_group_resource_and_subresource(served: Served, method: str, path: str,
                                                                  body: Any, refusal: str | None) -> None:
    status, answer = await served.call(method, path, body, user="jane")
    if refusal is None:
        assert status in (200, 201), answer
    else:
        assert (status, answer["reason"], answer["message"]) == (403, "Forbidden", refusal)
        assert answer["details"]["group"] == path.split("/")[2]


async def test_edit_covers_custom_resources_only_through_aggregation(served: Served) -> None:
    path = widgets("example.com", "dev")
    status, answer = await served.call("GET", path, user="bob")
    assert (status, answer["message"]) == (403, 'widgets.example.com is forbidden: User "bob" cannot list '
                                                'resource "widgets" in API group "example.com" in the '
                                                'namespace "dev"')
    await served.ok("POST", f"{RBAC}/clusterroles", {
        "metadata": {"name": "widgets-edit",
                     "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
        "rules": [rule("example.com", ["widgets", "widgets/scale"], ["*"])]})
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()  # the aggregation controller updated `edit`
    edit = await served.ok("GET", f"{RBAC}/clusterroles/edit")
    assert rule("example.com", ["widgets", "widgets/scale"], ["*"]) in edit["rules"]
    assert (await served.call("GET", path, user="bob"))[0] == 200
    assert (await served.call("DELETE", f"{path}/w", user="bob"))[0] == 200
    assert (await served.call("GET", f"{path}/w/status", user="bob"))[0] == 403  # status: not granted
    assert (await served.call("GET", f"{widgets('example.com', 'prod')}/w", user="bob"))[0] == 403
    assert (await served.call("GET", widgets("other.com", "dev"), user="bob"))[0] == 403
