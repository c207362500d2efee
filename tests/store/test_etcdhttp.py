"""The etcd client's HTTP/1.1 (orchestra.store.etcdhttp) against a scripted server: each request is
answered with bytes a test wrote, sent in the pieces it chose, so every way a body can be framed
(Content-Length, chunked with extensions and trailers, up to the close), 1xx answers, connections
the server closes, malformed answers and the timeout are exercised without etcd (test_etcd.py has
the real one)."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from orchestra.store.etcdhttp import Pool
from orchestra.store.types import StoreUnavailableError
from tests.net.certutil import CertAuthority

Pieces = list[bytes]  # one answer, as the pieces the server sends (a short pause between them)


@attrs.define
class Script:
    """What the server answers: `answers` in order, one per request (None: say nothing, keep the
    connection open); close_after: close each connection after that many answers."""

    answers: list[Pieces | None]
    close_after: int = 0
    requests: list[tuple[int, bytes, bytes]] = attrs.field(factory=list)  # (connection, head, body)
    connections: int = 0


async def _serve(stream: trio.abc.Stream, script: Script) -> None:
    script.connections += 1
    conn_id, served, buf = script.connections, 0, b""
    async with stream:
        while script.answers:
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(buf) < length:
                buf += await stream.receive_some(65536)
            body, buf = buf[:length], buf[length:]
            script.requests.append((conn_id, head, body))
            answer = script.answers.pop(0)
            if answer is None:
                await trio.sleep_forever()
            for i, piece in enumerate(answer):
                if i:
                    await trio.sleep(0.005)
                await stream.send_all(piece)
            served += 1
            if served == script.close_after:
                return


@asynccontextmanager
async def server(script: Script, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """The endpoint of a server following `script`."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, lambda s: _serve(
            trio.SSLStream(s, tls, server_side=True) if tls else s, script), 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), b"".join(h + b"\r\n" for h in extra), body)


def chunked(*chunks: bytes, trailers: bytes = b"") -> bytes:
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n" + trailers + b"\r\n"


def bytewise(data: bytes) -> Pieces:
    return [data[i:i + 1] for i in range(len(data))]


async def calls(script: Script, n: int) -> list[tuple[int, bytes]]:
    """n calls in a row; a failure is raised after the server has stopped (not in its nursery's
    exception group)."""
    failure: StoreUnavailableError | None = None
    results = []
    async with server(script) as endpoint:
        pool = Pool(endpoint, tls=None, timeout=2.0)
        try:
            for _ in range(n):
                results.append(await pool.call("/v3/kv/put", b'{"key":"YQ=="}'))
        except StoreUnavailableError as exc:
            failure = exc
        await pool.aclose()
    if failure is not None:
        raise failure
    return results


async def test_a_request_is_one_post_and_content_length_answers_share_a_connection() -> None:
    script = Script([[ok(b'{"a":1}')], [ok(b'{"b":2}')[:30], ok(b'{"b":2}')[30:]]])
    with trio.fail_after(10):
        assert await calls(script, 2) == [(200, b'{"a":1}'), (200, b'{"b":2}')]
    (first, head, body), (second, _, _) = script.requests
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v3/kv/put HTTP/1.1"
    assert {b"content-type: application/json", b"content-length: 14"} <= {x.lower() for x in lines[1:]}
    assert any(x.lower().startswith(b"host: 127.0.0.1:") for x in lines[1:])
    assert body == b'{"key":"YQ=="}'
    assert first == second == 1  # kept alive


@pytest.mark.parametrize("pieces", [lambda a: [a], bytewise], ids=["whole", "byte-by-byte"])
async def test_chunked_answers_with_extensions_and_trailers(pieces: Callable[[bytes], Pieces]) -> None:
    answer = chunked(b'{"kvs":', b"[1,", b'2]}', trailers=b"X-Trailer: 1\r\n")
    script = Script([pieces(answer), [ok(b"{}")]])
    with trio.fail_after(20):
        assert await calls(script, 2) == [(200, b'{"kvs":[1,2]}'), (200, b"{}")]
    assert [c for c, _, _ in script.requests] == [1, 1]


