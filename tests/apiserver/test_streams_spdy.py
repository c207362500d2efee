"""kubectl <= 1.29 exec and <= 1.30 port-forward over a raw `Upgrade: SPDY/3.1` connection.

Uses the in-process harness of test_streams_kubectl (h11 server, so `orchestra.raw_upgrade` is
available) with the real kubectl binaries, plus a hand-driven SPDY exec session.
"""

from __future__ import annotations

import ssl

import orjson
import pytest
import trio

from orchestra.apiserver import spdy
from tests.e2e.test_streams_kubectl import (  # noqa: F401  (fixtures)
    TOKEN,
    Harness,
    echo_port,
    harness,
    port_forward_scenario,
)

MiB = 1024 * 1024


@pytest.mark.parametrize("version", ["1.27", "1.28", "1.29"])
async def test_kubectl_exec_over_spdy(harness: Harness, version: str) -> None:  # noqa: F811
    with trio.fail_after(30):
        await harness.make_pod("p")
        out = await harness.kubectl("exec", "p", "--", "echo", "hi", version=version)
        assert out.stdout == b"hi\n"
        out = await harness.kubectl("exec", "p", "--", "false", check=False, version=version)
        assert out.returncode == 1
        assert b"command terminated with exit code 1" in out.stderr
        out = await harness.kubectl("exec", "p", "--", "sh", "-c", "exit 3", check=False, version=version)
        assert out.returncode == 3


async def test_kubectl_exec_stdin_over_spdy(harness: Harness) -> None:  # noqa: F811
    with trio.fail_after(30):
        await harness.make_pod("p")
        data = b"hello\nworld\n" + bytes(range(256)) * 400
        out = await harness.kubectl("exec", "-i", "p", "--", "cat", stdin=data, version="1.29")
        assert out.stdout == data


@pytest.mark.parametrize("version", ["1.27", "1.30"])
async def test_kubectl_port_forward_over_spdy(harness: Harness, echo_port: int, version: str) -> None:  # noqa: F811
    await port_forward_scenario(harness, echo_port, version, size=2 * MiB, conns=3)


async def test_spdy_exec_by_hand(harness: Harness) -> None:  # noqa: F811
    """The wire protocol itself: 101 with the chosen version, SYN_REPLYs, output, v4 Status, FINs."""
    with trio.fail_after(30):
        await harness.make_pod("p")
        host, port = harness.url.removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cafile=str(harness.ca_cert))
        tcp = await trio.open_tcp_stream(host, int(port))
        stream = trio.SSLStream(tcp, ctx, server_hostname=host)
        head = (
            f"POST /api/v1/namespaces/default/pods/p/exec?command=false&stdout=true&stderr=true HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        await stream.send_all(head.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(4096)
        response, rest = buf.split(b"\r\n\r\n", 1)
        assert response.startswith(b"HTTP/1.1 101")
        assert b"x-stream-protocol-version: v4.channel.k8s.io" in response.lower()
        conn = spdy.Connection()
        await stream.send_all(conn.encode_all([spdy.SynStream(1, {"streamtype": "error"}),
                                               spdy.SynStream(3, {"streamtype": "stdout"}),
                                               spdy.SynStream(5, {"streamtype": "stderr"})]))
        frames: list[spdy.Frame] = []
        fins: set[int] = set()
        error = b""
        data = rest
        while True:
            new = conn.receive_data(data)
            frames += new
            for f in new:
                if isinstance(f, spdy.Data):
                    if f.stream_id == 1:
                        error += f.data
                    if f.fin:
                        fins.add(f.stream_id)
            if fins == {1, 3, 5}:
                break
            data = bytes(await stream.receive_some(65536))
            assert data, f"closed early: {frames}"
        assert {f.stream_id for f in frames if isinstance(f, spdy.SynReply)} == {1, 3, 5}
        status = orjson.loads(error)
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "1"}]
        await stream.aclose()
