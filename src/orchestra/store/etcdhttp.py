"""HTTP/1.1 to one etcd endpoint, on trio: kept-alive connections for the unary calls, and one
connection per watch, whose response is a stream of JSON lines for as long as the watch lives.

Owns: the connections (a non-blocking socket that trio waits on, or a trio SSLStream when the
endpoint is https), the HTTP/1.1 framing, the call timeout, and the translation of every network or
framing failure into StoreUnavailableError.
The framing is written here, for the one request the gateway takes - a POST of a JSON body with a
Content-Length - and for any answer to it: a status line, headers, then a body delimited by
Content-Length, by chunked transfer coding (trailers skipped) or by the connection's close (then the
connection is not reused, nor after `Connection: close` or an HTTP/1.0 answer without keep-alive);
1xx answers are skipped, 204 and 304 have no body. Anything else (a malformed status line, header,
length or chunk size, a head over 64 KiB, the connection closing mid-answer) is StoreUnavailableError.
Why not h11, the project's HTTP/1.1 elsewhere: every write of an etcd store is one call here, and h11's
general state machine and header validation, with trio's SocketStream, were about 60 % of the client's
CPU per call (0.26 ms of a put's; 0.10 ms now: bench/api.py's CPU row). Why not httpx: an etcd client
abandons requests as a matter of course (etcd killed mid-call, a watch cancelled or reconnected), and
httpx's request and response bodies are async generators that nothing closes then - under trio each
is a ResourceWarning. Here a connection is a plain object, and closing it closes the socket.

Must not import: anything from orchestra except orchestra.store.types.
"""

from __future__ import annotations

import socket
import ssl
import string
from typing import Any
from urllib.parse import urlsplit

import orjson
import trio

from orchestra.store.types import StoreUnavailableError

_READ = 65536
_MAX_HEAD = 65536  # a status line and headers (or a chunk-size line, or trailers) longer: an error
_NETWORK = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)
_HEX = frozenset(string.hexdigits.encode())

# the body's framing (Connection._mode)
_DONE = 0  # read to its end (or none)
_LENGTH = 1  # Content-Length: _left bytes to come
_CHUNKED = 2  # chunked: _left bytes of this chunk to come; _SIZE_LINE / _CHUNK_END: what comes next
_TO_CLOSE = 3  # the body ends when the connection does
_SIZE_LINE = -1
_CHUNK_END = -2


class _Socket:
    """A connected non-blocking TCP socket; trio's I/O manager waits on it. (trio's SocketStream
    would do the same with more per call: a conflict detector, an extra schedule point per send and
    a recv tried before every wait - an answer never is there yet right after its request.)"""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def send_all(self, data: bytes) -> None:
        sock = self._sock
        view = memoryview(data)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            view = view[sent:]

    async def receive_some(self) -> bytes:
        sock = self._sock
        while True:
            await trio.lowlevel.wait_readable(sock)  # (the checkpoint of every call)
            try:
                return sock.recv(_READ)
            except BlockingIOError:
                continue

    async def aclose(self) -> None:
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        await trio.lowlevel.checkpoint()


