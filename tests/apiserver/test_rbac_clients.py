"""Access control on ReplicationControllers, PodTemplates, events.k8s.io Events, ComponentStatuses,
APIServices, the proxy subresources and pods/ephemeralcontainers: the bootstrap roles (view, edit,
aggregated as kube 1.32's) grant exactly what kube's grant, and a proxied request is authenticated,
authorized and audited like any other, its credentials and impersonation headers never reaching the
backend (kube's authentication and impersonation filters remove them before the proxy)."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from orchestra.api.policy.rbac.aggregation import aggregated_rules
from orchestra.api.request.core import ApiCore
from orchestra.api.user import UserInfo
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.auth.authz import Decision
from orchestra.apiserver.auth.rbac import cluster_authorizer
from orchestra.apiserver.auth.rbacindex import RbacIndex
from orchestra.apiserver.h11server import serve_asgi
from orchestra.apiserver.proxy import ProxyHandler
from orchestra.apiserver.requestinfo import request_info
from orchestra.apiserver.serve import serve_api
from orchestra.apiserver.server import ApiServer
from orchestra.app.bootstrap import bootstrap
from orchestra.app.rbacpolicy import ensure_bootstrap_policy
from orchestra.store import Store
from tests.apiserver.test_proxy import POD_IP, Backend, _objects

TOKEN = "admin-token"
RBAC = "rbac.authorization.k8s.io"
NS = "/api/v1/namespaces/default"
VIEWER = UserInfo("carol", groups=("system:authenticated",))
EDITOR = UserInfo("bob", groups=("system:authenticated",))


async def _policy(core: ApiCore) -> None:
    """kube's bootstrap roles with admin/edit/view aggregated (what the aggregation controller
    writes), bob bound to `edit` and carol to `view` in the default namespace."""
    await ensure_bootstrap_policy(core)
    roles = core.registry.by_kind("ClusterRole")
    bindings = core.registry.by_kind("RoleBinding")
    assert roles is not None and bindings is not None
    listed = core.list(roles, None).items
    for name in ("view", "edit", "admin"):
        role = core.get(roles, None, name)
        await core.update(roles, None, name, {**role, "rules": aggregated_rules(role, listed)})
        listed = core.list(roles, None).items
    for user, role in (("bob", "edit"), ("carol", "view")):
        await core.create(bindings, "default", {
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}]})


@pytest.fixture
async def authorizer() -> AsyncIterator[Any]:
    store = Store.open_memory()
    index = RbacIndex(store)
    core = ApiCore(store)
    await bootstrap(core)
    await _policy(core)
    yield cluster_authorizer(index)
    store.close()


# (user, method, path, allowed): kube 1.32's view and edit, rule for rule
MATRIX = {
    "view-list-rc": (VIEWER, "GET", f"{NS}/replicationcontrollers", True),
    "view-get-rc-scale": (VIEWER, "GET", f"{NS}/replicationcontrollers/r/scale", True),
    "view-get-rc-status": (VIEWER, "GET", f"{NS}/replicationcontrollers/r/status", True),
    "view-no-rc-scale-update": (VIEWER, "PUT", f"{NS}/replicationcontrollers/r/scale", False),
    "edit-create-rc": (EDITOR, "POST", f"{NS}/replicationcontrollers", True),
    "edit-patch-rc-scale": (EDITOR, "PATCH", f"{NS}/replicationcontrollers/r/scale", True),
    "edit-no-rc-status-update": (EDITOR, "PUT", f"{NS}/replicationcontrollers/r/status", False),
    "view-no-podtemplates": (VIEWER, "GET", f"{NS}/podtemplates", False),
    "edit-no-podtemplates": (EDITOR, "POST", f"{NS}/podtemplates", False),
    "view-core-events": (VIEWER, "GET", f"{NS}/events", True),
    "view-no-events-k8s-io": (VIEWER, "GET", "/apis/events.k8s.io/v1/namespaces/default/events", False),
    "edit-no-events-k8s-io": (EDITOR, "POST", "/apis/events.k8s.io/v1/namespaces/default/events", False),
    "view-no-pod-proxy": (VIEWER, "GET", f"{NS}/pods/web/proxy/x", False),
    "edit-pod-proxy-get": (EDITOR, "GET", f"{NS}/pods/web:8080/proxy/x", True),
    "edit-pod-proxy-post": (EDITOR, "POST", f"{NS}/pods/https:web:8443/proxy/", True),
    "edit-service-proxy-delete": (EDITOR, "DELETE", f"{NS}/services/web/proxy/x", True),
    "view-no-service-proxy": (VIEWER, "GET", f"{NS}/services/web/proxy", False),
    "edit-no-node-proxy": (EDITOR, "GET", "/api/v1/nodes/n1/proxy/metrics", False),
    "edit-no-ephemeral-containers": (EDITOR, "PATCH", f"{NS}/pods/web/ephemeralcontainers", False),
    "view-no-ephemeral-containers": (VIEWER, "GET", f"{NS}/pods/web/ephemeralcontainers", False),
    "edit-no-componentstatuses": (EDITOR, "GET", "/api/v1/componentstatuses", False),
    "edit-no-apiservices": (EDITOR, "GET", "/apis/apiregistration.k8s.io/v1/apiservices", False),
}


@pytest.mark.parametrize(("user", "method", "path", "allowed"), MATRIX.values(), ids=MATRIX.keys())
async def test_bootstrap_roles_cover_the_client_kinds_as_kubes_do(
    authorizer: Any, user: UserInfo, method: str, path: str, allowed: bool
) -> None:
    decision, _ = authorizer.authorize(user, request_info(method, path, {}))
    assert (decision is Decision.ALLOW) is allowed


# --- the proxy behind authentication, authorization and audit --------------------------------------


@attrs.define
class Served:
    core: ApiCore
    http: httpx.AsyncClient
    backend: Backend
    audit: AuditLog

    async def call(self, method: str, path: str, *, user: str = "", token: str = TOKEN,
                   body: Any = None, content_type: str = "application/json") -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        if user:
            headers |= {"Impersonate-User": user, "Impersonate-Group": "system:authenticated"}
        content = None if body is None else json.dumps(body).encode()
        return await self.http.request(method, path, headers=headers, content=content)


@asynccontextmanager
async def open_served(tmp_path: Path) -> AsyncIterator[Served]:
    store = Store.open_memory()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            index = RbacIndex(store)
            core = ApiCore(store)
            await bootstrap(core)
            await _policy(core)
            backend = Backend()
            bound = await nursery.start(functools.partial(serve_asgi, ssl_context=None), backend,
                                        "127.0.0.1", 0)
            backend_port = int(bound[0].rsplit(":", 1)[1])

            async def connect(host: str, port: int) -> trio.abc.Stream:
                assert (host, port) == (POD_IP, 8080)
                return await trio.open_tcp_stream("127.0.0.1", backend_port)

            audit = AuditLog(tmp_path / "audit.log")
            server = ApiServer(core, token=TOKEN, authorizer=cluster_authorizer(index), audit=audit,
                               rbac=index)
            server.proxy = ProxyHandler(core, connect=connect, choose=lambda options: options[0])
            server.ready = True
            url = next(b for b in await nursery.start(serve_api, server, "127.0.0.1", 0)
                       if b.startswith("http"))
            await _objects(core)
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield Served(core, http, backend, audit)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


def _audited(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_proxy_authenticates_authorizes_and_forwards_no_credentials(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_served(tmp_path) as s:
            r = await s.call("GET", f"{NS}/pods/web/proxy/hello", user="bob")
            assert r.status_code == 200 and r.json()["path"] == "/hello"
            forwarded = {k for k, _ in s.backend.requests[-1]["headers"]}
            assert not {k for k in forwarded if k == "authorization" or k.startswith("impersonate-")}

            r = await s.call("GET", f"{NS}/pods/web/proxy/hello", user="carol")
            assert r.status_code == 403
            assert r.json()["message"] == ('pods "web" is forbidden: User "carol" cannot get resource '
                                           '"pods/proxy" in API group "" in the namespace "default"')
            r = await s.call("GET", f"{NS}/services/web/proxy/hello", token="wrong")
            assert (r.status_code, r.json()["reason"]) == (401, "Unauthorized")
            assert len(s.backend.requests) == 1  # neither refused request reached the backend

            await s.audit.flush()
            proxied = [(e["stage"], e["user"].get("username"), e.get("impersonatedUser", {}).get("username"),
                        e["responseStatus"]["code"], e["objectRef"]["subresource"])
                       for e in _audited(tmp_path / "audit.log")
                       if e.get("objectRef", {}).get("subresource") == "proxy"]
            assert proxied == [
                ("ResponseStarted", "orchestra-admin", "bob", 200, "proxy"),
                ("ResponseComplete", "orchestra-admin", "bob", 200, "proxy"),
                ("ResponseStarted", "orchestra-admin", "carol", 403, "proxy"),
                ("ResponseComplete", "orchestra-admin", "carol", 403, "proxy"),
                ("ResponseStarted", None, None, 401, "proxy"),  # kube's one event of a failed authentication
            ]


async def test_ephemeral_containers_and_componentstatuses_need_their_own_grants(tmp_path: Path) -> None:
    """kube's edit role has no pods/ephemeralcontainers (`kubectl debug` needs a role naming it) and
    no one but cluster roles naming them reads componentstatuses."""
    debug = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox", "command": ["sh"]}]}}
    path = f"{NS}/pods/web/ephemeralcontainers"
    with trio.fail_after(20):
        async with open_served(tmp_path) as s:
            r = await s.call("PATCH", path, user="bob", body=debug,
                             content_type="application/strategic-merge-patch+json")
            assert r.status_code == 403
            assert r.json()["message"] == ('pods "web" is forbidden: User "bob" cannot patch resource '
                                           '"pods/ephemeralcontainers" in API group "" in the namespace '
                                           '"default"')
            r = await s.call("PATCH", path, body=debug, content_type="application/strategic-merge-patch+json")
            assert r.status_code == 200, r.text
            assert [c["name"] for c in r.json()["spec"]["ephemeralContainers"]] == ["dbg"]
            assert (await s.call("GET", "/api/v1/componentstatuses", user="bob")).status_code == 403
            assert (await s.call("GET", "/api/v1/componentstatuses")).status_code == 200
