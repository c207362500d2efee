"""Watches over HTTP (the h11 server and the API server, in process, over in-memory streams): flow
control against a client that stops reading, kube-apiserver's closing of watchers that fall too far
behind, and the watch timeout against a client that accepts nothing."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h11
import orjson
import pytest
import trio
import trio.testing

from orchestra.api.registry import ResourceType
from orchestra.api.request.core import ApiCore
from orchestra.api.request.watch import WatchStream
from orchestra.apiserver.h11server import HttpServer
from orchestra.apiserver.server import ApiServer
from orchestra.apiserver.watchserve import FINAL_WRITE_TIMEOUT, WatchLimits
from orchestra.app.bootstrap import bootstrap
from orchestra.store import Store

OBJECTS = 300
PAYLOAD = "x" * 1000  # about 1 KiB per ConfigMap, as in the issue
LIMITS = WatchLimits(page_size=20, flush_bytes=4096, backlog=50, grace=2.0)
CM_PATH = "/api/v1/namespaces/default/configmaps"


class Client:
    """An HTTP/1.1 client on one stream: a request, then the response's head and body bytes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.body = b""
        self.ended = False  # the response ended or the connection closed (cleanly or not)
        self.complete = False  # the response ended with its chunked terminator
        self.headers: dict[str, str] = {}

    async def request(self, target: str, *, accept: str = "application/json",
                      headers: tuple[tuple[str, str], ...] = ()) -> int:
        req = h11.Request(method="GET", target=target,
                          headers=[("host", "orchestra"), ("accept", accept), *headers])
        head, end = self.conn.send(req), self.conn.send(h11.EndOfMessage())
        await self.stream.send_all((head or b"") + (end or b""))
        while True:
            event = await self._next()
            if isinstance(event, h11.Response):
                self.headers = {k.decode(): v.decode() for k, v in event.headers}
                return int(event.status_code)

    async def _next(self) -> Any:
        while (event := self.conn.next_event()) is h11.NEED_DATA:
            self.conn.receive_data(bytes(await self.stream.receive_some(1024)))
        return event

    async def read_lines(self, n: int) -> list[dict[str, Any]]:
        """Read until `n` more complete lines (watch events) arrived, or the response ended."""
        lines: list[dict[str, Any]] = []
        while len(lines) < n and not self.ended:
            try:
                event = await self._next()
            except h11.RemoteProtocolError:  # the server dropped the connection mid-chunk
                self.ended = True
                break
            if isinstance(event, h11.Data):
                self.body += event.data
                *done, self.body = self.body.split(b"\n")
                lines += [orjson.loads(line) for line in done]
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.ended = True
                self.complete = isinstance(event, h11.EndOfMessage)
        return lines

    async def read_body(self) -> Any:
        """The whole (non-streamed) response body, decoded as JSON."""
        while not self.ended:
            event = await self._next()
            if isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.ended = True
        return orjson.loads(self.body)

    async def read_to_end(self) -> list[dict[str, Any]]:
        return await self.read_lines(10**9)


class Served:
    def __init__(self, core: ApiCore, nursery: trio.Nursery) -> None:
        self.core = core
        self.api = ApiServer(core, token=None, watch_limits=LIMITS)
        self.http = HttpServer(self.api, ssl_context=None)
        self.nursery = nursery
        self.handlers_done = 0
        self.handler_done = trio.Event()  # set when a connection's handler returns
        self.clients: list[Client] = []

    def connect(self, kind: str) -> Client:
        """A connection to the server: "lockstep" has no buffer at all (a write waits until the
        client has read all of it), "socket" is a kernel socket pair with small buffers (a write cut
        short by cancellation leaves part of it sent), "memory" has unbounded buffers."""
        client: trio.abc.Stream
        server: trio.abc.Stream
        if kind == "lockstep":
            client, server = trio.testing.lockstep_stream_pair()
        elif kind == "socket":
            a, b = trio.socket.socketpair()
            for sock in (a, b):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client, server = trio.SocketStream(a), trio.SocketStream(b)
        else:
            client, server = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self._handle, server)
        self.clients.append(Client(client))
        return self.clients[-1]

    async def close(self) -> None:
        for client in self.clients:
            await trio.aclose_forcefully(client.stream)
        self.nursery.cancel_scope.cancel()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        await self.http.handle_stream(stream)
        self.handlers_done += 1
        self.handler_done.set()


