"""Streaming pod subresources: pods/log, pods/exec, pods/attach and pods/portforward (the
kubelet's half of them).

Owns: `PodStreamsHandler`, the `PodStreams` provider that `ApiServer` calls with the pod already
read, the container choice (`pick_container`), and the `ContainerLocator` contract it needs from
the node agent (which runtime holds a container, and the pod's IP). Transports:
* log: plain HTTP, `text/plain`, chunked; with `follow` it ends when the container exits or the
  client goes away.
* exec and attach (attach.py): WebSocket `v5.channel.k8s.io` (kubectl >= 1.30, the Python client)
  or `v4.channel.k8s.io`; or a raw SPDY/3.1 upgrade (kubectl <= 1.29, and every kubectl's fallback
  after a refused WebSocket upgrade) speaking `v4.channel.k8s.io` (or v3/v2/`channel.k8s.io`) as
  one SPDY stream per `streamtype`; see remotecommand.py.
* portforward: WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl >= 1.31) or the kubelet's
  websocket channel protocol (the Python client), or `portforward.k8s.io` on a raw SPDY upgrade
  (kubectl <= 1.30); see portforward.py.
Raw SPDY upgrades need the h11 server's `orchestra.raw_upgrade` extension (see h11server.py);
without it (hypercorn, with ORCHESTRA_HTTP_SERVER=hypercorn) they get a 400.
Must not import: cli, reconcilers, node; from runtime only the `base` contract.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import attrs
import orjson
import trio

from orchestra.api.errors import ApiError, BadRequest, InternalError
from orchestra.apiserver.attach import AttachOptions, serve_attach
from orchestra.apiserver.http import Receive, Request
from orchestra.apiserver.portforward import (
    ChannelPortForward,
    Connect,
    SpdyPortForward,
    StreamTransport,
    open_tcp,
)
from orchestra.apiserver.remotecommand import (
    CommandChannels,
    accept_raw,
    negotiate,
    offered_versions,
    pod_label,
    pump_input,
    raw_spdy,
    serve_channels,
    upgrade_required,
)
from orchestra.apiserver.routes import Route
from orchestra.apiserver.websocket_channels import (
    PORTFORWARD,
    SPDY_PORTFORWARD,
    V4_CHANNEL,
    WebSocket,
    choose_subprotocol,
    exit_code_status,
    success_status,
)
from orchestra.runtime.base import NotFound as ContainerGone
from orchestra.runtime.base import Runtime, RuntimeFailure

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
LOG_BATCH = 64 * 1024  # without follow, lines are sent in chunks of about this size


class ContainerLocator(Protocol):
    """What the node agent tells the API server about the pods it runs."""

    async def locate(
        self, pod: dict[str, Any], container: str, *, previous: bool = False
    ) -> tuple[Runtime, str]:
        """(runtime, container id) of `container` in `pod` (its previous instance with `previous`).

        Raise orchestra.api.errors.BadRequest with kube's message when there is nothing, e.g.
        'container "x" in pod "y" is waiting to start: ContainerCreating' or
        'previous terminated container "x" in pod "y" not found'."""
        ...

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        """The address port-forward connects to (None: the pod has no network yet)."""
        ...


def pick_container(pod: dict[str, Any], requested: str | None) -> str:
    """kube-apiserver's ValidateContainer, plus kubectl's default-container annotation."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = meta.get("name", "")
    main = [c.get("name", "") for c in spec.get("containers") or []]
    every = main + [c.get("name", "") for key in ("initContainers", "ephemeralContainers")
                    for c in spec.get(key) or []]
    if requested:
        if requested not in every:
            raise BadRequest(f"container {requested} is not valid for pod {name}")
        return requested
    default = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if default in every:
        return str(default)
    if len(main) == 1:
        return main[0]
    if not main:
        raise BadRequest(f"a container name must be specified for pod {name}")
    raise BadRequest(f"a container name must be specified for pod {name}, choose one of: [{' '.join(every)}]")


# ------------------------------------------------------------------------------------- options


