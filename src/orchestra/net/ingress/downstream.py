"""The client side of an ingress connection: one h11 server connection over a TCP or TLS stream.

Owns: `Downstream`, the connection's reads (request heads bounded in size by h11 and in time:
HEAD_TIMEOUT for the first request, KEEP_ALIVE for the next), writes and local answers (404 / 5xx /
400, text/plain), draining or lingering on an unread request body so a client never loses an answer
to a reset, and the clean end of a connection. A client that stalls costs only its own task.
connection.py runs the request loop over it; forward.py uses it for one request. The same patterns
as apiserver/h11server.py (which net may not import: it is a layer above), for a proxy instead of an
ASGI app.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import ssl
from http import HTTPStatus
from typing import Any

import h11
import trio

READ_SIZE = 64 * 1024
MAX_HEADERS = 64 * 1024
HEAD_TIMEOUT = 60.0  # for a new connection's first request head
KEEP_ALIVE = 75.0  # idle between requests
LINGER = 2.0
DRAIN_LIMIT = 1024 * 1024  # an unread request body this big is swallowed to keep the connection
REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class ClientGone(Exception):
    """The client closed or broke the connection."""


class Downstream:
    def __init__(self, stream: trio.abc.Stream, *, scheme: str, client_ip: str, port: int) -> None:
        self.stream = stream
        self.scheme = scheme
        self.client_ip = client_ip
        self.port = port
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.eof = False
        self.broken = False
        self.keep_alive = True

    # --- I/O -----------------------------------------------------------------------------------

    async def read(self) -> None:
        if self.eof:
            raise ClientGone("the client closed the connection")
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError) as exc:
            self.broken = True
            raise ClientGone(str(exc)) from exc
        self.eof = not data
        self.h11.receive_data(bytes(data))

    def event(self) -> Any:
        """The next buffered h11 event, or h11.NEED_DATA; a malformed request is ClientGone."""
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            self.keep_alive = False
            raise ClientGone(f"bad request: {exc}") from exc

    async def next_event(self) -> Any:
        while (event := self.event()) is h11.NEED_DATA:
            await self.read()
        return event

    async def write(self, data: bytes) -> None:
        if self.broken:
            raise ClientGone("the connection is broken")
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError) as exc:
            self.broken = True
            raise ClientGone(str(exc)) from exc
        except trio.Cancelled:
            self.broken = True  # part of `data` may have gone out: nothing more may follow
            raise

    async def close(self) -> None:
        if self.broken or self.eof:
            await trio.aclose_forcefully(self.stream)
            return
        with trio.move_on_after(1):  # TLS close_notify to a client that does not read must not hang us
            await self.stream.aclose()
        await trio.aclose_forcefully(self.stream)

    # --- requests ------------------------------------------------------------------------------

    async def next_request(self, *, first: bool) -> h11.Request | None:
        with trio.move_on_after(HEAD_TIMEOUT if first else KEEP_ALIVE):
            try:
                event = await self.next_event()
            except ClientGone as exc:
                if not self.eof and not self.broken and self.h11.their_state is h11.ERROR:
                    status = getattr(exc.__cause__, "error_status_hint", 400)
                    await self.answer(status, f"{status} Bad Request: {exc.__cause__}\n".encode(), close=True)
                return None
            return event if isinstance(event, h11.Request) else None
        return None

    async def answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        """A whole response from the ingress itself (not from a backend)."""
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
        if close or not self.keep_alive:
            headers.append((b"connection", b"close"))
            self.keep_alive = False
        h = self.h11
        if h.our_state not in (h11.IDLE, h11.SEND_RESPONSE) or self.broken:
            self.keep_alive = False
            return
        try:
            data = h.send(h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b"")))
            data = (data or b"") + (h.send(h11.Data(data=body)) or b"") + (h.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:  # e.g. the request line itself never parsed
            self.keep_alive = False
            return
        await self.write(data)

    async def finish(self) -> bool:
        """After a response: whether the connection can carry another request. An unread request
        body is read and dropped up to DRAIN_LIMIT; past that, or if it broke, the connection ends."""
        h = self.h11
        if not self.keep_alive or self.broken or h.our_state is not h11.DONE:
            await self.linger()
            return False
        if h.their_state is h11.SEND_BODY and (h.they_are_waiting_for_100_continue
                                               or not await self._drain(DRAIN_LIMIT)):
            await self.linger()
            return False
        if h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        return True

    async def _drain(self, limit: int) -> bool:
        dropped = 0
        try:
            while dropped <= limit:
                event = await self.next_event()
                if not isinstance(event, h11.Data):
                    return isinstance(event, h11.EndOfMessage)
                dropped += len(event.data)
        except ClientGone:
            return False
        return False

    async def linger(self) -> None:
        """Before closing with request bytes still coming, swallow them for a while: closing a
        socket with unread input sends a reset, and the client would lose the answer just sent."""
        if self.eof or self.broken or self.h11.their_state is not h11.SEND_BODY:
            return
        with trio.move_on_after(LINGER):
            try:
                while not self.eof:
                    data = await self.stream.receive_some(READ_SIZE)
                    self.eof = not data
            except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                self.broken = True
