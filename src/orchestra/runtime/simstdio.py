"""The simulated runtime's stdio: a container's stdin and terminal, attach and exec sessions.

Owns: `SimStdio`, a simulated container's stdin as a pipe or a TTY (a TTY delivers whole lines
and echoes them; the container's `write_output` turns a TTY's newlines into CRLF), which also
closes a pipe stdin when an attach session ends, as Podman 4.3's conmon does (see
base.AttachSession); `SimAttachSession` (output written after attaching, read from the
container's log; input into its `SimStdio`); `SimExecSession`; and `echo_stdin`, the `cat`-like
main process of a `ContainerScript(echo_stdin=True)`.
Must not import: podman, httpx, simulated.py or simstate.py at run time (they import this), anything
above the runtime layer.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import trio

from orchestra.runtime.base import ContainerState

if TYPE_CHECKING:
    from orchestra.runtime.simstate import SimContainer


class SimStdio:
    """A container's stdin as its main process sees it: a pipe, or a TTY that echoes input."""

    def __init__(self, *, stdin: bool, tty: bool, echo: Callable[[int, bytes], None]):
        self.tty = tty
        self.open = stdin
        self._send, self.receive = trio.open_memory_channel[bytes](math.inf)
        if not stdin:
            self._send.close()  # like /dev/null: a reader sees EOF at once
        self._echo = echo
        self._typed = b""  # TTY: the line being typed (canonical mode delivers whole lines)
        self.doomed = False  # an output-only attach ended: the next write closes stdin (conmon)
        self.resizes: list[tuple[int, int]] = []

    def write(self, data: bytes) -> None:
        if not self.open:
            return  # like writing to a closed pipe through conmon: dropped
        if self.tty:
            self._typed += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # ICRNL: Enter is \r
            *lines, self._typed = self._typed.split(b"\n")
            for line in lines:
                self._echo(1, line + b"\n")
                self._send.send_nowait(line + b"\n")
        else:
            self._send.send_nowait(data)
        if self.doomed:
            self.close()

    def close(self) -> None:
        if self.open:
            self.open = False
            self._send.close()

    def attach_ended(self, *, had_stdin: bool) -> None:
        """Podman 4.3 runs conmon without --leave-stdin-open: when an attach socket closes, a
        pipe stdin is closed (after the next write when the session did not attach stdin)."""
        if self.tty or not self.open:
            return
        if had_stdin:
            self.close()
        else:
            self.doomed = True


async def echo_stdin(c: SimContainer) -> None:
    """`cat` as the main process: stdin comes back on stdout, line by line, until its EOF."""
    pending = b""
    async for data in c.stdio.receive:
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            c.write_output(1, line + b"\n")
    if pending:
        c.write_output(1, pending)


class SimAttachSession:
    """An `AttachSession` (see base.py) on a simulated container."""

    def __init__(self, c: SimContainer, *, stdin: bool, stdout: bool, stderr: bool, stdin_once: bool):
        self._c = c
        self._stdin = stdin
        self._stdin_once = stdin_once
        self._streams = ({1, 2} if c.stdio.tty and stdout else set()) | ({1} if stdout else set()) \
            | ({2} if stderr and not c.stdio.tty else set())
        self._cursor = len(c.log)  # only what is written from now on
        self._ended = False  # by us

    async def send_stdin(self, data: bytes) -> None:
        if self._stdin and not self._ended:
            self._c.stdio.write(data)

    async def close_stdin(self) -> None:
        if not self._stdin or self._ended:
            return
        if self._stdin_once and not self._c.stdio.tty:
            self._c.stdio.close()
        else:
            self.end()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._c.stdio.attach_ended(had_stdin=self._stdin)
            self._c.notify()  # wakes a reader, which then stops

    async def resize(self, width: int, height: int) -> None:
        if self._c.stdio.tty:
            self._c.stdio.resizes.append((width, height))

    def __aiter__(self) -> _AttachOutput:
        return _AttachOutput(self)

    async def next_output(self) -> tuple[int, bytes] | None:
        c = self._c
        while True:
            while self._cursor < len(c.log):
                _, stream, data = c.log[self._cursor]
                self._cursor += 1
                if stream in self._streams:
                    return (1 if c.stdio.tty else stream), data
            if self._ended or c.state != ContainerState.RUNNING:
                return None
            await c.changed.wait()

    async def wait(self) -> int | None:
        while await self.next_output() is not None:  # discard what the caller did not read
            pass
        return None if self._ended else self._c.exit_code


class _AttachOutput:
    def __init__(self, session: SimAttachSession):
        self._session = session

    def __aiter__(self) -> _AttachOutput:
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        item = await self._session.next_output()
        if item is None:
            raise StopAsyncIteration
        return item


class SimExecSession:
    def __init__(self, tty: bool):
        self._tty = tty
        self._stdin_send, self.stdin_receive = trio.open_memory_channel[bytes](math.inf)
        self._out_send, self._out_receive = trio.open_memory_channel[tuple[int, bytes]](math.inf)
        self._exit_code: int | None = None
        self._done = trio.Event()

    async def emit(self, stream: int, data: bytes) -> None:
        self._out_send.send_nowait((1 if self._tty else stream, data))

    def finish(self, code: int) -> None:
        self._exit_code = code
        self._out_send.close()
        self._done.set()

    async def send_stdin(self, data: bytes) -> None:
        try:
            self._stdin_send.send_nowait(data)
        except trio.ClosedResourceError:  # like writing to a closed pipe: ignored by the runtime
            pass

    async def close_stdin(self) -> None:
        self._stdin_send.close()

    async def resize(self, width: int, height: int) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[int, bytes]]:
        async for item in self._out_receive:
            yield item

    async def wait(self) -> int:
        await self._done.wait()
        assert self._exit_code is not None
        return self._exit_code
