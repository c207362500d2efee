"""pods/proxy, services/proxy and nodes/proxy over HTTP: the API server (orchestra's h11 server) in
the test's trio loop, a backend (an ASGI app on the same h11 server) behind the pod IP, and the
proxy's dialer mapping the pod's and node's addresses to it. Also componentstatuses and the
discovery entries of the subresources clients probe."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

from orchestra.api.request.core import ApiCore
from orchestra.apiserver.h11server import serve_asgi
from orchestra.apiserver.proxy import ProxyHandler, split_scheme_name_port
from orchestra.apiserver.proxyhttp import rewrite_location
from orchestra.apiserver.serve import serve_api
from orchestra.apiserver.server import ApiServer
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

POD_IP = "10.244.0.7"
NODE_IP = "192.0.2.9"
Obj = dict[str, Any]


@attrs.define
class Backend:
    """What the backend saw, and a gate its streaming answer waits on."""

    requests: list[Obj] = attrs.field(factory=list)
    gate: trio.Event = attrs.field(factory=trio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path = scope["raw_path"].decode()
        self.requests.append(
            {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "headers": [(k.decode(), v.decode()) for k, v in scope["headers"]],
                "body": body,
            }
        )
        if path.startswith("/redirect"):
            where = dict(h for h in self.requests[-1]["headers"]).get("x-to", "/target")
            await send(
                {"type": "http.response.start", "status": 302, "headers": [(b"location", where.encode())]}
            )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/stream":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            await self.gate.wait()
            await send({"type": "http.response.body", "body": b"second\n"})
        else:
            headers = [
                (b"content-type", b"application/json"),
                (b"x-kept", b"1"),
                (b"keep-alive", b"timeout=5"),
                (b"access-control-allow-origin", b"*"),
            ]
            payload = json.dumps({"path": path, "body": body.decode()}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": payload})


@attrs.define
class Harness:
    core: ApiCore
    http: httpx.AsyncClient
    backend: Backend
    dialled: list[tuple[str, int]]


@asynccontextmanager
async def open_harness() -> AsyncIterator[Harness]:
    store = Store.open_memory()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            core = ApiCore(store)
            await bootstrap(core)
            backend = Backend()
            bound = await nursery.start(
                functools.partial(serve_asgi, ssl_context=None), backend, "127.0.0.1", 0
            )
            backend_port = int(bound[0].rsplit(":", 1)[1])
            dialled: list[tuple[str, int]] = []

            async def connect(host: str, port: int) -> trio.abc.Stream:
                dialled.append((host, port))
                if (host, port) in ((POD_IP, 8080), (NODE_IP, 8080)):
                    return await trio.open_tcp_stream("127.0.0.1", backend_port)
                raise ConnectionRefusedError(111, "Connection refused")

            server = ApiServer(core, token=None)
            server.proxy = ProxyHandler(core, connect=connect, choose=lambda options: options[0])
            server.ready = True
            url = next(
                b for b in await nursery.start(serve_api, server, "127.0.0.1", 0) if b.startswith("http")
            )
            await _objects(core)
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield Harness(core, http, backend, dialled)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


async def _objects(core: ApiCore) -> None:
    def rt(kind: str) -> Any:
        return core.registry.by_kind(kind)

    pod = (
        await core.create(
            rt("Pod"),
            "default",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 8080}]}]
                },
            },
        )
    ).obj
    pod["status"] = {"phase": "Running", "podIP": POD_IP, "podIPs": [{"ip": POD_IP}]}
    await core.update(rt("Pod"), "default", "web", pod, subresource="status")
    await core.create(
        rt("Pod"),
        "default",
        {"metadata": {"name": "noip"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    )
    await core.create(
        rt("Service"),
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    )
    await core.create(
        rt("Endpoints"),
        "default",
        {
            "metadata": {"name": "web"},
            "subsets": [
                {
                    "addresses": [
                        {"ip": POD_IP, "targetRef": {"kind": "Pod", "name": "web", "namespace": "default"}}
                    ],
                    "ports": [{"name": "http", "port": 8080}],
                }
            ],
        },
    )
    await core.create(
        rt("Service"), "default", {"metadata": {"name": "empty"}, "spec": {"ports": [{"port": 80}]}}
    )
    await core.create(rt("Endpoints"), "default", {"metadata": {"name": "empty"}})
    node = (await core.create(rt("Node"), None, {"metadata": {"name": "n1"}})).obj
    node["status"] = {
        "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": "n1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    }
    await core.update(rt("Node"), None, "n1", node, subresource="status")


PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"


async def test_pod_proxy_forwards_path_query_and_headers_as_kube_does() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get(
                f"{PODS}/web/proxy/a/b%20c/?x=1&y=2",
                headers={
                    "Authorization": "Bearer secret",
                    "Connection": "keep-alive, X-Drop",
                    "X-Drop": "1",
                    "X-Forwarded-For": "203.0.113.5",
                    "Accept": "text/plain",
                },
            )
            assert r.status_code == 200 and r.json()["path"] == "/a/b%20c/"
            assert r.headers["x-kept"] == "1" and r.headers["content-type"] == "application/json"
            assert "keep-alive" not in r.headers and "access-control-allow-origin" not in r.headers
            seen = h.backend.requests[-1]
            headers = dict(seen["headers"])
            assert seen["query"] == "x=1&y=2" and h.dialled[-1] == (POD_IP, 8080)
            assert "authorization" not in headers and "x-drop" not in headers
            assert headers["x-forwarded-for"] == "203.0.113.5, 127.0.0.1"
            assert headers["x-forwarded-uri"] == f"{PODS}/web/proxy/a/b%20c/"
            assert headers["host"] == h.http.base_url.netloc.decode() and headers["accept"] == "text/plain"


async def test_bodies_go_through_and_responses_stream() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.post(f"{PODS}/web:8080/proxy/echo", content=b"x" * 100_000)
            assert r.json() == {"path": "/echo", "body": "x" * 100_000}

            async def chunks() -> AsyncIterator[bytes]:
                for part in (b"one ", b"two"):
                    yield part

            r = await h.http.put(f"{PODS}/web/proxy/echo", content=chunks())  # chunked request body
            assert r.json()["body"] == "one two"
            lines = []
            async with h.http.stream("GET", f"{PODS}/web/proxy/stream") as streamed:
                async for line in streamed.aiter_lines():  # read to the end: httpx's generators close then
                    lines.append(line)
                    if line == "first":  # it arrived before the backend sent the rest
                        h.backend.gate.set()
            assert lines == ["first", "second"]


REDIRECTS = [
    ("/target", f"{PODS}/web/proxy/target"),
    ("/target/", f"{PODS}/web/proxy/target/"),
    (f"http://{POD_IP}:8080/abs?q=1", f"{PODS}/web/proxy/abs?q=1"),
    ("http://elsewhere.example/x", "http://elsewhere.example/x"),
    ("relative/y", "relative/y"),
    (f"{PODS}/web/proxy/already", f"{PODS}/web/proxy/already"),
]


@pytest.mark.parametrize(("location", "expected"), REDIRECTS, ids=[r[0] for r in REDIRECTS])
async def test_redirects_into_the_backend_come_back_through_the_proxy(location: str, expected: str) -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get(f"{PODS}/web/proxy/redirect", headers={"X-To": location})
            assert r.status_code == 302 and r.headers["location"] == expected


def test_location_keeps_the_requests_own_host() -> None:
    assert (
        rewrite_location("https://api.local:6443/x", "10.0.0.1:80", "api.local:6443", "/p/proxy")
        == "https://api.local:6443/p/proxy/x"
    )


async def test_an_empty_path_redirects_to_the_trailing_slash() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get(f"{SERVICES}/web:80/proxy?a=b")
            assert r.status_code == 301 and r.headers["location"] == f"{SERVICES}/web:80/proxy/?a=b"
            r = await h.http.post(f"{SERVICES}/web:80/proxy", content=b"{}")  # not GET/HEAD: sent on as "/"
            assert r.status_code == 200 and r.json()["path"] == "/"


SERVICE_NAMES = ["web", "web:80", "web:http", "http:web:80", "http:web:http"]


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_service_proxy_reaches_a_ready_endpoint(name: str) -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            if name == "web":  # no port: only an unnamed service port would do
                r = await h.http.get(f"{SERVICES}/{name}/proxy/")
                assert (
                    r.status_code == 503 and r.json()["message"] == 'no endpoints available for service "web"'
                )
                return
            r = await h.http.get(f"{SERVICES}/{name}/proxy/index")
            assert r.status_code == 200 and r.json()["path"] == "/index"
            assert h.dialled[-1] == (POD_IP, 8080)


FAILURES = [
    (f"{SERVICES}/web:81/proxy/", 503, "ServiceUnavailable", 'no service port 81 found for service "web"'),
    (f"{SERVICES}/empty:80/proxy/", 503, "ServiceUnavailable", 'no endpoints available for service "empty"'),
    (f"{SERVICES}/nope:80/proxy/", 404, "NotFound", 'services "nope" not found'),
    (f"{SERVICES}/a:b:c:d/proxy/", 400, "BadRequest", 'invalid service request "a:b:c:d"'),
    (f"{SERVICES}/ftp:web:80/proxy/", 400, "BadRequest", 'invalid service request "ftp:web:80"'),
    (f"{PODS}/noip/proxy/", 400, "BadRequest", "address not allowed"),
    (
        f"{PODS}/web:9999/proxy/",
        503,
        "ServiceUnavailable",
        f"error trying to reach service: dial tcp {POD_IP}:9999: connect: connection refused",
    ),
    (
        "/api/v1/nodes/n1/proxy/stats",
        503,
        "ServiceUnavailable",
        f"error trying to reach service: dial tcp {NODE_IP}:10250: connect: connection refused",
    ),
    ("/api/v1/nodes/nope/proxy/", 404, "NotFound", 'nodes "nope" not found'),
]


@pytest.mark.parametrize(("path", "code", "reason", "message"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_proxy_failures_are_kubes_statuses(path: str, code: int, reason: str, message: str) -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get(path)
            assert (r.status_code, r.json()["reason"], r.json()["message"]) == (code, reason, message)


async def test_node_proxy_to_another_port_of_the_node() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get("/api/v1/nodes/n1:8080/proxy/healthz")
            assert (
                r.status_code == 200 and r.json()["path"] == "/healthz" and h.dialled[-1] == (NODE_IP, 8080)
            )
            await h.http.get("/api/v1/nodes/n1/proxy/")  # the kubelet port goes over https
            assert h.dialled[-1] == (NODE_IP, 10250)


NAMES = [
    ("web", ("", "web", "")),
    ("web:80", ("", "web", "80")),
    ("https:web:443", ("https", "web", "443")),
    (":80", None),
    ("x:web:80", None),
    ("a:b:c:d", None),
]


@pytest.mark.parametrize(("name", "expected"), NAMES, ids=[n for n, _ in NAMES])
def test_split_scheme_name_port(name: str, expected: tuple[str, str, str] | None) -> None:
    assert split_scheme_name_port(name) == expected


# --- componentstatuses and discovery ------------------------------------------------------------------

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


async def test_component_statuses() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            r = await h.http.get("/api/v1/componentstatuses")
            assert r.headers["warning"] == '299 - "v1 ComponentStatus is deprecated in v1.19+"'
            assert r.json()["kind"] == "ComponentStatusList"
            assert r.json()["items"] == [
                {
                    "kind": "ComponentStatus",
                    "apiVersion": "v1",
                    "metadata": {"name": "etcd-0", "creationTimestamp": None},
                    "conditions": [
                        {"type": "Healthy", "status": "True", "message": '{"health":"true","reason":""}'}
                    ],
                }
            ]
            r = await h.http.get("/api/v1/componentstatuses/etcd-0", headers={"Accept": TABLE})
            assert r.json()["rows"][0]["cells"] == ["etcd-0", "Healthy", '{"health":"true","reason":""}', ""]
            r = await h.http.get("/api/v1/componentstatuses/scheduler")
            assert r.status_code == 404 and r.json()["message"] == 'componentstatuses "scheduler" not found'
            r = await h.http.post("/api/v1/componentstatuses", json={"metadata": {"name": "x"}})
            assert r.status_code == 405


async def test_discovery_lists_the_subresources_clients_probe() -> None:
    with trio.fail_after(20):
        async with open_harness() as h:
            core = {r["name"]: r for r in (await h.http.get("/api/v1")).json()["resources"]}
            assert core["namespaces/finalize"]["verbs"] == ["update"]
            assert core["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
            for name, kind in (
                ("pods/proxy", "PodProxyOptions"),
                ("services/proxy", "ServiceProxyOptions"),
                ("nodes/proxy", "NodeProxyOptions"),
            ):
                assert core[name]["kind"] == kind and "delete" in core[name]["verbs"]
            assert core["replicationcontrollers"]["shortNames"] == ["rc"]
            assert core["componentstatuses"]["verbs"] == ["get", "list"]
            groups = {g["name"] for g in (await h.http.get("/apis")).json()["groups"]}
            assert {"events.k8s.io", "apiregistration.k8s.io"} <= groups


async def test_ephemeral_containers_over_http() -> None:
    """What `kubectl debug` sends: a strategic merge patch of the pod to pods/NAME/ephemeralcontainers;
    a missing pod's 404 names it in details (kubectl reads details.name and panicked without it)."""
    with trio.fail_after(20):
        async with open_harness() as h:
            url = f"{PODS}/web/ephemeralcontainers"
            got = await h.http.get(url)
            assert got.status_code == 200 and got.json()["kind"] == "Pod"
            debugger = {
                "name": "debugger",
                "image": "busybox",
                "stdin": True,
                "tty": True,
                "targetContainerName": "c",
            }
            r = await h.http.patch(
                url,
                json={"spec": {"ephemeralContainers": [debugger]}},
                headers={"Content-Type": "application/strategic-merge-patch+json"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["spec"]["ephemeralContainers"][0]["name"] == "debugger"
            pod = r.json()
            pod["spec"]["ephemeralContainers"].append({"name": "second", "image": "busybox"})
            r = await h.http.put(url, json=pod)
            assert [c["name"] for c in r.json()["spec"]["ephemeralContainers"]] == ["debugger", "second"]
            r = await h.http.patch(
                url,
                json=[{"op": "remove", "path": "/spec/ephemeralContainers/0"}],
                headers={"Content-Type": "application/json-patch+json"},
            )
            assert (
                r.status_code == 422
                and r.json()["details"]["causes"][0]["field"] == "spec.ephemeralContainers"
            )
            missing = await h.http.patch(
                f"{PODS}/nope/ephemeralcontainers",
                json={},
                headers={"Content-Type": "application/strategic-merge-patch+json"},
            )
            assert missing.status_code == 404 and missing.json()["details"]["name"] == "nope"
            fresh = (await h.http.get(f"{PODS}/web")).json()
            fresh["spec"]["ephemeralContainers"].append({"name": "third", "image": "busybox"})
            plain = await h.http.put(f"{PODS}/web", json=fresh)
            assert plain.status_code == 422  # a plain pod update may not change ephemeral containers
