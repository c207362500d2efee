"""The container runtime contract: the `Runtime` Protocol, its data types and its errors.

Owns: everything the node agent may know about a container runtime. The Podman adapter
(`podman.py`) and the in-memory `SimulatedRuntime` (`simulated.py`) both implement it, and one
contract test suite (tests/runtime/) holds them to the same behaviour.
Must not import: podman, httpx, or anything above the runtime layer.

Vocabulary follows the CRI: a *sandbox* is a Kubernetes pod's shared environment (a Podman pod
with its infra container and network namespace); *containers* run inside a sandbox. Restart
policy is the agent's job: the runtime never restarts anything by itself.

Streaming calls (`logs`, `exec`, `attach`, `events`) are async context managers, so the
connection they hold is closed when the caller leaves the block (structured concurrency, no
dangling readers):

    async with runtime.logs(cid, follow=True) as lines:
        async for line in lines: ...
    async with runtime.exec(cid, ["sh"], stdin=True, tty=True) as session:
        await session.send_stdin(b"exit 3\\n"); code = await session.wait()
    async with runtime.attach(cid, stdin=True) as session:   # the main process; it keeps running
        await session.send_stdin(b"hello\\n"); await session.close_stdin()
    async with runtime.events() as events:   # subscribed once the block is entered
        async for event in events: ...
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

# Labels the runtime itself puts on every object it creates (the agent may add its own).
LABEL_MANAGED = "orchestra.io/managed"
LABEL_POD_NAME = "orchestra.io/pod-name"
LABEL_POD_NAMESPACE = "orchestra.io/pod-namespace"
LABEL_POD_UID = "orchestra.io/pod-uid"
LABEL_SANDBOX_ID = "orchestra.io/sandbox-id"
LABEL_CONTAINER_NAME = "orchestra.io/container-name"


# ---------------------------------------------------------------------------------------- errors


class RuntimeFailure(Exception):
    """Base of every error a runtime raises; the message is meant for users (events, status)."""


class NotFound(RuntimeFailure):
    """The sandbox, container or exec session does not exist (any more)."""


class ImagePullError(RuntimeFailure):
    """The image could not be made present (the agent reports ErrImagePull / ImagePullBackOff)."""


class ImageNotFound(ImagePullError):
    """The image is not present locally and pulling it failed or was not allowed."""


class InvalidState(RuntimeFailure):
    """The operation does not fit the object's state (e.g. a container in a stopped sandbox)."""


class ExecTimeout(RuntimeFailure):
    """`exec_run` did not finish within its timeout (the process may still be running)."""


class RuntimeUnavailable(RuntimeFailure):
    """The runtime cannot be used at all; the message says what is wrong and how to fix it."""


# ----------------------------------------------------------------------------------------- enums


