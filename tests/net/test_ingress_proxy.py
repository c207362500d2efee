"""The ingress controller in process: real sockets on 127.0.0.1 (no root), the real API core, backends
that are small h11 servers. Routing, 404 / 503 / 502, X-Forwarded-*, keep-alive, streaming both ways
without buffering, early answers, Upgrade tunnels, HTTPS by SNI, the status address."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.net.ingress import IngressController
from orchestra.net.ingress.certs import context_from_files
from orchestra.store import Store
from tests.net.certutil import CertAuthority, tls_secret

Obj = dict[str, Any]
NS = "default"
MIB = 1024 * 1024
CA = CertAuthority()


# --- backends ---------------------------------------------------------------------------------------


@attrs.define
class Backend:
    """An h11 server. GET /big/N streams N bytes (no content-length) once `release` is set; POST
    /count reads the body as it comes (setting `first_chunk`) and answers its size; /early answers
    413 at once without reading the body; anything else answers JSON: name, target, headers, body."""

    name: str
    port: int = 0
    requests: int = 0
    release: trio.Event = attrs.field(factory=trio.Event)
    first_chunk: trio.Event = attrs.field(factory=trio.Event)
    close_after_each: bool = False  # close keep-alive connections right after answering (silently)

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            while True:
                request, body = await self._request(conn, stream)
                if request is None:
                    return
                await self._answer(conn, stream, request, body)
                if (
                    self.close_after_each
                    or conn.our_state is not h11.DONE
                    or conn.their_state is not h11.DONE
                ):
                    return
                conn.start_next_cycle()

    async def _next(self, conn: h11.Connection, stream: trio.SocketStream) -> Any:
        while (event := conn.next_event()) is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        return event

    async def _request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> tuple[h11.Request | None, int]:
        request = await self._next(conn, stream)
        if not isinstance(request, h11.Request):
            return None, 0
        self.requests += 1
        if request.target == b"/early":
            return request, -1
        if conn.they_are_waiting_for_100_continue:
            await stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        size = 0
        while isinstance(event := await self._next(conn, stream), h11.Data):
            size += len(event.data)
            self.first_chunk.set()
        return request, size

    async def _answer(
        self, conn: h11.Connection, stream: trio.SocketStream, req: h11.Request, size: int
    ) -> None:
        if req.target.startswith(b"/big/"):
            total = int(req.target.split(b"/")[-1])
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[])) or b"")
            chunk = b"x" * 65536
            sent = 0
            while sent < total:
                if sent >= total // 2:
                    await self.release.wait()  # half is out: the client must see it before the rest exists
                await stream.send_all(conn.send(h11.Data(data=chunk[: total - sent])) or b"")
                sent += min(len(chunk), total - sent)
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            return
        if size < 0:
            body, status = b"too large", 413
        else:
            status = 200
            body = json.dumps({"name": self.name, "target": req.target.decode(), "size": size,
                               "headers": {k.decode(): v.decode() for k, v in req.headers}}).encode()
        head = h11.Response(status_code=status, headers=[(b"content-length", b"%d" % len(body))])
        await stream.send_all((conn.send(head) or b"") + (conn.send(h11.Data(data=body)) or b"")
                              + (conn.send(h11.EndOfMessage()) or b""))


async def upgrade_backend(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Answers an Upgrade request with 101 and then echoes raw bytes, upper-cased."""
    async def handle(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            while (event := conn.next_event()) is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            assert isinstance(event, h11.Request)
            while not isinstance(conn.next_event(), h11.EndOfMessage | type(h11.PAUSED)):
                pass
            proto = dict(event.headers).get(b"upgrade", b"")
            await stream.send_all(
                (
                    conn.send(
                        h11.InformationalResponse(
                            status_code=101, headers=[(b"upgrade", proto), (b"connection", b"Upgrade")]
                        )
                    )
                    or b""
                )
                + b"hello:"
            )
            early = conn.trailing_data[0]
            if early:
                await stream.send_all(early.upper())
            while data := await stream.receive_some(65536):
                await stream.send_all(data.upper())

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


async def serve(backend: Backend, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    backend.port = listeners[0].socket.getsockname()[1]
    task_status.started(backend.port)
    await trio.serve_listeners(backend.handle, listeners)


# --- the cluster side ---------------------------------------------------------------------------------


@attrs.define
class Env:
    client: LocalClient
    controller: IngressController
    nursery: trio.Nursery

    @property
    def http(self) -> int:
        return self.controller.bound["http"][1]

    @property
    def https(self) -> int:
        return self.controller.bound["https"][1]

    async def create(self, kind: str, obj: Obj) -> Obj:
        return await self.client.create(self.client.kind(kind), NS, obj)

    async def service(
        self, name: str, ports: list[int], *, ready: bool = True, port_name: str = "http"
    ) -> None:
        await self.create(
            "Service", {"metadata": {"name": name}, "spec": {"ports": [{"name": port_name, "port": 80}]}}
        )
        await self.create("EndpointSlice", endpoint_slice(name, ports, ready=ready, port_name=port_name))

    async def settle(self) -> None:
        """Until informers delivered and the controller synced (everything waits on I/O again)."""
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 5.0) -> None:
    """For what a worker thread finishes (certificates load in one): poll `check` until it holds."""
    with trio.fail_after(limit):
        while not await check():  # noqa: ASYNC110 - nothing to wait on: a thread's result shows in a handshake
            await trio.sleep(0.02)


def endpoint_slice(service: str, ports: list[int], *, ready: bool = True, port_name: str = "http") -> Obj:
    # one slice per port: every endpoint of a slice shares its port number
    return {"metadata": {"name": f"{service}-{ports[0] if ports else 'none'}",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}] if ports else [],
            "ports": [{"name": port_name, "port": ports[0] if ports else 1}]}


