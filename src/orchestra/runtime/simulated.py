"""`SimulatedRuntime`: the `Runtime` Protocol in memory, driven by a script, on trio time only.

Owns: a fake of Podman honest enough that the contract suite (tests/runtime/) passes against
both: the same states, transitions, exit codes (SIGKILL 137, ignored SIGTERM waits the stop
timeout), errors (NotFound, InvalidState, ImageNotFound), events and labels. Behaviour that
would need a real process comes from a `SimScript` (kwok-style scripted lifecycle):

    script = SimScript(containers={"web": ContainerScript(serves={8080: b"hi"})},
                       images={"crasher:1": ContainerScript(exit_after=2, exit_code=1)})
    async with open_simulated_runtime(script) as runtime: ...

Containers run as tasks in the runtime's own nursery (`run(*, task_status)`), so the whole
thing is deterministic under trio's MockClock. The script types live in `simscript.py`; stdin,
TTYs and the exec/attach sessions in `simstdio.py`; the container and sandbox records in `simstate.py`.
Must not import: podman, httpx, anything above the runtime layer.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import signal as signal_module
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial

import trio

from orchestra.runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_SANDBOX_ID,
    AttachSession,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    EventType,
    ExecResult,
    ExecSession,
    ImageNotFound,
    ImagePullError,
    InvalidState,
    NotFound,
    PodSandboxSpec,
    PullPolicy,
    Runtime,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
    RuntimeVersion,
    SandboxState,
    SandboxStatus,
    check_attach,
    run_to_completion,
)
from orchestra.runtime.simscript import (
    EPOCH,
    builtin_exec,
    normalize_image,
    signal_number,
    stamp_line,
    virtual_time,
)
from orchestra.runtime.simscript import ContainerScript as ContainerScript
from orchestra.runtime.simscript import ExecScript as ExecScript
from orchestra.runtime.simscript import SimScript as SimScript
from orchestra.runtime.simstate import SimContainer, SimSandbox
from orchestra.runtime.simstdio import SimAttachSession, SimExecSession, echo_stdin

SIGKILL_EXIT = 128 + signal_module.SIGKILL


class SimulatedRuntime:
    """A `Runtime` in memory. Call its `run` in a nursery (or use `open_simulated_runtime`)."""

    def __init__(self, script: SimScript | None = None):
        self.script = script or SimScript()
        self._sandboxes: dict[str, SimSandbox] = {}
        self._containers: dict[str, SimContainer] = {}
        # Indexes, so that a pod's lookups stay O(its own containers) with 30,000 pods on one runtime:
        # sandbox name -> sandbox, pod uid label -> {container id: container} (infra included).
        self._sandbox_by_name: dict[str, SimSandbox] = {}
        self._by_pod_uid: dict[str, dict[str, SimContainer]] = {}
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)
        self._subscribers: list[tuple[Mapping[str, str], trio.MemorySendChannel[RuntimeEvent]]] = []
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def aclose(self) -> None:
        for _, channel in self._subscribers:
            channel.close()

    def _new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{kind}-{next(self._ids)}".encode()).hexdigest()

    def _running_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeUnavailable("the simulated runtime is not running (start SimulatedRuntime.run)")
        return self._nursery

    def _emit(self, kind: EventType, c: SimContainer) -> None:
        event = RuntimeEvent(
            type=kind,
            container_id=c.id,
            sandbox_id=c.sandbox.id,
            infra=c.infra,
            exit_code=c.exit_code if kind == EventType.DIED else None,
            labels=c.labels,
        )
        for wanted, channel in list(self._subscribers):
            if all(event.labels.get(k) == v for k, v in wanted.items()):
                try:
                    channel.send_nowait(event)
                except trio.ClosedResourceError:  # subscriber left; removed in its finally
                    pass

    # ---------------------------------------------------------------------------------- images

    async def version(self) -> RuntimeVersion:
        self._running_nursery()
        return RuntimeVersion(name="simulated", version="4.3.1-sim", api_version="4.3.1")

    def _image_id(self, image: str) -> str:
        name = normalize_image(image)
        return hashlib.sha256(name.encode()).hexdigest() if name in self.script.present_images else ""

    async def ensure_image(self, image: str, pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> str:
        self._running_nursery()
        name = normalize_image(image)
        present = self._image_id(name)
        if present and (pull_policy != PullPolicy.ALWAYS or name.startswith("localhost/")):
            return present
        if pull_policy == PullPolicy.NEVER:
            raise ImageNotFound(f"image {image!r} is not present and the pull policy is Never")
        await trio.sleep(self.script.pull_delay)
        error = self.script.pull_errors.get(image) or self.script.pull_errors.get(name)
        if (
            error is None
            and not self.script.pull_any
            and name not in self.script.pullable_images
            and image not in self.script.pullable_images
        ):
            error = f"initializing source docker://{name}: registry unreachable (simulated)"
        if error is not None:
            if present:
                raise ImagePullError(f"pulling image {image!r} failed: {error}")
            raise ImageNotFound(f"image {image!r} is not present locally and pulling it failed: {error}")
        self.script.present_images.add(name)
        return self._image_id(name)

    # ------------------------------------------------------------------------------- sandboxes

    def _sandbox(self, sandbox_id: str) -> SimSandbox:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        return sandbox

    async def create_sandbox(self, spec: PodSandboxSpec) -> str:
        self._running_nursery()
        if spec.name in self._sandbox_by_name:
            raise InvalidState(f"sandbox {spec.name!r} already exists")
        labels = {
            **spec.labels,
            LABEL_MANAGED: "true",
            LABEL_POD_NAME: spec.name,
            LABEL_POD_NAMESPACE: spec.namespace,
            LABEL_POD_UID: spec.uid,
        }
        sandbox = SimSandbox(id=self._new_id("pod"), spec=spec, labels=labels, created_at=trio.current_time())
        infra_spec = ContainerSpec(name="infra", image="localhost/podman-pause:4.3.1-0")
        sandbox.infra = self._make_container(sandbox, infra_spec, ContainerScript(on_sigterm=None), labels)
        sandbox.infra.infra = True
        self._sandboxes[sandbox.id] = sandbox
        self._sandbox_by_name[spec.name] = sandbox
        self._emit(EventType.CREATED, sandbox.infra)
        return sandbox.id

    def _make_container(
        self, sandbox: SimSandbox, spec: ContainerSpec, script: ContainerScript, labels: dict[str, str]
    ) -> SimContainer:
        c = SimContainer(
            id=self._new_id("ctr"),
            name=spec.name,
            sandbox=sandbox,
            spec=spec,
            script=script,
            image=spec.image,
            image_id=hashlib.sha256(normalize_image(spec.image).encode()).hexdigest(),
            labels=labels,
            created_at=trio.current_time(),
        )
        self._containers[c.id] = c
        self._by_pod_uid.setdefault(labels.get(LABEL_POD_UID, ""), {})[c.id] = c
        sandbox.members[c.id] = c
        return c

    async def start_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandbox(sandbox_id)
        assert sandbox.infra is not None
        await self._start(sandbox.infra)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    def _sandbox_status(self, sandbox: SimSandbox) -> SandboxStatus:
        assert sandbox.infra is not None
        state = {
            ContainerState.RUNNING: SandboxState.READY,
            ContainerState.CREATED: SandboxState.CREATED,
        }.get(sandbox.infra.state, SandboxState.NOT_READY)
        return SandboxStatus(
            id=sandbox.id,
            name=sandbox.spec.name,
            uid=sandbox.spec.uid,
            namespace=sandbox.spec.namespace,
            state=state,
            ip=sandbox.ip if state == SandboxState.READY else "",
            created_at=virtual_time(sandbox.created_at),
            labels=sandbox.labels,
        )

    def _members(self, sandbox: SimSandbox) -> list[SimContainer]:
        return [c for c in sandbox.members.values() if not c.infra]

    async def stop_sandbox(self, sandbox_id: str, grace_period: float) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        async with trio.open_nursery() as nursery:
            for c in self._members(sandbox):
                nursery.start_soon(self._stop, c, grace_period)
        assert sandbox.infra is not None
        await self._stop(sandbox.infra, 0)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        assert sandbox.infra is not None
        for c in [*self._members(sandbox), sandbox.infra]:
            if c.state == ContainerState.RUNNING:
                self._exit(c, SIGKILL_EXIT)
        for c in [*self._members(sandbox), sandbox.infra]:
            self._remove(c)
        del self._sandboxes[sandbox_id]
        if self._sandbox_by_name.get(sandbox.spec.name) is sandbox:
            del self._sandbox_by_name[sandbox.spec.name]

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxStatus]:
        self._running_nursery()
        wanted = dict(labels or {})
        return [
            self._sandbox_status(s)
            for s in self._sandboxes.values()
            if all(s.labels.get(k) == v for k, v in wanted.items())
        ]

    # ------------------------------------------------------------------------------ containers

    def _container(self, container_id: str) -> SimContainer:
        c = self._containers.get(container_id)
        if c is None:
            raise NotFound(f"container {container_id} not found")
        return c

    async def list_containers(
        self, labels: Mapping[str, str] | None = None, sandbox_id: str | None = None
    ) -> list[ContainerStatus]:
        self._running_nursery()
        wanted = dict(labels or {})
        candidates: Iterable[SimContainer]
        if sandbox_id is not None:
            sandbox = self._sandboxes.get(sandbox_id)
            candidates = sandbox.members.values() if sandbox is not None else ()
        elif LABEL_POD_UID in wanted:
            candidates = self._by_pod_uid.get(wanted[LABEL_POD_UID], {}).values()
        else:
            candidates = self._containers.values()
        return [
            self._status(c)
            for c in candidates
            if not c.infra
            and (sandbox_id is None or c.sandbox.id == sandbox_id)
            and all(c.labels.get(k) == v for k, v in wanted.items())
        ]

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        sandbox = self._sandbox(sandbox_id)
        if not self._image_id(spec.image):
            raise ImageNotFound(f"image {spec.image!r} is not present")
        if spec.pid_namespace_of and spec.pid_namespace_of not in sandbox.members:  # as Podman's pidns
            raise NotFound(f"container {spec.pid_namespace_of} not found")
        labels = {
            **spec.labels,
            **{k: sandbox.labels[k] for k in (LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID)},
            LABEL_MANAGED: "true",
            LABEL_SANDBOX_ID: sandbox.id,
            LABEL_CONTAINER_NAME: spec.name,
        }
        c = self._make_container(sandbox, spec, self.script.for_container(spec), labels)
        self._emit(EventType.CREATED, c)
        return c.id

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        if c.infra:
            raise InvalidState(f"{container_id} is an infra container: start its sandbox")
        assert c.sandbox.infra is not None
        if c.sandbox.infra.state != ContainerState.RUNNING:
            await self._start(c.sandbox.infra)  # Podman starts the infra as a dependency
        await self._start(c)

    async def _start(self, c: SimContainer) -> None:
        nursery = self._running_nursery()
        if c.state == ContainerState.RUNNING:
            return
        script = c.script
        await trio.sleep(self.script.sandbox_start_delay if c.infra else script.start_delay)
        if c.id not in self._containers:
            raise NotFound(f"container {c.id} was removed while starting")
        c.exit_code = c.finished_at = None
        if script.start_error is not None:
            c.state, c.exit_code, c.finished_at = ContainerState.EXITED, 127, trio.current_time()
            c.notify()
            raise RuntimeFailure(f"starting container {c.id}: {script.start_error}")
        if c.infra:
            n = next(self._ips)
            c.sandbox.ip = f"10.88.{n // 250}.{n % 250 + 2}"
        c.state, c.started_at = ContainerState.RUNNING, trio.current_time()
        c.stdio = c.new_stdio()  # a new process, a new stdin
        c.scope = trio.CancelScope()
        nursery.start_soon(self._process, c, c.scope)
        self._emit(EventType.STARTED, c)

    async def _process(self, c: SimContainer, scope: trio.CancelScope) -> None:
        with scope:
            start = trio.current_time()
            for at, stream, data in sorted(c.script.output, key=lambda item: item[0]):
                if c.script.exit_after is not None and at > c.script.exit_after:
                    break
                await trio.sleep_until(start + at)
                c.write_output(stream, data)
            if c.script.echo_stdin:
                await echo_stdin(c)
                self._exit(c, c.script.exit_code)
                return
            if c.script.exit_after is None:
                await trio.sleep_forever()
            await trio.sleep_until(start + c.script.exit_after)
            self._exit(c, c.script.exit_code)

    def _exit(self, c: SimContainer, code: int) -> None:
        if c.state != ContainerState.RUNNING:
            return
        c.state, c.exit_code, c.finished_at = ContainerState.EXITED, code, trio.current_time()
        if c.scope is not None:
            c.scope.cancel()
        c.notify()
        self._emit(EventType.DIED, c)

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        await self._stop(self._container(container_id), grace_period)

    async def _stop(self, c: SimContainer, grace_period: float) -> None:
        if c.state != ContainerState.RUNNING:
            return
        self._signal(c, signal_module.SIGTERM)
        with trio.move_on_after(max(0, math.ceil(grace_period))):  # podman rounds up to seconds
            while c.state == ContainerState.RUNNING:
                await c.changed.wait()
        self._exit(c, SIGKILL_EXIT)

    def _signal(self, c: SimContainer, number: int) -> None:
        if number == signal_module.SIGKILL:
            self._exit(c, SIGKILL_EXIT)
        elif number == signal_module.SIGTERM and c.script.on_sigterm is not None:
            self._exit(c, c.script.on_sigterm)
        # other signals (and an ignored SIGTERM) change nothing

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        c = self._container(container_id)
        if c.state != ContainerState.RUNNING:
            raise InvalidState(f"can only kill running containers; {container_id} is {c.state}")
        self._signal(c, signal_number(signal))

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.infra:
            raise InvalidState(f"{container_id} is an infra container: remove its sandbox instead")
        self._exit(c, SIGKILL_EXIT)
        self._remove(c)

    def _remove(self, c: SimContainer) -> None:
        self._containers.pop(c.id, None)
        c.sandbox.members.pop(c.id, None)
        uid = c.labels.get(LABEL_POD_UID, "")
        same_pod = self._by_pod_uid.get(uid)
        if same_pod is not None:
            same_pod.pop(c.id, None)
            if not same_pod:
                del self._by_pod_uid[uid]
        c.notify()
        self._emit(EventType.REMOVED, c)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._status(self._container(container_id))

    def _status(self, c: SimContainer) -> ContainerStatus:
        return ContainerStatus(
            id=c.id,
            name=c.name,
            sandbox_id=c.sandbox.id,
            state=c.state,
            exit_code=c.exit_code if c.state == ContainerState.EXITED else None,
            created_at=virtual_time(c.created_at),
            started_at=virtual_time(c.started_at),
            finished_at=virtual_time(c.finished_at) if c.state == ContainerState.EXITED else None,
            image=normalize_image(c.image),
            image_id=c.image_id,
            labels=c.labels,
        )

    # --------------------------------------------------------------------------------- streams

    @asynccontextmanager
    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: datetime | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        yield self._log_lines(self._container(container_id), follow, tail, timestamps, since)

    async def _log_lines(
        self, c: SimContainer, follow: bool, tail: int | None, timestamps: bool, since: datetime | None
    ) -> AsyncIterator[bytes]:
        start = (since - EPOCH).total_seconds() if since is not None else -math.inf
        entries = [e for e in c.log if e[0] >= start]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        seen = len(c.log)
        for at, _, line in entries:
            yield stamp_line(at, line) if timestamps else line
        while follow and c.state == ContainerState.RUNNING and c.id in self._containers:
            await c.changed.wait()
            for at, _, line in c.log[seen:]:
                yield stamp_line(at, line) if timestamps else line
            seen = len(c.log)

    @asynccontextmanager
    async def exec(
        self, container_id: str, cmd: Sequence[str], *, stdin: bool = False, tty: bool = False
    ) -> AsyncIterator[ExecSession]:
        c = self._container(container_id)
        if c.state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
        session = SimExecSession(tty)
        if not stdin:
            await session.close_stdin()  # like /dev/null: `cat` sees EOF at once
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._exec_process, c, tuple(cmd), session)
            yield session
            nursery.cancel_scope.cancel()

    async def _exec_process(self, c: SimContainer, cmd: tuple[str, ...], session: SimExecSession) -> None:
        if cmd[:1] == ("busybox",):
            cmd = cmd[1:]
        result = c.script.exec.get(cmd) or (c.script.exec_handler and c.script.exec_handler(cmd))
        if not result and cmd[:1] == ("cat",) and len(cmd) == 1:
            async for data in session.stdin_receive:
                await session.emit(1, data)
            result = ExecScript()
        result = result or builtin_exec(partial(self._wget, c), cmd)
        await trio.sleep(result.duration)
        if result.stdout:
            await session.emit(1, result.stdout)
        if result.stderr:
            await session.emit(2, result.stderr)
        session.finish(result.exit_code)

    def _wget(self, c: SimContainer, url: str) -> ExecScript:
        hostport = url.removeprefix("http://").split("/", 1)[0]
        host, _, port = hostport.partition(":")
        port_number = int(port or 80)
        if host in ("127.0.0.1", "localhost", c.sandbox.ip):
            for other in self._members(c.sandbox):
                if other.state == ContainerState.RUNNING and port_number in other.script.serves:
                    return ExecScript(stdout=other.script.serves[port_number])
        return ExecScript(
            exit_code=1, stderr=f"wget: can't connect to remote host ({host}): Connection refused\n".encode()
        )

    async def stats(self, container_ids: Sequence[str]) -> list[ContainerStats]:
        """A running container uses its script's `cpu` cores since it started and `memory` bytes."""
        now = trio.current_time()
        out = []
        for cid in container_ids:
            c = self._containers.get(cid)
            if c is None or c.state != ContainerState.RUNNING or c.started_at is None:
                continue
            out.append(ContainerStats(cid, int((now - c.started_at) * c.script.cpu * 1e9), c.script.memory))
        return out

    async def exec_run(self, container_id: str, cmd: Sequence[str], timeout: float) -> ExecResult:  # noqa: ASYNC109 (probe timeoutSeconds)
        return await run_to_completion(self, container_id, cmd, timeout)

    @asynccontextmanager
    async def attach(
        self,
        container_id: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
    ) -> AsyncIterator[AttachSession]:
        c = self._container(container_id)
        check_attach(container_id, running=c.state == ContainerState.RUNNING, has_stdin=c.spec.stdin,
                     has_tty=c.spec.tty, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        session = SimAttachSession(c, stdin=stdin, stdout=stdout, stderr=stderr, stdin_once=c.spec.stdin_once)
        try:
            yield session
        finally:
            session.end()

    @asynccontextmanager
    async def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncIterator[RuntimeEvent]]:
        self._running_nursery()
        send, receive = trio.open_memory_channel[RuntimeEvent](math.inf)  # writers never wait
        entry = ({**(labels or {}), LABEL_MANAGED: "true"}, send)
        self._subscribers.append(entry)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.remove(entry)
            send.close()


@asynccontextmanager
async def open_simulated_runtime(script: SimScript | None = None) -> AsyncIterator[SimulatedRuntime]:
    runtime = SimulatedRuntime(script)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        try:
            yield runtime
        finally:
            await runtime.aclose()
            nursery.cancel_scope.cancel()


def _conforms(runtime: SimulatedRuntime) -> Runtime:  # mypy checks SimulatedRuntime against the Protocol here
    return runtime
