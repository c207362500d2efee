"""The Runtime contract's stream calls (logs, exec, attach) and port-forward, over a node's kubelet API.

Owns: `KubeletRuntime(dialer, endpoint, previous=)`, whose container ids are "namespace/pod/container"
(the kubelet finds the container itself), and `RemoteContainers(dialer, get_node)`, the
ContainerLocator part for pods of nodes that are not in this process: the node's kubelet endpoint
(dial.py), kube-apiserver's own checks before it calls a kubelet (the container is waiting: 400 with
kube's message), and a dial before the client's upgrade is answered (unreachable: DialError, 500
"error dialing backend: ..."). The pod streams (orchestra.streaming) then talk to KubeletRuntime as
to any runtime.
Must not import: cli, app, reconcilers, node, net; from runtime only the `base` contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import trio

from orchestra.api.errors import ApiError, BadRequest
from orchestra.apiserver.kubelet.dial import KubeletDialer, KubeletEndpoint
from orchestra.apiserver.kubelet.sessions import (
    ChannelSession,
    KubeletRefusal,
    PortForwardStream,
    http_get,
    kubelet_failure,
    lines_of,
)
from orchestra.apiserver.kubelet.wsclient import WsClient, WsRejected, open_websocket
from orchestra.streaming.websocket_channels import PORTFORWARD, V4_CHANNEL, V5_CHANNEL

GetNode = Callable[[str], Awaitable[dict[str, Any] | None]]


def _path(kind: str, container_id: str) -> str:
    return f"/{kind}/" + "/".join(quote(part, safe="") for part in container_id.split("/"))


class KubeletRuntime:
    def __init__(self, dialer: KubeletDialer, endpoint: KubeletEndpoint, *, previous: bool = False) -> None:
        self.dialer = dialer
        self.endpoint = endpoint
        self.previous = previous

    @asynccontextmanager
    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: datetime | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        query: list[tuple[str, str]] = [
            (k, "true")
            for k, on in (("follow", follow), ("previous", self.previous), ("timestamps", timestamps))
            if on
        ]
        if tail is not None:
            query.append(("tailLines", str(tail)))
        if since is not None:
            query.append(("sinceTime", since.isoformat().replace("+00:00", "Z")))
        target = _path("containerLogs", container_id) + (f"?{urlencode(query)}" if query else "")
        stream = await self.dialer.dial(self.endpoint)
        async with stream:
            body = http_get(stream, self.endpoint.netloc, target)
            try:
                first = await anext(body, None)  # a refusal raises here, before the caller answers its client
            except KubeletRefusal as exc:
                if exc.status == 400:  # kubelet's own checks (e.g. "is waiting to start"): kube's 400
                    raise BadRequest(str(exc)) from None
                raise

            async def chunks() -> AsyncIterator[bytes]:
                if first is not None:
                    yield first
                async for chunk in body:
                    yield chunk

            yield lines_of(chunks())

    async def _channels(
        self, kind: str, container_id: str, query: list[tuple[str, str]], protocols: Sequence[str]
    ) -> WsClient:
        stream = await self.dialer.dial(self.endpoint)
        try:
            return await open_websocket(
                stream, self.endpoint.netloc, f"{_path(kind, container_id)}?{urlencode(query)}", protocols
            )
        except WsRejected as exc:
            await trio.aclose_forcefully(stream)
            raise kubelet_failure(exc.status, exc.body) from None
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    @asynccontextmanager
    async def exec(
        self, container_id: str, cmd: Sequence[str], *, stdin: bool = False, tty: bool = False
    ) -> AsyncIterator[ChannelSession]:
        query = [("command", c) for c in cmd] + _stream_flags(stdin, True, not tty, tty)
        ws = await self._channels("exec", container_id, query, (V5_CHANNEL, V4_CHANNEL))
        try:
            yield ChannelSession(ws)
        finally:
            await ws.aclose()

    @asynccontextmanager
    async def attach(
        self,
        container_id: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
    ) -> AsyncIterator[ChannelSession]:
        query = _stream_flags(stdin, stdout, stderr, tty)
        ws = await self._channels("attach", container_id, query, (V5_CHANNEL, V4_CHANNEL))
        try:
            yield ChannelSession(ws, attach=True)
        finally:
            await ws.aclose()

    async def open_port(self, pod_ref: str, port: int) -> trio.abc.Stream:
        """A connection to `port` of the pod "namespace/name", through the kubelet's port-forward."""
        try:
            ws = await self._channels("portForward", pod_ref, [("port", str(port))], (PORTFORWARD,))
        except (KubeletRefusal, ApiError) as exc:
            raise OSError(str(exc)) from None  # port-forward reports a failed connect as an OSError
        return PortForwardStream(ws)


def _stream_flags(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> list[tuple[str, str]]:
    """kubelet's exec/attach query names, as kube-apiserver sends them."""
    return [
        (name, "1")
        for name, on in (("input", stdin), ("output", stdout), ("error", stderr), ("tty", tty))
        if on
    ]


class RemoteContainers:
    """Where the containers of pods on other nodes are: behind each node's kubelet API."""

    def __init__(self, dialer: KubeletDialer, get_node: GetNode) -> None:
        self.dialer = dialer
        self.get_node = get_node

    async def endpoint(self, pod: dict[str, Any]) -> KubeletEndpoint | None:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return KubeletEndpoint.of_node(await self.get_node(node)) if node else None

    async def locate(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> tuple[Any, str]:
        meta = pod.get("metadata") or {}
        endpoint = await self.endpoint(pod)
        if endpoint is None or (not previous and _waiting(pod, container)):
            reason = _waiting(pod, container) or "ContainerCreating"
            raise BadRequest(
                f'container "{container}" in pod "{meta.get("name", "")}" is waiting to start: {reason}'
            )
        await self.dialer.check(endpoint)
        return KubeletRuntime(
            self.dialer, endpoint, previous=previous
        ), f"{meta.get('namespace', '')}/{meta.get('name', '')}/{container}"

    async def connector(self, pod: dict[str, Any]) -> Callable[[str, int], Awaitable[trio.abc.Stream]] | None:
        endpoint = await self.endpoint(pod)
        if endpoint is None:
            return None
        await self.dialer.check(endpoint)
        meta = pod.get("metadata") or {}
        runtime = KubeletRuntime(self.dialer, endpoint)
        ref = f"{meta.get('namespace', '')}/{meta.get('name', '')}"

        async def connect(ip: str, port: int) -> trio.abc.Stream:
            del ip  # the kubelet reaches the pod from its node
            return await runtime.open_port(ref, port)

        return connect


def _waiting(pod: dict[str, Any], container: str) -> str:
    """The waiting reason the pod's status gives its container ("" when it has run)."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if isinstance(cs, dict) and cs.get("name") == container:
                state = cs.get("state") or {}
                if "waiting" in state and not cs.get("lastState", {}).get("terminated"):
                    return str((state.get("waiting") or {}).get("reason") or "ContainerCreating")
                return ""
    return "ContainerCreating"