def ingress(name: str, rules: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": rules, **spec}}


def rule(host: str, *paths: tuple[str, str, str]) -> Obj:
    return {"host": host, "http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"name": "http"}}}}
        for p, t, svc in paths]}}


@pytest.fixture
async def env(tmp_path: Any) -> AsyncIterator[Env]:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core, field_manager="test")
    default = CertAuthority("default-ca").issue("ingress.local")
    (tmp_path / "d.crt").write_bytes(default.cert)
    (tmp_path / "d.key").write_bytes(default.key)
    controller = IngressController(client, http=("127.0.0.1", 0), https=("127.0.0.1", 0),
                                   tls_default=context_from_files(tmp_path / "d.crt", tmp_path / "d.key"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield Env(client, controller, nursery)
        nursery.cancel_scope.cancel()
    store.close()


# --- a small HTTP client --------------------------------------------------------------------------------


@attrs.define
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to the ingress (h11 on the client side)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int, *, server_name: str | None = None, ca: bytes | None = None) -> Client:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        if server_name is None:
            return cls(tcp)
        ctx = ssl.create_default_context(cadata=ca.decode() if ca else None)
        stream = trio.SSLStream(tcp, ctx, server_hostname=server_name)
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        return cls(stream)

    async def _next(self) -> Any:
        while (event := self.conn.next_event()) is h11.NEED_DATA:
            self.conn.receive_data(await self.stream.receive_some(65536))
        return event

    async def request(self, method: str, target: str, host: str, *, body: bytes = b"",
                      chunks: Callable[[], AsyncIterator[bytes]] | None = None,
                      on_head: Callable[[Response], Awaitable[None]] | None = None) -> Response:
        headers = [("host", host)]
        if chunks is not None:
            headers.append(("transfer-encoding", "chunked"))
        elif body:
            headers.append(("content-length", str(len(body))))
        await self.stream.send_all(
            self.conn.send(h11.Request(method=method, target=target, headers=headers)) or b""
        )
        if chunks is not None:
            async for chunk in chunks():
                await self.stream.send_all(self.conn.send(h11.Data(data=chunk)) or b"")
        elif body:
            await self.stream.send_all(self.conn.send(h11.Data(data=body)) or b"")
        await self.stream.send_all(self.conn.send(h11.EndOfMessage()) or b"")
        return await self.response(on_head)

    async def response(self, on_head: Callable[[Response], Awaitable[None]] | None = None) -> Response:
        event = await self._next()
        assert isinstance(event, h11.Response), event
        out = Response(event.status_code, dict(event.headers), b"")
        parts = []
        while isinstance(event := await self._next(), h11.Data):
            parts.append(event.data)
            if on_head is not None and len(parts) == 1:
                await on_head(out)
        out.body = b"".join(parts)
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return out

    async def aclose(self) -> None:
        await self.stream.aclose()


async def get(port: int, host: str, target: str = "/") -> Response:
    client = await Client.open(port)
    try:
        return await client.request("GET", target, host)
    finally:
        await client.aclose()


# --- tests ----------------------------------------------------------------------------------------------


async def test_hosts_and_paths_route_to_their_services_over_keep_alive(env: Env) -> None:
    one, two = Backend("one"), Backend("two")
    await env.nursery.start(serve, one)
    await env.nursery.start(serve, two)
    await env.service("one", [one.port])
    await env.service("two", [two.port])
    await env.create(
        "Ingress",
        ingress(
            "web",
            [
                rule("a.test", ("/", "Prefix", "one"), ("/two", "Prefix", "two")),
                rule("b.test", ("/", "Prefix", "two")),
            ],
        ),
    )
    await env.settle()
    with trio.fail_after(10):
        client = await Client.open(env.http)
        seen = [
            (await client.request("GET", target, host)).json()["name"]
            for host, target in [
                ("a.test", "/"),
                ("a.test", "/two/x?q=1"),
                ("b.test", "/"),
                ("A.TEST:80", "/twox"),
            ]
        ]
        assert seen == ["one", "two", "two", "one"]
        missing = await client.request("GET", "/", "c.test")
        assert (
            missing.status == 404
            and missing.body == b"404 Not Found: no Ingress rule matches this host and path\n"
        )
        echoed = await client.request("POST", "/two/echo", "a.test", body=b"abc")
        await client.aclose()
    assert echoed.json()["size"] == 3 and echoed.json()["target"] == "/two/echo"
    headers = echoed.json()["headers"]
    assert headers["host"] == "a.test" and headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-host"] == "a.test"
    assert headers["x-forwarded-port"] == str(env.http) and headers["x-real-ip"] == "127.0.0.1"
    stats = env.controller.statistics()
    assert stats["connections_total"] == 1 and stats["requests"] == 6 and stats["not_found"] == 1
    assert stats["upstream_reuses"] >= 2  # keep-alive to the backends too


async def test_503_until_an_endpoint_is_ready_then_served(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        gone = await get(env.http, "a.test")
        assert gone.status == 503 and b"service default/one not found" in gone.body
        await env.service("one", [one.port], ready=False)
        await env.settle()
        unready = await get(env.http, "a.test")
        assert (
            unready.status == 503
            and unready.body == b"503 Service Unavailable: no ready endpoint for default/one:http\n"
        )
        sl = await env.client.get(env.client.kind("EndpointSlice"), NS, f"one-{one.port}")
        sl["endpoints"][0]["conditions"]["ready"] = True
        await env.client.update(env.client.kind("EndpointSlice"), sl)
        await env.settle()
        assert (await get(env.http, "a.test")).json()["name"] == "one"
        # scaled to zero: the slice has no endpoint any more
        sl = await env.client.get(env.client.kind("EndpointSlice"), NS, f"one-{one.port}")
        sl["endpoints"] = []
        await env.client.update(env.client.kind("EndpointSlice"), sl)
        await env.settle()
        assert (await get(env.http, "a.test")).status == 503


async def test_an_endpoint_that_refuses_is_skipped_and_none_is_502(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    with trio.socket.socket() as s:  # a port nobody listens on
        await s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    await env.service("one", [dead])
    await env.create("EndpointSlice", endpoint_slice("one", [one.port]))
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        assert [(await get(env.http, "a.test")).status for _ in range(4)] == [200] * 4
        await env.client.delete(env.client.kind("EndpointSlice"), NS, f"one-{one.port}")
        await env.settle()
        bad = await get(env.http, "a.test")
    assert bad.status == 502 and b"no endpoint of default/one:http accepts connections" in bad.body


async def test_bodies_stream_both_ways(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    await env.service("one", [one.port])
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(20):
        client = await Client.open(env.http)

        async def upload() -> AsyncIterator[bytes]:
            yield b"y" * MIB
            await one.first_chunk.wait()  # the backend has bytes before the client sent the rest
            for _ in range(15):
                yield b"y" * MIB

        assert (await client.request("POST", "/count", "a.test", chunks=upload)).json()["size"] == 16 * MIB

        async def seen_half(_resp: Response) -> None:
            one.release.set()  # the first bytes arrived while the backend held back the second half

        big = await client.request("GET", f"/big/{32 * MIB}", "a.test", on_head=seen_half)
        assert (
            big.status == 200
            and len(big.body) == 32 * MIB
            and big.headers.get(b"transfer-encoding") == b"chunked"
        )
        await client.aclose()


async def test_an_answer_before_the_body_is_read(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    await env.service("one", [one.port])
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        client = await Client.open(env.http)
        head = h11.Request(
            method="POST", target="/early", headers=[("host", "a.test"), ("content-length", str(4 * MIB))]
        )
        await client.stream.send_all(client.conn.send(head) or b"")
        await client.stream.send_all(client.conn.send(h11.Data(data=b"z" * 65536)) or b"")
        answer = await client.response()
        await client.aclose()
    assert answer.status == 413 and answer.body == b"too large"


async def test_100_continue_comes_from_the_backend(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    await env.service("one", [one.port])
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        client = await Client.open(env.http)
        head = h11.Request(method="PUT", target="/up", headers=[("host", "a.test"), ("content-length", "5"),
                                                                ("expect", "100-continue")])
        await client.stream.send_all(client.conn.send(head) or b"")
        interim = await client._next()  # the client sends nothing more before it
        assert isinstance(interim, h11.InformationalResponse) and interim.status_code == 100
        await client.stream.send_all((client.conn.send(h11.Data(data=b"hello")) or b"")
                                     + (client.conn.send(h11.EndOfMessage()) or b""))
        answer = await client.response()
        await client.aclose()
    assert answer.json()["size"] == 5 and answer.json()["headers"]["expect"] == "100-continue"


async def test_a_pooled_connection_the_backend_closed_is_retried(env: Env) -> None:
    one = Backend("one", close_after_each=True)
    await env.nursery.start(serve, one)
    await env.service("one", [one.port])
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        client = await Client.open(env.http)
        statuses = []
        for _ in range(5):
            statuses.append((await client.request("GET", "/", "a.test")).status)
            await trio.sleep(0.01)
        await client.aclose()
    assert statuses == [200] * 5 and one.requests == 5


async def test_upgrade_becomes_a_tunnel(env: Env) -> None:
    port = await env.nursery.start(upgrade_backend)
    await env.service("ws", [port])
    await env.create("Ingress", ingress("ws", [rule("ws.test", ("/", "Prefix", "ws"))]))
    await env.settle()
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", env.http)
        await stream.send_all(
            b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly"
        )
        got = b""
        while b"hello:EARLY" not in got:
            got += await stream.receive_some(65536)
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ") and b"upgrade: echo" in head.lower()
        assert rest == b"hello:EARLY"
        await stream.send_all(b"more bytes")
        echoed = b""
        while len(echoed) < 10:
            echoed += await stream.receive_some(65536)
        assert echoed == b"MORE BYTES"
        await stream.aclose()
    assert env.controller.statistics()["upgrades"] == 1


async def test_https_certificate_by_sni(env: Env) -> None:
    one, two = Backend("one"), Backend("two")
    await env.nursery.start(serve, one)
    await env.nursery.start(serve, two)
    await env.service("one", [one.port])
    await env.service("two", [two.port])
    await env.create("Secret", tls_secret("a-tls", CA.issue("a.test")))
    await env.create(
        "Ingress",
        ingress(
            "web",
            [rule("a.test", ("/", "Prefix", "one")), rule("b.test", ("/", "Prefix", "two"))],
            tls=[{"hosts": ["a.test"], "secretName": "a-tls"}, {"hosts": ["b.test"], "secretName": "b-tls"}],
        ),
    )
    await env.settle()
    with trio.fail_after(10):
        with pytest.raises(trio.BrokenResourceError) as refused:  # no b-tls yet: the default certificate
            await Client.open(env.https, server_name="b.test", ca=CA.pem)
        assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
        await env.create("Secret", tls_secret("b-tls", CA.issue("b.test")))

        async def b_has_its_certificate() -> bool:
            try:
                await (await Client.open(env.https, server_name="b.test", ca=CA.pem)).aclose()
            except trio.BrokenResourceError:
                return False
            return True

        await eventually(b_has_its_certificate)
        for host, name in (("a.test", "one"), ("b.test", "two")):
            client = await Client.open(env.https, server_name=host, ca=CA.pem)
            answer = await client.request("GET", "/", host)
            await client.aclose()
            assert answer.json()["name"] == name and answer.json()["headers"]["x-forwarded-proto"] == "https"
            assert answer.json()["headers"]["x-forwarded-port"] == str(env.https)


async def test_status_address_follows_the_class(env: Env) -> None:
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.create(
        "IngressClass", {"metadata": {"name": "other"}, "spec": {"controller": "example.com/other"}}
    )
    ing_rt = env.client.kind("Ingress")
    await env.settle()
    got = await env.client.get(ing_rt, NS, "web")
    assert got["status"] == {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    got["spec"]["ingressClassName"] = "other"
    await env.client.update(ing_rt, got)
    await env.settle()
    assert (await env.client.get(ing_rt, NS, "web"))["status"] == {"loadBalancer": {}}
    with trio.fail_after(5):
        assert (await get(env.http, "a.test")).status == 404  # and it is no longer routed


async def test_a_stalled_client_does_not_stall_others(env: Env) -> None:
    one = Backend("one")
    await env.nursery.start(serve, one)
    await env.service("one", [one.port])
    await env.create("Ingress", ingress("web", [rule("a.test", ("/", "Prefix", "one"))]))
    await env.settle()
    with trio.fail_after(10):
        half = await trio.open_tcp_stream("127.0.0.1", env.http)
        await half.send_all(b"GET / HTTP/1.1\r\nHost: a.te")  # and nothing more
        reader = await Client.open(env.http)  # asks for 64 MiB and never reads them
        await reader.stream.send_all(reader.conn.send(h11.Request(method="GET", target=f"/big/{64 * MIB}",
                                                                  headers=[("host", "a.test")])) or b"")
        one.release.set()
        for _ in range(20):
            assert (await get(env.http, "a.test", "/fast")).status == 200
        await half.aclose()
        await reader.aclose()
