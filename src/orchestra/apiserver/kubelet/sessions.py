"""The API server's end of the kubelet API's streams, as the Runtime contract's sessions.

Owns: `http_get(stream, host, target)` (one GET over h11, the body streamed), `ChannelSession` (a
`v5`/`v4.channel.k8s.io` WebSocket as an ExecSession / AttachSession: output from channels 1 and 2,
stdin on 0, the v5 close of stdin, resize JSON on 4; the Status on channel 3 becomes the exit code),
`PortForwardStream` (one port of the kubelet's websocket port-forward protocol as a trio Stream), and
`kubelet_failure(status, body)`: the kubelet's refusal as a runtime error (404: NotFound).
Must not import: cli, app, reconcilers, node, net; from runtime only the `base` contract.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import h11
import orjson
import trio

from orchestra.apiserver.kubelet.wsclient import WsClient
from orchestra.runtime.base import NotFound, RuntimeFailure
from orchestra.streaming.websocket_channels import Channel

READ_SIZE = 64 * 1024


class KubeletRefusal(RuntimeFailure):
    """The kubelet API answered with an error; `status` is its HTTP code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class KubeletNotFound(KubeletRefusal, NotFound):
    pass


def kubelet_failure(status: int, body: bytes) -> KubeletRefusal:
    """A refusal of the kubelet API (a Status, or kubelet's plain text) as the runtime error it means."""
    text = body.decode(errors="replace").strip()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        text = str(doc.get("message") or text)
    message = text or f"the kubelet answered HTTP {status}"
    return (KubeletNotFound if status == 404 else KubeletRefusal)(message, status)


async def http_get(stream: trio.abc.Stream, host: str, target: str) -> AsyncIterator[bytes]:
    """GET `target`; yields the body's chunks, or raises kubelet_failure for a non-200 answer."""
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(
        conn.send(
            h11.Request(
                method="GET",
                target=target,
                headers=[("Host", host), ("Accept", "*/*"), ("Connection", "close")],
            )
        )
    )
    await stream.send_all(conn.send(h11.EndOfMessage()))
    status, error = 0, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(bytes(await stream.receive_some(READ_SIZE)))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                conn.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            if status == 200:
                yield bytes(event.data)
            else:
                error += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            if status != 200:
                raise kubelet_failure(status, bytes(error))
            return


async def lines_of(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Chunks cut into lines, each ending in b"\\n" (the last one maybe not), as runtime.logs gives them."""
    rest = b""
    async for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            yield line + b"\n"
    if rest:
        yield rest


class ChannelSession:
    """An exec or attach on the node, through its kubelet API's channel WebSocket."""

    def __init__(self, ws: WsClient, *, attach: bool = False) -> None:
        self.ws = ws
        self.attach = attach
        self.status: dict[str, object] | None = None

    async def send_stdin(self, data: bytes) -> None:
        await self.ws.send(bytes((Channel.STDIN,)) + data)

    async def close_stdin(self) -> None:
        if self.ws.subprotocol == "v5.channel.k8s.io":
            await self.ws.send(bytes((Channel.CLOSE, Channel.STDIN)))

    async def resize(self, width: int, height: int) -> None:
        await self.ws.send(bytes((Channel.RESIZE,)) + json.dumps({"Width": width, "Height": height}).encode())

    async def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        while self.status is None and (message := await self.ws.receive()) is not None:
            if not message:
                continue
            channel, data = message[0], message[1:]
            if channel in (Channel.STDOUT, Channel.STDERR) and data:
                yield channel, data
            elif channel == Channel.ERROR:
                self.status = (
                    orjson.loads(data)
                    if data.startswith(b"{")
                    else {"status": "Failure", "message": data.decode()}
                )

    async def wait(self) -> int:
        async for _ in self:
            pass  # unread output is discarded, as the contract says
        status = self.status or {}
        if status.get("status") == "Success":
            return 0
        if status.get("reason") == "NonZeroExitCode":
            causes = (status.get("details") or {}).get("causes") or []  # type: ignore[attr-defined]
            codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
            if codes and str(codes[0]).isdigit():
                return int(codes[0])
        if self.attach and not status:
            return 0  # the session ended without a word: the container's stream just closed
        raise RuntimeFailure(str(status.get("message") or "the kubelet closed the stream without a status"))


class PortForwardStream(trio.abc.Stream):
    """One pod port through the kubelet's websocket port-forward (channel 0 data, 1 errors; each
    channel starts with the port as 2 little-endian bytes). An error from the kubelet ends the
    stream (the port-forward then closes that connection, as for a pod that hung up)."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self._prefix = {0: 2, 1: 2}  # port bytes still to skip on each channel
        self._buffer = b""  # received beyond what the reader asked for
        self.error = ""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.ws.send(bytes((0,)) + bytes(data))
        except (OSError, trio.ClosedResourceError) as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        return None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data, self._buffer = self._buffer or await self._next(), b""
        if max_bytes is not None and len(data) > max_bytes:
            data, self._buffer = data[:max_bytes], data[max_bytes:]
        return data

    async def _next(self) -> bytes:
        while (message := await self.ws.receive()) is not None:
            if not message or message[0] not in self._prefix:
                continue
            channel, data = message[0], message[1:]
            skip = min(self._prefix[channel], len(data))
            self._prefix[channel] -= skip
            data = data[skip:]
            if channel == 1 and data:
                self.error += data.decode(errors="replace")
                return b""
            if data:
                return data
        return b""

    async def aclose(self) -> None:
        await self.ws.aclose()
