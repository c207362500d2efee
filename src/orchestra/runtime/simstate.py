"""The state the simulated runtime keeps per container and sandbox (see simulated.py).

Owns: `SimContainer` (spec, script, state, exit code, timestamps, log, stdio and a change event that
followers of its log and status wait on) and `SimSandbox` (its containers, IP and labels).
Must not import: podman, httpx, anything above the runtime layer.
"""

from __future__ import annotations

import attrs
import trio

from orchestra.runtime.base import ContainerSpec, ContainerState, PodSandboxSpec
from orchestra.runtime.simscript import ContainerScript
from orchestra.runtime.simstdio import SimStdio


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
    stdio: SimStdio = attrs.field(default=attrs.Factory(lambda self: self.new_stdio(), takes_self=True))

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def new_stdio(self) -> SimStdio:
        return SimStdio(stdin=self.spec.stdin, tty=self.spec.tty, echo=self.write_output)

    def write_output(self, stream: int, data: bytes) -> None:
        """A line the process wrote (a TTY turns its newline into CRLF, like ONLCR)."""
        line = data if data.endswith(b"\n") else data + b"\n"
        if self.spec.tty:
            line = line.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.log.append((trio.current_time(), stream, line))
        self.notify()


@attrs.define(eq=False)
class SimSandbox:
    id: str
    spec: PodSandboxSpec
    labels: dict[str, str]
    created_at: float
    infra: SimContainer | None = None
    ip: str = ""
    members: dict[str, SimContainer] = attrs.field(factory=dict)  # container id -> container, infra included
