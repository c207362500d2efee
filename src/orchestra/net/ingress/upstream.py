"""Connections from the ingress to backend endpoints: an h11 client per connection, and a pool of
idle keep-alive connections per endpoint.

Owns: `Upstream` (send bytes, read h11 events with an idle timeout, tell whether it can carry another
request) and `Pool`: `acquire(endpoint)` hands out the most recently used idle connection that is
still open (one the backend closed, or that has unexpected bytes waiting, is dropped: a poll of its
socket, no I/O) or connects a new one (net.pumps.connect: CONNECT_TIMEOUT); `release(up)` keeps a
connection whose exchange ended cleanly, up to MAX_IDLE per endpoint for IDLE_TIMEOUT seconds.
Errors become `UpstreamError` (the backend broke the exchange: 502) or `UpstreamTimeout` (504).
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

import select
from typing import Any

import h11
import trio

from orchestra.net.pumps import bulk, connect

READ_SIZE = 64 * 1024
MAX_HEADERS = 64 * 1024
READ_TIMEOUT = 60.0  # between two reads from a backend (nginx's proxy_read_timeout)
MAX_IDLE = 16
IDLE_TIMEOUT = 30.0

Endpoint = tuple[str, int]


class UpstreamError(Exception):
    """The backend closed or broke the connection, or spoke bad HTTP."""


class UpstreamTimeout(UpstreamError):
    """The backend sent nothing for READ_TIMEOUT seconds."""


class Upstream:
    """One connection to a backend endpoint."""

    def __init__(self, stream: trio.SocketStream, endpoint: Endpoint) -> None:
        self.stream = stream
        self.endpoint = endpoint
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADERS)
        self.reused = False  # it served an earlier request (a failure before any answer may be retried)
        self.broken = False
        self.idle_since = 0.0

    async def send(self, data: bytes) -> None:
        if self.broken:
            raise UpstreamError("the connection to the backend is broken")
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.broken = True
            raise UpstreamError(f"sending to the backend failed: {exc}") from exc
        except trio.Cancelled:
            self.broken = True  # part of `data` may have gone out
            raise

    def event(self) -> Any:
        """The next h11 event already buffered (h11.NEED_DATA when more must be read)."""
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            self.broken = True
            raise UpstreamError(f"the backend's answer is not valid HTTP/1.1: {exc}") from exc

    async def read(self) -> None:
        data = b""
        with trio.move_on_after(READ_TIMEOUT) as timer:
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.broken = True
                raise UpstreamError(f"reading from the backend failed: {exc}") from exc
        if timer.cancelled_caught:
            self.broken = True
            raise UpstreamTimeout(f"the backend sent nothing for {READ_TIMEOUT:.0f} s")
        self.h11.receive_data(data)

    async def next_event(self) -> Any:
        while (event := self.event()) is h11.NEED_DATA:
            await self.read()
        return event

    @property
    def reusable(self) -> bool:
        return not self.broken and self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        self.broken = True
        self.stream.socket.close()


def _still_open(up: Upstream) -> bool:
    """An idle keep-alive connection is usable while its socket has nothing to read: readable means
    the backend closed it (EOF) or sent bytes nobody asked for."""
    poller = select.poll()
    try:
        poller.register(up.stream.socket.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    except ValueError:  # closed meanwhile: fileno() is -1
        return False
    return not poller.poll(0)


class Pool:
    def __init__(self, *, max_idle: int = MAX_IDLE, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: dict[Endpoint, list[Upstream]] = {}
        self.connects = 0
        self.reuses = 0

    async def acquire(self, endpoint: Endpoint, *, fresh: bool = False) -> Upstream:
        """An idle connection to `endpoint` (unless `fresh`), or a new one (OSError / trio.TooSlowError
        when connecting fails)."""
        idle = None if fresh else self._idle.get(endpoint)
        now = trio.current_time()
        while idle:
            up = idle.pop()
            if now - up.idle_since < self.idle_timeout and _still_open(up):
                up.reused = True
                self.reuses += 1
                await trio.lowlevel.checkpoint()
                return up
            up.close()
        stream = await connect(endpoint)
        bulk(stream.socket)
        self.connects += 1
        return Upstream(stream, endpoint)

    def release(self, up: Upstream) -> None:
        """Keep `up` for the next request if its exchange ended cleanly; close it otherwise."""
        if not up.reusable:
            up.close()
            return
        idle = self._idle.setdefault(up.endpoint, [])
        if len(idle) >= self.max_idle:
            idle.pop(0).close()  # the longest idle goes
        up.h11.start_next_cycle()
        up.idle_since = trio.current_time()
        idle.append(up)

    def sweep(self) -> None:
        """Close connections idle for longer than the timeout (the controller calls this now and then)."""
        now = trio.current_time()
        for endpoint, idle in list(self._idle.items()):
            keep = [u for u in idle if now - u.idle_since < self.idle_timeout]
            for up in idle:
                if up not in keep:
                    up.close()
            if keep:
                self._idle[endpoint] = keep
            else:
                del self._idle[endpoint]

    def close(self) -> None:
        for idle in self._idle.values():
            for up in idle:
                up.close()
        self._idle.clear()

    @property
    def idle(self) -> int:
        return sum(len(v) for v in self._idle.values())