class PullPolicy(enum.StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class SandboxState(enum.StrEnum):
    CREATED = "created"  # made, infra not started yet
    READY = "ready"  # infra running: the network namespace exists and containers can start
    NOT_READY = "notready"  # infra stopped (after stop_sandbox, or it died)


class ContainerState(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


class EventType(enum.StrEnum):
    CREATED = "created"
    STARTED = "started"
    DIED = "died"
    OOM = "oom"
    REMOVED = "removed"


# ------------------------------------------------------------------------------------------ specs


def _str_map(value: Mapping[str, str] | None) -> dict[str, str]:
    return dict(value or {})


@attrs.frozen
class PortMapping:
    """Publish `container_port` of the sandbox on the host (`host_port` 0: not published)."""

    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@attrs.frozen
class HostAlias:
    """An /etc/hosts entry (Kubernetes `hostAliases`)."""

    ip: str
    hostnames: tuple[str, ...] = attrs.field(converter=tuple)


@attrs.frozen
class PodSandboxSpec:
    name: str  # the Podman pod name; must be unique on the node (e.g. "<ns>_<pod>_<uid8>")
    uid: str
    namespace: str = "default"
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)
    hostname: str = ""
    ports: tuple[PortMapping, ...] = attrs.field(default=(), converter=tuple)
    dns_servers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    dns_searches: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    dns_options: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    hosts: tuple[HostAlias, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@attrs.frozen
class Resources:
    """Cgroup limits; None leaves the runtime default (unlimited)."""

    memory_limit_bytes: int | None = None
    cpu_quota: int | None = None  # microseconds per period (limits.cpu * period)
    cpu_period: int | None = None  # microseconds (default 100000 when a quota is set)
    cpu_shares: int | None = None  # requests.cpu * 1024
    pids_limit: int | None = None


@attrs.frozen
class ContainerSpec:
    """One container. `command` replaces the image entrypoint (and drops the image CMD), `args`
    replaces the image CMD, exactly as in a Kubernetes container spec."""

    name: str
    image: str
    command: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    args: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)
    working_dir: str = ""
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=tuple)
    resources: Resources = Resources()
    ports: tuple[PortMapping, ...] = attrs.field(default=(), converter=tuple)  # informational
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False  # an attach session's stdin EOF closes the container's stdin (kubectl run -i)
    stop_signal: str = ""  # "" = image default (SIGTERM)
    pid_namespace_of: str = ""  # a container of the same sandbox whose processes this one sees


# ----------------------------------------------------------------------------------------- status


@attrs.frozen
class RuntimeVersion:
    name: str  # "podman" | "simulated"
    version: str
    api_version: str


@attrs.frozen
class SandboxStatus:
    id: str
    name: str
    uid: str
    namespace: str
    state: SandboxState
    ip: str  # "" until the sandbox is ready
    created_at: datetime | None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)


@attrs.frozen
class ContainerStatus:
    id: str
    name: str  # the ContainerSpec name (not the runtime's unique name)
    sandbox_id: str
    state: ContainerState
    exit_code: int | None  # None unless exited
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    image: str
    image_id: str
    restart_count_hint: int = 0  # restarts done by the runtime itself (always 0 here)
    oom_killed: bool = False
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)


@attrs.frozen
class ContainerStats:
    """A running container's resource usage (what the kubelet's summary API reports)."""

    id: str
    cpu_usage_nanoseconds: int  # CPU time used since the container started (all cores)
    memory_working_set_bytes: int


@attrs.frozen
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@attrs.frozen
class RuntimeEvent:
    """Something happened to a container. Infra containers report with `infra=True` and the
    sandbox's labels; `exit_code` is set for DIED. Events are hints for a level-based agent:
    always re-read `container_status` before acting."""

    type: EventType
    container_id: str
    sandbox_id: str
    infra: bool = False
    exit_code: int | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map, hash=False)


# --------------------------------------------------------------------------------------- protocol


class ExecSession(Protocol):
    """A running exec. Iterate it for output chunks `(1 | 2, bytes)` (a TTY gives only 1)."""

    async def send_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, width: int, height: int) -> None: ...
    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]: ...
    async def wait(self) -> int:
        """Discard unread output until the process ends; return its exit code."""
        ...


class AttachSession(Protocol):
    """An attach to a container's main process (shaped like an ExecSession). Iterate it for the
    output `(1 | 2, bytes)` written from the moment of attaching (a TTY gives only 1); it ends
    when the container exits or the session does. Leaving the session never stops the container.

    Stdin follows containerd's CRI semantics (what kubelet relies on): `close_stdin` on a container
    with `stdin_once` and no TTY closes the container's stdin and output goes on until it exits;
    otherwise `close_stdin` ends the session and stdin stays as it is. Podman 4.3 adds one
    difference that the simulation copies: conmon runs without --leave-stdin-open, so when any
    attach session to a non-TTY container with stdin ends, that container's stdin is closed (an
    output-only session's end takes effect after the next write). A TTY's stdin stays open."""

    async def send_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, width: int, height: int) -> None: ...
    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]: ...
    async def wait(self) -> int | None:
        """Discard unread output until the session ends; the container's exit code if it exited,
        None if the session ended while the container still runs."""
        ...


