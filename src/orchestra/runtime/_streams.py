"""Streaming libpod calls on trio with httpx over the unix socket: logs, exec, attach, events.

Owns: the cancellable half of the Podman adapter (a thread blocked in a socket read could not be
cancelled), the 8-byte-header stream demultiplexer, and exec and attach over a hijacked
connection (HTTP 101 "Upgrade: tcp", then raw bytes both ways; closing stdin is a write-side
socket shutdown, which podman passes on to conmon, which closes the process's stdin).
Streams use h11 on their own trio unix-socket connection; short calls use an httpx client.
Must not import: podman (podman-py; `podman.py` is its only importer), anything above runtime.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import h11
import httpx
import trio

from orchestra.runtime._convert import StdioConfig, error_for, label_filters, parse_time, stdio_config
from orchestra.runtime.base import InvalidState, NotFound, RuntimeUnavailable

_READ_SIZE = 65536
# What podman 4.3 writes on stderr, instead of the container's output, when the container exits
# while the attach is being set up (conmon closed its attach socket under podman's read).
_ATTACH_LOST = re.compile(rb"Error: read unixpacket \S*/attach: read: connection reset by peer\n?")
ATTACH_RACE = 2.0  # seconds: a container that started this shortly before such an attach raced it


class LibpodStreams:
    def __init__(self, socket_path: str, api_version: str):
        self.socket_path = socket_path
        self._prefix = f"/v{api_version}/libpod"
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket_path),
            base_url=f"http://d{self._prefix}",
            timeout=60.0,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise RuntimeUnavailable(
                f"the Podman service on {self.socket_path} is not answering ({exc!r})"
            ) from exc
        if response.status_code >= 400:
            raise error_for(response.status_code, _message(response), path)
        return response.json() if response.content else None

    @asynccontextmanager
    async def _stream(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        upgrade: bool = False,
    ) -> AsyncIterator[_HttpStream]:
        # h11 on a raw trio socket rather than httpx streaming: httpx's nested async generators
        # cannot be closed when a caller stops reading early (trio then warns at GC time).
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        try:
            sock = await trio.open_unix_socket(self.socket_path)
        except OSError as exc:
            raise RuntimeUnavailable(
                f"the Podman service on {self.socket_path} is not answering ({exc!r})"
            ) from exc
        async with sock:
            stream = _HttpStream(sock)
            status, error = await stream.request(method, target, body, upgrade)
            if status >= 400:
                raise error_for(status, error, path)
            yield stream

    # ---------------------------------------------------------------------------------------- logs

    @asynccontextmanager
    async def logs(
        self,
        container_id: str,
        *,
        tty: bool,
        follow: bool,
        tail: int | None,
        timestamps: bool,
        since: datetime | None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        params = {
            "stdout": "true",
            "stderr": "true",
            "follow": _bool(follow),
            "timestamps": _bool(timestamps),
        }
        if tail is not None:
            params["tail"] = str(max(0, tail))
        if since is not None:
            params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        async with self._stream("GET", f"/containers/{container_id}/logs", params) as stream:
            yield _Lines(_Frames(stream.receive_body, tty))

    # ---------------------------------------------------------------------------------------- exec

    @asynccontextmanager
    async def exec(
        self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool
    ) -> AsyncIterator[PodmanExecSession]:
        body = {"Cmd": cmd, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": tty}
        exec_id = (await self._call("POST", f"/containers/{container_id}/exec", json=body))["Id"]
        async with self._stream(
            "POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": tty}, True
        ) as stream:
            if not stream.upgraded:
                raise InvalidState("exec start did not upgrade the connection")
            yield PodmanExecSession(self, exec_id, stream, tty)

    # -------------------------------------------------------------------------------------- attach

    @asynccontextmanager
    async def attach(
        self, container_id: str, config: StdioConfig, *, stdin: bool, stdout: bool, stderr: bool
    ) -> AsyncIterator[PodmanAttachSession]:
        # logs=false (the default): only output written from now on, like a CRI attach.
        params = {"stream": "true", "stdin": _bool(stdin), "stdout": _bool(stdout), "stderr": _bool(stderr)}
        async with self._stream("POST", f"/containers/{container_id}/attach", params, None, True) as stream:
            if not stream.upgraded:
                raise InvalidState("attach did not upgrade the connection")
            yield PodmanAttachSession(self, container_id, stream, config, stdin=stdin)

    # -------------------------------------------------------------------------------------- events

    @asynccontextmanager
    async def events(self, labels: Mapping[str, str]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        filters = {"type": ["container"], "label": label_filters(labels)}
        params = {"stream": "true", "filters": json.dumps(filters)}
        async with self._stream("GET", "/events", params) as stream:
            yield _JsonLines(stream.receive_body)


class _HttpStream:
    """One HTTP/1.1 exchange on its own connection, parsed by h11; after a 101 the socket is raw."""

    def __init__(self, sock: trio.SocketStream):
        self.sock = sock
        self._conn = h11.Connection(h11.CLIENT)
        self.upgraded = False
        self._leftover = b""

    async def request(self, method: str, target: str, body: Any, upgrade: bool) -> tuple[int, str]:
        data = b"" if body is None else json.dumps(body).encode()
        headers = [("Host", "d"), ("Content-Length", str(len(data)))]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        if upgrade:
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        await self.sock.send_all(self._conn.send(h11.Request(method=method, target=target, headers=headers)))
        await self.sock.send_all(self._conn.send(h11.Data(data=data)) + self._conn.send(h11.EndOfMessage()))
        while True:
            event = await self._next_event()
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                self.upgraded = True
                self._leftover = self._conn.trailing_data[0]
                return 101, ""
            if isinstance(event, h11.Response):
                if event.status_code < 400:
                    return event.status_code, ""
                chunks = []
                while chunk := await self.receive_body():
                    chunks.append(chunk)
                return event.status_code, _error_text(b"".join(chunks))

    async def _next_event(self) -> Any:
        while (event := self._conn.next_event()) is h11.NEED_DATA:
            self._conn.receive_data(await self.sock.receive_some(_READ_SIZE))
        return event

    async def receive_body(self) -> bytes:
        """The next piece of the response body (b"" at its end)."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return b""

    async def receive_raw(self) -> bytes:
        """After a 101: raw bytes from the server (b"" when it closed)."""
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        return await self.sock.receive_some(_READ_SIZE)


