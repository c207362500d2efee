"""The ASGI `websocket` cycle of the h11 server: handshake and frames with wsproto.

Owns: deciding whether a request is a valid WebSocket handshake, the ASGI websocket scope
additions (`subprotocols`, the `websocket.http.response` extension for rejecting with a plain
HTTP response), the `101` answer (Sec-WebSocket-Accept, subprotocol, permessage-deflate when
offered), and the frames: text and binary messages, pings answered automatically, close codes.
After `websocket.accept` a reader task owns the socket's read side: it answers pings even
while the app is busy sending, and hands whole messages to `receive()` through a small
buffer (so a slow app pushes back on the client instead of buffering without bound).
The HTTP connection itself (h11, the stream, writes) belongs to `h11server`; this module only
sees it through the `Transport` protocol, so it must not import `h11server`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import h11
import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.handshake import WEBSOCKET_VERSION, server_extensions_handshake
from wsproto.utilities import LocalProtocolError, generate_accept_token, split_comma_header

log = logging.getLogger("orchestra.http")

AsgiMessage = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[AsgiMessage]],
                Callable[[AsgiMessage], Awaitable[None]]], Awaitable[None]]

MAX_MESSAGE = 16 * 1024 * 1024
RECEIVE_BUFFER = 16  # whole messages waiting for the app


class Transport(Protocol):
    """What a WebSocket session needs from its HTTP connection (h11server._Connection)."""

    h11: h11.Connection
    keep_alive: bool
    stats: Any

    async def read_raw(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def next_event(self) -> Any: ...
    async def answer(self, status: int, body: bytes, *, close: bool, content_type: bytes = ...) -> None: ...


class Disconnected(OSError):
    """Raised by `send()` once the WebSocket (or the connection under it) is closed."""


def _headers(request_headers: Any) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for k, v in request_headers:
        out[bytes(k)] = out[bytes(k)] + b", " + bytes(v) if bytes(k) in out else bytes(v)
    return out


def is_websocket_request(request: h11.Request) -> bool:
    h = _headers(request.headers)
    connection = [t.lower() for t in split_comma_header(h.get(b"connection", b""))]
    return (request.http_version == b"1.1" and h.get(b"upgrade", b"").lower() == b"websocket"
            and "upgrade" in connection and b"sec-websocket-key" in h
            and h.get(b"sec-websocket-version") == WEBSOCKET_VERSION)


class WebSocketSession:
    """One ASGI websocket on a connection whose request was a valid WebSocket handshake."""

    def __init__(self, conn: Transport, scope: MutableMapping[str, Any]) -> None:
        self.conn = conn
        self.scope = scope
        h = _headers(scope["headers"])
        self.key = h[b"sec-websocket-key"]
        self.offered_extensions = (
            split_comma_header(h[b"sec-websocket-extensions"]) if b"sec-websocket-extensions" in h else []
        )
        scope["subprotocols"] = [
            p.strip() for p in split_comma_header(h.get(b"sec-websocket-protocol", b"")) if p.strip()
        ]
        scope["extensions"]["websocket.http.response"] = {}
        self.ws: Connection | None = None
        self.answered = False  # accepted, or an HTTP response (rejection) was started
        self.finished = False  # the app may send no more: closed, rejected, or the peer left
        self.decided = trio.Event()  # accepted or rejected: receive() can go on
        self.connect_sent = False
        self.pending: h11.Response | None = None
        self.close_code, self.close_reason = 1005, ""
        self.lock = trio.StrictFIFOLock()  # the app and the reader (pongs, close replies) both write
        self.to_app, self.from_reader = trio.open_memory_channel[AsgiMessage](RECEIVE_BUFFER)
        self.nursery: trio.Nursery | None = None

    async def run(self, app: App) -> None:
        while self.conn.h11.their_state is h11.SEND_BODY:  # a handshake has no body; read its end
            if isinstance(await self.conn.next_event(), h11.ConnectionClosed):
                return
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            failed = await self._run_app(app)
            nursery.cancel_scope.cancel()
        await self._finish(failed)

    async def _run_app(self, app: App) -> bool:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, Disconnected) or (
                isinstance(exc, BaseExceptionGroup) and exc.split(Disconnected)[1] is None
            ):
                return False  # the client left; nothing to report
            if not isinstance(exc, Exception):
                raise
            self.conn.stats.app_errors += 1
            log.exception("ASGI websocket app failed on %s", self.scope["path"])
            return True
        return False

    async def _finish(self, failed: bool) -> None:
        """What the app left undone: answer the handshake, or close the WebSocket."""
        try:
            if not self.answered:
                await self.conn.answer(500 if failed else 403, b"", close=True)
            elif self.ws is not None and self.ws.state in (
                ConnectionState.OPEN,
                ConnectionState.REMOTE_CLOSING,
            ):
                await self._send_event(CloseConnection(code=1011 if failed else 1000))
        except (Disconnected, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone; there is nobody to tell

    # --- receive ------------------------------------------------------------------------------

    async def receive(self) -> AsgiMessage:
        if not self.connect_sent:
            self.connect_sent = True
            await trio.lowlevel.checkpoint()
            return {"type": "websocket.connect"}
        await self.decided.wait()
        if self.ws is not None:
            try:
                return await self.from_reader.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                pass  # the reader finished: the peer closed
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    async def _reader(self, ws: Connection) -> None:
        async with self.to_app:
            try:
                await self._read_messages(ws)
            except (Disconnected, trio.BrokenResourceError, trio.ClosedResourceError):
                self.close_code = 1006  # could not answer a ping or close: the connection broke
            self.finished = True

    async def _read_messages(self, ws: Connection) -> None:
        parts: list[Any] = []
        size = 0
        while True:
            for event in ws.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_MESSAGE:
                        self.close_code, self.close_reason = 1009, "message too big"
                        await self._send_event(CloseConnection(code=1009, reason="message too big"))
                        return
                    if event.message_finished:
                        text = isinstance(event, TextMessage)
                        msg = {"type": "websocket.receive", "text": "".join(parts)} if text else \
                            {"type": "websocket.receive", "bytes": b"".join(parts)}
                        parts, size = [], 0
                        await self.to_app.send(msg)
                elif isinstance(event, Ping):
                    await self._send_event(event.response())
                elif isinstance(event, CloseConnection):
                    self.close_code, self.close_reason = event.code, event.reason or ""
                    if ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                        await self._send_event(event.response())  # echo the close (or report a bad frame)
                    return
            data = await self.conn.read_raw()
            ws.receive_data(data or None)  # None: EOF, wsproto reports close code 1006

    # --- send ---------------------------------------------------------------------------------

    async def send(self, message: AsgiMessage) -> None:
        kind = message["type"]
        if self.finished:
            raise Disconnected("the WebSocket is closed")
        if kind == "websocket.accept":
            await self._accept(message)
        elif kind == "websocket.send" and self.ws is not None:
            data, text = message.get("bytes"), message.get("text")
            await self._send_event(
                BytesMessage(data=data) if data is not None else TextMessage(data=text or "")
            )
        elif kind == "websocket.close":
            await self._close(int(message.get("code") or 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.start" and not self.answered:
            self.answered = True
            status = int(message["status"])
            self.pending = h11.Response(status_code=status, headers=message.get("headers", []))
        elif kind == "websocket.http.response.body" and self.ws is None and self.answered:
            await self._http_body(message.get("body", b""), bool(message.get("more_body", False)))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this WebSocket state")

    async def _accept(self, message: AsgiMessage) -> None:
        if self.answered:
            raise RuntimeError("websocket.accept after the handshake was answered")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
            raise RuntimeError(f"subprotocol {subprotocol!r} was not offered by the client")
        headers = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                   (b"sec-websocket-accept", generate_accept_token(self.key))]
        if subprotocol:
            headers.append((b"sec-websocket-protocol", subprotocol.encode()))
        extensions: list[Extension] = [PerMessageDeflate()]
        agreed = (
            server_extensions_handshake(self.offered_extensions, extensions)
            if self.offered_extensions
            else None
        )
        if agreed:
            headers.append((b"sec-websocket-extensions", agreed))
        for name, value in message.get("headers", []):
            if bytes(name).lower() not in (
                b"sec-websocket-protocol",
                b"sec-websocket-accept",
                b"upgrade",
                b"connection",
            ):
                headers.append((bytes(name), bytes(value)))
        data = self.conn.h11.send(
            h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols")
        )
        self.answered = True
        self.conn.keep_alive = False
        await self.conn.write(data)  # type: ignore[arg-type]
        early, _ = self.conn.h11.trailing_data
        self.ws = Connection(ConnectionType.SERVER, extensions, trailing_data=early)
        assert self.nursery is not None
        self.nursery.start_soon(self._reader, self.ws)
        self.decided.set()

    async def _close(self, code: int, reason: str) -> None:
        if self.ws is None:
            if not self.answered:
                self.answered = True
                await self.conn.answer(403, b"", close=True)
            self.finished = True
            self.decided.set()
            return
        self.finished = True
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            await self._send_event(CloseConnection(code=code, reason=reason or None))

    async def _send_event(self, event: Any) -> None:
        assert self.ws is not None
        async with self.lock:  # make the frame under the lock: deflate state must match write order
            try:
                data = self.ws.send(event)
            except LocalProtocolError as exc:
                raise Disconnected("the WebSocket is closed") from exc
            try:
                await self.conn.write(data)
            except OSError as exc:
                raise Disconnected("the client went away") from exc

    async def _http_body(self, body: bytes, more: bool) -> None:
        """Rejecting the handshake with a plain response (status and body from the app)."""
        h = self.conn.h11
        parts: list[bytes] = []
        if self.pending is not None:
            parts.append(h.send(self.pending))  # type: ignore[arg-type]
            self.pending = None
        if body:
            parts.append(h.send(h11.Data(data=body)))  # type: ignore[arg-type]
        if not more:
            parts.append(h.send(h11.EndOfMessage()))  # type: ignore[arg-type]
            self.finished = True
            self.decided.set()
        self.conn.keep_alive = False
        await self.conn.write(b"".join(parts))