def _non_negative(req: Request, name: str, minimum: int) -> int | None:
    value = req.int_arg(name)
    if value is not None and value < minimum:
        raise BadRequest(f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
    return value


@attrs.frozen
class LogOptions:
    follow: bool
    previous: bool
    timestamps: bool
    tail: int | None
    since: datetime | None
    limit_bytes: int | None

    @classmethod
    def from_request(cls, req: Request, now: datetime) -> LogOptions:
        since_seconds = _non_negative(req, "sinceSeconds", 1)
        since_time = req.arg("sinceTime")
        if since_seconds is not None and since_time:
            raise BadRequest("at most one of `sinceTime` or `sinceSeconds` may be specified")
        since = now - timedelta(seconds=since_seconds) if since_seconds is not None else None
        if since_time:
            try:
                since = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(
                    f'sinceTime: Invalid value: "{since_time}": must be an RFC 3339 time'
                ) from None
        return cls(
            follow=req.flag("follow"),
            previous=req.flag("previous"),
            timestamps=req.flag("timestamps"),
            tail=_non_negative(req, "tailLines", 0),
            since=since,
            limit_bytes=_non_negative(req, "limitBytes", 1),
        )


@attrs.frozen
class ExecOptions:
    command: tuple[str, ...]
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_request(cls, req: Request) -> ExecOptions:
        opts = cls(
            command=tuple(req.query.get("command") or ()),
            container=req.arg("container"),
            stdin=req.flag("stdin"),
            stdout=req.flag("stdout"),
            stderr=req.flag("stderr"),
            tty=req.flag("tty"),
        )
        if not opts.command:
            raise BadRequest("you must specify at least 1 command")
        if not (opts.stdin or opts.stdout or opts.stderr):
            raise BadRequest("you must specify at least one of stdin, stdout, stderr")
        return opts


# ------------------------------------------------------------------------------------- handler


def _wall_clock() -> datetime:
    return datetime.now(UTC)  # `sinceSeconds` is calendar time: log timestamps are wall-clock


class PodStreamsHandler:
    """`PodStreams` for ApiServer: `PodStreamsHandler(locator)`."""

    def __init__(self, locator: ContainerLocator, *, connect: Connect = open_tcp,
                 now: Callable[[], datetime] = _wall_clock) -> None:
        self._locator = locator
        self._connect = connect  # port-forward's way to reach a pod (tests: a fake network)
        self._now = now

    async def handle(self, req: Request, route: Route, pod: dict[str, Any]) -> None:
        ws = WebSocket(req.scope, req.receive, req.send) if req.scope["type"] == "websocket" else None
        try:
            if ws is not None:
                await ws.open()
            if route.subresource == "log":
                await self._log(req, pod, ws)
            elif route.subresource == "exec":
                await self._exec(req, pod, ws)
            elif route.subresource == "attach":
                await self._attach(req, pod, ws)
            elif route.subresource == "portforward":
                await self._portforward(req, pod, ws)
            else:
                raise BadRequest(f"pods/{route.subresource} is not supported by orchestra")
        except ApiError as err:
            if ws is None:
                raise
            if not ws.accepted and not ws.closed:  # refuse the upgrade with a Status, as kube-apiserver does
                await ws.reject(err.code, orjson.dumps(err.status()))
            await ws.close(1011)

    # ------------------------------------------------------------------------------------ logs

    async def _log(self, req: Request, pod: dict[str, Any], ws: WebSocket | None) -> None:
        opts = LogOptions.from_request(req, self._now())
        container = pick_container(pod, req.arg("container"))
        runtime, cid = await self._locator.locate(pod, container, previous=opts.previous)
        if ws is not None:
            raise BadRequest("pods/log is served over plain HTTP only")
        started = False
        try:
            async with runtime.logs(cid, follow=opts.follow, tail=opts.tail, timestamps=opts.timestamps,
                                    since=opts.since) as lines:
                await req.send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"cache-control", b"no-cache, private"),
                        ],
                    }
                )
                started = True
                await _send_lines(req, lines, opts)
        except RuntimeFailure as exc:
            if not started:
                raise _runtime_error(pod, container, exc) from None
            # headers are out: the body just ends, as when kubelet loses the container mid-stream
        try:
            await req.send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away first; nothing to finish

    # ------------------------------------------------------------------------------------ exec

    async def _exec(self, req: Request, pod: dict[str, Any], ws: WebSocket | None) -> None:
        opts = ExecOptions.from_request(req)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise BadRequest(f"cannot exec into a container in a completed pod; current phase is {phase}")
        container = pick_container(pod, opts.container)
        runtime, cid = await self._locator.locate(pod, container)
        proto = negotiate(req, ws, "exec")
        await serve_channels(req, ws, proto, opts,
                             lambda chans: _run_exec(chans, runtime, cid, opts, pod_label(pod), container))

    # ---------------------------------------------------------------------------------- attach

    async def _attach(self, req: Request, pod: dict[str, Any], ws: WebSocket | None) -> None:
        opts = AttachOptions.from_request(req)
        container = pick_container(pod, opts.container)
        runtime, cid = await self._locator.locate(pod, container)
        await serve_attach(req, ws, pod, container, runtime, cid, opts)

    # ----------------------------------------------------------------------------- portforward

    async def _portforward(self, req: Request, pod: dict[str, Any], ws: WebSocket | None) -> None:
        ip = self._locator.pod_ip(pod)
        name = (pod.get("metadata") or {}).get("name", "")
        if not ip:
            raise BadRequest(f"unable to forward ports: pod {name} has no IP address yet")
        label = pod_label(pod)
        if ws is None:
            if raw_spdy(req):
                if PORTFORWARD not in offered_versions(req):
                    raise BadRequest(
                        f"unable to upgrade: none of the offered protocols {offered_versions(req)} "
                        f"is supported; supported protocols: [{PORTFORWARD}]"
                    )
                stream = await accept_raw(req, PORTFORWARD)
                try:
                    await SpdyPortForward(StreamTransport(stream), ip, label, self._connect).run()
                finally:
                    await stream.aclose()
                return
            raise upgrade_required(req, "portforward")
        if SPDY_PORTFORWARD in ws.offered:
            await ws.accept(SPDY_PORTFORWARD)
            await SpdyPortForward(ws, ip, label, self._connect).run()
            await ws.close()
            return
        ports = _ports(req)
        proto = choose_subprotocol(ws.offered, (V4_CHANNEL, PORTFORWARD))
        if ws.offered and proto is None:
            raise BadRequest(f"unable to upgrade: none of the offered protocols {ws.offered} is supported; "
                             f"supported protocols: [{SPDY_PORTFORWARD} {V4_CHANNEL} {PORTFORWARD}]")
        await ws.accept(proto)
        await ChannelPortForward(ws, ip, label, ports, self._connect).run()