class PodmanExecSession:
    """An `ExecSession` on a hijacked libpod connection."""

    def __init__(self, streams: LibpodStreams, exec_id: str, stream: _HttpStream, tty: bool):
        self._streams = streams
        self.exec_id = exec_id
        self._stream = stream
        self._output = _Frames(stream.receive_raw, tty)
        self._exit_code: int | None = None

    async def send_stdin(self, data: bytes) -> None:
        await self._stream.sock.send_all(data)

    async def close_stdin(self) -> None:
        try:
            await self._stream.sock.send_eof()  # podman then closes the process's stdin
        except (trio.ClosedResourceError, trio.BrokenResourceError):  # the exec already ended
            pass

    async def resize(self, width: int, height: int) -> None:
        await self._streams._call("POST", f"/exec/{self.exec_id}/resize", params={"h": height, "w": width})

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._output

    async def wait(self) -> int:
        if self._exit_code is None:
            async for _ in self._output:  # discard what the caller did not read
                pass
            self._exit_code = await self._poll_exit_code()
        return self._exit_code

    async def _poll_exit_code(self) -> int:
        # The stream ends just before conmon records the exit; poll briefly.
        while True:
            info = await self._streams._call("GET", f"/exec/{self.exec_id}/json")
            if not info.get("Running"):
                return int(info.get("ExitCode", -1))
            await trio.sleep(0.01)


class PodmanAttachSession:
    """An `AttachSession` on a hijacked libpod attach connection (see base.AttachSession).

    Ending the session is closing the connection: podman then closes its conmon attach socket,
    and conmon (run without --leave-stdin-open) closes a non-TTY container's stdin."""

    EXIT_WAIT = 5.0  # after the stream ends, how long the exit may take to be recorded

    def __init__(
        self,
        streams: LibpodStreams,
        container_id: str,
        stream: _HttpStream,
        config: StdioConfig,
        *,
        stdin: bool,
    ):
        self._streams = streams
        self.container_id = container_id
        self._stream = stream
        self._config = config
        self._stdin = stdin
        self._ended = False  # by us: the container may well still run
        self._began = datetime.now(UTC)
        self._output = _AttachOutput(self, _Frames(self._receive, config.tty))

    async def _receive(self) -> bytes:
        if self._ended:
            return b""
        try:
            return await self._stream.receive_raw()
        except (trio.ClosedResourceError, trio.BrokenResourceError):  # ended under a reader
            return b""

    async def send_stdin(self, data: bytes) -> None:
        if self._stdin and not self._ended:
            try:
                await self._stream.sock.send_all(data)
            except (trio.ClosedResourceError, trio.BrokenResourceError):  # the container is gone
                pass

    async def close_stdin(self) -> None:
        if not self._stdin or self._ended:
            return  # no stdin attached: nothing to close (containerd ignores it too)
        if self._config.stdin_once and not self._config.tty:
            try:
                await self._stream.sock.send_eof()  # conmon closes the process's stdin
            except (trio.ClosedResourceError, trio.BrokenResourceError):  # the container is gone
                pass
        else:
            await self.end()

    async def end(self) -> None:
        if not self._ended:
            self._ended = True
            await self._stream.sock.aclose()  # a task blocked in receive gets ClosedResourceError

    @property
    def ended(self) -> bool:
        """Whether we ended the session (an empty stream then lost nothing)."""
        return self._ended

    async def resize(self, width: int, height: int) -> None:
        await self._streams._call(
            "POST", f"/containers/{self.container_id}/resize", params={"h": height, "w": width}
        )

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._output

    async def lost_output(self) -> list[bytes]:
        """Podman lost the output of a container that exited while we attached: its log, if it
        started just before (a container that raced the attach, e.g. `kubectl run -i -- echo hi`;
        kube's kubelet reports such a pod finished and kubectl shows its log instead)."""
        try:
            info = await self._streams._call("GET", f"/containers/{self.container_id}/json")
        except NotFound:  # removed already: nothing to show
            return []
        state = info.get("State") or {}
        started = parse_time(state.get("StartedAt"))
        if state.get("Running") or started is None or (self._began - started).total_seconds() > ATTACH_RACE:
            return []
        async with self._streams.logs(self.container_id, tty=self._config.tty, follow=False, tail=None,
                                      timestamps=False, since=None) as lines:
            return [line async for line in lines]

    async def wait(self) -> int | None:
        async for _ in self._output:  # discard what the caller did not read
            pass
        if self._ended:
            return None
        # The stream ends when the process exits, just before podman records it: poll briefly.
        with trio.move_on_after(self.EXIT_WAIT):
            while True:
                try:
                    info = await self._streams._call("GET", f"/containers/{self.container_id}/json")
                except NotFound:  # removed right after it exited: the code is gone with it
                    return None
                if not stdio_config(info).running:
                    return int((info.get("State") or {}).get("ExitCode", -1))
                await trio.sleep(0.01)
        return None