async def test_informational_answers_are_skipped_and_204_has_no_body() -> None:
    script = Script([[b"HTTP/1.1 100 Continue\r\n\r\n", ok(b"{}")],
                     [b"HTTP/1.1 204 No Content\r\n\r\n"], [ok(b"[]")]])
    with trio.fail_after(10):
        assert await calls(script, 3) == [(200, b"{}"), (204, b""), (200, b"[]")]
    assert [c for c, _, _ in script.requests] == [1, 1, 1]


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\n\r\n{\"to\":\"close\"}",  # no length: the body ends with the connection
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 14\r\n\r\n{\"to\":\"close\"}",
    b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\n{\"to\":\"close\"}",
], ids=["until-close", "connection-close", "http-1.0"])
async def test_answers_that_end_the_connection_are_read_and_not_reused(answer: bytes) -> None:
    script = Script([[answer], [ok(b"{}")]], close_after=1)
    with trio.fail_after(10):
        assert await calls(script, 2) == [(200, b'{"to":"close"}'), (200, b"{}")]
    assert [c for c, _, _ in script.requests] == [1, 2]


async def test_an_idle_connection_the_server_closed_is_replaced_without_an_error() -> None:
    script = Script([[ok(b"{}")], [ok(b"[]")]], close_after=1)  # (etcd restarted between two calls)
    with trio.fail_after(10):
        assert await calls(script, 2) == [(200, b"{}"), (200, b"[]")]
    assert [c for c, _, _ in script.requests] == [1, 2]


@pytest.mark.parametrize(("answer", "words"), [
    (b"SPDY/3 200 OK\r\n\r\n", "not an HTTP/1.1 status line"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "not an HTTP/1.1 status line"),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd", "a chunk not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "the connection closed in the body"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000, "response head longer than 65536 bytes"),
], ids=["protocol", "status", "header", "length", "two-lengths", "chunk-size", "chunk-end", "short",
        "huge-head"])
async def test_malformed_answers_are_store_unavailable(answer: bytes, words: str) -> None:
    script = Script([[answer]], close_after=1)
    with trio.fail_after(10), pytest.raises(StoreUnavailableError, match=words):
        await calls(script, 1)


async def test_no_answer_within_the_timeout() -> None:
    async with server(Script([None])) as endpoint:
        pool = Pool(endpoint, tls=None, timeout=0.3)
        with trio.fail_after(10):
            failed = await _failure(pool.call("/v3/kv/range", b"{}"))
    assert "no answer within 0.3 s" in str(failed)


async def test_concurrent_calls_use_connections_of_their_own_up_to_the_limit() -> None:
    script = Script([[ok(b"{}")] for _ in range(6)])
    async with server(script) as endpoint:
        pool = Pool(endpoint, tls=None, timeout=2.0, limit=2)
        results: list[tuple[int, bytes]] = []

        async def one() -> None:
            results.append(await pool.call("/v3/kv/put", b"{}"))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(one)
        await pool.aclose()
    assert results == [(200, b"{}")] * 6
    assert script.connections == 2


async def test_a_watch_stream_is_json_lines_across_chunks_and_its_end_is_an_error() -> None:
    lines = b'{"result":{"created":true}}\n{"result":{"events":[1]}}\n\n{"result":{"events":[2]}}\n'
    answer = chunked(lines[:10], lines[10:40], lines[40:])
    async with server(Script([[*bytewise(answer[:60]), answer[60:]]])) as endpoint:
        pool = Pool(endpoint, tls=None, timeout=2.0)
        status, conn = await pool.stream("/v3/watch", b"{}")
        try:
            with trio.fail_after(10):
                assert status == 200
                assert [await conn.next_json() for _ in range(3)] == [
                    {"result": {"created": True}}, {"result": {"events": [1]}}, {"result": {"events": [2]}}]
                assert "the stream ended" in str(await _failure(conn.next_json()))
        finally:
            await conn.aclose()


async def test_https_endpoints(tmp_path: Path) -> None:
    ca = CertAuthority()
    pem = ca.issue("localhost")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with trio.fail_after(10):
        cert, key = trio.Path(tmp_path / "tls.crt"), trio.Path(tmp_path / "tls.key")
        await cert.write_bytes(pem.cert)
        await key.write_bytes(pem.key)
        server_tls.load_cert_chain(str(cert), str(key))
        client_tls = ssl.create_default_context(cadata=ca.pem.decode())
        script = Script([[ok(b'{"tls":1}')], [chunked(b'{"tls":', b"2}")]])
        async with server(script, tls=server_tls) as endpoint:
            pool = Pool(endpoint, tls=client_tls, timeout=5.0)
            assert [await pool.call("/v3/kv/range", b"{}") for _ in range(2)] == [
                (200, b'{"tls":1}'), (200, b'{"tls":2}')]
            await pool.aclose()
    assert [c for c, _, _ in script.requests] == [1, 1]



async def _failure(call: Awaitable[object]) -> StoreUnavailableError:
    """The StoreUnavailableError `call` raises (inside a nursery, where pytest.raises cannot see it)."""
    try:
        await call
    except StoreUnavailableError as exc:
        return exc
    raise AssertionError("no StoreUnavailableError")