def check_attach(
    container_id: str,
    *,
    running: bool,
    has_stdin: bool,
    has_tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> None:
    """The attach preconditions every runtime enforces (InvalidState otherwise)."""
    if not running:
        raise InvalidState(f"container {container_id} is not running")
    if not (stdin or stdout or stderr):
        raise InvalidState("one of stdin, stdout and stderr must be set")
    if stdin and not has_stdin:
        raise InvalidState(f"container {container_id} was created without stdin: stdin cannot be attached")
    if tty != has_tty:
        having = "with" if has_tty else "without"
        raise InvalidState(f"container {container_id} was created {having} a TTY: attach with tty={has_tty}")


@runtime_checkable
class Runtime(Protocol):
    async def version(self) -> RuntimeVersion: ...

    async def ensure_image(self, image: str, pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> str:
        """Return the image id, pulling per policy; ImageNotFound / ImagePullError otherwise."""
        ...

    # sandboxes
    async def create_sandbox(self, spec: PodSandboxSpec) -> str: ...
    async def start_sandbox(self, sandbox_id: str) -> None: ...
    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...
    async def stop_sandbox(self, sandbox_id: str, grace_period: float) -> None:
        """Stop every container (SIGTERM, SIGKILL after `grace_period` s), then the infra. Idempotent."""
        ...

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Kill and remove the sandbox and all its containers. Idempotent (missing is fine)."""
        ...

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxStatus]: ...

    # containers
    async def list_containers(
        self, labels: Mapping[str, str] | None = None, sandbox_id: str | None = None
    ) -> list[ContainerStatus]:
        """App containers only (never infra), filtered by all `labels` (AND) and sandbox."""
        ...

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, grace_period: float) -> None:
        """SIGTERM (or the stop signal), SIGKILL after `grace_period` s; returns once exited."""
        ...

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None: ...
    async def remove_container(self, container_id: str) -> None:
        """Kill if needed and remove. Idempotent (missing is fine)."""
        ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    # streams
    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: datetime | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Yields output lines (stdout and stderr merged, each ending in b"\\n" except maybe the
        last). With `follow`, the iterator ends when the container exits."""
        ...

    def exec(
        self, container_id: str, cmd: Sequence[str], *, stdin: bool = False, tty: bool = False
    ) -> AbstractAsyncContextManager[ExecSession]: ...

    async def exec_run(self, container_id: str, cmd: Sequence[str], timeout: float) -> ExecResult:  # noqa: ASYNC109 (probe timeoutSeconds)
        """Run to completion (for probes); ExecTimeout after `timeout` s."""
        ...

    async def stats(self, container_ids: Sequence[str]) -> list[ContainerStats]:
        """Usage of those of `container_ids` that are running (the others are left out)."""
        ...

    def attach(
        self,
        container_id: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
    ) -> AbstractAsyncContextManager[AttachSession]:
        """Attach to the running main process (see `AttachSession`); `check_attach`'s InvalidState
        when it is not running, `stdin` is asked of a container without stdin, or `tty` differs
        from the container's."""
        ...

    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[RuntimeEvent]]: ...

    async def aclose(self) -> None: ...


async def run_to_completion(
    runtime: Runtime, container_id: str, cmd: Sequence[str], timeout: float  # noqa: ASYNC109 (probe timeoutSeconds)
) -> ExecResult:
    """`exec_run` for any runtime: collect stdout/stderr of one exec and its exit code within `timeout`."""
    import trio  # the protocol module itself stays free of trio

    out: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    with trio.move_on_after(timeout) as scope:
        async with runtime.exec(container_id, cmd) as session:
            async for stream, data in session:
                out[stream] += data
            code = await session.wait()
    if scope.cancelled_caught:
        raise ExecTimeout(f"exec {list(cmd)!r} in {container_id} did not finish within {timeout} s")
    return ExecResult(exit_code=code, stdout=bytes(out[1]), stderr=bytes(out[2]))
