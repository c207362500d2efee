"""Custom resources and CustomResourceDefinitions pass the request chain like every other request:
unauthenticated requests get kube's 401, authenticated ones are served and audited with the custom
group and resource (and the subresource: status, scale) in their objectRef."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.apiserver.audit.log import AuditLog
from orchestra.apiserver.server import ApiServer
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.reconcilers.crd import CRDController
from orchestra.store import Store

TOKEN = "admin-token"


def crd(plural: str, kind: str) -> dict[str, Any]:
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": plural, "kind": kind},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}, "scale": scale},
                               "schema": {"openAPIV3Schema": schema}}]},
    }

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, AuditLog]]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    audit = AuditLog(tmp_path / "audit.log")
    async with trio.open_nursery() as nursery:
        await nursery.start(CRDController(LocalClient(core)).run)
        yield ApiServer(core, token=TOKEN, audit=audit), audit
        nursery.cancel_scope.cancel()
    store.close()


async def call(server: ApiServer, method: str, path: str, *, token: str | None = TOKEN,
               body: Any = None) -> tuple[int, Any]:
    headers = [(b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "client": ("10.0.0.7", 5555), "extensions": {}}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        data = b"" if body is None else orjson.dumps(body)
        return {"type": "http.request", "body": data, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await server(scope, receive, send)
    status = next(m for m in sent if m["type"] == "http.response.start")["status"]
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(payload) if payload else None


CALLS = {
    "list-crds": ("GET", CRDS, None),
    "create-crd": ("POST", CRDS, crd("gadgets", "Gadget")),
    "list": ("GET", WIDGETS, None),
    "create": ("POST", WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                 "metadata": {"name": "x"}}),
    "get": ("GET", f"{WIDGETS}/w", None),
    "status": ("GET", f"{WIDGETS}/w/status", None),
    "scale": ("GET", f"{WIDGETS}/w/scale", None),
    "delete": ("DELETE", f"{WIDGETS}/w", None),
}


async def established(server: ApiServer) -> None:
    assert (await call(server, "POST", CRDS, body=crd("widgets", "Widget")))[0] == 201
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()  # the CRD controller established it
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"replicas": 1}}
    assert (await call(server, "POST", WIDGETS, body=widget))[0] == 201


@pytest.mark.parametrize(("method", "path", "body"), CALLS.values(), ids=CALLS.keys())
async def test_custom_resources_need_credentials(served: tuple[ApiServer, AuditLog], method: str, path: str,
                                                 body: Any) -> None:
    server, _ = served
    await established(server)
    for token in (None, "wrong"):
        status, answer = await call(server, method, path, token=token, body=body)
        assert (status, answer["reason"], answer["message"]) == (401, "Unauthorized", "Unauthorized")
    status, _ = await call(server, method, path, body=body)
    assert status in (200, 201)


async def test_custom_requests_are_audited_with_their_resource(served: tuple[ApiServer, AuditLog],
                                                               tmp_path: Path) -> None:
    server, audit = served
    await established(server)
    await call(server, "GET", f"{WIDGETS}/w/scale", token="wrong")
    await call(server, "GET", f"{WIDGETS}/w/scale")
    await audit.flush()
    events = [orjson.loads(line) for line in (tmp_path / "audit.log").read_bytes().splitlines()]
    refused, answered = events[-2:]
    ref = {"resource": "widgets", "namespace": "default", "name": "w", "apiGroup": "example.com",
           "apiVersion": "v1", "subresource": "scale"}
    assert (refused["objectRef"], refused["responseStatus"]["code"], refused["user"]) == (ref, 401, {})
    assert (answered["objectRef"], answered["responseStatus"]["code"]) == (ref, 200)
    assert answered["user"]["username"] == "orchestra-admin"
