"""pods/portforward: relaying TCP connections into a pod over a WebSocket or a raw SPDY upgrade.

Owns: two server-side port-forward protocols, and `StreamTransport` (a raw upgraded socket seen
as a `Transport`):
* SPDY/3.1 (`SpdyPortForward`), over any `Transport`: a WebSocket `SPDY/3.1+portforward.k8s.io`
  (kubectl >= 1.31; the binary messages carry the SPDY byte stream) or the raw bytes of an
  `Upgrade: SPDY/3.1` connection (kubectl <= 1.30, `portforward.k8s.io`). Per local connection the
  client opens two streams with the same `requestid` (`streamtype: error` and `streamtype: data`,
  header `port`); we reply to both, connect to the pod's port and pump bytes both ways (DATA
  frames, FIN on close, RST aborts). A failure is text on the error stream; the error stream's FIN
  ends the request for the client.
* `v4.channel.k8s.io` / `portforward.k8s.io` / none (the kubelet's websocket protocol, used by
  the Python client): `?ports=a,b`; channel 2i is port i's data and 2i+1 its errors; each channel
  first carries the port as 2 little-endian bytes; one TCP connection per port.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import trio

from orchestra.streaming import spdy
from orchestra.streaming.websocket_channels import WebSocket, encode

Connect = Callable[[str, int], Awaitable[trio.abc.Stream]]
READ_SIZE = 32 * 1024
INBOUND_BUFFER = 64  # DATA frames queued per stream before the reader waits (head-of-line, like TCP)
CLOSE_GRACE = 1.0  # after the pod closes, how long the client may keep sending (as containerd does)


class Transport(Protocol):
    """A SPDY byte stream: `receive()` gives the next chunk (None at the end), `send()` writes one."""

    async def receive(self) -> bytes | None: ...

    async def send(self, data: bytes) -> None: ...


class StreamTransport:
    """A raw upgraded connection (`orchestra.raw_upgrade`) as a `Transport`."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def receive(self) -> bytes | None:
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        return bytes(data) or None

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)


async def open_tcp(host: str, port: int) -> trio.abc.Stream:
    return await trio.open_tcp_stream(host, port)


# ------------------------------------------------------------------------------------------ SPDY


@attrs.define(eq=False)
class _Pair:
    request_id: str
    port: int | None = None
    error_id: int | None = None
    data_id: int | None = None
    inbound: trio.MemorySendChannel[bytes] | None = None
    outbound: trio.MemoryReceiveChannel[bytes] | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    client_done: trio.Event = attrs.field(factory=trio.Event)  # the client FIN'd (or reset) the data stream
    reset: set[int] = attrs.field(factory=set)  # the streams the client reset


