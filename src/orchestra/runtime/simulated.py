"""`SimulatedRuntime`: the `Runtime` Protocol in memory, driven by a script, on trio time only.

Owns: a fake of Podman honest enough that the contract suite (tests/runtime/) passes against
both: the same states, transitions, exit codes (SIGKILL 137, ignored SIGTERM waits the stop
timeout), errors (NotFound, InvalidState, ImageNotFound), events and labels. Behaviour that
would need a real process comes from a `SimScript` (kwok-style scripted lifecycle):

    script = SimScript(containers={"web": ContainerScript(serves={8080: b"hi"})},
                       images={"crasher:1": ContainerScript(exit_after=2, exit_code=1)})
    async with open_simulated_runtime(script) as runtime: ...

Containers run as tasks in the runtime's own nursery (`run(*, task_status)`), deterministic under
MockClock. A container without an explicit script does what its command says (simscript.derive),
scripted per pod (`script_pod`); exec answers by simexec.py's rule. Timestamps come from an injected
`SimClock` (`SimClock.wall()` for a real cluster); IPs from per-node pod CIDRs (`assign_pod_cidr`).
With a `state_dir` every change is journalled (simtables.py keeps the tables and their journal,
simjournal.py the file, simpersist.py what a record is) and `run()` first restores the state:
running containers go on running (a `sleep 60` started 50 s before a restart exits 10 s after it)
with the same ids, IPs and times, for the node agents to adopt. simstate.py holds the objects.
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
from pathlib import Path

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
from orchestra.runtime.simclock import SimClock as SimClock
from orchestra.runtime.simexec import run_exec, wget_in_pod
from orchestra.runtime.simnet import DEFAULT_CIDR, NetworkFull, PodNetworks
from orchestra.runtime.simpersist import (
    INFRA_SCRIPT,
    INFRA_SPEC,
    container_record,
    exit_record,
    file_record,
    sandbox_record,
    start_record,
)
from orchestra.runtime.simrules import PodScript
from orchestra.runtime.simscript import ContainerScript as ContainerScript
from orchestra.runtime.simscript import ExecScript as ExecScript
from orchestra.runtime.simscript import SimScript as SimScript
from orchestra.runtime.simscript import normalize_image, signal_number
from orchestra.runtime.simstate import SimContainer, SimSandbox
from orchestra.runtime.simstdio import SimAttachSession, SimExecSession, echo_stdin
from orchestra.runtime.simtables import SimTables, StateUnavailable

SIGKILL_EXIT = 128 + signal_module.SIGKILL


class SimulatedRuntime:
    """A `Runtime` in memory. Call its `run` in a nursery (or use `open_simulated_runtime`)."""

    def __init__(self, script: SimScript | None = None, *, clock: SimClock | None = None,
                 state_dir: Path | None = None, default_cidr: str = DEFAULT_CIDR):
        self.script = script or SimScript()
        self.clock = clock or SimClock()
        self.networks = PodNetworks(default_cidr)
        self._t = SimTables(self.clock, state_dir)
        self._ids = itertools.count(1)
        self._subscribers: list[tuple[Mapping[str, str], trio.MemorySendChannel[RuntimeEvent]]] = []
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore the persisted state (if any), then run containers until cancelled. Cancelling stops
        the simulation, not the containers: they are still running when the state is restored."""
        try:
            restored = self._t.load()
        except StateUnavailable as exc:
            raise RuntimeUnavailable(str(exc)) from exc
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._t.restore(restored, nursery, self.script, self.networks, self._resume)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._t.close()

    def _resume(self, c: SimContainer) -> None:
        """Run the container's process (again after a restart: from its start; if over by now, it exits
        then)."""
        ends = c.ends_at()
        if ends is not None and ends <= trio.current_time():
            for at, stream, data in c.output_due():
                c.write_output(stream, data, at=at)
            self._exit(c, c.script.exit_code, at=ends)
            return
        if not c.infra:  # a new process, a new stdin (the pause process reads none)
            c.stdio = c.new_stdio()
        c.scope = trio.CancelScope()
        self._running_nursery().start_soon(self._process, c, c.scope)

    def discard_state(self) -> None:
        """Forget the persisted state, after `run` (`up --stop-pods`): the next run starts empty."""
        self._t.discard()

    # --- simulation hooks (node/simulated.py): not part of the Runtime protocol --------------------

    def script_pod(self, uid: str, script: PodScript | None) -> None:
        """Script the containers of pod `uid` (its annotations; None: none)."""
        if script is None:
            self.script.pods.pop(uid, None)
        else:
            self.script.pods[uid] = script

    def assign_pod_cidr(self, label: str, value: str, cidr: str) -> None:
        """Sandboxes labelled `label=value` (a node's) get their IPs from `cidr`."""
        self.networks.assign(label, value, cidr)

    def probe_fails(self, container_id: str, kind: str) -> bool:
        """Whether the pod's script makes this kind of probe of this container fail now."""
        c = self._t.containers.get(container_id)
        if c is None or c.started_at is None:
            return False
        pod = self.script.pods.get(c.labels.get(LABEL_POD_UID, ""))
        return pod is not None and pod.probe_fails(c.name, kind, trio.current_time() - c.started_at)

    async def aclose(self) -> None:
        for _, channel in self._subscribers:
            channel.close()

    def _new_id(self, kind: str) -> str:
        salt = f"-{self._t.generation}" if self._t.generation else ""
        return hashlib.sha256(f"{kind}-{next(self._ids)}{salt}".encode()).hexdigest()

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
        if name not in self.script.present_images:
            self.script.present_images.add(name)
            self._t.record({"k": "img", "name": name})
        return self._image_id(name)

    # ------------------------------------------------------------------------------- sandboxes

    def _sandbox(self, sandbox_id: str) -> SimSandbox:
        sandbox = self._t.sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound(f"sandbox {sandbox_id} not found")
        return sandbox

    async def create_sandbox(self, spec: PodSandboxSpec) -> str:
        self._running_nursery()
        if spec.name in self._t.sandbox_by_name:
            raise InvalidState(f"sandbox {spec.name!r} already exists")
        labels = {
            **spec.labels,
            LABEL_MANAGED: "true",
            LABEL_POD_NAME: spec.name,
            LABEL_POD_NAMESPACE: spec.namespace,
            LABEL_POD_UID: spec.uid,
        }
        sandbox = SimSandbox(id=self._new_id("pod"), spec=spec, labels=labels, created_at=trio.current_time())
        self._t.record(sandbox_record(sandbox, self.clock))
        sandbox.infra = self._make_container(sandbox, INFRA_SPEC, INFRA_SCRIPT, labels, infra=True)
        self._t.add_sandbox(sandbox)
        self._emit(EventType.CREATED, sandbox.infra)
        return sandbox.id

    def _make_container(self, sandbox: SimSandbox, spec: ContainerSpec, script: ContainerScript,
                        labels: dict[str, str], *, infra: bool = False) -> SimContainer:
        c = SimContainer(
            id=self._new_id("ctr"),
            name=spec.name,
            sandbox=sandbox,
            spec=spec,
            script=script,
            image=spec.image,
            image_id=hashlib.sha256(normalize_image(spec.image).encode()).hexdigest(),
            labels=labels,
            infra=infra,
            created_at=trio.current_time(),
        )
        self._t.add_container(c)
        self._t.record(container_record(c, self.clock))
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
            created_at=self.clock.to_datetime(sandbox.created_at),
            labels=sandbox.labels,
        )

    def _members(self, sandbox: SimSandbox) -> list[SimContainer]:
        return [c for c in sandbox.members.values() if not c.infra]

    async def stop_sandbox(self, sandbox_id: str, grace_period: float) -> None:
        sandbox = self._t.sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        async with trio.open_nursery() as nursery:
            for c in self._members(sandbox):
                nursery.start_soon(self._stop, c, grace_period)
        assert sandbox.infra is not None
        await self._stop(sandbox.infra, 0)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._t.sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        assert sandbox.infra is not None
        for c in [*self._members(sandbox), sandbox.infra]:
            if c.state == ContainerState.RUNNING:
                self._exit(c, SIGKILL_EXIT, record=False)
        for c in [*self._members(sandbox), sandbox.infra]:
            self._remove(c, record=False)
        self._t.remove_sandbox(sandbox)

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxStatus]:
        self._running_nursery()
        wanted = dict(labels or {})
        return [
            self._sandbox_status(s)
            for s in self._t.sandboxes.values()
            if all(s.labels.get(k) == v for k, v in wanted.items())
        ]

    # ------------------------------------------------------------------------------ containers

    def _container(self, container_id: str) -> SimContainer:
        c = self._t.containers.get(container_id)
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
            sandbox = self._t.sandboxes.get(sandbox_id)
            candidates = sandbox.members.values() if sandbox is not None else ()
        elif LABEL_POD_UID in wanted:
            candidates = self._t.by_pod_uid.get(wanted[LABEL_POD_UID], {}).values()
        else:
            candidates = self._t.containers.values()
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
        script = self.script.for_container(spec, sandbox.spec.uid, sandbox.spec.hostname)
        c = self._make_container(sandbox, spec, script, labels)
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
        self._running_nursery()
        if c.state == ContainerState.RUNNING:
            return
        script = c.script
        await trio.sleep(self.script.sandbox_start_delay if c.infra else script.start_delay)
        if c.id not in self._t.containers:
            raise NotFound(f"container {c.id} was removed while starting")
        c.exit_code = c.finished_at = None
        if script.start_error is not None:
            c.state, c.exit_code, c.finished_at = ContainerState.EXITED, 127, trio.current_time()
            self._t.record(exit_record(c, self.clock))
            c.notify()
            raise RuntimeFailure(f"starting container {c.id}: {script.start_error}")
        if c.infra:
            try:
                c.sandbox.ip = self.networks.allocate(c.sandbox.labels, c.sandbox.id, prefer=c.sandbox.ip)
            except NetworkFull as exc:  # kube: "failed to set up sandbox container ... network"
                raise RuntimeFailure(
                    f"failed to set up sandbox {c.sandbox.spec.name} network: {exc}") from None
        c.state, c.started_at = ContainerState.RUNNING, trio.current_time()
        self._t.record(start_record(c, self.clock))
        self._resume(c)
        self._emit(EventType.STARTED, c)

    async def _process(self, c: SimContainer, scope: trio.CancelScope) -> None:
        """The main process, from its start (which is in the past for one resumed after a restart:
        what it would have printed meanwhile is logged at the time it would have been)."""
        ends = c.ends_at()
        with scope:
            for at, stream, data in c.output_due():
                await trio.sleep_until(at)
                c.write_output(stream, data, at=at)
            if c.script.echo_stdin:
                await echo_stdin(c)
                self._exit(c, c.script.exit_code)
                return
            scope.deadline = math.inf if ends is None else ends  # the process's own scope is its timer
            await trio.sleep_forever()
        # the deadline passed, or _exit cancelled the scope (a no-op now); the runtime's end never gets here
        if ends is not None:
            self._exit(c, c.script.exit_code, at=ends)

    def _exit(self, c: SimContainer, code: int, *, at: float | None = None, record: bool = True) -> None:
        if c.state != ContainerState.RUNNING:
            return
        c.state, c.exit_code = ContainerState.EXITED, code
        c.finished_at = trio.current_time() if at is None else at
        if c.infra:
            self.networks.release(c.sandbox.ip, c.sandbox.id)
        if record:
            self._t.record(exit_record(c, self.clock))
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
        c = self._t.containers.get(container_id)
        if c is None:
            return
        if c.infra:
            raise InvalidState(f"{container_id} is an infra container: remove its sandbox instead")
        self._exit(c, SIGKILL_EXIT)
        self._remove(c)

    def _remove(self, c: SimContainer, *, record: bool = True) -> None:
        self._t.remove_container(c, record=record)
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
            created_at=self.clock.to_datetime(c.created_at),
            started_at=self.clock.to_datetime(c.started_at) if c.started_at is not None else None,
            finished_at=self.clock.to_datetime(c.finished_at) if c.state == ContainerState.EXITED
            and c.finished_at is not None else None,
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
        c = self._container(container_id)
        yield c.log_lines(self.clock, follow=follow, tail=tail, timestamps=timestamps,
                          since=None if since is None else self.clock.to_trio(since),
                          present=lambda: c.id in self._t.containers)

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
        pod = self.script.pods.get(c.labels.get(LABEL_POD_UID, ""))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(run_exec, c, tuple(cmd), session, pod=pod,
                                       hostname=c.sandbox.spec.hostname,
                                       wget=partial(wget_in_pod, c), stdin=stdin, tty=tty,
                                       on_file=partial(self._exec_file, c)))
            yield session
            nursery.cancel_scope.cancel()

    def _exec_file(self, c: SimContainer, at: float, path: str, data: bytes | None) -> None:
        c.exec_files = (*c.exec_files, (at, path, data))
        self._t.record(file_record(c, at, path, data, self.clock))

    async def stats(self, container_ids: Sequence[str]) -> list[ContainerStats]:
        """A running container uses its script's `cpu` cores since it started and `memory` bytes."""
        now = trio.current_time()
        running = [(c, c.started_at) for cid in container_ids
                   if (c := self._t.containers.get(cid)) is not None
                   and c.state == ContainerState.RUNNING and c.started_at is not None]
        return [ContainerStats(c.id, int((now - start) * c.script.cpu * 1e9), c.script.memory)
                for c, start in running if start is not None]

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
