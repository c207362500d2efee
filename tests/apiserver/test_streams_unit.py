"""Unit tests for the streaming subresources: SPDY framer, channel framing, container choice, and
the handler driven through ASGI messages directly (no sockets) on a simulated runtime."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from orchestra.api.errors import BadRequest
from orchestra.apiserver.http import Request
from orchestra.apiserver.streams import PodStreamsHandler
from orchestra.runtime.base import ContainerSpec, PodSandboxSpec, Runtime
from orchestra.runtime.simulated import open_simulated_runtime
from orchestra.streaming import spdy
from orchestra.streaming.pods import pick_container
from orchestra.streaming.remotecommand import resizes
from orchestra.streaming.websocket_channels import choose_subprotocol, decode, encode, exit_code_status

# ------------------------------------------------------------------------------------------ SPDY


def test_dictionary_is_the_spdy3_dictionary() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == spdy.DICTIONARY_ADLER32 == 0xE3C6A7C2
    block = spdy.Connection().encode(spdy.SynReply(1, {"a": "b"}))[12:]
    assert block[1] & 0x20  # FDICT: the zlib stream names its preset dictionary ...
    assert struct.unpack(">I", block[2:6])[0] == 0xE3C6A7C2  # ... by this Adler-32


FRAMES: list[spdy.Frame] = [
    spdy.Data(1, b"hello"),
    spdy.Data(3, b"", fin=True),
    spdy.Data(5, b"x" * 100_000),
    spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
    spdy.SynStream(7, {"a": "1\x002"}, associated_to=3, priority=5, fin=True, unidirectional=True),
    spdy.SynReply(1),
    spdy.SynReply(3, {"x-stream-protocol-version": "portforward.k8s.io"}, fin=True),
    spdy.HeadersFrame(5, {"k": "v"}),
    spdy.RstStream(3, spdy.RstStatus.CANCEL),
    spdy.Settings(((0, 7, 65536), (1, 4, 100))),
    spdy.Ping(1),
    spdy.GoAway(9, 0),
    spdy.WindowUpdate(0, 32768),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_frame_round_trip(frame: spdy.Frame) -> None:
    assert spdy.Connection().receive_data(spdy.Connection().encode(frame)) == [frame]


def test_a_stream_of_frames_fed_byte_by_byte() -> None:
    sender, receiver = spdy.Connection(), spdy.Connection()
    wire = sender.encode_all(FRAMES * 2)  # header blocks share one zlib context across frames
    got: list[spdy.Frame] = []
    for i in range(len(wire)):
        got += receiver.receive_data(wire[i : i + 1])
    assert got == FRAMES * 2


def test_control_frame_layout() -> None:
    wire = spdy.Connection().encode(spdy.RstStream(3, 5))
    assert wire == bytes.fromhex("80030003 00000008 00000003 00000005".replace(" ", ""))
    assert spdy.Connection().encode(spdy.Data(3, b"ab", fin=True)) == bytes.fromhex("00000003010000026162")


def test_unknown_control_frames_are_ignored_and_bad_versions_refused() -> None:
    noop = struct.pack(">HHI", 0x8003, 5, 0)
    assert spdy.Connection().receive_data(noop + spdy.Connection().encode(spdy.Ping(3))) == [spdy.Ping(3)]
    with pytest.raises(spdy.ProtocolError):
        spdy.Connection().receive_data(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")


def test_window_updates_follow_consumption() -> None:
    conn = spdy.Connection(window_update_threshold=1000)
    assert conn.consumed(1, 600) == []
    assert conn.consumed(1, 600) == [spdy.WindowUpdate(1, 1200), spdy.WindowUpdate(0, 1200)]
    assert conn.consumed(3, 999) == []
    assert conn.consumed(3, 1) == [spdy.WindowUpdate(3, 1000), spdy.WindowUpdate(0, 1000)]


headers = st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20),
                          st.text(max_size=200), max_size=8)


@given(st.lists(st.tuples(st.integers(1, 2**31 - 1), headers, st.binary(max_size=3000)), max_size=6))
def test_headers_and_data_round_trip(streams: list[tuple[int, dict[str, str], bytes]]) -> None:
    frames: list[spdy.Frame] = []
    for sid, hdrs, data in streams:
        frames += [spdy.SynStream(sid, hdrs), spdy.Data(sid, data, fin=True), spdy.SynReply(sid, hdrs)]
    assert spdy.Connection().receive_data(spdy.Connection().encode_all(frames)) == frames


# -------------------------------------------------------------------------------------- channels


def test_channel_framing() -> None:
    assert encode(1, b"hi") == b"\x01hi"
    assert decode(b"\x03{}") == (3, b"{}")
    assert decode(b"\xff\x00") == (255, b"\x00")
    assert decode(b"") == (-1, b"")


def test_subprotocol_choice_follows_the_client_order() -> None:
    assert (
        choose_subprotocol(
            ["v5.channel.k8s.io", "v4.channel.k8s.io"], ["v4.channel.k8s.io", "v5.channel.k8s.io"]
        )
        == "v5.channel.k8s.io"
    )
    assert choose_subprotocol(["v3.channel.k8s.io"], ["v5.channel.k8s.io"]) is None


def test_exit_code_status_is_what_kubectl_parses() -> None:
    status = exit_code_status(["false"], 1)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "1"}]


def test_resize_messages() -> None:
    assert resizes(b'{"Width":80,"Height":24}') == [(80, 24)]
    assert resizes(b'{"Width":80,"Height":24}\n{"Width":100,"Height":30}') == [(80, 24), (100, 30)]
    assert resizes(b"garbage") == []


def _pod(containers: list[str], init: tuple[str, ...] = (), default: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": "u1"}
    if default:
        meta["annotations"] = {"kubectl.kubernetes.io/default-container": default}
    return {"metadata": meta, "spec": {"containers": [{"name": c} for c in containers],
                                       "initContainers": [{"name": c} for c in init]}}


@pytest.mark.parametrize(("pod", "requested", "expected"), [
    (_pod(["a"]), None, "a"),
    (_pod(["a", "b"]), "b", "b"),
    (_pod(["a", "b"], init=("i",)), "i", "i"),
    (_pod(["a", "b"], default="b"), None, "b"),
    (_pod(["a", "b"], init=("i",)), None,
     "a container name must be specified for pod p, choose one of: [a b i]"),
    (_pod(["a"]), "x", "container x is not valid for pod p"),
], ids=["only", "named", "init", "annotation", "ambiguous", "unknown"])
def test_pick_container(pod: dict[str, Any], requested: str | None, expected: str) -> None:
    if " " not in expected:
        assert pick_container(pod, requested) == expected
    else:
        with pytest.raises(BadRequest, match=expected.replace("[", r"\[").replace("]", r"\]")):
            pick_container(pod, requested)


# -------------------------------------------------------------------------- handler over ASGI


class Locator:
    def __init__(self, runtime: Runtime, cid: str) -> None:
        self.runtime, self.cid = runtime, cid

    async def locate(
        self, pod: dict[str, Any], container: str, *, previous: bool = False
    ) -> tuple[Runtime, str]:
        return self.runtime, self.cid

    def pod_ip(self, pod: dict[str, Any]) -> str | None:
        return "10.88.0.5"

    async def connector(self, pod: dict[str, Any]) -> None:
        return None  # port-forward connects to pod_ip directly


class FakeClient:
    """The client side of one ASGI exchange: scripted inbound messages, recorded outbound ones."""

    def __init__(
        self, kind: str, query: bytes, subprotocols: list[str], headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        self.scope = {"type": kind, "path": "/", "query_string": query, "headers": list(headers),
                      "subprotocols": subprotocols, "method": "GET"}
        self.to_server, self._inbox = trio.open_memory_channel[dict[str, Any]](math.inf)
        self.sent: list[dict[str, Any]] = []
        self.sent_event = trio.Event()
        if kind == "websocket":
            self.to_server.send_nowait({"type": "websocket.connect"})

    async def receive(self) -> dict[str, Any]:
        return await self._inbox.receive()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.sent_event.set()
        self.sent_event = trio.Event()

    def request(self) -> Request:
        return Request.from_scope(self.scope, self.receive, self.send)

    def binary(self) -> list[bytes]:
        return [m["bytes"] for m in self.sent if m["type"] == "websocket.send"]


async def _run(client: FakeClient, sub: str, script: Any = None, connect: Any = None) -> list[dict[str, Any]]:
    from orchestra.apiserver.routes import Route

    async with open_simulated_runtime(script) as sim:
        sandbox = await sim.create_sandbox(PodSandboxSpec(name="p", uid="u1"))
        await sim.start_sandbox(sandbox)
        cid = await sim.create_container(
            sandbox, ContainerSpec(name="main", image="localhost/busybox:latest")
        )
        await sim.start_container(cid)
        kwargs = {"connect": connect} if connect else {}
        handler = PodStreamsHandler(Locator(sim, cid), **kwargs)
        route = Route(rt=None, namespace="default", name="p", subresource=sub)  # type: ignore[arg-type]
        await handler.handle(client.request(), route, _pod(["main"]))
    return client.sent


async def test_exec_over_v4(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        client = FakeClient(
            "websocket", b"command=sh&command=-c&command=exit+4&stdout=true", ["v4.channel.k8s.io"]
        )
        sent = await _run(client, "exec")
        assert sent[0] == {"type": "websocket.accept", "subprotocol": "v4.channel.k8s.io"}
        status = orjson.loads(client.binary()[-1][1:])
        assert status["details"]["causes"][0]["message"] == "4"
        assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


ESTABLISHED = [  # kube's empty "connection established" message: the lowest writable channel asked for
    ("stdout", b"command=echo&command=hi&stdout=true&stderr=true", b"\x01", [b"\x01hi\n"]),
    ("stderr", b"command=sh&command=-c&command=echo+oops+%3E%262&stderr=true", b"\x02", [b"\x02oops\n"]),
    ("error", b"command=true&stdin=true", b"\x03", []),
]


@pytest.mark.parametrize(("query", "first", "output"), [c[1:] for c in ESTABLISHED],
                         ids=[c[0] for c in ESTABLISHED])
async def test_the_first_message_is_kubes_empty_connection_established(
    autojump_clock: trio.testing.MockClock, query: bytes, first: bytes, output: list[bytes]
) -> None:
    with trio.fail_after(10):
        client = FakeClient("websocket", query, ["v5.channel.k8s.io"])
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": b"\xff\x00"})  # stdin's end
        await _run(client, "exec")
        # kubectl <= 1.33 may drop what comes before it has made its streams: let that be this one
        assert client.binary() == [first, *output, b'\x03{"metadata":{},"status":"Success"}']


async def test_exec_refuses_unknown_protocols_with_a_status(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        client = FakeClient("websocket", b"command=true&stdout=true", ["v2.channel.k8s.io"])
        sent = await _run(client, "exec")
        assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 400
        assert b"supported protocols" in sent[1]["body"]


async def test_spdy_exec_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        client = FakeClient("http", b"command=true&stdout=true", [], ((b"upgrade", b"SPDY/3.1"),))
        with pytest.raises(ExceptionGroup) as info:  # raised through the runtime's nursery
            await _run(client, "exec")
        assert info.group_contains(BadRequest, match="over WebSocket only")


async def test_spdy_port_forward_ends_the_error_stream_after_a_data_reset(
        autojump_clock: trio.testing.MockClock) -> None:
    """kubectl >= 1.32 resets the data stream once the pod's side has ended (FIN), then waits for the
    error stream to end before it closes the local connection: the error stream still gets its FIN."""
    pods: list[trio.abc.Stream] = []

    async def pod_that_answers_and_closes(host: str, port: int) -> trio.abc.Stream:
        ours, theirs = trio.testing.memory_stream_pair()
        await theirs.send_all(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nnot here")
        await theirs.aclose()
        pods.append(theirs)
        return ours

    with trio.fail_after(10):
        client = FakeClient("websocket", b"", ["SPDY/3.1+portforward.k8s.io"])
        conn = spdy.Connection()
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": conn.encode_all([
            spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
            spdy.SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}),
        ])})

        def sent() -> list[spdy.Frame]:
            return spdy.Connection().receive_data(b"".join(client.binary())) if client.binary() else []

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_run, client, "portforward", None, pod_that_answers_and_closes)
            while spdy.Data(3, b"", fin=True) not in sent():
                await client.sent_event.wait()
            client.to_server.send_nowait({"type": "websocket.receive",
                                          "bytes": conn.encode(spdy.RstStream(3, spdy.RstStatus.CANCEL))})
            while spdy.Data(1, b"", fin=True) not in sent():
                await client.sent_event.wait()
            client.to_server.send_nowait({"type": "websocket.disconnect", "code": 1000})
        data = b"".join(f.data for f in sent() if isinstance(f, spdy.Data) and f.stream_id == 3)
        assert data.endswith(b"not here")
        assert not [f for f in sent() if isinstance(f, spdy.Data) and f.stream_id == 1 and f.data]


async def test_spdy_port_forward_reports_connect_errors(autojump_clock: trio.testing.MockClock) -> None:
    async def refuse(host: str, port: int) -> trio.abc.Stream:
        raise ConnectionRefusedError(111, "Connection refused")

    with trio.fail_after(10):
        client = FakeClient("websocket", b"", ["SPDY/3.1+portforward.k8s.io"])
        conn = spdy.Connection()
        client.to_server.send_nowait({"type": "websocket.receive", "bytes": conn.encode_all([
            spdy.SynStream(1, {"streamtype": "error", "port": "9", "requestid": "0"}),
            spdy.SynStream(3, {"streamtype": "data", "port": "9", "requestid": "0"}),
        ])})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_run, client, "portforward", None, refuse)
            frames: list[spdy.Frame] = []
            while not any(isinstance(f, spdy.Data) and f.stream_id == 1 and f.fin for f in frames):
                await client.sent_event.wait()
                frames = conn.receive_data(b"".join(client.binary())) if client.binary() else []
                conn = spdy.Connection()  # re-parse everything sent so far with a fresh context
            client.to_server.send_nowait({"type": "websocket.disconnect", "code": 1000})
        errors = [f for f in frames if isinstance(f, spdy.Data) and f.stream_id == 1 and f.data]
        assert (
            b"error forwarding port 9 to pod default/p, uid u1: failed to connect to 10.88.0.5:9"
            in errors[0].data
        )
        assert spdy.SynReply(1) in frames and spdy.SynReply(3) in frames