class SpdyPortForward:
    """Serves one tunnelled SPDY session until the client goes away."""

    def __init__(self, ws: Transport, pod_ip: str, pod_label: str, connect: Connect = open_tcp) -> None:
        self._ws = ws  # a WebSocket (binary messages) or a StreamTransport (raw bytes)
        self._ip = pod_ip
        self._label = pod_label  # "namespace/name, uid ..." for error messages
        self._connect = connect
        self._conn = spdy.Connection()
        self._send_lock = trio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            try:
                while (data := await self._ws.receive()) is not None:
                    for frame in self._conn.receive_data(data):
                        if not await self._on_frame(frame, nursery):
                            return
            except spdy.ProtocolError:
                await self._send(spdy.GoAway(0, 1))  # PROTOCOL_ERROR
            finally:
                nursery.cancel_scope.cancel()

    async def _send(self, *frames: spdy.Frame) -> None:
        async with self._send_lock:  # header compression state must follow the wire order
            await self._ws.send(self._conn.encode_all(frames))

    async def _on_frame(self, frame: spdy.Frame, nursery: trio.Nursery) -> bool:
        match frame:
            case spdy.SynStream():
                await self._on_syn_stream(frame, nursery)
            case spdy.Data(stream_id, data, fin):
                await self._on_data(stream_id, data, fin)
            case spdy.RstStream(stream_id):
                pair = self._by_stream.get(stream_id)
                if pair is not None:
                    pair.reset.add(stream_id)
                    pair.scope.cancel()
            case spdy.Ping():
                await self._send(frame)
            case spdy.GoAway():
                return False
        return True  # SETTINGS, WINDOW_UPDATE (we do not throttle sends), HEADERS: nothing to do

    async def _on_syn_stream(self, frame: spdy.SynStream, nursery: trio.Nursery) -> None:
        kind = frame.header("streamtype")
        if kind not in ("error", "data"):
            await self._send(spdy.RstStream(frame.stream_id, spdy.RstStatus.PROTOCOL_ERROR))
            return
        # Clients before requestid existed paired streams by id: data = error + 2.
        request_id = frame.header("requestid") or str(frame.stream_id - (2 if kind == "data" else 0))
        pair = self._pairs.setdefault(request_id, _Pair(request_id))
        self._by_stream[frame.stream_id] = pair
        if kind == "error":
            pair.error_id = frame.stream_id
        else:
            pair.data_id = frame.stream_id
            port = frame.header("port") or ""
            pair.port = int(port) if port.isdigit() and 0 < int(port) < 65536 else 0
            pair.inbound, pair.outbound = trio.open_memory_channel[bytes](INBOUND_BUFFER)
            if frame.fin:
                pair.client_done.set()
        await self._send(spdy.SynReply(frame.stream_id))
        if pair.error_id is not None and pair.data_id is not None:
            nursery.start_soon(self._forward, pair)

    async def _on_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        pair = self._by_stream.get(stream_id)
        if pair is None or stream_id != pair.data_id or pair.inbound is None:
            await self._send(*self._conn.consumed(stream_id, len(data)))  # error-stream data: discarded
            return
        if data and not pair.client_done.is_set():
            try:
                await pair.inbound.send(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):  # the pod side is gone: drop
                await self._send(*self._conn.consumed(stream_id, len(data)))
        if fin:
            pair.client_done.set()
            pair.inbound.close()

    async def _forward(self, pair: _Pair) -> None:
        assert pair.data_id is not None and pair.error_id is not None
        error = ""
        with pair.scope:
            if not pair.port:
                error = "invalid port in the port-forward request"
            else:
                try:
                    tcp = await self._connect(self._ip, pair.port)
                except OSError as exc:
                    error = f"failed to connect to {self._ip}:{pair.port}: {exc.strerror or exc}"
                else:
                    async with tcp:
                        await self._pump(pair, tcp)
        self._forget(pair)
        if pair.error_id in pair.reset:
            return
        # As kubelet: the error stream always ends, even after the client reset the data stream
        # (kubectl >= 1.32 resets it once the pod's side is done, then waits for the error stream).
        if error and not pair.reset:
            msg = f"error forwarding port {pair.port} to pod {self._label}: {error}"
            await self._send(spdy.Data(pair.error_id, msg.encode()), spdy.Data(pair.data_id, b"", fin=True))
        await self._send(spdy.Data(pair.error_id, b"", fin=True))

    async def _pump(self, pair: _Pair, tcp: trio.abc.Stream) -> None:
        assert pair.data_id is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._to_pod, pair, tcp)
            while chunk := await _receive(tcp):
                await self._send(spdy.Data(pair.data_id, chunk))
            await self._send(spdy.Data(pair.data_id, b"", fin=True))
            with trio.move_on_after(CLOSE_GRACE):
                await pair.client_done.wait()
            nursery.cancel_scope.cancel()

    async def _to_pod(self, pair: _Pair, tcp: trio.abc.Stream) -> None:
        assert pair.outbound is not None and pair.data_id is not None
        async with pair.outbound:
            async for chunk in pair.outbound:
                try:
                    await tcp.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break  # the pod closed; the other direction sees EOF and ends the request
                await self._send(*self._conn.consumed(pair.data_id, len(chunk)))
        if pair.client_done.is_set() and isinstance(tcp, trio.SocketStream):
            try:
                await tcp.send_eof()  # half-close: the pod sees EOF and can still answer
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # already closed by the pod

    def _forget(self, pair: _Pair) -> None:
        self._pairs.pop(pair.request_id, None)
        for sid in (pair.error_id, pair.data_id):
            if sid is not None:
                self._by_stream.pop(sid, None)
                self._conn.forget(sid)
        if pair.inbound is not None:
            pair.inbound.close()


async def _receive(tcp: trio.abc.Stream) -> bytes:
    try:
        return bytes(await tcp.receive_some(READ_SIZE))
    except (trio.BrokenResourceError, trio.ClosedResourceError):  # reset by the pod: treat as EOF
        return b""


# ------------------------------------------------------------------------------- websocket v4


class ChannelPortForward:
    """The kubelet's websocket port-forward: one TCP connection per `ports` entry."""

    def __init__(self, ws: WebSocket, pod_ip: str, pod_label: str, ports: list[int],
                 connect: Connect = open_tcp) -> None:
        self._ws = ws
        self._ip = pod_ip
        self._label = pod_label
        self._ports = ports
        self._connect = connect
        self._inbound = [trio.open_memory_channel[bytes](INBOUND_BUFFER) for _ in ports]

    async def run(self) -> None:
        for i, port in enumerate(self._ports):
            prefix = port.to_bytes(2, "little")
            await self._ws.send(encode(2 * i, prefix))
            await self._ws.send(encode(2 * i + 1, prefix))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_client, nursery.cancel_scope)
            async with trio.open_nursery() as ports:
                for i, port in enumerate(self._ports):
                    ports.start_soon(self._forward, i, port)
            nursery.cancel_scope.cancel()
        await self._ws.close()

    async def _read_client(self, scope: trio.CancelScope) -> None:
        while (message := await self._ws.receive()) is not None:
            channel, data = (message[0], message[1:]) if message else (-1, b"")
            if channel % 2 == 0 and channel // 2 < len(self._ports) and data:
                try:
                    await self._inbound[channel // 2][0].send(data)
                except trio.BrokenResourceError:  # that port's connection has ended: drop
                    pass
        scope.cancel()

    async def _forward(self, i: int, port: int) -> None:
        try:
            tcp = await self._connect(self._ip, port)
        except OSError as exc:
            msg = (
                f"error forwarding port {port} to pod {self._label}: failed to connect to "
                f"{self._ip}:{port}: {exc.strerror or exc}"
            )
            await self._ws.send(encode(2 * i + 1, msg.encode()))
            self._inbound[i][1].close()
            return
        async with tcp, trio.open_nursery() as nursery:
            nursery.start_soon(self._to_pod, i, tcp)
            while chunk := await _receive(tcp):
                await self._ws.send(encode(2 * i, chunk))
            nursery.cancel_scope.cancel()

    async def _to_pod(self, i: int, tcp: trio.abc.Stream) -> None:
        async with self._inbound[i][1] as inbound:
            async for chunk in inbound:
                try:
                    await tcp.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return  # the pod closed its side; the reader sees EOF
