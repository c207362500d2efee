"""The kubelet's remote-command transport, shared by pods/exec and pods/attach.

Owns: the channels a client opens (`CommandChannels`: a WebSocket `ChannelSocket` speaking
`v5`/`v4.channel.k8s.io`, or `SpdyChannels` on a raw SPDY/3.1 upgrade, one stream per
`streamtype`), negotiating one of them before the upgrade (`negotiate`, errors as Status
responses), upgrading and running a session over them (`serve_channels`: on a WebSocket, kube's
empty "connection established" message first, `established_channel`), and pumping the
client's input (stdin, the v5 "close stdin", resize JSON) into a runtime session (`pump_input`).
Raw SPDY upgrades come through the h11 server's `orchestra.raw_upgrade` extension (h11server.py);
without it (hypercorn, with ORCHESTRA_HTTP_SERVER=hypercorn) an SPDY client gets a clear 400.
Must not import: cli, reconcilers, node; from runtime only the `base` contract.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import trio

from orchestra.api.errors import BadRequest
from orchestra.runtime.base import RuntimeFailure
from orchestra.streaming import spdy
from orchestra.streaming.portforward import StreamTransport, Transport
from orchestra.streaming.request import StreamRequest
from orchestra.streaming.websocket_channels import (
    V4_CHANNEL,
    V5_CHANNEL,
    Channel,
    ChannelSocket,
    WebSocket,
    choose_subprotocol,
)

RAW_UPGRADE = "orchestra.raw_upgrade"
SPDY_EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
SPDY_STREAMS_TIMEOUT = 30.0  # how long the client may take to open its exec streams (kubelet: 30s)
_STREAM_CHANNELS = {"stdin": Channel.STDIN, "stdout": Channel.STDOUT, "stderr": Channel.STDERR,
                    "error": Channel.ERROR, "resize": Channel.RESIZE}


class StreamFlags(Protocol):
    """The streams a client asked for (exec's and attach's query parameters)."""

    @property
    def stdin(self) -> bool: ...
    @property
    def stdout(self) -> bool: ...
    @property
    def stderr(self) -> bool: ...
    @property
    def tty(self) -> bool: ...


class CommandChannels(Protocol):
    """What a session talks to: a WebSocket `ChannelSocket` or a raw-SPDY `SpdyChannels`."""

    v5: bool

    async def send(self, channel: int, data: bytes) -> None: ...

    async def send_status(self, status: dict[str, Any]) -> None: ...

    async def receive(self) -> tuple[int, bytes] | None: ...


class InputSession(Protocol):
    """The input half of a runtime ExecSession or AttachSession."""

    async def send_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, width: int, height: int) -> None: ...


# ----------------------------------------------------------------------------- the upgrade


def negotiate(req: StreamRequest, ws: WebSocket | None, sub: str) -> str:
    """The channel protocol to speak, from what the client offered; BadRequest before any upgrade."""
    if ws is not None:
        proto = choose_subprotocol(ws.offered, (V5_CHANNEL, V4_CHANNEL))
        if proto is None:
            raise BadRequest(f"unable to upgrade: none of the offered protocols {ws.offered} is supported; "
                             f"supported protocols: [{V5_CHANNEL} {V4_CHANNEL}]")
        return proto
    if not raw_spdy(req):
        raise upgrade_required(req, sub)
    offered = offered_versions(req)
    spdy_proto = next((p for p in SPDY_EXEC_PROTOCOLS if p in offered), None)
    if spdy_proto is None:
        raise BadRequest(f"unable to upgrade: none of the offered protocols {offered} is supported; "
                         f"supported protocols: [{' '.join(SPDY_EXEC_PROTOCOLS)}]")
    return spdy_proto


async def serve_channels(req: StreamRequest, ws: WebSocket | None, proto: str, flags: StreamFlags,
                         body: Callable[[CommandChannels], Awaitable[None]]) -> None:
    """Upgrade with the negotiated `proto`, run `body` over the client's channels, then close."""
    if ws is not None:
        await ws.accept(proto)
        chans = ChannelSocket(ws)
        await chans.send(established_channel(flags), b"")
        await body(chans)
        await ws.close(1000)
        return
    stream = await accept_raw(req, proto)
    try:
        spdy_chans = SpdyChannels(StreamTransport(stream), flags, v4=proto == SPDY_EXEC_PROTOCOLS[0])
        await spdy_chans.serve(lambda: body(spdy_chans))
    finally:
        await stream.aclose()


