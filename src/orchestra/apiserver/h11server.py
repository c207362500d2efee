"""A small HTTP/1.1 server for ASGI apps on trio: h11 for parsing, wsproto for WebSockets.

Owns: listening (`serve_asgi`, `HttpServer.serve`), TLS (`trio.SSLStream`, ALPN http/1.1),
one task per connection, keep-alive and pipelining, the ASGI `http` cycle, the raw-upgrade
extension below, and the server's own error answers (400/413/500; plain HTTP on the TLS port is
answered as Go answers it, see plainhttp.py). The `websocket` cycle
lives in `h11ws`. It never parses HTTP by hand: every byte in or out goes through h11.
Must not import: api, cli, reconcilers, node, runtime (it knows nothing about Kubernetes except
the shape of its own 413 body, see below). Longer than the usual ~300 lines because the connection
loop and the http cycle share one h11 state machine closely; `_HttpCycle` is the seam to split at.

Why not hypercorn: hypercorn's per-request machinery (task groups, queues, many small socket
writes) costs ~500 µs; here a response whose `http.response.start` carries a `content-length`
is held back and written together with its body in ONE socket write. Streaming responses
(no content-length) send their headers at once and then flush every `http.response.body`
chunk immediately (chunked transfer coding, chosen by h11).

ASGI behaviour, in short:
- `receive()` streams the request body (`more_body`), answering `Expect: 100-continue` on
  the first call. Once the body is read, `receive()` waits for the peer to go away and then
  returns `http.disconnect` (watch streams rely on it); after the response is complete it
  returns `http.disconnect` at once.
- `send()` on a connection that is gone raises `ClientDisconnected` (an `OSError`, as ASGI
  2.4 asks); the server treats that escaping the app as a normal hang-up.
- Body limit: a request whose Content-Length exceeds `max_body` is answered 413 by the server
  without calling the app; a chunked body that grows past `max_body` stops being delivered:
  the server answers 413 itself if the app has not started a response, the app's `receive()`
  returns `http.disconnect`, and the connection is closed. So the app never sees more than
  `max_body` bytes. The 413 body is a Kubernetes `Status` (reason RequestEntityTooLarge), so
  kubectl shows the same message the API would.
- App exception: before any response bytes were written, the server answers 500 and closes;
  after, it just closes the connection (the client sees a truncated response).

Raw upgrade extension (`orchestra.raw_upgrade`), for non-WebSocket `Upgrade:` requests such
as kubectl's `SPDY/3.1`: the `http` scope then carries
`scope["extensions"]["orchestra.raw_upgrade"] = {}`. The app may answer normally, or send
`{"type": "orchestra.raw_upgrade.accept", "headers": [(name, value), ...]}`: the server
discards any unread request body, writes `101 Switching Protocols` with those headers (adding
`Connection: Upgrade` and the client's `Upgrade:` value unless given) and, before `send()`
returns, stores the connection as a `trio.abc.Stream` in
`scope["extensions"]["orchestra.raw_upgrade"]["stream"]` (bytes the client sent early are
replayed first). From then on the app owns the bytes; no more ASGI messages are accepted,
and the server closes the connection when the app returns.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import attrs
import h11
import trio

from orchestra.apiserver import h11ws, plainhttp
from orchestra.apiserver.tlsconn import server_ssl_context as server_ssl_context  # its home before tlsconn
from orchestra.apiserver.tlsconn import tls_extension

log = logging.getLogger("orchestra.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 3 * 1024 * 1024
READ_SIZE = 64 * 1024
MAX_HEADERS = 64 * 1024  # h11's bound on an incomplete request head
HANDSHAKE_TIMEOUT = 10.0
LINGER = 2.0  # how long to swallow an unread body before closing, so the client reads our answer
LINGER_BYTES = 64 * 1024 * 1024
ASGI = {"version": "3.0", "spec_version": "2.4"}
RAW_UPGRADE = "orchestra.raw_upgrade"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_DISCONNECT: Message = {"type": "http.disconnect"}


class ClientDisconnected(h11ws.Disconnected):
    """`send()` was called after the client went away (an OSError, as ASGI asks)."""


@attrs.frozen
class ServerStatistics:
    connections_total: int
    connections_open: int
    requests_total: int
    websockets_total: int
    upgrades_total: int
    protocol_errors: int
    app_errors: int


@attrs.define
class _Counters:
    connections_total: int = 0
    connections_open: int = 0
    requests_total: int = 0
    websockets_total: int = 0
    upgrades_total: int = 0
    protocol_errors: int = 0
    app_errors: int = 0


class HttpServer:
    """Serves one ASGI app; `statistics()` counts connections and requests."""

    def __init__(self, app: App, *, ssl_context: ssl.SSLContext | None, max_body: int = MAX_BODY,
                 keep_alive_timeout: float = 75.0) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.max_body = max_body
        self.keep_alive_timeout = keep_alive_timeout
        self._counters = _Counters()

    def statistics(self) -> ServerStatistics:
        return ServerStatistics(**attrs.asdict(self._counters))

    async def serve(self, host: str, port: int, *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; `started()` gets the bound URLs, e.g. `["https://127.0.0.1:6443"]`."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        scheme = "https" if self.ssl_context is not None else "http"
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle_tcp, listeners)
            task_status.started([_url(scheme, ln.socket.getsockname()) for ln in listeners])

    async def _handle_tcp(self, tcp: trio.SocketStream) -> None:
        try:
            client, server = _addr(tcp.socket.getpeername()), _addr(tcp.socket.getsockname())
        except OSError:  # the peer already left; nothing to serve
            await trio.aclose_forcefully(tcp)
            return
        stream: trio.abc.Stream = tcp
        if self.ssl_context is not None:
            head = bytearray()
            with trio.move_on_after(HANDSHAKE_TIMEOUT):
                await plainhttp.read_first_bytes(tcp, head)
            if plainhttp.looks_like_http(head):
                self._counters.protocol_errors += 1
                await plainhttp.answer(tcp, LINGER, LINGER_BYTES)
                return
            stream = trio.SSLStream(UpgradedStream(tcp, bytes(head)), self.ssl_context, server_side=True,
                                    https_compatible=True)
        await self.handle_stream(stream, client=client, server=server)

    async def handle_stream(self, stream: trio.abc.Stream, *, client: tuple[str, int] | None = None,
                            server: tuple[str, int] | None = None) -> None:
        """Serve one connection until it closes; never raises except Cancelled."""
        counters = self._counters
        counters.connections_total += 1
        counters.connections_open += 1
        conn = _Connection(self, stream, client, server)
        try:
            await conn.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ClientDisconnected, ssl.SSLError):
            pass  # the peer broke the connection; there is nobody left to answer
        except Exception:  # a bug must cost one connection, never the listener (serve_listeners would die)
            log.exception("HTTP connection from %s failed", client)
        finally:
            counters.connections_open -= 1
            await conn.close()


async def serve_asgi(app: App, host: str, port: int, *, ssl_context: ssl.SSLContext | None,
                     task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                     max_body: int = MAX_BODY, keep_alive_timeout: float = 75.0) -> None:
    """Serve `app` on host:port until cancelled (port 0 picks a free port; see `started()`)."""
    server = HttpServer(
        app, ssl_context=ssl_context, max_body=max_body, keep_alive_timeout=keep_alive_timeout
    )
    await server.serve(host, port, task_status=task_status)


class _Connection:
    """One client connection: a loop over request/response cycles sharing an h11.Connection."""

    def __init__(self, server: HttpServer, stream: trio.abc.Stream, client: tuple[str, int] | None,
                 sockname: tuple[str, int] | None) -> None:
        self.server = server
        self.stats = server._counters
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.client = client
        self.sockname = sockname
        self.scheme = "https" if isinstance(stream, trio.SSLStream) else "http"
        self.eof = False  # the peer closed its side (or broke the connection)
        self.broken = False  # a write failed
        self.keep_alive = True
        self.early_bytes = 0  # read while the app ran (the next pipelined request)
        self.tls: dict[str, Any] | None = None  # the ASGI `tls` extension, once the handshake is done

    # --- I/O ---------------------------------------------------------------------------------

    async def read_raw(self) -> bytes:
        """Next bytes from the peer; b"" on EOF or a broken connection."""
        if self.eof:
            await trio.lowlevel.checkpoint()
            return b""
        try:
            data = bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        self.eof = not data
        return data

    async def read(self) -> None:
        self.h11.receive_data(await self.read_raw())

    async def next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.eof:  # h11 wants more but the peer is gone: it will report the truncation
                self.h11.receive_data(b"")
                continue
            await self.read()

    async def write(self, data: bytes) -> None:
        if self.broken:
            raise ClientDisconnected("the client went away")
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.broken = True
            raise ClientDisconnected("the client went away") from exc
        except trio.Cancelled:
            # A cancelled send_all may have written part of `data` (an SSLStream is broken by it):
            # nothing more may go out on this connection, and it is closed, not kept alive.
            self.broken = True
            raise

    async def close(self) -> None:
        if self.broken or self.eof:
            await trio.aclose_forcefully(self.stream)
            return
        with trio.move_on_after(1):  # TLS close_notify to a peer that does not read must not hang us
            await self.stream.aclose()
        await trio.aclose_forcefully(self.stream)

    # --- the connection loop -------------------------------------------------------------------

    async def run(self) -> None:
        if isinstance(self.stream, trio.SSLStream):
            with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
                await self.stream.do_handshake()
            if handshake.cancelled_caught:
                return
            self.tls = tls_extension(self.stream)
        while True:
            request = await self._next_request()
            if request is None:
                return
            self.stats.requests_total += 1
            await self._dispatch(request)
            if not await self._next_cycle():
                return

    async def _next_request(self) -> h11.Request | None:
        with trio.move_on_after(self.server.keep_alive_timeout):
            try:
                event = await self.next_event()
            except h11.RemoteProtocolError as exc:
                self.stats.protocol_errors += 1
                await self.answer(exc.error_status_hint, b"Bad request: " + str(exc).encode(), close=True)
                return None
            return event if isinstance(event, h11.Request) else None  # ConnectionClosed
        return None  # idle for keep_alive_timeout

    async def _dispatch(self, request: h11.Request) -> None:
        length = _header(request.headers, b"content-length")
        if length is not None and int(length) > self.server.max_body:
            await self.answer_too_large()
            return
        upgrade = _header(request.headers, b"upgrade")
        if upgrade is not None and h11ws.is_websocket_request(request):
            self.stats.websockets_total += 1
            scope = self.scope(request, "websocket")
            await h11ws.WebSocketSession(self, scope).run(self.server.app)
            self.keep_alive = False  # one WebSocket per connection, accepted or not
            return
        scope = self.scope(request, "http")
        if upgrade is not None:
            scope["extensions"][RAW_UPGRADE] = {}
        await _HttpCycle(self, request, scope).run(self.server.app)

    async def _next_cycle(self) -> bool:
        """Whether the connection can carry another request (reading what's left of this one)."""
        h = self.h11
        if not self.keep_alive or self.broken or h.our_state is not h11.DONE:
            await self.linger()
            return False
        if h.their_state is h11.SEND_BODY and not await self.drain(self.server.max_body):
            return False
        if h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        self.early_bytes = 0
        return True

    async def drain(self, limit: int) -> bool:
        """Read and drop the rest of the request body; False if it is too big or broken."""
        if self.h11.they_are_waiting_for_100_continue:
            return False  # they never sent it and may never; closing is the only safe answer
        dropped = 0
        try:
            while dropped <= limit:
                event = await self.next_event()
                if not isinstance(event, h11.Data):
                    return isinstance(event, h11.EndOfMessage)
                dropped += len(event.data)
        except h11.RemoteProtocolError:
            return False
        return False

    async def linger(self) -> None:
        """Before closing with request bytes still coming, swallow them for a while: closing a
        socket with unread input sends RST, and the client would lose the answer we just sent."""
        if self.eof or self.broken or self.h11.their_state is not h11.SEND_BODY:
            return
        swallowed = 0
        with trio.move_on_after(LINGER):
            if await self.drain(LINGER_BYTES):  # usually already buffered, e.g. a GET's end
                return
            while swallowed < LINGER_BYTES and (data := await self.read_raw()):
                swallowed += len(data)

    # --- helpers shared with the cycles --------------------------------------------------------

    def scope(self, request: h11.Request, kind: str) -> Scope:
        target = request.target
        if not target.startswith(b"/"):  # absolute-form or "*"
            target = b"/" + target.split(b"://", 1)[-1].partition(b"/")[2]
        path, _, query = target.partition(b"?")
        return {
            "type": kind, "asgi": ASGI, "http_version": request.http_version.decode(),
            "method": request.method.decode("ascii"), "scheme": self.scheme if kind == "http" else
            ("wss" if self.scheme == "https" else "ws"), "path": unquote(path.decode("latin-1")),
            "raw_path": path, "query_string": query, "root_path": "", "headers": list(request.headers),
            "client": self.client, "server": self.sockname,
            "extensions": {"tls": self.tls} if self.tls else {},
        }

    def response_bytes(self, status: int, body: bytes, content_type: bytes, close: bool) -> bytes:
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        if close:
            headers.append((b"connection", b"close"))
            self.keep_alive = False
        h = self.h11
        return (h.send(h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")))
                + h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()))  # type: ignore[operator]

    async def answer(self, status: int, body: bytes, *, close: bool,
                     content_type: bytes = b"text/plain; charset=utf-8") -> None:
        """A whole response from the server itself (the app is not involved), if one can still be sent."""
        self.keep_alive = self.keep_alive and not close
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE) or self.broken:
            self.keep_alive = False
            return
        try:
            data = self.response_bytes(status, body, content_type, close)
        except h11.LocalProtocolError:  # e.g. the request line itself never parsed
            self.keep_alive = False
            return
        await self.write(data)

    async def answer_too_large(self) -> None:
        limit = self.server.max_body
        body = (
            b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
            b'"Request entity too large: limit is %d","reason":"RequestEntityTooLarge","code":413}' % limit
        )
        await self.answer(413, body, close=True, content_type=b"application/json")


