"""HTTP/1.1 to one etcd endpoint, on trio: kept-alive connections for the unary calls, and one
connection per watch, whose response is a stream of JSON lines for as long as the watch lives.

Owns: the connections (trio streams, TLS when the endpoint is https), HTTP through h11 (never by
hand), the call timeout, and the translation of every network failure into StoreUnavailableError.
Why not httpx, the project's HTTP client elsewhere: an etcd client abandons requests as a matter of
course (etcd killed mid-call, a watch cancelled or reconnected), and httpx's request and response
bodies are async generators that nothing closes then - under trio each is a ResourceWarning. Here a
connection is a plain object, and closing it closes the socket.

Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import h11
import orjson
import trio

from orchestra.store.types import StoreUnavailableError

_READ = 65536
_NETWORK = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError)


class Connection:
    """One HTTP/1.1 connection to `endpoint`."""

    def __init__(self, endpoint: str, stream: trio.abc.Stream, netloc: str) -> None:
        self.endpoint = endpoint
        self._stream = stream
        self._netloc = netloc
        self._conn = h11.Connection(h11.CLIENT)
        self.received = False  # any byte of the answer to the last request yet
        self._buffer = b""
        self._lines: list[bytes] = []

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)

    @property
    def reusable(self) -> bool:
        return self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE

    async def send(self, path: str, body: bytes) -> int:
        """POST `body` to `path`; the answer's status."""
        conn = self._conn
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        self.received = False
        head = h11.Request(method="POST", target=path, headers=[
            ("Host", self._netloc), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        await self._stream.send_all(b"".join(conn.send(e) or b"" for e in (head, h11.Data(data=body),
                                                                             h11.EndOfMessage())))
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return int(event.status_code)
            if not isinstance(event, h11.InformationalResponse):
                raise StoreUnavailableError(f"etcd {self.endpoint}: no answer")

    async def read_body(self) -> bytes:
        """The rest of the answer's body."""
        chunks = [self._buffer, *self._lines]
        self._buffer, self._lines = b"", []
        while (data := await self.next_data()) is not None:
            chunks.append(data)
        return b"".join(chunks)

    async def next_data(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        event = await self._next_event()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            return None
        raise StoreUnavailableError(f"etcd {self.endpoint}: the connection closed")

    async def next_json(self) -> dict[str, Any]:
        """The next JSON line of a streamed body (a watch); the stream ending is an error."""
        while not self._lines:
            data = await self.next_data()
            if data is None:
                raise StoreUnavailableError(f"etcd watch at {self.endpoint}: the stream ended")
            *complete, self._buffer = (self._buffer + data).split(b"\n")
            self._lines = [line for line in complete if line.strip()]
        return dict(orjson.loads(self._lines.pop(0)))

    async def _next_event(self) -> Any:
        try:
            while True:
                event = self._conn.next_event()
                if event is not h11.NEED_DATA:
                    return event
                data = await self._stream.receive_some(_READ)
                self.received = self.received or bool(data)  # (b"": the peer closed)
                self._conn.receive_data(bytes(data))
        except _NETWORK as exc:
            raise StoreUnavailableError(f"etcd {self.endpoint}: {reason(exc)}") from exc


async def connect(endpoint: str, tls: ssl.SSLContext | None) -> Connection:
    """A connection to `endpoint` (http or https). OSError when it cannot connect."""
    url = urlsplit(endpoint)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    if url.scheme == "https":
        stream = trio.SSLStream(stream, tls or ssl.create_default_context(), server_hostname=host)
    return Connection(endpoint, stream, url.netloc)


class Pool:
    """Kept-alive connections to one endpoint, at most `limit` at once."""

    def __init__(self, endpoint: str, *, tls: ssl.SSLContext | None, timeout: float,
                 limit: int = 64) -> None:
        self.endpoint = endpoint
        self._tls = tls
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._limit = trio.CapacityLimiter(limit)
        self._shut = False  # shutdown(): a call that ends later closes its connection

    async def call(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST and read the whole answer: (status, body). OSError (or trio.TooSlowError) when it
        could not connect; StoreUnavailableError when the call failed after that."""
        async with self._limit:
            while True:
                conn = self._idle.pop() if self._idle else None
                reused = conn is not None
                if conn is None:
                    with trio.fail_after(self._timeout):
                        conn = await connect(self.endpoint, self._tls)
                try:
                    with trio.fail_after(self._timeout):
                        status = await conn.send(path, body)
                        answer = await conn.read_body()
                except (*_NETWORK, trio.TooSlowError, StoreUnavailableError) as exc:
                    await conn.aclose()
                    if reused and not conn.received and not isinstance(exc, trio.TooSlowError):
                        await self.aclose()  # etcd closed its idle connections (restarted?): again, afresh
                        continue
                    raise _lost(self.endpoint, exc, self._timeout) from exc
                except BaseException:
                    await conn.aclose()
                    raise
                if conn.reusable and not self._shut:
                    self._idle.append(conn)
                else:
                    await conn.aclose()
                return status, answer

    async def stream(self, path: str, body: bytes) -> tuple[int, Connection]:
        """POST on a connection of its own, read the answer's head: (status, the connection, whose
        body the caller reads and which it closes)."""
        with trio.fail_after(self._timeout):
            conn = await connect(self.endpoint, self._tls)
        try:
            with trio.fail_after(self._timeout):
                return await conn.send(path, body), conn
        except (*_NETWORK, trio.TooSlowError, StoreUnavailableError) as exc:
            await conn.aclose()
            raise _lost(self.endpoint, exc, self._timeout) from exc
        except BaseException:
            await conn.aclose()
            raise

    async def shutdown(self) -> None:
        """Close the idle connections, and those of calls still under way once they end."""
        self._shut = True
        await self.aclose()

    async def aclose(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()


def _lost(endpoint: str, exc: BaseException, timeout: float) -> StoreUnavailableError:
    if isinstance(exc, StoreUnavailableError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        # a member without a quorum holds every request (a write may still be applied once it has one)
        return StoreUnavailableError(f"etcd {endpoint}: no answer within {timeout:g} s (are a majority of "
                                     "the etcd cluster's members up?)")
    return StoreUnavailableError(f"etcd {endpoint}: {reason(exc)}")


def reason(exc: BaseException) -> str:
    """What went wrong, for a person: trio's Broken* errors say nothing themselves; the TLS error (etcd
    refused the client certificate, or its own was not trusted) is their cause."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            what = cause.reason or str(cause)
            refused = any(alert in str(what) for alert in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE",
                                                            "UNKNOWN_CA", "CERTIFICATE_UNKNOWN"))
            hint = (" (etcd wants a client certificate it trusts: --etcd-certfile and --etcd-keyfile)"
                    if refused else "")
            return f"TLS: {what}{hint}"
        if str(cause):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__
