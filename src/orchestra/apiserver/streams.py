"""Streaming pod subresources: pods/log, pods/exec and pods/portforward (the kubelet's half of them).

Owns: `PodStreamsHandler`, the `PodStreams` provider that `ApiServer` calls with the pod already
read, and the `ContainerLocator` contract it needs from the node agent (which runtime holds a
container, and the pod's IP). Transports:
* log: plain HTTP, `text/plain`, chunked; with `follow` it ends when the container exits or the
  client goes away.
* exec: WebSocket `v5.channel.k8s.io` (kubectl >= 1.30, the Python client) or `v4.channel.k8s.io`.
* portforward: WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl >= 1.31) or the kubelet's
  websocket channel protocol (the Python client); see portforward.py.
Raw SPDY/3.1 upgrades (kubectl <= 1.29 exec, <= 1.30 port-forward, and every kubectl's fallback
after a refused WebSocket upgrade) are served through the h11 server's `orchestra.raw_upgrade`
extension (see h11server.py): exec speaks `v4.channel.k8s.io` (or v3/v2/`channel.k8s.io`) as one
SPDY stream per `streamtype` (`SpdyChannels`), port-forward speaks `portforward.k8s.io` with
`SpdyPortForward` over the raw bytes. Without the extension (hypercorn) they get a 400.
Must not import: cli, reconcilers, node; from runtime only the `base` contract.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs
import orjson
import trio

from orchestra.api.errors import ApiError, BadRequest, InternalError
from orchestra.apiserver import spdy
from orchestra.apiserver.http import Receive, Request
from orchestra.apiserver.portforward import (
    ChannelPortForward,
    Connect,
    SpdyPortForward,
    StreamTransport,
    Transport,
    open_tcp,
)
from orchestra.apiserver.routes import Route
from orchestra.apiserver.websocket_channels import (
    PORTFORWARD,
    SPDY_PORTFORWARD,
    V4_CHANNEL,
    V5_CHANNEL,
    Channel,
    ChannelSocket,
    WebSocket,
    choose_subprotocol,
    exit_code_status,
    success_status,
)
from orchestra.runtime.base import ExecSession, Runtime, RuntimeFailure
from orchestra.runtime.base import NotFound as ContainerGone

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
LOG_BATCH = 64 * 1024  # without follow, lines are sent in chunks of about this size
RAW_UPGRADE = "orchestra.raw_upgrade"
SPDY_EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
SPDY_STREAMS_TIMEOUT = 30.0  # how long the client may take to open its exec streams (kubelet: 30s)
_STREAM_CHANNELS = {"stdin": Channel.STDIN, "stdout": Channel.STDOUT, "stderr": Channel.STDERR,
                    "error": Channel.ERROR, "resize": Channel.RESIZE}


class ContainerLocator(Protocol):
    """What the node agent tells the API server about the pods it runs."""

    async def locate(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> tuple[Runtime, str]:
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
                raise BadRequest(f'sinceTime: Invalid value: "{since_time}": must be an RFC 3339 time') from None
        return cls(follow=req.flag("follow"), previous=req.flag("previous"), timestamps=req.flag("timestamps"),
                   tail=_non_negative(req, "tailLines", 0), since=since,
                   limit_bytes=_non_negative(req, "limitBytes", 1))


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
        opts = cls(command=tuple(req.query.get("command") or ()), container=req.arg("container"),
                   stdin=req.flag("stdin"), stdout=req.flag("stdout"), stderr=req.flag("stderr"), tty=req.flag("tty"))
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
            elif route.subresource == "portforward":
                await self._portforward(req, pod, ws)
            else:
                raise BadRequest(f"pods/{route.subresource} is not supported by orchestra (use pods/exec)")
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
                await req.send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-cache, private")]})
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
        if ws is None:
            if _raw_spdy(req):
                await self._spdy_exec(req, pod, runtime, cid, opts, container)
                return
            raise _upgrade_required(req, "exec")
        proto = choose_subprotocol(ws.offered, (V5_CHANNEL, V4_CHANNEL))
        if proto is None:
            raise BadRequest(f"unable to upgrade: none of the offered protocols {ws.offered} is supported; "
                             f"supported protocols: [{V5_CHANNEL} {V4_CHANNEL}]")
        await ws.accept(proto)
        chans = ChannelSocket(ws)
        await _run_exec(chans, runtime, cid, opts, _pod_label(pod), container)
        await chans.ws.close(1000)

    async def _spdy_exec(self, req: Request, pod: dict[str, Any], runtime: Runtime, cid: str,
                         opts: ExecOptions, container: str) -> None:
        offered = _offered_versions(req)
        proto = next((p for p in SPDY_EXEC_PROTOCOLS if p in offered), None)
        if proto is None:
            raise BadRequest(f"unable to upgrade: none of the offered protocols {offered} is supported; "
                             f"supported protocols: [{' '.join(SPDY_EXEC_PROTOCOLS)}]")
        stream = await _accept_raw(req, proto)
        try:
            chans = SpdyChannels(StreamTransport(stream), opts, v4=proto == SPDY_EXEC_PROTOCOLS[0])
            await chans.serve(lambda: _run_exec(chans, runtime, cid, opts, _pod_label(pod), container))
        finally:
            await stream.aclose()

    # ----------------------------------------------------------------------------- portforward

    async def _portforward(self, req: Request, pod: dict[str, Any], ws: WebSocket | None) -> None:
        ip = self._locator.pod_ip(pod)
        name = (pod.get("metadata") or {}).get("name", "")
        if not ip:
            raise BadRequest(f"unable to forward ports: pod {name} has no IP address yet")
        label = _pod_label(pod)
        if ws is None:
            if _raw_spdy(req):
                if PORTFORWARD not in _offered_versions(req):
                    raise BadRequest(f"unable to upgrade: none of the offered protocols {_offered_versions(req)} "
                                     f"is supported; supported protocols: [{PORTFORWARD}]")
                stream = await _accept_raw(req, PORTFORWARD)
                try:
                    await SpdyPortForward(StreamTransport(stream), ip, label, self._connect).run()
                finally:
                    await stream.aclose()
                return
            raise _upgrade_required(req, "portforward")
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


class ExecChannels(Protocol):
    """What `_run_exec` talks to: a WebSocket `ChannelSocket` or a raw-SPDY `SpdyChannels`."""

    v5: bool

    async def send(self, channel: int, data: bytes) -> None: ...

    async def send_status(self, status: dict[str, Any]) -> None: ...

    async def receive(self) -> tuple[int, bytes] | None: ...


async def _run_exec(chans: ExecChannels, runtime: Runtime, cid: str, opts: ExecOptions,
                    pod_label: str, container: str) -> None:
    with trio.CancelScope() as gone:  # cancelled when the client disconnects: no status to send
        try:
            async with (runtime.exec(cid, opts.command, stdin=opts.stdin, tty=opts.tty) as session,
                        trio.open_nursery() as nursery):
                nursery.start_soon(_exec_input, chans, session, opts, gone)
                async for stream, data in session:
                    if (stream == 1 and opts.stdout) or (stream == 2 and opts.stderr and not opts.tty):
                        await chans.send(stream, data)  # with a TTY kubectl knows no channel 2
                code = await session.wait()
                nursery.cancel_scope.cancel()
            status = success_status() if code == 0 else exit_code_status(opts.command, code)
        except RuntimeFailure as exc:
            status = InternalError(f"error executing command in container {container} of pod {pod_label}: {exc}").status()
        await chans.send_status(status)


async def _exec_input(chans: ExecChannels, session: ExecSession, opts: ExecOptions, gone: trio.CancelScope) -> None:
    while (item := await chans.receive()) is not None:
        channel, data = item
        try:
            if channel == Channel.STDIN and opts.stdin and data:
                await session.send_stdin(data)
            elif channel == Channel.RESIZE:
                for width, height in _resizes(data):
                    await session.resize(width, height)
            elif channel == Channel.CLOSE and chans.v5 and data[:1] == bytes((Channel.STDIN,)):
                await session.close_stdin()
        except (trio.BrokenResourceError, trio.ClosedResourceError, RuntimeFailure):
            pass  # the process already ended or closed its stdin: input is moot, output tells the rest
    gone.cancel()


def _resizes(data: bytes) -> list[tuple[int, int]]:
    """The resize channel is a stream of JSON objects {"Width": w, "Height": h}."""
    text, out, pos = data.decode(errors="replace"), [], 0
    decoder = json.JSONDecoder()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict) and obj.get("Width") and obj.get("Height"):
            out.append((int(obj["Width"]), int(obj["Height"])))
    return out


# ------------------------------------------------------------------------------ exec over SPDY


class SpdyChannels:
    """Exec's channels over a raw SPDY/3.1 session: one client-opened stream per `streamtype`.

    `serve(body)` reads frames, answers each SYN_STREAM, waits for the streams the options call
    for (error, and stdin/stdout/stderr as asked; resize comes when it comes), then runs `body`.
    Input (stdin DATA, stdin FIN as a v5-style CLOSE, resize JSON) comes out of `receive()`;
    `send_status` writes the error stream and FINs every stream."""

    v5 = True  # `_exec_input` then treats (CLOSE, stdin) as "close stdin", which stdin's FIN becomes

    def __init__(self, transport: Transport, opts: ExecOptions, *, v4: bool = True) -> None:
        self._t = transport
        self._v4 = v4
        self._conn = spdy.Connection()
        self._lock = trio.Lock()
        self._ids: dict[int, int] = {}  # channel -> stream id
        self._channels: dict[int, int] = {}  # stream id -> channel
        self._want = {Channel.ERROR} | ({Channel.STDIN} if opts.stdin else set()) \
            | ({Channel.STDOUT} if opts.stdout else set()) | ({Channel.STDERR} if opts.stderr and not opts.tty else set())
        self._ready = trio.Event()
        self._in_send, self._in_recv = trio.open_memory_channel[tuple[int, bytes]](64)
        self._closed = False

    async def serve(self, body: Callable[[], Any]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read)
            with trio.move_on_after(SPDY_STREAMS_TIMEOUT):
                await self._ready.wait()
            if self._ready.is_set():
                await body()
            nursery.cancel_scope.cancel()

    async def _write(self, *frames: spdy.Frame) -> None:
        async with self._lock:  # header compression state must follow the wire order
            if not self._closed:
                try:
                    await self._t.send(self._conn.encode_all(frames))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._closed = True

    async def _read(self) -> None:
        async with self._in_send:
            try:
                while (data := await self._t.receive()) is not None:
                    for frame in self._conn.receive_data(data):
                        if not await self._on_frame(frame):
                            return
            except spdy.ProtocolError:
                await self._write(spdy.GoAway(0, 1))

    async def _on_frame(self, frame: spdy.Frame) -> bool:
        match frame:
            case spdy.SynStream(stream_id):
                channel = _STREAM_CHANNELS.get(frame.header("streamtype") or "")
                if channel is None or channel in self._ids:
                    await self._write(spdy.RstStream(stream_id, spdy.RstStatus.PROTOCOL_ERROR))
                    return True
                self._ids[channel] = stream_id
                self._channels[stream_id] = channel
                await self._write(spdy.SynReply(stream_id))
                if self._want <= self._ids.keys():
                    self._ready.set()
            case spdy.Data(stream_id, data, fin):
                target = self._channels.get(stream_id)
                if data:
                    await self._write(*self._conn.consumed(stream_id, len(data)))
                    if target in (Channel.STDIN, Channel.RESIZE):
                        await self._in_send.send((int(target or 0), data))
                if fin and target == Channel.STDIN:
                    await self._in_send.send((Channel.CLOSE, bytes((Channel.STDIN,))))
            case spdy.Ping():
                await self._write(frame)
            case spdy.GoAway():
                return False
        return True

    async def send(self, channel: int, data: bytes) -> None:
        stream_id = self._ids.get(channel)
        if stream_id is not None and data:
            await self._write(spdy.Data(stream_id, data))

    async def send_status(self, status: dict[str, Any]) -> None:
        if self._v4:
            payload = orjson.dumps(status)
        else:  # before v4 the error stream carries just a message, and nothing on success
            payload = b"" if status.get("status") == "Success" else str(status.get("message", "")).encode()
        frames: list[spdy.Frame] = [spdy.Data(sid, b"", fin=True) for ch, sid in self._ids.items()
                                    if ch in (Channel.STDOUT, Channel.STDERR)]
        error_id = self._ids[Channel.ERROR]
        if payload:
            frames.append(spdy.Data(error_id, payload))
        frames.append(spdy.Data(error_id, b"", fin=True))
        frames += [spdy.Data(sid, b"", fin=True) for ch, sid in self._ids.items()
                   if ch in (Channel.STDIN, Channel.RESIZE)]
        await self._write(*frames)

    async def receive(self) -> tuple[int, bytes] | None:
        try:
            return await self._in_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return None


# -------------------------------------------------------------------------------------- helpers


def _raw_spdy(req: Request) -> bool:
    return (RAW_UPGRADE in (req.scope.get("extensions") or {})
            and "spdy/3.1" in req.headers.get("upgrade", "").lower())


def _offered_versions(req: Request) -> list[str]:
    return [p.strip() for p in req.headers.get("x-stream-protocol-version", "").split(",") if p.strip()]


async def _accept_raw(req: Request, proto: str) -> trio.abc.Stream:
    await req.send({"type": "orchestra.raw_upgrade.accept",
                    "headers": [(b"x-stream-protocol-version", proto.encode())]})
    stream: trio.abc.Stream = req.scope["extensions"][RAW_UPGRADE]["stream"]
    return stream



def _pod_label(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}, uid {meta.get('uid', '')}"


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


def _upgrade_required(req: Request, sub: str) -> BadRequest:
    upgrade = req.headers.get("upgrade", "")
    if "spdy" in upgrade.lower():
        need = "kubectl >= 1.30" if sub == "exec" else "kubectl >= 1.31"
        return BadRequest(f"orchestra serves pods/{sub} over WebSocket only, not over {upgrade} "
                          f"(use {need}, or a client speaking the WebSocket protocols)")
    return BadRequest("Upgrade request required")


def _runtime_error(pod: dict[str, Any], container: str, exc: RuntimeFailure) -> ApiError:
    name = (pod.get("metadata") or {}).get("name", "")
    if isinstance(exc, ContainerGone):
        return BadRequest(f'container "{container}" in pod "{name}" is not available')
    return InternalError(f"Internal error occurred: {exc}")

