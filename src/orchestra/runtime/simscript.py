"""The script of the simulated runtime (kwok-style): what simulated containers do, which images
exist and can be pulled, and how execs answer.

Owns: `ExecScript`, `ContainerScript`, `SimScript` (looked up by container name, then by image),
`builtin_exec` (the few busybox applets a simulated exec understands), `signal_number`, the
virtual clock's timestamps (`virtual_time`, `stamp_line`: trio time 0 is EPOCH) and
`normalize_image` (short names resolve to localhost/, a missing tag is :latest, like Podman).
Must not import: podman, httpx, anything above the runtime layer.
"""

from __future__ import annotations

import shlex
import signal as signal_module
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import attrs

from orchestra.runtime.base import ContainerSpec

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # virtual time 0 as a wall-clock timestamp


@attrs.frozen
class ExecScript:
    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0


ExecHandler = Callable[[tuple[str, ...]], ExecScript | None]


@attrs.frozen
class ContainerScript:
    """What the container's main process does once started."""

    start_delay: float = 0.0  # start_container returns after this long
    output: tuple[tuple[float, int, bytes], ...] = ()  # (seconds after start, 1|2, line)
    exit_after: float | None = None  # None: runs until stopped/killed
    exit_code: int = 0
    on_sigterm: int | None = 128 + signal_module.SIGTERM  # None: ignores it (PID 1, no handler)
    start_error: str | None = None  # start fails (e.g. "executable file not found"), exit 127
    serves: Mapping[int, bytes] = attrs.field(factory=dict)  # port -> body for `wget` from the pod
    exec: Mapping[tuple[str, ...], ExecScript] = attrs.field(factory=dict)
    exec_handler: ExecHandler | None = None
    echo_stdin: bool = False  # after `output`, runs like `cat` until stdin's EOF, then exits with exit_code
    cpu: float = 0.0008  # cores it keeps busy while running (`kubectl top` rounds up: 1m)
    memory: int = 4 << 20  # working set bytes while running (4Mi)


@attrs.define
class SimScript:
    """Scripted behaviour, looked up by container name, then by image."""

    containers: dict[str, ContainerScript] = attrs.field(factory=dict)
    images: dict[str, ContainerScript] = attrs.field(factory=dict)
    present_images: set[str] = attrs.field(factory=lambda: {"localhost/busybox:latest"})
    pullable_images: set[str] = attrs.field(factory=set)  # pulls of these succeed
    pull_any: bool = (
        False  # every pull succeeds (simulated nodes of `orchestra up`: there is no registry to ask)
    )
    pull_errors: dict[str, str] = attrs.field(factory=dict)  # image -> error (ImagePullError)
    pull_delay: float = 0.0
    sandbox_start_delay: float = 0.0

    def for_container(self, spec: ContainerSpec) -> ContainerScript:
        return self.containers.get(spec.name) or self.images.get(spec.image) or ContainerScript()


def normalize_image(ref: str) -> str:
    """Short names resolve to localhost/ like Podman's local lookup; a missing tag is :latest."""
    name = ref
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "localhost/" + name
    return name


def builtin_exec(wget: Callable[[str], ExecScript], cmd: tuple[str, ...]) -> ExecScript:
    """A few busybox applets, enough for probes and the contract suite (`wget` asks the pod)."""
    if cmd == ("true",):
        return ExecScript()
    if cmd == ("false",):
        return ExecScript(exit_code=1)
    if cmd[:1] == ("echo",):
        return ExecScript(stdout=" ".join(cmd[1:]).encode() + b"\n")
    if cmd[:1] == ("sleep",) and len(cmd) == 2:
        return ExecScript(duration=float(cmd[1]))
    if cmd[:2] == ("sh", "-c") and len(cmd) >= 3:
        words = shlex.split(cmd[2])
        if words[:1] == ["exit"] and len(words) == 2:
            return ExecScript(exit_code=int(words[1]))
        return builtin_exec(wget, tuple(words))
    if cmd[:1] == ("wget",) and cmd[-1].startswith("http://"):
        return wget(cmd[-1])
    return ExecScript(exit_code=127, stderr=f"exec: {cmd[0]!r}: executable file not found\n".encode())


def signal_number(signal: str | int) -> int:
    if isinstance(signal, int) or signal.isdigit():
        return int(signal)
    name = signal.upper()
    return int(signal_module.Signals[name if name.startswith("SIG") else "SIG" + name])


def virtual_time(t: float | None) -> datetime | None:
    return None if t is None else EPOCH + timedelta(seconds=t)


def stamp_line(at: float, line: bytes) -> bytes:
    stamp = (EPOCH + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return stamp.encode() + b" " + line