class _HttpCycle:
    """One ASGI `http` request/response: the app's `receive` and `send`."""

    def __init__(self, conn: _Connection, request: h11.Request, scope: Scope) -> None:
        self.conn = conn
        self.scope = scope
        self.no_body = request.method == b"HEAD"
        self.body_done = False
        self.body_size = 0
        self.started = False  # http.response.start seen
        self.pending: h11.Response | None = None  # held back to share one write with the body
        self.written = False  # response bytes went out (a 500 is no longer possible)
        self.complete = False
        self.gone = False  # the app must not answer any more (413 sent, upgraded, client left)
        self._complete_event = trio.Event()

    async def run(self, app: App) -> None:
        conn = self.conn
        failed = False
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if not _is_hangup(exc):
                if not isinstance(exc, Exception):
                    raise  # Cancelled, KeyboardInterrupt
                failed = True
                conn.stats.app_errors += 1
                log.exception("ASGI app failed on %s %s", self.scope["method"], self.scope["path"])
            conn.keep_alive = False
        if not self.complete and not self.gone:
            if not self.written and not conn.broken:
                if not failed:
                    conn.stats.app_errors += 1
                    log.error(
                        "ASGI app returned no response for %s %s", self.scope["method"], self.scope["path"]
                    )
                await conn.answer(500, b"Internal Server Error", close=True)
            conn.keep_alive = False
        self._complete_event.set()

    # --- receive ------------------------------------------------------------------------------

    async def receive(self) -> Message:
        if self.gone or self.complete or self.conn.broken:
            await trio.lowlevel.checkpoint()
            return _DISCONNECT
        if not self.body_done:
            return await self._receive_body()
        return await self._wait_disconnect()

    async def _receive_body(self) -> Message:
        conn = self.conn
        if conn.h11.they_are_waiting_for_100_continue and not self.written:
            await conn.write(conn.h11.send(h11.InformationalResponse(status_code=100, headers=[])))  # type: ignore[arg-type]
        chunks: list[bytes] = []
        try:
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    if chunks:
                        break  # deliver what we have; more arrives on the next call
                    await conn.read()
                elif isinstance(event, h11.Data):
                    self.body_size += len(event.data)
                    if self.body_size > conn.server.max_body:
                        return await self._too_large()
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.body_done = True
                    break
                else:
                    break  # PAUSED cannot happen mid-body; be defensive
        except h11.RemoteProtocolError:  # truncated or malformed body: the client is gone for us
            conn.keep_alive = False
            self.gone = True
            return _DISCONNECT
        return {"type": "http.request", "body": b"".join(chunks), "more_body": not self.body_done}

    async def _too_large(self) -> Message:
        self.gone = True
        if not self.written:
            self.pending = None
            await self.conn.answer_too_large()
            self.written = True
        self.conn.keep_alive = False
        return _DISCONNECT

    async def _wait_disconnect(self) -> Message:
        """The body is read: wait for EOF. Bytes that arrive are the next pipelined request;
        h11 keeps them for the next cycle (up to a bound, then we stop reading)."""
        conn = self.conn
        while not conn.eof and not self.complete and conn.early_bytes < MAX_HEADERS:
            data = await conn.read_raw()
            conn.early_bytes += len(data)
            conn.h11.receive_data(data)
        if not conn.eof and not self.complete:
            await self._complete_event.wait()
        return _DISCONNECT

    # --- send ---------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.gone or self.conn.broken:
            raise ClientDisconnected("the client went away")
        if kind == "http.response.start":
            self._start(message)
            if self.pending is not None and _header(self.pending.headers, b"content-length") is None:
                await self._flush(b"", more=True)  # a stream: the client should see headers now
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError(f"unexpected {kind}")
            await self._flush(message.get("body", b""), more=bool(message.get("more_body", False)))
        elif kind == "orchestra.raw_upgrade.accept" and RAW_UPGRADE in self.scope["extensions"]:
            await self._raw_upgrade(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _start(self, message: Message) -> None:
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        status = int(message["status"])
        self.started = True
        self.no_body = self.no_body or status in (204, 304)
        self.pending = h11.Response(status_code=status, headers=message.get("headers", []),
                                    reason=_REASONS.get(status, b""))

    async def _flush(self, body: bytes, *, more: bool) -> None:
        h = self.conn.h11
        parts: list[bytes] = []
        if self.pending is not None:
            parts.append(h.send(self.pending))  # type: ignore[arg-type]
            self.pending = None
        if body and not self.no_body:
            parts.append(h.send(h11.Data(data=body)))  # type: ignore[arg-type]
        if not more:
            parts.append(h.send(h11.EndOfMessage()))  # type: ignore[arg-type]
            self.complete = True
            self._complete_event.set()
        if parts:
            self.written = True
            await self.conn.write(b"".join(parts))

    async def _raw_upgrade(self, message: Message) -> None:
        conn = self.conn
        if self.started:
            raise RuntimeError("orchestra.raw_upgrade.accept after http.response.start")
        while conn.h11.their_state is h11.SEND_BODY:  # the client must finish its request first
            event = await conn.next_event()
            if isinstance(event, h11.ConnectionClosed):
                raise ClientDisconnected("the client went away before the upgrade")
        headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        names = {k.lower() for k, _ in headers}
        if b"upgrade" not in names:
            headers.append((b"upgrade", _header(self.scope["headers"], b"upgrade") or b""))
        if b"connection" not in names:
            headers.append((b"connection", b"Upgrade"))
        data = conn.h11.send(h11.InformationalResponse(status_code=101, headers=headers,
                                                         reason=b"Switching Protocols"))
        self.started = self.written = self.gone = True
        conn.keep_alive = False
        conn.stats.upgrades_total += 1
        await conn.write(data)  # type: ignore[arg-type]
        early, _ = conn.h11.trailing_data
        self.scope["extensions"][RAW_UPGRADE]["stream"] = UpgradedStream(conn.stream, early)


class UpgradedStream(trio.abc.Stream):
    """The connection after `101 Switching Protocols`; replays bytes h11 had already read."""

    def __init__(self, stream: trio.abc.Stream, early: bytes) -> None:
        self._stream = stream
        self._early = early

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._early:
            n = len(self._early) if max_bytes is None else max_bytes
            data, self._early = self._early[:n], self._early[n:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


def _header(headers: Any, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return bytes(v)
    return None


def _is_hangup(exc: BaseException) -> bool:
    """The app stopped because the client left (maybe wrapped in exception groups)."""
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(ClientDisconnected)
        return rest is None
    return isinstance(exc, ClientDisconnected)


def _addr(sockaddr: Any) -> tuple[str, int] | None:
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return str(sockaddr[0]), int(sockaddr[1])
    return None


def _url(scheme: str, sockaddr: Any) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
