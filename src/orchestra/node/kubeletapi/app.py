"""The kubelet API as an ASGI app: the containers of the pods bound to this node, for the API server.

Owns: `KubeletApp(node_name, ca, pods, runtime)`: every request is authenticated by its client
certificate (authz.py: none, or not the cluster CA's -> 401 `Unauthorized`) and authorized (a
non-administrator -> 403 with kubelet's message), then routed (paths.py): /healthz, /pods (a PodList
of the pods bound here), /containerLogs, /exec, /attach and /portForward served by the shared pod
streams (orchestra.streaming) over this node's runtime. A pod not bound here is 404 `pod does not
exist`, as kubelet answers; a path kubelet does not serve is Go's `404 page not found`.
Must not import: apiserver, app, cli, reconcilers, podman.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from cryptography import x509

from orchestra.api.errors import ApiError
from orchestra.node.agent import locate_container
from orchestra.node.kubeletapi import authz, paths
from orchestra.objects import Obj
from orchestra.runtime.base import Runtime
from orchestra.streaming.pods import PodStreams
from orchestra.streaming.request import Receive, Scope, Send, StreamRequest
from orchestra.streaming.websocket_channels import WebSocket

TEXT = b"text/plain; charset=utf-8"


class PodSource(Protocol):
    """The pods bound to this node, as the agent last saw them (NodeAgent)."""

    def pod(self, namespace: str, name: str) -> Obj | None: ...

    def pods(self) -> list[Obj]: ...


class NodeLocator:
    """The streams' ContainerLocator on the node itself: containers of this node's runtime, by label."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def locate(
        self, pod: dict[str, Any], container: str, *, previous: bool = False
    ) -> tuple[Runtime, str]:
        return await locate_container(self.runtime, pod, container, previous=previous)

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        ip = (pod.get("status") or {}).get("podIP")
        return str(ip) if ip else None

    async def connector(self, pod: dict[str, Any]) -> None:
        return None  # the pod's network is this host's: connect to its IP


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # certificate validity is calendar time


class KubeletApp:
    def __init__(
        self,
        node_name: str,
        ca: x509.Certificate,
        pods: PodSource,
        runtime: Runtime,
        *,
        now: Callable[[], dt.datetime] = _wall_clock,
    ) -> None:
        self.node_name = node_name
        self.ca = ca
        self.pods = pods
        self.streams = PodStreams(NodeLocator(runtime))
        self.now = now
        self.served = 0  # requests that passed authentication and authorization

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return  # lifespan and anything else: nothing to set up
        path, method = str(scope.get("path", "/")), str(scope.get("method", "GET"))
        caller = authz.authenticate(authz.client_certificate(scope), self.ca, self.now())
        if caller is None:
            await _refuse(scope, receive, send, 401, b"Unauthorized")
            return
        refused = authz.authorize(caller, paths.attributes(method, path, self.node_name))
        if refused is not None:
            await _refuse(scope, receive, send, 403, refused.encode())
            return
        self.served += 1
        await self._route(scope, receive, send, path)

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        request = paths.parse(path)
        if request is None:
            await _refuse(scope, receive, send, 404, b"404 page not found")
            return
        if scope["type"] == "websocket" and request.kind in ("healthz", "pods"):
            await _refuse(scope, receive, send, 400, b"this path is not served over a WebSocket")
            return
        if request.kind == "healthz":
            await _plain(send, 200, b"ok")
            return
        if request.kind == "pods":
            items = sorted(
                self.pods.pods(),
                key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"].get("name", "")),
            )
            body = orjson.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            await _plain(send, 200, body, b"application/json")
            return
        pod = self.pods.pod(request.namespace, request.pod)
        if pod is None:
            await _refuse(scope, receive, send, 404, b"pod does not exist")
            return
        req = StreamRequest.from_scope(scope, receive, send)
        req.query = paths.stream_query(req.query, request)
        try:
            await self.streams.serve(req, request.kind, pod)
        except ApiError as err:  # (over a WebSocket the streams answer errors themselves)
            await _plain(send, err.code, orjson.dumps(err.status()), b"application/json")


async def _refuse(scope: Scope, receive: Receive, send: Send, code: int, text: bytes) -> None:
    if scope["type"] == "websocket":
        ws = WebSocket(scope, receive, send)
        await ws.open()
        if not ws.closed:
            await ws.reject(code, text + b"\n", TEXT)
        return
    await _plain(send, code, text + b"\n")


async def _plain(send: Send, code: int, body: bytes, content_type: bytes = TEXT) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
