"""One etcd watch over the gateway: a POST to /v3/watch whose response is a stream of JSON lines,
one WatchResponse each, for as long as the watch lives.

Owns: the watch's connection (a trio stream, TLS when the endpoint is https), HTTP/1.1 through h11,
the line framing, and the translation of its failures into StoreUnavailableError. Why not httpx, the
client of every other call: a watch is abandoned mid-stream as a matter of course (cancellation,
reconnects), and httpx's streaming response is a chain of async generators that nothing closes
then (trio reports each as a ResourceWarning); here the stream is a plain object and closing it
closes the socket.

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


class WatchStream:
    """The JSON documents of one watch response, in order; `aclose()` ends the watch."""

    def __init__(self, stream: trio.abc.Stream, conn: h11.Connection, endpoint: str) -> None:
        self._stream = stream
        self._conn = conn
        self.endpoint = endpoint
        self._buffer = b""
        self._lines: list[bytes] = []
        self.status = 0

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._lines:
            data = await self._next_data()
            *complete, self._buffer = (self._buffer + data).split(b"\n")
            self._lines = [line for line in complete if line.strip()]
        return dict(orjson.loads(self._lines.pop(0)))

    async def read_all(self) -> bytes:
        """The rest of the body (an error answer's)."""
        chunks = [self._buffer, *self._lines]
        try:
            while True:
                chunks.append(await self._next_data())
        except StoreUnavailableError:
            return b"".join(chunks)

    async def _next_event(self) -> Any:
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self._stream.receive_some(_READ)
            except (OSError, trio.BrokenResourceError) as exc:
                raise self._lost(str(exc) or type(exc).__name__) from exc
            self._conn.receive_data(bytes(data))

    async def _next_data(self) -> bytes:
        try:
            event = await self._next_event()
        except h11.RemoteProtocolError as exc:
            raise self._lost(f"bad HTTP: {exc}") from exc
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.Response):
            self.status = event.status_code
            return b""
        raise self._lost("the stream ended")

    async def start(self) -> None:
        """Read up to the response's head (status)."""
        while not self.status:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif not isinstance(event, h11.InformationalResponse):
                raise self._lost("no answer")

    def _lost(self, why: str) -> StoreUnavailableError:
        return StoreUnavailableError(f"etcd watch at {self.endpoint}: {why}")


async def open_watch(endpoint: str, body: bytes, *, tls: ssl.SSLContext | None,
                     connect_timeout: float) -> WatchStream:
    """POST the watch request to `endpoint` and read the answer's head. Raises OSError when it
    cannot connect (the caller tries the next endpoint), StoreUnavailableError after that."""
    url = urlsplit(endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    with trio.fail_after(connect_timeout):  # (a TooSlowError here is the caller's to translate)
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    try:
        if url.scheme == "https":
            stream = trio.SSLStream(stream, tls or ssl.create_default_context(), server_hostname=host)
        conn = h11.Connection(h11.CLIENT)
        head = h11.Request(method="POST", target="/v3/watch", headers=[
            ("Host", url.netloc), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        watch = WatchStream(stream, conn, endpoint)
        with trio.fail_after(connect_timeout):
            request = b"".join(conn.send(e) or b"" for e in (head, h11.Data(data=body), h11.EndOfMessage()))
            await stream.send_all(request)
            await watch.start()
    except trio.TooSlowError as exc:
        await trio.aclose_forcefully(stream)
        why = f"no answer within {connect_timeout:g} s"
        raise StoreUnavailableError(f"etcd watch at {endpoint}: {why}") from exc
    except (OSError, trio.BrokenResourceError) as exc:
        await trio.aclose_forcefully(stream)
        raise StoreUnavailableError(f"etcd watch at {endpoint}: {exc}") from exc
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return watch
