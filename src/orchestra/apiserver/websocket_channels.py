"""Kubernetes' WebSocket channel protocols over an ASGI websocket (from the h11 server or hypercorn).

Owns: the server side of one ASGI websocket (`WebSocket`: accept with a subprotocol, or reject
with an HTTP Status response; binary messages; close) and the channel framing of
`v4.channel.k8s.io` / `v5.channel.k8s.io`: every binary message starts with one channel byte
(0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize; v5 adds 255 "close channel N").
Either server answers WebSocket pings itself (h11ws.py for the h11 server).
Must not import: cli, reconcilers, node, runtime.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import orjson

from orchestra.apiserver.http import Receive, Send

V5_CHANNEL = "v5.channel.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
SPDY_PORTFORWARD = "SPDY/3.1+portforward.k8s.io"  # kubectl >= 1.31: SPDY tunnelled in WebSocket (KEP-4006)
PORTFORWARD = "portforward.k8s.io"


class Channel(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    ERROR = 3  # the exec's final Status (JSON)
    RESIZE = 4  # {"Width": w, "Height": h}
    CLOSE = 255  # v5 only: payload is the channel being closed (stdin: [255, 0])


def choose_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first protocol the client offered that we support (kube's wsstream picks in client order)."""
    for proto in offered:
        if proto.strip() in supported:
            return proto.strip()
    return None


def encode(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def decode(message: bytes) -> tuple[int, bytes]:
    """(channel, payload); an empty message is channel -1 (ignored by callers)."""
    if not message:
        return -1, b""
    return message[0], message[1:]


class WebSocket:
    """One ASGI websocket, server side. `open()` first; then `accept` or `reject`."""

    def __init__(self, scope: dict[str, Any] | Any, receive: Receive, send: Send) -> None:
        self.offered: list[str] = [str(p) for p in scope.get("subprotocols") or []]
        self._receive = receive
        self._send = send
        self.accepted = False
        self.closed = False  # by either side
        self.subprotocol: str | None = None

    async def open(self) -> None:
        msg = await self._receive()
        if msg["type"] != "websocket.connect":
            self.closed = True

    async def accept(self, subprotocol: str | None) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.accepted, self.subprotocol = True, subprotocol

    async def reject(self, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
        """Answer the upgrade with a plain HTTP response (the ASGI websocket.http.response extension)."""
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await self._send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await self._send({"type": "websocket.http.response.body", "body": body})
        self.closed = True

    async def send(self, data: bytes) -> None:
        if not self.closed:
            await self._send({"type": "websocket.send", "bytes": data})

    async def receive(self) -> bytes | None:
        """The next message's bytes (text is UTF-8 encoded); None once the connection is closed."""
        while not self.closed:
            msg = await self._receive()
            if msg["type"] == "websocket.receive":
                data = msg.get("bytes")
                return data if data is not None else (msg.get("text") or "").encode()
            if msg["type"] == "websocket.disconnect":
                self.closed = True
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.accepted and not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


class ChannelSocket:
    """A `v4`/`v5.channel.k8s.io` connection: channel-tagged binary messages."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.v5 = ws.subprotocol == V5_CHANNEL

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send(encode(channel, data))

    async def send_status(self, status: dict[str, Any]) -> None:
        await self.send(Channel.ERROR, orjson.dumps(status))

    async def receive(self) -> tuple[int, bytes] | None:
        message = await self.ws.receive()
        return None if message is None else decode(message)


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(command: Sequence[str], code: int) -> dict[str, Any]:
    """kubelet's Status for a non-zero exit; kubectl turns it into `command terminated with exit code N`."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: "
                   f"command '{' '.join(command)}' exited with {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