class _Tls:
    """The same over TLS: trio's SSLStream."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self._stream = stream

    async def send_all(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def receive_some(self) -> bytes:
        return bytes(await self._stream.receive_some(_READ))

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)


class Connection:
    """One HTTP/1.1 connection to `endpoint`."""

    def __init__(self, endpoint: str, transport: _Socket | _Tls, netloc: str) -> None:
        self.endpoint = endpoint
        self._io = transport
        self._headers = (f" HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/json\r\n"
                         "Content-Length: ").encode()
        self.received = False  # any byte of the answer to the last request yet
        self._buf = b""  # received and not yet parsed
        self._mode = _DONE
        self._left = 0
        self._keep_alive = True
        self._partial = b""  # a watch's JSON line so far
        self._lines: list[bytes] = []  # complete JSON lines not yet returned

    async def aclose(self) -> None:
        await self._io.aclose()

    @property
    def reusable(self) -> bool:
        return self._mode == _DONE and self._keep_alive and not self._buf

    async def send(self, path: str, body: bytes) -> int:
        """POST `body` to `path`; the answer's status (its head read, the body not yet)."""
        if self._mode != _DONE or not self._keep_alive:
            raise StoreUnavailableError(f"etcd {self.endpoint}: the connection is still busy")
        self.received = False
        request = b"".join((b"POST ", path.encode("ascii"), self._headers, b"%d\r\n\r\n" % len(body), body))
        try:
            await self._io.send_all(request)
        except _NETWORK as exc:
            raise StoreUnavailableError(f"etcd {self.endpoint}: {reason(exc)}") from exc
        while True:
            status = self._head(await self._line_block(b"\r\n\r\n", "response head"))
            if status >= 200:
                return status

    async def read_body(self) -> bytes:
        """The rest of the answer's body."""
        first = await self.next_data()
        if first is None:
            return b""
        if self._mode == _DONE:  # (the usual answer: one piece, in the read that brought its head)
            return first
        chunks = [first]
        while (data := await self.next_data()) is not None:
            chunks.append(data)
        return b"".join(chunks)

    async def next_data(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            mode = self._mode
            if mode == _DONE:
                return None
            if mode == _LENGTH or (mode == _CHUNKED and self._left > 0):
                data = await self._take(self._left)
                self._left -= len(data)
                if self._left == 0:
                    self._mode, self._left = (_DONE, 0) if mode == _LENGTH else (_CHUNKED, _CHUNK_END)
                return data
            if mode == _TO_CLOSE:
                data, self._buf = self._buf, b""
                if not data:
                    data = await self._receive()
                if not data:
                    self._mode = _DONE
                    return None
                return data
            await self._chunk_framing()

    async def next_json(self) -> dict[str, Any]:
        """The next JSON line of a streamed body (a watch); the stream ending is an error."""
        while not self._lines:
            data = await self.next_data()
            if data is None:
                raise StoreUnavailableError(f"etcd watch at {self.endpoint}: the stream ended")
            if b"\n" not in data:
                self._partial += data
                continue
            *complete, self._partial = (self._partial + data).split(b"\n")
            self._lines = [line for line in complete if line.strip()]
            self._lines.reverse()  # (popped from the end)
        return dict(orjson.loads(self._lines.pop()))

    # --- framing ---------------------------------------------------------------------------------

    def _head(self, head: bytes) -> int:
        """Parse a status line and headers: the status, and the body's framing."""
        status_line, *fields = head.split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit() \
                or rest[3:4] not in (b"", b" "):
            raise self._broken(f"not an HTTP/1.1 status line: {status_line[:100]!r}")
        status = int(code)
        length: int | None = None
        codings: list[bytes] = []
        tokens: set[bytes] = set()
        for field in fields:
            name, colon, value = field.partition(b":")
            if not colon or not name or name != name.strip() or not name.isascii():
                raise self._broken(f"malformed header line: {field[:100]!r}")
            name, value = name.lower(), value.strip()
            if name == b"content-length":
                if not value.isdigit() or (length is not None and int(value) != length):
                    raise self._broken(f"bad Content-Length: {value[:40]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
            elif name == b"connection":
                tokens |= {t.strip().lower() for t in value.split(b",")}
        if status < 200:
            return status  # 1xx: no body, the real answer follows
        self._keep_alive = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
        if status in (204, 304):
            self._mode, self._left = _DONE, 0
        elif codings:  # (Transfer-Encoding overrides Content-Length)
            if codings[-1] == b"chunked":
                self._mode, self._left = _CHUNKED, _SIZE_LINE
            else:
                self._mode, self._keep_alive = _TO_CLOSE, False
        elif length is not None:
            self._mode, self._left = (_LENGTH, length) if length else (_DONE, 0)
        else:
            self._mode, self._keep_alive = _TO_CLOSE, False
        return status

    async def _chunk_framing(self) -> None:
        """Past the CRLF after a chunk, or a chunk-size line (and at the last chunk, the trailers)."""
        if self._left == _CHUNK_END:
            while len(self._buf) < 2:
                self._buf += await self._more("chunked body")
            if self._buf[:2] != b"\r\n":
                raise self._broken("a chunk not followed by CRLF")
            self._buf, self._left = self._buf[2:], _SIZE_LINE
            return
        line = await self._line_block(b"\r\n", "chunk size")
        size = line.split(b";", 1)[0].strip()
        if not size or len(size) > 16 or not _HEX.issuperset(size):
            raise self._broken(f"bad chunk size: {line[:40]!r}")
        self._left = int(size, 16)
        if self._left == 0:
            while await self._line_block(b"\r\n", "trailers"):
                pass  # trailer fields: etcd sends none, and none matter here
            self._mode = _DONE

    async def _line_block(self, end: bytes, what: str) -> bytes:
        """Everything up to `end` (which is consumed)."""
        at = self._buf.find(end)
        while at < 0:
            if len(self._buf) > _MAX_HEAD:
                raise self._broken(f"{what} longer than {_MAX_HEAD} bytes")
            searched = max(0, len(self._buf) - len(end) + 1)
            self._buf += await self._more(what)
            at = self._buf.find(end, searched)
        block, self._buf = self._buf[:at], self._buf[at + len(end):]
        return block

    async def _take(self, most: int) -> bytes:
        """Up to `most` body bytes: buffered ones first, else what the next read brings."""
        if not self._buf:
            self._buf = await self._more("body")
        data = self._buf[:most]
        self._buf = self._buf[len(data):] if len(self._buf) > most else b""
        return data

    async def _more(self, what: str) -> bytes:
        data = await self._receive()
        if not data:
            raise self._broken(f"the connection closed in the {what}")
        return data

    async def _receive(self) -> bytes:
        try:
            data = await self._io.receive_some()
        except _NETWORK as exc:
            raise StoreUnavailableError(f"etcd {self.endpoint}: {reason(exc)}") from exc
        self.received = self.received or bool(data)  # (b"": the peer closed)
        return data

    def _broken(self, why: str) -> StoreUnavailableError:
        self._keep_alive = False
        return StoreUnavailableError(f"etcd {self.endpoint}: {why}")


async def connect(endpoint: str, tls: ssl.SSLContext | None) -> Connection:
    """A connection to `endpoint` (http or https). OSError when it cannot connect."""
    url = urlsplit(endpoint)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    stream = await trio.open_tcp_stream(host, port)  # (sets TCP_NODELAY)
    if url.scheme == "https":
        ssl_stream = trio.SSLStream(stream, tls or ssl.create_default_context(), server_hostname=host)
        return Connection(endpoint, _Tls(ssl_stream), url.netloc)
    sock = socket.socket(fileno=stream.socket.detach())
    sock.setblocking(False)
    return Connection(endpoint, _Socket(sock), url.netloc)


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
        limit = self._limit
        try:
            limit.acquire_nowait()  # (no wait, no schedule point: the call's I/O has them)
        except trio.WouldBlock:
            await limit.acquire()
        try:
            while True:
                conn = self._idle.pop() if self._idle else None
                reused = conn is not None
                deadline = trio.current_time() + self._timeout
                if conn is None:
                    conn = await self._connect(deadline)
                try:
                    with trio.CancelScope(deadline=deadline) as scope:
                        status = await conn.send(path, body)
                        answer = await conn.read_body()
                except _NETWORK as exc:
                    await conn.aclose()
                    if reused and not conn.received:
                        await self.aclose()  # etcd closed its idle connections (restarted?): afresh
                        continue
                    raise _lost(self.endpoint, exc, self._timeout) from exc
                except BaseException:
                    await conn.aclose()
                    raise
                if scope.cancelled_caught:
                    await conn.aclose()
                    raise _lost(self.endpoint, trio.TooSlowError(), self._timeout)
                if conn.reusable and not self._shut:
                    self._idle.append(conn)
                else:
                    await conn.aclose()
                return status, answer
        finally:
            limit.release()

    async def _connect(self, deadline: float) -> Connection:
        with trio.CancelScope(deadline=deadline):
            return await connect(self.endpoint, self._tls)
        raise trio.TooSlowError

    async def stream(self, path: str, body: bytes) -> tuple[int, Connection]:
        """POST on a connection of its own, read the answer's head: (status, the connection, whose
        body the caller reads and which it closes)."""
        with trio.fail_after(self._timeout):
            conn = await connect(self.endpoint, self._tls)
        try:
            with trio.fail_after(self._timeout):
                return await conn.send(path, body), conn
        except (*_NETWORK, trio.TooSlowError) as exc:
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
