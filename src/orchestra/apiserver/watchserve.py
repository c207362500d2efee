"""Streaming one watch over HTTP with flow control, and closing watchers that fall too far behind.

Owns: turning a WatchStream's pages into newline-delimited events, written in writes of at most
`flush_bytes` (plus one event) that are each awaited before the next page is read: the socket is the
backpressure and nothing queues between the store and it, so a client that reads slowly (or not at
all) holds one page of references and one write, whatever the collection's size. Also the watch's
timeout, its end when the client hangs up, and kube-apiserver's bound on slow watchers: its cacher
gives each watcher a buffered channel (10-1000 events) and, when one is full for longer than a short
blocking budget, logs "Forcing ... watcher close due to unresponsiveness" and ends that watch; the
client re-lists or re-watches. Here a watcher is a cursor into the store's shared history, so lagging
costs no memory, but the same rule applies: a watch whose backlog (events written since it began
that it has not sent; see WatchStream.backlog) stays at or above `backlog` for `grace` seconds is
closed, in the initial list as in the live phase. The response ends after the write in flight, or
the connection is dropped if the client does not take that write within FINAL_WRITE_TIMEOUT.
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import attrs
import trio

from orchestra.api.errors import ApiError
from orchestra.api.request.watch import PAGE_SIZE, Page, WatchStream
from orchestra.apiserver.http import Receive, Send
from orchestra.objects import Obj

log = logging.getLogger("orchestra.apiserver.watch")

FLUSH_BYTES = 16 * 1024  # one TLS record; a write and its copies (h11 framing, ciphertext) stay small
BACKLOG = 1000  # kube's largest per-watcher channel (indexed watches); unindexed ones hold 10-100
GRACE = 2.0  # kube blocks <= 0.1 s; a little longer here, so a reader on a busy loop catches up
FINAL_WRITE_TIMEOUT = 1.0  # how long a write to a watcher being closed may still take

Encoder = Callable[[str, Obj], bytes]


@attrs.frozen
class WatchLimits:
    """page_size: objects (or history events) read from the store per page; flush_bytes: a write is
    sent once it holds this much; backlog, grace: the slow-watcher bound (see the module docstring)."""

    page_size: int = PAGE_SIZE
    flush_bytes: int = FLUSH_BYTES
    backlog: int = BACKLOG
    grace: float = GRACE


@attrs.define
class WatchStatistics:
    open: int = 0
    total: int = 0
    closed_behind: int = 0  # closed for falling too far behind


class _Ending:
    """How a watch ends without cutting a write: `close()` sets `closing` (the writer stops after the
    write in flight) and cancels the response's scope at once between writes, or FINAL_WRITE_TIMEOUT
    later if a write is in flight (a client that takes nothing is dropped)."""

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.closing = trio.Event()
        self.writing = False

    async def close(self) -> None:
        self.closing.set()
        if self.writing:
            await trio.sleep(FINAL_WRITE_TIMEOUT)
        self.scope.cancel()


async def serve_watch(send: Send, receive: Receive, stream: WatchStream, encode: Encoder, *, lifetime: float,
                      limits: WatchLimits, stats: WatchStatistics) -> None:
    """Answer 200 and stream `stream` until it ends, the client hangs up, `lifetime` seconds pass
    (the request's timeoutSeconds; <= 0 ends it at once, as Go's timer does) or the watcher falls too
    far behind; then end the response (or leave the connection to be dropped if a write was cut)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"cache-control", b"no-cache, private")]})
    stats.open += 1
    stats.total += 1
    try:
        async with aclosing(stream.pages()) as pages, trio.open_nursery() as nursery:
            ending = _Ending(nursery.cancel_scope)
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            nursery.start_soon(_close_when_behind, stream, limits, stats, ending)
            nursery.start_soon(_end_after, lifetime, ending)
            try:
                await _send_pages(send, pages, encode, limits.flush_bytes, ending)
            except ApiError as err:  # after the 200: the client learns it the way kube tells it
                await _write(send, [encode("ERROR", err.status())], ending)
            nursery.cancel_scope.cancel()
    finally:
        stats.open -= 1
    # A write cut short by the slow-watcher bound or a hang-up leaves the connection broken: then
    # this raises at once (the server closes it); else it ends the chunked response like kube.
    with trio.move_on_after(FINAL_WRITE_TIMEOUT):
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away (or the connection was given up); nothing to finish


async def _end_after(lifetime: float, ending: _Ending) -> None:
    await trio.sleep(max(lifetime, 0.0))
    await ending.close()


async def _send_pages(send: Send, pages: AsyncIterator[Page], encode: Encoder, flush_bytes: int,
                      ending: _Ending) -> None:
    """Encode each page's events into writes of about `flush_bytes`, awaiting each write before
    decoding more: at most one write's worth of encoded events exists at a time. Returns after an
    ERROR event, or after the write during which the watch began to close."""
    chunks: list[bytes] = []
    size = 0
    async for page in pages:
        for etype, obj in page:
            data = encode(etype, obj)
            chunks.append(data)
            size += len(data)
            if etype == "ERROR":
                await _write(send, chunks, ending)
                return
            if size >= flush_bytes:
                await _write(send, chunks, ending)
                size = 0
                if ending.closing.is_set():
                    return
        if chunks:
            await _write(send, chunks, ending)
            size = 0
        if ending.closing.is_set():
            return


async def _write(send: Send, chunks: list[bytes], ending: _Ending) -> None:
    body = b"".join(chunks)
    chunks.clear()
    ending.writing = True
    try:
        await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        ending.writing = False


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            scope.cancel()
            return


async def _close_when_behind(stream: WatchStream, limits: WatchLimits, stats: WatchStatistics,
                             ending: _Ending) -> None:
    """Once the stream's backlog has stayed at or above limits.backlog for limits.grace seconds
    (checked every grace/4), close the watch: the response ends after the write in flight, as kube
    ends a closed watcher's stream after what it had buffered. If that write is not taken within
    FINAL_WRITE_TIMEOUT (a client that reads nothing), the connection is dropped."""
    behind_since: float | None = None
    while True:
        await trio.sleep(limits.grace / 4)
        now = trio.current_time()
        if stream.backlog(limits.backlog) < limits.backlog:
            behind_since = None
        elif behind_since is None:
            behind_since = now
        elif now - behind_since >= limits.grace:
            log.info("Forcing %s watcher close due to unresponsiveness: %d or more events behind for %.1fs",
                     stream.rt.group_resource, limits.backlog, now - behind_since)
            stats.closed_behind += 1
            await ending.close()
            return