# ----------------------------------------------------------------------------------------- log


async def _send_lines(req: Request, lines: AsyncIterator[bytes], opts: LogOptions) -> None:
    remaining = opts.limit_bytes if opts.limit_bytes is not None else math.inf
    batch = bytearray()
    async with trio.open_nursery() as nursery:
        if opts.follow:  # otherwise the output ends by itself; sends to a gone client are dropped
            nursery.start_soon(_cancel_on_disconnect, req.receive, nursery.cancel_scope)
        async with _closing(lines) as it:
            async for line in it:
                if len(line) > remaining:
                    line = line[: int(remaining)]
                remaining -= len(line)
                batch += line
                if opts.follow or len(batch) >= LOG_BATCH or remaining <= 0:
                    await req.send({"type": "http.response.body", "body": bytes(batch), "more_body": True})
                    batch.clear()
                if remaining <= 0:
                    break
        if batch:
            await req.send({"type": "http.response.body", "body": bytes(batch), "more_body": True})
        nursery.cancel_scope.cancel()


def _closing(it: AsyncIterator[bytes]) -> Any:
    """aclosing() for async generators (so a `break` finalizes them now); a no-op wrapper otherwise."""
    if hasattr(it, "aclose"):
        return aclosing(it)  # type: ignore[type-var]
    return _Passthrough(it)


@attrs.frozen
class _Passthrough:
    it: AsyncIterator[bytes]

    async def __aenter__(self) -> AsyncIterator[bytes]:
        return self.it

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


# ---------------------------------------------------------------------------------------- exec


async def _run_exec(chans: CommandChannels, runtime: Runtime, cid: str, opts: ExecOptions,
                    pod_label: str, container: str) -> None:
    with trio.CancelScope() as gone:  # cancelled when the client disconnects: no status to send
        try:
            async with (runtime.exec(cid, opts.command, stdin=opts.stdin, tty=opts.tty) as session,
                        trio.open_nursery() as nursery):
                nursery.start_soon(partial(pump_input, chans, session, stdin=opts.stdin, gone=gone))
                async for stream, data in session:
                    if (stream == 1 and opts.stdout) or (stream == 2 and opts.stderr and not opts.tty):
                        await chans.send(stream, data)  # with a TTY kubectl knows no channel 2
                code = await session.wait()
                nursery.cancel_scope.cancel()
            status = success_status() if code == 0 else exit_code_status(opts.command, code)
        except RuntimeFailure as exc:
            status = InternalError(
                f"error executing command in container {container} of pod {pod_label}: {exc}"
            ).status()
        await chans.send_status(status)


# -------------------------------------------------------------------------------------- helpers


def _ports(req: Request) -> list[int]:
    ports: list[int] = []
    for raw in (req.query.get("ports") or []) + (req.query.get("port") or []):
        for part in raw.split(","):
            if not part.strip().isdigit() or not 0 < int(part) < 65536:
                raise BadRequest(f"invalid port: {part!r}")
            ports.append(int(part))
    if not ports:
        raise BadRequest('query parameter "port" is required')
    return ports


def _runtime_error(pod: dict[str, Any], container: str, exc: RuntimeFailure) -> ApiError:
    name = (pod.get("metadata") or {}).get("name", "")
    if isinstance(exc, ContainerGone):
        return BadRequest(f'container "{container}" in pod "{name}" is not available')
    return InternalError(f"Internal error occurred: {exc}")

