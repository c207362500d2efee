"""A WebSocket client over one trio stream (wsproto frames; nothing is hand-parsed).

Owns: `open_websocket(stream, host, target, subprotocols)` -> `WsClient` (binary messages in and out,
pings answered, close) or `WsRejected` with the server's HTTP status and body when it refused the
upgrade. One task may send while another receives.
Must not import: anything of orchestra.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

READ_SIZE = 64 * 1024
MAX_REJECT_BODY = 64 * 1024


class WsRejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"the upgrade was refused with HTTP {status}")
        self.status, self.body = status, body


class WsClient:
    def __init__(self, stream: trio.abc.Stream, conn: WSConnection, subprotocol: str | None) -> None:
        self.stream = stream
        self.subprotocol = subprotocol
        self._conn = conn
        self._lock = trio.Lock()
        self._parts: list[bytes] = []
        self._pending: list[Event] = list(conn.events())  # what came with the 101 response
        self.closed = False

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            await self.stream.send_all(data)

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise trio.ClosedResourceError("the WebSocket is closed")
        await self._write(self._conn.send(BytesMessage(data=data)))

    async def receive(self) -> bytes | None:
        """The next message (text as UTF-8); None once the connection is closed or broken."""
        while not self.closed:
            if not self._pending:
                try:
                    data = await self.stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.closed = True
                    return None
                try:
                    self._conn.receive_data(bytes(data))
                    self._pending = list(self._conn.events())
                except RemoteProtocolError:
                    self.closed = True
                    return None
            message = await self._handle(self._pending.pop(0))
            if message is not None:
                return message
        return None

    async def _handle(self, event: Event) -> bytes | None:
        if isinstance(event, BytesMessage | TextMessage):
            data = event.data if isinstance(event, BytesMessage) else event.data.encode()
            self._parts.append(bytes(data))
            if event.message_finished:
                message, self._parts = b"".join(self._parts), []
                return message
        elif isinstance(event, Ping):
            await self._write(self._conn.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.closed = True
            try:
                await self._write(self._conn.send(event.response()))
            except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError):
                pass  # the peer is already gone: nothing to acknowledge
        return None

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                await self._write(self._conn.send(CloseConnection(code=1000)))
            except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError):
                pass  # already broken: closing the stream below is all there is to do
        # The WebSocket's own close handshake is the goodbye; TLS's close_notify would wait on the peer.
        await trio.aclose_forcefully(self.stream)


async def open_websocket(
    stream: trio.abc.Stream, host: str, target: str, subprotocols: Sequence[str]
) -> WsClient:
    conn = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(conn.send(Request(host=host, target=target, subprotocols=list(subprotocols))))
    status, body = 0, bytearray()
    while True:
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise WsRejected(status or 502, bytes(body) or b"the server closed the connection")
        conn.receive_data(bytes(data))
        for event in conn.events():
            if isinstance(event, AcceptConnection):
                return WsClient(stream, conn, event.subprotocol)
            if isinstance(event, RejectConnection):
                status = event.status_code
                if not event.has_body:
                    raise WsRejected(status, b"")
            elif isinstance(event, RejectData):
                body += event.data[: MAX_REJECT_BODY - len(body)]
                if event.body_finished:
                    raise WsRejected(status, bytes(body))
