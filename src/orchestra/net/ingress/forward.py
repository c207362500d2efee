"""One request through the ingress: route it, pass it to a backend endpoint, pass the answer back.

Owns: `Exchange(router, down, request).run()`. The router (the controller) turns host and path into a
`Target` (a Service port's live endpoint list) or a `Refusal` (404 when no rule matches, 503 when the
backend has no ready endpoint or cannot be served). An endpoint is picked round robin; one that
refuses the connection is skipped for the next (502 when none can be reached). Bodies stream both
ways, a chunk (at most one read) at a time: the request body is sent by a second task while this one
relays the answer, so a backend that answers before reading the whole body (and a 100-continue)
works, and neither side is ever buffered whole. A request that has no body goes out with its head
in one write, and everything h11 has already parsed of the answer goes back in one write.
`Upgrade` requests (WebSocket and others): after the backend's 101 the client gets the 101 and the
connection becomes a byte tunnel both ways (splice(2) when both ends are plain TCP) until both sides
close. A backend that breaks before answering is 502 (504 after READ_TIMEOUT of silence); a pooled
keep-alive connection that turns out closed is retried once on a fresh one, for a request without a
body. After an answer has started, a failure can only cut the connection.
Must not import: apiserver, cli, runtime, node.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import h11
import trio

from orchestra.net.endpoints import Backends
from orchestra.net.ingress.downstream import ClientGone, Downstream
from orchestra.net.ingress.headers import header, request_headers, response_headers
from orchestra.net.ingress.routing import normalize_host
from orchestra.net.ingress.upstream import Pool, Upstream, UpstreamError, UpstreamTimeout
from orchestra.net.pumps import PUMP, copy_pump


@attrs.frozen
class Target:
    name: str  # "namespace/service:port", for messages
    backends: Backends


@attrs.frozen
class Refusal:
    status: int
    message: str


@attrs.define
class Stats:
    connections_open: int = 0
    connections_total: int = 0
    requests: int = 0
    upgrades: int = 0
    not_found: int = 0
    unavailable: int = 0  # 503
    bad_gateway: int = 0  # 502 / 504
    connection_errors: int = 0  # bugs: a connection ended by an unexpected exception


class Router(Protocol):
    pool: Pool
    stats: Stats

    def resolve(self, host: str, path: str) -> Target | Refusal: ...


class _Retry(Exception):
    """A pooled connection was found closed before the backend answered: try a fresh one."""


class Exchange:
    def __init__(self, router: Router, down: Downstream, request: h11.Request) -> None:
        self.router = router
        self.down = down
        self.request = request
        self.answered = False  # response bytes went to the client
        self.client_gone: ClientGone | None = None  # the client left while its body was uploading
        self.body = _has_body(request)
        self.upgrade = header(request.headers, b"upgrade") is not None and not self.body

    async def run(self) -> bool:
        """Serve the request; whether the client connection may carry another one."""
        req, down = self.request, self.down
        host, target = header(req.headers, b"host") or b"", req.target
        if not target.startswith(b"/") and b"://" in target:  # absolute form: its authority routes
            authority, _, rest = target.split(b"://", 1)[1].partition(b"/")
            host, target = authority or host, b"/" + rest
        if req.method == b"CONNECT":
            return await self._refuse(Refusal(405, "405 Method Not Allowed: the ingress is no forward proxy"))
        path = target.partition(b"?")[0].decode("latin-1")
        decision = self.router.resolve(normalize_host(host.decode("latin-1")), path)
        if isinstance(decision, Refusal):
            return await self._refuse(decision)
        head = request_headers(
            req.headers,
            client_ip=down.client_ip,
            scheme=down.scheme,
            host=host or b"localhost",
            port=down.port,
            upgrade=self.upgrade,
        )
        out = h11.Request(method=req.method, target=target, headers=head)
        if not self.body:
            await self._expect_end()
        fresh = False
        while True:
            try:
                return await self._forward(decision, out, fresh=fresh)
            except _Retry:
                fresh = True

    async def _refuse(self, refusal: Refusal) -> bool:
        stats = self.router.stats
        if refusal.status == 404:
            stats.not_found += 1
        elif refusal.status == 503:
            stats.unavailable += 1
        elif refusal.status in (502, 504):
            stats.bad_gateway += 1
        await self.down.answer(refusal.status, refusal.message.encode() + b"\n")
        return await self.down.finish()

    async def _connect(self, target: Target, *, fresh: bool) -> Upstream | Refusal:
        tried: set[tuple[str, int]] = set()
        while (endpoint := target.backends.pick(self.down.client_ip, tried)) is not None:
            try:
                return await self.router.pool.acquire(endpoint, fresh=fresh)
            except (OSError, trio.TooSlowError):
                tried.add(endpoint)  # refused or unreachable: the next endpoint, like kube-proxy
        if tried:
            return Refusal(502, f"502 Bad Gateway: no endpoint of {target.name} accepts connections")
        return Refusal(503, f"503 Service Unavailable: no ready endpoint for {target.name}")

    async def _forward(self, target: Target, request: h11.Request, *, fresh: bool) -> bool:
        up = await self._connect(target, fresh=fresh)
        if isinstance(up, Refusal):
            return await self._refuse(up)
        try:
            head = up.h11.send(request) or b""
            if self.body:
                switched = await self._relay_while_uploading(up, head)
            else:
                await up.send(head + (up.h11.send(h11.EndOfMessage()) or b""))
                switched = await self._relay(up)
            if switched is not None:
                await self._tunnel(up, switched)
                return False
        except UpstreamError as exc:
            up.close()
            if up.reused and not self.answered and not self.body and not isinstance(exc, UpstreamTimeout):
                raise _Retry() from exc
            if self.answered:
                self.down.keep_alive = False
                return False
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            return await self._refuse(
                Refusal(
                    status,
                    f"{status} {'Gateway Timeout' if status == 504 else 'Bad Gateway'}: {target.name}: {exc}",
                )
            )
        except BaseException:
            up.close()
            raise
        self.router.pool.release(up)
        return await self.down.finish()

    async def _expect_end(self) -> None:
        event = await self.down.next_event()  # no body: h11 has it without reading
        if not isinstance(event, h11.EndOfMessage):
            raise ClientGone(f"unexpected {type(event).__name__} in a request without body")

    async def _relay_while_uploading(self, up: Upstream, head: bytes) -> h11.InformationalResponse | None:
        """The answer comes back while a second task sends the body: an answer may come first."""
        failure: UpstreamError | ClientGone | None = None
        switched = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._upload, up, head, nursery.cancel_scope)
            try:
                switched = await self._relay(up)
            except (UpstreamError, ClientGone) as exc:
                failure = exc
            nursery.cancel_scope.cancel()  # the answer is complete: what is left of the body is not needed
        if self.client_gone is not None:
            raise self.client_gone
        if failure is not None:
            raise failure
        return switched

    async def _upload(self, up: Upstream, head: bytes, scope: trio.CancelScope) -> None:
        """Request body → backend, one read at a time. A backend that stops taking it ends only this
        task (its answer, if any, still comes back); a client that leaves ends the exchange."""
        down, pending = self.down, [head]
        try:
            while True:
                event = down.event()
                if event is h11.NEED_DATA:
                    if pending:
                        await up.send(b"".join(pending))
                        pending = []
                    await down.read()
                elif isinstance(event, h11.Data):
                    pending.append(up.h11.send(h11.Data(data=event.data)) or b"")
                elif isinstance(event, h11.EndOfMessage):
                    pending.append(up.h11.send(h11.EndOfMessage()) or b"")
                    await up.send(b"".join(pending))
                    return
                else:
                    raise ClientGone(f"unexpected {type(event).__name__} in a request body")
        except UpstreamError:
            return  # the backend stopped reading; its answer (or its failure) is the relay's
        except ClientGone as exc:
            self.client_gone = exc
            scope.cancel()

    async def _relay(self, up: Upstream) -> h11.InformationalResponse | None:
        """The backend's answer → client; returns the 101 of a switch instead."""
        event = await up.next_event()
        while isinstance(event, h11.InformationalResponse):
            if event.status_code == 101:
                if not self.upgrade:
                    raise UpstreamError("the backend switched protocols without being asked to")
                return event
            await self._send_down(h11.InformationalResponse(status_code=event.status_code,
                                                            headers=response_headers(event.headers),
                                                            reason=event.reason))
            event = await up.next_event()
        if not isinstance(event, h11.Response):
            raise UpstreamError("the backend closed the connection without answering")
        out = [
            self._encode(
                h11.Response(
                    status_code=event.status_code,
                    headers=response_headers(event.headers),
                    reason=event.reason,
                )
            )
        ]
        while True:
            event = up.event()
            if event is h11.NEED_DATA:
                await self._write(out)
                out = []
                await up.read()
            elif isinstance(event, h11.Data):
                out.append(self._encode(h11.Data(data=event.data)))
            elif isinstance(event, h11.EndOfMessage):
                out.append(self._encode(h11.EndOfMessage()))
                await self._write(out)
                return None
            else:
                raise UpstreamError("the backend closed the connection in the middle of its answer")

    def _encode(self, event: Any) -> bytes:
        try:
            return self.down.h11.send(event) or b""
        except h11.LocalProtocolError as exc:  # an answer this client cannot be sent
            raise UpstreamError(f"cannot pass the backend's answer on: {exc}") from exc

    async def _write(self, out: list[bytes]) -> None:
        if out:
            self.answered = True
            await self.down.write(b"".join(out))

    async def _send_down(self, event: Any) -> None:
        await self._write([self._encode(event)])

    async def _tunnel(self, up: Upstream, switch: h11.InformationalResponse) -> None:
        """After a 101: bytes both ways until both sides are done (or, over TLS, until the backend is)."""
        down = self.down
        self.router.stats.upgrades += 1
        await self._send_down(h11.InformationalResponse(
            status_code=101, headers=response_headers(switch.headers, switching=True), reason=switch.reason))
        down.keep_alive = False
        backend_early, client_early = up.h11.trailing_data[0], down.h11.trailing_data[0]
        if backend_early:
            await down.write(backend_early)
        if client_early:
            await up.send(client_early)
        plain = isinstance(down.stream, trio.SocketStream)
        async with trio.open_nursery() as nursery:
            if plain:
                assert isinstance(down.stream, trio.SocketStream)
                nursery.start_soon(PUMP, down.stream, up.stream)
                await PUMP(up.stream, down.stream)
            else:  # TLS cannot be half-closed: the backend's end ends the tunnel
                nursery.start_soon(copy_pump, down.stream, up.stream)
                await copy_pump(up.stream, down.stream)
                nursery.cancel_scope.cancel()
        up.close()


def _has_body(request: h11.Request) -> bool:
    if header(request.headers, b"transfer-encoding") is not None:
        return True
    length = header(request.headers, b"content-length")
    return length is not None and length.strip() not in (b"", b"0")