# Plain iterator classes rather than async generators: they need no closing when abandoned.


class _Frames:
    """Demultiplex libpod's `[stream, 0, 0, 0, size_be32] + payload` frames (raw when TTY)."""

    def __init__(self, receive: Callable[[], Awaitable[bytes]], tty: bool):
        self._receive = receive
        self._tty = tty
        self._buffer = bytearray()
        self._done = False

    def __aiter__(self) -> _Frames:
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        while True:
            if self._tty and self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                return 1, data
            if not self._tty and len(self._buffer) >= 8:
                size = int.from_bytes(self._buffer[4:8], "big")
                if len(self._buffer) >= 8 + size:
                    stream = self._buffer[0] if self._buffer[0] in (1, 2) else 1  # 0: stdin echo
                    data = bytes(self._buffer[8 : 8 + size])
                    del self._buffer[: 8 + size]
                    return stream, data
            if self._done:
                raise StopAsyncIteration
            chunk = await self._receive()
            self._done = not chunk
            self._buffer += chunk


class _AttachOutput:
    """An attach's output frames, with podman's lost-output error (_ATTACH_LOST) replaced by what
    the session can recover (`PodmanAttachSession.lost_output`)."""

    def __init__(self, session: PodmanAttachSession, frames: _Frames):
        self._session = session
        self._frames = frames
        self._delivered = bytearray()  # what got through before the loss (not sent twice)
        self._recovered: bytes | None = None

    def __aiter__(self) -> _AttachOutput:
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        if self._recovered is None:
            try:
                stream, data = await self._frames.__anext__()
            except StopAsyncIteration:
                if self._delivered or self._session.ended:
                    raise
                await self._recover()  # an empty stream: the output may be lost without a word
            else:
                if stream != 2 or not _ATTACH_LOST.fullmatch(data):
                    self._delivered += data
                    return stream, data
                await self._recover()
        if not self._recovered:
            raise StopAsyncIteration
        data, self._recovered = self._recovered, b""
        return 1, data

    async def _recover(self) -> None:
        log = b"".join(await self._session.lost_output())
        self._recovered = log[len(self._delivered):] if log.startswith(self._delivered) else b""


class _Lines:
    """Whole lines per stream (stdout and stderr merged in arrival order)."""

    def __init__(self, frames: _Frames):
        self._frames = frames
        self._pending: dict[int, bytes] = {}
        self._ready: list[bytes] = []
        self._done = False

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> bytes:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            try:
                stream, data = await self._frames.__anext__()
            except StopAsyncIteration:
                self._done = True
                self._ready = [rest for rest in self._pending.values() if rest]
                continue
            *complete, rest = (self._pending.pop(stream, b"") + data).split(b"\n")
            self._ready = [line + b"\n" for line in complete]
            if rest:
                self._pending[stream] = rest
        return self._ready.pop(0)


class _JsonLines:
    def __init__(self, receive: Callable[[], Awaitable[bytes]]):
        self._receive = receive
        self._buffer = b""

    def __aiter__(self) -> _JsonLines:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                if line.strip():
                    return dict(json.loads(line))
                continue
            chunk = await self._receive()
            if not chunk:
                raise StopAsyncIteration
            self._buffer += chunk


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _message(response: httpx.Response) -> str:
    return _error_text(response.content)


def _error_text(content: bytes) -> str:
    try:
        body = json.loads(content)
        return str(body.get("message") or body.get("cause") or body)
    except (ValueError, AttributeError):  # not a JSON object
        return content.decode(errors="replace").strip()