def established_channel(flags: StreamFlags) -> int:
    """Where kube's WebSocket servers (kubelet's, the apiserver's stream translator) write an empty
    message right after the upgrade, "to notify the client the connection is established": the
    lowest writable channel asked for. kubectl <= 1.33 (client-go before kubernetes#131203) reads
    the connection before it has registered its streams and drops, logging "Unknown stream id N,
    discarding message", what arrives in that window; sent first, that is this empty message, as
    with kube, and not the command's first output."""
    if flags.stdout:
        return Channel.STDOUT
    return Channel.STDERR if flags.stderr else Channel.ERROR


def raw_spdy(req: StreamRequest) -> bool:
    return (RAW_UPGRADE in (req.scope.get("extensions") or {})
            and "spdy/3.1" in req.headers.get("upgrade", "").lower())


def offered_versions(req: StreamRequest) -> list[str]:
    return [p.strip() for p in req.headers.get("x-stream-protocol-version", "").split(",") if p.strip()]


async def accept_raw(req: StreamRequest, proto: str) -> trio.abc.Stream:
    await req.send({"type": "orchestra.raw_upgrade.accept",
                    "headers": [(b"x-stream-protocol-version", proto.encode())]})
    stream: trio.abc.Stream = req.scope["extensions"][RAW_UPGRADE]["stream"]
    return stream


def upgrade_required(req: StreamRequest, sub: str) -> BadRequest:
    upgrade = req.headers.get("upgrade", "")
    if "spdy" in upgrade.lower():
        need = "kubectl >= 1.31" if sub == "portforward" else "kubectl >= 1.30"
        return BadRequest(f"orchestra serves pods/{sub} over WebSocket only, not over {upgrade} "
                          f"(use {need}, or a client speaking the WebSocket protocols)")
    return BadRequest("Upgrade request required")


def pod_label(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}, uid {meta.get('uid', '')}"


# ------------------------------------------------------------------------------------ input


async def pump_input(
    chans: CommandChannels, session: InputSession, *, stdin: bool, gone: trio.CancelScope
) -> None:
    """Client input into `session` (stdin only when `stdin`); cancels `gone` when the client leaves."""
    while (item := await chans.receive()) is not None:
        channel, data = item
        try:
            if channel == Channel.STDIN and stdin and data:
                await session.send_stdin(data)
            elif channel == Channel.RESIZE:
                for width, height in resizes(data):
                    await session.resize(width, height)
            elif channel == Channel.CLOSE and stdin and chans.v5 and data[:1] == bytes((Channel.STDIN,)):
                await session.close_stdin()
        except (trio.BrokenResourceError, trio.ClosedResourceError, RuntimeFailure):
            pass  # the process already ended or closed its stdin: input is moot, output tells the rest
    gone.cancel()


def resizes(data: bytes) -> list[tuple[int, int]]:
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


# ------------------------------------------------------------------------------------- SPDY


class SpdyChannels:
    """Exec's and attach's channels over a raw SPDY/3.1 session: one client-opened stream per
    `streamtype`.

    `serve(body)` reads frames, answers each SYN_STREAM, waits for the streams the options call
    for (error, and stdin/stdout/stderr as asked; resize comes when it comes), then runs `body`.
    Input (stdin DATA, stdin FIN as a v5-style CLOSE, resize JSON) comes out of `receive()`;
    `send_status` writes the error stream and FINs every stream."""

    v5 = True  # `pump_input` then treats (CLOSE, stdin) as "close stdin", which stdin's FIN becomes

    def __init__(self, transport: Transport, opts: StreamFlags, *, v4: bool = True) -> None:
        self._t = transport
        self._v4 = v4
        self._conn = spdy.Connection()
        self._lock = trio.Lock()
        self._ids: dict[int, int] = {}  # channel -> stream id
        self._channels: dict[int, int] = {}  # stream id -> channel
        self._want = (
            {Channel.ERROR}
            | ({Channel.STDIN} if opts.stdin else set())
            | ({Channel.STDOUT} if opts.stdout else set())
            | ({Channel.STDERR} if opts.stderr and not opts.tty else set())
        )
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
