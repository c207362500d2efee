"""The h11 ASGI server over real sockets, plain and TLS: HTTP cycles, streaming, limits, upgrades."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import h11
import httpx
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from orchestra.apiserver.h11server import HttpServer, server_ssl_context
from orchestra.apiserver.tls import ensure_serving_cert

LIMIT = 64 * 1024
CUT_BODY = 32 * 1024 * 1024  # more than the socket buffers hold


class ProbeApp:
    """A tiny ASGI app whose paths exercise one server behaviour each."""

    def __init__(self) -> None:
        self.disconnected = trio.Event()
        self.go = trio.Event()
        self.body_seen = 0
        self.called: list[str] = []
        self.ws_disconnect: dict[str, Any] | None = None
        self.ws_closed = trio.Event()
        self.cut_refused = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called.append(scope["path"])
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif "orchestra.raw_upgrade" in scope["extensions"]:
            await self.raw(scope, send)
        else:
            await getattr(self, "http_" + scope["path"].strip("/").replace("-", "_"))(scope, receive, send)

    async def http_hello(self, scope: Any, receive: Any, send: Any) -> None:
        body = b"hello " + scope["query_string"]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def http_echo(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg["body"])
            self.body_seen += len(msg["body"])
            if not msg["more_body"]:
                break
        body = orjson.dumps(
            {"method": scope["method"], "size": sum(map(len, chunks)), "head": b"".join(chunks)[:20].decode()}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def http_stream(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await self.go.wait()  # the client must have seen "first" without this chunk
        await send({"type": "http.response.body", "body": b"second\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def http_watch(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"event\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()

    async def http_cut(self, scope: Any, receive: Any, send: Any) -> None:
        """A write that a timeout cuts short (the client reads nothing), then the response's end."""
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with trio.move_on_after(0.2):
            await send({"type": "http.response.body", "body": b"z" * CUT_BODY, "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            self.cut_refused = True

    async def http_boom(self, scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom before the response")

    async def http_boom_late(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after the headers")

    async def websocket(self, scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/ws-reject":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [(b"content-length", b"2")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"no"})
            return
        proto = "v5.channel.k8s.io" if "v5.channel.k8s.io" in scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": proto})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                self.ws_disconnect = msg
                self.ws_closed.set()
                return
            if msg.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
                continue
            await send({"type": "websocket.send", **{k: v for k, v in msg.items() if k in ("bytes", "text")}})

    async def raw(self, scope: Any, send: Any) -> None:
        await send({"type": "orchestra.raw_upgrade.accept",
                    "headers": [(b"x-stream-protocol-version", b"v4.channel.k8s.io")]})
        stream = scope["extensions"]["orchestra.raw_upgrade"]["stream"]
        while data := await stream.receive_some(1024):
            await stream.send_all(data.upper())


@attrs.frozen
class Served:
    url: str
    app: ProbeApp
    server: HttpServer
    client_ctx: ssl.SSLContext | None

    @property
    def hostport(self) -> tuple[str, int]:
        u = urlsplit(self.url)
        assert u.hostname and u.port
        return u.hostname, u.port

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, verify=self.client_ctx or False, timeout=5)


def _tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert = ensure_serving_cert(tmp_path, ["127.0.0.1"])
    return server_ssl_context(cert.cert, cert.key), ssl.create_default_context(cafile=str(cert.ca_cert))


async def _serve(nursery: trio.Nursery, tls: bool, tmp_path: Path, max_body: int = LIMIT) -> Served:
    server_ctx, client_ctx = _tls(tmp_path) if tls else (None, None)
    app = ProbeApp()
    server = HttpServer(app, ssl_context=server_ctx, max_body=max_body)
    urls = await nursery.start(server.serve, "127.0.0.1", 0)
    assert urls[0].startswith("https://" if tls else "http://")
    return Served(urls[0], app, server, client_ctx)


@pytest.fixture(params=["plain", "tls"])
async def served(request: pytest.FixtureRequest, nursery: trio.Nursery, tmp_path: Path) -> Served:
    return await _serve(nursery, request.param == "tls", tmp_path)


async def _connect(served: Served) -> trio.abc.Stream:
    host, port = served.hostport
    if served.client_ctx is not None:
        return await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=served.client_ctx, https_compatible=True
        )
    return await trio.open_tcp_stream(host, port)


async def _next(stream: trio.abc.Stream, conn: h11.Connection) -> Any:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(bytes(await stream.receive_some(65536)))
    return event


async def _response(stream: trio.abc.Stream, conn: h11.Connection) -> tuple[h11.Response, bytes]:
    response = await _next(stream, conn)
    body = b""
    while not isinstance(event := await _next(stream, conn), h11.EndOfMessage):
        body += event.data
    return response, body


async def _read_all(stream: trio.abc.Stream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


# --- plain HTTP cycles ---------------------------------------------------------------------------


async def test_get_post_and_keep_alive(served: Served) -> None:
    with trio.fail_after(10):
        async with served.client() as client:
            r = await client.get("/hello?x=1")
            assert (r.status_code, r.text, r.headers["content-length"]) == (200, "hello x=1", "9")
            big = b"y" * 50_000
            r = await client.post("/echo", content=big)
            assert r.json() == {"method": "POST", "size": 50_000, "head": "y" * 20}
            for _ in range(3):
                assert (await client.get("/hello")).status_code == 200
        stats = served.server.statistics()
        assert (stats.connections_total, stats.requests_total) == (1, 5)  # one connection, reused


async def test_chunked_request_body_streams_to_the_app(served: Served) -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"%d" % i * 1000

    with trio.fail_after(10):
        async with served.client() as client:
            r = await client.post("/echo", content=body())
            assert r.json()["size"] == 5000 and r.json()["head"] == "0" * 20


async def test_head_has_headers_but_no_body(served: Served) -> None:
    with trio.fail_after(10):
        async with served.client() as client:
            r = await client.head("/hello")
            assert r.status_code == 200 and r.headers["content-length"] == "6" and r.content == b""
            assert (await client.get("/hello")).text == "hello "  # the connection is still in sync


async def test_streaming_response_is_flushed_per_chunk(served: Served) -> None:
    with trio.fail_after(10):
        async with (
            served.client() as client,
            client.stream("GET", "/stream") as r,
            aclosing(r.aiter_lines()) as lines,
        ):  # type: ignore[type-var]
            assert r.headers["transfer-encoding"] == "chunked"
            assert await anext(lines) == "first"  # arrived before the app sent more
            served.app.go.set()
            assert [line async for line in lines] == ["second"]


async def test_disconnect_reaches_the_app_when_the_client_leaves(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        conn = h11.Connection(h11.CLIENT)
        await stream.send_all(conn.send(h11.Request(method="GET", target="/watch", headers=[("host", "x")])))  # type: ignore[arg-type]
        assert isinstance(await _next(stream, conn), h11.Response)
        assert (await _next(stream, conn)).data == b"event\n"
        assert not served.app.disconnected.is_set()
        await stream.aclose()
        await served.app.disconnected.wait()


async def test_a_write_cut_by_cancellation_ends_the_connection(served: Served) -> None:
    """Part of the cut write may have gone out: nothing more is written (no chunk terminator after a
    partial chunk, no waiting on a client that reads nothing) and the connection is closed."""
    with trio.fail_after(10):
        stream = await _connect(served)
        conn = h11.Connection(h11.CLIENT)
        request = conn.send(h11.Request(method="GET", target="/cut", headers=[("host", "x")]))
        await stream.send_all(request or b"")
        assert isinstance(await _next(stream, conn), h11.Response)
        await trio.sleep(0.4)  # read nothing while the app's write is cut
        assert served.app.cut_refused
        received = len(await _read_all(stream))  # what went out, then the end of the connection
        assert received < CUT_BODY
        await stream.aclose()


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        await stream.send_all(
            b"GET /hello?a HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?b HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        assert (await _response(stream, conn))[1] == b"hello a"
        conn.start_next_cycle()
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        assert (await _response(stream, conn))[1] == b"hello b"
        await stream.aclose()


async def test_expect_100_continue(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        conn = h11.Connection(h11.CLIENT)
        await stream.send_all(conn.send(h11.Request(method="POST", target="/echo", headers=[  # type: ignore[arg-type]
            ("host", "x"), ("content-length", "5"), ("expect", "100-continue")])))
        interim = await _next(stream, conn)
        assert isinstance(interim, h11.InformationalResponse) and interim.status_code == 100
        await stream.send_all(conn.send(h11.Data(data=b"abcde")) + conn.send(h11.EndOfMessage()))  # type: ignore[operator]
        response, body = await _response(stream, conn)
        assert response.status_code == 200 and orjson.loads(body)["size"] == 5
        await stream.aclose()


async def test_app_errors(served: Served) -> None:
    with trio.fail_after(10):
        async with served.client() as client:
            assert (await client.get("/boom")).status_code == 500
            with pytest.raises(httpx.RemoteProtocolError):  # headers went out: the connection is cut
                await client.get("/boom-late")
            assert (await client.get("/hello")).status_code == 200
        assert served.server.statistics().app_errors == 2


async def test_malformed_request_gets_400_and_the_server_keeps_serving(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        await stream.send_all(b"GARBAGE\x00 nonsense\r\n\r\n")
        assert (await _read_all(stream)).startswith(b"HTTP/1.1 400 ")
        await stream.aclose()
        async with served.client() as client:
            assert (await client.get("/hello")).status_code == 200
        assert served.server.statistics().protocol_errors == 1


# --- body limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_declared_body_over_the_limit_is_413_without_the_app(
    nursery: trio.Nursery, tmp_path: Path, tls: bool
) -> None:
    with trio.fail_after(10):
        served = await _serve(nursery, tls, tmp_path, max_body=1000)
        async with served.client() as client:
            r = await client.post("/echo", content=b"x" * 5000)
            assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
            assert (await client.post("/echo", content=b"x" * 1000)).json()["size"] == 1000
        assert served.app.called == ["/echo"]  # only the request within the limit reached the app


async def test_chunked_body_over_the_limit_stops_at_the_limit(nursery: trio.Nursery, tmp_path: Path) -> None:
    with trio.fail_after(10):
        served = await _serve(nursery, False, tmp_path, max_body=1000)
        stream = await _connect(served)
        conn = h11.Connection(h11.CLIENT)
        await stream.send_all(conn.send(h11.Request(method="POST", target="/echo", headers=[  # type: ignore[arg-type]
            ("host", "x"), ("transfer-encoding", "chunked")])))
        for _ in range(10):
            await stream.send_all(conn.send(h11.Data(data=b"z" * 300)))  # type: ignore[arg-type]
        response, body = await _response(stream, conn)
        assert response.status_code == 413 and orjson.loads(body)["reason"] == "RequestEntityTooLarge"
        assert (b"connection", b"close") in list(response.headers)
        assert served.app.body_seen <= 1000
        await stream.aclose()


# --- upgrades ------------------------------------------------------------------------------------


async def _ws_events(stream: trio.abc.Stream, ws: WSConnection) -> list[Any]:
    while not (events := list(ws.events())):
        ws.receive_data(bytes(await stream.receive_some(65536)) or None)
    return events


async def test_websocket_echo_with_subprotocol(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(
            ws.send(Request(host="x", target="/ws?q=1", subprotocols=["bogus", "v5.channel.k8s.io"]))
        )
        [accepted] = await _ws_events(stream, ws)
        assert isinstance(accepted, AcceptConnection) and accepted.subprotocol == "v5.channel.k8s.io"
        await stream.send_all(
            ws.send(BytesMessage(data=b"\x00bin"))
            + ws.send(Ping(payload=b"p"))
            + ws.send(TextMessage(data="txt"))
        )
        got: list[Any] = []
        while len(got) < 3:
            got += await _ws_events(stream, ws)
        assert [e.payload for e in got if isinstance(e, Pong)] == [
            b"p"
        ]  # the server answered the ping itself
        assert [e.data for e in got if not isinstance(e, Pong)] == [b"\x00bin", "txt"]
        await stream.send_all(ws.send(TextMessage(data="close-me")))
        [close] = await _ws_events(stream, ws)
        assert isinstance(close, CloseConnection) and (close.code, close.reason) == (4001, "asked")
        await stream.send_all(ws.send(close.response()))
        await served.app.ws_closed.wait()
        assert served.app.ws_disconnect is not None and served.app.ws_disconnect["code"] == 4001
        await stream.aclose()


async def test_websocket_client_close_code_reaches_the_app(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="x", target="/ws")))
        [accepted] = await _ws_events(stream, ws)
        assert isinstance(accepted, AcceptConnection) and accepted.subprotocol is None
        await stream.send_all(ws.send(CloseConnection(code=4321, reason="bye")))
        [echo] = await _ws_events(stream, ws)
        assert isinstance(echo, CloseConnection) and echo.code == 4321
        await served.app.ws_closed.wait()
        assert served.app.ws_disconnect == {"type": "websocket.disconnect", "code": 4321, "reason": "bye"}
        await stream.aclose()


async def test_websocket_rejected_with_an_http_response(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="x", target="/ws-reject")))
        events: list[Any] = []
        while not any(isinstance(e, RejectData) and e.body_finished for e in events):
            events += await _ws_events(stream, ws)
        assert isinstance(events[0], RejectConnection) and events[0].status_code == 403
        assert b"".join(e.data for e in events[1:]) == b"no"
        await stream.aclose()


async def test_raw_upgrade_hands_over_the_stream(served: Served) -> None:
    with trio.fail_after(10):
        stream = await _connect(served)
        request = (b"POST /exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                   b"Content-Length: 0\r\n\r\n")
        await stream.send_all(request + b"early bytes;")  # sent before the 101: must not be lost
        conn = h11.Connection(h11.CLIENT)
        conn.send(
            h11.Request(
                method="POST",
                target="/exec",
                headers=[
                    ("host", "x"),
                    ("connection", "Upgrade"),
                    ("upgrade", "SPDY/3.1"),
                    ("content-length", "0"),
                ],
            )
        )
        conn.send(h11.EndOfMessage())
        switched = await _next(stream, conn)
        assert isinstance(switched, h11.InformationalResponse) and switched.status_code == 101
        headers = dict(switched.headers)
        assert (
            headers[b"upgrade"] == b"SPDY/3.1"
            and headers[b"x-stream-protocol-version"] == b"v4.channel.k8s.io"
        )
        got, _ = conn.trailing_data
        await stream.send_all(b"and later")
        while len(got) < len(b"EARLY BYTES;AND LATER"):
            got += await stream.receive_some(1024)
        assert got == b"EARLY BYTES;AND LATER"
        await stream.aclose()
        assert served.server.statistics().upgrades_total == 1


# --- garbage never kills the server ---------------------------------------------------------------


class ServerThread:
    """The server in its own trio run, so a sync Hypothesis test can throw bytes at it."""

    def __init__(self, tls_dir: Path | None) -> None:
        self.ctx = _tls(tls_dir) if tls_dir is not None else None
        self.server = HttpServer(
            ProbeApp(), ssl_context=self.ctx[0] if self.ctx else None, keep_alive_timeout=2
        )
        self.url = ""
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel = trio.CancelScope()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with self._cancel:
            async with trio.open_nursery() as nursery:
                self.url = (await nursery.start(self.server.serve, "127.0.0.1", 0))[0]
                self._ready.set()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
        self._thread.join(10)

    def socket(self) -> socket.socket:
        u = urlsplit(self.url)
        sock = socket.create_connection((u.hostname, u.port), timeout=5)
        return self.ctx[1].wrap_socket(sock, server_hostname=u.hostname) if self.ctx else sock


@pytest.fixture(scope="module", params=["plain", "tls"])
def thread_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    server = ServerThread(tmp_path_factory.mktemp("pki") if request.param == "tls" else None)
    server.start()
    yield server
    server.stop()


HTTPISH = st.lists(
    st.sampled_from(
        [
            b"GET / HTTP/1.1\r\n",
            b"POST /echo HTTP/1.1\r\n",
            b"Host: x\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Length: -1\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Expect: 100-continue\r\n",
            b"Connection: Upgrade\r\n",
            b"Upgrade: websocket\r\n",
            b"Upgrade: SPDY/3.1\r\n",
            b"\r\n",
            b"5\r\nabcde\r\n",
            b"0\r\n\r\n",
            b"ffffffffffff\r\n",
            b" folded\r\n",
            b"\x00\xff",
        ]
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=300), HTTPISH), close_early=st.booleans())
def test_random_bytes_never_crash_the_server(
    thread_server: ServerThread, junk: bytes, close_early: bool
) -> None:
    with thread_server.socket() as sock:
        try:
            sock.sendall(junk)
            if not close_early:
                sock.settimeout(0.05)
                sock.recv(65536)
        except (TimeoutError, OSError):
            pass  # whatever the server made of the junk, only what follows matters
    with thread_server.socket() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello ")


# --- plain HTTP sent to the TLS port ------------------------------------------------------------


@pytest.mark.parametrize("request_line", [b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                                          b"POST /echo HTTP/1.1\r\n", b"PUT /x HTTP/1.1\r\n",
                                          b"HEAD / HTTP/1.1\r\n\r\n", b"OPTIONS * HTTP/1.1\r\n"],
                         ids=["get", "post", "put", "head", "options"])
async def test_plain_http_to_the_tls_port_gets_go_s_answer(nursery: trio.Nursery, tmp_path: Path,
                                                           request_line: bytes) -> None:
    """Go's net/http (so kube-apiserver) answers a plaintext request on its TLS port with this
    HTTP/1.0 400 and closes; the server then still serves TLS clients."""
    with trio.fail_after(10):
        served = await _serve(nursery, True, tmp_path)
        async with await trio.open_tcp_stream(*served.hostport) as raw:
            await raw.send_all(request_line)
            answer = await _read_all(raw)
        assert answer == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        assert served.app.called == []
        async with served.client() as client:
            assert (await client.get("/hello?x=1")).text == "hello x=1"


async def test_tls_client_sending_its_hello_in_pieces_is_served(nursery: trio.Nursery,
                                                                 tmp_path: Path) -> None:
    """The first bytes are read to tell plain HTTP from TLS; a ClientHello that arrives a byte at a
    time must still reach the handshake whole."""
    with trio.fail_after(10):
        served = await _serve(nursery, True, tmp_path)
        assert served.client_ctx is not None
        tls = trio.SSLStream(_Trickle(await trio.open_tcp_stream(*served.hostport)), served.client_ctx,
                             server_hostname="127.0.0.1", https_compatible=True)
        async with tls:
            await tls.send_all(b"GET /hello?x=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await _read_all(tls)).endswith(b"hello x=2")


class _Trickle(trio.abc.Stream):
    """A stream whose first 8 bytes go out one send at a time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.sent = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        while self.sent < 8 and data:
            await self.stream.send_all(data[:1])
            await trio.sleep(0.01)
            data, self.sent = data[1:], self.sent + 1
        if data:
            await self.stream.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.stream.receive_some(max_bytes))

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()