@asynccontextmanager
async def serving(core: ApiCore) -> AsyncIterator[Served]:
    """An API server for `core` whose connections (and their client ends) close on exit."""
    async with trio.open_nursery() as nursery:
        served = Served(core, nursery)
        try:
            yield served
        finally:
            await served.close()


@pytest.fixture
async def core() -> AsyncIterator[ApiCore]:
    store = Store.open_memory()
    c = ApiCore(store)
    await bootstrap(c)
    for i in range(OBJECTS):
        await c.create(cm_type(c), "default", {"metadata": {"name": f"cm-{i:04d}"}, "data": {"p": PAYLOAD}})
    yield c
    store.close()


def cm_type(core: ApiCore) -> ResourceType:
    rt = core.registry.by_kind("ConfigMap")
    assert rt is not None
    return rt


def live_watch_streams(core: ApiCore) -> int:
    """WatchStreams of `core` still referenced from anywhere (the server, the store, a task)."""
    gc.collect()
    return sum(isinstance(o, WatchStream) and o.core is core for o in gc.get_objects())


async def test_a_stalled_watch_decodes_only_what_the_socket_took(core: ApiCore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The objects decoded for a watch that stopped reading stay within one write of what it read,
    however big the collection: the list is read in pages and each write waits for the socket."""
    decoded = [0]

    def counting(decode: Any) -> Any:
        def wrapper(kv: Any) -> Any:
            decoded[0] += 1
            return decode(kv)
        return wrapper

    monkeypatch.setattr(core.codec, "decode", counting(core.codec.decode))  # every stored value read
    with trio.fail_after(10):
        async with serving(core) as served:
            client = served.connect("lockstep")
            assert await client.request(f"{CM_PATH}?watch=true") == 200
            events = await client.read_lines(30)
            await trio.testing.wait_all_tasks_blocked()
            assert all(e["type"] == "ADDED" for e in events)
            # decoded ahead of the client: the rest of the write it is blocked on (4 KiB ~ 4 objects)
            assert decoded[0] - len(events) <= LIMITS.flush_bytes // len(PAYLOAD) + 1
            assert served.api.watch_stats.open == 1


async def test_a_watch_too_far_behind_is_closed_and_a_relist_works(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    rt = cm_type(core)
    with trio.fail_after(60):
        async with serving(core) as served:
            stalled = served.connect("socket")
            assert await stalled.request(f"{CM_PATH}?watch=true") == 200
            assert len(await stalled.read_lines(10)) == 10  # then it stops reading, mid-list
            await trio.sleep(LIMITS.grace * 3)
            assert served.api.watch_stats.closed_behind == 0  # slow, but nothing new to tell it
            for i in range(LIMITS.backlog):
                await core.create(rt, "default", {"metadata": {"name": f"new-{i}"}})
            started = trio.current_time()
            await served.handler_done.wait()
            assert served.api.watch_stats.closed_behind == 1
            assert trio.current_time() - started <= LIMITS.grace * 1.25 + FINAL_WRITE_TIMEOUT + 0.1
            await stalled.read_to_end()  # what was in flight, then the connection is dropped
            assert stalled.ended and not stalled.complete
            await trio.testing.wait_all_tasks_blocked()
            assert served.handlers_done == 1 and served.api.watch_stats.open == 0
            assert core.store.statistics()["watchers"] == 0 and live_watch_streams(core) == 0

            # the client re-lists, then watches from the list's resourceVersion
            again = served.connect("memory")
            assert await again.request(CM_PATH) == 200
            listed = await again.read_body()
            assert len(listed["items"]) == OBJECTS + LIMITS.backlog
            watcher = served.connect("memory")
            rv = listed["metadata"]["resourceVersion"]
            assert await watcher.request(f"{CM_PATH}?watch=true&resourceVersion={rv}") == 200
            await core.create(rt, "default", {"metadata": {"name": "after"}})
            [event] = await watcher.read_lines(1)
            assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "after")


async def test_a_slow_reader_too_far_behind_gets_the_end_of_the_stream(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    """A client that reads, but slower than the events come, is closed like a stalled one; as its
    write in flight goes through, the response ends cleanly (kube ends the watch the same way)."""
    rt = cm_type(core)
    with trio.fail_after(600):
        async with serving(core) as served:
            client = served.connect("lockstep")
            rv = core.store.revision
            assert await client.request(f"{CM_PATH}?watch=true&resourceVersion={rv}") == 200

            async def write() -> None:
                for i in range(LIMITS.backlog * 10):
                    obj = {"metadata": {"name": f"fast-{i}"}, "data": {"p": PAYLOAD}}
                    await core.create(rt, "default", obj)
                    await trio.sleep(0.01)

            served.nursery.start_soon(write)
            got: list[dict[str, Any]] = []
            while not client.ended:
                got += await client.read_lines(1)
                await trio.sleep(0.1)  # ~10 events/s against 100 written/s
            assert client.complete and served.api.watch_stats.closed_behind == 1
            assert [e["object"]["metadata"]["name"] for e in got] == [f"fast-{i}" for i in range(len(got))]


async def test_a_slow_reader_replaying_history_is_not_behind(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    """Events from before the watch began are what it asked for (kube's init events), not a backlog."""
    first = core.get(cm_type(core), "default", "cm-0000")["metadata"]["resourceVersion"]
    with trio.fail_after(600):
        async with serving(core) as served:
            client = served.connect("lockstep")
            assert await client.request(f"{CM_PATH}?watch=true&resourceVersion={first}") == 200
            got: list[dict[str, Any]] = []
            while len(got) < OBJECTS - 1:
                got += await client.read_lines(1)
                await trio.sleep(0.1)  # 30 s for the replay, many times the grace
            assert served.api.watch_stats.closed_behind == 0 and not client.ended
            names = [e["object"]["metadata"]["name"] for e in got]
            assert names == [f"cm-{i:04d}" for i in range(1, OBJECTS)]


async def test_a_watch_that_keeps_up_is_not_closed(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    """Writes far beyond the backlog bound, at a steady rate a reading client keeps up with."""
    rt = cm_type(core)
    writes = LIMITS.backlog * 6
    with trio.fail_after(60):
        async with serving(core) as served:
            client = served.connect("lockstep")
            assert await client.request(f"{CM_PATH}?watch=true") == 200
            got: list[dict[str, Any]] = []
            first, last = trio.Event(), trio.Event()

            async def read() -> None:
                while len(got) < OBJECTS + writes:
                    got.extend(await client.read_lines(1))
                    first.set()
                last.set()

            served.nursery.start_soon(read)
            await first.wait()  # the list's revision is taken: what follows are live events
            for i in range(writes):
                await core.create(rt, "default", {"metadata": {"name": f"burst-{i}"}})
                await trio.sleep(0.01)
            await last.wait()
            assert served.api.watch_stats.closed_behind == 0
            names = [e["object"]["metadata"]["name"] for e in got[OBJECTS:]]
            assert names == [f"burst-{i}" for i in range(writes)]


async def test_a_client_that_accepts_nothing_is_let_go_at_the_watch_timeout(
        core: ApiCore, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with serving(core) as served:
            stalled = served.connect("socket")
            assert await stalled.request(f"{CM_PATH}?watch=true&timeoutSeconds=30") == 200
            await trio.sleep(29)
            assert served.api.watch_stats.open == 1
            await trio.sleep(2 + 1)  # the timeout, then at most a second for the response's end
            assert served.handlers_done == 1 and served.api.watch_stats.open == 0
            assert core.store.statistics()["watchers"] == 0 and live_watch_streams(core) == 0
