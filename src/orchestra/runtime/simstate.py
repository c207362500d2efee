"""The state the simulated runtime keeps per container and sandbox (see simulated.py).

Owns: `SimContainer` (spec, script, state, exit code, timestamps, log (and reading it: log_lines),
stdio, the files its command and execs made, and a change event that followers of its log and status
wait on) and `SimSandbox` (its containers, IP and labels). Times are trio times.
Must not import: podman, httpx, anything above the runtime layer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable, Mapping

import attrs
import trio

from orchestra.runtime.base import ContainerSpec, ContainerState, PodSandboxSpec
from orchestra.runtime.simclock import SimClock
from orchestra.runtime.simscript import ContainerScript
from orchestra.runtime.simstdio import SimStdio


@functools.cache
def no_stdio() -> SimStdio:
    """The stdin of a container that has no process yet (and of infra containers): closed. Shared:
    a closed SimStdio changes no more, and 30,000 containers need not each make a channel for it."""
    return SimStdio(stdin=False, tty=False, echo=lambda stream, data: None)


@attrs.define(eq=False)
class SimContainer:
    id: str
    name: str
    sandbox: SimSandbox
    spec: ContainerSpec
    script: ContainerScript
    image: str
    image_id: str
    labels: dict[str, str]
    infra: bool = False
    state: ContainerState = ContainerState.CREATED
    exit_code: int | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    log: list[tuple[float, int, bytes]] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)
    scope: trio.CancelScope | None = None
    stdio: SimStdio = attrs.field(factory=lambda: no_stdio())  # a started process gets its own (new_stdio)
    exec_files: tuple[tuple[float, str, bytes | None], ...] = ()  # (time, path, content) execs made; rare
    on_output: Callable[[SimContainer, float, int, bytes], None] | None = None  # the runtime's journal

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def new_stdio(self) -> SimStdio:
        return SimStdio(stdin=self.spec.stdin, tty=self.spec.tty, echo=self.write_output)

    def write_output(self, stream: int, data: bytes, at: float | None = None) -> None:
        """A line the process wrote, now or at trio time `at` (a TTY turns its newline into CRLF, like
        ONLCR)."""
        line = data if data.endswith(b"\n") else data + b"\n"
        if self.spec.tty:
            line = line.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        at = trio.current_time() if at is None else at
        self.log.append((at, stream, line))
        if self.on_output is not None:
            self.on_output(self, at, stream, line)
        self.notify()

    async def log_lines(self, clock: SimClock, *, follow: bool, tail: int | None, timestamps: bool,
                        since: float | None, present: Callable[[], bool]) -> AsyncIterator[bytes]:
        """Its log from trio time `since` (the last `tail` lines), then, following, what it writes while
        it runs and is `present` (not removed)."""
        start = -math.inf if since is None else since
        entries = [e for e in self.log if e[0] >= start]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        seen = len(self.log)
        for at, _, line in entries:
            yield clock.stamp_line(at, line) if timestamps else line
        while follow and self.state == ContainerState.RUNNING and present():
            await self.changed.wait()
            for at, _, line in self.log[seen:]:
                yield clock.stamp_line(at, line) if timestamps else line
            seen = len(self.log)

    def ends_at(self) -> float | None:
        """When the process exits by its script (None: when stopped, or at its stdin's EOF)."""
        if self.started_at is None or self.script.exit_after is None or self.script.echo_stdin:
            return None
        return self.started_at + self.script.exit_after

    def output_due(self) -> list[tuple[float, int, bytes]]:
        """The script's output not logged yet, up to its exit, in order: (time, stream, data). A
        process resumed after a restart has logged what came before (the log is kept on disk)."""
        start = self.started_at if self.started_at is not None else 0.0
        logged = self.log[-1][0] if self.log else -math.inf
        limit = math.inf if self.script.exit_after is None else self.script.exit_after
        output = sorted(self.script.output, key=lambda o: o[0])
        return [(start + at, stream, data) for at, stream, data in output
                if at <= limit and start + at > logged]

    def file_at(self, path: str, now: float, mounted: Mapping[str, bytes | None]) -> bytes | None:
        """A file as an exec sees it at `now`: the latest change by the container's command or an exec;
        else the mounted file; else it exists and is empty (the image may well have it)."""
        latest: tuple[float, bytes | None] | None = None
        start = self.started_at if self.started_at is not None else now
        changes = [(start + at, p, d) for at, p, d in self.script.files] + list(self.exec_files)
        for at, p, data in changes:
            if p == path and at <= now and (latest is None or at >= latest[0]):
                latest = (at, data)
        if latest is not None:
            return latest[1]
        return mounted.get(path, b"")


@attrs.define(eq=False)
class SimSandbox:
    id: str
    spec: PodSandboxSpec
    labels: dict[str, str]
    created_at: float
    infra: SimContainer | None = None
    ip: str = ""
    members: dict[str, SimContainer] = attrs.field(factory=dict)  # container id -> container, infra included
